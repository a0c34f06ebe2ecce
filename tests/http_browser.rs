//! The dashboard in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, with fantoccini) against a running orchestrator.
//! It sees every worker and its state, triggers one with the token, sees the
//! run appear without a reload, and saves screenshots at laptop and phone
//! widths to `docs/` (`dashboard-laptop.png`, `dashboard-phone.png`, not
//! committed; `UPDATE_README_SCREENSHOT=1` also refreshes the README's
//! `docs/dashboard.png`).
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run`
//! installs them). Without them it prints a notice and passes, except under
//! `CI=true`, where it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use orchestrator::http::{HttpConfig, router};
use orchestrator::{Handle, Orchestrator, WorkerSpec};
use serde_json::{Value, json};

const TOKEN: &str = "browser-test-token";

/// The chromedriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port()
}

/// The pipeline of the dashboard example, on second-scale intervals.
fn orchestrator() -> Orchestrator {
    let named =
        |name: &'static str, ms: u64| WorkerSpec::new(name, move || tokio::time::sleep(Duration::from_millis(ms)));
    Orchestrator::builder()
        .without_registered_workers()
        .instance("browser-test")
        .worker(named("fetch_data", 300).interval(Duration::from_secs(2)))
        .worker(named("process_data", 500).interval(Duration::from_secs(3)).depends_on("fetch_data"))
        .worker(named("report", 200).depends_on("process_data"))
        .worker(named("cleanup", 200).interval(Duration::from_secs(5)).blocks("process_data"))
        .worker(named("reindex", 1_500))
        .worker(named("archive", 100).interval(Duration::from_secs(60)).enabled(false))
        .build()
        .expect("valid graph")
}

/// Polls `script` (a function body returning a value) until `done` holds,
/// at most `within`; returns the last value.
async fn until(client: &Client, script: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let value = client.execute(script, vec![]).await.expect("script runs");
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "not within {within:?}: `{script}` gave {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, width: u32, height: u32, path: &Path) {
    client.set_window_size(width, height).await.expect("resizable window");
    // Let the layout settle at the new width (one animation frame).
    client
        .execute(
            "return await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))));",
            vec![],
        )
        .await
        .expect("script runs");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(path, png).expect("docs/ is writable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_worker_and_triggers_one_live_in_a_real_browser() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let (Some(chromedriver), Some(chromium)) =
        (find_program(&["chromedriver"]), find_program(&["chromium", "chromium-browser", "google-chrome"]))
    else {
        assert!(!ci, "CI=true: chromium and chromedriver must be installed (.ci/run installs them)");
        eprintln!("NOTICE: skipping the browser test: chromium and chromedriver are not installed");
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), run(chromedriver, chromium)).await.expect("done within 90 s");
}

async fn run(chromedriver: PathBuf, chromium: PathBuf) {
    let orchestrator = orchestrator();
    let handle = orchestrator.handle();
    let app = router(handle.clone(), HttpConfig::new().admin_token(TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("bound");
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let running = tokio::spawn(orchestrator.run());

    let port = free_port();
    let driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
        }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls().expect("tls").capabilities(capabilities.clone()).connect(&webdriver).await {
            Ok(client) => break client,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "chromedriver did not answer: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    let result = drive(&client, addr, &handle).await;
    let _ = client.close().await;
    drop(driver);
    handle.shutdown().await;
    running.await.expect("driver task").expect("driver result");
    let _ = stop_server.send(());
    server.await.expect("server task").expect("server");
    result
}

async fn drive(client: &Client, addr: SocketAddr, handle: &Handle) {
    client.goto(&format!("http://{addr}/")).await.expect("page loads");
    let names = ["archive", "cleanup", "fetch_data", "process_data", "reindex", "report"];
    let listed = until(
        client,
        "return [...document.querySelectorAll('tr[data-worker]')].map(r => r.dataset.worker);",
        Duration::from_secs(10),
        |v| v.as_array().is_some_and(|a| a.len() == names.len()),
    )
    .await;
    assert_eq!(listed, json!(names), "every worker listed, by name");
    let state = |name: &str| format!("return document.querySelector('tr[data-worker=\"{name}\"] .state').textContent;");
    assert_eq!(client.execute(&state("archive"), vec![]).await.unwrap(), json!("disabled"));
    assert_eq!(client.execute(&state("reindex"), vec![]).await.unwrap(), json!("idle"));
    // Live, and the graph drawn with a node per worker.
    until(client, "return document.getElementById('live').textContent;", Duration::from_secs(10), |v| v == "live")
        .await;
    let nodes = client.execute("return document.querySelectorAll('#graph [data-node]').length;", vec![]).await.unwrap();
    assert_eq!(nodes, json!(names.len()));
    let edges =
        client.execute("return document.querySelectorAll('#graph path.dep, #graph path.blocks').length;", vec![]);
    assert_eq!(edges.await.unwrap(), json!(3), "two depends_on edges and one blocks edge");

    // Trigger reindex: the page asks for the token, once.
    client.execute("window.__sameDocument = true;", vec![]).await.unwrap();
    let trigger = "tr[data-worker=\"reindex\"] button[data-action=\"trigger\"]";
    client.find(Locator::Css(trigger)).await.expect("trigger button").click().await.expect("clickable");
    let input = client.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css("#token-input")).await;
    input.expect("token dialog").send_keys(TOKEN).await.expect("typable");
    client.find(Locator::Css("#token-save")).await.expect("save button").click().await.expect("clickable");
    until(client, &state("reindex"), Duration::from_secs(5), |v| v.as_str().is_some_and(|s| s.starts_with("running")))
        .await;
    let runs = "return document.querySelector('tr[data-worker=\"reindex\"] .runs').textContent;";
    assert_eq!(client.execute(runs, vec![]).await.unwrap(), json!("1"));
    // The run ends (1.5 s) and its fire shows in the history strip.
    until(
        client,
        "return document.querySelectorAll('[data-history=\"reindex\"] span.succeeded').length;",
        Duration::from_secs(10),
        |v| v == 1,
    )
    .await;
    assert_eq!(client.execute(&state("reindex"), vec![]).await.unwrap(), json!("idle"));
    let same = client.execute("return window.__sameDocument === true;", vec![]).await.unwrap();
    assert_eq!(same, json!(true), "updated without a reload");
    assert_eq!(handle.status().worker("reindex").map(|w| w.successes), Some(1));
    let stored = client.execute("return sessionStorage.getItem('orchestrator-admin-token');", vec![]);
    assert_eq!(stored.await.unwrap(), json!(TOKEN), "kept for the tab");

    // An error shows in the page: triggering the disabled worker.
    client
        .execute(
            "document.querySelector('tr[data-worker=\"archive\"] button[data-action=\"trigger\"]').disabled = false;",
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Css("tr[data-worker=\"archive\"] button[data-action=\"trigger\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = until(client, "return document.getElementById('errors').textContent;", Duration::from_secs(5), |v| {
        v.as_str().is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(error.as_str().unwrap().contains("disabled"), "{error}");
    client.execute("document.getElementById('errors').replaceChildren();", vec![]).await.unwrap();

    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&docs).expect("docs/");
    let laptop = docs.join("dashboard-laptop.png");
    screenshot(client, 1280, 1000, &laptop).await;
    screenshot(client, 390, 844, &docs.join("dashboard-phone.png")).await;
    // The README's picture is a committed copy, replaced only on request, so
    // that a test run leaves the work tree clean.
    if std::env::var_os("UPDATE_README_SCREENSHOT").is_some() {
        std::fs::copy(&laptop, docs.join("dashboard.png")).expect("docs/ is writable");
    }
    // At phone width the table becomes cards: the header row is hidden.
    let header = client.execute("return getComputedStyle(document.querySelector('#workers thead')).display;", vec![]);
    assert_eq!(header.await.unwrap(), json!("none"));
}

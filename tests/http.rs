//! The control plane over HTTP: every route, every error path, on tokio's
//! paused clock through `tower::ServiceExt::oneshot` (and one real listener
//! for `serve_http`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{builder, secs, start, stop, wait};
use http_body_util::BodyExt;
use orchestrator::http::{ADMIN_TOKEN_ENV, HttpConfig, router};
use orchestrator::{Handle, OrchestratorBuilder, WorkerSpec};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "t0ken-for-tests";

/// A Triggered worker that works `ms` and counts its runs.
fn counting(name: &'static str, ms: u64, runs: &Arc<AtomicU32>) -> WorkerSpec {
    let runs = runs.clone();
    WorkerSpec::new(name, move || {
        runs.fetch_add(1, Ordering::SeqCst);
        async move { wait(ms).await }
    })
}

fn workers(runs: &Arc<AtomicU32>) -> OrchestratorBuilder {
    builder()
        .instance("http-test")
        .worker(counting("quick", 100, runs))
        .worker(counting("slow", 5_000, runs))
        .worker(WorkerSpec::new("off", || async {}).enabled(false))
        .worker(WorkerSpec::new("tick", || wait(1_000)).interval(secs(60)))
        .worker(WorkerSpec::new("after_tick", || async {}).interval(secs(60)).depends_on("tick"))
}

fn app(handle: &Handle) -> Router {
    router(handle.clone(), HttpConfig::new().admin_token(TOKEN))
}

/// Sends a request; returns the status, the headers and the body as JSON
/// (`Value::String` for a body that is not JSON).
async fn send(app: &Router, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, header::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("valid request")).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (parts.status, parts.headers, json)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, "GET", uri, None).await;
    (status, body)
}

async fn post(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, "POST", uri, Some(&format!("Bearer {TOKEN}"))).await;
    (status, body)
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test(start_paused = true)]
async fn status_route_serves_the_status_as_consistent_json() {
    let runs = Arc::default();
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    wait(10).await;
    let (code, body) = get(&app, "/api/status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((body["instance"].as_str(), body["state"].as_str()), (Some("http-test"), Some("running")));
    let names: Vec<_> = body["workers"].as_array().expect("list").iter().map(|w| w["name"].clone()).collect();
    assert_eq!(names, ["after_tick", "off", "quick", "slow", "tick"]);
    let off = &body["workers"][1];
    assert_eq!((off["state"].as_str(), off["state_detail"]["cause"].as_str()), (Some("disabled"), Some("configured")));
    assert_eq!((off["mode"].as_str(), off["priority"].as_str()), (Some("triggered"), Some("normal")));
    let after = &body["workers"][0];
    assert_eq!(after["state"], "waiting_on_dependency");
    assert_eq!(after["state_detail"]["dependency"], "tick");
    assert!(after.get("last_duration_seconds").is_some() && after.get("last_duration").is_none());
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn worker_route_serves_one_worker_and_a_json_404_for_an_unknown_name() {
    let runs = Arc::default();
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    let (code, body) = get(&app, "/api/workers/tick").await;
    assert_eq!((code, body["name"].as_str()), (StatusCode::OK, Some("tick")));
    assert_eq!(body["schedule"], "every 1m");
    let (code, body) = get(&app, "/api/workers/tock").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_error(&body, "unknown_worker");
    assert!(body["message"].as_str().unwrap().contains("`tock`"));
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn history_route_lists_fires_newest_first_and_checks_its_limit() {
    let runs = Arc::default();
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    for _ in 0..3 {
        assert_eq!(post(&app, "/api/workers/quick/trigger").await.0, StatusCode::OK);
    }
    let (code, body) = get(&app, "/api/workers/quick/history?limit=2").await;
    assert_eq!(code, StatusCode::OK);
    let fires = body.as_array().expect("a list");
    assert_eq!(fires.len(), 2);
    assert_eq!((fires[0]["outcome"].as_str(), fires[0]["instance"].as_str()), (Some("succeeded"), Some("http-test")));
    assert!(fires[0]["scheduled_at"].as_str() > fires[1]["scheduled_at"].as_str(), "newest first");
    assert_eq!(get(&app, "/api/workers/quick/history").await.1.as_array().map(Vec::len), Some(3));
    for bad in ["limit=0", "limit=1001", "limit=ten"] {
        let (code, body) = get(&app, &format!("/api/workers/quick/history?{bad}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}");
        assert_error(&body, "bad_query");
    }
    let (code, body) = get(&app, "/api/workers/nope/history").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_error(&body, "unknown_worker");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn control_routes_answer_401_without_with_a_malformed_or_with_a_wrong_token_and_never_echo_it() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    for route in ["trigger", "enable", "disable"] {
        let uri = format!("/api/workers/quick/{route}");
        for (auth, code) in [
            (None, "missing_token"),
            (Some("t0ken-for-tests".to_string()), "malformed_token"),
            (Some(format!("Basic {TOKEN}")), "malformed_token"),
            (Some("Bearer guessed-token".to_string()), "invalid_token"),
            (Some(format!("Bearer {TOKEN}x")), "invalid_token"),
        ] {
            let (status, headers, body) = send(&app, "POST", &uri, auth.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} with {auth:?}");
            assert_eq!(headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
            assert_error(&body, code);
            assert!(!body.to_string().contains("guessed") && !body.to_string().contains(TOKEN));
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran");
    assert!(handle.status().worker("quick").unwrap().enabled, "nothing changed");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn control_routes_are_forbidden_when_no_token_is_configured() {
    assert!(std::env::var(ADMIN_TOKEN_ENV).is_err(), "this test needs {ADMIN_TOKEN_ENV} unset");
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = router(handle.clone(), HttpConfig::new());
    for route in ["trigger", "enable", "disable"] {
        let (status, _, body) =
            send(&app, "POST", &format!("/api/workers/quick/{route}"), Some(&format!("Bearer {TOKEN}"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}");
        assert_error(&body, "writes_disabled");
    }
    assert_eq!(get(&app, "/api/status").await.0, StatusCode::OK, "reads stay on");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn trigger_waits_for_the_outcome_or_answers_202_at_once_with_wait_false() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    let (code, body) = post(&app, "/api/workers/quick/trigger").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((body["worker"].as_str(), body["outcome"].as_str()), (Some("quick"), Some("succeeded")));
    assert_eq!(handle.status().worker("quick").unwrap().runs, 1, "answered after the run");

    let (code, body) = post(&app, "/api/workers/slow/trigger?wait=false").await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!((body["worker"].as_str(), body["accepted"].as_bool()), (Some("slow"), Some(true)));
    assert!(handle.status().worker("slow").unwrap().last_finished.is_none(), "answered before the run ended");
    wait(5_100).await;
    assert_eq!(handle.status().worker("slow").unwrap().successes, 1, "the run went on without a waiter");

    let (code, body) = post(&app, "/api/workers/quick/trigger?wait=perhaps").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_query");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn trigger_is_409_for_a_running_or_disabled_worker_404_for_an_unknown_one() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    wait(1).await; // started: a trigger before the start joins the fire waiting for it
    assert_eq!(post(&app, "/api/workers/slow/trigger?wait=false").await.0, StatusCode::ACCEPTED);
    let (code, body) = post(&app, "/api/workers/slow/trigger").await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_error(&body, "already_running");
    let (code, body) = post(&app, "/api/workers/off/trigger").await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_error(&body, "worker_disabled");
    assert!(body["message"].as_str().unwrap().contains("enabled = false"));
    for route in ["trigger", "enable", "disable"] {
        let (code, body) = post(&app, &format!("/api/workers/ghost/{route}")).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{route}");
        assert_error(&body, "unknown_worker");
    }
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn trigger_is_409_while_shutting_down() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    assert_eq!(post(&app, "/api/workers/slow/trigger?wait=false").await.0, StatusCode::ACCEPTED);
    let stopping = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    wait(1).await;
    let (code, body) = post(&app, "/api/workers/quick/trigger").await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_error(&body, "shutting_down");
    stopping.await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn disable_and_enable_answer_with_the_workers_new_status() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    let (code, body) = post(&app, "/api/workers/quick/disable").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((body["enabled"].as_bool(), body["state"].as_str()), (Some(false), Some("disabled")));
    assert_eq!(body["state_detail"]["cause"], "manually");
    assert_eq!(post(&app, "/api/workers/quick/trigger").await.0, StatusCode::CONFLICT);
    let (code, body) = post(&app, "/api/workers/quick/enable").await;
    assert_eq!((code, body["enabled"].as_bool(), body["state"].as_str()), (StatusCode::OK, Some(true), Some("idle")));
    assert_eq!(post(&app, "/api/workers/quick/trigger").await.0, StatusCode::OK);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_triggers_of_one_worker_make_one_run_and_every_other_answer_is_409() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    wait(1).await;
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { post(&app, "/api/workers/slow/trigger").await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request task"));
    }
    let succeeded = answers.iter().filter(|(code, body)| *code == StatusCode::OK && body["outcome"] == "succeeded");
    let refused =
        answers.iter().filter(|(code, body)| *code == StatusCode::CONFLICT && body["error"] == "already_running");
    let (succeeded, refused) = (succeeded.count(), refused.count());
    assert_eq!(succeeded + refused, 50, "every request answered as joined or refused: {answers:?}");
    assert!(succeeded >= 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run");
    assert_eq!(handle.status().worker("slow").unwrap().runs, 1);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn health_is_200_while_running_and_503_with_reasons_when_a_worker_is_auto_disabled_or_stopped() {
    let broken =
        WorkerSpec::new("broken", || async { Err::<(), _>("database unreachable") }).max_consecutive_failures(1);
    let (handle, task) = start(builder().worker(broken));
    let app = app(&handle);
    wait(1).await;
    let (code, body) = get(&app, "/health").await;
    assert_eq!(
        (code, body["healthy"].as_bool(), body["state"].as_str()),
        (StatusCode::OK, Some(true), Some("running"))
    );
    assert_eq!(body["reasons"], serde_json::json!([]));
    assert_eq!(post(&app, "/api/workers/broken/trigger").await.1["outcome"], "failed");
    let (code, body) = get(&app, "/health").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let reason = body["reasons"][0].as_str().expect("a reason");
    assert!(reason.contains("`broken`") && reason.contains("database unreachable"), "{reason}");
    assert_eq!(post(&app, "/api/workers/broken/enable").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/health").await.0, StatusCode::OK, "enabling clears it");
    handle.shutdown().await;
    let (code, body) = get(&app, "/health").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reasons"][0], "the orchestrator has stopped");
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn unknown_routes_and_wrong_methods_answer_with_json_errors() {
    let runs = Arc::default();
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    let (code, body) = get(&app, "/api/nothing-here").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (code, body) = get(&app, "/api/workers/quick/trigger").await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn the_dashboard_is_one_self_contained_page() {
    let runs = Arc::default();
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    let (code, headers, body) = send(&app, "GET", "/", None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
    let page = body.as_str().expect("html");
    assert!(page.contains("<style>") && page.contains("<script>"), "style and script inlined");
    assert!(!page.contains("/*STYLE*/") && !page.contains("/*SCRIPT*/"));
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(external), "nothing loaded from elsewhere: {external}");
    }
    stop(handle, task).await;
}

#[tokio::test]
async fn serve_http_listens_while_the_orchestrator_runs_and_stops_with_it() {
    // A free port: bound, read, released (serve_http binds it again).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let (handle, task) = start(
        builder()
            .worker(WorkerSpec::new("quick", || async {}))
            .serve_http_with(&addr, HttpConfig::new().admin_token(TOKEN)),
    );
    let client = async |path: &str| -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    };
    let answer = tokio::time::timeout(secs(10), async {
        loop {
            // The server binds when the driver task first runs.
            if let Ok(answer) = client("/health").await {
                break answer;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("listening within 10 s");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"healthy\":true"));
    handle.shutdown().await;
    tokio::time::timeout(secs(10), task).await.expect("stops within 10 s").unwrap().unwrap();
    assert!(client("/health").await.is_err(), "the listener closed with the orchestrator");
}

#[tokio::test]
async fn serve_http_on_a_taken_address_fails_run_with_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let orchestrator = builder().worker(WorkerSpec::new("quick", || async {})).serve_http(&addr).build().unwrap();
    let error = tokio::time::timeout(secs(10), orchestrator.run()).await.expect("fails at once").unwrap_err();
    assert!(matches!(error, orchestrator::Error::Http { .. }));
    assert!(error.to_string().contains(&addr), "{error}");
}

#[tokio::test(start_paused = true)]
async fn events_stream_a_workers_state_change_as_it_happens_and_end_when_the_orchestrator_stops() {
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, task) = start(workers(&runs));
    let app = app(&handle);
    wait(1_100).await; // tick's first run is over: nothing changes until it is triggered
    let response = app
        .clone()
        .oneshot(Request::get("/api/events").body(Body::empty()).expect("valid request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();
    assert_eq!(post(&app, "/api/workers/slow/trigger?wait=false").await.0, StatusCode::ACCEPTED);

    // Reads events until `slow` shows `state`; returns what came on the way.
    let mut buffer = String::new();
    let mut next_status = async |state: &str| -> Value {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let data: String = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                if event.lines().any(|l| l == "event: status") {
                    let worker: Value = serde_json::from_str(&data).expect("a WorkerStatus as JSON");
                    if worker["name"] == "slow" && worker["state"] == state {
                        return worker;
                    }
                }
                continue;
            }
            let frame = body.frame().await.expect("the stream goes on").expect("a frame");
            if let Ok(data) = frame.into_data() {
                buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    let started = tokio::time::timeout(secs(1), next_status("running")).await.expect("delivered at once");
    assert_eq!(started["state_detail"]["attempt"], 1);
    let t0 = tokio::time::Instant::now();
    let ended = tokio::time::timeout(secs(10), next_status("idle")).await.expect("delivered when the run ended");
    assert_eq!(t0.elapsed(), std::time::Duration::from_millis(5_000), "the moment the 5 s run ended");
    assert_eq!((ended["runs"].as_u64(), ended["successes"].as_u64()), (Some(1), Some(1)));
    stop(handle, task).await;
    let end = tokio::time::timeout(secs(10), async {
        while let Some(frame) = body.frame().await {
            frame.expect("a frame");
        }
    });
    end.await.expect("the stream ends with the orchestrator");
}

#[tokio::test]
async fn run_until_serves_the_control_plane_too_and_stops_it_with_its_shutdown_future() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let orchestrator = builder().worker(WorkerSpec::new("quick", || async {})).serve_http(&addr).build().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(orchestrator.run_until(async move {
        let _ = stopped.await;
    }));
    let connected = tokio::time::timeout(secs(10), async {
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    connected.await.expect("listening within 10 s");
    stop.send(()).expect("still running");
    tokio::time::timeout(secs(10), running).await.expect("stops within 10 s").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "the listener closed with the orchestrator");
}

"use strict";
// The dashboard: reads api/status once, then follows api/events (one
// `status` event per worker whose status changed); history strips come from
// api/workers/{name}/history. Every URL is relative to the page, so the
// router can be nested under any prefix. Data reaches the page through
// textContent only, never as HTML.

const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const TOKEN_KEY = "orchestrator-admin-token";
const STRIP = 20;

const workers = new Map(); // name -> WorkerStatus
const histories = new Map(); // name -> [FireRecord]
let status = null; // the last full status (orchestrator-level fields)
let serverOffset = 0; // server clock minus this browser's clock, in ms
let pendingToken = null; // resolves the token dialog

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

// ----- time ------------------------------------------------------------

const serverNow = () => Date.now() + serverOffset;
function human(seconds) {
  const s = Math.abs(seconds);
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.round((s % 86400) / 3600)}h`;
}
const clock = (iso) => new Date(iso).toLocaleTimeString();
function ago(iso) {
  const seconds = (serverNow() - Date.parse(iso)) / 1000;
  return seconds < 1 ? "just now" : `${human(seconds)} ago`;
}
function relative(iso) {
  const seconds = (Date.parse(iso) - serverNow()) / 1000;
  // Within a second either way the clocks' skew decides the sign.
  if (Math.abs(seconds) < 1) return seconds > 0 ? "in a moment" : "just now";
  return seconds >= 0 ? `in ${human(seconds)}` : `${human(seconds)} ago`;
}

// ----- messages ----------------------------------------------------------

function banner(container, text, kind) {
  const close = el("button", { type: "button", "aria-label": "dismiss", text: "×" });
  const box = el("div", { class: `banner ${kind}` }, el("span", { text }), close);
  close.onclick = () => box.remove();
  container.append(box);
  if (kind === "notice") setTimeout(() => box.remove(), 5000);
  while (container.children.length > 4) container.firstChild.remove();
}
const showError = (text) => banner($("errors"), text, "error");
const showNotice = (text) => banner($("notices"), text, "notice");

// ----- the API -----------------------------------------------------------

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(base + path, options);
  } catch (e) {
    throw new Error(`cannot reach the orchestrator (${e.message})`);
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const error = new Error(body && body.message ? body.message : `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.code = body && body.error;
    throw error;
  }
  return { status: response.status, body };
}

function askToken() {
  const dialog = $("token-dialog");
  $("token-input").value = "";
  dialog.showModal();
  return new Promise((resolve) => { pendingToken = resolve; });
}
$("token-form").addEventListener("submit", () => {
  const token = $("token-input").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  updateTokenButton();
  if (pendingToken) pendingToken(token || null);
  pendingToken = null;
});
$("token-cancel").onclick = () => {
  $("token-dialog").close();
  if (pendingToken) pendingToken(null);
  pendingToken = null;
};
$("token-button").onclick = async () => {
  if (sessionStorage.getItem(TOKEN_KEY)) {
    sessionStorage.removeItem(TOKEN_KEY);
    updateTokenButton();
    showNotice("token forgotten");
  } else {
    await askToken();
  }
};
function updateTokenButton() {
  $("token-button").textContent = sessionStorage.getItem(TOKEN_KEY) ? "forget token" : "set token";
}

async function control(name, action) {
  let token = sessionStorage.getItem(TOKEN_KEY) || (await askToken());
  if (!token) return;
  const path = `api/workers/${encodeURIComponent(name)}/${action}` + (action === "trigger" ? "?wait=false" : "");
  for (let tries = 0; tries < 2; tries++) {
    try {
      const { body } = await api(path, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      if (action === "trigger") showNotice(`${name}: triggered`);
      else {
        showNotice(`${name}: ${action}d`);
        if (body && body.name) update(body);
      }
      return;
    } catch (e) {
      if (e.status === 401 && tries === 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        updateTokenButton();
        showError(`${e.message}; enter the token again`);
        token = await askToken();
        if (!token) return;
        continue;
      }
      showError(`${name}: ${action} refused: ${e.message}`);
      return;
    }
  }
}

// ----- words ---------------------------------------------------------------

function stateWords(w) {
  const d = w.state_detail || {};
  switch (w.state) {
    case "idle": return ["idle", ""];
    case "running": {
      const where = w.running_on ? ` on ${w.running_on}` : "";
      const attempt = d.attempt > 1 ? ` (attempt ${d.attempt})` : "";
      return [`running${attempt}${where}`, d.since ? `since ${clock(d.since)}` : ""];
    }
    case "retrying": return [`retrying: attempt ${d.next_attempt}`, d.next_attempt_at ? `next attempt ${relative(d.next_attempt_at)}` : ""];
    case "waiting_for_slot": return ["waiting for a free slot", "max_concurrent runs are executing"];
    case "waiting_for_cluster": return [w.running_on ? `running on ${w.running_on}` : "waiting for the cluster", `${d.reason || ""}${d.retry_at ? `; claimed again ${relative(d.retry_at)}` : ""}`];
    case "waiting_on_dependency": return [`waiting on ${d.dependency}`, d.reason || ""];
    case "excluded": return [`excluded by ${d.by}`, `${d.by} is running and they never run together`];
    case "disabled": return ["disabled", d.reason || ""];
    default: return [w.state, ""];
  }
}

function lastRun(w) {
  if (w.last_success == null && !w.last_finished) {
    return w.last_started ? el("span", { class: "muted", text: `started ${ago(w.last_started)}` }) : el("span", { class: "muted", text: "never ran" });
  }
  const outcome = w.last_success ? "succeeded" : (w.last_error && w.last_error.startsWith("cancelled") ? "cancelled" : "failed");
  const duration = w.last_duration_seconds != null ? ` in ${human(w.last_duration_seconds)}` : "";
  const when = w.last_finished ? `, ${ago(w.last_finished)}` : "";
  return el("div", {},
    el("span", { class: `outcome-${outcome}`, text: outcome }),
    el("span", { class: "muted", text: `${duration}${when}` }),
    w.last_error ? el("div", { class: "error", text: w.last_error }) : null);
}

// ----- the table -------------------------------------------------------------

function cell(label, className, ...children) {
  return el("td", { "data-label": label, class: className || "" }, ...children);
}

function row(w) {
  const [words, reason] = stateWords(w);
  const tr = el("tr", { "data-worker": w.name, id: `worker-${w.name}` });
  tr.append(
    cell("", "cell-name", el("div", {},
      el("div", { class: "name", text: w.name }),
      el("div", { class: "sub", text: `${w.mode} · ${w.priority}` }))),
    cell("instance", "col-instance", el("span", { text: w.running_on || "" })),
    cell("state", "", el("div", {},
      el("div", { class: `state state-${w.state}`, text: words }),
      reason ? el("div", { class: "sub", text: reason }) : null)),
    cell("schedule", "", el("span", { text: w.schedule })),
    cell("next fire", "next", el("span", { class: "countdown", "data-at": w.next_fire || "", text: w.next_fire ? relative(w.next_fire) : "—" })),
    cell("last run", "", lastRun(w)),
    cell("runs", "num runs", document.createTextNode(w.runs)),
    cell("ok", "num", document.createTextNode(w.successes)),
    cell("failed", "num", document.createTextNode(w.failures)),
    cell("skipped", "num", document.createTextNode(w.upstream_failed + w.missed_fires)),
    cell("history", "", strip(w.name)),
    cell("actions", "", actions(w)),
  );
  return tr;
}

function strip(name) {
  const box = el("div", { class: "strip", "data-history": name });
  const fires = (histories.get(name) || []).slice(0, STRIP).reverse();
  for (const f of fires) {
    const parts = [`${f.outcome}`, `due ${clock(f.scheduled_at)}`];
    if (f.started_at && f.finished_at) parts.push(`took ${human((Date.parse(f.finished_at) - Date.parse(f.started_at)) / 1000)}`);
    if (f.attempts > 1) parts.push(`${f.attempts} attempts`);
    if (f.error) parts.push(f.error);
    box.append(el("span", { class: f.outcome, title: parts.join(" · ") }));
  }
  if (!fires.length) box.append(el("span", { class: "muted", title: "no fires yet", style: "background:none;width:auto;height:auto" }));
  return box;
}

function actions(w) {
  const trigger = el("button", { type: "button", "data-action": "trigger", text: "trigger" });
  trigger.disabled = !w.enabled || w.state === "running" || w.state === "retrying" || w.state === "waiting_for_cluster";
  trigger.onclick = () => control(w.name, "trigger");
  const toggle = el("button", { type: "button", class: "quiet", "data-action": w.enabled ? "disable" : "enable", text: w.enabled ? "disable" : "enable" });
  toggle.onclick = () => control(w.name, w.enabled ? "disable" : "enable");
  return el("div", { class: "actions" }, trigger, toggle);
}

function renderTable() {
  const tbody = $("workers").querySelector("tbody");
  const rows = [...workers.values()].sort((a, b) => a.name.localeCompare(b.name)).map(row);
  tbody.replaceChildren(...rows);
  document.body.classList.toggle("cluster", [...workers.values()].some((w) => w.running_on !== undefined));
}

function renderRow(name, flash) {
  const old = document.getElementById(`worker-${name}`);
  const w = workers.get(name);
  if (!old || !w) return renderTable();
  const fresh = row(w);
  if (flash) fresh.classList.add("flash");
  old.replaceWith(fresh);
}

function renderSummary() {
  if (!status) return;
  $("instance").textContent = status.instance;
  const lifecycle = $("lifecycle");
  lifecycle.textContent = status.state.replace("_", " ");
  lifecycle.className = `pill ${status.state === "running" ? "good" : "bad"}`;
  const executing = [...workers.values()].filter((w) => w.state === "running" && w.mode !== "continuous").length;
  $("slots").textContent = `${executing}/${status.max_concurrent} slots busy · ${workers.size} workers`;
}

async function renderHealth() {
  const pill = $("health");
  try {
    await api("health");
    pill.textContent = "healthy";
    pill.className = "pill good";
    pill.title = "";
  } catch (e) {
    pill.textContent = "unhealthy";
    pill.className = "pill bad";
    pill.title = e.message;
  }
}

// ----- the graph: layers by longest dependency path --------------------------

function renderGraph() {
  const list = [...workers.values()].sort((a, b) => a.name.localeCompare(b.name));
  const graph = $("graph");
  graph.replaceChildren();
  if (!list.length) return;
  const layer = new Map();
  const depth = (name, seen = new Set()) => {
    if (layer.has(name)) return layer.get(name);
    if (seen.has(name)) return 0; // validated acyclic; guard anyway
    seen.add(name);
    const w = workers.get(name);
    const d = w && w.depends_on.length ? 1 + Math.max(...w.depends_on.map((x) => depth(x, seen))) : 0;
    layer.set(name, d);
    return d;
  };
  list.forEach((w) => depth(w.name));
  const columns = [];
  for (const w of list) (columns[layer.get(w.name)] ||= []).push(w.name);
  const W = 150, H = 34, GX = 70, GY = 18, PAD = 30;
  const pos = new Map();
  columns.forEach((names, x) => names.forEach((name, y) => pos.set(name, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
  // Room below the nodes for the `blocks` curves.
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) + GY * 2;
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  graph.setAttribute("width", width);
  graph.setAttribute("height", height);
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  graph.append(defs);
  const drawn = new Set();
  for (const w of list) {
    const to = pos.get(w.name);
    for (const dep of w.depends_on) {
      const from = pos.get(dep);
      if (!from) continue;
      const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
      graph.append(svg("path", { class: "dep", d: `M ${x1} ${y1} C ${x1 + GX / 2} ${y1}, ${x2 - GX / 2} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    }
    for (const other of w.blocks) {
      const key = [w.name, other].sort().join("\u0000");
      const from = pos.get(other);
      if (!from || drawn.has(key)) continue;
      drawn.add(key);
      // Center to center, under the nodes; within one column, bowed out
      // to the left so that it passes no node in between.
      const a = { x: to.x + W / 2, y: to.y + H / 2 }, b = { x: from.x + W / 2, y: from.y + H / 2 };
      const d = a.x === b.x
        ? `M ${to.x} ${a.y} C ${to.x - PAD - 20} ${a.y}, ${from.x - PAD - 20} ${b.y}, ${from.x} ${b.y}`
        : `M ${a.x} ${a.y} L ${b.x} ${b.y}`;
      graph.append(svg("path", { class: "blocks", d }));
    }
  }
  for (const w of list) {
    const p = pos.get(w.name);
    const failed = w.last_success === false ? " last-failed" : "";
    const g = svg("g", { class: `node state-${w.state}${failed}`, transform: `translate(${p.x} ${p.y})`, "data-node": w.name, tabindex: "0" });
    const title = svg("title");
    title.textContent = `${w.name}: ${stateWords(w).join(" — ")}`;
    const label = svg("text", { x: 10, y: 15, class: "label" });
    label.textContent = w.name.length > 20 ? w.name.slice(0, 19) + "…" : w.name;
    const sub = svg("text", { x: 10, y: 28, style: "font-size:10px;fill:var(--muted)" });
    sub.textContent = stateWords(w)[0].slice(0, 24);
    g.append(title, svg("rect", { width: W, height: H, rx: 6 }), label, sub);
    g.addEventListener("click", () => document.getElementById(`worker-${w.name}`)?.scrollIntoView({ behavior: "smooth", block: "center" }));
    graph.append(g);
  }
}

// At most one redraw of the graph per second, however many events arrive.
let graphPending = false;
function scheduleGraph() {
  if (graphPending) return;
  graphPending = true;
  setTimeout(() => { graphPending = false; renderGraph(); }, 1000);
}

// ----- updates ----------------------------------------------------------------

async function loadHistory(name) {
  try {
    const { body } = await api(`api/workers/${encodeURIComponent(name)}/history?limit=${STRIP}`);
    histories.set(name, body);
    const box = document.querySelector(`[data-history="${CSS.escape(name)}"]`);
    if (box) box.replaceWith(strip(name));
  } catch (e) {
    showError(`history of ${name}: ${e.message}`);
  }
}

function update(w) {
  const before = workers.get(w.name);
  workers.set(w.name, w);
  renderRow(w.name, true);
  renderSummary();
  const graphChanged = !before || before.state !== w.state || before.last_success !== w.last_success;
  if (graphChanged) scheduleGraph();
  if (!before || before.runs !== w.runs || before.last_finished !== w.last_finished || before.upstream_failed !== w.upstream_failed || before.missed_fires !== w.missed_fires || before.cancelled !== w.cancelled) {
    loadHistory(w.name);
  }
  if (!before || before.enabled !== w.enabled || before.consecutive_failures !== w.consecutive_failures) renderHealth();
}

async function loadStatus() {
  const { body } = await api("api/status");
  status = body;
  serverOffset = Date.parse(body.taken_at) - Date.now();
  workers.clear();
  for (const w of body.workers) workers.set(w.name, w);
  renderSummary();
  renderTable();
  renderGraph();
  renderHealth();
  // Strips for the first hundred workers now; the rest as they change.
  await Promise.all(body.workers.slice(0, 100).map((w) => loadHistory(w.name)));
}

let events = null;
let pollTimer = null;
function follow() {
  const live = $("live");
  if (!("EventSource" in window)) return poll();
  events = new EventSource(base + "api/events");
  events.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "pill good";
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    // Events start at the connection: what changed before it is in a fresh status.
    loadStatus().catch((e) => showError(e.message));
  });
  events.addEventListener("status", (e) => {
    try { update(JSON.parse(e.data)); } catch (err) { showError(`bad event: ${err.message}`); }
  });
  events.addEventListener("error", async () => {
    live.textContent = "reconnecting";
    live.className = "pill bad";
    // The stream ends when the orchestrator stops: show where it is.
    try { await loadStatus(); } catch (err) { showError(err.message); }
  });
}
function poll() {
  $("live").textContent = "polling";
  pollTimer = setInterval(() => loadStatus().catch((e) => showError(e.message)), 5000);
}

// Countdowns move every second without asking the server.
setInterval(() => {
  for (const node of document.querySelectorAll(".countdown")) {
    const at = node.getAttribute("data-at");
    if (at) node.textContent = relative(at);
  }
}, 1000);

updateTokenButton();
follow();

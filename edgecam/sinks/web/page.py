"""The browser view's page: the live stream, the status, the controls (threshold, classes,
overlay, pause, snapshot, model), a chart of FPS and frame age over the last minutes, and
counts per label and line. Plain HTML, CSS and JS: no CDN, nothing fetched but this server.
Names that come from the user (labels, lines) are set as text, never as HTML. The threshold
slider's range and step are the schema's (edgecam.config.CONTROLS).

The HTML holds no token and no data (it is served to anyone); AUTH_JS, which every page of the
view includes, keeps the token that ``/?token=`` brought in localStorage (this origin's only:
scheme, host and port) and takes it off the address bar; ``api()`` sends it in a header, and
``ticketed()`` / ``ticketFor()`` + ``withTicket()`` make the URLs of <img>, <video> and links,
which carry a short-lived ticket for their path instead (security.py)."""

from edgecam.config import CONTROL_NAMES
from edgecam.sinks.web.teach_page import TEACH_HTML, TEACH_JS


def _slider(name: str) -> str:
    """``min=".." max=".." step=".."`` of a live control, from the schema."""
    c = CONTROL_NAMES[name]
    lo, hi = c.range or (0, 1)
    return f'min="{lo:g}" max="{hi:g}" step="{c.step or 1:g}"'


AUTH_JS = """
const TOKEN_KEY = "edgecam_token";
(() => {   // /?token=: kept in this origin's storage, taken off the address bar and the history
  const u = new URL(location.href), t = u.searchParams.get("token");
  if (t === null) return;
  try { localStorage.setItem(TOKEN_KEY, t); } catch (e) {}
  u.searchParams.delete("token");
  history.replaceState(history.state, "", u.pathname + u.search + u.hash);
})();
function storedToken() { try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
function api(path, opts = {}) {   // fetch() with the token in a header
  const t = storedToken(), headers = Object.assign({}, opts.headers || {});
  if (t) headers["Authorization"] = "Bearer " + t;
  return fetch(path, Object.assign({cache: "no-store"}, opts, {headers}));
}
async function ticketFor(scope) {   // a ticket for a path, or for every path under a folder ending in /
  if (!storedToken()) return "";
  try {
    const r = await api("/ticket?path=" + encodeURIComponent(scope));
    return r.ok ? (await r.json()).ticket : "";
  } catch (e) { return ""; }
}
function withTicket(path, ticket) {
  return ticket ? path + (path.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(ticket) : path;
}
async function ticketed(path) { return withTicket(path, await ticketFor(path.split("?")[0])); }
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>edgecam</title>
<style>
 body{margin:0;background:#111;color:#ddd;font:15px system-ui,sans-serif;display:flex;flex-wrap:wrap}
 #view{flex:1 1 640px;padding:8px} #view img{width:100%;height:auto;background:#000;display:block}
 #side{flex:0 0 320px;padding:8px 14px} h1{font-size:18px;margin:8px 0 4px}
 table{border-collapse:collapse;width:100%} td{padding:2px 4px;border-bottom:1px solid #333}
 td:first-child{color:#999} .state{font-weight:bold} .bad{color:#f66} select,button,input{font-size:14px}
 ul{padding-left:18px;margin:4px 0} .row{margin:5px 0} #msg{color:#9c9;min-height:1.2em}
 input[type=text]{width:180px} canvas{background:#000;width:100%;height:90px;display:block;margin:3px 0}
 .legend span{margin-right:10px}
</style></head><body>
<div id="view"><img id="stream" alt="live stream">
<a id="tradeoff_link"><img id="tradeoff" alt="the trade-off chart of the last sweep" style="background:#fff;margin-top:8px"></a></div>
<div id="side"><h1>edgecam</h1><a id="review" href="/review" style="color:#9cf">review events, clips and counts</a>
<table>
 <tr><td>status</td><td id="status" class="state">…</td></tr>
 <tr><td>model</td><td id="model"></td></tr>
 <tr><td>camera</td><td id="camera"></td></tr>
 <tr><td>picture</td><td id="picture"></td></tr>
 <tr><td>inference</td><td id="inference"></td></tr>
 <tr><td>latency</td><td id="latency"></td></tr>
 <tr><td>frames</td><td id="frames"></td></tr>
 <tr><td>dropped</td><td id="dropped"></td></tr>
 <tr><td>reconnects</td><td id="reconnects"></td></tr>
 <tr><td>in view</td><td id="objects"></td></tr>
 <tr><td>seen</td><td id="seen"></td></tr>
</table>
<h1>controls</h1>
<div class="row">threshold <input id="threshold" type="range" %THRESHOLD%>
 <span id="threshold_v"></span></div>
<div class="row">classes <input id="classes" type="text" list="labels" placeholder="all (e.g. person, car)">
 <button id="classes_set">apply</button><datalist id="labels"></datalist></div>
<div class="row"><label><input id="overlay" type="checkbox"> overlay</label>
 <label><input id="paused" type="checkbox"> pause</label>
 <button id="snap">save snapshot</button> <a id="download" target="_blank" style="color:#9cf">download</a></div>
<div class="row"><select id="models"><option value="">next model</option></select>
 <button id="switch">switch model</button></div>
<div id="linebox" class="row" hidden>lines <span style="color:#999">X1,Y1,X2,Y2,NAME in fractions;
 click the picture twice to draw a new one</span><div id="lines"></div>
 <input id="newline" type="text" placeholder="new line"> <button id="lines_set">apply lines</button></div>
<div id="msg"></div>
<h1>last minutes</h1>
<canvas id="fps" width="600" height="180"></canvas>
<div class="legend"><span style="color:#4cf">camera FPS</span><span style="color:#fc4">inference FPS</span></div>
<canvas id="age" width="600" height="180"></canvas>
<div class="legend"><span style="color:#f86">latency ms</span><span style="color:#8f8">result age ms</span></div>
<h1>latest</h1><ul id="latest"></ul>
<h1>counts</h1><ul id="counts"></ul>
%TEACH_HTML%
</div>
<script>%AUTH%%TEACH_JS%
const $ = id => document.getElementById(id);
const HISTORY = 300;   // one sample a second: the last five minutes
const hist = {cam: [], inf: [], lat: [], age: []};
const seen = new Set();
let known = "";
function push(name, v) { const a = hist[name]; a.push(Number(v) || 0); if (a.length > HISTORY) a.shift(); }
function chart(canvas, series) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const top = Math.max(1, ...series.flatMap(s => s.values)) * 1.1;
  g.fillStyle = "#888"; g.font = "20px sans-serif"; g.fillText(top.toFixed(top < 10 ? 1 : 0), 4, 20);
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
    s.values.forEach((v, i) => {
      const x = w - (s.values.length - 1 - i) * w / (HISTORY - 1), y = h - v / top * (h - 4);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}
function text(id, t) { $(id).textContent = t; }
function list(id, items) {
  $(id).replaceChildren(...items.map(t => { const li = document.createElement("li"); li.textContent = t; return li; }));
}
function sync(s) {   // the settings in force, unless the person is changing them
  if (document.activeElement !== $("threshold")) { $("threshold").value = s.threshold; }
  text("threshold_v", Number(s.threshold).toFixed(2));
  if (document.activeElement !== $("classes")) { $("classes").value = (s.classes || []).join(", "); }
  $("overlay").checked = !!s.overlay; $("paused").checked = !!s.paused;
}
function labels(s) {
  const latest = s.latest || {};
  for (const d of (latest.detections || []).concat(latest.classes || [])) seen.add(d.label);
  for (const k of Object.keys((s.tracking || {}).seen || {})) seen.add(k);
  if ($("labels").children.length !== seen.size) {
    $("labels").replaceChildren(...[...seen].sort().map(l => { const o = document.createElement("option"); o.value = l; return o; }));
  }
}
function models(s) {
  const names = (s.models || []).join(",");
  if (names === known) return;
  known = names;
  const opts = [new Option("next model", "")].concat((s.models || []).map(n => new Option(n, n)));
  $("models").replaceChildren(...opts);
}
async function tick() {
  try {
    const r = await api("/status");
    if (r.status === 401) {
      text("status", storedToken() ? "this browser's token is refused: open the URL edgecam logged"
                                   : "the token is needed: open the URL edgecam logged");
      $("status").className = "state bad"; return;
    }
    const s = await r.json();
    text("status", s.status + (s.paused ? " (paused)" : ""));
    $("status").className = "state" + (s.status === "running" ? "" : " bad");
    text("model", s.model ? `${s.model}  (${s.input_px}px, rho ${s.rho})` : "");
    text("camera", `${s.camera_fps} FPS`);
    text("picture", img.naturalWidth ? `${img.naturalWidth}x${img.naturalHeight}` : "no picture yet");
    text("inference", `${s.inference_fps} FPS, ${s.inference_ms ?? "-"} ms`);
    text("latency", `${s.latency_ms} ms (result ${s.result_age_ms} ms old)`);
    text("frames", `${s.frames} captured, ${s.results} inferred`);
    text("dropped", `${s.dropped} not shown, ${s.not_inferred} not inferred`);
    text("reconnects", s.reconnects);
    push("cam", s.camera_fps); push("inf", s.inference_fps); push("lat", s.latency_ms); push("age", s.result_age_ms);
    chart($("fps"), [{values: hist.cam, color: "#4cf"}, {values: hist.inf, color: "#fc4"}]);
    chart($("age"), [{values: hist.lat, color: "#f86"}, {values: hist.age, color: "#8f8"}]);
    sync(s); labels(s); models(s);
    const latest = s.latest || {};
    const items = (latest.detections || []).map(d => `${d.label}${d.id ? " #" + d.id : ""} ${(d.score * 100).toFixed(0)}%`)
      .concat((latest.classes || []).map(c => `${c.label} ${(c.score * 100).toFixed(1)}%`));
    list("latest", items.length ? items : ["nothing"]);
    tracking(s.tracking); lines(s.tracking);
  } catch (e) {
    text("status", "no connection"); $("status").className = "state bad";
  }
}
function lines(t) {   // the counting lines, editable, unless the person is editing them
  $("linebox").hidden = !t;
  const specs = (t && t.lines) || [], box = $("lines");
  if (box.contains(document.activeElement) || box.dataset.specs === specs.join("|")) return;
  box.dataset.specs = specs.join("|");
  box.replaceChildren(...specs.map(v => { const i = document.createElement("input"); i.type = "text"; i.value = v; return i; }));
}
let clicks = [];
function tracking(t) {  // objects per label and line/zone counts (names are the user's: text only)
  const per = o => Object.entries(o || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  text("objects", t ? per(t.in_view) : "tracking off"); text("seen", t ? per(t.seen) + " since the start" : "");
  const today = (t && t.today) || null, day = n => today ? (today[n] || {}) : null;
  list("counts", Object.entries(t ? t.counts : {}).map(([name, c]) => "in" in c
    ? `${name}: in ${c.in}, out ${c.out}` + (today ? `; today in ${day(name).in || 0}, out ${day(name).out || 0}` : "")
    : `${name}: ${c.inside} inside, ${c.entered} entered` + (today ? `; today ${day(name).entered || 0}` : "")));
}
async function post(path, body) {
  try {
    const r = await api(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const t = await r.text();
    let m = t.trim();
    try { const j = JSON.parse(t); m = j.message || m; } catch (e) {}
    text("msg", r.ok ? m : `refused (${r.status}): ${m}`);
    $("msg").className = r.ok ? "" : "bad";
  } catch (e) { text("msg", "no connection"); }
  tick();
}
const set = (key, value) => post("/set", {key, value});
$("threshold").onchange = () => set("postprocess.threshold", Number($("threshold").value));
$("threshold").oninput = () => text("threshold_v", Number($("threshold").value).toFixed(2));
$("classes_set").onclick = () => set("postprocess.classes", $("classes").value.split(",").map(x => x.trim()).filter(x => x));
$("overlay").onchange = () => set("overlay.enabled", $("overlay").checked);
$("paused").onchange = () => set("paused", $("paused").checked);
$("snap").onclick = () => post("/snapshot", {});
$("switch").onclick = () => post("/model", {model: $("models").value});
$("lines_set").onclick = () => {
  set("rules.lines", [...document.querySelectorAll("#lines input"), $("newline")].map(i => i.value.trim()).filter(v => v));
  $("newline").value = "";
};
const img = $("stream");
img.onclick = e => {
  if ($("linebox").hidden) return;
  const r = img.getBoundingClientRect();
  clicks.push(((e.clientX - r.left) / r.width).toFixed(3), ((e.clientY - r.top) / r.height).toFixed(3));
  if (clicks.length === 4) {
    $("newline").value = clicks.join(",") + ",line" + (document.querySelectorAll("#lines input").length + 1);
    clicks = []; text("msg", "new line drawn: apply lines to count with it");
  } else { text("msg", "click the line's second point"); }
};
async function stream() { const u = await ticketed("/stream.mjpg"); img.src = u + (u.includes("?") ? "&" : "?") + "t=" + Date.now(); }
img.onerror = () => setTimeout(stream, 2000);
async function links() {   // tickets expire: the links get fresh ones every minute
  $("download").href = await ticketed("/snapshot.jpg"); $("tradeoff_link").href = await ticketed("/tradeoff.svg");
}
stream(); ticketed("/tradeoff.svg").then(u => { $("tradeoff").src = u; });
links(); setInterval(links, 60000);
tick(); setInterval(tick, 1000);
examples().then(t => {   // a taught set (--teach): teach from the latest result's detections
  if (!t || !t.set) return;
  const b = document.createElement("button");
  b.id = "teach_now"; b.textContent = "teach from the detections now"; b.onclick = liveTeach;
  $("teach").insertBefore(b, $("teach_live"));
});
</script></body></html>
""".replace("%THRESHOLD%", _slider("threshold")).replace("%AUTH%", AUTH_JS).replace(
    "%TEACH_HTML%", TEACH_HTML).replace("%TEACH_JS%", TEACH_JS).encode()

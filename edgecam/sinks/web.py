"""The browser view: a small HTTP server (standard library only) for a Pi without a screen.

  GET  /              a page: the live annotated stream, FPS, latency, model, latest results,
                      and the model switch
  GET  /stream.mjpg   the annotated frames as MJPEG (multipart/x-mixed-replace)
  GET  /status        the live state as JSON (LiveState.snapshot())
  GET  /snapshot.jpg  the latest annotated frame
  GET  /tradeoff.svg  the α/ρ trade-off chart of the last `edgecam bench --models` sweep
  POST /model         switch the model: body ``name=v1_ssd`` (or JSON {"model": ...}), or
                      empty for the next one; it reaches the live runner as an intent

The runner only hands over a reference to each drawn frame (publish() is O(1)); the viewers'
own threads encode it, once per frame whoever watches, and only when someone asks for it.
Those HTTP threads are the one place outside edgecam/pipeline/ where edgecam runs threads."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple
from urllib.parse import parse_qs

import cv2
import numpy as np

from edgecam.config import parse_address
from edgecam.errors import OutputError
from edgecam.sinks.base import MODEL, NEXT_MODEL, FrameInfo, Intent, Sink
from edgecam.tradeoff import tradeoff_svg

log = logging.getLogger("edgecam.web")
BOUNDARY = "edgecamframe"
QUALITY = 80


class WebView(Sink):
    def __init__(self, address: str):
        host, port = parse_address(address)
        self._cond = threading.Condition()
        self._image: Optional[np.ndarray] = None
        self._seq = 0                                  # frames published
        self._jpeg: Tuple[int, bytes] = (0, b"")       # (seq, bytes) of the last encoded frame
        self._encode_lock = threading.Lock()
        self._status: dict = {}
        self._request: Optional[str] = None
        self._closed = False
        self.viewers = 0
        self.encoded = 0
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            reason = "the port is already in use" if exc.errno == 98 else (exc.strerror or str(exc))
            raise OutputError(f"cannot serve the browser view on {host}:{port}: {reason} "
                              f"(choose another with --web HOST:PORT)") from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edgecam-web", daemon=True)
        self._thread.start()
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        log.info("browser view: http://%s:%d/", socket.gethostname() if host in ("0.0.0.0", "::") else shown,
                 self.port)

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}:{self.port}/"

    # the runner's side --------------------------------------------------------------------------
    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.publish(image, info.status())

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        self.publish(image, info.status())

    def intents(self) -> List[Intent]:
        request = self.take_request()
        if request is None:
            return []
        return [Intent(MODEL, request) if request else Intent(NEXT_MODEL)]

    def publish(self, image: Optional[np.ndarray], status: dict) -> None:
        """The latest drawn frame (None: no new picture) and status. Never blocks on viewers."""
        with self._cond:
            self._status = status
            if image is not None:
                self._image = image
                self._seq += 1
                self._cond.notify_all()

    def take_request(self) -> Optional[str]:
        with self._cond:
            request, self._request = self._request, None
            return request

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)

    # the viewers' side --------------------------------------------------------------------------
    def jpeg(self) -> Tuple[int, bytes]:
        """The newest frame as JPEG, encoded at most once per frame whoever asks."""
        with self._encode_lock:
            with self._cond:
                seq, image = self._seq, self._image
            if image is not None and self._jpeg[0] != seq:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
                if ok:
                    self._jpeg = (seq, buf.tobytes())
                    self.encoded += 1
            return self._jpeg

    def wait_frame(self, after: int, timeout: float = 1.0) -> Optional[int]:
        """Wait for a frame newer than ``after``; its number, or None when closing."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed, timeout)
            return None if self._closed else self._seq

    def status(self) -> bytes:
        with self._cond:
            status = dict(self._status, web={"viewers": self.viewers, "published": self._seq,
                                             "encoded": self.encoded})
        return json.dumps(status).encode()

    def viewer(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta

    def request_model(self, name: str) -> None:
        with self._cond:
            self._request = name


class _Handler(BaseHTTPRequestHandler):
    view: WebView             # set per server by _handler()

    server_version = "edgecam"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            elif path == "/status":
                self._send(200, "application/json", self.view.status())
            elif path == "/snapshot.jpg":
                seq, jpeg = self.view.jpeg()
                if not jpeg:
                    self._send(503, "text/plain", b"no frame yet\n")
                else:
                    self._send(200, "image/jpeg", jpeg)
            elif path == "/stream.mjpg":
                self._stream()
            elif path == "/tradeoff.svg":
                self._send(200, "image/svg+xml", tradeoff_svg())
            else:
                self._send(404, "text/plain", b"not found\n")
        except (ConnectionError, TimeoutError, OSError):
            pass   # the viewer went away: nothing else is disturbed

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/model":
            self._send(404, "text/plain", b"not found\n")
            return
        length = min(int(self.headers.get("Content-Length") or 0), 4096)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        name = ""
        if body.lstrip().startswith("{"):
            try:
                name = str(json.loads(body).get("model") or "")
            except (ValueError, AttributeError):
                self._send(400, "application/json", b'{"error": "bad JSON"}')
                return
        elif body:
            name = (parse_qs(body).get("name") or parse_qs(body).get("model") or [""])[0]
        self.view.request_model(name.strip())
        self._send(202, "application/json", json.dumps({"requested": name or "next"}).encode())

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.view.viewer(+1)
        try:
            seen = 0
            while True:   # the newest frame each time: a slow viewer skips, nobody waits for it
                seq, jpeg = self.view.jpeg()
                if jpeg and seq > seen:
                    seen = seq
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    self.wfile.flush()
                if self.view.wait_frame(seen) is None:
                    return
        finally:
            self.view.viewer(-1)


def _handler(view: WebView) -> type:
    """A request handler class bound to ``view``."""
    return type("Handler", (_Handler,), {"view": view})


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>edgecam</title>
<style>
 body{margin:0;background:#111;color:#ddd;font:15px system-ui,sans-serif;display:flex;flex-wrap:wrap}
 #view{flex:1 1 640px;padding:8px} #view img{width:100%;height:auto;background:#000;display:block}
 #side{flex:0 0 300px;padding:8px 14px} h1{font-size:18px;margin:6px 0}
 table{border-collapse:collapse;width:100%} td{padding:2px 4px;border-bottom:1px solid #333}
 td:first-child{color:#999} .state{font-weight:bold} .bad{color:#f66} select,button{font-size:14px}
 ul{padding-left:18px;margin:4px 0}
</style></head><body>
<div id="view"><img id="stream" src="/stream.mjpg" alt="live stream">
<a href="/tradeoff.svg"><img id="tradeoff" src="/tradeoff.svg" alt="the trade-off chart of the last sweep" style="background:#fff;margin-top:8px"></a></div>
<div id="side"><h1>edgecam</h1>
<table>
 <tr><td>status</td><td id="status" class="state">…</td></tr>
 <tr><td>model</td><td id="model"></td></tr>
 <tr><td>camera</td><td id="camera"></td></tr>
 <tr><td>inference</td><td id="inference"></td></tr>
 <tr><td>latency</td><td id="latency"></td></tr>
 <tr><td>frames</td><td id="frames"></td></tr>
 <tr><td>dropped</td><td id="dropped"></td></tr>
 <tr><td>reconnects</td><td id="reconnects"></td></tr>
 <tr><td>objects</td><td id="objects"></td></tr>
</table>
<p><select id="models"><option value="">next model</option></select>
<button id="switch">switch model</button></p>
<h1>latest</h1><ul id="latest"></ul>
<h1>counts</h1><ul id="counts"></ul>
</div>
<script>
const $ = id => document.getElementById(id);
let known = "";
async function tick() {
  try {
    const s = await (await fetch("/status", {cache: "no-store"})).json();
    $("status").textContent = s.status + (s.paused ? " (paused)" : "");
    $("status").className = "state" + (s.status === "running" ? "" : " bad");
    $("model").textContent = s.model ? `${s.model}  (${s.input_px}px, rho ${s.rho})` : "";
    $("camera").textContent = `${s.camera_fps} FPS`;
    $("inference").textContent = `${s.inference_fps} FPS, ${s.inference_ms ?? "-"} ms`;
    $("latency").textContent = `${s.latency_ms} ms (result ${s.result_age_ms} ms old)`;
    $("frames").textContent = `${s.frames} captured, ${s.results} inferred`;
    $("dropped").textContent = `${s.dropped} not shown, ${s.not_inferred} not inferred`;
    $("reconnects").textContent = s.reconnects;
    const names = (s.models || []).join(",");
    if (names !== known) {
      known = names;
      $("models").innerHTML = '<option value="">next model</option>' +
        (s.models || []).map(n => `<option>${n}</option>`).join("");
    }
    const latest = s.latest || {};
    const items = (latest.detections || []).map(d => `${d.label}${d.id ? " #" + d.id : ""} ${(d.score * 100).toFixed(0)}%`)
      .concat((latest.classes || []).map(c => `${c.label} ${(c.score * 100).toFixed(1)}%`));
    $("latest").innerHTML = items.length ? items.map(t => `<li>${t}</li>`).join("") : "<li>nothing</li>";
    tracking(s.tracking);
  } catch (e) {
    $("status").textContent = "no connection"; $("status").className = "state bad";
  }
}
function tracking(t) {  // objects per label and line/zone counts (names are the user's: text only)
  $("objects").textContent = t ? Object.entries(t.objects).map(([k, v]) => `${k} ${v}`).join(", ") || "none" : "tracking off";
  const ul = $("counts");
  ul.replaceChildren(...Object.entries(t ? t.counts : {}).map(([name, c]) => {
    const li = document.createElement("li");
    li.textContent = "in" in c ? `${name}: in ${c.in}, out ${c.out}` : `${name}: ${c.inside} inside, ${c.entered} entered`;
    return li;
  }));
}
$("switch").onclick = () => fetch("/model", {method: "POST",
  headers: {"Content-Type": "application/x-www-form-urlencoded"},
  body: "name=" + encodeURIComponent($("models").value)});
const img = $("stream");
img.onerror = () => setTimeout(() => { img.src = "/stream.mjpg?" + Date.now(); }, 1000);
tick(); setInterval(tick, 1000);
</script></body></html>
"""

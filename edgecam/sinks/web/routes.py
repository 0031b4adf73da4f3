"""What the browser view answers (each request is checked by the Guard first):

  GET  /              the page: stream, status, controls, chart (edgecam/sinks/web/page.py);
                      a shell served to anyone (``pages``), its data fetched with the token
  GET  /ticket?path=P a ticket for P's <img>/<video>/link URLs: {"ticket", "expires_s"}
  GET  /stream.mjpg   the annotated frames as MJPEG (at most output.web_max_viewers at once)
  GET  /status        the live state as JSON, with the settings in force
  GET  /snapshot.jpg  the latest annotated frame
  GET  /metrics       Prometheus metrics (edgecam/sinks/web/metrics.py)
  GET  /tradeoff.svg  the α/ρ trade-off chart of the last `edgecam bench --models` sweep
  GET  /review, /api/events, /api/counts, /api/clips/ID ...   the history (edgecam/sinks/web/review.py)
  GET  /api/teach ..., POST /api/teach, /api/teach/remove   teaching (edgecam/sinks/web/teach.py)
  POST /set           {"key": "postprocess.threshold", "value": 0.6}: a live control
                      (edgecam.config.CONTROLS, by key or short name), through the run's tuning
  POST /model         {"model": "v1_ssd"} ({} for the next provisioned one)
  POST /snapshot      {}: save the picture on screen on the device (output.snapshot_dir)

How a route is authenticated (security.py): every GET but a page's shell needs the token in a
header (``Authorization: Bearer``, which the page's ``api()`` adds) or, for what a browser
fetches by URL, a ticket in ``?ticket=`` (the page's ``ticketed()``); every POST needs the
token in a header. A new GET route needs nothing more than its entry in ``gets``; a new page
is a shell in ``pages`` that includes page.AUTH_JS.

A POST waits (at most ANSWER_S) for the runner to say what it did, and answers
``{"done", "message", "value"}``: 200 done (``value``: what is in force now), 400 refused (the
sentence says why; ``value``: what stays in force), 504 no answer in time."""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from edgecam.bounds import show
from edgecam.sinks.base import NEXT_MODEL, SET, SNAPSHOT, Intent
from edgecam.sinks.web.page import PAGE
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.sinks.web.review import Review
from edgecam.sinks.web.security import CLEAR_COOKIE, TICKET_PATH, TICKET_S, Guard, has_old_cookie
from edgecam.sinks.web.server import Reply
from edgecam.sinks.web.teach import Teach
from edgecam.tradeoff import tradeoff_svg

ANSWER_S = 10.0       # how long a POST waits for the runner's answer
MAX_PENDING = 16      # intents not yet taken by the runner
JSON = "application/json"
MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")   # a catalogue name (echoed to the log)
TICKET_SCOPE = re.compile(r"/[A-Za-z0-9_.~/-]{0,255}")   # what a ticket may name
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'unsafe-inline'; "
                "script-src 'unsafe-inline'; frame-ancestors 'none'", "X-Frame-Options": "DENY"}
BOUNDARY = "edgecamframe"
STREAM_HEAD = (f"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n"
               f"Cache-Control: no-store\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n").encode()


class Controls:
    """Intents from the browser, waiting for the runner (bounded), each told its outcome."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: Deque[Intent] = deque()

    def take(self) -> List[Intent]:
        with self._lock:
            out, self._pending = list(self._pending), deque()
        return out

    def ask(self, kind: str, **fields) -> Optional[Tuple[bool, str, Any]]:
        """Hand an intent to the runner and wait for its answer; None: not answered in time.
        Raises OverflowError when too many are waiting."""
        done = threading.Event()
        answer: List[Tuple[bool, str, Any]] = []

        def reply(ok: bool, why: str, value: Any = None) -> None:
            answer.append((ok, why, value))
            done.set()

        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                raise OverflowError
            self._pending.append(Intent(kind, reply=reply, **fields))
        done.wait(ANSWER_S)
        return answer[0] if answer else None


class Routes:
    def __init__(self, view, guard: Guard, controls: Controls, metrics=None, history=None,
                 teach: Optional[Teach] = None):
        self.view, self.guard, self.controls, self.metrics = view, guard, controls, metrics
        self.review = Review(history)
        self.teach = teach or Teach(None, 0.0, history, lambda: (None, None))
        self.gets: Dict[str, Callable[[Request], Reply]] = {
            "/": self.page, "/index.html": self.page, "/status": self.status, "/snapshot.jpg": self.snapshot,
            "/stream.mjpg": self.stream, "/metrics": self.prometheus, "/tradeoff.svg": self.tradeoff,
            TICKET_PATH: self.ticket, "/review": self.review_page}
        self.pages = {"/", "/index.html", "/review"}        # shells served to anyone: they hold no data
        self.posts: Dict[str, Callable[[Request], Reply]] = {
            "/set": self.set, "/model": self.model, "/snapshot": self.save}

    def handle(self, req: Request) -> Reply:
        write = req.method == "POST"
        if req.method not in ("GET", "POST"):
            return Reply(response(405, body=b"GET or POST only\n", headers={"Allow": "GET, POST"}))
        refusal = self.guard.refusal(req, write, page=not write and req.path in self.pages)
        if refusal is not None:
            return Reply(refusal)
        route = (self.posts if write else self.gets).get(req.path)
        if route is None and self.teach.handles(req.path):
            return self.teach_post(req) if write else self.teach.get(req)
        if route is None and not write and self.review.handles(req.path):
            return self.review.handle(req)
        if route is None:
            return Reply(text(404, "not found"))
        return route(req)

    # -- reading ----------------------------------------------------------------------------
    def page(self, req: Request) -> Reply:
        return page_reply(req, PAGE)

    def review_page(self, req: Request) -> Reply:
        return page_reply(req, self.review.page_html())

    def ticket(self, req: Request) -> Reply:
        scope = req.query.get("path", "")
        if not TICKET_SCOPE.fullmatch(scope) or "/../" in scope + "/":
            return Reply(text(400, "ask for a ticket with ?path=/stream.mjpg (a path, or a folder ending in /)"))
        if not self.guard.has_token(req):       # a ticket never gets a ticket; nor does a public viewer
            return Reply(text(401, "a ticket needs the token: send Authorization: Bearer TOKEN"))
        body = {"ticket": self.guard.ticket(scope), "expires_s": TICKET_S}
        return Reply(response(200, JSON, json.dumps(body).encode()))

    def status(self, req: Request) -> Reply:
        return Reply(response(200, JSON, json.dumps(self.view.status()).encode()))

    def snapshot(self, req: Request) -> Reply:
        _, jpeg = self.view.jpeg()
        return Reply(response(200, "image/jpeg", jpeg) if jpeg else text(503, "no frame yet"))

    def stream(self, req: Request) -> Reply:
        return Reply(STREAM_HEAD, stream=True, trusted=self.guard.authenticated(req))

    def prometheus(self, req: Request) -> Reply:
        if self.metrics is None:
            return Reply(text(501, "metrics need prometheus_client: pip install 'edgecam[metrics]'"))
        ctype, body = self.metrics.exposition()
        return Reply(response(200, ctype, body))

    def tradeoff(self, req: Request) -> Reply:
        return Reply(response(200, "image/svg+xml", tradeoff_svg()))

    # -- changing ---------------------------------------------------------------------------
    def set(self, req: Request) -> Reply:
        body = _json_object(req)
        if isinstance(body, Reply):
            return body
        if set(body) != {"key", "value"} or not isinstance(body["key"], str):
            return Reply(text(400, 'send {"key": "postprocess.threshold", "value": 0.6}'))
        return self._ask(SET, key=body["key"], value=body["value"])

    def model(self, req: Request) -> Reply:
        body = _json_object(req)
        if isinstance(body, Reply):
            return body
        name = body.get("model") or ""
        if not isinstance(name, str) or name.strip() and not MODEL_NAME.fullmatch(name.strip()):
            return Reply(text(400, 'send {"model": "NAME"} with a catalogue name, or {} for the next model'))
        # a model by name is the live setting model.name, answered as /set answers it
        return self._ask(SET, key="model.name", value=name.strip()) if name.strip() else self._ask(NEXT_MODEL)

    def save(self, req: Request) -> Reply:
        body = _json_object(req)
        return body if isinstance(body, Reply) else self._ask(SNAPSHOT)

    def teach_post(self, req: Request) -> Reply:
        body = _json_object(req)
        return body if isinstance(body, Reply) else self.teach.post(req, body)

    def _ask(self, kind: str, **fields) -> Reply:
        try:
            answer = self.controls.ask(kind, **fields)
        except OverflowError:
            return Reply(text(503, "busy: too many changes waiting"))
        if answer is None:   # the output loop is stuck (its watchdog says so): nothing is known
            return Reply(response(504, JSON, json.dumps({"done": None, "value": None, "message":
                                  f"no answer from the runner in {ANSWER_S:g} s: /status shows what is in force"}
                                  ).encode()))
        done, why, value = answer
        body = {"done": done, "message": why, "value": value}
        return Reply(response(200 if done else 400, JSON, json.dumps(body, default=str).encode()))


def page_reply(req: Request, html: bytes) -> Reply:
    """A page's shell, clearing the cookie older versions set (it went to every port)."""
    headers = dict(PAGE_HEADERS, **({"Set-Cookie": CLEAR_COOKIE} if has_old_cookie(req) else {}))
    return Reply(response(200, "text/html; charset=utf-8", html, headers=headers))


def _json_object(req: Request) -> Any:
    """The request's JSON object, or the Reply that refuses it (400, one sentence)."""
    try:
        value = json.loads(req.body.decode("utf-8")) if req.body.strip() else {}
    except (ValueError, RecursionError) as exc:   # a 2000-deep array is a RecursionError
        why = "it is nested too deeply" if isinstance(exc, RecursionError) else show(str(exc), 60)
        return Reply(text(400, f"the body is not valid JSON: {why}"))
    if not isinstance(value, dict):
        return Reply(text(400, "the body must be a JSON object"))
    return value

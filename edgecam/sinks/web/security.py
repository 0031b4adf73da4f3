"""Who may watch the browser view and who may change what it runs.

- ``Host`` must name this machine: the address the client connected to, the bound address,
  localhost, the machine's own name (and NAME.local), or a name in output.web_hosts. A page
  on another site that rebinds its DNS name to this machine sends its own name: refused.
- Changes are POSTs with a JSON body (a cross-site form cannot send one without a CORS
  preflight, which is never granted), and an ``Origin``, ``Referer`` or ``Sec-Fetch-Site``
  that names another site is refused (403), on any address.
- The token: needed for every change when the view is bound off loopback (whoever asks,
  127.0.0.1 included) or when one was configured; needed to watch off loopback unless
  output.web_public_view. It comes only in a header, ``Authorization: Bearer``,
  ``X-Edgecam-Token`` or ``Authorization: Basic`` as the password (for cameras in Home
  Assistant, which speak only that): never in a cookie (a browser sends a host's cookies to every port of
  it, where other servers run), never in a URL but the page's own (``/?token=``, which the
  page keeps in its origin's localStorage and takes off the address bar; the page itself, a
  shell holding no data, is served to anyone). Compared in constant time; never echoed.
- Tickets, for what a browser fetches without headers (``<img>``, ``<video>``, links): a GET
  of ``PATH?ticket=EXPIRY.SIGNATURE``, the signature an HMAC of the path and the expiry (unix
  seconds, at most TICKET_S ahead) with a key derived from the token. ``GET /ticket?path=P``
  (with the token in a header) gives one for P, or for every path under P when P ends with
  ``/``. A ticket lets its path be read until it expires; it changes nothing and gets no
  ticket. Old ``edgecam_token`` cookies are cleared when the page is opened."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from edgecam.bounds import os_reason, path_text
from edgecam.config import TOKEN_CHARS
from edgecam.errors import OutputError
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.statedir import state_dir

log = logging.getLogger("edgecam.web")
OLD_COOKIE = "edgecam_token"      # set by versions before issue 22; cleared, never read
CLEAR_COOKIE = f"{OLD_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
TICKET_S = 300                    # a ticket's life (the page asks for a new one when a URL fails)
TICKET_PATH = "/ticket"
MAX_SCOPES = 8                    # the path and its parent folders a ticket may name
TOKEN_FILE = "web-token"
SAME = ("same-origin", "none", "")
WRONG_HOST = text(403, "this server does not answer to that Host name (see output.web_hosts)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(configured: Optional[str]) -> Tuple[str, Optional[Path]]:
    """The token, and the file it was just generated into (None: configured, or generated before)."""
    if configured:
        return configured, None
    path = state_dir() / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
        if re.fullmatch(TOKEN_CHARS, token):
            return token, None
        log.warning("browser view: %s holds no valid token: generating a new one", path_text(path))
        path.unlink()
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"cannot read the browser view's token {path_text(path)}: "
                          f"{os_reason(exc) if isinstance(exc, OSError) else 'not text'}") from None
    token = secrets.token_urlsafe(24)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    except OSError as exc:
        raise OutputError(f"cannot store the browser view's token in {path_text(path)}: {os_reason(exc)} "
                          f"(give one with --web-token, or set EDGECAM_STATE_DIR)") from None
    return token, path


class Guard:
    """The checks of one server. ``token`` None: no token anywhere (output.web_auth none)."""

    def __init__(self, host: str, token: Optional[str], writes_need_token: bool, views_need_token: bool,
                 names: Iterable[str] = ()):
        self.token = token.encode() if token else None
        self.ticket_key = hmac.new(token.encode(), b"edgecam ticket key 1", hashlib.sha256).digest() if token else b""
        self.writes_need_token = bool(token) and writes_need_token
        self.views_need_token = bool(token) and views_need_token
        own = socket.gethostname().lower()
        self.names = {"localhost", "127.0.0.1", "::1", own, own + ".local"}
        if host not in ("0.0.0.0", "::"):
            self.names.add(host.lower())
        self.names |= {n.lower() for n in names}

    def host_ok(self, req: Request) -> bool:
        name = _host_name(req.header("host").lower())
        return name in self.names or name == str(req.local[0]).lower()

    def same_site(self, req: Request) -> bool:
        host = req.header("host").lower()
        if req.header("sec-fetch-site").lower() not in SAME:
            return False
        origin = req.header("origin")
        if origin:
            return _netloc(origin) == host
        referer = req.header("referer")
        return not referer or _netloc(referer) == host

    def has_token(self, req: Request) -> bool:
        """The token in a header (True when there is no token at all)."""
        if self.token is None:
            return True
        auth = req.header("authorization")
        offered = [auth[7:].strip() if auth[:7].lower() == "bearer " else "", req.header("x-edgecam-token"),
                   _basic_password(auth)]
        return any(o and self._is_token(o) for o in offered)

    def _is_token(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode("utf-8", "replace"), self.token)

    def authenticated(self, req: Request) -> bool:
        """The token in a header, or a GET with a ticket for its path."""
        return self.has_token(req) or req.method == "GET" and req.path != TICKET_PATH and self.ticket_ok(req)

    def refusal(self, req: Request, write: bool, page: bool = False) -> Optional[bytes]:
        """The answer that refuses ``req`` (None: it may go on). ``page``: a page's shell, served
        to anyone; its ``?token=``, when given, must be the token."""
        if not self.host_ok(req):
            return WRONG_HOST
        if write and not self.same_site(req):
            return text(403, "refused: the request comes from another site")
        if page and "token" in req.query and self.token is not None and not self._is_token(req.query["token"]):
            return UNAUTHORIZED
        needed = self.writes_need_token if write else self.views_need_token and not page
        if needed and not (self.has_token(req) if write else self.authenticated(req)):
            return UNAUTHORIZED
        if write and req.header("content-type").split(";")[0].strip().lower() != "application/json":
            return text(415, "changes are POSTed as JSON (Content-Type: application/json)")
        return None

    # -- tickets ------------------------------------------------------------------------------
    def ticket(self, scope: str, now: Optional[float] = None) -> str:
        """A ticket for ``scope`` (a path, or every path under a folder ending in ``/``); "" when
        there is no token (nothing needs one)."""
        if self.token is None:
            return ""
        expiry = int(time.time() if now is None else now) + TICKET_S
        return f"{expiry}.{self._sign(scope, expiry)}"

    def ticket_ok(self, req: Request) -> bool:
        expiry, _, signature = req.query.get("ticket", "").partition(".")
        if self.token is None or not (expiry.isdigit() and len(expiry) <= 12 and signature):
            return False
        now = time.time()
        if not now <= int(expiry) <= now + TICKET_S + 1:
            return False
        return any(hmac.compare_digest(signature.encode("ascii", "replace"), self._sign(s, int(expiry)).encode())
                   for s in scopes(req.path))

    def _sign(self, scope: str, expiry: int) -> str:
        mac = hmac.new(self.ticket_key, f"{scope}\n{expiry}".encode("utf-8", "replace"), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")


UNAUTHORIZED = response(401, body=b"the token is needed: open the URL edgecam logged at its first start, "
                                  b"or send Authorization: Bearer TOKEN\n",
                        headers={"WWW-Authenticate": 'Bearer realm="edgecam"'})


def scopes(path: str) -> List[str]:
    """What a ticket for ``path`` may name: the path, then its folders (``/a/b/``, ``/a/``), never ``/``."""
    out = [path]
    cut = path.rfind("/", 0, len(path) - 1 if path.endswith("/") else len(path))
    while cut > 0 and len(out) < MAX_SCOPES:
        out.append(path[:cut + 1])
        cut = path.rfind("/", 0, cut)
    return out


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return "?"


def _basic_password(auth: str) -> str:
    if auth[:6].lower() != "basic ":
        return ""
    try:
        return base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")[2]
    except (ValueError, UnicodeDecodeError):
        return ""


def has_old_cookie(req: Request) -> bool:
    return any(part.strip().partition("=")[0] == OLD_COOKIE for part in req.header("cookie").split(";"))

"""Who may watch the browser view and who may change what it runs.

- ``Host`` must name this machine: the address the client connected to, the bound address,
  localhost, the machine's own name (and NAME.local), or a name in output.web_hosts. A page
  on another site that rebinds its DNS name to this machine sends its own name: refused.
- Changes are POSTs with a JSON body (a cross-site form cannot send one without a CORS
  preflight, which is never granted), and an ``Origin``, ``Referer`` or ``Sec-Fetch-Site``
  that names another site is refused (403), on any address.
- The token: needed for every change when the view is bound off loopback (whoever asks,
  127.0.0.1 included) or when one was configured; needed to watch off loopback unless
  output.web_public_view. It comes as ``Authorization: Bearer``, ``X-Edgecam-Token``, the
  ``edgecam_token`` cookie (set, HttpOnly and SameSite=Strict, when the page is opened with
  ``?token=``), or ``?token=`` itself. Compared in constant time; never echoed anywhere."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Iterable, Optional, Tuple
from urllib.parse import urlsplit

from edgecam.bounds import os_reason, path_text
from edgecam.config import TOKEN_CHARS
from edgecam.errors import OutputError
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.statedir import state_dir

log = logging.getLogger("edgecam.web")
COOKIE = "edgecam_token"
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
        if self.token is None:
            return True
        auth = req.header("authorization")
        offered = [auth[7:].strip() if auth[:7].lower() == "bearer " else "", req.header("x-edgecam-token"),
                   _cookie(req.header("cookie")), req.query.get("token", "")]
        return any(o and hmac.compare_digest(o.encode("utf-8", "replace"), self.token) for o in offered)

    def refusal(self, req: Request, write: bool) -> Optional[bytes]:
        """The answer that refuses ``req`` (None: it may go on)."""
        if not self.host_ok(req):
            return WRONG_HOST
        if write and not self.same_site(req):
            return text(403, "refused: the request comes from another site")
        if (write and self.writes_need_token or not write and self.views_need_token) and not self.has_token(req):
            return response(401, body=b"the token is needed: open the URL edgecam logged at its first start, "
                                      b"or send Authorization: Bearer TOKEN\n",
                            headers={"WWW-Authenticate": 'Bearer realm="edgecam"'})
        if write and req.header("content-type").split(";")[0].strip().lower() != "application/json":
            return text(415, "changes are POSTed as JSON (Content-Type: application/json)")
        return None

    def login(self, req: Request) -> Optional[bytes]:
        """``/?token=...`` with the right token: a redirect that stores it in a cookie."""
        if self.token is None or "token" not in req.query or not self.has_token(req):
            return None
        cookie = f"{COOKIE}={req.query['token']}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"
        return response(303, headers={"Location": req.path, "Set-Cookie": cookie})


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return "?"


def _cookie(header: str) -> str:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""

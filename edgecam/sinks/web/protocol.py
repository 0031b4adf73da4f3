"""HTTP/1.1 for the browser view, as little of it as it needs, all of it bounded: one request
per connection (every answer says ``Connection: close``), a head of at most MAX_HEAD bytes and
MAX_HEADERS lines, a body only with a plain Content-Length of at most MAX_BODY (no chunked
bodies), and a 4xx answer (never a traceback) for anything else."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Dict, Iterable, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 16 * 1024        # request line and headers
MAX_HEADERS = 64
MAX_TARGET = 4096           # the request target (path and query)
MAX_BODY = 16 * 1024        # a POST body: a JSON object of a few settings
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")


class BadRequest(Exception):
    """A request answered with ``code`` and one sentence, then closed."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code, self.text = code, text


@dataclass
class Request:
    method: str
    target: str
    headers: Dict[str, str]                   # lower-case names
    body: bytes = b""
    local: Tuple[str, int] = ("", 0)          # the address the client connected to
    peer: Tuple[str, int] = ("", 0)
    path: str = field(init=False)
    query: Dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        self.query = {k: v[0] for k, v in parse_qs(parts.query, max_num_fields=20).items()}

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


def head_end(data: Union[bytes, bytearray]) -> int:
    """Where the head of a request ends in ``data`` (past its blank line), or -1."""
    end = data.find(b"\r\n\r\n")
    return end + 4 if end >= 0 else -1


def parse_head(head: bytes) -> Tuple[str, str, Dict[str, str], int]:
    """(method, target, headers, body length) of a request head; BadRequest otherwise."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[2]):
        raise BadRequest(400, "not an HTTP/1.x request line")
    if len(parts[1]) > MAX_TARGET:
        raise BadRequest(414, "the URL is too long")
    if not parts[1].startswith(b"/"):
        raise BadRequest(400, "the request target must be a path")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many header lines")
    headers = _headers(lines[1:])
    if "host" not in headers:
        raise BadRequest(400, "no Host header")
    return parts[0].decode("ascii"), parts[1].decode("latin-1"), headers, _body_length(headers)


def _headers(lines: Iterable[bytes]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):      # also a folded (obsolete) continuation line
            raise BadRequest(400, "a malformed header line")
        key = name.decode("ascii").lower()
        text = value.strip().decode("latin-1")
        if key in headers and key in ("host", "content-length"):
            if headers[key] != text:
                raise BadRequest(400, f"two different {key} headers")
        headers[key] = text
    return headers


def _body_length(headers: Dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise BadRequest(411, "chunked or encoded bodies are not accepted: send a Content-Length")
    text = headers.get("content-length", "0")
    if not text.isdigit() or not text.isascii():
        raise BadRequest(400, "Content-Length must be a whole number of bytes")
    if len(text) > 9 or int(text) > MAX_BODY:
        raise BadRequest(413, f"the body is larger than {MAX_BODY} bytes")
    return int(text)


def response(code: int, ctype: str = "text/plain; charset=utf-8", body: bytes = b"",
             headers: Optional[Dict[str, str]] = None, head_only: bool = False) -> bytes:
    """A whole answer, closing the connection."""
    lines = [f"HTTP/1.1 {code} {_reason(code)}", f"Content-Type: {ctype}", f"Content-Length: {len(body)}",
             "Cache-Control: no-store", "Connection: close", "X-Content-Type-Options: nosniff",
             "Referrer-Policy: same-origin"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def text(code: int, sentence: str) -> bytes:
    return response(code, body=(sentence + "\n").encode())


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Status"

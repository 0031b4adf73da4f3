"""The browser view's HTTP server, bounded: one thread runs every socket (``selectors``), a
fixed pool of worker threads computes the answers; nothing grows with the number of clients.

- At most ``max_conns`` connections; when full, the one slowest to send its request makes
  room (admission.py). A request must arrive whole within READ_S of the connection (an idle
  or half-sent request is dropped); an answer must make progress every WRITE_S. A listen
  backlog larger than such floods: a new connection waits a pass of the loop, not SYN retries.
- Answers are written by the loop without blocking; a worker never waits on a client.
- MJPEG viewers (at most ``max_viewers``, admission.py) are fed by the loop: each new frame
  is encoded once, on a worker, whoever watches; a viewer still busy with an older frame skips
  to the newest, and one that reads nothing for STALL_S is dropped. Its memory: one frame.
- Out of file descriptors (EMFILE): a spare descriptor is given up to answer 503 and close,
  and accepting pauses a moment; one log line per episode, never a spinning loop. The worker
  threads are started once, at the start: no thread is created per client.

Edgecam runs threads outside edgecam/pipeline/ only here (the loop and its workers) and in the
history's writer (edgecam/store/writer.py)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections import deque
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from edgecam.bounds import show
from edgecam.sinks.web.admission import slowest, untrusted_viewer
from edgecam.sinks.web.protocol import MAX_HEAD, BadRequest, Request, head_end, parse_head, text

log = logging.getLogger("edgecam.web")

READ_S = 5.0        # a whole request within this long of the connection
WRITE_S = 15.0      # an answer makes progress at least this often
STALL_S = 30.0      # an MJPEG viewer that reads nothing this long is dropped
PAUSE_S = 1.0       # accepting pauses this long when the process is out of descriptors
WORKERS = 4
BACKLOG = 1024      # (the kernel caps it at net.core.somaxconn)
ACCEPTS = 64        # connections taken per pass of the loop
BUSY = text(503, "busy: too many connections, try again")
_LISTEN, _WAKE = object(), object()


class Reply(NamedTuple):
    """What a handler answers: a whole response, or (``stream``) the head of an MJPEG stream."""

    data: bytes
    stream: bool = False
    trusted: bool = True        # a stream's viewer showed the token (or none is needed)


class Conn:
    __slots__ = ("sock", "peer", "local", "buf", "need", "head", "out", "sent", "deadline", "stream",
                 "seen", "closed", "busy", "key", "born", "trusted")

    def __init__(self, sock: socket.socket, peer, now: float, born: int):
        self.sock, self.peer, self.born, self.trusted = sock, peer, born, True
        self.local = sock.getsockname()
        self.buf, self.need = bytearray(), -1
        self.head: Optional[Tuple[str, str, Dict[str, str], int]] = None   # method, target, headers, its end
        self.out, self.sent = b"", 0
        self.deadline = now + READ_S
        self.stream = self.closed = self.busy = False
        self.seen = 0
        self.key = sock.fileno()


class Server:
    """Serves ``handler(Request) -> Reply`` on ``host:port`` until :meth:`close`. ``frames()``
    gives the newest frame as an MJPEG part, ``(seq, bytes)``; :meth:`new_frame` says one came."""

    def __init__(self, host: str, port: int, handler: Callable[[Request], Reply], max_conns: int,
                 max_viewers: int = 0, frames: Optional[Callable[[], Tuple[int, bytes]]] = None,
                 name: str = "edgecam-web"):
        self.handler, self.max_conns, self.max_viewers, self.frames = handler, max_conns, max_viewers, frames
        self.listen = _listen(host, port)
        self.address = self.listen.getsockname()[:2]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listen, selectors.EVENT_READ, _LISTEN)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._spare: Optional[int] = os.open(os.devnull, os.O_RDONLY)
        self.conns: Dict[int, Conn] = {}          # oldest first
        self.per_address: Dict[str, int] = {}
        self.passes = 0                           # passes of the loop
        self.streams: set = set()
        self.jobs: "queue.Queue" = queue.Queue()
        self.done: deque = deque()
        self.part: Tuple[int, bytes] = (0, b"")
        self.frame_waiting = self.encoding = self.closing = False
        self.paused_until = 0.0
        self.episodes: Dict[str, bool] = {}
        self.stats = {"refused": 0, "evicted": 0, "timed_out": 0, "bad_requests": 0}
        self.threads = [threading.Thread(target=self._run, name=name, daemon=True)]
        self.threads += [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(WORKERS)]

    def start(self) -> "Server":
        """Serve from now on: called once the owner is whole (the handler may read any of it;
        a request taken before, at start-up, answered 500: measured under load)."""
        for t in self.threads:
            t.start()
        return self

    # -- other threads' side ------------------------------------------------------------------
    def new_frame(self) -> None:
        """A new frame was published (O(1); wakes the loop only while someone watches)."""
        if self.streams and not self.frame_waiting:
            self.frame_waiting = True
            self._wake()

    def close(self) -> None:
        self.closing = True
        self._wake()
        for _ in range(WORKERS):
            self.jobs.put(None)
        for t in self.threads:
            if t.ident is not None:
                t.join(timeout=3)
        for conn in list(self.conns.values()):
            _close_socket(conn.sock)
        self.sel.close()
        self.listen.close()
        for fd in (self._wake_r, self._wake_w, self._spare):
            if fd is not None:
                os.close(fd)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass   # a wake is already pending (or we are closing)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            conn, fn = job
            try:
                result = fn()
            except Exception as exc:   # a handler's bug: one line, an answer, the server runs on
                log.warning("browser view: %s failed: %s", getattr(fn, "__name__", "a request"),
                            show(f"{type(exc).__name__}: {exc}", 200))
                result = Reply(text(500, "internal error (see the log)")) if conn is not None else None
            self.done.append((conn, result))
            self._wake()

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.closing:
            try:
                events = self.sel.select(0.5)
            except OSError as exc:   # EINTR is retried by Python; anything else: say so, go on
                log.warning("browser view: select failed: %s", exc)
                time.sleep(0.1)
                continue
            self.passes += 1
            for key, mask in events:              # requests already sent are read before new connections
                if key.data is not _LISTEN:
                    self._event(key.data, mask)
            if any(key.data is _LISTEN for key, _ in events):
                self._accept()
            self._finish()
            self._encode_if_wanted()
            self._sweep(time.monotonic())

    def _event(self, what, mask: int) -> None:
        if what is _WAKE:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
        elif not what.closed:
            if mask & selectors.EVENT_READ:
                self._read(what)
            if mask & selectors.EVENT_WRITE and not what.closed:
                self._write(what)

    def _accept(self) -> None:
        # a burst at a time, the loop stays fair; at most half the connections, so that a full
        # server always has older connections to evict than the ones taken in this pass
        for _ in range(min(ACCEPTS, max(1, self.max_conns // 2))):
            try:
                sock, peer = self.listen.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            self._episode("files", False, "browser view: file descriptors available again")
            if len(self.conns) >= self.max_conns and not self._evict():
                self._refuse(sock, "connections")
                continue
            self._episode("connections", False, "")
            self._open(sock, peer)

    def _evict(self) -> bool:
        """Full: answer 503 and close the connection slowest to send its request (admission.py)."""
        victim = slowest(self.conns.values(), self.per_address, self.passes)
        if victim is None:
            return False
        self.stats["evicted"] += 1
        _send_busy(victim.sock)
        self._close(victim)
        return True

    def _open(self, sock: socket.socket, peer) -> None:
        try:
            sock.setblocking(False)
            conn = Conn(sock, peer, time.monotonic(), self.passes)
            self.sel.register(sock, selectors.EVENT_READ, conn)
        except OSError:        # the client already left
            _close_socket(sock)
            return
        self.conns[conn.key] = conn
        self.per_address[conn.peer[0]] = self.per_address.get(conn.peer[0], 0) + 1
        self._read(conn)       # a request sent with the connection is taken now, before any eviction

    def _accept_failed(self, exc: OSError) -> None:
        if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
            return
        if exc.errno in (errno.EMFILE, errno.ENFILE) and self._spare is not None:
            self._episode("files", True, f"browser view: out of file descriptors ({exc.strerror}): "
                                         f"answering 503 and pausing new connections")
            os.close(self._spare)
            self._spare = None
            try:
                sock, _ = self.listen.accept()
                self._refuse(sock, "")
            except OSError:
                pass
            try:
                self._spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                pass
        else:
            self._episode("accept", True, f"browser view: cannot accept connections ({exc.strerror}): pausing")
        self.sel.unregister(self.listen)       # never a spinning loop: wait, then accept again
        self.paused_until = time.monotonic() + PAUSE_S

    def _refuse(self, sock: socket.socket, why: str) -> None:
        self.stats["refused"] += 1
        if why:
            self._episode(why, True, f"browser view: {len(self.conns)} connections open (output.web_max_connections): "
                                     f"answering 503 to more")
        _send_busy(sock)
        _close_socket(sock)

    def _episode(self, what: str, on: bool, line: str) -> None:
        """One log line when a condition starts (and, with a line, when it ends)."""
        if self.episodes.get(what, False) != on:
            self.episodes[what] = on
            if line:
                (log.warning if on else log.info)("%s", line)

    # -- reading a request ----------------------------------------------------------------------
    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        if conn.stream or conn.busy or conn.out:
            return                              # a viewer says nothing we need
        conn.buf += data
        try:
            self._parse(conn)
        except BadRequest as exc:
            self.stats["bad_requests"] += 1
            log.debug("browser view: %s from %s: %s", exc.code, conn.peer[0], exc.text)
            self._answer(conn, Reply(text(exc.code, exc.text)))

    def _parse(self, conn: Conn) -> None:
        if conn.need < 0:
            end = head_end(conn.buf)
            if end > MAX_HEAD or end < 0 and len(conn.buf) > MAX_HEAD:
                raise BadRequest(431, "the request head is too large")
            if end < 0:
                return
            method, target, headers, length = parse_head(bytes(conn.buf[:end]))
            conn.head, conn.need = (method, target, headers, end), end + length
        if len(conn.buf) < conn.need or conn.head is None:   # (the head is read when need is set)
            return
        method, target, headers, end = conn.head
        request = Request(method, target, headers, bytes(conn.buf[end:conn.need]), conn.local, conn.peer)
        conn.buf, conn.busy = bytearray(), True
        self.sel.unregister(conn.sock)           # nothing more is read from it
        self.jobs.put((conn, functools.partial(self.handler, request)))

    # -- answering ------------------------------------------------------------------------------
    def _finish(self) -> None:
        while self.done:
            conn, result = self.done.popleft()
            if conn is None:                     # a frame, encoded
                self.encoding = False
                if result is not None:
                    self._frame(result)
            elif not conn.closed:
                conn.busy = False
                self._answer(conn, result)

    def _answer(self, conn: Conn, reply: Reply) -> None:
        if reply.stream:
            if len(self.streams) >= self.max_viewers and not (reply.trusted and self._unseat()):
                self.stats["refused"] += 1
                reply = Reply(text(503, f"busy: {self.max_viewers} viewers already (output.web_max_viewers)"))
            else:
                conn.stream, conn.trusted = True, reply.trusted
                self.streams.add(conn)
                self.frame_waiting = True        # start it with the newest frame
        conn.out, conn.sent = reply.data, 0
        conn.deadline = time.monotonic() + WRITE_S
        self._watch(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def _unseat(self) -> bool:
        """Viewers full: the oldest viewer without the token makes room for one with it."""
        viewer = untrusted_viewer(self.conns.values())
        if viewer is not None:
            self.stats["evicted"] += 1
            self._close(viewer)
        return viewer is not None

    def _watch(self, conn: Conn, events: int) -> None:
        try:
            if conn.sock.fileno() < 0:
                return
            try:
                self.sel.modify(conn.sock, events, conn)
            except KeyError:
                self.sel.register(conn.sock, events, conn)
        except (OSError, ValueError):
            self._close(conn)

    def _write(self, conn: Conn) -> None:
        if not conn.out:
            return
        try:
            n = conn.sock.send(memoryview(conn.out)[conn.sent:conn.sent + 262144])
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        conn.sent += n
        conn.deadline = time.monotonic() + (STALL_S if conn.stream else WRITE_S)
        if conn.sent < len(conn.out):
            return
        conn.out, conn.sent = b"", 0
        if not conn.stream:
            self._close(conn, graceful=True)
        elif self.part[0] > conn.seen:           # it fell behind: the newest frame, not the next one
            self._give(conn)
        else:
            self._watch(conn, selectors.EVENT_READ)

    # -- MJPEG ----------------------------------------------------------------------------------
    def _encode_if_wanted(self) -> None:
        if self.frame_waiting and self.streams and not self.encoding and self.frames is not None:
            self.frame_waiting, self.encoding = False, True
            self.jobs.put((None, self.frames))
        elif not self.streams:
            self.frame_waiting = False

    def _frame(self, part: Tuple[int, bytes]) -> None:
        if part[0] <= self.part[0]:
            return
        self.part = part
        for conn in list(self.streams):
            if not conn.out:
                self._give(conn)

    def _give(self, conn: Conn) -> None:
        conn.seen, conn.out, conn.sent = self.part[0], self.part[1], 0
        conn.deadline = time.monotonic() + STALL_S
        self._watch(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)

    # -- time limits and closing ----------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            self.sel.register(self.listen, selectors.EVENT_READ, _LISTEN)
        for conn in list(self.conns.values()):
            waiting = conn.busy or (conn.stream and not conn.out)
            if not waiting and now > conn.deadline:
                self.stats["timed_out"] += 1
                self._close(conn)

    def _close(self, conn: Conn, graceful: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.streams.discard(conn)
        if self.conns.pop(conn.key, None) is not None:
            left = self.per_address.pop(conn.peer[0]) - 1
            if left:
                self.per_address[conn.peer[0]] = left
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if graceful:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        _close_socket(conn.sock)

    def snapshot(self) -> dict:
        return {"connections": len(self.conns), "viewers": len(self.streams), **self.stats}


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _send_busy(sock: socket.socket) -> None:
    try:
        sock.setblocking(False)
        sock.send(BUSY)
    except OSError:
        pass


def _close_socket(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass

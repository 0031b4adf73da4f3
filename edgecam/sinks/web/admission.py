"""Who makes room when the browser view's server is full (server.py), so that a flood cannot
lock out a client that sends whole requests at once:

- Connections: when all ``max_conns`` are open, a new one is taken and the one slowest to send
  its request is answered 503 and closed: the oldest connection whose request is still
  incomplete, from the address that holds the most connections (a flood from one address
  makes room from itself first; on one address, a client that sends its request with the
  connection is read at once and is never the slowest). Never a connection being answered
  or streaming, nor one taken in the current pass of the loop (it has not been read yet):
  when only those are left, the new one is answered 503.
- Viewers: when all ``max_viewers`` watch, a viewer with the token (or a ticket) takes the
  place of the oldest one without it; otherwise the new one is answered 503."""

from __future__ import annotations

from typing import Any, Dict, Iterable


def slowest(conns: Iterable, per_address: Dict[str, int], this_pass: int) -> Any:
    """The connection to evict from ``conns`` (oldest first), or None."""
    oldest: Dict[str, Any] = {}
    for conn in conns:
        if not (conn.busy or conn.stream or conn.out or conn.born == this_pass):
            oldest.setdefault(conn.peer[0], conn)
    if not oldest:
        return None
    return oldest[max(oldest, key=per_address.__getitem__)]     # ties: the address with the older one


def untrusted_viewer(conns: Iterable) -> Any:
    """The oldest viewer without the token, or None."""
    return next((c for c in conns if c.stream and not c.trusted), None)

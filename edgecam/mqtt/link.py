"""The connection to the broker: paho-mqtt's client on its own network thread (connect,
reconnect with backoff, TLS, the last will), and a publisher thread of ours between the
pipeline and it, so that nothing the pipeline calls ever waits on the network or on a lock
held across network I/O:

  send(topic, payload)   a message that must not be lost (an event, a reply): queued, at
                         most mqtt.queue of them while the broker is away; when the queue is
                         full the oldest is dropped (counted, logged once per outage)
  keep(topic, payload)   a retained state (counts, status, snapshot, discovery): only the
                         newest of each topic is kept, and all are published again after
                         every reconnect (a restarted broker may have lost them)
  later(name, job)       work for the publisher thread (a JPEG to encode): the newest of each
                         name runs, once

At most WINDOW QoS 1 messages are handed to paho unacknowledged (it resends them after a
reconnect); the rest wait in our queue. State changes are logged once each (connected,
lost, back, refused, unreachable), never once per attempt."""

from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from collections import deque
from typing import Callable, Dict, Optional, Tuple

from edgecam.errors import OutputError
from edgecam.mqtt.address import Broker, redact

log = logging.getLogger("edgecam.mqtt")

WINDOW = 100            # QoS 1 messages handed to paho and not yet acknowledged by the broker
BACKOFF_S = (1, 5)      # between reconnect attempts: from 1 s, doubling, to 5 s
FLUSH_S = 10.0          # at close: how long what is queued may take to go out
KEEPALIVE_S = 30
INSTALL = "pip install 'edgecam[mqtt]'"


def import_paho():
    """paho-mqtt's client module (only when MQTT is configured), or one sentence."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise OutputError(f"--mqtt needs the paho-mqtt package, which is not installed: {INSTALL}") from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise OutputError(f"--mqtt needs paho-mqtt 2.0 or newer (found {getattr(mqtt, '__version__', 'an older one')}):"
                          f" {INSTALL}")
    return mqtt


def _reason(exc: BaseException) -> str:
    """An OSError in a few words: "Connection refused", "certificate verify failed: ..."."""
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or getattr(exc, "strerror", None)
    return " ".join(str(text or exc or type(exc).__name__).split())[:200]


class Outbox:
    """What waits for the broker (shared by the pipeline's threads and the publisher)."""

    def __init__(self, bound: int):
        self.cond = threading.Condition()
        self.bound = bound
        self.queue: deque = deque()                 # (topic, payload, qos)
        self.retained: Dict[str, Tuple[bytes, int]] = {}
        self.dirty: Dict[str, None] = {}             # retained topics to (re)publish, in order
        self.jobs: Dict[str, Callable[[], None]] = {}
        self.dropped = 0                             # since the start
        self.dropped_outage = 0                      # since the broker went away

    def send(self, topic: str, payload: bytes, qos: int) -> bool:
        """Queue a message; True when this dropped the first one of an outage."""
        with self.cond:
            first = False
            if len(self.queue) >= self.bound:
                self.queue.popleft()
                self.dropped += 1
                self.dropped_outage += 1
                first = self.dropped_outage == 1
            self.queue.append((topic, payload, qos))
            self.cond.notify()
        return first

    def keep(self, topic: str, payload: bytes, qos: int) -> None:
        with self.cond:
            self.retained[topic] = (payload, qos)
            self.dirty[topic] = None
            self.cond.notify()

    def later(self, name: str, job: Callable[[], None]) -> None:
        with self.cond:
            self.jobs[name] = job
            self.cond.notify()

    def redo(self) -> None:
        """Every retained state again (after a (re)connect)."""
        with self.cond:
            self.dirty = dict.fromkeys(self.retained)
            self.cond.notify()

    def take(self, n: int) -> list:
        """Up to all dirty retained states and ``n`` queued messages: (topic, payload, qos, retain)."""
        batch = [(t, *self.retained[t], True) for t in self.dirty]
        self.dirty = {}
        while self.queue and n > 0:
            batch.append((*self.queue.popleft(), False))
            n -= 1
        return batch

    def put_back(self, items: list) -> None:
        """Messages paho could not take, back in front, in order (a newer retained state wins)."""
        for topic, payload, qos, retain in reversed(items):
            if retain:
                self.dirty.setdefault(topic, None)
            else:
                self.queue.appendleft((topic, payload, qos))

    def pending(self) -> bool:
        return bool(self.dirty or self.queue)


class Link:
    """One broker connection. ``on_connect()`` runs on paho's thread after each (re)connect
    (subscribe there); ``on_message(topic, payload)`` for each message received."""

    def __init__(self, broker: Broker, client_id: str, will_topic: str, queue: int, tls: dict,
                 on_connect: Callable[[], None], on_message: Callable[[str, bytes], None], tick_s: float = 1.0,
                 on_tick: Optional[Callable[[], None]] = None):
        self.mqtt = import_paho()
        self.broker, self.client_id, self.will = broker, client_id, will_topic
        self.outbox = Outbox(queue)
        self.on_connect_cb, self.on_message_cb, self.on_tick, self.tick_s = on_connect, on_message, on_tick, tick_s
        self.connected = False
        self.state = "starting"            # starting | connected | lost | refused | unreachable
        self.since = time.monotonic()      # when the state began
        self.closing = False
        self.ever_connected = False
        self.sent = 0
        self.client = self._client(tls)
        self.thread = threading.Thread(target=self._publisher, name="edgecam-mqtt", daemon=True)

    def start(self) -> None:
        """Connect (in the background: paho's thread) and start publishing."""
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        self.thread.start()

    def _client(self, tls: dict):
        m = self.mqtt
        c = m.Client(m.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=m.MQTTv311)
        if self.broker.user is not None:
            c.username_pw_set(self.broker.user, self.broker.password)
        if self.broker.tls:
            try:
                c.tls_set(ca_certs=tls.get("ca"), certfile=tls.get("cert"), keyfile=tls.get("key"),
                          cert_reqs=ssl.CERT_NONE if tls.get("insecure") else ssl.CERT_REQUIRED)
            except (OSError, ValueError, ssl.SSLError) as exc:
                raise OutputError(f"MQTT over TLS cannot start: {redact(str(exc))} "
                                  "(mqtt.tls_ca, tls_cert, tls_key)") from None
            c.tls_insecure_set(bool(tls.get("insecure")))
        c.will_set(self.will, b"offline", qos=1, retain=True)
        c.reconnect_delay_set(*BACKOFF_S)
        c.max_queued_messages_set(WINDOW)
        c.on_connect, c.on_disconnect, c.on_connect_fail = self._connected, self._disconnected, self._unreachable
        c.on_message, c.on_publish = self._message, self._acked
        return c

    # -- what the sink calls (never waits on the network) ----------------------------------------
    def send(self, topic: str, payload: bytes, qos: int) -> None:
        if self.outbox.send(topic, payload, qos):
            log.warning("MQTT: the queue of %d messages is full while %s is away: dropping the oldest "
                        "(counted; said again when it is back)", self.outbox.bound, self.broker)

    def keep(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.outbox.keep(topic, payload, qos)

    def later(self, name: str, job: Callable[[], None]) -> None:
        self.outbox.later(name, job)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.client.subscribe(topic, qos)

    # -- paho's network thread ------------------------------------------------------------------
    def _connected(self, client, userdata, flags, reason, properties=None) -> None:
        if reason.is_failure:
            self._change("refused", logging.WARNING, f"MQTT: {self.broker} refused the connection ({reason}); "
                                                     f"retrying with backoff")
            return
        with self.outbox.cond:
            dropped, self.outbox.dropped_outage = self.outbox.dropped_outage, 0
            queued = len(self.outbox.queue)
        away = f"{time.monotonic() - self.since:.0f} s"
        line = (f"MQTT: back: connected to {self.broker} again after {away}" if self.ever_connected else
                f"MQTT: connected to {self.broker} as {self.client_id}" + ("" if self.state == "starting" else
                                                                         f" after {away} of trying"))
        if queued or dropped:
            line += f"; sending {queued} queued messages" + (f", {dropped} dropped (the queue was full)" if dropped
                                                             else "")
        self.ever_connected = True
        self._change("connected", logging.INFO, line)
        self.client.publish(self.will, b"online", qos=1, retain=True)
        self._run(self.on_connect_cb)
        with self.outbox.cond:           # then every retained state again, then the queue
            self.connected = True
            self.outbox.dirty = dict.fromkeys(self.outbox.retained)
            self.outbox.cond.notify()

    def _disconnected(self, client, userdata, flags, reason, properties=None) -> None:
        with self.outbox.cond:
            was, self.connected = self.connected, False
        if was and not self.closing:
            why = "the connection dropped" if reason.is_failure else str(reason)
            self._change("lost", logging.WARNING, f"MQTT: lost {self.broker} ({why}); reconnecting with backoff "
                                                  f"and keeping up to {self.outbox.bound} messages meanwhile")

    def _unreachable(self, client, userdata) -> None:
        if self.state in ("starting", "refused"):
            exc = sys.exc_info()[1]              # paho calls this while handling the connect's OSError
            why = f" ({_reason(exc)})" if exc is not None else ""
            self._change("unreachable", logging.WARNING, f"MQTT: cannot connect to {self.broker}{why}; retrying with "
                                                         f"backoff ({BACKOFF_S[0]} s to {BACKOFF_S[1]} s) and "
                                                         f"keeping up to {self.outbox.bound} messages meanwhile")

    def _change(self, state: str, level: int, line: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.monotonic()
            log.log(level, "%s", redact(line))

    def _message(self, client, userdata, msg) -> None:
        try:
            self.on_message_cb(msg.topic, msg.payload)
        except Exception as exc:  # a bad message must not stop the network thread
            log.warning("MQTT: message on %r not handled: %s", msg.topic[:100], exc)

    def _acked(self, client, userdata, mid, reason=None, properties=None) -> None:
        with self.outbox.cond:
            self.outbox.cond.notify()      # room in paho's window: the publisher may go on

    # -- our publisher thread ---------------------------------------------------------------------
    def _publisher(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while True:
            jobs, batch = self._wait(next_tick)
            if jobs is None:
                return
            for job in jobs:
                self._run(job)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                if self.on_tick is not None:
                    self._run(self.on_tick)
            failed = [item for item in batch if not self._publish(*item)]
            if failed:
                with self.outbox.cond:
                    self.outbox.put_back(failed)
                    self.outbox.cond.wait(0.05)        # paho's window is full, or the link just dropped

    def _wait(self, next_tick: float):
        """(jobs, messages) to handle now; (None, None) to stop."""
        o = self.outbox
        with o.cond:
            while not (o.jobs or (self.connected and o.pending()) or self.closing):
                left = next_tick - time.monotonic()
                if left <= 0:
                    break
                o.cond.wait(left)
            if self.closing and not (self.connected and o.pending()) and not o.jobs:
                return None, None
            jobs, o.jobs = list(o.jobs.values()), {}
            return jobs, (o.take(WINDOW) if self.connected else [])

    @staticmethod
    def _run(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # a status or a snapshot that fails must not stop the publishing
            log.warning("MQTT: %s", exc)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Hand one message to paho: False when it could not take it (try again later)."""
        try:
            info = self.client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:              # a topic or payload MQTT cannot carry: never retried
            log.warning("MQTT: not published on %r: %s", topic[:100], exc)
            return True
        ok = info.rc == self.mqtt.MQTT_ERR_SUCCESS or (info.rc == self.mqtt.MQTT_ERR_NO_CONN and qos > 0)
        self.sent += ok and not retain
        return ok

    # -- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Send what is queued (at most FLUSH_S), say offline, disconnect."""
        deadline = time.monotonic() + FLUSH_S
        with self.outbox.cond:
            while self.connected and self.outbox.pending() and time.monotonic() < deadline:
                self.outbox.cond.wait(0.1)
            self.closing = True
            self.outbox.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout=max(0.5, deadline - time.monotonic()))
        while self.connected and self._unacked() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = len(self.outbox.queue) + self._unacked()
        if left:
            log.warning("MQTT: %d messages not delivered: %s was away at the end", left, self.broker)
        if self.connected:
            try:
                self.client.publish(self.will, b"offline", qos=1, retain=True).wait_for_publish(2.0)
            except (RuntimeError, ValueError):      # the link dropped just now: the will says it
                pass
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def _unacked(self) -> int:
        return len(getattr(self.client, "_out_messages", ()))

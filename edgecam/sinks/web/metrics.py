"""Prometheus metrics as a sink: ``GET /metrics`` on the browser view's server, or with
``--metrics HOST:PORT`` on a server of its own (the same bounded server, /metrics only).

Fed by result() (the inference thread: two histogram observations and a counter per label)
and read from the live status when scraped (a custom collector): nothing in the pipeline's
loop changes, and a stuck scraper holds only its own connection. prometheus_client is an
optional extra (``pip install 'edgecam[metrics]'``), imported only when metrics are asked for,
into a private CollectorRegistry.

  edgecam_frames_captured_total, _inferred_total, _shown_total, _dropped_total,
  edgecam_frames_not_inferred_total       counters (from the live status)
  edgecam_inference_seconds               histogram: the model's invoke time
  edgecam_frame_age_seconds               histogram: capture to result
  edgecam_camera_fps, edgecam_inference_fps, edgecam_latency_seconds (capture to display),
  edgecam_paused, edgecam_running         gauges
  edgecam_reconnects_total                counter
  edgecam_detections_total{label}         detections in results
  edgecam_objects{label}                  objects in the latest result
  edgecam_objects_seen_total{label}       tracked objects (distinct ids) since the start
  edgecam_line_crossings_total{line,direction}, edgecam_zone_entries_total{zone},
  edgecam_zone_inside{zone}               the counting rules
  edgecam_line_crossings_today{line,direction}, edgecam_zone_entries_today{zone}
                                          today's totals (since local midnight; with a history)
  edgecam_model_info{model,task,alpha,rho,input_px,madds}   1
  edgecam_state{state}                    the taught frame state (--teach-frame): 1 for the one in force
  edgecam_embedded_total                  crops and frames embedded by the taught sets
  process_resident_memory_bytes, process_cpu_seconds_total, ...   (prometheus_client's)"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

from edgecam.config import parse_address
from edgecam.errors import OutputError
from edgecam.sinks.base import Sink
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.sinks.web.security import WRONG_HOST, Guard
from edgecam.sinks.web.server import Reply, Server

log = logging.getLogger("edgecam.web")
MISSING = "Prometheus metrics need prometheus_client: pip install 'edgecam[metrics]'"
SECONDS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
MAX_CONNECTIONS = 16


def client():
    """prometheus_client, or OutputError with one sentence."""
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        raise OutputError(MISSING) from None


def _no_status() -> dict:
    return {}


class Metrics(Sink):
    wants_frames = False

    def __init__(self, address: Optional[str] = None, hosts: Sequence[str] = ()):
        prom = self.prom = client()
        self.core = importlib.import_module("prometheus_client.core")
        self.registry = prom.CollectorRegistry()
        reg = {"registry": self.registry}
        self.inference = prom.Histogram("edgecam_inference_seconds", "model invoke time", buckets=SECONDS, **reg)
        self.age = prom.Histogram("edgecam_frame_age_seconds", "capture of a frame to its result",
                                  buckets=SECONDS, **reg)
        self.detections = prom.Counter("edgecam_detections", "detections in results, per label", ["label"], **reg)
        prom.ProcessCollector(registry=self.registry)
        self.registry.register(_StatusCollector(self))
        self.status: Callable[[], dict] = _no_status
        self.objects: Dict[str, int] = {}
        self.server: Optional[Server] = None
        if address:
            host, port = parse_address(address)
            self.guard = Guard(host, None, False, False, hosts)
            try:
                self.server = Server(host, port, self.serve, MAX_CONNECTIONS, name="edgecam-metrics")
            except OSError as exc:
                reason = "the port is already in use" if exc.errno == 98 else (exc.strerror or str(exc))
                raise OutputError(f"cannot serve metrics on {host}:{port}: {reason} "
                                  f"(choose another with --metrics HOST:PORT)") from None
            self.server.start()
            log.info("Prometheus metrics: http://%s:%d/metrics", host, self.server.address[1])

    # the runner's side ----------------------------------------------------------------------
    def watch(self, status: Callable[[], dict]) -> None:
        self.status = status

    def result(self, result) -> None:
        if not result.inferred:
            return
        self.inference.observe(result.inference_ms / 1000.0)
        if result.captured:
            self.age.observe(max(0.0, time.monotonic() - result.captured))
        objects: Dict[str, int] = {}
        for d in list(result.detections) + list(result.classes):
            objects[d.label] = objects.get(d.label, 0) + 1
        for label, n in objects.items():
            self.detections.labels(label).inc(n)
        self.objects = objects

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    # the scraper's side ---------------------------------------------------------------------
    def exposition(self) -> Tuple[str, bytes]:
        return self.prom.CONTENT_TYPE_LATEST, self.prom.generate_latest(self.registry)

    def serve(self, req: Request) -> Reply:
        """--metrics alone: GET /metrics (and / says where they are)."""
        if not self.guard.host_ok(req):
            return Reply(WRONG_HOST)
        if req.method != "GET":
            return Reply(response(405, body=b"GET only\n", headers={"Allow": "GET"}))
        if req.path == "/metrics":
            ctype, body = self.exposition()
            return Reply(response(200, ctype, body))
        return Reply(text(404, "metrics are at /metrics"))

    def read_status(self) -> dict:
        for _ in range(3):   # the tracking counts may change while they are read: read again
            try:
                return dict(self.status())
            except RuntimeError:
                continue
        return {}


class _StatusCollector:
    """The live status as metrics, read when scraped."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self) -> Iterator:
        m = self.metrics
        core = m.core
        s = m.read_status()
        for name, key, what in (("frames_captured", "frames", "camera frames captured"),
                                ("frames_inferred", "results", "frames the model ran on"),
                                ("frames_shown", "shown", "frames drawn and shown"),
                                ("frames_dropped", "dropped", "camera frames never shown, to stay live"),
                                ("frames_not_inferred", "not_inferred", "camera frames the model skipped"),
                                ("reconnects", "reconnects", "camera reconnects")):
            yield core.CounterMetricFamily(f"edgecam_{name}", what, value=float(s.get(key) or 0))
        for name, value, what in (("camera_fps", s.get("camera_fps"), "camera frames per second"),
                                  ("inference_fps", s.get("inference_fps"), "results per second"),
                                  ("latency_seconds", (s.get("latency_ms") or 0) / 1000.0, "capture to display"),
                                  ("paused", bool(s.get("paused")), "1 while paused"),
                                  ("running", s.get("status") == "running", "1 while frames come")):
            yield core.GaugeMetricFamily(f"edgecam_{name}", what, value=float(value or 0))
        yield _labelled(core.GaugeMetricFamily("edgecam_objects", "objects in the latest result", labels=["label"]),
                        {(k,): v for k, v in m.objects.items()})
        yield from _tracking(core, s.get("tracking") or {})
        yield from _teach(core, s.get("teach"))
        if s.get("model"):
            info = core.GaugeMetricFamily("edgecam_model_info", "the model running",
                                          labels=["model", "task", "alpha", "rho", "input_px", "madds"])
            info.add_metric([str(s.get(k)) if s.get(k) is not None else "" for k in
                             ("model", "task", "alpha", "rho", "input_px", "madds")], 1.0)
            yield info


def _tracking(core, t: dict) -> Iterator:
    yield _labelled(core.CounterMetricFamily("edgecam_objects_seen", "tracked objects (distinct ids) per label",
                                             labels=["label"]), {(k,): v for k, v in (t.get("seen") or {}).items()})
    counts = t.get("counts") or {}
    lines = {(n, d): c[d] for n, c in counts.items() if "in" in c for d in ("in", "out")}
    yield _labelled(core.CounterMetricFamily("edgecam_line_crossings", "crossings of each counting line",
                                             labels=["line", "direction"]), lines)
    zones = {(n,): c for n, c in counts.items() if "entered" in c}
    yield _labelled(core.CounterMetricFamily("edgecam_zone_entries", "entries into each zone", labels=["zone"]),
                    {k: c["entered"] for k, c in zones.items()})
    yield _labelled(core.GaugeMetricFamily("edgecam_zone_inside", "objects inside each zone now", labels=["zone"]),
                    {k: c["inside"] for k, c in zones.items()})
    if "today" in t:
        today = t["today"] or {}             # (the lines and zones in force: 0 until counted today)
        yield _labelled(core.GaugeMetricFamily("edgecam_line_crossings_today", "crossings of each line since "
                                               "local midnight", labels=["line", "direction"]),
                        {(n, d): c.get(d, 0) for n, c in today.items() if "in" in c for d in ("in", "out")})
        yield _labelled(core.GaugeMetricFamily("edgecam_zone_entries_today", "entries into each zone since local "
                                               "midnight", labels=["zone"]),
                        {(n,): c.get("entered", 0) for n, c in today.items() if "entered" in c})


def _teach(core, t: Optional[dict]) -> Iterator:
    if not t:
        return
    yield core.CounterMetricFamily("edgecam_embedded", "crops and frames embedded by the taught sets",
                                   value=float(t.get("embedded") or 0))
    if t.get("states"):
        yield _labelled(core.GaugeMetricFamily("edgecam_state", "the taught frame state: 1 for the one in force",
                                               labels=["state"]),
                        {(name,): float(name == t.get("state")) for name in t["states"]})


def _labelled(family, values: Dict[tuple, float]):
    for labels, value in sorted(values.items()):
        family.add_metric(list(labels), float(value))
    return family

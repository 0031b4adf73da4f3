"""What the live runner's threads share, and what the overlay, the browser's /status and a
reload read of it. The live settings in force (threshold, classes, overlay, pause, ...) are the
tuning's (edgecam/pipeline/tuning.py): /status shows them by their short names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence

from edgecam.model import Model, Result
from edgecam.pipeline.meter import RateMeter
from edgecam.pipeline.tuning import Tuning
from edgecam.track.today import with_today


def _ignore(model: Model) -> None:
    pass


@dataclass
class LiveState:
    """Each field has one writer."""

    model: Model                             # output loop (model switch, reload)
    tuning: Tuning                           # output loop: the live settings in force
    result: Optional[Result] = None          # inference thread
    status: str = "starting"                 # capture thread: running | reconnecting | ended
    frames: int = 0                          # capture thread: camera frames captured
    results: int = 0                         # inference thread
    reconnects: int = 0                      # capture thread
    shown: int = 0                           # output loop: frames shown
    latency_ms: float = 0.0                  # output loop: capture -> display of the last frame
    result_age_ms: float = 0.0               # output loop: age of the frame behind the drawn result
    camera: RateMeter = field(default_factory=RateMeter)
    inference: RateMeter = field(default_factory=RateMeter)
    dropped: int = 0                         # output loop: camera frames never shown, to stay live
    not_inferred: int = 0                    # output loop: camera frames the model skipped
    models: List[str] = field(default_factory=list)   # what the model switch offers
    inferring: Optional[int] = None          # inference thread: the frame it works on, if any
    infer_s: float = 0.0                     # inference thread: recent seconds per frame (EWMA)
    on_model: Callable[[Model], None] = _ignore       # the runner: told of every model switch
    tracking: Optional[Any] = None           # the tracking stage (edgecam/track/), when on
    teach: Optional[Any] = None              # the teach stage (edgecam/teach/), with a taught set
    today: Optional[Any] = None              # today's totals (edgecam/track/today.py), with a history
    history: Optional[Any] = None            # the history's sink (edgecam/store/), when on

    @property
    def paused(self) -> bool:
        return self.tuning.paused

    @property
    def overlay(self) -> bool:
        return self.tuning.cfg.overlay.enabled

    def use(self, model: Model) -> None:
        """Run ``model`` from the next frame on (the inference thread picks it up)."""
        self.model = model
        self.on_model(model)

    def snapshot(self) -> dict:
        r = self.result
        return {**self.tuning.view(), "status": self.status, "model": self.model.name, "task": self.model.task,
                "alpha": self.model.alpha, "rho": round(self.model.rho, 3), "input_px": self.model.size,
                "madds": self.model.madds,
                "frames": self.frames, "shown": self.shown, "results": self.results,
                "camera_fps": round(self.camera.rate, 2), "inference_fps": round(self.inference.rate, 2),
                "inference_ms": round(r.inference_ms, 2) if r else None,
                "latency_ms": round(self.latency_ms, 1), "result_age_ms": round(self.result_age_ms, 1),
                "dropped": self.dropped, "not_inferred": self.not_inferred,
                "reconnects": self.reconnects, "models": self.models,
                "latest": r.to_json() if r else None,
                **({"tracking": self.tracking_status()} if self.tracking is not None else {}),
                **({"teach": self.teach.status()} if self.teach is not None else {}),
                **({"history": self.history.status()} if self.history is not None else {})}

    def tracking_status(self) -> dict:
        """The tracking stage's status, with today's totals of its lines and zones (0 until counted)."""
        status = self.tracking.status() if self.tracking is not None else {}
        if self.today is None:
            return status
        today = self.today.totals()
        return {**status, "today": {name: today.get(name) or _zero(c) for name, c in status.get("counts", {}).items()}}

    def scene(self) -> Sequence:
        """The lines and zones the overlay draws, with today's totals when they are kept."""
        scene = self.tracking.scene() if self.tracking is not None else ()
        return with_today(scene, self.today.totals()) if self.today is not None and scene else scene

    def hud_extra(self) -> List[str]:
        lines = [f"camera {self.camera.rate:4.1f} FPS  inference {self.inference.rate:4.1f} FPS",
                 f"latency {self.latency_ms:4.0f} ms  dropped {self.dropped}  not inferred {self.not_inferred}"]
        if self.status != "running":
            lines.append(self.status.upper())
        if self.paused:
            lines.append("PAUSED")
        if self.teach is not None and self.teach.frame is not None:
            lines.append(f"state {self.teach.frame.label}")
        return lines


def _zero(counts: dict) -> dict:
    return {"in": 0, "out": 0, "by_label": {}} if "in" in counts else {"entered": 0, "by_label": {}}

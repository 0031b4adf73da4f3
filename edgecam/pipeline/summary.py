"""What a run adds up to (frames, FPS, inference time, counts per label), and the one place
both runners report a result: the summary, the first result (READY) and the watchdog."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from edgecam.pipeline.hooks import Hooks


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    inference_ms_total: float = 0.0
    inferences: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    model: str = ""
    interrupted: bool = False
    first_result_s: Optional[float] = None
    skipped: int = 0                              # frames the motion gate kept from the model
    objects: Optional[Dict[str, int]] = None      # tracked objects per label (tracking on)
    rules: Dict[str, dict] = field(default_factory=dict)   # counts per line and zone
    per_model: Dict[str, List[float]] = field(default_factory=dict)   # a comparison's: [total ms, inferences]

    def tracked(self, stage) -> None:
        """Take the objects and the line and zone counts from a tracking stage."""
        self.objects, self.rules = stage.objects_per_label(), stage.counts()

    def add(self, result) -> None:
        if not result.inferred:
            self.skipped += 1
            return
        self.inferences += 1
        self.inference_ms_total += result.inference_ms
        for part in getattr(result, "parts", ()):      # a comparison (edgecam/model/compare.py)
            ms = self.per_model.setdefault(part.model, [0.0, 0])
            ms[0], ms[1] = ms[0] + part.inference_ms, ms[1] + 1
        for label in result.labels():
            self.counts[label] = self.counts.get(label, 0) + 1

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_inference_ms(self) -> float:
        return self.inference_ms_total / self.inferences if self.inferences else 0.0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
                "mean_inference_ms": round(self.mean_inference_ms, 2), "counts": self.counts,
                "model": self.model, "interrupted": self.interrupted, "inferences": self.inferences,
                "not_inferred": self.skipped,
                **({"per_model_ms": self.per_model_ms()} if self.per_model else {}),
                **({"objects": self.objects, "rules": self.rules} if self.objects is not None else {})}

    def format(self) -> str:
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])
        counts = ", ".join(f"{k}: {v}" for k, v in top[:12]) or "nothing found"
        more = f" (+{len(top) - 12} more labels)" if len(top) > 12 else ""
        state = " (interrupted)" if self.interrupted else ""
        text = (f"edgecam: {self.frames} frames in {self.seconds:.1f} s{state}: {self.fps:.1f} FPS, "
                f"inference {self.mean_inference_ms:.1f} ms mean ({self.model})\n"
                f"  counts per label: {counts}{more}")
        if self.per_model:
            each = ", ".join(f"{k} {v:.1f} ms" for k, v in self.per_model_ms().items())
            text += "\n  mean inference per model: " + each
        if self.skipped:
            text += f"\n  motion gate: {self.inferences} frames inferred, {self.skipped} not (nothing moved)"
        return text + "".join("\n  " + line for line in self.tracking_lines())

    def per_model_ms(self) -> Dict[str, float]:
        return {k: round(total / n, 2) for k, (total, n) in self.per_model.items() if n}

    def tracking_lines(self) -> List[str]:
        if self.objects is None:
            return []
        objects = ", ".join(f"{k}: {v}" for k, v in self.objects.items()) or "none"
        lines = [f"objects per label (tracked): {objects}"]
        for name, c in self.rules.items():
            per = ", ".join(f"{k} {' '.join(f'{d} {n}' for d, n in v.items()) if isinstance(v, dict) else v}"
                            for k, v in c["by_label"].items())
            head = f"in {c['in']}, out {c['out']}" if "in" in c else f"entered {c['entered']}, inside {c['inside']}"
            lines.append(f"{name}: {head}" + (f" ({per})" if per else ""))
        return lines


class Tally:
    """Counts results into a :class:`Summary` and tells the supervisor: ``ready`` at the first
    result, ``alive`` after every one. Called from one thread per run."""

    def __init__(self, model: str, hooks: Hooks):
        self.summary = Summary(model=model)
        self.hooks = hooks
        self.start = time.monotonic()

    def result(self, result) -> None:
        self.summary.add(result)
        if self.summary.first_result_s is None:
            self.summary.first_result_s = time.monotonic() - self.start
            self.hooks.ready()
        self.hooks.alive()

    def finish(self, interrupted: bool, model: Optional[str] = None) -> Summary:
        self.summary.seconds = time.monotonic() - self.start
        self.summary.interrupted = interrupted
        if model:
            self.summary.model = model
        return self.summary

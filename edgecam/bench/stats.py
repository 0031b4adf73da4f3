"""The bench's arithmetic: percentiles, per-stage summaries, peak memory, live frame ages."""

from __future__ import annotations

import resource
import sys
from typing import Dict, List, Optional

LIVE_WARMUP_S = 1.0        # results in the first second after the first one are not counted


def pct(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summarize_ms(values_s: List[float]) -> Dict[str, Optional[float]]:
    ms = [x * 1000.0 for x in values_s]
    r = lambda x: None if x is None else round(x, 3)  # noqa: E731
    return {"p50": r(pct(ms, 50)), "p95": r(pct(ms, 95)), "n": len(ms)}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round((kb / 1024.0 if sys.platform != "darwin" else kb / 2**20), 1)


def live_figures(raw: dict, camera, budget_ms: float) -> dict:
    """Ages of the frames behind the results (ms, at first drawing), drops, and drift."""
    rows = [(s, t, ms) for s, t, ms in raw["drawn"] if s is not None and camera.sent_time(s) is not None]
    if rows:
        t_first = rows[0][1]
        rows = [r for r in rows if r[1] - t_first >= LIVE_WARMUP_S] or rows
    ages = [(t - camera.sent_time(s)) * 1000.0 for s, t, _ in rows]
    stamps = sorted({s for s, _, _ in rows})
    span = stamps[-1] - stamps[0] + 1 if stamps else 0
    received = {s for s in raw["received"] if stamps and stamps[0] <= s <= stamps[-1]}
    quarters = []
    if rows:
        t0, t1 = rows[0][1], rows[-1][1]
        for q in range(4):
            lo, hi = t0 + (t1 - t0) * q / 4, t0 + (t1 - t0) * (q + 1) / 4
            a = [age for (s, t, _), age in zip(rows, ages) if lo <= t <= hi]
            quarters.append({"p50": _r(pct(a, 50)), "p95": _r(pct(a, 95))})
    growth = (quarters[-1]["p50"] - quarters[0]["p50"]) if len(quarters) == 4 and \
        quarters[0]["p50"] is not None and quarters[-1]["p50"] is not None else None
    return {"age_ms": {"p50": _r(pct(ages, 50)), "p95": _r(pct(ages, 95)), "max": _r(max(ages) if ages else None)},
            "results": len(rows), "camera_frames": span,
            "cpu_ms_per_result": _r(raw["cpu_run_s"] * 1000.0 / raw["results"]) if raw.get("results") else None,
            "dropped": span - len(stamps),               # camera frames that got no result
            "not_received": span - len(received),        # ... of which never reached the reader
            "quarters_ms": quarters, "growth_p50_ms": _r(growth), "budget_ms": _r(budget_ms),
            "inference_ms_p50": _r(pct([ms for _, _, ms in rows], 50)),
            "peak_rss_mb": raw.get("peak_rss_mb"), "first_result_s": raw.get("first_result_s"),
            "other_load": raw.get("other_load")}


def _r(x, nd: int = 2):
    return None if x is None else round(float(x), nd)

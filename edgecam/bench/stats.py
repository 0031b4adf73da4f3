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


def warm(raw: dict, camera) -> List[tuple]:
    """A live run's (stamp, drawn time, inference ms) rows, without its first second."""
    rows = [(s, t, ms) for s, t, ms in raw["drawn"] if s is not None and camera.sent_time(s) is not None]
    if rows:
        t_first = rows[0][1]
        rows = [r for r in rows if r[1] - t_first >= LIVE_WARMUP_S] or rows
    return rows


def live_figures(raws: List[dict], camera, budget_ms: float) -> dict:
    """Ages of the frames behind the results (ms, at first drawing), drops, drift and CPU,
    pooled over one variant's interleaved rounds (each without its first second)."""
    rows, dropped, not_received = [], 0, 0
    for raw in raws:
        part = warm(raw, camera)
        stamps = sorted({s for s, _, _ in part})
        span = stamps[-1] - stamps[0] + 1 if stamps else 0
        received = {s for s in raw["received"] if stamps and stamps[0] <= s <= stamps[-1]}
        dropped += span - len(stamps)                    # camera frames that got no result
        not_received += span - len(received)             # ... of which never reached the reader
        rows += part
    ages = [(t - camera.sent_time(s)) * 1000.0 for s, t, _ in rows]
    quarters = _quarters(rows, ages)
    growth = (quarters[-1]["p50"] - quarters[0]["p50"]) if len(quarters) == 4 and \
        quarters[0]["p50"] is not None and quarters[-1]["p50"] is not None else None
    results, cpu = sum(r.get("results", 0) for r in raws), sum(r.get("cpu_run_s", 0.0) for r in raws)
    return {"age_ms": {"p50": _r(pct(ages, 50)), "p95": _r(pct(ages, 95)), "max": _r(max(ages) if ages else None)},
            "results": len(rows), "rounds": len(raws), "dropped": dropped, "not_received": not_received,
            "cpu_ms_per_result": _r(cpu * 1000.0 / results) if results and cpu else None,
            "quarters_ms": quarters, "growth_p50_ms": _r(growth), "budget_ms": _r(budget_ms),
            "inference_ms_p50": _r(pct([ms for _, _, ms in rows], 50)),
            "peak_rss_mb": max((r.get("peak_rss_mb") or 0) for r in raws) or None,
            "first_result_s": raws[0].get("first_result_s"),
            "other_load": max((r.get("other_load") or 0.0) for r in raws)}


def _quarters(rows: List[tuple], ages: List[float]) -> List[dict]:
    """p50/p95 of the ages in each quarter of the live time (drift shows as growth)."""
    out = []
    if rows:
        times = sorted(t for _, t, _ in rows)
        edges = [times[int((len(times) - 1) * q / 4)] for q in range(5)]
        for q in range(4):
            a = [age for (_, t, _), age in zip(rows, ages) if edges[q] <= t <= edges[q + 1]]
            out.append({"p50": _r(pct(a, 50)), "p95": _r(pct(a, 95))})
    return out


def _r(x, nd: int = 2):
    return None if x is None else round(float(x), nd)

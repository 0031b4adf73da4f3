"""A bench child process: one variant, its figures written as JSON to ``spec["out"]``
(`python -m edgecam.bench --child SPEC.json`, started by runner.run_child)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from edgecam.bench.classic import baseline, live_baseline
from edgecam.bench.stats import peak_rss_mb
from edgecam.bench.variants import ceiling, live, pipeline

VARIANTS = {"ceiling": ceiling, "pipeline": pipeline, "baseline": baseline,
            "live": live, "live_baseline": live_baseline}


def child_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    result = VARIANTS[spec["variant"]](spec)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_s"] = round(time.process_time(), 3)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0

"""`edgecam bench`: how fast edgecam really runs on this machine, and against what.

One run measures, each variant in a fresh subprocess (so peak memory and start-up time
are the variant's own):

  ceiling        interpreter only: invoke() on one fixed preprocessed frame, after warm-up,
                 with the same thread count, as many invokes as the pipeline has frames;
                 both as one interpreter with N threads and as N one-thread interpreters
                 side by side (the better is the ceiling); also a scan over 1..N threads
  pipeline       the real file-mode pipeline (edgecam.pipeline.run_file with a real Config),
                 with the annotated video and JSON Lines on, and with them off
  baseline       the plain one-thread loop of the well-known Raspberry Pi TFLite examples:
                 read, cvtColor, resize, set_tensor, invoke, get outputs, draw, write,
                 one after another
  live           run_live against a loopback camera serving the same footage at 30 fps
                 with each frame's index stamped in its pixels; the age of the frame behind
                 each result when that result is first drawn, and the frames that got none;
                 the same for the baseline loop reading the same camera; and run_live
                 headless (nothing drawn): the age when each result is made, and the CPU
                 seconds per inferred frame of all three

The three file-mode variants and the ceiling run in ``--repeat`` rounds, one after another,
so a slow spell of the machine falls on all of them; each figure is its best round. The live
variants share ``--live-seconds`` in ``--repeat`` interleaved rounds too, their ages pooled.

Per-stage latency (decode, preprocess, inference, postprocess, overlay, output) p50/p95,
peak RSS (VmHWM) and the time from process start to the first result are reported for
each. `--models a,b,c` sweeps models: mult-adds and parameters (from the graph, via
edgecam/costlens/costs.py) beside latency and FPS, so the α² and ρ² scaling shows; `--plot FILE`
draws them with the published top-1 (edgecam/tradeoff.py), and every sweep is saved for the
browser view's chart.

  variants.py  the children: ceiling, pipeline, live     classic.py  the classic loop
  runner.py    the parent: rounds, children, quiet wait  stats.py    percentiles, frame ages
  report.py    the tables                                loopback.py the loopback camera
  child.py     a child process's entry                 command.py  the command line (main)

This file only re-exports.
"""

from edgecam.bench.command import main
from edgecam.bench.report import format_report
from edgecam.pipeline.clock import STAGES

__all__ = ["main", "format_report", "STAGES"]

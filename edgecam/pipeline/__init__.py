"""The pipeline's runners and everything they share: a loop of a few verbs per mode.

  file_mode.py   every frame, in order: read ▶ infer (N at once) ▶ in order ▶ draw ▶ sinks
  live_mode.py   the newest frame only: capture ▶ infer ▶ draw the freshest result ▶ sinks
  tuning.py      the live settings: one object (values in force, checked, carried out, told
                 to every sink), passed to the model and the tracker per call
  sync.py        the threads (Workers), the leaky slot of one, the stop flag
  hooks.py       every event a supervisor gets (systemd, the bench), no-ops by default
  summary.py     the run's summary, and first result / alive for both modes
  clock.py       stage timing, injected (a no-op clock by default)
  state.py       what the live threads share (also the browser's /status)
  reconnect.py   a camera that stopped delivering, reopened with backoff
  meter.py       events per second

The stages themselves live in edgecam/sources/ (source), edgecam/model/ (preprocess,
inference, postprocess) and edgecam/sinks/ (overlay and every output)."""

from edgecam.pipeline.clock import NO_CLOCK, StageClock, StageTimes
from edgecam.pipeline.file_mode import run_file
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.live_mode import run_live
from edgecam.pipeline.meter import RateMeter
from edgecam.pipeline.state import LiveState
from edgecam.pipeline.summary import Summary, Tally
from edgecam.pipeline.sync import END, LatestSlot, StopFlag, Workers

__all__ = ["run_file", "run_live", "Hooks", "StopFlag", "LatestSlot", "Workers", "RateMeter", "Summary",
           "Tally", "LiveState", "StageClock", "StageTimes", "NO_CLOCK", "END"]

"""`edgecam eval TRUTH`: score counts against a ground-truth file (edgecam/track/score.py).

Either it runs the pipeline itself in file mode (every flag of a file run is accepted; the
truth's lines and zones are added where they give a place and the run names none), or it
reads what a run already wrote (``--events FILE``, with ``--frames FILE``, the run's ``--json``
output, for each id's frames). It prints the score (``--json``: as one JSON document).
Exit 0 when it scored (whatever the score), 2 for a bad truth file or flags, 1 when the run
or a file failed."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from edgecam.bounds import read_bounded, show
from edgecam.errors import ArgParser, OutputError, UsageError
from edgecam.track.rules import Line, Zone
from edgecam.track.score import Truth, TruthError, Window, frame_spans, parse_truth, score, spans_from
from edgecam.yamlfile import load_yaml

MAX_TRUTH_BYTES = 1 << 20      # a hand-written file is a few hundred bytes
MAX_LINE_BYTES = 1 << 20       # one JSON line of a run's output


def parser() -> ArgParser:
    p = ArgParser(prog="edgecam eval", description="Score a run's counts against a ground-truth file "
                  "(YAML: crossings per line and direction, zone entries, objects per label). Runs the "
                  "pipeline on --source with any other flag of a file run, or reads --events (and --frames).")
    p.add_argument("truth", metavar="TRUTH", help="the ground-truth YAML file")
    p.add_argument("--events", metavar="FILE", help="score this events file (a run's --events) instead of running")
    p.add_argument("--frames", metavar="FILE",
                   help="with --events: the run's JSON lines (--json), for each id's frames")
    p.add_argument("--json", dest="as_json", action="store_true", help="print the score as JSON")
    p.add_argument("--tolerance", type=int, default=15, metavar="FRAMES",
                   help="frames a crossing may lie outside its truth window (default 15)")
    return p


def main(argv: List[str], configure: Callable[[List[str]], Tuple[object, bool]]) -> int:
    """``configure``: a file run's flags to (config, fetch first), as `edgecam [flags]` reads them."""
    args, rest = parser().parse_known_args(argv)
    if args.tolerance < 0:
        raise UsageError("--tolerance must be 0 or more frames")
    truth = read_truth(Path(args.truth))
    if args.events:
        if rest:
            raise UsageError(f"with --events, eval reads a run's outputs and takes no run flags ({show(rest[0])})")
        events = list(read_jsonl(Path(args.events)))
        spans, total = frame_spans(read_jsonl(Path(args.frames))) if args.frames else ({}, truth.frames)
    else:
        events, spans, total = run(truth, *configure(rest))
    if total is not None:
        truth.check_frames(total)
    last = total - 1 if total else max((e.get("frame", 0) for e in events), default=0)
    report = score(truth, events, {**spans_from(events, last), **spans}, args.tolerance)
    if args.as_json:
        print(json.dumps(report.to_json()))
    else:
        print(f"edgecam eval: {args.truth}\n{report.format()}")
    return 0


def read_truth(path: Path) -> Truth:
    data = read_bounded(path, "the truth file", MAX_TRUTH_BYTES, TruthError)
    try:
        doc = load_yaml(data.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise TruthError(f"the truth file {show(str(path))} is not UTF-8 text") from None
    except UsageError as err:
        raise TruthError(str(err)) from None
    return parse_truth(doc, show(str(path)))


def read_jsonl(path: Path) -> Iterator[dict]:
    """A run's JSON lines, one record at a time; one sentence for a file that is not one (a
    last line cut short by a crash is left out: the run wrote whole lines until then)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            held: Optional[str] = None
            for n, line in enumerate(f, start=1):
                if held is not None:
                    yield _record(held, path, n - 1)
                held = line
            if held is not None:
                try:
                    rec = _record(held, path, n)
                except UsageError:
                    if held.endswith("\n"):
                        raise
                    return                  # cut short by a crash: the lines before it are whole
                yield rec
    except (OSError, UnicodeDecodeError) as err:
        raise OutputError(f"cannot read {show(str(path))}: {getattr(err, 'strerror', None) or err}") from None


def _record(line: str, path: Path, n: int) -> dict:
    try:
        rec = json.loads(line) if len(line) <= MAX_LINE_BYTES else None
    except ValueError:
        rec = None
    if not isinstance(rec, dict) or not isinstance(rec.get("frame", 0), int):
        raise UsageError(f"{show(str(path))} line {n} is not one of edgecam's JSON lines")
    return rec


def run(truth: Truth, cfg, fetch: bool) -> Tuple[List[dict], Dict[int, Window], int]:
    """Run the pipeline in file mode on ``cfg`` with the truth's lines and zones where it has
    none; the run's events and JSON lines."""
    from edgecam import app                 # the run: the model and OpenCV load only here
    if not Path(str(cfg.source.uri)).is_file():
        raise UsageError("edgecam eval runs the pipeline on a video file: give --source FILE (or --events "
                         "FILE to score a run's outputs)")
    cfg.rules.lines = list(cfg.rules.lines) or truth.line_specs()
    cfg.rules.zones = list(cfg.rules.zones) or truth.zone_specs()
    have = [Line.parse(spec, i).name for i, spec in enumerate(cfg.rules.lines)] + \
           [Zone.parse(z, i).name for i, z in enumerate(cfg.rules.zones)]
    for name in list(truth.lines) + list(truth.zones):
        if name not in have:
            raise TruthError(f"the truth names {name!r}, which the run does not have (its lines and zones: "
                             f"{', '.join(have) or 'none'}): give it a place in the truth (at: or points:) or a --line")
    with tempfile.TemporaryDirectory(prefix="edgecam-eval-") as tmp:
        cfg.output.events, cfg.output.json = str(Path(tmp) / "events.jsonl"), str(Path(tmp) / "frames.jsonl")
        cfg.output.display, cfg.output.overwrite = "none", True
        with contextlib.redirect_stdout(sys.stderr):         # the run's summary: not the score
            code = app.main(cfg, fetch=fetch)
        if code != 0:
            raise OutputError(f"the run stopped before the end of the video (exit {code}): nothing scored")
        spans, total = frame_spans(read_jsonl(Path(cfg.output.json)))
        return list(read_jsonl(Path(cfg.output.events))), spans, total

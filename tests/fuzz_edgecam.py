"""Fuzzing edgecam's config file and command line (issue 11).

Each case mutates config.yaml (one value, or the text itself) or one command-line value,
runs `python -m edgecam` on it in a subprocess with an address-space cap and a timeout, and
sorts the outcome:

  clean      exit 1 or 2 with one sentence `edgecam: error: ...` (of at most 400 characters)
  accepted   exit 0 on a value that may be right
  wrong      exit 0 on a value that cannot be right (a type, range or choice violation, a
             bomb, a special file where a file belongs)
  traceback  a Python traceback, another exit code, or an error that is not one sentence
  hang       still running at the timeout

    python tests/fuzz_edgecam.py --models DIR --media DIR --cases 3000 [--seed 1] [--jobs 2]

The suite runs a seeded ~1 minute sample of it (tests/test_fuzz.py)."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import typing
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 1536 * 1024 * 1024     # a normal run peaks well under 1 GB of address space
TIMEOUT = 60.0

BOMB = ("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n")


def hostile_values(rng: random.Random, tmp: Path) -> List[Tuple[object, bool]]:
    """(value, always_wrong_for_a_path) pairs: what a fuzzer throws at any key."""
    long = "x" * rng.choice([256, 300, 1000, 5000])
    return [
        (-1, False), (0, False), (10 ** rng.randint(3, 40), False), (float("nan"), False), (float("inf"), False),
        (-1e308, False), (True, False), (None, False), ("", False), (long, True), ("a\nERROR forged line", False),
        ("\x00", True), ("\x1b[31mred", False), ([1, 2, 3], True), ({"k": "v"}, True), ("/dev/zero", True),
        ("/dev/full", True), (str(tmp / "fifo"), True), (str(tmp), True), ("/nonexistent/x.mp4", True),
        ("ünïcødé ✓", False), ("99999", False), ("abc", False), ("0.0.0.0:99999", False), ("-1", False),
        ("../" * 50 + "etc/passwd", False), ("%s%n%x", False), ("v1_ssd", False), (rng.random() * 100, False),
        (rng.randint(-10, 10000), False), ("NaN", False), ("1e999", False), ("*", False), ("[", False),
    ]


def config_keys() -> List[Tuple[str, type, Optional[tuple], Optional[tuple]]]:
    """(key, base type, choices, range) for every setting."""
    sys.path.insert(0, str(ROOT))
    import dataclasses
    import typing
    from edgecam import config as c
    from edgecam.schema import unwrap
    out = []
    for section in dataclasses.fields(c.Config):
        if section.metadata.get("internal"):
            continue
        obj = getattr(c.Config(), section.name)
        if not dataclasses.is_dataclass(obj):
            out.append((section.name, str, c.CHOICES.get(section.name), None))
            continue
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            key = f"{section.name}.{f.name}"
            tp = hints[f.name]
            base = unwrap(tp)            # Optional[int] -> int; List[str] stays a list
            out.append((key, base, c.CHOICES.get(key), c.RANGES.get(key)))
    return out


def must_fail(key: str, base: type, choices, rng_, value, path_wrong: bool) -> bool:
    """True when no correct program may accept ``value`` for ``key``."""
    from edgecam.config import PATH_KEYS, TOKEN_CHARS
    if value is None:
        return False  # null: a default or "off" for optional keys; a type error otherwise (not asserted)
    if typing.get_origin(base) is list:     # filters.allow, rules.lines ...: a list; a line must parse
        return not isinstance(value, list) or (key == "rules.lines" and bool(value))
    if typing.get_origin(base) is dict:     # filters.min_score: label -> a number in range
        return not isinstance(value, dict) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                                  or not rng_[0] <= v <= rng_[1] for v in value.values())
    if base is bool:
        return not isinstance(value, bool)
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (base is int and isinstance(value, float)):
            return True
        return rng_ is not None and not (rng_[0] <= value <= rng_[1])
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return True
    if choices and str(value) not in choices:
        return True
    if key in ("output.web", "output.metrics"):
        return not _valid_web(str(value))
    if key == "output.web_token":
        return not re.fullmatch(TOKEN_CHARS, str(value))
    if key == "source.fourcc":
        return len(str(value)) != 4
    # (the folder keys: a folder is right for them)
    return path_wrong and key in PATH_KEYS and key not in ("model.mirror", "output.snapshot_dir", "output.clips")


def _valid_web(text: str) -> bool:
    port = text.rpartition(":")[2]
    return port.isdigit() and int(port) <= 65535


def base_config(models: Path, media: Path, out: Path) -> dict:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["model"].update(name="v1_ssd", dir=str(models))
    data["source"]["uri"] = str(media / "parrot.jpg")
    data["output"].update(display="none", json=str(out / "out.jsonl"), overwrite=True)
    return data


def make_case(rng: random.Random, models: Path, media: Path, tmp: Path):
    """(argv, must_fail, description) for one mutation."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    data = base_config(models, media, out)
    kind = rng.random()
    cfg = out / "config.yaml"
    if kind < 0.55:  # one value of config.yaml
        key, base, choices, rng_ = rng.choice(config_keys())
        value, path_wrong = rng.choice(hostile_values(rng, tmp))
        section, _, name = key.partition(".")
        if name:
            data[section][name] = value
        else:
            data[section] = value
        text = yaml.safe_dump(data, allow_unicode=True)
        cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
        return ["--config", str(cfg)], must_fail(key, base, choices, rng_, value, path_wrong), f"{key}={value!r:.60}"
    if kind < 0.8:  # the text of the file
        text = yaml.safe_dump(data).encode()
        how = rng.choice(["bomb", "deep", "bytes", "cut", "dup", "huge", "tabs", "alias", "binary"])
        if how == "bomb":
            text = BOMB.encode() + b"model:\n  name: *g\n"
        elif how == "deep":
            n = rng.choice([50, 500, 5000, 50000])
            text = b"model:\n  name: " + b"[" * n + b"]" * n + b"\n"
        elif how == "bytes":
            i = rng.randrange(len(text))
            text = text[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + text[i:]
        elif how == "cut":
            text = text[:rng.randrange(len(text))]
        elif how == "dup":
            text = text + text
        elif how == "huge":
            text = text + b"# " + b"y" * rng.choice([300_000, 3_000_000]) + b"\n"
        elif how == "tabs":
            text = text.replace(b"  ", b"\t", rng.randint(1, 5))
        elif how == "alias":
            text = b"x: &x " + json.dumps(data).encode() + b"\nmodel: *x\n"
        else:
            text = os.urandom(rng.randint(1, 4096))
        cfg.write_bytes(text)
        bad = how in ("bomb", "deep", "huge", "alias", "dup")
        return ["--config", str(cfg)], bad, f"text:{how}"
    # one command-line value
    cfg.write_text(yaml.safe_dump(data))
    flag = rng.choice(["--model", "--labels", "--model-dir", "--threads", "--rho", "--threshold", "--top-k",
                       "--source", "--output", "--json", "--web", "--runtime", "--resize", "--display", "--log-level",
                       "--events", "--line", "--allow"])
    value, path_wrong = rng.choice(hostile_values(rng, tmp))
    path_wrong = path_wrong and isinstance(value, str)  # '[1, 2, 3]' can name a file
    text = value if isinstance(value, str) else json.dumps(value) if not isinstance(value, float) else repr(value)
    if "\x00" in text:
        text = text.replace("\x00", "")  # an argv cannot hold a NUL
        path_wrong = False
    bad = flag in ("--labels", "--output", "--json", "--source", "--model", "--events") and path_wrong
    bad = bad or flag == "--line"           # none of the hostile values is X1,Y1,X2,Y2 in fractions
    bad = bad or (flag == "--web" and not _valid_web(text))
    return ["--config", str(cfg), flag, text], bad, f"{flag} {text!r:.60}"


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    os.setsid()


def run_case(argv: List[str], cwd: Path, timeout: float = TIMEOUT) -> Tuple[str, int, str]:
    """(outcome, exit code, stderr) of `edgecam ARGV` run in ``cwd`` (where relative names land)."""
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("EDGECAM_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    p = subprocess.Popen([sys.executable, "-m", "edgecam", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, cwd=cwd, env=env, preexec_fn=_limits)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        return "hang", -9, ""
    err = err.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith(("INFO", "WARNING", "DEBUG"))]
    if "Traceback" in err or p.returncode not in (0, 1, 2):
        return "traceback", p.returncode, err
    if p.returncode == 0:
        return "accepted", 0, err
    if len(lines) == 1 and lines[0].startswith("edgecam: error: ") and len(lines[0]) <= 400:
        return "clean", p.returncode, err
    return "traceback", p.returncode, err


def fuzz(models: Path, media: Path, cases: int, seed: int, jobs: int = 2, budget_s: Optional[float] = None):
    """Run ``cases`` cases (fewer if ``budget_s`` runs out); returns (Counter, failures)."""
    rng = random.Random(seed)
    counts: Counter = Counter()
    failures = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgecam-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        os.mkfifo(tmp / "fifo")
        specs = [make_case(rng, models, media, tmp) for _ in range(cases)]

        def one(spec):
            if budget_s is not None and time.monotonic() - start > budget_s:
                return None
            argv, bad, what = spec
            outcome, code, err = run_case(argv, Path(argv[1]).parent)
            if outcome == "accepted" and bad:
                outcome = "wrong"
            return outcome, code, what, err

        with ThreadPoolExecutor(jobs) as pool:
            for r in pool.map(one, specs):
                if r is None:
                    continue
                outcome, code, what, err = r
                counts[outcome] += 1
                if outcome in ("traceback", "hang", "wrong"):
                    failures.append((outcome, code, what, err[-1500:]))
    return counts, failures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True, type=Path)
    p.add_argument("--media", required=True, type=Path)
    p.add_argument("--cases", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()
    t0 = time.monotonic()
    counts, failures = fuzz(a.models, a.media, a.cases, a.seed, a.jobs)
    for f in failures:
        print("FAIL", f[0], f[1], f[2], "\n   ", f[3].replace("\n", "\n    "))
    print(f"{sum(counts.values())} cases in {time.monotonic() - t0:.0f} s (seed {a.seed}):",
          ", ".join(f"{k} {counts[k]}" for k in ("clean", "accepted", "wrong", "traceback", "hang")))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

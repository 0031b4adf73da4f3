"""`edgecam models info NAME --measure` on a real model of the mirror: each separable pair and
the whole network timed, standard against separable, in the installed interpreter. Outcomes
are asserted, not speeds: the separable network is not faster in every interpreter (tflite-runtime
2.14's x86 wheel on Python 3.9 measured it at 0.2x, the standard network the faster)."""

import json
import re

import pytest

from edgecam import cli
from helpers import run_edgecam

MODEL = "v1_0.25_128"


@pytest.fixture(scope="module")
def measured(mirror):
    if not (mirror / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        pytest.skip("the mirror has no V1 0.25/128")
    r = run_edgecam("models", "info", MODEL, "--model-dir", mirror, "--measure", "--budget", "8", timeout=240)
    assert r.returncode == 0, r.stderr
    return r


def test_whole_model_line(measured):
    out = measured.stdout
    m = re.search(r"whole model: measured (\d+\.\d)x faster than the same network with standard "
                  r"convolutions \(mult-adds predict (\d+\.\d)x; efficiency (\d+)%\)", out)
    assert m, out
    speedup, predicted, efficiency = float(m.group(1)), float(m.group(2)), int(m.group(3))
    assert speedup > 0
    assert predicted == 7.4                       # 1/N + 1/Dk^2 over the network, from the graph
    assert abs(efficiency - 100 * speedup / predicted) <= 2
    assert "Traceback" not in measured.stderr


def test_a_row_per_pair_and_the_shares(measured):
    out = measured.stdout.split("measured here:", 1)[1]
    rows = [l for l in out.splitlines() if re.match(r"\s+\d+\s+\d+\s+3\s", l)]
    assert len(rows) == 13                        # V1's 13 depthwise separable pairs
    for row in rows:
        cells = row.split()
        assert float(cells[6]) == pytest.approx(1 / int(cells[4]) + 1 / 9, abs=1e-4)   # 1/N + 1/Dk^2
        assert cells[-2].endswith("x") and cells[-1].endswith("%")                  # speed-up, efficiency
        assert all(float(c) > 0 for c in cells[8:12])                                # four times
    shares = {l.split()[0]: l for l in out.splitlines() if re.match(r"\s+(depthwise|1x1|the rest)\s", l)}
    assert set(shares) == {"depthwise", "1x1", "the"}
    assert "mult-adds" in out and "median of" in out
    assert re.search(r"arithmetic rate .*: standard conv \d+, 1x1 conv \d+, depthwise conv \d+", out)


def test_json(mirror, capsys):
    if not (mirror / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        pytest.skip("the mirror has no V1 0.25/128")
    assert cli.main(["models", "info", MODEL, "--model-dir", str(mirror), "--measure", "--json",
                     "--budget", "3", "--repeat", "5", "--threads", "1"]) == 0
    m = json.loads(capsys.readouterr().out)["measured"]
    assert m["threads"] == 1 and 3 <= m["rounds"] <= 5 and len(m["pairs"]) == 13
    assert m["speedup"] > 0 and m["efficiency"] == pytest.approx(m["speedup"] / m["predicted"])
    assert sum(v["time"] for v in m["shares"].values()) == pytest.approx(1)
    assert m["shares"]["pointwise"]["madds"] > 0.8                 # V1: 1x1 convs do the arithmetic
    assert all(v > 0 for v in m["gmadds_per_s"].values())
    assert m["int8_ms"] > 0                       # the int8 rewrite timed beside it (cached in the state folder)


def test_bad_options_are_one_sentence(mirror, capsys):
    for extra, words in ((["--repeat", "0"], "--repeat must be at least 1"),
                         (["--budget", "0"], "--budget must be above 0")):
        assert cli.main(["models", "info", MODEL, "--model-dir", str(mirror), "--measure", *extra]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err

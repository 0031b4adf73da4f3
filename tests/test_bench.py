"""`edgecam bench` run briefly on the real model and footage: every figure present and sane.
No timing is asserted (the figures depend on the machine and its load)."""

import json

import pytest

from edgecam import bench, cli
from edgecam.errors import UsageError

VIDEO = "bottle-detection.mp4"


@pytest.fixture(scope="module")
def report(mirror, tmp_path_factory):
    media = mirror.parent / "media"
    if not (media / VIDEO).is_file():
        pytest.skip(f"no test footage at {media / VIDEO}")
    if not (mirror / "ssd_mobilenet_v1_1.0_300_coco_quant.tflite").is_file():
        pytest.skip("the mirror has no SSD MobileNet V1")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    code = cli.main(["bench", "--model", "v1_ssd", "--model-dir", str(mirror), "--source", str(media / VIDEO),
                     "--frames", "40", "--live-seconds", "3", "--quiet-wait", "0", "--no-thread-scan", "--repeat", "2",
                     "--models", "v1_ssd,v1_0.25_128", "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def _stages_sane(stages: dict) -> None:
    assert set(stages) == set(bench.STAGES)
    for name in ("decode", "preprocess", "inference", "postprocess"):
        s = stages[name]
        assert s["n"] > 0, name
        assert 0 <= s["p50"] <= s["p95"], (name, s)


def test_report_has_every_figure(report):
    assert report["model"] == "v1_ssd" and report["threads"] >= 1
    assert report["machine"]["cpus"] >= 1
    (src,) = report["sources"]
    c = src["ceiling"]
    assert c["fps"] > 0 and c["invokes"] >= 5
    assert 0 < c["invoke_ms"]["p50"] <= c["invoke_ms"]["p95"]
    assert c["peak_rss_mb"] > 0
    for key in ("pipeline_outputs_on", "pipeline_outputs_off", "baseline"):
        r = src[key]
        assert r["frames"] == 40, key
        assert r["fps"] > 0, key     # how it compares with the ceiling is the bench's to report, not a test's
        assert r["peak_rss_mb"] > 0, key
        assert r["first_result_s"] is not None and 0 < r["first_result_s"] < 60, key
        assert r["of_ceiling"] > 0 and r["vs_baseline"] > 0, key
        assert r["other_load"] is None or 0 <= r["other_load"] <= 1
        _stages_sane(r["stages"])
    assert len(src["rounds"]) == 2                     # interleaved rounds, each shown
    for rnd in src["rounds"]:
        assert 0 < rnd["ceiling_fps"] <= c["fps"]          # the ceiling is the best round's
        assert rnd["on_of_ceiling"] > 0 and rnd["off_of_ceiling"] > 0 and rnd["on_vs_baseline"] > 0
    assert c["invokes"] == 40                             # as long as a pipeline run
    on = src["pipeline_outputs_on"]
    assert on["stages"]["overlay"]["n"] == 40 and on["stages"]["output"]["n"] == 40
    assert on["video_frames"] == 40 and on["json_lines"] == 40    # every frame written
    assert src["baseline"]["stages"]["output"]["n"] == 40


def test_live_figures(report):
    live = report["sources"][0]["live"]
    for name in ("pipeline", "baseline"):
        v = live[name]
        assert v["results"] > 0, name
        a = v["age_ms"]
        assert 0 < a["p50"] <= a["p95"] <= a["max"], (name, a)
        assert v["dropped"] >= 0 and v["not_received"] >= 0
        assert v["budget_ms"] > 0 and v["peak_rss_mb"] > 0
        assert len(v["quarters_ms"]) == 4


def test_sweep_shows_cost_and_speed(report):
    rows = {r["model"]: r for r in report["sweep"]}
    assert set(rows) == {"v1_ssd", "v1_0.25_128"}
    for r in rows.values():
        assert r["madds_m"] > 0 and r["params_m"] > 0
        assert r["invoke_ms_p50"] > 0 and r["ceiling_fps"] > 0 and r["pipeline_fps"] > 0
    assert abs(rows["v1_0.25_128"]["madds_m"] - 14) / 14 < 0.05     # the slim table's 14M
    assert rows["v1_0.25_128"]["madds_m"] < rows["v1_ssd"]["madds_m"]


def test_table_printed(report, capsys):
    text = bench.format_report(report)
    for word in ("ceiling", "video+JSON on", "outputs off", "baseline", "live", "p95", "mult-adds"):
        assert word in text


def test_bad_source_is_one_sentence(mirror, capsys):
    assert cli.main(["bench", "--model", "v1_ssd", "--model-dir", str(mirror),
                     "--source", "/nonexistent.mp4", "--live-seconds", "0"]) == 2
    err = capsys.readouterr().err
    assert "no such video file" in err and "Traceback" not in err


def test_int8_modes_one_sentence():
    from edgecam.bench import _int8_modes
    assert _int8_modes(None) == [None] and _int8_modes("off,on") == ["off", "on"]
    with pytest.raises(UsageError):
        _int8_modes("fast")

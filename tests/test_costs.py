"""The cost lens against the real models of the mirror and the MobileNet papers' figures."""

import functools
import json
from pathlib import Path

import pytest

from edgecam.costlens.costs import KINDS, analyze, format_report
from edgecam.errors import ModelError

V1_075 = "mobilenet_v1_0.75_224_quant.tflite"
V1_025 = "mobilenet_v1_0.25_128_quant.tflite"
V2 = "mobilenet_v2_1.0_224_quant.tflite"
V3S = "mobilenet_v3_small_1.0_224_uint8.tflite"
SSD = "ssd_mobilenet_v1_1.0_300_coco_quant.tflite"


@pytest.fixture
def models(mirror) -> Path:
    """The model mirror (tests/conftest.py's fixture: skips, saying why, where it is absent)."""
    return mirror


@functools.lru_cache(maxsize=None)
def _analyze(path: str):
    return analyze(path)


@pytest.fixture
def cost(models):
    def get(name):
        path = models / name
        if not path.is_file():
            pytest.skip(f"{name} is not in the model mirror")
        return _analyze(str(path))
    return get


def _close(measured, published, tol=0.02):
    return abs(measured - published) / published <= tol


# The papers' figures: V1 Table 6 (0.75 MobileNet-224), V2 Table 4, V3 Table 3 (Small 1.0).
PAPER = [
    (V1_075, "madds", 325e6),
    (V1_075, "params", 2.6e6),
    (V2, "madds", 300e6),
    (V3S, "madds", 56e6),
    (V3S, "params", 2.5e6),
]


@pytest.mark.parametrize("name,what,published", PAPER, ids=[f"{n}-{w}" for n, w, _ in PAPER])
def test_totals_agree_with_the_papers(cost, name, what, published):
    measured = getattr(cost(name), what)
    assert _close(measured, published), f"{name}: {what} {measured:,} vs published {published:,.0f}"


def test_v2_params_agree_with_the_published_checkpoint_table(cost):
    # The V2 paper prints 3.4M; the TF-slim table for this very checkpoint prints 3.47M, which is
    # its weight count (3,471,040 with the 1001-way classifier). The paper's figure is 3.47M cut to
    # two digits, 2.1% below even the weights alone: no counting convention reaches it within 2%.
    # With the folded batch-norm biases this graph has 3,489,097 parameters (+0.5%).
    params = cost(V2).params
    assert _close(params, 3.47e6), params
    assert 3.4e6 <= params < 3.5e6  # "3.4M" as printed, read as a truncated figure


def test_v1_025_128_madds(cost):
    # The published "14M" (TF-slim table) is rounded to whole millions; the paper gives this width
    # at 224 px as 41M (Table 6), and the cost scales with rho^2 (section 3.3): 41M * (128/224)^2.
    madds = cost(V1_025).madds
    assert round(madds / 1e6) == 14, madds
    assert _close(madds, 41e6 * (128 / 224) ** 2), madds


@pytest.mark.parametrize("name", [V1_075, V1_025, V2, V3S, SSD])
def test_kinds_sum_to_the_totals(cost, name):
    c = cost(name)
    totals = c.totals
    assert set(totals) == set(KINDS)
    assert sum(m for _, m in totals.values()) == c.madds
    assert sum(p for p, _ in totals.values()) == c.params
    assert 0.0 < c.pointwise_share < 1.0
    assert c.pointwise_share == pytest.approx(totals["pointwise"][1] / c.madds)


def test_v1_layers_and_pairs(cost):
    c = cost(V1_075)
    kinds = [l.kind for l in c.layers]
    # conv0, 13 x (depthwise, pointwise), classifier (a 1x1 conv on the pooled 1x1 map = fc)
    assert kinds == ["conv"] + ["depthwise", "pointwise"] * 13 + ["fc"]
    first = c.layers[0]
    assert (first.kernel, first.in_ch, first.out_ch, first.out_hw, first.stride) == ((3, 3), 3, 24, (112, 112), 2)
    assert first.madds == 112 * 112 * 24 * 3 * 3 * 3
    assert first.params == 24 * 3 * 3 * 3 + 24
    fc = c.layers[-1]
    assert (fc.in_ch, fc.out_ch, fc.madds, fc.params) == (768, 1001, 768 * 1001, 768 * 1001 + 1001)
    assert [l.stride for l in c.layers if l.kind == "depthwise"] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert len(c.pairs) == 13
    for p in c.pairs:
        n, dk = p.pointwise.out_ch, p.depthwise.kernel[0]
        assert dk == 3
        assert p.ratio == pytest.approx(1 / n + 1 / 9, rel=1e-9)
        assert p.ratio == pytest.approx(p.paper_ratio, rel=1e-9)
        assert p.separable_madds == p.depthwise.madds + p.pointwise.madds
        oh, ow = p.pointwise.out_hw
        assert p.standard_madds == oh * ow * n * 3 * 3 * p.depthwise.in_ch
    # the V1 paper's Table 2 shape: nearly all mult-adds in 1x1 convs, the fc holds many params
    assert c.pointwise_share > 0.9
    assert c.totals["fc"][0] / c.params > 0.2


def test_v3_small_pairs_through_squeeze_excite(cost):
    c = cost(V3S)
    # every depthwise reaches its projection 1x1 through h-swish and the squeeze-excite gate
    assert len(c.pairs) == sum(l.kind == "depthwise" for l in c.layers) == 11
    assert {p.depthwise.kernel for p in c.pairs} == {(3, 3), (5, 5)}
    for p in c.pairs:
        assert p.ratio == pytest.approx(p.paper_ratio, rel=1e-9)
    # the squeeze-excite layers (1x1 convs on 1x1 maps) are counted, as fc
    se = [l for l in c.layers if "squeeze_excite" in l.name]
    assert len(se) == 18 and all(l.kind == "fc" for l in se)


def test_report_has_a_row_per_layer(cost):
    c = cost(V1_075)
    text = format_report(c, layers=True)
    names = [l.name.split(";")[0] for l in c.layers]   # the report shows a fused name's first part
    rows = [line for line in text.splitlines() if any(line.rstrip().endswith(n) for n in names)]
    assert len(rows) == len(c.layers)
    for n in names:
        assert sum(line.rstrip().endswith(n) for line in rows) == 1, n
    assert sum(" 1x1 conv " in r for r in rows) == 13
    assert sum(" depthwise " in r for r in rows) == 13
    short = format_report(c)
    for word in ("conv", "depthwise", "1x1 conv", "fc", "325M", "2.58M", "paper"):
        assert word in short
    assert not any(n in short for n in names)
    assert len(short.splitlines()) < len(text.splitlines())


def test_to_dict_is_json(cost):
    c = cost(V3S)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["madds"] == c.madds and d["params"] == c.params
    assert len(d["layers"]) == len(c.layers) and len(d["pairs"]) == len(c.pairs)
    assert d["totals"]["pointwise"]["madds"] == c.totals["pointwise"][1]
    assert d["input_shape"] == [1, 224, 224, 3]


def test_ssd_detector(cost):
    c = cost(SSD)
    # The published detect.tflite is the depth-multiplier-0.75 SSD MobileNet V1 (first conv 24
    # channels, 384 at 19x19) with 1x1 box predictors -- not the paper's alpha=1.0 SSD300
    # (1.2B mult-adds, 6.8M params).
    assert c.input_shape == (1, 300, 300, 3)
    assert c.layers[0].out_ch == 24
    assert len(c.pairs) == 13
    assert 700e6 < c.madds < 760e6
    assert 4.0e6 < c.params < 4.2e6
    assert "depthwise separable pairs" in format_report(c, layers=True)


def test_not_a_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError):
        analyze(bad)

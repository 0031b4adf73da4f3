"""The TFLite writer (edgecam/costlens/tflite_writer.py): each written int8 model loads in the
installed interpreter, and its output equals a numpy reference convolution (TFLite's
requantization: round(acc * in_scale * w_scale / out_scale) + zero point, clamped) on random
int8 input, within one step (XNNPACK and the reference kernels round a few values differently)."""

import numpy as np
import pytest

from edgecam.model.engine import make_interpreter
from edgecam.costlens.tflite_writer import SAME, VALID, Conv, Quant, conv_chain, out_size, spread_scale

IN_Q = Quant.of(0.02, -5)


def _pad(x: np.ndarray, k: int, stride: int, padding: int):
    """(x - zero point as int32, padded the way TFLite pads SAME: the extra row/column at the end)."""
    if padding == VALID:
        return x
    h, w = x.shape[1:3]
    ph = max((out_size(h, k, stride, SAME) - 1) * stride + k - h, 0)
    pw = max((out_size(w, k, stride, SAME) - 1) * stride + k - w, 0)
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def reference(x: np.ndarray, in_q: Quant, layer: Conv, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    xi = _pad(x.astype(np.int64) - in_q.zero_point[0], layer.k, layer.stride, layer.padding)
    oh = out_size(x.shape[1], layer.k, layer.stride, layer.padding)
    ow = out_size(x.shape[2], layer.k, layer.stride, layer.padding)
    acc = np.zeros((oh, ow, layer.out_ch), np.int64)
    for i in range(layer.k):
        for j in range(layer.k):
            patch = xi[0, i:i + oh * layer.stride:layer.stride, j:j + ow * layer.stride:layer.stride, :]
            if layer.depthwise:
                acc += patch * weights[0, i, j, :].astype(np.int64)
            else:
                acc += patch @ weights[:, i, j, :].astype(np.int64).T
    acc += bias
    mult = in_q.scale[0] * np.asarray(layer.w_scale) / layer.out.scale[0]
    y = np.round(acc * mult) + layer.out.zero_point[0]
    lo = -128
    if layer.activation in ("relu", "relu6"):
        lo = max(lo, layer.out.zero_point[0])
    hi = 127 if layer.activation != "relu6" else min(127, layer.out.zero_point[0] + round(6 / layer.out.scale[0]))
    return np.clip(y, lo, hi).astype(np.int8)[None]


OUT_Q = Quant.of(0.05, 3)


def _conv(k, m, n, stride, depthwise=False, padding=SAME, activation="none", out=OUT_Q):
    fan_in = k * k * (1 if depthwise else m)
    scale = spread_scale(IN_Q.scale[0], out.scale[0], fan_in)
    scales = tuple(scale * (1 + 0.5 * i / n) for i in range(n))       # per channel, all different
    return Conv(k, n, stride, scales, out, depthwise=depthwise, activation=activation, padding=padding)


def _run(tmp_path, built, x, runtime, threads=2):
    path = tmp_path / "m.tflite"
    path.write_bytes(built.model)
    interp = make_interpreter(path, threads=threads, runtime=runtime)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(out["index"])


CASES = [  # (H, W, M, N, k, stride, padding)
    (9, 9, 8, 16, 3, 1, SAME),
    (10, 10, 8, 12, 3, 2, SAME),        # stride 2, even size: SAME pads only at the end
    (11, 7, 5, 6, 3, 2, SAME),          # odd, non-square
    (8, 8, 4, 8, 1, 1, SAME),           # a pointwise conv
    (9, 9, 6, 4, 3, 1, VALID),
]


@pytest.mark.parametrize("h,w,m,n,k,stride,padding", CASES)
def test_standard_conv_matches_numpy(tmp_path, runtime, h, w, m, n, k, stride, padding):
    layer = _conv(k, m, n, stride, padding=padding)
    built = conv_chain((h, w, m), IN_Q, [layer], seed=h * 100 + m)
    x = np.random.default_rng(1).integers(-128, 128, size=(1, h, w, m), dtype=np.int8)
    got = _run(tmp_path, built, x, runtime)
    want = reference(x, IN_Q, layer, built.weights[0], built.biases[0])
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1
    assert len(np.unique(want)) > 20                    # the outputs spread (not all clipped)


@pytest.mark.parametrize("h,w,m,n,k,stride,padding", [c for c in CASES if c[4] == 3])
def test_depthwise_then_pointwise_matches_numpy(tmp_path, runtime, h, w, m, n, k, stride, padding):
    mid = Quant.of(0.04, -10)
    dw = _conv(k, m, m, stride, depthwise=True, padding=padding, activation="relu6", out=mid)
    pw = _conv(1, m, n, 1)
    built = conv_chain((h, w, m), IN_Q, [dw, pw], seed=7)
    x = np.random.default_rng(2).integers(-128, 128, size=(1, h, w, m), dtype=np.int8)
    got = _run(tmp_path, built, x, runtime, threads=1)
    # the pointwise conv sees TFLite's own depthwise output: compare each stage on its own input
    hidden = reference(x, IN_Q, dw, built.weights[0], built.biases[0])
    want = reference(hidden, mid, pw, built.weights[1], built.biases[1])
    assert got.shape == want.shape == (1, out_size(h, k, stride, padding), out_size(w, k, stride, padding), n)
    # one step of difference in the hidden layer can move an output by a few steps: compare
    # with the depthwise stage alone too, where the tolerance is exact
    assert np.abs(got.astype(int) - want).max() <= 3
    assert np.mean(got.astype(int) == want) > 0.9
    dw_only = conv_chain((h, w, m), IN_Q, [dw], seed=7)
    got_dw = _run(tmp_path, dw_only, x, runtime)
    assert np.abs(got_dw.astype(int) - hidden).max() <= 1


def test_every_tensor_is_described(tmp_path, runtime):
    layer = _conv(3, 4, 6, 2)
    built = conv_chain((8, 8, 4), IN_Q, [layer], seed=3)
    path = tmp_path / "m.tflite"
    path.write_bytes(built.model)
    interp = make_interpreter(path, threads=1, runtime=runtime)
    ops = interp._get_ops_details()
    assert [op["op_name"] for op in ops if op["op_name"] != "DELEGATE"] == ["CONV_2D"]   # XNNPACK's node aside
    details = {t["name"]: t for t in interp.get_tensor_details()}
    w = details["w0"]["quantization_parameters"]
    assert np.allclose(w["scales"], layer.w_scale) and w["quantized_dimension"] == 0
    assert details["input"]["quantization"] == pytest.approx((0.02, -5))
    assert list(details["y0"]["shape"]) == [1, 4, 4, 6]

"""The published uint8 MobileNets rewritten as int8 models: the same numbers, XNNPACK's fast kernels.

Every published MobileNet is uint8 (TF1 quantization-aware training, per-tensor asymmetric), and
XNNPACK runs uint8 (its QU8 kernels) far slower than int8 (QS8/QC8): MobileNetV2 1.0/224 takes
7.7 ms as the published uint8 file and 3.4 ms as Google's int8 file here (one thread, 2.25x). On
aarch64 the uint8 GEMM is a NEON mlal-lane kernel on every CPU, while int8 uses SDOT on a Pi 5
(A76) or a Jetson Orin and an 8-bit mlal kernel on a Pi 4 (A72).

The rewrite (TFLite's quantization spec, tensorflow/lite/g3doc/performance/quantization_spec.md):

* activations: q - 128 with zero point - 128. Exact: real = s * (q - z) is the same number.
* weights of CONV_2D / DEPTHWISE_CONV_2D: int8 needs zero point 0 and values in [-127, 127], so
  each output channel stores q - z (axis 0 for conv [O,H,W,I], 3 for depthwise [1,H,W,C]) with
  a scale per channel. Only a channel whose q - z leaves [-127, 127] (|q - z| up to 255) is
  rescaled, by max|q - z| / 127: each of its weights moves by at most half of its new step
  (0.35% of MobileNetV2's output channels), and its int32 bias (scale = input scale x weight
  scale) is rescaled to match. FULLY_CONNECTED keeps one scale (rescaled as a whole if needed).
* the model's input stays uint8: a QUANTIZE uint8 -> int8 op runs first (identical scale, zero
  point 128 -> 0: TFLite's requantize turns that into a byte-wise XOR), so preprocessing and
  every caller feed the pixels exactly as before.
* TFLite_Detection_PostProcess takes uint8 or float only: its box and class inputs get a
  QUANTIZE int8 -> uint8 in front (the anchors, a constant it alone reads, stay uint8).
* HARD_SWISH runs in float between a DEQUANTIZE and a QUANTIZE (XNNPACK delegates it in float
  only: see _float_hard_swish; V3-Small 1.2 ms instead of 4.2 here).
* outputs become int8 with their zero point shifted: the engine dequantizes by the tensor's own
  parameters, so the float results are the same. SOFTMAX and LOGISTIC outputs are scale 1/256,
  zero point 0 in the published files, which is the int8 kernels' required 1/256, -128 shifted.

A model with anything else (an op not listed in :data:`INT8_VERSION`, float, already int8) is
refused with :class:`~edgecam.errors.ConversionError` and runs as published.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from edgecam.errors import ConversionError
from edgecam.costlens.tflite_file import FLOAT32, INT8, INT32, UINT8, Model, OpCode, Operator, Quantization, Tensor

ADD, AVERAGE_POOL_2D, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D = 0, 1, 2, 3, 4
FULLY_CONNECTED, LOGISTIC, MAX_POOL_2D, MUL, RELU6, RESHAPE, SOFTMAX = 9, 14, 17, 18, 21, 22, 25
CUSTOM, PAD, MEAN, SQUEEZE, QUANTIZE, HARD_SWISH, DEQUANTIZE = 32, 34, 40, 43, 114, 117, 6

# builtin op -> the op version that declares int8 (TFLite's op_version.cc; CONV_2D and
# DEPTHWISE_CONV_2D 3: int8 with per-channel weights). Every runtime edgecam supports (TFLite
# 2.5 on) registers these versions. Ops not here make the converter refuse the model.
INT8_VERSION = {ADD: 2, AVERAGE_POOL_2D: 2, CONCATENATION: 2, CONV_2D: 3, DEPTHWISE_CONV_2D: 3,
                FULLY_CONNECTED: 4, LOGISTIC: 2, MAX_POOL_2D: 2, MUL: 2, RELU6: 2, RESHAPE: 1,
                SOFTMAX: 2, PAD: 2, MEAN: 2, SQUEEZE: 1, HARD_SWISH: 1}
QUANTIZE_VERSION = 2
UINT8_CUSTOM = {b"TFLite_Detection_PostProcess"}   # custom ops kept on uint8 inputs
FIXED_OUTPUT = {SOFTMAX: (1 / 256, 0), LOGISTIC: (1 / 256, 0)}   # uint8 params their int8 kernels need, shifted
WEIGHT_AXIS = {CONV_2D: 0, DEPTHWISE_CONV_2D: 3, FULLY_CONNECTED: None}   # None: one scale for the tensor


@dataclass
class Conversion:
    """What the rewrite did: channels in all, and those whose weights were rescaled."""

    model: Model
    channels: int
    rescaled: int
    weights: int                                   # weight tensors rewritten
    activations: int                               # uint8 tensors shifted to int8
    quantize_ops: int                              # (DE)QUANTIZE ops added: input, concat, postprocess, hard swish

    @property
    def rescaled_share(self) -> float:
        return self.rescaled / self.channels if self.channels else 0.0

    def summary(self) -> str:
        return (f"{self.weights} weight tensors per channel ({self.rescaled} of {self.channels} output "
                f"channels rescaled, {self.rescaled_share * 100:.2f}%), {self.activations} activations "
                f"shifted, {self.quantize_ops} QUANTIZE/DEQUANTIZE ops added")


def convert(model: Model) -> Conversion:
    """The int8 rewrite of a uint8 model (the input is left untouched); ConversionError when
    the model is not one the converter handles."""
    _check(model)
    m = copy.deepcopy(model)
    weights = _weight_uses(m)
    refs = Counter(t.buffer for t in m.tensors)     # tensors per buffer, kept as buffers are split
    channels = rescaled = 0
    for op in m.ops:
        if m.codes[op.opcode].builtin in WEIGHT_AXIS and op.inputs[1] in weights:
            n, r = _rewrite_weights(m, op, refs)
            channels, rescaled = channels + n, rescaled + r
    keep = _kept_uint8(m)
    shifted = _shift_activations(m, set(weights) | keep, refs)
    added = _requantize_concat_inputs(m) + _guard_custom_inputs(m) + _quantize_inputs(m) + _float_hard_swish(m)
    _set_versions(m)
    _set_min_runtime(m)
    return Conversion(m, channels, rescaled, len(weights), shifted, added)


# --------------------------------------------------------------------------- checks

def _check(m: Model) -> None:
    types = Counter(t.type for t in m.tensors)
    if types[INT8]:
        raise ConversionError("it is int8 already")
    if not m.inputs or not types[UINT8] or m.tensors[m.inputs[0]].type != UINT8:
        raise ConversionError("it is not a uint8-quantized model")
    for op in m.ops:
        _check_op(m, op)
    for t in m.tensors:
        if t.type == UINT8 and (t.quant is None or len(t.quant.scale) != 1):
            raise ConversionError(f"the uint8 tensor {_name(t)} has no single scale and zero point")


def _check_op(m: Model, op: Operator) -> None:
    code = m.codes[op.opcode]
    if code.builtin == CUSTOM:
        if code.custom not in UINT8_CUSTOM:
            raise ConversionError(f"it has the custom op {_text(code.custom)}, which the converter does not know")
        return
    if code.builtin not in INT8_VERSION:
        raise ConversionError(f"it has builtin op {code.builtin}, which the converter does not know")
    if code.builtin in FIXED_OUTPUT:
        q = m.tensors[op.outputs[0]].quant
        want = FIXED_OUTPUT[code.builtin]
        if q is None or abs(q.scale[0] - want[0]) > 1e-9 or q.zero_point[0] != want[1]:
            raise ConversionError(f"its op {code.builtin} has output parameters the int8 kernel cannot take")
    if code.builtin in WEIGHT_AXIS:
        _check_weights(m, op)


def _check_weights(m: Model, op: Operator) -> None:
    w = m.tensors[op.inputs[1]]
    if w.type != UINT8 or not m.buffers[w.buffer]:
        raise ConversionError(f"the weights {_name(w)} are not constant uint8")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = m.tensors[op.inputs[2]]
        if b.type != INT32 or not m.buffers[b.buffer] or b.quant is None or len(b.quant.scale) != 1:
            raise ConversionError(f"the bias {_name(b)} is not a constant int32 with one scale")


def _name(t: Tensor) -> str:
    return _text(t.name)


def _text(s: Optional[bytes]) -> str:
    return (s or b"?").decode("utf-8", "replace")[:80]


# --------------------------------------------------------------------------- weights

def _weight_uses(m: Model) -> Dict[int, int]:
    """Weight tensor -> the number of ops that read it as weights; refused when one is also read
    as an activation (it cannot be both per-channel int8 and shifted)."""
    uses: Dict[int, int] = Counter()
    for op in m.ops:
        if m.codes[op.opcode].builtin in WEIGHT_AXIS:
            uses[op.inputs[1]] += 1
    for op in m.ops:
        others = op.inputs[:1] + op.inputs[2:] if m.codes[op.opcode].builtin in WEIGHT_AXIS else op.inputs
        if set(others) & set(uses):
            raise ConversionError("a weight tensor is also read as an activation")
    if any(n > 1 for n in uses.values()):
        raise ConversionError("a weight tensor is shared between ops")
    return dict(uses)


def per_channel(q: np.ndarray, zero: int, scale: float, axis: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(int8 weights, scale per channel) for uint8 weights ``q`` with one zero point and scale:
    q - zero where it fits [-127, 127], else that channel's least-squares fit (see _fit)."""
    d = q.astype(np.int32) - int(zero)
    moved = np.moveaxis(d, axis, 0) if axis is not None else d[np.newaxis]
    flat = moved.reshape(moved.shape[0], -1)
    out = flat.copy()
    ratio = np.ones(flat.shape[0], np.float64)
    for c in np.nonzero(np.abs(flat).max(axis=1, initial=0) > 127)[0]:
        ratio[c], out[c] = _fit(flat[c])
    out = out.reshape(moved.shape)
    out = np.moveaxis(out, 0, axis) if axis is not None else out[0]
    return out.astype(np.int8), float(scale) * ratio


def _fit(d: np.ndarray, candidates: int = 64) -> Tuple[float, np.ndarray]:
    """(step ratio t, int8 values) minimising sum (t * q - d)^2 with |q| <= 127: t from 1 (keep
    the step, clip the few weights beyond 127 steps) to max|d| / 127 (scale the channel, every
    weight within half a new step). Clipping wins for a channel with one outlier among many
    weights, scaling for one whose values spread wide; most fits fall between."""
    peak = float(np.abs(d).max())
    best = (np.inf, 1.0, d)
    for t in np.linspace(1.0, peak / 127.0, candidates):
        q = np.clip(np.round(d / t), -127, 127)
        err = float(((t * q - d) ** 2).sum())
        if err < best[0]:
            best = (err, float(t), q.astype(np.int32))
    return best[1], best[2]


def _rewrite_weights(m: Model, op: Operator, refs: Counter) -> Tuple[int, int]:
    """The op's weights to int8 per channel, its bias to match: (channels, rescaled)."""
    builtin = m.codes[op.opcode].builtin
    w = m.tensors[op.inputs[1]]
    axis = WEIGHT_AXIS[builtin]
    q = np.frombuffer(m.buffers[w.buffer], np.uint8).reshape(w.shape)
    q8, scales = per_channel(q, _q(w).zero_point[0], _q(w).scale[0], axis)
    ratio = scales / _q(w).scale[0]                # 1 for a channel kept as it was
    _set_data(m, w, q8.tobytes(), refs)
    w.type = INT8
    w.quant = Quantization([float(s) for s in scales], [0] * len(scales), axis or 0)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        _rewrite_bias(m, m.tensors[op.inputs[2]], ratio, refs)
    return len(scales), int((ratio != 1).sum())


def _rewrite_bias(m: Model, b: Tensor, ratio: np.ndarray, refs: Counter) -> None:
    bias = np.frombuffer(m.buffers[b.buffer], "<i4").astype(np.float64)
    new = np.round(bias / (ratio if len(ratio) > 1 else ratio[0]))
    if np.abs(new).max(initial=0) > 2 ** 31 - 1:
        raise ConversionError(f"the bias {_name(b)} overflows int32 once rescaled")
    _set_data(m, b, new.astype("<i4").tobytes(), refs)
    scale = _q(b).scale[0]
    b.quant = Quantization([float(scale * r) for r in ratio], [0] * len(ratio), 0)


def _q(t: Tensor) -> Quantization:
    """t's quantization (every tensor the rewrite touches has one; a model without is refused)."""
    if t.quant is None:
        raise ConversionError(f"the tensor {_name(t)} has no quantization parameters")
    return t.quant


def _set_data(m: Model, t: Tensor, data: bytes, refs: Counter) -> None:
    """New constant data for t: in its own buffer, or a new one when other tensors share it
    (``refs``: tensors per buffer, counted once, so a file of many tensors costs linear time)."""
    if refs[t.buffer] > 1:
        refs[t.buffer] -= 1
        m.buffers.append(data)
        t.buffer = len(m.buffers) - 1
        refs[t.buffer] = 1
    else:
        m.buffers[t.buffer] = data


# --------------------------------------------------------------------------- activations

def _consumers(m: Model) -> Dict[int, List[Operator]]:
    users: Dict[int, List[Operator]] = {}
    for op in m.ops:
        for i in op.inputs:
            users.setdefault(i, []).append(op)
    return users


def _kept_uint8(m: Model) -> set:
    """Constants read by custom ops only (the SSD anchors): they stay uint8."""
    produced = {i for op in m.ops for i in op.outputs}
    users = _consumers(m)
    return {i for i, ops in users.items() if i >= 0 and i not in produced and i not in m.inputs
            and all(m.codes[op.opcode].builtin == CUSTOM for op in ops)}


def _shift_activations(m: Model, skip: set, refs: Counter) -> int:
    n = 0
    for i, t in enumerate(m.tensors):
        if t.type != UINT8 or i in skip:
            continue
        t.type = INT8
        q = _q(t)
        t.quant = Quantization(q.scale, [q.zero_point[0] - 128], q.axis, q.min, q.max)
        if m.buffers[t.buffer]:
            _set_data(m, t, (np.frombuffer(m.buffers[t.buffer], np.uint8) ^ 0x80).tobytes(), refs)
        n += 1
    return n


def _quantize_code(m: Model) -> int:
    return _op_code(m, QUANTIZE, QUANTIZE_VERSION)


def _twin(m: Model, t: Tensor, type_: int, suffix: bytes) -> int:
    """A copy of t's shape as ``type_`` (its zero point shifted back to uint8's, or to int8's)."""
    shift = 128 if type_ == UINT8 else -128
    old = _q(t)
    q = Quantization(old.scale, [old.zero_point[0] + shift], old.axis, old.min, old.max)
    m.tensors.append(Tensor(list(t.shape), type_, 0, t.name + suffix, q, shape_signature=t.shape_signature,
                            has_rank=t.has_rank))
    return len(m.tensors) - 1


def _requantize_concat_inputs(m: Model) -> int:
    """TFLite's int8 CONCATENATION takes no rescaling (its uint8 kernel does): an input whose
    scale or zero point differs from the output's gets a QUANTIZE int8 -> int8 to the output's
    (SSD's box and class concatenations: 12 inputs). Its fixed-point rescale may round a value
    one step away from the uint8 kernel's float one; the equality check measures it."""
    added, ops = 0, []
    for op in m.ops:
        if m.codes[op.opcode].builtin == CONCATENATION and m.tensors[op.outputs[0]].type == INT8:
            out = _q(m.tensors[op.outputs[0]])
            for k, i in enumerate(op.inputs):
                q = _q(m.tensors[i])
                if (q.scale[0], q.zero_point[0]) != (out.scale[0], out.zero_point[0]):
                    t = m.tensors[i]
                    m.tensors.append(Tensor(list(t.shape), INT8, 0, t.name + b"/requantized",
                                            Quantization(out.scale, out.zero_point), has_rank=t.has_rank))
                    ops.append(Operator(_quantize_code(m), [i], [len(m.tensors) - 1]))
                    op.inputs[k] = len(m.tensors) - 1
                    added += 1
        ops.append(op)
    m.ops = ops
    return added


def _guard_custom_inputs(m: Model) -> int:
    """A QUANTIZE int8 -> uint8 in front of each int8 input of a custom op."""
    added, ops = 0, []
    for op in m.ops:
        if m.codes[op.opcode].builtin == CUSTOM:
            for k, i in enumerate(op.inputs):
                if i >= 0 and m.tensors[i].type == INT8:
                    u = _twin(m, m.tensors[i], UINT8, b"/uint8")
                    ops.append(Operator(_quantize_code(m), [i], [u]))
                    op.inputs[k] = u
                    added += 1
        ops.append(op)
    m.ops = ops
    return added


def _quantize_inputs(m: Model) -> int:
    """The model's inputs stay uint8 (under their own names): each becomes a uint8 twin, and a
    QUANTIZE to the int8 tensor (renamed NAME/int8) runs first."""
    first = []
    for k, i in enumerate(m.inputs):
        t = m.tensors[i]
        if t.type == INT8:
            u = _twin(m, t, UINT8, b"")
            t.name += b"/int8"
            first.append(Operator(_quantize_code(m), [u], [i]))
            m.inputs[k] = u
            for s in m.signatures:
                s.inputs = [(name, u if idx == i else idx) for name, idx in s.inputs]
    m.ops = first + m.ops
    return len(first)


# TFLite's runtime_version.cc: the first release that runs every op version set above (QUANTIZE
# v2 and HARD_SWISH: 1.15.0; per-channel CONV_2D / DEPTHWISE_CONV_2D v3 and the other int8 ops: 1.14.0)
MIN_RUNTIME = (1, 15, 0)


def _set_min_runtime(m: Model) -> None:
    """The model's min_runtime_version metadata (where it has one) raised to MIN_RUNTIME: the
    interpreter does not read it, tools that check a model against a runtime do."""
    for name, index in m.metadata:
        if name != b"min_runtime_version" or not 0 < index < len(m.buffers):
            continue
        old = m.buffers[index]
        try:
            version = tuple(int(x) for x in old.rstrip(b"\0").decode("ascii").split("."))
        except ValueError:
            continue
        if version < MIN_RUNTIME:
            text = ".".join(map(str, MIN_RUNTIME)).encode("ascii")
            m.buffers[index] = text.ljust(max(len(old), len(text)), b"\0")


def _op_code(m: Model, builtin: int, version: int) -> int:
    for k, c in enumerate(m.codes):
        if c.builtin == builtin:
            c.version = max(c.version, version)
            return k
    m.codes.append(OpCode(builtin, None, version))
    return len(m.codes) - 1


def _float_hard_swish(m: Model) -> int:
    """HARD_SWISH as DEQUANTIZE -> HARD_SWISH (float) -> QUANTIZE. XNNPACK delegates hard swish
    in float only: quantized (uint8 or int8), V3-Small's 19 stay on TFLite's own kernels and cut
    the graph into 21 delegated pieces (4.2 ms as int8, one thread here); as float between two
    converts, which XNNPACK delegates, it takes 1.2 ms. The float hard swish rounds once, where
    the int8 kernel's fixed-point one rounds on the way; measured over the photos it moves the
    scores about as far from the published file as the int8 kernel does (15.2 against 13.3 pp)."""
    added, ops = 0, []
    for op in m.ops:
        if m.codes[op.opcode].builtin != HARD_SWISH or m.tensors[op.inputs[0]].type != INT8:
            ops.append(op)
            continue
        (i,), (o,) = op.inputs[:1], op.outputs[:1]
        f = []
        for t in (m.tensors[i], m.tensors[o]):
            m.tensors.append(Tensor(list(t.shape), FLOAT32, 0, t.name + b"/float", has_rank=t.has_rank))
            f.append(len(m.tensors) - 1)
        ops += [Operator(_op_code(m, DEQUANTIZE, 2), [i], [f[0]]), Operator(op.opcode, [f[0]], [f[1]]),
                Operator(_op_code(m, QUANTIZE, QUANTIZE_VERSION), [f[1]], [o])]
        added += 2
    m.ops = ops
    return added


def _set_versions(m: Model) -> None:
    for c in m.codes:
        if c.builtin in INT8_VERSION:
            c.version = max(c.version, INT8_VERSION[c.builtin])

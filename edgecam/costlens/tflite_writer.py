"""A small TFLite model writer: int8 convolution graphs built at run time, no TensorFlow.

`edgecam models info NAME --measure` times a standard convolution against the depthwise
separable pair that replaces it; both are written here as real ``.tflite`` flatbuffers and run
in the installed interpreter. Only what those graphs need of the TFLite schema
(tensorflow/compiler/mlir/lite/schema/schema.fbs) is written: Model, SubGraph, Tensor,
QuantizationParameters, Buffer, OperatorCode, Operator, Conv2DOptions, DepthwiseConv2DOptions.

A table's fields are written into the slots the schema gives them, in declaration order
(a union takes two: its type, then its value). Activations are int8 with one scale and zero
point; weights int8, symmetric, one scale per output channel; biases int32 with scale
input scale x weight scale -- the layout of TFLite's int8 post-training quantization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np

SCHEMA_VERSION = 3
CONV_2D, DEPTHWISE_CONV_2D = 3, 4                  # BuiltinOperator
OPTIONS_CONV, OPTIONS_DEPTHWISE = 1, 2             # BuiltinOptions union: Conv2DOptions, DepthwiseConv2DOptions
SAME, VALID = 0, 1                                 # Padding
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 3}   # ActivationFunctionType
TENSOR_TYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 2, np.dtype(np.uint8): 3, np.dtype(np.int8): 9}
OP_VERSION = 3                                     # int8 with per-channel weights


@dataclass(frozen=True)
class Quant:
    """real = scale * (q - zero_point); one entry per channel of axis ``axis`` (or one)."""

    scale: Tuple[float, ...]
    zero_point: Tuple[int, ...]
    axis: int = 0

    @staticmethod
    def of(scale: float, zero_point: int) -> "Quant":
        return Quant((float(scale),), (int(zero_point),))


@dataclass
class _Tensor:
    name: str
    shape: Tuple[int, ...]
    dtype: np.dtype
    quant: Optional[Quant]
    buffer: int                                    # 0: no data (activations)


@dataclass
class _Op:
    code: int
    inputs: List[int]
    outputs: List[int]
    options: Tuple[int, dict]                      # (union type, {field slot: (kind, value)})


@dataclass
class Graph:
    """One subgraph under construction: tensors, constant data, operators."""

    tensors: List[_Tensor] = field(default_factory=list)
    buffers: List[bytes] = field(default_factory=lambda: [b""])   # buffer 0: the empty sentinel
    ops: List[_Op] = field(default_factory=list)

    def tensor(self, name: str, shape: Sequence[int], dtype, quant: Optional[Quant] = None,
               data: Optional[np.ndarray] = None) -> int:
        buffer = 0
        if data is not None:
            data = np.ascontiguousarray(data, dtype=dtype)
            assert data.shape == tuple(shape), (name, data.shape, shape)
            self.buffers.append(data.astype(data.dtype.newbyteorder("<")).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append(_Tensor(name, tuple(int(x) for x in shape), np.dtype(dtype), quant, buffer))
        return len(self.tensors) - 1

    def op(self, code: int, inputs: Sequence[int], outputs: Sequence[int], options: Tuple[int, dict]) -> None:
        self.ops.append(_Op(code, list(inputs), list(outputs), options))

    def to_bytes(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        return _serialize(self, list(inputs), list(outputs))


def conv_options(stride: int, padding: int = SAME, activation: str = "none", depth_multiplier: int = 0):
    """Conv2DOptions (depth_multiplier 0) or DepthwiseConv2DOptions: {slot: (kind, value)}."""
    act = ACTIVATIONS[activation]
    if depth_multiplier:
        # padding, stride_w, stride_h, depth_multiplier, fused_activation_function, dilation w/h
        return OPTIONS_DEPTHWISE, {0: ("b", padding), 1: ("i", stride), 2: ("i", stride),
                                   3: ("i", depth_multiplier), 4: ("b", act), 5: ("i", 1), 6: ("i", 1)}
    # padding, stride_w, stride_h, fused_activation_function, dilation_w_factor, dilation_h_factor
    return OPTIONS_CONV, {0: ("b", padding), 1: ("i", stride), 2: ("i", stride), 3: ("b", act),
                          4: ("i", 1), 5: ("i", 1)}


# --------------------------------------------------------------------------- serialization

def _end_vector(b: flatbuffers.Builder, count: int) -> int:
    try:
        return b.EndVector()
    except TypeError:                             # flatbuffers < 2 took the element count
        return b.EndVector(count)


def _offsets(b: flatbuffers.Builder, offsets: List[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return _end_vector(b, len(offsets))


def _numbers(b: flatbuffers.Builder, values, dtype) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.dtype(dtype).newbyteorder("<")))


def _bytes16(b: flatbuffers.Builder, data: bytes) -> int:
    """A [ubyte] vector aligned to 16 bytes (Buffer.data's force_align)."""
    b.StartVector(1, len(data), 16)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return _end_vector(b, len(data))


def _table(b: flatbuffers.Builder, slots: dict) -> int:
    """A table from {slot: (kind, value)}: kind o = offset, i = int32, u = uint32, b = byte."""
    b.StartObject(max(slots) + 1 if slots else 0)
    put = {"o": lambda s, v: b.PrependUOffsetTRelativeSlot(s, v, 0),
           "i": lambda s, v: b.PrependInt32Slot(s, v, 0), "u": lambda s, v: b.PrependUint32Slot(s, v, 0),
           "b": lambda s, v: b.PrependInt8Slot(s, v, 0), "B": lambda s, v: b.PrependUint8Slot(s, v, 0)}
    for slot in sorted(slots, reverse=True):       # larger scalars first would pack better; fine
        kind, value = slots[slot]
        put[kind](slot, value)
    return b.EndObject()


def _quant(b: flatbuffers.Builder, q: Quant) -> int:
    scale = _numbers(b, q.scale, np.float32)
    zero = _numbers(b, q.zero_point, np.int64)
    # min, max, scale, zero_point, details_type, details, quantized_dimension
    return _table(b, {2: ("o", scale), 3: ("o", zero), 6: ("i", q.axis)})


def _tensor(b: flatbuffers.Builder, t: _Tensor) -> int:
    name = b.CreateString(t.name)
    shape = _numbers(b, t.shape, np.int32)
    slots = {0: ("o", shape), 1: ("b", TENSOR_TYPES[t.dtype]), 2: ("u", t.buffer), 3: ("o", name)}
    if t.quant is not None:
        slots[4] = ("o", _quant(b, t.quant))
    return _table(b, slots)


def _operator(b: flatbuffers.Builder, op: _Op, code_index: int) -> int:
    kind, fields = op.options
    options = _table(b, fields)
    ins, outs = _numbers(b, op.inputs, np.int32), _numbers(b, op.outputs, np.int32)
    # opcode_index, inputs, outputs, builtin_options_type, builtin_options
    return _table(b, {0: ("u", code_index), 1: ("o", ins), 2: ("o", outs), 3: ("B", kind), 4: ("o", options)})


def _serialize(g: Graph, inputs: List[int], outputs: List[int]) -> bytes:
    b = flatbuffers.Builder(1024 + sum(len(x) for x in g.buffers))
    codes = sorted({op.code for op in g.ops})
    # OperatorCode: deprecated_builtin_code, custom_code, version, builtin_code
    code_tables = [_table(b, {0: ("b", c), 2: ("i", OP_VERSION), 3: ("i", c)}) for c in codes]
    tensors = [_tensor(b, t) for t in g.tensors]
    ops = [_operator(b, op, codes.index(op.code)) for op in g.ops]
    name = b.CreateString("main")
    sub = _table(b, {0: ("o", _offsets(b, tensors)), 1: ("o", _numbers(b, inputs, np.int32)),
                     2: ("o", _numbers(b, outputs, np.int32)), 3: ("o", _offsets(b, ops)), 4: ("o", name)})
    buffers = [_table(b, {0: ("o", _bytes16(b, data))} if data else {}) for data in g.buffers]
    description = b.CreateString("edgecam --measure")
    model = _table(b, {0: ("u", SCHEMA_VERSION), 1: ("o", _offsets(b, code_tables)),
                       2: ("o", _offsets(b, [sub])), 3: ("o", description), 4: ("o", _offsets(b, buffers))})
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


# --------------------------------------------------------------------------- conv graphs

@dataclass(frozen=True)
class Conv:
    """One int8 convolution of a chain: ``depthwise`` (depth multiplier 1) or standard."""

    k: int
    out_ch: int                                    # = the input channels for a depthwise conv
    stride: int
    w_scale: Tuple[float, ...]                     # per output channel
    out: Quant                                     # the output activation's scale and zero point
    depthwise: bool = False
    activation: str = "none"
    padding: int = SAME


@dataclass
class Built:
    """A written model and the constants drawn for it (what a reference computation needs)."""

    model: bytes
    weights: List[np.ndarray]
    biases: List[np.ndarray]


def out_size(size: int, k: int, stride: int, padding: int) -> int:
    return -(-size // stride) if padding == SAME else (size - k) // stride + 1


def _chain(g: Graph, built: "Built", rng, in_shape: Tuple[int, int, int], in_q: Quant,
           layers: Sequence[Conv], tag: str) -> Tuple[int, int]:
    """Add convolutions one after another on a new (1, H, W, C) int8 input: (input, output)."""
    h, w, c = in_shape
    x = first = g.tensor(f"{tag}input", (1, h, w, c), np.int8, in_q)
    for i, layer in enumerate(layers):
        n = layer.out_ch
        shape = (1, layer.k, layer.k, n) if layer.depthwise else (n, layer.k, layer.k, c)
        weights = rng.integers(-127, 128, size=shape, dtype=np.int8)
        bias = rng.integers(-2000, 2001, size=n, dtype=np.int32)
        scales = tuple(float(s) for s in layer.w_scale)
        wq = Quant(scales, (0,) * n, axis=3 if layer.depthwise else 0)
        bq = Quant(tuple(in_q.scale[0] * s for s in scales), (0,) * n, axis=0)
        wt = g.tensor(f"{tag}w{i}", shape, np.int8, wq, weights)
        bt = g.tensor(f"{tag}b{i}", (n,), np.int32, bq, bias)
        h, w = out_size(h, layer.k, layer.stride, layer.padding), out_size(w, layer.k, layer.stride, layer.padding)
        y = g.tensor(f"{tag}y{i}", (1, h, w, n), np.int8, layer.out)
        opts = conv_options(layer.stride, layer.padding, layer.activation, 1 if layer.depthwise else 0)
        g.op(DEPTHWISE_CONV_2D if layer.depthwise else CONV_2D, [x, wt, bt], [y], opts)
        built.weights.append(weights)
        built.biases.append(bias)
        x, c, in_q = y, n, layer.out
    return first, x


def conv_chain(in_shape: Tuple[int, int, int], in_q: Quant, layers: Sequence[Conv], seed: int = 0) -> Built:
    """A model of int8 convolutions one after another on a (1, H, W, C) int8 input, random
    weights and biases from ``seed``: e.g. one standard conv, or depthwise then 1x1 conv."""
    return conv_branches([(in_shape, in_q, layers)], seed)


def conv_branches(branches: Sequence[Tuple[Tuple[int, int, int], Quant, Sequence[Conv]]], seed: int = 0) -> Built:
    """One model of independent conv chains, each with its own input and output (run in one
    invoke, in order): e.g. every separable pair of a network at once."""
    rng = np.random.default_rng(seed)
    g, built = Graph(), Built(b"", [], [])
    ends = [_chain(g, built, rng, shape, q, layers, f"{k}/" if len(branches) > 1 else "")
            for k, (shape, q, layers) in enumerate(branches)]
    built.model = g.to_bytes([a for a, _ in ends], [b for _, b in ends])
    return built


def spread_scale(in_scale: float, out_scale: float, fan_in: int) -> float:
    """A weight scale that spreads a conv's outputs over its output range (random int8 input
    and weights: accumulator std ~ 74 * 73 * sqrt(fan_in); aim at an output std of ~40 steps),
    for a layer that has no real counterpart to copy its scale from."""
    return 40.0 * out_scale / (in_scale * 74.0 * 73.0 * max(1, fan_in) ** 0.5)

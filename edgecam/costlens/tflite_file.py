"""A whole TFLite model read into plain Python objects and written back (for the int8 converter).

The ``tflite`` schema package is not installed (nor wanted: it drags TensorFlow's release cycle
in), so the flatbuffer is read by hand: a table is a signed offset to its vtable, the vtable a
list of 16-bit field offsets in the schema's declaration order (a union takes two slots: its
type, then its value). The field slots below follow tensorflow/lite/schema/schema.fbs.

Everything read is bounded by the file: every offset and length is checked against its size
before it is followed, and the bytes copied out in all are capped at a few times the file's
length (a hostile file whose tables all point at one large vector is refused, not expanded).
What this reader does not know (sparse tensors, more than one subgraph, buffers stored outside
the flatbuffer, options tables it has no layout for) is refused with
:class:`~edgecam.errors.ConversionError`: the converter then leaves the model as published. A
file whose structure is broken (truncated, offsets outside it, malformed tables) is refused with
:class:`~edgecam.errors.CorruptModelError`: no interpreter is given it (engine.check_model_file).

Written back, a model keeps everything read: names, shapes, quantization, metadata buffers, the
custom options of ``TFLite_Detection_PostProcess`` byte for byte, signature defs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np

from edgecam.errors import ConversionError, CorruptModelError
from edgecam.costlens.tflite_writer import _bytes16, _numbers, _offsets

UINT8, INT8, INT32, FLOAT32 = 3, 9, 2, 0          # TensorType
READ_FACTOR = 4                                    # bytes copied out: at most 4x the file (+1 MB)
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# BuiltinOptions union type -> {field slot: kind}; kinds: b int8, B uint8/bool, i int32, f float32,
# vi [int]. Only these options tables are read (and written back); a model using another one is
# refused (its op would be unknown to the converter anyway).
OPTIONS: Dict[int, Dict[int, str]] = {
    1: {0: "b", 1: "i", 2: "i", 3: "b", 4: "i", 5: "i", 6: "b"},           # Conv2DOptions
    2: {0: "b", 1: "i", 2: "i", 3: "i", 4: "b", 5: "i", 6: "i"},           # DepthwiseConv2DOptions
    5: {0: "b", 1: "i", 2: "i", 3: "i", 4: "i", 5: "b"},                   # Pool2DOptions
    8: {0: "b", 1: "b", 2: "B", 3: "B", 4: "b"},                           # FullyConnectedOptions
    9: {0: "f"},                                                           # SoftmaxOptions
    10: {0: "i", 1: "b"},                                                  # ConcatenationOptions
    11: {0: "b", 1: "B"},                                                  # AddOptions
    17: {0: "vi"},                                                         # ReshapeOptions
    21: {0: "b"},                                                          # MulOptions
    22: {},                                                                # PadOptions
    27: {0: "B"},                                                          # ReducerOptions (MEAN)
    30: {0: "vi"},                                                         # SqueezeOptions
    38: {},                                                                # DequantizeOptions
    89: {},                                                                # QuantizeOptions
    91: {},                                                                # HardSwishOptions
}
_FMT = {"b": "b", "B": "B", "i": "i", "f": "f"}


@dataclass
class Quantization:
    """real = scale * (q - zero_point), one entry per channel of ``axis`` (or one)."""

    scale: List[float]
    zero_point: List[int]
    axis: int = 0
    min: Optional[List[float]] = None
    max: Optional[List[float]] = None


@dataclass
class Tensor:
    shape: List[int]
    type: int
    buffer: int
    name: bytes
    quant: Optional[Quantization] = None
    is_variable: bool = False
    shape_signature: Optional[List[int]] = None
    has_rank: Optional[bool] = None


@dataclass
class Operator:
    opcode: int
    inputs: List[int]
    outputs: List[int]
    options_type: int = 0
    options: Optional[Dict[int, Tuple[str, Any]]] = None   # {slot: (kind, value)}, fields present only
    custom: Optional[bytes] = None
    custom_format: Optional[int] = None
    mutating: Optional[List[int]] = None
    intermediates: Optional[List[int]] = None


@dataclass
class OpCode:
    builtin: int
    custom: Optional[bytes] = None
    version: int = 1


@dataclass
class Signature:
    inputs: List[Tuple[bytes, int]]
    outputs: List[Tuple[bytes, int]]
    key: Optional[bytes]
    subgraph: int


@dataclass
class Model:
    version: int
    codes: List[OpCode]
    tensors: List[Tensor]
    inputs: List[int]
    outputs: List[int]
    ops: List[Operator]
    buffers: List[bytes]                           # buffer 0: the empty sentinel
    name: Optional[bytes] = None
    description: Optional[bytes] = None
    metadata_buffer: Optional[List[int]] = None
    metadata: List[Tuple[bytes, int]] = field(default_factory=list)
    signatures: List[Signature] = field(default_factory=list)

    def op_name(self, op: Operator) -> str:
        code = self.codes[op.opcode]
        return code.custom.decode("utf-8", "replace") if code.builtin == 32 and code.custom else str(code.builtin)


# --------------------------------------------------------------------------- reading

class _Buf:
    """The file's bytes, every read checked against its length, the bytes copied out counted."""

    def __init__(self, data: bytes):
        self.data = data
        self.budget = READ_FACTOR * len(data) + (1 << 20)

    def need(self, pos: int, size: int) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.data):
            raise CorruptModelError(f"an offset or length points outside the file "
                                    f"({pos}+{size} of {len(self.data)} bytes)")

    def scalar(self, fmt: str, pos: int):
        self.need(pos, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def table(self, pos: int) -> "_Table":
        vt = pos - self.scalar("i", pos)
        vt_size, obj_size = self.scalar("H", vt), self.scalar("H", vt + 2)
        if vt_size < 4 or vt_size % 2:
            raise CorruptModelError(f"a table's vtable is malformed (size {vt_size})")
        self.need(pos, max(obj_size, 4))
        return _Table(self, pos, vt, vt_size)

    def vector(self, pos: int, itemsize: int) -> Tuple[int, int]:
        """(start of the items, count) of the vector whose offset field is at pos."""
        start = pos + self.scalar("I", pos)
        n = self.scalar("I", start)
        self.need(start + 4, n * itemsize)
        self.budget -= n * itemsize
        if self.budget < 0:
            raise CorruptModelError("its tables refer to more data than the file holds (a hostile or corrupt file)")
        return start + 4, n


@dataclass
class _Table:
    buf: _Buf
    pos: int
    vt: int
    vt_size: int

    def at(self, slot: int) -> Optional[int]:
        o = 4 + 2 * slot
        if o + 2 > self.vt_size:
            return None
        off = self.buf.scalar("H", self.vt + o)
        return self.pos + off if off else None

    def slots(self) -> List[int]:
        return [s for s in range((self.vt_size - 4) // 2) if self.at(s) is not None]

    def scalar(self, slot: int, fmt: str, default=0):
        p = self.at(slot)
        return default if p is None else self.buf.scalar(fmt, p)

    def array(self, slot: int, dtype) -> Optional[np.ndarray]:
        p = self.at(slot)
        if p is None:
            return None
        dt = np.dtype(dtype).newbyteorder("<")
        start, n = self.buf.vector(p, dt.itemsize)
        return np.frombuffer(self.buf.data, dt, n, start).astype(dt.newbyteorder("="))

    def ints(self, slot: int, dtype=np.int32) -> Optional[List[int]]:
        a = self.array(slot, dtype)
        return None if a is None else [int(x) for x in a]

    def raw(self, slot: int) -> Optional[bytes]:
        p = self.at(slot)
        if p is None:
            return None
        start, n = self.buf.vector(p, 1)
        return bytes(self.buf.data[start:start + n])

    def table(self, slot: int) -> Optional["_Table"]:
        p = self.at(slot)
        return None if p is None else self.buf.table(p + self.buf.scalar("I", p))

    def tables(self, slot: int) -> List["_Table"]:
        p = self.at(slot)
        if p is None:
            return []
        start, n = self.buf.vector(p, 4)
        return [self.buf.table(start + 4 * i + self.buf.scalar("I", start + 4 * i)) for i in range(n)]


def read(data: bytes) -> Model:
    """The model in ``data`` (a .tflite file's bytes); ConversionError, one sentence, for anything
    truncated, malformed or outside what this reader knows."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise CorruptModelError("it is not a TFLite model (no TFL3 header)")
    buf = _Buf(bytes(data))
    root = buf.table(buf.scalar("I", 0))
    subgraphs = root.tables(2)
    if len(subgraphs) != 1:
        raise ConversionError(f"it has {len(subgraphs)} subgraphs (the converter handles one)")
    sub = subgraphs[0]
    model = Model(version=root.scalar(0, "I"), codes=[_opcode(t) for t in root.tables(1)],
                  tensors=[_tensor(t) for t in sub.tables(0)], inputs=sub.ints(1) or [],
                  outputs=sub.ints(2) or [], ops=[_operator(t) for t in sub.tables(3)],
                  buffers=[_buffer(t) for t in root.tables(4)], name=sub.raw(4), description=root.raw(3),
                  metadata_buffer=root.ints(5), metadata=[(t.raw(0) or b"", t.scalar(1, "I")) for t in root.tables(6)],
                  signatures=[_signature(t) for t in root.tables(7)])
    _check_indices(model)
    return model


def _opcode(t: _Table) -> OpCode:
    builtin = max(t.scalar(0, "b"), t.scalar(3, "i"))
    return OpCode(builtin, t.raw(1), t.scalar(2, "i", 1))


def _quant(t: Optional[_Table]) -> Optional[Quantization]:
    if t is None:
        return None
    if t.at(4) is not None or t.at(5) is not None:
        raise ConversionError("a tensor uses custom quantization details")
    scale, zero = t.array(2, np.float32), t.ints(3, np.int64)
    if scale is None:
        return None
    mins, maxs = t.array(0, np.float32), t.array(1, np.float32)
    return Quantization([float(s) for s in scale], zero or [0] * len(scale), t.scalar(6, "i"),
                        None if mins is None else [float(x) for x in mins],
                        None if maxs is None else [float(x) for x in maxs])


def _tensor(t: _Table) -> Tensor:
    if t.at(6) is not None or t.at(9) is not None:
        raise ConversionError("it has sparse or variant tensors")
    return Tensor(t.ints(0) or [], t.scalar(1, "b"), t.scalar(2, "I"), t.raw(3) or b"", _quant(t.table(4)),
                  bool(t.scalar(5, "B")), t.ints(7), bool(t.scalar(8, "B")) if t.at(8) is not None else None)


def _options(kind: int, t: Optional[_Table]) -> Optional[Dict[int, Tuple[str, Any]]]:
    if t is None:
        return None
    layout = OPTIONS.get(kind)
    if layout is None or any(s not in layout for s in t.slots()):
        raise ConversionError(f"an operator has options (union type {kind}) the converter does not know")
    return {s: (layout[s], t.ints(s) if layout[s] == "vi" else t.scalar(s, _FMT[layout[s]])) for s in t.slots()}


def _operator(t: _Table) -> Operator:
    if any(t.at(s) is not None for s in (9, 10, 11, 12)):
        raise ConversionError("an operator uses large custom options or builtin_options_2")
    kind = t.scalar(3, "B")
    return Operator(t.scalar(0, "I"), t.ints(1) or [], t.ints(2) or [], kind, _options(kind, t.table(4)),
                    t.raw(5), t.scalar(6, "b") if t.at(6) is not None else None,
                    t.ints(7, np.uint8), t.ints(8))


def _buffer(t: _Table) -> bytes:
    if t.scalar(1, "Q") or t.scalar(2, "Q"):
        raise ConversionError("its buffers are stored outside the flatbuffer")
    return t.raw(0) or b""


def _signature(t: _Table) -> Signature:
    def maps(slot: int) -> List[Tuple[bytes, int]]:
        return [(m.raw(0) or b"", m.scalar(1, "I")) for m in t.tables(slot)]
    return Signature(maps(0), maps(1), t.raw(2), t.scalar(4, "I"))


def _check_indices(m: Model) -> None:
    """Every index in range: a tensor's buffer, an operator's opcode and tensors."""
    nt = len(m.tensors)
    bad = [t.buffer for t in m.tensors if t.buffer >= len(m.buffers)]
    bad += [op.opcode for op in m.ops if op.opcode >= len(m.codes)]
    bad += [i for op in m.ops for i in op.inputs + op.outputs if i >= nt or i < -1]
    bad += [i for i in m.inputs + m.outputs if not 0 <= i < nt]
    if bad:
        raise CorruptModelError(f"an index points past its table ({bad[0]})")


# --------------------------------------------------------------------------- writing

def _put(b: flatbuffers.Builder, kind: str, slot: int, value) -> None:
    """One field present in the table, written even when it equals the schema's default."""
    if kind == "o":
        b.PrependUOffsetTRelativeSlot(slot, value, 0)
        return
    {"b": b.PrependInt8, "B": b.PrependUint8, "i": b.PrependInt32, "I": b.PrependUint32,
     "f": b.PrependFloat32}[kind](value)
    b.Slot(slot)


def _table(b: flatbuffers.Builder, slots: Dict[int, Tuple[str, Any]]) -> int:
    b.StartObject(max(slots) + 1 if slots else 0)
    for slot in sorted(slots, reverse=True):
        kind, value = slots[slot]
        if value is not None:
            _put(b, kind, slot, value)
    return b.EndObject()


def _string(b: flatbuffers.Builder, s: Optional[bytes]) -> Optional[int]:
    return None if s is None else b.CreateString(s)


def _ints(b: flatbuffers.Builder, values: Optional[Sequence[float]], dtype=np.int32) -> Optional[int]:
    return None if values is None else _numbers(b, values, dtype)


def _w_quant(b: flatbuffers.Builder, q: Quantization) -> int:
    slots = {0: ("o", _ints(b, q.min, np.float32)), 1: ("o", _ints(b, q.max, np.float32)),
             2: ("o", _numbers(b, q.scale, np.float32)), 3: ("o", _numbers(b, q.zero_point, np.int64))}
    slots[6] = ("i", q.axis)
    return _table(b, slots)


def _w_tensor(b: flatbuffers.Builder, t: Tensor) -> int:
    slots = {0: ("o", _numbers(b, t.shape, np.int32)), 1: ("b", t.type), 2: ("I", t.buffer),
             3: ("o", b.CreateString(t.name)), 4: ("o", _w_quant(b, t.quant) if t.quant else None),
             7: ("o", _ints(b, t.shape_signature))}
    if t.is_variable:
        slots[5] = ("B", 1)
    if t.has_rank is not None:
        slots[8] = ("B", int(t.has_rank))
    return _table(b, slots)


def _w_options(b: flatbuffers.Builder, options: Dict[int, Tuple[str, Any]]) -> int:
    vectors = {s: _numbers(b, v, np.int32) for s, (k, v) in options.items() if k == "vi"}
    return _table(b, {s: ("o", vectors[s]) if k == "vi" else (k, v) for s, (k, v) in options.items()})


def _w_operator(b: flatbuffers.Builder, op: Operator) -> int:
    options = _w_options(b, op.options) if op.options is not None else None
    slots = {0: ("I", op.opcode), 1: ("o", _numbers(b, op.inputs, np.int32)),
             2: ("o", _numbers(b, op.outputs, np.int32)), 4: ("o", options),
             5: ("o", _ints(b, list(op.custom), np.uint8) if op.custom is not None else None),
             7: ("o", _ints(b, op.mutating, np.uint8)), 8: ("o", _ints(b, op.intermediates))}
    if op.options_type:
        slots[3] = ("B", op.options_type)
    if op.custom_format is not None:
        slots[6] = ("b", op.custom_format)
    return _table(b, slots)


def _w_code(b: flatbuffers.Builder, c: OpCode) -> int:
    return _table(b, {0: ("b", min(c.builtin, PLACEHOLDER_FOR_GREATER_OP_CODES)), 1: ("o", _string(b, c.custom)),
                      2: ("i", c.version), 3: ("i", c.builtin)})


def _w_signature(b: flatbuffers.Builder, s: Signature) -> int:
    def maps(pairs: List[Tuple[bytes, int]]) -> int:
        return _offsets(b, [_table(b, {0: ("o", b.CreateString(n)), 1: ("I", i)}) for n, i in pairs])
    return _table(b, {0: ("o", maps(s.inputs)), 1: ("o", maps(s.outputs)), 2: ("o", _string(b, s.key)),
                      4: ("I", s.subgraph)})


def write(m: Model) -> bytes:
    """The model as .tflite bytes."""
    b = flatbuffers.Builder(4096 + sum(len(x) + 16 for x in m.buffers))
    buffers = [_table(b, {0: ("o", _bytes16(b, data))} if data else {}) for data in m.buffers]
    codes = [_w_code(b, c) for c in m.codes]
    tensors = [_w_tensor(b, t) for t in m.tensors]
    ops = [_w_operator(b, op) for op in m.ops]
    sub = _table(b, {0: ("o", _offsets(b, tensors)), 1: ("o", _numbers(b, m.inputs, np.int32)),
                     2: ("o", _numbers(b, m.outputs, np.int32)), 3: ("o", _offsets(b, ops)),
                     4: ("o", _string(b, m.name))})
    metadata = [_table(b, {0: ("o", b.CreateString(n)), 1: ("I", i)}) for n, i in m.metadata]
    signatures = [_w_signature(b, s) for s in m.signatures]
    root = _table(b, {0: ("I", m.version), 1: ("o", _offsets(b, codes)), 2: ("o", _offsets(b, [sub])),
                      3: ("o", _string(b, m.description)), 4: ("o", _offsets(b, buffers)),
                      5: ("o", _ints(b, m.metadata_buffer)),
                      6: ("o", _offsets(b, metadata) if m.metadata else None),
                      7: ("o", _offsets(b, signatures) if m.signatures else None)})
    b.Finish(root, file_identifier=b"TFL3")
    return bytes(b.Output())

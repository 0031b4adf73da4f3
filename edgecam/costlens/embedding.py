"""A classifier's embedding model: the same graph, its output moved to the pooled features.

MobileNet's penultimate layer is a compact description of an image (1280 values for V2, 1024
for V3-Small, 1024 x alpha for V1) on which a class can be imprinted from a few examples (Qi et
al., "Low-Shot Learning with Imprinted Weights", 2018). The feature tensor is the input of the
logits layer: walking back from the model's output through Softmax / Reshape / Squeeze /
Dequantize, the first CONV_2D or FULLY_CONNECTED reached is the logits; its first input is the
feature tensor (V1 and V2: the AvgPool output; V3: the 1x1 Conv_2 after the pool, hard-swished).

The derived model keeps only what computes that tensor: later operators, their tensors and
buffers (the 1001-way logits weights, 1.3 MB for V2) and their opcodes are dropped, every index
renumbered. Written with the project's own flatbuffer code (tflite_file.py): no TensorFlow.
:func:`check` runs both files on probe images and compares the derived output with the full
model's intermediate tensor (the interpreter keeping every tensor).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Sequence, Set

import numpy as np

from edgecam.errors import ConversionError
from edgecam.costlens.int8_check import probes
from edgecam.costlens.tflite_file import Model, Signature
from edgecam.model.engine import Engine, interpreter_class

CONV_2D, FULLY_CONNECTED = 3, 9
PASS_THROUGH = {25, 22, 43, 6, 17, 114}         # SOFTMAX, RESHAPE, SQUEEZE, DEQUANTIZE(6), QUANTIZE
MAX_DIFF = 1e-6                                 # derived vs intermediate: the same arithmetic, bit for bit


@dataclass(frozen=True)
class Derived:
    model: Model
    tensor: str                                 # the feature tensor's name in the full model
    size: int                                   # its values
    dropped_ops: int


def feature_tensor(m: Model) -> int:
    """The index of the tensor the logits layer reads (ConversionError where there is none)."""
    if len(m.outputs) != 1:
        raise ConversionError(f"it has {len(m.outputs)} outputs: not a classifier")
    producers = {o: op for op in m.ops for o in op.outputs}
    t = m.outputs[0]
    for _ in range(len(m.ops)):
        op = producers.get(t)
        if op is None:
            break
        code = m.codes[op.opcode].builtin
        if code in (CONV_2D, FULLY_CONNECTED):
            return op.inputs[0]
        if code not in PASS_THROUGH:
            break
        t = op.inputs[0]
    raise ConversionError("no logits layer (CONV_2D or FULLY_CONNECTED) feeds its output: not a classifier")


def derive(m: Model) -> Derived:
    """``m`` with its one output moved to the feature tensor, and everything unused dropped."""
    feature = feature_tensor(m)
    needed = _needed_ops(m, feature)
    ops = [op for i, op in enumerate(m.ops) if i in needed]
    tensors_used = sorted({t for op in ops for t in op.inputs + op.outputs + (op.intermediates or [])
                           if t >= 0} | set(m.inputs) | {feature})
    tmap = {old: new for new, old in enumerate(tensors_used)}
    buffers_used = sorted({0} | {m.tensors[t].buffer for t in tensors_used} | set(m.metadata_buffer or [])
                          | {b for _, b in m.metadata})
    bmap = {old: new for new, old in enumerate(buffers_used)}
    codes_used = sorted({op.opcode for op in ops})
    cmap = {old: new for new, old in enumerate(codes_used)}
    out = Model(version=m.version, codes=[m.codes[c] for c in codes_used],
                tensors=[replace(m.tensors[t], buffer=bmap[m.tensors[t].buffer]) for t in tensors_used],
                inputs=[tmap[t] for t in m.inputs], outputs=[tmap[feature]],
                ops=[_renumbered(op, tmap, cmap) for op in ops], buffers=[m.buffers[b] for b in buffers_used],
                name=m.name, description=m.description,
                metadata_buffer=None if m.metadata_buffer is None else [bmap[b] for b in m.metadata_buffer],
                metadata=[(name, bmap[b]) for name, b in m.metadata],
                signatures=[_signature(s, tmap, feature) for s in m.signatures])
    t = m.tensors[feature]
    return Derived(out, t.name.decode("utf-8", "replace"), int(np.prod(t.shape)), len(m.ops) - len(ops))


def _needed_ops(m: Model, target: int) -> Set[int]:
    producer = {o: i for i, op in enumerate(m.ops) for o in op.outputs}
    needed: Set[int] = set()
    todo = [target]
    while todo:
        i = producer.get(todo.pop())
        if i is None or i in needed:
            continue
        needed.add(i)
        todo.extend(t for t in m.ops[i].inputs if t >= 0)
    return needed


def _renumbered(op, tmap: Dict[int, int], cmap: Dict[int, int]):
    def idx(ts):
        return [tmap[t] if t >= 0 else t for t in ts]
    return replace(op, opcode=cmap[op.opcode], inputs=idx(op.inputs), outputs=idx(op.outputs),
                   intermediates=None if op.intermediates is None else idx(op.intermediates))


def _signature(s: Signature, tmap: Dict[int, int], feature: int) -> Signature:
    return Signature([(n, tmap[t]) for n, t in s.inputs], [(b"features", tmap[feature])], s.key, s.subgraph)


def intermediate(full: Path, tensor: str, images: Sequence[np.ndarray], runtime: str = "auto") -> List[np.ndarray]:
    """The full model's tensor ``tensor`` (dequantized) on each (1, H, W, 3) input, read from an
    interpreter that keeps every tensor (experimental_preserve_all_tensors)."""
    _, cls = interpreter_class(runtime)
    try:
        interp = cls(model_path=str(full), num_threads=1, experimental_preserve_all_tensors=True)
    except TypeError as exc:                     # a tflite-runtime older than 2.5
        raise ConversionError(f"the runtime cannot keep intermediate tensors ({exc})") from None
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    detail = next(d for d in interp.get_tensor_details() if d["name"] == tensor)
    out = []
    for x in images:
        interp.set_tensor(inp, x)
        interp.invoke()
        arr = interp.get_tensor(detail["index"])
        scale, zero = detail.get("quantization", (0.0, 0))
        out.append(((arr.astype(np.float32) - zero) * scale if scale else arr.astype(np.float32)).reshape(-1))
    return out


def check(full: Path, derived: Path, tensor: str, runtime: str = "auto",
          images: Sequence[np.ndarray] = ()) -> float:
    """The largest difference between the derived model's output and the full model's
    intermediate ``tensor``, on ``images`` (default: the built-in probes)."""
    engine = Engine(derived, 1, runtime)
    inputs = list(images) or [rgb[np.newaxis] for _, rgb in probes(engine.input.height, engine.input.width)]
    want = intermediate(full, tensor, inputs, runtime)
    got = [engine.run(x)[0].reshape(-1) for x in inputs]
    return max(float(np.abs(a - b).max()) for a, b in zip(want, got))

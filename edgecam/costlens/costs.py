"""The cost lens: parameters and mult-adds read from a model's own TFLite graph.

It shows *why* MobileNet is cheap: nearly all of the arithmetic sits in 1x1 (pointwise)
convolutions, and each depthwise + pointwise pair costs about ``1/N + 1/Dk^2`` of the
standard ``Dk x Dk`` convolution it replaces (MobileNet V1 paper, eq. 5).

The graph is read through the interpreter (``_get_ops_details`` and ``get_tensor_details``),
never by parsing the flatbuffer: each op's weight shape gives the kernel and channels, and its
output shape gives the spatial size the kernel is applied at.

Counting convention (the MobileNet papers')
-------------------------------------------
* Mult-adds, per layer, with batch 1:

  - standard conv ``out_h * out_w * out_c * kh * kw * in_c``
  - depthwise conv ``out_h * out_w * out_c * kh * kw``
  - fully connected ``in * out`` (times the number of rows fed to it, 1 for a classifier)

* Parameters = weights + biases of those layers: the deployed network's parameters, with batch
  norm folded into the weights and biases; quantization scales/zero points are not parameters.
* Only the convolutions and fully connected layers count. Element-wise ops (the residual ADDs,
  ReLU, h-swish, the squeeze-excite gating MUL), pooling, reshape, softmax and the SSD
  ``TFLite_Detection_PostProcess`` are not mult-adds in this convention (they are a small,
  memory-bound fraction of the work). Their absence is why these totals are a lower bound on
  arithmetic rather than a measure of latency.
* **Everything the graph computes with weights is in**: the final classifier (1001 classes,
  as in the released checkpoints, class 0 = background) and, in V3, the squeeze-excite layers.
  The papers' totals include both: without the classifier V3-Small would have 1.5M parameters,
  without squeeze-excite 2.1M, against the paper's 2.5M. (1000 vs 1001 classes moves nothing
  visibly: about 1k mult-adds and parameters.) One convention for every model, measured:

  ================================  ==========  =========  =================================
  model                             mult-adds   params     published
  ================================  ==========  =========  =================================
  V1 0.75/224                       325.4M      2.578M     325M, 2.6M (V1 paper, Table 6)
  V1 0.25/128                       13.57M      0.468M     14M, 0.47M (TF-slim table)
  V2 1.0/224                        300.8M      3.489M     300M, 3.4M (V2 paper, Table 4)
  V3-Small 1.0/224                  56.51M      2.538M     56M, 2.5M (V3 paper, Table 3)
  ================================  ==========  =========  =================================

  Two published figures are coarser than 2%. "14M" for V1 0.25/128 is rounded to whole millions
  (13.57M rounds to it; the V1 paper's 41M for 0.25 at 224 px, times rho^2 = (128/224)^2, gives
  13.4M). "3.4M" for V2 is 3.47M cut to two digits: the TF-slim table gives 3.47M for the same
  checkpoint, which is its weight count exactly (3,471,040); the folded batch-norm biases add 18k.
* The released ``detect.tflite`` (SSD MobileNet V1 "1.0", COCO, quantized) is in fact the depth
  multiplier 0.75 network with 1x1 box predictors: 728M mult-adds and 4.1M parameters, not the
  V1 paper's SSD300 (alpha 1.0: 1.2B, 6.8M). Its graph shows it: the first conv has 24 filters.

Kinds
-----
``DEPTHWISE_CONV_2D`` -> ``depthwise``; ``CONV_2D`` with a 1x1 kernel -> ``pointwise``, any other
``CONV_2D`` -> ``conv``; ``FULLY_CONNECTED`` -> ``fc``. One refinement: a 1x1 ``CONV_2D`` applied
to a 1x1 spatial map *is* a fully connected layer (a matrix-vector product), and it is counted as
``fc`` -- that is how the TF-slim graphs spell the classifier ("Logits" is a 1x1 conv after the
global pool) and the V3 squeeze-excite layers, which the papers call fully connected (V1 paper,
Table 2: 1x1 conv 95% of mult-adds / 75% of parameters, fully connected 0.18% / 24%).

Pairs
-----
A depthwise op whose output reaches a pointwise op directly or through ops that keep its shape
and mix no channels or pixels -- activations, (de)quantize, and element-wise ops whose other
operand is a per-channel or scalar broadcast (the squeeze-excite gate in V3) -- forms a
depthwise separable pair. Its standard counterpart is the ``Dk x Dk`` conv from the depthwise's
``M`` input channels to the pointwise's ``N`` output channels at the same output size.

Stride is not exposed by the interpreter; it is inferred from the input and output sizes,
SAME padding first (``None`` when no stride fits, or height and width disagree).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from edgecam.errors import ModelError
from edgecam.model.engine import make_interpreter

KINDS = ("conv", "depthwise", "pointwise", "fc")

# Ops a depthwise output may pass through on its way to the pointwise conv of its pair.
_UNARY_PASS = {
    "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH",
    "LOGISTIC", "TANH", "ELU", "GELU", "QUANTIZE", "DEQUANTIZE",
}
_BROADCAST_PASS = {"MUL", "ADD", "SUB", "DIV", "MAXIMUM", "MINIMUM"}


@dataclass
class LayerCost:
    index: int                     # the op's index in the TFLite graph
    op: str                        # CONV_2D | DEPTHWISE_CONV_2D | FULLY_CONNECTED
    kind: str                      # conv | depthwise | pointwise | fc
    name: str                      # the output tensor's name
    kernel: Tuple[int, int]        # (kh, kw); (1, 1) for fc
    in_ch: int
    out_ch: int
    out_hw: Tuple[int, int]        # output spatial size; (1, 1) for fc
    stride: Optional[int]          # inferred from in/out sizes; None when ambiguous
    params: int                    # weights + biases
    madds: int


@dataclass
class SeparablePair:
    depthwise: LayerCost
    pointwise: LayerCost
    separable_madds: int           # depthwise + pointwise
    standard_madds: int            # the Dk x Dk conv M -> N at the same output size it replaces
    ratio: float                   # separable / standard, as measured from the graph

    @property
    def dk(self) -> int:
        return self.depthwise.kernel[0]

    @property
    def paper_ratio(self) -> float:
        """MobileNet V1 eq. 5: 1/N + 1/Dk^2 (square kernel, depth multiplier 1)."""
        kh, kw = self.depthwise.kernel
        return 1.0 / self.pointwise.out_ch + 1.0 / (kh * kw)

    @property
    def saving(self) -> int:
        return self.standard_madds - self.separable_madds


@dataclass
class ModelCost:
    path: Path
    layers: List[LayerCost]
    pairs: List[SeparablePair]
    input_shape: Tuple[int, ...]

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def madds(self) -> int:
        return sum(l.madds for l in self.layers)

    @property
    def totals(self) -> Dict[str, Tuple[int, int]]:
        """kind -> (params, madds), every kind present (zeros where the model has none)."""
        out = {k: [0, 0] for k in KINDS}
        for l in self.layers:
            out[l.kind][0] += l.params
            out[l.kind][1] += l.madds
        return {k: (p, m) for k, (p, m) in out.items()}

    @property
    def pointwise_share(self) -> float:
        """Fraction of all mult-adds spent in 1x1 (pointwise) convolutions."""
        total = self.madds
        return self.totals["pointwise"][1] / total if total else 0.0

    @property
    def separable_madds(self) -> int:
        return sum(p.separable_madds for p in self.pairs)

    @property
    def standard_madds(self) -> int:
        return sum(p.standard_madds for p in self.pairs)

    @property
    def standard_equivalent_madds(self) -> int:
        """The whole model's mult-adds had every separable pair been a standard conv."""
        return self.madds - self.separable_madds + self.standard_madds

    def to_dict(self) -> dict:
        """Plain JSON-serialisable data (ints, floats, strings, lists, dicts)."""
        def layer(l: LayerCost) -> dict:
            d = asdict(l)
            d["kernel"] = list(l.kernel)
            d["out_hw"] = list(l.out_hw)
            return d

        return {
            "path": str(self.path),
            "input_shape": [int(x) for x in self.input_shape],
            "params": self.params,
            "madds": self.madds,
            "pointwise_share": self.pointwise_share,
            "totals": {k: {"params": p, "madds": m} for k, (p, m) in self.totals.items()},
            "layers": [layer(l) for l in self.layers],
            "pairs": [
                {
                    "depthwise": p.depthwise.index,
                    "pointwise": p.pointwise.index,
                    "dk": p.dk,
                    "m": p.depthwise.in_ch,
                    "n": p.pointwise.out_ch,
                    "out_hw": list(p.pointwise.out_hw),
                    "separable_madds": p.separable_madds,
                    "standard_madds": p.standard_madds,
                    "ratio": p.ratio,
                    "paper_ratio": p.paper_ratio,
                }
                for p in self.pairs
            ],
            "separable_madds": self.separable_madds,
            "standard_madds": self.standard_madds,
            "standard_equivalent_madds": self.standard_equivalent_madds,
        }


# --------------------------------------------------------------------------- reading the graph

def _shape(tensors: Dict[int, dict], index: int) -> Tuple[int, ...]:
    return tuple(int(x) for x in tensors[index]["shape"])


def _infer_stride(in_size: int, out_size: int, k: int) -> Optional[int]:
    """The stride giving ``out_size`` from ``in_size``: SAME padding first (what the MobileNet
    graphs use), else VALID; the smallest such stride, None when none fits."""
    if in_size <= 0 or out_size <= 0:
        return None
    if in_size == out_size:
        return 1
    for valid in (False, True):
        span = in_size - k + 1 if valid else in_size
        for s in range(1, in_size + 1):
            if span > 0 and math.ceil(span / s) == out_size:
                return s
    return None


def _layer(op: dict, tensors: Dict[int, dict]) -> Optional[LayerCost]:
    name = op["op_name"]
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return None
    ins = [int(i) for i in op["inputs"]]
    if len(ins) < 2 or ins[0] < 0 or ins[1] < 0:
        return None
    x, w = _shape(tensors, ins[0]), _shape(tensors, ins[1])
    out_index = int(op["outputs"][0])
    y = _shape(tensors, out_index)
    bias = 0
    if len(ins) > 2 and ins[2] >= 0:
        bias = math.prod(_shape(tensors, ins[2]))
    tname = str(tensors[out_index].get("name", ""))

    if name == "FULLY_CONNECTED":
        out_c, in_c = w[0], w[-1]
        rows = max(1, math.prod(x) // in_c) if in_c else 1
        return LayerCost(int(op["index"]), name, "fc", tname, (1, 1), in_c, out_c, (1, 1), None,
                         math.prod(w) + bias, rows * in_c * out_c)

    if len(w) != 4 or len(x) != 4 or len(y) != 4:
        return None
    _, in_h, in_w, in_c = x
    _, out_h, out_w, _ = y
    if name == "DEPTHWISE_CONV_2D":
        _, kh, kw, out_c = w
        kind = "depthwise"
        madds = out_h * out_w * out_c * kh * kw
    else:
        out_c, kh, kw, w_in = w
        if (kh, kw) != (1, 1):
            kind = "conv"
        elif (in_h, in_w) == (1, 1):
            kind = "fc"   # a 1x1 conv on a 1x1 map is a matrix-vector product
        else:
            kind = "pointwise"
        madds = out_h * out_w * out_c * kh * kw * w_in   # w_in = in_c / groups
    s_h = _infer_stride(in_h, out_h, kh)
    s_w = _infer_stride(in_w, out_w, kw)
    stride = s_h if s_h == s_w else None
    return LayerCost(int(op["index"]), name, kind, tname, (kh, kw), in_c, out_c, (out_h, out_w),
                     stride, math.prod(w) + bias, madds)


def _is_broadcast(shape: Sequence[int], full: Sequence[int]) -> bool:
    """A per-channel or scalar operand: broadcasting it over ``full`` mixes nothing spatially."""
    n = math.prod(shape) if len(shape) else 1
    return n == 1 or (len(full) > 0 and n == full[-1])


def _find_pairs(ops: List[dict], tensors: Dict[int, dict],
                layers: Dict[int, LayerCost]) -> List[SeparablePair]:
    consumers: Dict[int, List[dict]] = defaultdict(list)
    for op in ops:
        for i in op["inputs"]:
            if int(i) >= 0:
                consumers[int(i)].append(op)

    def pointwise_after(tensor: int) -> Optional[LayerCost]:
        full = _shape(tensors, tensor)
        frontier, seen = [tensor], {tensor}
        while frontier:
            nxt = []
            for t in frontier:
                for op in consumers.get(t, []):
                    ins = [int(i) for i in op["inputs"] if int(i) >= 0]
                    lc = layers.get(int(op["index"]))
                    if lc is not None:
                        if lc.kind == "pointwise" and ins[0] == t:
                            return lc
                        continue
                    name = op["op_name"]
                    passes = name in _UNARY_PASS or (
                        name in _BROADCAST_PASS
                        and all(i == t or _is_broadcast(_shape(tensors, i), full) for i in ins))
                    if not passes:
                        continue
                    for o in op["outputs"]:
                        o = int(o)
                        if o not in seen and _shape(tensors, o) == full:
                            seen.add(o)
                            nxt.append(o)
            frontier = nxt
        return None

    by_output = {int(op["outputs"][0]): op for op in ops if int(op["index"]) in layers}
    pairs, used = [], set()
    for out_t, op in by_output.items():
        dw = layers[int(op["index"])]
        if dw.kind != "depthwise":
            continue
        pw = pointwise_after(out_t)
        if pw is None or pw.index in used:
            continue
        used.add(pw.index)
        kh, kw = dw.kernel
        oh, ow = pw.out_hw
        standard = oh * ow * pw.out_ch * kh * kw * dw.in_ch
        separable = dw.madds + pw.madds
        pairs.append(SeparablePair(dw, pw, separable, standard,
                                   separable / standard if standard else float("nan")))
    pairs.sort(key=lambda p: p.depthwise.index)
    return pairs


def analyze(model_path, interpreter=None) -> ModelCost:
    """Parameters and mult-adds of every conv/depthwise/pointwise/fc layer of a .tflite model.
    Pass the ``interpreter`` already running it to read that one (at its current input size).

    ModelError (from the interpreter wrapper) for a missing, corrupt or non-TFLite file.
    """
    path = Path(model_path)
    interp = interpreter if interpreter is not None else make_interpreter(path, threads=1)
    try:
        ops = interp._get_ops_details()
    except AttributeError:
        raise ModelError("this TFLite runtime cannot list a model's ops; "
                         "upgrade it (`pip install -U ai-edge-litert`)") from None
    # A delegate (XNNPACK) adds DELEGATE nodes after the original ops; the originals stay listed.
    ops = [op for op in ops if op["op_name"] != "DELEGATE"]
    tensors = {int(t["index"]): t for t in interp.get_tensor_details()}
    layers: Dict[int, LayerCost] = {}
    for op in ops:
        lc = _layer(op, tensors)
        if lc is not None:
            layers[lc.index] = lc
    pairs = _find_pairs(ops, tensors, layers)
    input_shape = tuple(int(x) for x in interp.get_input_details()[0]["shape"])
    ordered = [layers[k] for k in sorted(layers)]
    return ModelCost(path=path, layers=ordered, pairs=pairs, input_shape=input_shape)


# --------------------------------------------------------------------------- the report

def _m(n: float) -> str:
    """A count in G/M/k with about three significant digits: 1.2G, 325M, 56.5M, 2.58M, 37.2k."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            v = n / size
            return f"{v:.0f}{unit}" if v >= 100 else f"{v:.1f}{unit}" if v >= 10 else f"{v:.2f}{unit}"
    return f"{n:.0f}"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def format_report(cost: ModelCost, layers: bool = False) -> str:
    """A readable table: totals by kind, optionally one row per layer, then the separable pairs."""
    lines: List[str] = []
    shape = "x".join(str(x) for x in cost.input_shape)
    lines.append(f"{Path(cost.path).name}  input {shape}")
    lines.append(f"  {_m(cost.madds)} mult-adds, {_m(cost.params)} parameters "
                 f"({cost.madds:,} / {cost.params:,}); "
                 f"{100 * cost.pointwise_share:.1f}% of mult-adds in 1x1 convolutions")
    lines.append("")
    total_m, total_p = cost.madds, cost.params
    lines.append(f"  {'kind':<10} {'layers':>6} {'mult-adds':>11} {'%':>6} {'params':>10} {'%':>6}")
    counts: Dict[str, int] = defaultdict(int)
    for l in cost.layers:
        counts[l.kind] += 1
    labels = {"conv": "conv", "depthwise": "depthwise", "pointwise": "1x1 conv", "fc": "fc"}
    for kind, (params, madds) in cost.totals.items():
        lines.append(f"  {labels[kind]:<10} {counts[kind]:>6} {_m(madds):>11} {_pct(madds, total_m):>6} "
                     f"{_m(params):>10} {_pct(params, total_p):>6}")
    lines.append(f"  {'total':<10} {len(cost.layers):>6} {_m(total_m):>11} {'':>6} {_m(total_p):>10}")

    if layers:
        lines.append("")
        lines.append(f"  {'op':>4} {'kind':<10} {'kernel':>6} {'s':>2} {'in':>5} {'out':>5} "
                     f"{'out hw':>8} {'mult-adds':>11} {'%':>6} {'params':>9}  name")
        for l in cost.layers:
            k = f"{l.kernel[0]}x{l.kernel[1]}"
            hw = f"{l.out_hw[0]}x{l.out_hw[1]}"
            s = "-" if l.stride is None else str(l.stride)
            lines.append(f"  {l.index:>4} {labels[l.kind]:<10} {k:>6} {s:>2} {l.in_ch:>5} "
                         f"{l.out_ch:>5} {hw:>8} {l.madds:>11,} {_pct(l.madds, total_m):>6} "
                         f"{l.params:>9,}  {l.name.split(';')[0]}")

    lines.append("")
    if not cost.pairs:
        lines.append("  no depthwise separable (depthwise + 1x1) pairs")
        return "\n".join(lines)
    lines.append(f"  depthwise separable pairs ({len(cost.pairs)}): cost vs the standard "
                 f"Dk x Dk conv M -> N they replace; paper ratio = 1/N + 1/Dk^2")
    lines.append(f"  {'dw':>4} {'pw':>4} {'Dk':>3} {'M':>5} {'N':>5} {'out hw':>8} "
                 f"{'separable':>11} {'standard':>12} {'ratio':>7} {'paper':>7}")
    for p in cost.pairs:
        hw = f"{p.pointwise.out_hw[0]}x{p.pointwise.out_hw[1]}"
        lines.append(f"  {p.depthwise.index:>4} {p.pointwise.index:>4} {p.dk:>3} "
                     f"{p.depthwise.in_ch:>5} {p.pointwise.out_ch:>5} {hw:>8} "
                     f"{p.separable_madds:>11,} {p.standard_madds:>12,} "
                     f"{p.ratio:>7.4f} {p.paper_ratio:>7.4f}")
    sep, std = cost.separable_madds, cost.standard_madds
    whole = cost.standard_equivalent_madds
    lines.append(f"  saving: the pairs cost {_m(sep)} mult-adds instead of {_m(std)} "
                 f"({std / sep:.1f}x fewer, {_m(std - sep)} saved); the whole model "
                 f"{_m(cost.madds)} instead of {_m(whole)} with standard convolutions "
                 f"({whole / cost.madds:.1f}x)")
    return "\n".join(lines)

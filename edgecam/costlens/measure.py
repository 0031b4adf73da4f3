"""`edgecam models info NAME --measure`: the cost lens, timed on this machine.

Mult-adds say a depthwise separable pair costs 1/N + 1/Dk^2 of the standard Dk x Dk conv it
replaces. Time says less: a depthwise conv does Dk^2 mult-adds per input value it reads, a 1x1
conv N and a standard conv Dk^2 * N, so the depthwise half runs far below the CPU's arithmetic
peak, bound by memory. This module measures by how much.

For every pair of the model (edgecam/costlens/costs.py finds them) it writes four int8 TFLite
models of the pair's own shapes (edgecam/costlens/tflite_writer.py): the standard conv M -> N, the
depthwise conv then the 1x1 conv, and each of those two alone. Activation scales and zero
points are the real layer's (uint8 models' zero points moved by -128 to int8), the depthwise and
1x1 weight scales the real layer's (per channel where it has them); the standard conv, which
the network does not have, gets a weight scale that spreads its outputs over the same output
range. Weights are random (fixed seed): a convolution's time does not depend on their values.

Each model runs in the installed interpreter with the configured threads: warm-up, then
``repeat`` rounds, each a few invokes long; the models of one pair take turns round by round,
so a slow spell of the machine falls on all of them; each figure is the median round. Per pair
the time of an invoke of a 1-pixel model (the interpreter's fixed cost per call) is subtracted.

The whole network: every pair at once, as one model of independent branches (one invoke, so
no per-call cost to subtract), standard and separable; and likewise every conv and fully
connected layer outside the pairs (the first conv, the classifier, V2's expansion convs, SSD's
box predictors: ``rest``, the same in both networks). Standard = rest + all pairs standard,
separable = rest + all pairs separable. Ops without mult-adds (pooling, softmax, residual
adds, activations) are not timed. The published model itself is timed too, for reference: its
own kernels may differ (V1's released models are uint8; on an x86 with AVX-512 VNNI they ran
at half the speed of the same layers in int8).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecam.errors import ConversionError, ModelError, UsageError
from edgecam.provision import int8_cache
from edgecam.costlens.costs import ModelCost, SeparablePair, analyze
from edgecam.model.engine import interpreter_class, make_interpreter
from edgecam.costlens.tflite_writer import SAME, VALID, Conv, Quant, conv_branches, out_size, spread_scale

ROUND_S = 0.002            # each timing round is at least this long (several invokes of a small model)
KINDS = ("standard", "separable", "depthwise", "pointwise")
FLOAT_QUANT = Quant.of(0.05, 0)   # a float model's layers: a realistic int8 activation scale


@dataclass
class PairShape:
    """What the four models of one pair are made of, read from the real graph."""

    pair: SeparablePair
    in_hw: Tuple[int, int]
    stride: int
    padding: int
    x_q: Quant
    dw_scales: Tuple[float, ...]
    mid_q: Quant                   # the pointwise conv's input (after the depthwise's activation)
    pw_scales: Tuple[float, ...]
    out_q: Quant

    def layers(self, kind: str) -> Tuple[Tuple[int, int, int], Quant, List[Conv]]:
        """(input shape, input quantization, convs) of the model ``kind``."""
        p, (h, w) = self.pair, self.in_hw
        dk, m, n = p.dk, p.depthwise.in_ch, p.pointwise.out_ch
        dw = Conv(dk, m, self.stride, self.dw_scales, self.mid_q, True, "relu6", self.padding)
        pw = Conv(1, n, 1, self.pw_scales, self.out_q, False, "relu6")
        if kind == "standard":
            scale = spread_scale(self.x_q.scale[0], self.out_q.scale[0], dk * dk * m)
            standard = Conv(dk, n, self.stride, (scale,) * n, self.out_q, False, "relu6", self.padding)
            return (h, w, m), self.x_q, [standard]
        if kind == "separable":
            return (h, w, m), self.x_q, [dw, pw]
        if kind == "depthwise":
            return (h, w, m), self.x_q, [dw]
        oh, ow = p.pointwise.out_hw
        return (oh, ow, m), self.mid_q, [pw]


@dataclass
class PairTime:
    shape: PairShape
    ms: Dict[str, float]           # kind -> median ms per invoke, less the per-call cost

    @property
    def predicted(self) -> float:
        """The mult-add speed-up: standard / separable mult-adds (= 1 / (1/N + 1/Dk^2))."""
        p = self.shape.pair
        return p.standard_madds / p.separable_madds

    @property
    def speedup(self) -> float:
        return self.ms["standard"] / self.ms["separable"]

    @property
    def efficiency(self) -> float:
        return self.speedup / self.predicted


@dataclass
class Measurement:
    cost: ModelCost
    threads: int
    runtime: str
    rounds: int
    overhead_ms: float             # one invoke of a 1-pixel model
    pairs: List[PairTime]
    model_ms: float                # the real model, as published (its own kernels: uint8 for V1)
    all_ms: Dict[str, float] = field(default_factory=dict)   # kind -> every pair in one model
    rest_ms: float = 0.0           # the layers outside the pairs, in one model
    skipped: List[str] = field(default_factory=list)         # layers outside the pairs not timed
    int8_ms: Optional[float] = None  # the model's int8 rewrite (edgecam/costlens/int8.py), when it converts
    int8_note: str = ""              # why there is no int8 time

    @property
    def speedup(self) -> float:
        return (self.rest_ms + self.all_ms["standard"]) / (self.rest_ms + self.all_ms["separable"])

    @property
    def predicted(self) -> float:
        return self.cost.standard_equivalent_madds / self.cost.madds

    def shares(self) -> Dict[str, Tuple[float, float]]:
        """depthwise | pointwise | rest -> (share of the time, share of the mult-adds)."""
        sep, dw, pw = self.all_ms["separable"], self.all_ms["depthwise"], self.all_ms["pointwise"]
        dw_t = sep * dw / (dw + pw) if dw + pw > 0 else 0.0
        times = {"depthwise": dw_t, "pointwise": sep - dw_t, "rest": self.rest_ms}
        dw_m = sum(p.depthwise.madds for p in self.cost.pairs)
        pw_m = sum(p.pointwise.madds for p in self.cost.pairs)
        madds = {"depthwise": dw_m, "pointwise": pw_m, "rest": self.cost.madds - dw_m - pw_m}
        total_t, total_m = sum(times.values()) or 1.0, self.cost.madds or 1
        return {k: (times[k] / total_t, madds[k] / total_m) for k in times}

    def rates(self) -> Dict[str, float]:
        """Mult-adds per second (billions) of every pair at once: standard, depthwise, 1x1."""
        pairs = self.cost.pairs
        madds = {"standard": sum(p.standard_madds for p in pairs), "depthwise": sum(p.depthwise.madds for p in pairs),
                 "pointwise": sum(p.pointwise.madds for p in pairs)}
        return {k: m / (self.all_ms[k] * 1e6) if self.all_ms[k] > 0 else 0.0 for k, m in madds.items()}

    def to_dict(self) -> dict:
        return {"gmadds_per_s": self.rates(), "threads": self.threads, "runtime": self.runtime, "rounds": self.rounds,
                "skipped": self.skipped,
                "overhead_ms": self.overhead_ms, "model_ms": self.model_ms, "rest_ms": self.rest_ms,
                "int8_ms": self.int8_ms,
                "all_pairs_ms": dict(self.all_ms), "speedup": self.speedup, "predicted": self.predicted,
                "efficiency": self.speedup / self.predicted,
                "shares": {k: {"time": t, "madds": m} for k, (t, m) in self.shares().items()},
                "pairs": [{"depthwise": t.shape.pair.depthwise.index, "pointwise": t.shape.pair.pointwise.index,
                           "ms": dict(t.ms), "predicted": t.predicted, "speedup": t.speedup,
                           "efficiency": t.efficiency} for t in self.pairs]}


# --------------------------------------------------------------------------- the real graph

def _act_quant(t: dict) -> Quant:
    q = t.get("quantization_parameters") or {}
    scales, zeros = q.get("scales", []), q.get("zero_points", [])
    if len(scales) == 0:
        return FLOAT_QUANT
    zero = int(zeros[0]) if len(zeros) else 0
    return Quant.of(float(scales[0]), zero - 128 if t["dtype"] == np.uint8 else zero)


def _weight_scales(t: dict, n: int, fallback: float) -> Tuple[float, ...]:
    scales = (t.get("quantization_parameters") or {}).get("scales", [])
    if len(scales) == n:
        return tuple(float(s) for s in scales)
    return (float(scales[0]) if len(scales) else fallback,) * n


def _graph(path: Path, runtime: str) -> Tuple[Dict[int, dict], Dict[int, dict]]:
    interp = make_interpreter(path, threads=1, runtime=runtime)
    ops = {int(op["index"]): op for op in interp._get_ops_details()}
    return ops, {int(t["index"]): t for t in interp.get_tensor_details()}


def _geometry(x: dict, k: int, out_h: int, stride: Optional[int]) -> Tuple[Tuple[int, int], int, int]:
    """(input h, w), stride, padding of a conv with input tensor ``x`` and output height ``out_h``."""
    h, w = (int(v) for v in x["shape"][1:3])
    stride = stride or max(1, round(h / out_h))
    return (h, w), stride, SAME if out_size(h, k, stride, SAME) == out_h else VALID


def pair_shapes(cost: ModelCost, ops: Dict[int, dict], tensors: Dict[int, dict]) -> List[PairShape]:
    out = []
    for p in cost.pairs:
        dw, pw = ops[p.depthwise.index], ops[p.pointwise.index]
        x, mid, y = tensors[int(dw["inputs"][0])], tensors[int(pw["inputs"][0])], tensors[int(pw["outputs"][0])]
        hw, stride, padding = _geometry(x, p.dk, p.depthwise.out_hw[0], p.depthwise.stride)
        x_q, mid_q, out_q = _act_quant(x), _act_quant(mid), _act_quant(y)
        m, n = p.depthwise.in_ch, p.pointwise.out_ch
        dw_fallback = spread_scale(x_q.scale[0], mid_q.scale[0], p.dk * p.dk)
        pw_fallback = spread_scale(mid_q.scale[0], out_q.scale[0], m)
        out.append(PairShape(p, hw, stride, padding, x_q,
                             _weight_scales(tensors[int(dw["inputs"][1])], m, dw_fallback), mid_q,
                             _weight_scales(tensors[int(pw["inputs"][1])], n, pw_fallback), out_q))
    return out


Branch = Tuple[Tuple[int, int, int], Quant, List[Conv]]


def rest_branches(cost: ModelCost, ops: Dict[int, dict], tensors: Dict[int, dict]) -> Tuple[List[Branch], List[str]]:
    """The convolution and fully connected layers outside the pairs, one branch each (a fully
    connected layer as the 1x1 conv on a 1x1 map it equals); and the ones left out (grouped or
    non-square kernels, depth multiplier above 1), by name."""
    paired = {i for p in cost.pairs for i in (p.depthwise.index, p.pointwise.index)}
    branches, skipped = [], []
    for layer in cost.layers:
        if layer.index in paired:
            continue
        op = ops[layer.index]
        x, wt = tensors[int(op["inputs"][0])], tensors[int(op["inputs"][1])]
        y = tensors[int(op["outputs"][0])]
        x_q, y_q = _act_quant(x), _act_quant(y)
        kh, kw = layer.kernel
        if layer.op == "FULLY_CONNECTED":
            shape, k, stride, padding, depthwise = (1, 1, layer.in_ch), 1, 1, SAME, False
        else:
            depthwise = layer.op == "DEPTHWISE_CONV_2D"
            grouped = layer.out_ch != layer.in_ch if depthwise else int(wt["shape"][3]) != layer.in_ch
            if kh != kw or grouped:
                skipped.append(layer.name.split(";")[0])
                continue
            hw, stride, padding = _geometry(x, kh, layer.out_hw[0], layer.stride)
            shape, k = (hw[0], hw[1], layer.in_ch), kh
        fan_in = k * k * (1 if depthwise else layer.in_ch)
        scales = _weight_scales(wt, layer.out_ch, spread_scale(x_q.scale[0], y_q.scale[0], fan_in))
        branches.append((shape, x_q, [Conv(k, layer.out_ch, stride, scales, y_q, depthwise, "none", padding)]))
    return branches, skipped


# --------------------------------------------------------------------------- timing

class Timed:
    """An interpreter with random input, ready to be timed."""

    def __init__(self, path: Path, threads: int, runtime: str, seed: int = 0):
        self.interp = make_interpreter(path, threads=threads, runtime=runtime)
        rng = np.random.default_rng(seed)
        for d in self.interp.get_input_details():
            info = np.iinfo(d["dtype"]) if np.issubdtype(d["dtype"], np.integer) else None
            data = (rng.integers(info.min, info.max + 1, size=d["shape"]) if info else
                    rng.standard_normal(d["shape"]))
            self.interp.set_tensor(d["index"], data.astype(d["dtype"]))
        self.interp.invoke()                       # first invoke: XNNPACK packs the weights
        t0 = time.perf_counter()
        self.interp.invoke()
        self.single = max(time.perf_counter() - t0, 1e-6)
        self.per_round = max(1, math.ceil(ROUND_S / self.single))

    def round(self) -> float:
        """Seconds per invoke over one round."""
        invoke = self.interp.invoke
        t0 = time.perf_counter()
        for _ in range(self.per_round):
            invoke()
        return (time.perf_counter() - t0) / self.per_round


def time_together(models: Sequence[Timed], rounds: int, budget_s: float) -> Tuple[List[float], int]:
    """Median ms per invoke of each model, timed in turns, round by round (at least 3 rounds,
    at most ``rounds``, fewer when ``budget_s`` would be exceeded); and the rounds run."""
    cost = sum(m.single * m.per_round for m in models)
    n = max(3, min(rounds, int(budget_s / cost) if cost > 0 else rounds))
    samples: List[List[float]] = [[] for _ in models]
    for _ in range(n):
        for k, m in enumerate(models):
            samples[k].append(m.round())
    return [statistics.median(s) * 1000.0 for s in samples], n


def _int8_file(path: Path, runtime: str) -> Tuple[Optional[Path], str]:
    """The model's int8 file (converted and cached beside it when needed), or why there is none."""
    try:
        int8_cache.ensure(path, runtime)
        return int8_cache.int8_path(path), ""
    except ConversionError as exc:
        return None, f"no int8 file: the converter refuses it: {exc}"
    except OSError as exc:
        return None, f"no int8 file: it cannot be written beside the model ({exc.strerror or exc})"


def _write(folder: Path, name: str, model: bytes) -> Path:
    path = folder / f"{name}.tflite"
    path.write_bytes(model)
    return path


def measure(path, threads: int = 2, runtime: str = "auto", rounds: int = 15, budget_s: float = 30.0,
            log=None) -> Measurement:
    """Time every separable pair of the model at ``path`` against its standard conv, and the
    network both ways (see the module's docstring). Every model is timed in one rotation, round
    by round, so that the machine's slow spells fall on all of them alike; ``budget_s`` bounds
    the timing (not the writing of the models)."""
    if rounds < 1:
        raise UsageError("--repeat must be at least 1")
    if budget_s <= 0:
        raise UsageError("--budget must be above 0 seconds")
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    path = Path(path)
    cost = analyze(path)
    if not cost.pairs:
        raise ModelError(f"{path.name} has no depthwise separable pairs to measure")
    ops, tensors = _graph(path, runtime)
    shapes = pair_shapes(cost, ops, tensors)
    rest, skipped = rest_branches(cost, ops, tensors)
    one_pixel = [((1, 1, 1), FLOAT_QUANT, [Conv(1, 1, 1, (0.01,), FLOAT_QUANT)])]
    models = {"overhead": one_pixel, "rest": rest}
    models.update({f"all-{kind}": [s.layers(kind) for s in shapes] for kind in KINDS})
    models.update({f"{i}-{kind}": [s.layers(kind)] for i, s in enumerate(shapes) for kind in KINDS})
    if log:
        log(f"timing {len(shapes)} pairs and the whole network, standard and separable "
            f"({len(models) + 1} models) ...")
    int8_file, note = _int8_file(path, runtime)
    with tempfile.TemporaryDirectory(prefix="edgecam-measure-") as td:
        timed = [Timed(path, threads, runtime)] + ([Timed(int8_file, threads, runtime)] if int8_file else [])
        for i, (name, branches) in enumerate(models.items()):
            if branches:
                timed.append(Timed(_write(Path(td), name, conv_branches(branches, seed=i).model), threads, runtime))
        ms, done = time_together(timed, rounds, budget_s)
    names = ["model"] + (["int8"] if int8_file else []) + [n for n, b in models.items() if b]
    got = dict(zip(names, ms))
    overhead = got["overhead"]
    result = Measurement(cost, threads, interpreter_class(runtime)[0], done, overhead, [], got["model"],
                         {k: got[f"all-{k}"] for k in KINDS}, got.get("rest", 0.0), skipped,
                         got.get("int8"), note)
    for i, s in enumerate(shapes):
        result.pairs.append(PairTime(s, {k: max(got[f"{i}-{k}"] - overhead, 0.01 * got[f"{i}-{k}"])
                                         for k in KINDS}))
    return result


# --------------------------------------------------------------------------- the report

def _x(v: float) -> str:
    return f"{v:.1f}x" if v < 100 else f"{v:.0f}x"


def _us(ms: float) -> str:
    us = ms * 1000.0
    return f"{us:.1f}" if us < 10 else f"{us:.0f}"


def format_measurement(m: Measurement) -> str:
    lines = [f"measured here: {m.threads} thread{'s' if m.threads != 1 else ''}, {m.runtime}, "
             f"median of {m.rounds} rounds; per pair the interpreter's cost per call "
             f"({m.overhead_ms * 1000:.1f} us, a 1-pixel model) is subtracted",
             f"  {'dw':>4} {'pw':>4} {'Dk':>3} {'M':>5} {'N':>5} {'out hw':>8} {'1/N+1/Dk2':>10} "
             f"{'predicted':>9} {'standard':>10} {'separable':>10} {'dw':>8} {'pw':>8} {'measured':>9} "
             f"{'efficiency':>11}",
             f"  {'':>44}{'(mult-adds)':>10} {'us':>10} {'us':>10} {'us':>8} {'us':>8} {'speed-up':>9}"]
    for t in m.pairs:
        p, ms = t.shape.pair, t.ms
        hw = f"{p.pointwise.out_hw[0]}x{p.pointwise.out_hw[1]}"
        lines.append(f"  {p.depthwise.index:>4} {p.pointwise.index:>4} {p.dk:>3} {p.depthwise.in_ch:>5} "
                     f"{p.pointwise.out_ch:>5} {hw:>8} {p.paper_ratio:>10.4f} {_x(t.predicted):>9} "
                     f"{_us(ms['standard']):>10} {_us(ms['separable']):>10} {_us(ms['depthwise']):>8} "
                     f"{_us(ms['pointwise']):>8} {_x(t.speedup):>9} {t.efficiency * 100:>10.0f}%")
    a = m.all_ms
    pairs_pred = m.cost.standard_madds / m.cost.separable_madds
    lines += ["", f"  all {len(m.pairs)} pairs in one model: standard {a['standard']:.2f} ms, separable "
              f"{a['separable']:.2f} ms: {_x(a['standard'] / a['separable'])} faster (mult-adds predict "
              f"{_x(pairs_pred)}, efficiency {a['standard'] / a['separable'] / pairs_pred * 100:.0f}%)",
              f"  whole model: measured {m.speedup:.1f}x faster than the same network with standard "
              f"convolutions (mult-adds predict {m.predicted:.1f}x; efficiency {m.speedup / m.predicted * 100:.0f}%)",
              f"    = (the {len(m.cost.layers) - 2 * len(m.pairs) - len(m.skipped)} conv/fc layers outside the "
              f"pairs, {m.rest_ms:.2f} ms, + all pairs) both ways; pooling, softmax and element-wise "
              "ops are not timed (no mult-adds)"
              + (f"; not timed either: {', '.join(m.skipped)}" if m.skipped else ""),
              f"    the published model itself runs in {m.model_ms:.2f} ms here "
              f"({m.rest_ms + a['separable']:.2f} ms as the int8 layers above)",
              "    " + (f"its int8 file (edgecam's rewrite, `model.int8`) in {m.int8_ms:.2f} ms: "
                         f"{m.model_ms / m.int8_ms:.2f}x faster" if m.int8_ms else m.int8_note),
              "  arithmetic rate (all pairs, billion mult-adds/s): standard conv {standard:.0f}, 1x1 conv "
              "{pointwise:.0f}, depthwise conv {depthwise:.0f}: depthwise convs move many bytes per "
              "mult-add".format(**m.rates()),
              "", f"  {'':<12}{'time':>8}{'mult-adds':>11}"]
    labels = {"depthwise": "depthwise", "pointwise": "1x1 (pairs)", "rest": "the rest"}
    for kind, (time_share, madds) in m.shares().items():
        lines.append(f"  {labels[kind]:<12}{time_share * 100:>7.1f}%{madds * 100:>10.1f}%")
    return "\n".join(lines)

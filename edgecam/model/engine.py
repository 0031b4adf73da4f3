"""Inference: one wrapper over whichever TFLite interpreter is installed
(ai-edge-litert, the maintained successor, else tflite-runtime), with XNNPACK threads."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

from edgecam.bounds import read_bounded
from edgecam.errors import ConversionError, CorruptModelError, ModelError, UsageError
from edgecam.costlens import tflite_file
from edgecam.model.cores import new_threads, pin
from edgecam.model.quiet import runtime_chatter_hidden

MAX_MODEL_BYTES = 256 << 20   # read whole to check its structure (the MobileNets are 0.5-6 MB)

RUNTIME_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}


def interpreter_class(runtime: str = "auto") -> Tuple[str, type]:
    """(runtime name, Interpreter class). ``auto`` prefers ai-edge-litert, then tflite-runtime."""
    names = list(RUNTIME_MODULES) if runtime == "auto" else [runtime]
    for name in names:
        if name not in RUNTIME_MODULES:
            raise UsageError(f"unknown runtime '{name}': use auto, ai_edge_litert or tflite_runtime")
        try:
            module = importlib.import_module(RUNTIME_MODULES[name])
        except ImportError:
            continue
        return name, module.Interpreter
    if runtime == "auto":
        raise ModelError("no TFLite runtime is installed: `pip install ai-edge-litert` "
                         "(or `pip install tflite-runtime` where ai-edge-litert has no wheel)")
    pip_name = runtime.replace("_", "-")
    raise ModelError(f"the runtime '{runtime}' forced by model.runtime is not installed: `pip install {pip_name}`")


def check_model_file(path: Path) -> None:
    """One clear sentence for a missing, empty, truncated or non-TFLite file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read ({exc.strerror})") from None
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelError(f"model file {path} is not a TFLite model (no TFL3 header)")
    check_structure(path)


def check_structure(path: Path) -> None:
    """ModelError for a file whose flatbuffer points outside itself (a truncated download): read
    whole and bounded by tflite_file (13 ms for the SSD) before any interpreter sees it, since
    tflite-runtime dies of a segmentation fault on one instead of raising."""
    data = read_bounded(Path(path), "model file", MAX_MODEL_BYTES, ModelError)
    try:
        tflite_file.read(data)
    except CorruptModelError as exc:
        raise ModelError(f"model file {path} is corrupt or truncated ({exc})") from None
    except ConversionError:
        pass                                # sound, but beyond what the reader knows: fine to run


def make_interpreter(path: Path, threads: int = 2, runtime: str = "auto"):
    """A ready (allocated) interpreter for ``path``; ModelError for anything wrong with the file."""
    check_model_file(path)
    _, cls = interpreter_class(runtime)
    try:
        with runtime_chatter_hidden():      # XNNPACK's INFO line (shown with --log-level debug)
            interp = cls(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model file {path} is corrupt or truncated ({first})") from None
    return interp


def make_started(path: Path, threads: int = 2, runtime: str = "auto"):
    """:func:`make_interpreter`'s interpreter after one invoke() on zeros: a runtime that starts
    its worker threads at the first invoke (tflite-runtime 2.14's own kernels on x86) starts
    them here, inside :func:`new_threads`, so that they are pinned too. Not seen, they were
    started by the pinned invoking thread, shared its core, and took 140 ms a v1_ssd frame
    instead of 67 ms."""
    interp = make_interpreter(path, threads, runtime)
    d = interp.get_input_details()[0]
    try:
        interp.set_tensor(d["index"], np.zeros([int(x) for x in d["shape"]], d["dtype"]))
        interp.invoke()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model file {path} cannot run ({first})") from None
    return interp


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    dtype: type
    scale: float        # real = scale * (q - zero_point); scale 0 = not quantized
    zero_point: int


@dataclass(frozen=True)
class OutputInfo:
    index: int
    name: str
    shape: Tuple[int, ...]


class Engine:
    """A TFLite model ready to run: ``run(tensor)`` returns dequantized float outputs."""

    def __init__(self, path: Path, threads: int = 2, runtime: str = "auto"):
        self.path = Path(path)
        self.threads = threads
        self.runtime, _ = interpreter_class(runtime)
        self.interpreter, self.workers = new_threads(lambda: make_started(self.path, threads, runtime))
        self._read_details()
        self.last_ms = 0.0
        self.last_span = (0.0, 0.0)     # perf_counter() when the last run() began and ended

    def _read_details(self) -> None:
        d = self.interpreter.get_input_details()[0]
        self._input_index = d["index"]
        scale, zero = d.get("quantization", (0.0, 0))
        _, h, w, _ = (int(x) for x in d["shape"])
        self.input = InputSpec(h, w, d["dtype"], float(scale), int(zero))
        self._outputs = self.interpreter.get_output_details()
        self.outputs = [OutputInfo(o["index"], o["name"], tuple(int(x) for x in o["shape"]))
                        for o in self._outputs]

    def resize_input(self, height: int, width: int) -> bool:
        """Try to run the model at another input size; False (and unchanged) when it can't."""
        if (height, width) == (self.input.height, self.input.width):
            return True
        before = [o.shape for o in self.outputs]
        old = (self.input.height, self.input.width)
        try:
            self.interpreter.resize_tensor_input(self._input_index, [1, height, width, 3], strict=False)
            with runtime_chatter_hidden():
                self.interpreter.allocate_tensors()
            self._read_details()
            if [o.shape for o in self.outputs] == before:
                self.run(np.zeros((1, height, width, 3), self.input.dtype))
                return True
        except (ValueError, RuntimeError):
            pass
        try:  # put it back the way it was
            self.interpreter.resize_tensor_input(self._input_index, [1, old[0], old[1], 3], strict=False)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self.interpreter, self.workers = new_threads(
                lambda: make_started(self.path, self.threads, self.runtime))
        self._read_details()
        return False

    def pin(self) -> bool:
        """Called on the thread that runs this engine: that thread and each of the
        interpreter's worker threads on a core of its own (edgecam/model/cores.py)."""
        return pin(self.workers)

    def ops(self) -> List[dict]:
        try:
            return self.interpreter._get_ops_details()
        except AttributeError:  # very old runtimes
            return []

    def tensor_details(self) -> List[dict]:
        return self.interpreter.get_tensor_details()

    def run(self, tensor: np.ndarray) -> List[np.ndarray]:
        """Invoke on a (1, H, W, 3) tensor of the input dtype; outputs dequantized to float32."""
        interp = self.interpreter
        begin = time.perf_counter()
        interp.set_tensor(self._input_index, tensor)
        t0 = time.perf_counter()
        interp.invoke()
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        outs = []
        for o in self._outputs:
            arr = interp.get_tensor(o["index"])
            scale, zero = o.get("quantization", (0.0, 0))
            if scale and arr.dtype != np.float32:
                arr = (arr.astype(np.float32) - zero) * scale
            outs.append(arr)
        self.last_span = (begin, time.perf_counter())
        return outs

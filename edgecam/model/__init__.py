"""The model at run time: everything between a frame and its result. Where models come from
(catalogue, provisioning, the int8 cache) is edgecam/provision/; the cost lens and the TFLite
files edgecam writes, edgecam/costlens/.

  interface.py   Model: what the runners take as a model (a protocol: loader's and compare's honour it)
  loader.py      the TFLite model (preprocess -> inference -> postprocess on one frame), load_model
  results.py     Result, Detection, Classification
  engine.py      the one interpreter wrapper (ai-edge-litert / tflite-runtime, XNNPACK threads)
  cores.py       where the interpreter's threads run: a core each in live mode, while the cores are quiet
  preprocess.py  ρ-scaled resize, colour order, input quantization, the exact box transform (pure)
  postprocess.py top-k, SSD boxes mapped back to frame pixels (pure)
  labels.py      label files and TFLite metadata labels
  switch.py      the one model switch of a running app
  compare.py     several models of one task as one (--compare)

This file only re-exports, and only the types: ``load_model`` is edgecam.model.loader's and the
model switch edgecam.model.switch's, so that importing the engine (provisioning and the cost
lens do) does not import the loader, which imports them."""

from edgecam.model.interface import Model
from edgecam.model.results import Classification, Detection, Result

__all__ = ["Model", "Result", "Detection", "Classification"]

"""The model side: everything between a frame and its result, and where models come from.

  interface.py   Model: what the runners take as a model (a protocol: loader's and compare's honour it)
  loader.py      the TFLite model (preprocess -> inference -> postprocess on one frame), load_model
  results.py     Result, Detection, Classification
  engine.py      the one interpreter wrapper (ai-edge-litert / tflite-runtime, XNNPACK threads)
  cores.py       where the interpreter's threads run: a core each in live mode, while the cores are quiet
  preprocess.py  ρ-scaled resize, colour order, input quantization, the exact box transform (pure)
  postprocess.py top-k, SSD boxes mapped back to frame pixels (pure)
  labels.py      label files and TFLite metadata labels
  catalog.py     the catalogue, and the one model lookup (``locate``)
  fetch.py       provisioning: download or mirror copy, SHA-256, atomic
  costs.py       the cost lens: parameters and mult-adds from the graph
  measure.py     the cost lens timed: separable pairs against standard convs (--measure)
  tflite_writer.py  small int8 conv models written at run time (for measure.py)
  tflite_file.py the whole TFLite flatbuffer read into plain objects and written back (bounded)
  int8.py        the published uint8 models rewritten as int8 (XNNPACK's faster kernels)
  int8_check.py  the int8 file against the published one: probe images, the equality bar
  int8_cache.py  which file runs (model.int8): the int8 file cached beside the model, and why
  switch.py      the one model switch of a running app
  compare.py     several models of one task as one (--compare)

This file only re-exports."""

from edgecam.model.interface import Model
from edgecam.model.loader import load_model
from edgecam.model.results import Classification, Detection, Result
from edgecam.model.switch import ModelSwitcher

__all__ = ["Model", "load_model", "Result", "Detection", "Classification", "ModelSwitcher"]

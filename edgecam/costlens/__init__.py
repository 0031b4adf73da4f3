"""The cost lens and the TFLite files edgecam writes: what a model costs, measured, and the
int8 rewrite of the published models. Tooling, not the runtime: `edgecam models info`,
`--measure`, `edgecam bench`, and provisioning (edgecam/provision/int8_cache.py) use it.

  costs.py         parameters and mult-adds from the graph, per layer kind (the cost lens)
  measure.py       the cost lens timed: separable pairs against standard convs (--measure)
  tflite_writer.py small int8 conv models written at run time (for measure.py)
  tflite_file.py   a whole TFLite flatbuffer read into plain objects and written back (bounded)
  int8.py          the published uint8 models rewritten as int8 (XNNPACK's faster kernels)
  int8_check.py    the int8 file against the published one: probe images, the equality bar
  embedding.py     a classifier cut at its pooled features (the embedding model of edgecam/teach/)

This file only re-exports (nothing)."""

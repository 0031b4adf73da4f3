"""Teach it on the device: a taught set (a folder of examples per label) turned into MobileNet
embeddings, and what a run does with it (relabel, suppress, classify the frame's state).

  settings.py  the ``teach:`` section of the config schema
  taught.py    the set: its folder, its cached embeddings, class means, leave-one-out, the margin
  embedder.py  crops and frames to embeddings (the classifier's pooled features)
  stage.py     the teach stage of a run: detections relabelled or suppressed, the frame's state
  command.py   `edgecam teach SET [--model ...] [--add LABEL IMAGE...] [--remove IMAGE...]`

This file only re-exports (nothing)."""

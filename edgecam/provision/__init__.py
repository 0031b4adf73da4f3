"""Where models come from: the catalogue, provisioning (download or mirror copy, SHA-256), the
int8 file cached beside a model, and `edgecam models list|fetch|available|info`.

  catalog.py     the catalogue (models/catalog.yaml), and the one model lookup (``locate``)
  fetch.py       provisioning: download or mirror copy, SHA-256, atomic
  int8_cache.py  which file runs (model.int8): the int8 file cached beside the model, and why
  embed_cache.py a classifier's embedding model (edgecam/teach/), derived once and cached beside it
  commands.py    `edgecam models ...`

This file only re-exports (nothing)."""

"""The embedding model of a classifier, derived once and cached beside it (as the int8 file is).

``edgecam teach`` and ``--teach`` need a classifier's pooled features (costlens/embedding.py).
The classifier named by ``teach.model`` (v2, v3 or a .tflite path) is provisioned like any
model, the file that runs is chosen by ``model.int8`` (int8_cache.py: the int8 rewrite where it
is measured equal), and that file's embedding model is written once to ``NAME.embed.tflite``
beside it (or in the state folder's int8/ for a read-only folder or the mirror), with
``NAME.embed.json`` recording the SHA-256 of both files, the feature tensor and the check at
derivation: the derived output against the full model's intermediate tensor on the probe
images (equal to the last bit, or the derivation is refused). Written through a .tmp file and
renamed: an interrupted derivation leaves nothing. When the source file changes (another
SHA-256), it is derived again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from edgecam.errors import ConversionError, CorruptModelError, ModelError
from edgecam.costlens import embedding, tflite_file
from edgecam.provision import catalog, int8_cache
from edgecam.provision.fetch import provision_configured, sha256_of, temp_in, write_synced

DERIVER = 1                                        # bumped when the derivation changes


@dataclass(frozen=True)
class EmbeddingModel:
    """The file to run for embeddings, and what names it in a taught set."""

    path: Path
    name: str                                      # e.g. "v2" or "v2 (int8)"
    sha256: str                                    # of the embedding file
    size: int                                      # values per embedding
    record: dict


def _paths(source: Path):
    stem = source.name[:-len(".tflite")] if source.name.endswith(".tflite") else source.name
    where = int8_cache.folder(source)
    if where != source.parent:
        stem = f"{stem}.{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]}"
    return where / f"{stem}.embed.tflite", where / f"{stem}.embed.json"


def provisioned(cfg, name: str) -> Path:
    """The classifier ``name`` (catalogue name or .tflite path), provisioned as a run does it."""
    local = replace(cfg, model=replace(cfg.model, name=name), preprocess=replace(cfg.preprocess, rho=None))
    provision_configured(local)
    where = catalog.locate(name, None, cfg.model.dir).require()
    if where.spec is not None and where.spec.task != "classify":
        raise ModelError(f"teach.model {name} is a {where.spec.task} model: an embedding comes from a "
                         f"classifier (v2, v3, a v1 classifier, or a classifier's .tflite)")
    if not where.path.is_file():
        raise ModelError(f"model file {where.path} does not exist")
    return where.path


def ensure(cfg, name: str) -> EmbeddingModel:
    """The embedding model of the classifier ``name`` under ``model.int8``, derived if needed;
    ModelError (one sentence) for a model it cannot come from."""
    published = provisioned(cfg, name)
    choice = int8_cache.choose(published, cfg.model.int8, cfg.model.runtime)
    source = choice.path
    spec = None if catalog.is_model_path(name) else catalog.locate(name).spec
    label = (spec.name if spec is not None else published.name) + (" (int8)" if choice.int8 else "")
    digest = sha256_of(source)
    path, record_file = _paths(source)
    record = _cached(path, record_file, digest)
    if record is None:
        record = _derive(source, digest, path, record_file, cfg.model.runtime)
    return EmbeddingModel(path, label, record["embedding"]["sha256"], record["size"], record)


def _cached(path: Path, record_file: Path, digest: str) -> Optional[dict]:
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        fresh = record.get("deriver") == DERIVER and record["source"]["sha256"] == digest
        fresh = fresh and sha256_of(path) == record["embedding"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record if fresh else None


def _derive(source: Path, digest: str, path: Path, record_file: Path, runtime: str) -> dict:
    try:
        derived = embedding.derive(tflite_file.read(source.read_bytes()))
    except (ConversionError, CorruptModelError) as exc:
        raise ModelError(f"no embedding model can be derived from {source.name}: {exc}") from None
    data = tflite_file.write(derived.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temp(path) as tmp:
        write_synced(tmp, data)
        with warnings.catch_warnings():          # preserve_all_tensors: "for debugging purposes only"
            warnings.simplefilter("ignore")
            try:
                diff = embedding.check(source, tmp, derived.tensor, runtime)
            except ConversionError as exc:
                raise ModelError(f"the embedding model of {source.name} cannot be checked: {exc}") from None
        if diff > embedding.MAX_DIFF:
            raise ModelError(f"the embedding model derived from {source.name} differs from its "
                             f"{derived.tensor} tensor by {diff:g}: not used")
        record = {"deriver": DERIVER, "source": {"file": source.name, "sha256": digest},
                  "embedding": {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()},
                  "tensor": derived.tensor, "size": derived.size, "dropped_ops": derived.dropped_ops,
                  "check": {"images": "the built-in probes", "max_diff": diff}}
        os.replace(tmp, path)
    with _temp(path) as tmp:
        write_synced(tmp, json.dumps(record, indent=1).encode("utf-8"))
        os.replace(tmp, record_file)
    return record


def _temp(path: Path):
    """A fresh .tmp-* file beside ``path``, removed on exit unless renamed into place."""
    return temp_in(path.parent, ".embed", lambda d, e: ModelError(f"the folder {d} is not writable ({e.strerror})"))

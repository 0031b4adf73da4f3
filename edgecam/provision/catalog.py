"""The model catalogue (models/catalog.yaml): names, files, official URLs, hashes, labels."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from edgecam.errors import ModelError, UsageError

PACKAGE_DIR = Path(__file__).resolve().parent.parent      # edgecam/
CHECKOUT_MODELS = PACKAGE_DIR.parent / "models"


@dataclass(frozen=True)
class LabelSpec:
    key: str
    file: str
    url: str
    sha256: Optional[str] = None
    member: Optional[str] = None
    archive_sha256: Optional[str] = None
    offset: int = 0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str                      # classify | detect
    family: str                    # v1 | v2 | v3-small | v3-large
    alpha: float
    size: int                      # input pixels (square)
    base: int                      # family base resolution: rho = size / base
    file: str
    url: str
    labels: LabelSpec
    sha256: Optional[str] = None
    member: Optional[str] = None
    archive_sha256: Optional[str] = None
    madds_m: Optional[float] = None   # None: not measured here (costs.analyze measures the graph)
    params_m: Optional[float] = None
    bytes: Optional[int] = None        # size of the .tflite, where pinned
    alt_url: Optional[str] = None  # also published uncompressed here (used first when set)
    alias_of: Optional[str] = None  # v1 is v1_1.0_224 under a short name
    top1: Optional[float] = None    # published ImageNet top-1 (%) of the architecture; None for detectors
    top1_source: Optional[str] = None   # where it is published (paper and table)

    @property
    def rho(self) -> float:
        return self.size / self.base


def _catalog_path() -> Path:
    packaged = PACKAGE_DIR / "catalogue" / "catalog.yaml"
    return packaged if packaged.is_file() else CHECKOUT_MODELS / "catalog.yaml"


def _fmt_alpha(a: float) -> str:
    return f"{a:g}" if a != 1 else "1.0"


def _v1_top1(fam: dict, key: str) -> dict:
    """Published top-1 of v1_<key>: the first of the family's tables that gives it."""
    for table in fam.get("top1", []):
        if key in table["values"]:
            return {"top1": float(table["values"][key]), "top1_source": table["source"]}
    return {}


@functools.lru_cache(maxsize=1)
def catalogue() -> Dict[str, ModelSpec]:
    data = yaml.safe_load(_catalog_path().read_text(encoding="utf-8"))
    labels = {k: LabelSpec(key=k, **v) for k, v in data["labels"].items()}
    out: Dict[str, ModelSpec] = {}
    fam = data["v1_family"]
    for a in fam["alphas"]:
        for s in fam["sizes"]:
            key = f"{_fmt_alpha(a)}_{s}"
            fmt = dict(alpha=_fmt_alpha(a), size=s)
            coral = key in fam["coral"]
            out[f"v1_{key}"] = ModelSpec(
                name=f"v1_{key}", task="classify", family="v1", alpha=float(a), size=s,
                base=fam["base"], file=fam["file"].format(**fmt), url=fam["url"].format(**fmt),
                member=fam["member"].format(**fmt), labels=labels[fam["labels"]],
                sha256=fam["sha256"].get(key), madds_m=fam["madds_m"].get(key),
                params_m=fam["params_m"].get(_fmt_alpha(a)), **_v1_top1(fam, key),
                alt_url=fam["coral_url"].format(**fmt) if coral else None)
    aliases = {}
    for name, entry in data["models"].items():
        if "alias" in entry:
            aliases[name] = entry["alias"]
            continue
        entry = dict(entry)
        entry["labels"] = labels[entry["labels"]]
        out[name] = ModelSpec(name=name, **entry)
    for name, target in aliases.items():
        out[name] = replace(out[target], name=name, alias_of=target)
    return out


def default_model_dir() -> Path:
    """$EDGECAM_MODEL_DIR, else models/ of the checkout (when writable), else ~/.local/share/edgecam/models."""
    env = os.environ.get("EDGECAM_MODEL_DIR")
    if env:
        return Path(env)
    if CHECKOUT_MODELS.is_dir() and os.access(CHECKOUT_MODELS, os.W_OK):
        return CHECKOUT_MODELS
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "edgecam" / "models"


def model_dir(configured: Optional[str]) -> Path:
    return Path(configured).expanduser() if configured else default_model_dir()


def is_model_path(name: str) -> bool:
    """--model names a .tflite file rather than a catalogue entry."""
    return name.endswith(".tflite") or os.sep in name or name.startswith(".") or Path(name).is_file()


def get(name: str) -> ModelSpec:
    cat = catalogue()
    if name in cat:
        return cat[name]
    close = [n for n in cat if n.startswith(name.split("_")[0])][:8]
    hint = f" (similar: {', '.join(close)})" if close else ""
    raise UsageError(f"unknown model '{name}': `edgecam models list` shows the catalogue{hint}")


def variants(spec: ModelSpec) -> List[ModelSpec]:
    """Catalogue models that differ from ``spec`` only in input resolution (same task, family, α)."""
    return sorted((m for m in catalogue().values()
                   if m.task == spec.task and m.family == spec.family and m.alpha == spec.alpha
                   and m.labels == spec.labels and m.alias_of is None), key=lambda m: m.size)


def variant_for_rho(spec: ModelSpec, rho: float) -> Optional[ModelSpec]:
    """The catalogue variant whose input is rho * base pixels (nearest within 2 px), if any."""
    want = rho * spec.base
    for m in variants(spec):
        if abs(m.size - want) <= 2:
            return m if m.size != spec.size else spec
    return None


def resolve(name: str, rho: Optional[float]) -> ModelSpec:
    """The catalogue entry ``name``, or its variant whose input is rho * base pixels where the
    catalogue has one (`--model v1_0.75_224 --rho 0.857` is v1_0.75_192)."""
    spec = get(name)
    if rho is not None and abs(spec.size - rho * spec.base) > 2:
        return variant_for_rho(spec, rho) or spec
    return spec


def model_path(spec: ModelSpec, directory: Path) -> Path:
    return directory / spec.file


def labels_path(spec: ModelSpec, directory: Path) -> Path:
    return directory / spec.labels.file


def is_provisioned(spec: ModelSpec, directory: Path) -> bool:
    return model_path(spec, directory).is_file() and labels_path(spec, directory).is_file()


def require_provisioned(spec: ModelSpec, directory: Path) -> None:
    if not is_provisioned(spec, directory):
        raise ModelError(f"model '{spec.name}' is not provisioned in {directory}: "
                         f"run `edgecam models fetch {spec.name}` "
                         f"(or `edgecam models fetch {spec.name} --from MIRROR_DIR` offline)")


@dataclass(frozen=True)
class Location:
    """Where a model named on the command line (or in config) lives: a catalogue entry in a
    models folder, or a .tflite path (``spec`` None)."""

    spec: Optional[ModelSpec]
    path: Path
    directory: Path

    @property
    def provisioned(self) -> bool:
        return self.spec is None or is_provisioned(self.spec, self.directory)

    def require(self) -> "Location":
        """This location, or ModelError naming the command that provisions it."""
        if self.spec is not None:
            require_provisioned(self.spec, self.directory)
        return self


def locate(name: str, rho: Optional[float] = None, directory: Optional[str] = None) -> Location:
    """The one model lookup (the run, --fetch, `models info`, bench, the model switch): a
    .tflite path as it is, else the catalogue entry ``name`` (or its variant at ``rho``) in the
    models folder ``directory`` (default: see :func:`default_model_dir`)."""
    folder = model_dir(directory)
    if is_model_path(name):
        return Location(None, Path(name).expanduser(), folder)
    spec = resolve(name, rho)
    return Location(spec, model_path(spec, folder), folder)


def provisioned(task: str, directory: Optional[str] = None) -> List[str]:
    """The provisioned catalogue models of one task (aliases left out), by name."""
    folder = model_dir(directory)
    return sorted(n for n, s in catalogue().items()
                  if s.task == task and s.alias_of is None and is_provisioned(s, folder))

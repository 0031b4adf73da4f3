"""Shared test fixtures (the model mirror, the media, provisioned models, a state folder per
session); what else the tests share is in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local model mirror named by $EDGECAM_MODEL_MIRROR (real .tflite files and labels)."""
    value = os.environ.get("EDGECAM_MODEL_MIRROR", "").strip()
    path = Path(value).expanduser() if value else None
    if path is None or not path.is_dir():
        pytest.skip("EDGECAM_MODEL_MIRROR is not set: no model mirror to test against")
    return path.resolve()


@pytest.fixture(autouse=True, scope="session")
def state_dir(tmp_path_factory) -> Path:
    """edgecam's state folder (where `edgecam bench --models` saves its sweep) in a temporary
    folder for the whole run, never the user's ~/.local/state/edgecam."""
    path = tmp_path_factory.mktemp("state")
    os.environ["EDGECAM_STATE_DIR"] = str(path)
    return path


MIRROR_MODELS = ["v1_ssd", "v2", "v2_tf2", "v3", "v1_0.25_128", "v1_0.75_192", "v1_0.75_224"]


@pytest.fixture(scope="session")
def media(mirror: Path) -> Path:
    """The real photos and footage beside the mirror (../shared/media)."""
    path = mirror.parent / "media"
    if not (path / "MEDIA.md").is_file():
        pytest.skip(f"no test media folder at {path}")
    return path


@pytest.fixture(scope="session")
def models_dir(mirror: Path, tmp_path_factory) -> Path:
    """A models folder provisioned from the mirror the way a user does it
    (`edgecam models fetch NAME --from MIRROR`): every model the mirror has, each converted
    to int8 where the converter handles it, as that command does (model.int8)."""
    from edgecam.provision import catalog, fetch, int8_cache
    directory = tmp_path_factory.mktemp("models")
    for name in MIRROR_MODELS:
        path = fetch.provision(catalog.get(name), directory, mirror=mirror, progress=False)
        int8_cache.choose(Path(path), "auto", os.environ.get("EDGECAM_TEST_RUNTIME", "auto"))
    return directory


@pytest.fixture(scope="session")
def runtime() -> str:
    """The TFLite runtime under test: $EDGECAM_TEST_RUNTIME (CI runs the model tests once
    per runtime), else auto."""
    return os.environ.get("EDGECAM_TEST_RUNTIME", "auto")

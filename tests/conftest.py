"""Shared test fixtures."""

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

"""The type checker's configuration catches what it is there for: a model look-alike passed
where the declared Model is expected (scripts/test runs mypy and ruff over the whole package;
this checks that the configuration is strict enough to matter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LOOK_ALIKE = '''
from edgecam.model.compare import CompareModel
from edgecam.model.interface import Model
from edgecam.model.loader import Model as TFLiteModel


def run(model: Model) -> None: ...


def both(a: CompareModel, b: TFLiteModel) -> None:
    run(a)
    run(b)


class LookAlike:             # a model as CompareModel once was: everything but replica()
    name = "look-alike"
    task = "classify"


run(LookAlike())
'''


def mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")      # (the test extra installs it on Python 3.10+)
    (tmp_path / "check.py").write_text(code)
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "check.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_model_look_alike_is_a_type_error_and_both_models_are_models(tmp_path):
    r = mypy(tmp_path, LOOK_ALIKE)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "check.py:20:" in errors[0] and '"LookAlike"' in errors[0], r.stdout

"""Which file runs: the published model, or its int8 rewrite cached beside it (``model.int8``).

A uint8 model (a catalogue entry or any .tflite) is converted once (edgecam/costlens/int8.py) into
``NAME.int8.tflite`` beside it (or, for a read-only folder or the model mirror, in edgecam's
state folder's int8/), with ``NAME.int8.json`` recording the SHA-256 of both files, what
the converter did and the check at conversion (int8_check.py: both files on the built-in probe
images). The published file is never written; when it changes (another SHA-256) or the cached
file does, the conversion runs again. Every file is written to a ``.tmp-*`` file in the same
folder, flushed to disk and renamed into place: an interrupted conversion leaves nothing.

``model.int8``: ``auto`` runs the int8 file where the converter handles the model and the check
found it equal (the bar in int8_check.py), ``on`` wherever the converter handles it (the check's
figures are shown all the same), ``off`` the published file. A model the converter does not
handle (an op it does not know, float, already int8), or a folder it cannot write, runs as
published with one note line, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgecam.errors import ConversionError, CorruptModelError, ModelError
from edgecam.costlens import int8, int8_check, tflite_file
from edgecam.provision.fetch import mirror_from_env, sha256_of, temp_in, write_synced
from edgecam.statedir import state_dir

MODES = ("auto", "on", "off")
CONVERTER = 3                                      # bumped when the rewrite changes: old caches are redone
MAX_BYTES = 256 << 20                              # the MobileNets are 0.5-6 MB; nothing here needs more


@dataclass(frozen=True)
class Choice:
    """The file a run uses, and one line saying which and why."""

    path: Path
    published: Path
    record: Optional[dict]                         # the conversion's record, when there is one
    reason: str
    news: bool = False                             # worth a note line at this start: a model the
                                                   # converter refuses, or a conversion made now

    @property
    def int8(self) -> bool:
        return self.path != self.published

    @property
    def short(self) -> str:
        """The reason's first clause: 'the int8 file X runs' or 'the published file runs'."""
        return self.reason.split(" (")[0].split(":")[0]


def folder(published: Path) -> Path:
    """Beside the model; but never in a read-only folder (by its mode bits, which root's writes
    ignore) nor in the model mirror ($EDGECAM_MODEL_MIRROR): there, edgecam's state folder's int8/."""
    parent = published.parent
    try:
        writable = bool(parent.stat().st_mode & 0o222) and os.access(parent, os.W_OK)
    except OSError:
        writable = False
    mirror = mirror_from_env()
    if writable and not (mirror is not None and mirror.is_dir() and parent.resolve() == mirror.resolve()):
        return parent
    return state_dir() / "int8"


def _stem(published: Path) -> str:
    where = folder(published)
    if where == published.parent:
        return published.stem
    return f"{published.stem}.{hashlib.sha256(str(published.resolve()).encode()).hexdigest()[:8]}"


def int8_path(published: Path) -> Path:
    return folder(published) / (_stem(published) + ".int8.tflite")


def record_path(published: Path) -> Path:
    return folder(published) / (_stem(published) + ".int8.json")


def choose(published: Path, mode: str = "auto", runtime: str = "auto") -> Choice:
    """The file to run for ``published`` under ``model.int8 = mode`` (converting it if needed)."""
    published = Path(published)
    if mode == "off":
        return Choice(published, published, None, "the published file runs (model.int8 off)")
    if not published.is_file():                    # the engine says what is wrong with it
        return Choice(published, published, None, "the published file runs (there is no file to convert)")
    try:
        digest = sha256_of(published)
        record = _cached(published, digest, mode)
        news = record is None
        record = record or _convert(published, digest, runtime)
    except CorruptModelError as exc:               # the engine refuses it, in one sentence
        return Choice(published, published, None, f"the published file runs: it is broken ({exc})")
    except ConversionError as exc:
        return Choice(published, published, None, f"the published file runs: the int8 converter refuses it: {exc}",
                      news=True)
    except OSError as exc:
        return Choice(published, published, None, f"the published file runs: its int8 file cannot be "
                      f"written beside it ({exc.strerror or exc})", news=True)
    check = record["check"]
    if check["equal"] or mode == "on":
        why = "measured equal" if check["equal"] else "model.int8 on (not measured equal)"
        return Choice(int8_path(published), published, record,
                      f"the int8 file {int8_path(published).name} runs ({why} on the probes: {check['line']})", news)
    return Choice(published, published, record,
                  f"the published file runs: its int8 file is not measured equal on the probes "
                  f"({check['line']}; the bar: {check['bar']}); `--int8 on` runs it anyway", news)


def ensure(published: Path, runtime: str = "auto") -> dict:
    """The record of ``published``'s int8 file, converting (and checking) it when the cache is
    missing or stale; ConversionError when the converter refuses the model or cannot write it."""
    digest = sha256_of(published)
    record = _cached(published, digest)
    return record if record is not None else _convert(published, digest, runtime)


def _cached(published: Path, digest: str, mode: str = "on") -> Optional[dict]:
    """The record of a conversion still valid for ``published`` (its SHA-256 ``digest``). The
    int8 file's own SHA-256 is checked only where it would run (measured equal, or ``on``): a
    start that keeps the published file does not hash a file it will not read."""
    try:
        record = json.loads(record_path(published).read_text(encoding="utf-8"))
        fresh = record.get("converter") == CONVERTER and record["source"]["sha256"] == digest
        if fresh and (record["check"]["equal"] or mode != "auto"):
            fresh = sha256_of(int8_path(published)) == record["int8"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record if fresh else None


def convert_bytes(data: bytes) -> int8.Conversion:
    """The int8 rewrite of a .tflite file's bytes; ConversionError (one sentence) for anything
    the reader or the converter cannot take, however malformed the file."""
    try:
        return int8.convert(tflite_file.read(data))
    except ConversionError:
        raise
    except (IndexError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise ConversionError(f"its graph is malformed ({type(exc).__name__})") from None


def _convert(published: Path, digest: str, runtime: str) -> dict:
    size = published.stat().st_size
    if size > MAX_BYTES:
        raise ConversionError(f"it is {size >> 20} MB, more than the converter reads ({MAX_BYTES >> 20} MB)")
    conversion = convert_bytes(published.read_bytes())
    data = tflite_file.write(conversion.model)
    folder(published).mkdir(parents=True, exist_ok=True)
    with _temp_beside(published) as tmp:
        write_synced(tmp, data)
        try:
            task, tally = int8_check.compare_files(published, tmp, runtime)
        except ModelError as exc:
            raise ConversionError(f"the runtime cannot run the converted file ({exc})") from None
        record = {"converter": CONVERTER, "source": {"file": published.name, "sha256": digest},
                  "int8": {"file": int8_path(published).name, "sha256": hashlib.sha256(data).hexdigest()},
                  "summary": conversion.summary(), "rescaled_share": conversion.rescaled_share,
                  "check": {"task": task, "equal": int8_check.equal(task, tally), "line": tally.line(task),
                            "bar": int8_check.bar(task), "failures": tally.failures[:8]}}
        os.replace(tmp, int8_path(published))
    with _temp_beside(published) as tmp:
        write_synced(tmp, json.dumps(record, indent=1).encode("utf-8"))
        os.replace(tmp, record_path(published))
    return record



def _temp_beside(published: Path):
    """A fresh .tmp-* file in the model's folder, removed on exit unless renamed into place."""
    return temp_in(folder(published), ".int8",
                   lambda d, e: ConversionError(f"the folder {d} is not writable ({e.strerror})"))

"""Label files: plain text, one label per line, with optional `id label` prefixes,
background/`???` first lines and `???`/`n/a` gaps; or packed inside a model's TFLite metadata."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import List, Optional

from edgecam.bounds import path_text, read_bounded, show
from edgecam.errors import ModelError

_ID_PREFIX = re.compile(r"^\s*(\d+)[\s:]+(.*\S)\s*$")
GAP_LABELS = {"???", "n/a", ""}
MAX_BYTES = 1024 * 1024     # ImageNet's 1001 labels take 21 KB
MAX_CLASSES = 100_000       # class ids when the model does not say how many it has


class Labels:
    """Maps a model's class id to a name. ``offset`` lines precede class id 0."""

    def __init__(self, lines: List[str], offset: int = 0):
        self.lines = lines
        self.offset = offset

    def __len__(self) -> int:
        return len(self.lines) - self.offset

    def __getitem__(self, class_id: int) -> str:
        i = class_id + self.offset
        if 0 <= i < len(self.lines) and self.lines[i] not in GAP_LABELS:
            return self.lines[i]
        return f"class {class_id}"

    def is_gap(self, class_id: int) -> bool:
        i = class_id + self.offset
        return not 0 <= i < len(self.lines) or self.lines[i] in GAP_LABELS


def parse_lines(text: str, num_classes: Optional[int] = None, name: str = "label file") -> List[str]:
    """Labels in class-id order. ``num_classes`` (the model's, when known) bounds the ids of
    an `id label` file: one above it is an error naming its line (ModelError)."""
    raw = text.splitlines()
    while raw and not raw[-1].strip():
        raw.pop()
    pairs = [m for m in (_ID_PREFIX.match(line) for line in raw) if m is not None]
    if raw and len(pairs) == len(raw):  # "0 person" style: place each label at its id
        limit = num_classes if num_classes is not None else MAX_CLASSES  # id == count: a background line 0
        table = {}
        for n, m in enumerate(pairs, 1):
            class_id = int(m.group(1)[:12])
            if class_id > limit:
                whose = f"the model's {num_classes} classes" if num_classes is not None else f"{MAX_CLASSES}"
                raise ModelError(f"{name} line {n}: class id {show(m.group(1))[1:-1]} is above {whose}")
            table[class_id] = m.group(2)
        return [table.get(i, "???") for i in range(max(table) + 1)]
    return [line.strip() for line in raw]


def infer_offset(lines: List[str], num_classes: Optional[int], task: str) -> int:
    """Where class id 0 sits in ``lines``: skip a background/`???` first line when the
    model does not output it (detectors never do; a 1000-way classifier does not)."""
    if not lines:
        return 0
    first = lines[0].lower()
    if first not in ("???", "background", "__background__"):
        return 0
    if task == "detect":
        return 1
    return 1 if num_classes is not None and len(lines) == num_classes + 1 else 0


def load_file(path: Path, num_classes: Optional[int] = None) -> List[str]:
    """A label file: a regular file of at most MAX_BYTES of UTF-8 text (ModelError else)."""
    shown = path_text(path)
    if not Path(path).exists() and not Path(path).is_symlink():
        raise ModelError(f"label file {shown} does not exist")
    data = read_bounded(Path(path), "label file", MAX_BYTES, ModelError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"label file {shown} is not UTF-8 text (byte {exc.start})") from None
    return parse_lines(text, num_classes, f"label file {shown}")


def from_metadata(model_path: Path) -> Optional[List[str]]:
    """Labels packed into a .tflite by the TFLite Metadata writer (a zip of associated files
    appended to the flatbuffer), or None when the model carries none."""
    try:
        if not zipfile.is_zipfile(model_path):
            return None
        with zipfile.ZipFile(model_path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".txt")]
            pick = next((n for n in names if "label" in n.lower()), names[0] if names else None)
            if pick is None:
                return None
            if z.getinfo(pick).file_size > MAX_BYTES:
                return None
            return parse_lines(z.read(pick).decode("utf-8", errors="replace"))
    except (OSError, zipfile.BadZipFile, ModelError):
        return None

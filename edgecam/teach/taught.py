"""A taught set: ``SET/<label>/*.jpg|png`` (crops or whole frames), its embeddings cached in the
folder, and the nearest-class-mean classifier made of them.

The embeddings are kept in ``SET/.embeddings.npy`` with ``SET/.embeddings.json`` naming the
classifier they come from (its name and the embedding file's SHA-256) and each image by path,
size and modification time: an image added, removed or changed is embedded again at the next
build (the others are kept), and a set built with another classifier is refused rather than
mixed. Each label's mean is the normalised mean of its normalised examples; a vector goes to the
label whose mean is most similar (cosine; Qi et al., "Low-Shot Learning with Imprinted Weights",
2018) and, for relabelling and suppressing, only when that similarity clears its label's margin.
The margin is learned, halfway between what the label is and what it is not: the lowest
similarity of one of its examples to the mean of the others (leave-one-out; 1 for a single
example) and the highest similarity of its mean to anything else it knows (the other labels'
examples, and the built-in probe images of int8_check: a gradient, a blank, noise, bars).
Measured on one-by-one-person-detection.mp4 (V2): five crops of the dark window give 0.987 and
0.358, a margin of 0.67; the window's detections in the clip score 0.85-0.99, people 0.27-0.49.

Adding and removing examples (:func:`add_example`, :func:`remove_example`) checks the image
first: a file that is not an image changes nothing. A running stage notices a changed set by
:func:`stamp` (the folder's names, sizes and times) and rebuilds it (stage.py).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgecam.costlens.int8_check import probes
from edgecam.errors import UsageError
from edgecam.provision.fetch import temp_in

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_JSON, CACHE_NPY = ".embeddings.json", ".embeddings.npy"
MAX_IMAGES = 5000                                       # a set is a few examples per label
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}$")
NOT = "not-"


@dataclass
class Entry:
    file: str                                   # "label/name.jpg", relative to the set
    size: int
    mtime_ns: int


@dataclass
class TaughtSet:
    folder: Path
    labels: List[str]
    entries: List[Entry]
    owners: np.ndarray                          # (N,) label index of each example
    vectors: np.ndarray                         # (N, D) normalised embeddings
    model: str                                  # the classifier (teach.model) they come from
    embedding: str                              # its embedding file's name (e.g. "v2 (int8)")
    sha256: str
    background: np.ndarray                      # (K, D) embeddings of the probe images
    means: np.ndarray = field(init=False)       # (L, D) normalised class means
    margins: np.ndarray = field(init=False)     # (L,) each label's learned margin

    def __post_init__(self):
        self.means = class_means(self.vectors, self.owners, len(self.labels))
        self.margins = learned_margins(self.vectors, self.owners, self.means, self.background)

    def counts(self) -> List[int]:
        return [int((self.owners == i).sum()) for i in range(len(self.labels))]

    def nearest(self, vector: np.ndarray, among: Optional[Sequence[int]] = None) -> Tuple[int, float]:
        """(label index, cosine similarity) of the class mean nearest ``vector`` (normalised)."""
        sims = self.means @ vector
        idx = list(range(len(self.labels))) if among is None else list(among)
        best = max(idx, key=lambda i: sims[i])
        return best, float(sims[best])


def class_means(vectors: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    means = np.stack([vectors[owners == i].mean(0) for i in range(n)]) if n else np.zeros((0, vectors.shape[1]))
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def leave_one_out(vectors: np.ndarray, owners: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per example: whether the means made without it put it in its own label, and its
    similarity to its own label's mean made without it (nan for a label's only example)."""
    sums = np.stack([vectors[owners == i].sum(0) for i in range(n)])
    right, own = np.zeros(len(owners), bool), np.full(len(owners), np.nan)
    for k, (v, o) in enumerate(zip(vectors, owners)):
        s = sums.copy()
        s[o] -= v
        norms = np.linalg.norm(s, axis=1)
        alive = norms > 1e-9
        sims = np.where(alive, (s @ v) / np.maximum(norms, 1e-12), -np.inf)
        right[k] = bool(alive[o]) and int(np.argmax(sims)) == o
        own[k] = sims[o] if alive[o] else np.nan
    return right, own


def learned_margins(vectors: np.ndarray, owners: np.ndarray, means: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per label: halfway between its least-alike example (leave-one-out) and the most alike of
    what it is not (the other labels' examples, the probe images)."""
    _, own = leave_one_out(vectors, owners, len(means))
    out = np.zeros(len(means))
    for i, mean in enumerate(means):
        mine = own[owners == i]
        lowest = 1.0 if np.isnan(mine).all() else float(np.nanmin(mine))
        others = np.concatenate([vectors[owners != i], background])
        highest = float((others @ mean).max()) if len(others) else 0.0
        out[i] = (lowest + highest) / 2
    return out


# --------------------------------------------------------------------------- the folder

def scan(folder: Path) -> Dict[str, List[Path]]:
    """Each label's images, checked: UsageError (one sentence) for an empty set, a label folder
    without an image, a file that is not an image."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"the taught set {folder} is not a folder (make SET/<label>/ folders of .jpg or "
                         f".png examples)")
    out: Dict[str, List[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not LABEL.match(sub.name):
            raise UsageError(f"the taught set's folder {sub} is not a label name (letters, digits, space, _ . + -)")
        files = sorted(p for p in sub.iterdir() if not p.name.startswith(".") and p.is_file())
        for p in files:
            if p.suffix.lower() not in SUFFIXES:
                raise UsageError(f"{p} is not an image file (a taught set holds {', '.join(SUFFIXES)} files only)")
        if not files:
            raise UsageError(f"the label folder {sub} has no image: add examples or remove the folder")
        out[sub.name] = files
    if not out:
        raise UsageError(f"the taught set {folder} is empty: it needs SET/<label>/ folders of .jpg or .png examples")
    if sum(len(v) for v in out.values()) > MAX_IMAGES:
        raise UsageError(f"the taught set {folder} has more than {MAX_IMAGES} images: a set is a few "
                         f"examples per label")
    return out


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` (BGR); UsageError when it is not one OpenCV reads."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise UsageError(f"{path} is not an image edgecam can read (a .jpg or .png that OpenCV decodes)")
    return image


def stamp(folder: Path) -> Tuple:
    """What changes when an example is added, removed or replaced (names, sizes, times)."""
    out = []
    try:
        for sub in sorted(os.scandir(folder), key=lambda e: e.name):
            if sub.is_dir() and not sub.name.startswith("."):
                out += [(sub.name, e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(sub.path)]
    except OSError:
        return ()
    return tuple(sorted(out))


def recorded_model(folder: Path) -> Optional[str]:
    """The classifier the set's cached embeddings come from, if it has them."""
    try:
        return str(json.loads((Path(folder) / CACHE_JSON).read_text(encoding="utf-8"))["model"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(folder: Path, model: str, embedding: str, sha256: str,
          embed: Callable[[np.ndarray], np.ndarray], strict: bool = True) -> Tuple[TaughtSet, int]:
    """The set in ``folder`` and how many images were embedded now (the rest from its cache).
    ``strict``: a cache made with another classifier is refused (UsageError), not rebuilt."""
    folder = Path(folder)
    files = scan(folder)
    cached = _load_cache(folder)
    if cached is not None and strict and cached[0]["model"] != model:
        raise UsageError(f"the taught set {folder} was built with the embeddings of {cached[0]['model']}, not "
                         f"{model}: rebuild it with `edgecam teach {folder} --model {model}` or set "
                         f"teach.model to {cached[0]['model']}")
    old: Dict[Tuple[str, int, int], np.ndarray] = {}
    if cached is not None and cached[0].get("sha256") == sha256:
        old = {(e["file"], e["size"], e["mtime_ns"]): v for e, v in zip(cached[0]["images"], cached[1])}
    labels = list(files)
    entries, owners, vectors, fresh = [], [], [], 0
    for i, label in enumerate(labels):
        for path in files[label]:
            st = path.stat()
            entry = Entry(f"{label}/{path.name}", st.st_size, st.st_mtime_ns)
            v = old.get((entry.file, entry.size, entry.mtime_ns))
            if v is None:
                v, fresh = embed(read_image(path)), fresh + 1
            entries.append(entry)
            owners.append(i)
            vectors.append(np.asarray(v, np.float32))
    background = np.stack([embed(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)) for _, rgb in probes(224, 224)])
    taught = TaughtSet(folder, labels, entries, np.array(owners), np.stack(vectors), model, embedding, sha256,
                       background)
    if fresh or cached is None or len(old) != len(entries):
        _save_cache(taught)
    return taught, fresh


def _load_cache(folder: Path):
    try:
        meta = json.loads((folder / CACHE_JSON).read_text(encoding="utf-8"))
        vectors = np.load(folder / CACHE_NPY, allow_pickle=False)
        if vectors.ndim != 2 or len(vectors) != len(meta["images"]):
            return None
        return meta, vectors
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_cache(t: TaughtSet) -> None:
    """Written through temporary files renamed into place; a read-only set keeps its
    embeddings in memory only (built again at each start)."""
    meta = {"model": t.model, "embedding": t.embedding, "sha256": t.sha256, "labels": t.labels,
            "images": [vars(e) for e in t.entries]}
    try:
        _write_whole(t.folder / CACHE_NPY, lambda f: np.save(f, t.vectors, allow_pickle=False))
        _write_whole(t.folder / CACHE_JSON, lambda f: f.write(json.dumps(meta, indent=1).encode("utf-8")))
    except OSError:
        pass


def _write_whole(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a temporary file beside ``path``, then renamed onto it: a reader (a running
    stage) never sees half a file; OSError where it cannot be written."""
    with temp_in(path.parent, refused=lambda folder, exc: exc) as tmp:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)


def add_example(folder: Path, label: str, image: np.ndarray, name: str) -> Path:
    """``image`` (BGR) written into ``SET/label/``, as ``name`` (a .jpg or .png name; a number
    is added when it is taken); UsageError for a bad label or name, nothing written."""
    if not LABEL.match(label):
        raise UsageError(f"{label!r} is not a label (letters, digits, space, _ . + -; up to 64)")
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            and min(image.shape[:2]) >= 2):
        raise UsageError("the example is not a colour image of at least 2x2 pixels: nothing was added")
    stem, suffix = os.path.splitext(os.path.basename(name))
    suffix = suffix.lower() if suffix.lower() in SUFFIXES else ".png"
    target = Path(folder) / label
    target.mkdir(parents=True, exist_ok=True)
    path, n = target / f"{stem or 'example'}{suffix}", 1
    while path.exists():
        path, n = target / f"{stem or 'example'}-{n}{suffix}", n + 1
    ok, data = cv2.imencode(suffix if suffix != ".jpeg" else ".jpg", image)
    if not ok:
        raise UsageError(f"the example for {label} cannot be encoded as {suffix}")
    _write_whole(path, lambda f: f.write(data.tobytes()))
    return path


def remove_example(folder: Path, file: str) -> None:
    """``SET/label/name`` removed (``file`` relative to the set; nothing outside it), and its label's
    folder with it when that was its last example (an empty label folder is a bad set)."""
    path = (Path(folder) / file).resolve()
    if path.parent.parent != Path(folder).resolve() or path.suffix.lower() not in SUFFIXES or not path.is_file():
        raise UsageError(f"{file} is not an example of the taught set {folder}")
    path.unlink()
    try:
        path.parent.rmdir()
    except OSError:                                     # (not empty: other examples stay)
        pass


def is_not(label: str) -> bool:
    return label.startswith(NOT)

"""`edgecam teach SET [--model v2|v3|PATH] [--add LABEL IMAGE...] [--remove FILE...]`: build (or
bring up to date) a taught set's embeddings and say, per label, how many examples it has and how
many of them leave-one-out puts back in their own label: whether the examples are enough."""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from edgecam.config import load_config
from edgecam.costlens import costs
from edgecam.errors import ArgParser, UsageError
from edgecam.provision.embed_cache import ensure
from edgecam.teach import taught
from edgecam.teach.embedder import Embedder, crop_of, region_box
from edgecam.teach.settings import parse_region


def parser() -> ArgParser:
    p = ArgParser(prog="edgecam teach", description="Build a taught set's embeddings (SET/<label>/*.jpg|png; "
                  "a label not-<coco label> suppresses that label's detections that look like its examples) and "
                  "print per label the examples and the leave-one-out accuracy. Use it with `edgecam --teach SET` "
                  "(objects) or `--teach-frame SET` (the frame's state).")
    p.add_argument("set", metavar="SET", help="the taught set's folder")
    p.add_argument("--model", metavar="v2|v3|PATH", help="the classifier whose embeddings to use (default: "
                   "teach.model, else the set's own, else v2); another than the set's rebuilds it")
    p.add_argument("--add", nargs="+", metavar=("LABEL", "IMAGE"), help="copy these images into SET/LABEL/ first")
    p.add_argument("--from", dest="video", metavar="VIDEO", help="with --add LABEL: take the examples from "
                   "these frames of VIDEO instead of image files (--frames)")
    p.add_argument("--frames", metavar="N,N,...", help="with --from: the frames (0-based) to take")
    p.add_argument("--box", metavar="X1,Y1,X2,Y2", help="with --from: cut this object's box from each frame "
                   "(fractions; grown by teach.pad on each side, as a detection's crop is)")
    p.add_argument("--region", metavar="X1,Y1,X2,Y2", help="with --from: cut exactly this part of each frame "
                   "(fractions: the --teach-region a frame set is used with); default: the whole frame")
    p.add_argument("--remove", nargs="+", metavar="FILE", help="remove these examples (LABEL/NAME) first")
    p.add_argument("--time", type=int, metavar="ROUNDS", help="then time the embedding of each example, "
                   "ROUNDS times, with 1 and with model.threads threads; print the median per crop")
    p.add_argument("--int8", choices=("auto", "on", "off"), help="model.int8 for the classifier (default: config)")
    p.add_argument("--config", metavar="PATH", help="config file (model.dir, model.mirror, model.int8, teach.model)")
    return p


def main(argv: List[str]) -> int:
    a = parser().parse_args(argv)
    cfg = load_config(a.config, {"model": {"int8": a.int8}} if a.int8 else None)
    folder = Path(a.set)
    if a.add and a.video:
        from_video(folder, a.add, a.video, a.frames, a.box or a.region, cfg.teach.pad if a.box else 0.0)
    elif a.add:
        add(folder, a.add[0], a.add[1:])
    for file in a.remove or []:
        taught.remove_example(folder, file)
    explicit = a.model or cfg.teach.model
    model = explicit or taught.recorded_model(folder) or "v2"
    taught.scan(folder)                              # a bad set is said before any model loads
    embedder = Embedder(ensure(cfg, model), 1, cfg.model.runtime)
    s, fresh = taught.build(folder, model, embedder.name, embedder.model.sha256, embedder, strict=not a.model)
    print(report(s, fresh))
    if a.time:
        print(timing(embedder, s, a.time, cfg))
    return 0


def timing(embedder: Embedder, s: taught.TaughtSet, rounds: int, cfg) -> str:
    """The embedding of each example (preprocess and model), timed ``rounds`` times."""
    images = [taught.read_image(s.folder / e.file) for e in s.entries]
    cost = costs.analyze(embedder.model.path, embedder.engine.interpreter)
    out = [f"  embedding model {embedder.model.path.name}: {cost.madds / 1e6:.0f}M mult-adds per crop"]
    for threads in sorted({1, cfg.model.threads}):
        e = Embedder(embedder.model, threads, cfg.model.runtime)
        times = []
        for _ in range(rounds):
            for image in images:
                t0 = time.perf_counter()
                e(image)
                times.append((time.perf_counter() - t0) * 1000.0)
        out.append(f"  {threads} thread{'s' if threads > 1 else ''}: {statistics.median(times):.2f} ms per crop "
                   f"(median of {len(times)}: {rounds} rounds of {len(images)} examples, preprocess included; "
                   f"p90 {sorted(times)[int(0.9 * (len(times) - 1))]:.2f} ms)")
    return "\n".join(out)


def add(folder: Path, label: str, images: List[str]) -> None:
    """Every image checked first (one that is not an image adds none), then copied in."""
    if not images:
        raise UsageError("--add takes a label and one or more images: --add LABEL IMAGE...")
    if not taught.LABEL.match(label):
        raise UsageError(f"{label!r} is not a label (letters, digits, space, _ . + -; up to 64)")
    for image in images:
        path = Path(image)
        if path.suffix.lower() not in taught.SUFFIXES:
            raise UsageError(f"{image} is not an image file (a taught set takes {', '.join(taught.SUFFIXES)})")
        taught.read_image(path)
    target = folder / label
    target.mkdir(parents=True, exist_ok=True)
    for image in images:
        dest, n = target / Path(image).name, 1
        while dest.exists():
            dest, n = target / f"{Path(image).stem}-{n}{Path(image).suffix}", n + 1
        shutil.copyfile(image, dest)


def from_video(folder: Path, add: List[str], video: str, frames: Optional[str], box: Optional[str],
               pad: float) -> None:
    """Frames (or a box of them) of ``video`` written into SET/LABEL/ as PNG."""
    if len(add) != 1 or not frames:
        raise UsageError("--from VIDEO takes --add LABEL (no image files) and --frames N,N,...")
    try:
        wanted = sorted({int(n) for n in frames.split(",")})
        region = parse_region(box) if box else None
    except ValueError as exc:
        raise UsageError(f"--frames is a list of frame numbers and --box X1,Y1,X2,Y2 in fractions ({exc})") from None
    images = read_frames(video, wanted)
    for n, image in zip(wanted, images):
        h, w = image.shape[:2]
        crop = crop_of(image, region_box(region, w, h), pad) if region else image
        taught.add_example(folder, add[0], crop, f"{Path(video).stem}-{n:06d}.png")


def read_frames(video: str, wanted: List[int]) -> List[np.ndarray]:
    """The frames ``wanted`` of ``video`` (decoded in order: exact frame numbers)."""
    cap = cv2.VideoCapture(video)
    out: List[np.ndarray] = []
    try:
        index = 0
        while len(out) < len(wanted):
            ok, image = cap.read()
            if not ok:
                raise UsageError(f"{video} has no frame {wanted[len(out)]} (it cannot be read, or is shorter)")
            if index == wanted[len(out)]:
                out.append(image)
            index += 1
    finally:
        cap.release()
    return out


def report(s: taught.TaughtSet, fresh: int) -> str:
    right, own = taught.leave_one_out(s.vectors, s.owners, len(s.labels))
    lines = [f"edgecam teach: {s.folder} ({s.embedding} embeddings, {s.vectors.shape[1]} values): "
             f"{len(s.entries)} examples, {fresh} embedded now",
             f"  {'label':<20} {'examples':>8}  leave-one-out"]
    for i, label in enumerate(s.labels):
        mine = s.owners == i
        n = int(mine.sum())
        sims = own[mine]
        low = f", lowest similarity to its label's mean {np.nanmin(sims):.3f}" if not np.isnan(sims).all() else ""
        loo = f"{int(right[mine].sum())}/{n} right{low}" if n > 1 else "needs 2 examples or more"
        lines.append(f"  {label:<20} {n:>8}  {loo}{_role(label)}")
    margins = ", ".join(f"{label} {m:.3f}" for label, m in zip(s.labels, s.margins))
    lines.append(f"  margins (halfway between a label's least-alike example and the most alike of what it is not): "
                 f"{margins}; teach.margin overrides them")
    return "\n".join(lines)


def _role(label: str) -> str:
    return f"  (suppresses {label[len(taught.NOT):]} detections like these)" if taught.is_not(label) else ""

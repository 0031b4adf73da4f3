"""The α/ρ trade-off chart: this machine's measured latency against mult-adds, and the papers'
ImageNet top-1 against mult-adds (the MobileNet V1 paper's Figure 4, accuracy vs computation),
for the models `edgecam bench --models A,B,C` swept.

`edgecam bench --models ... --plot FILE.png|.svg` draws it; every sweep is also saved (JSON, in
edgecam's state folder) so that the browser view can show the chart of the last sweep at
``/tradeoff.svg``. Drawn with matplotlib (the optional extra ``edgecam[plot]``): imported only
when a chart is drawn, and without pyplot (no GUI backend, safe in the web view's threads).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from edgecam.errors import UsageError
from edgecam.provision import catalog
from edgecam.statedir import state_dir

SWEEP_FILE = "last-sweep.json"
FORMATS = (".png", ".svg")
MISSING = "the trade-off chart needs matplotlib: pip install 'edgecam[plot]' (or apt install python3-matplotlib)"


def check_plot_path(path: str) -> Path:
    """The --plot file, or UsageError before anything is measured."""
    out = Path(path).expanduser()
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--plot {path}: the chart is written as .png or .svg")
    if not out.parent.is_dir():
        raise UsageError(f"--plot {path}: the folder {out.parent} does not exist")
    try:
        import matplotlib  # noqa: F401  (only to say so now, before the sweep)
    except ImportError:
        raise UsageError(MISSING) from None
    return out


def with_top1(rows: List[dict]) -> List[dict]:
    """The sweep's rows, each with the catalogue's published top-1 and its source (None for
    detectors and .tflite paths)."""
    cat = catalog.catalogue()
    out = []
    for r in rows:
        spec = cat.get(r["model"])
        out.append(dict(r, top1=spec.top1 if spec else None, top1_source=spec.top1_source if spec else None))
    return out


def save_sweep(report: dict, model_dir: Path) -> Optional[Path]:
    """The sweep of a bench report, saved for the browser view; None (and a word on stderr's
    log) when the state folder cannot be written."""
    data = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": report.get("threads"),
            "machine": report.get("machine", {}), "model_dir": str(model_dir),
            "rows": with_top1(report.get("sweep") or [])}
    path = state_dir() / SWEEP_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return path


def load_sweep(path: Optional[Path] = None) -> Optional[dict]:
    """The last saved sweep, its rows cut to the models still provisioned; None if there is none."""
    path = path or state_dir() / SWEEP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    folder = Path(data.get("model_dir") or catalog.default_model_dir())
    cat = catalog.catalogue()

    def here(name: str) -> bool:
        spec = cat.get(name)
        return catalog.is_provisioned(spec, folder) if spec else Path(name).is_file()

    data["rows"] = [r for r in data.get("rows", []) if here(r["model"])]
    return data


# --------------------------------------------------------------------------- drawing

def _label(r: dict) -> str:
    alpha = "-" if r.get("alpha") is None else f"{r['alpha']:g}"
    rho = "-" if r.get("rho") is None else f"{r['rho']:.3g}"
    return f"{r['model']}\nα {alpha}, ρ {rho}"


def _groups(rows: List[dict]) -> List[List[dict]]:
    """Rows of one width multiplier of the V1 family, by mult-adds (joined by a line: the ρ
    curve at that α); every other model on its own."""
    groups: dict = {}
    for r in rows:
        v1 = r["model"].startswith("v1_") and r.get("task") == "classify"
        groups.setdefault(("v1", r.get("alpha")) if v1 else (r["model"],), []).append(r)
    return [sorted(g, key=lambda r: r["madds_m"]) for g in groups.values()]


def _plain(ax, axes: str = "xy") -> None:
    """Log axes labelled 20, 50, 100 rather than 2x10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for which in axes:
        axis = {"x": ax.xaxis, "y": ax.yaxis}[which]
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _panel(ax, rows: List[dict], y: str, ylabel: str, title: str) -> None:
    for k, group in enumerate(_groups(rows)):
        xs, ys = [r["madds_m"] for r in group], [r[y] for r in group]
        ax.plot(xs, ys, marker="o", linestyle="-" if len(group) > 1 else "none", color=f"C{k % 10}")
        for i, r in enumerate(group):      # neighbours along a curve: labels left-above, right-below
            left = len(group) > 1 and i % 2 == 0
            ax.annotate(_label(r), (r["madds_m"], r[y]), textcoords="offset points",
                        xytext=(-6, 6) if left else (6, 4 if len(group) == 1 else -22),
                        ha="right" if left else "left", fontsize=7.5, color=f"C{k % 10}")
    ax.set_xscale("log")
    _plain(ax, "x")
    ax.set_xlabel("mult-adds (millions, log scale; from each model's graph)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.25, y=0.15)


def _fps(ms):
    ms = np.asarray(ms, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(ms > 0, 1000.0 / np.maximum(ms, 1e-9), np.inf)


def draw(sweep: dict, fmt: str) -> bytes:
    """The chart of a sweep (``save_sweep``'s data) as PNG or SVG bytes."""
    from matplotlib import rc_context          # the optional extra: see check_plot_path
    from matplotlib.figure import Figure
    rows = [r for r in sweep["rows"] if r.get("invoke_ms_p50")]
    ranked = [r for r in rows if r.get("top1") is not None]
    fig = Figure(figsize=(13, 6.4), dpi=100)
    left, right = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.22, top=0.88, wspace=0.28)
    machine = sweep.get("machine", {})
    _panel(left, rows, "invoke_ms_p50", "latency: interpreter invoke, median (ms)",
           f"measured here: {machine.get('cpu', machine.get('machine', '?'))}, "
           f"{sweep.get('threads', '?')} threads, {machine.get('runtime', '')}")
    left.set_yscale("log")
    _plain(left, "y")
    fps = left.secondary_yaxis("right", functions=(_fps, _fps))
    _plain(fps, "y")
    fps.set_ylabel("FPS (1000 / latency)")
    if ranked:
        _panel(right, ranked, "top1", "ImageNet top-1 (%), published",
               "published accuracy vs computation (cf. MobileNet V1 paper, Fig. 4)")
    else:
        right.axis("off")
        right.text(0.5, 0.5, "no classifier swept: no ImageNet top-1 to show", ha="center")
    sources = sorted({r["top1_source"] for r in ranked})
    left_out = [r["model"] for r in rows if r.get("top1") is None]
    notes = [f"top-1 from: {s}" for s in sources] + ([f"no ImageNet top-1 (detectors, files): {', '.join(left_out)}"]
                                                      if left_out else [])
    fig.suptitle(f"edgecam: the α/ρ trade-off (sweep of {sweep.get('time', '?')})", fontsize=12)
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7.5, va="bottom")
    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):   # SVG text stays text (searchable, selectable)
        fig.savefig(buf, format=fmt.lstrip("."))
    return buf.getvalue()


def write_plot(report: dict, path: Path) -> Path:
    """`edgecam bench --plot FILE`: the sweep of ``report`` drawn to ``path`` (.png or .svg)."""
    sweep = {"time": time.strftime("%Y-%m-%d %H:%M"), "threads": report.get("threads"),
             "machine": report.get("machine", {}), "rows": with_top1(report.get("sweep") or [])}
    path.write_bytes(draw(sweep, path.suffix.lower()))
    return path


def _message_svg(text: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="40"><text x="10" y="25" '
            f'font-family="sans-serif" font-size="14">{escaped}</text></svg>').encode()


_CACHE: dict = {}


def tradeoff_svg() -> bytes:
    """The browser view's ``/tradeoff.svg``: the chart of the last sweep's provisioned models,
    drawn once per saved sweep; a one-line SVG saying why when there is none to draw."""
    path = state_dir() / SWEEP_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return _message_svg("no sweep yet: run `edgecam bench --source FILE --models A,B,C`")
    if _CACHE.get("stamp") != stamp:
        sweep = load_sweep(path)
        if not sweep or not sweep["rows"]:
            return _message_svg("the last sweep has no provisioned model left: run `edgecam bench --models ...`")
        try:
            _CACHE.update(stamp=stamp, svg=draw(sweep, "svg"))
        except ImportError:
            return _message_svg(MISSING)
    return _CACHE["svg"]

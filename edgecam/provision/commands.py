"""`edgecam models list|fetch|available|info`: the catalogue, provisioning, and the cost lens."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from edgecam.config import load_config
from edgecam.errors import ArgParser, UsageError
from edgecam.logs import setup_logging
from edgecam.costlens import costs, measure
from edgecam.provision import catalog, fetch, int8_cache


def _models_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="edgecam models", description="Manage models: list the catalogue, fetch (provision) "
                  "models, inspect a model's cost.")
    sub = p.add_subparsers(dest="what", required=True, parser_class=ArgParser)
    pl = sub.add_parser("list", help="the catalogue, and what is provisioned")
    pf = sub.add_parser("fetch", help="download (or copy from a mirror) and verify models")
    pf.add_argument("names", nargs="*", metavar="NAME", help="catalogue names (default: the configured model); 'all' for every one")
    pf.add_argument("--from", dest="mirror", metavar="DIR", help="provision from a local mirror folder instead of the network ($EDGECAM_MODEL_MIRROR)")
    pf.add_argument("--force", action="store_true", help="fetch again even when present")
    pa = sub.add_parser("available", help="the catalogue models a mirror folder (or, without one, the network) can provision")
    pa.add_argument("--from", dest="mirror", metavar="DIR", help="a local mirror folder ($EDGECAM_MODEL_MIRROR)")
    pi = sub.add_parser("info", help="parameters and mult-adds from the model's own graph (the cost lens)")
    pi.add_argument("name", metavar="NAME|PATH")
    pi.add_argument("--layers", action="store_true", help="one row per layer")
    pi.add_argument("--json", action="store_true", help="print JSON")
    pi.add_argument("--measure", action="store_true", help="time each depthwise separable pair against the "
                    "standard conv it replaces, and the whole network both ways, in the installed interpreter")
    pi.add_argument("--repeat", type=int, default=15, metavar="R", help="--measure: timing rounds (median; default 15)")
    pi.add_argument("--budget", type=float, default=30.0, metavar="S",
                    help="--measure: at most S seconds of timing rounds (at least 3 rounds; default 30)")
    pi.add_argument("--threads", type=int, metavar="N", help="--measure: interpreter threads (default: model.threads)")
    pi.add_argument("--int8", choices=("auto", "on", "off"), help="which file would run (default: model.int8); "
                    "--measure times the published file and its int8 file either way")
    for sp in (pl, pf, pa, pi):
        sp.add_argument("--config", metavar="PATH")
        sp.add_argument("--model-dir", metavar="DIR")
    return p


def main(argv: List[str]) -> int:
    a = _models_parser().parse_args(argv)
    overrides = {"model": dict({"dir": a.model_dir} if a.model_dir else {},
                               **({"int8": a.int8} if getattr(a, "int8", None) else {}))}
    cfg = load_config(a.config, overrides if overrides["model"] else None)
    setup_logging(cfg.log_level)
    directory = catalog.model_dir(cfg.model.dir)
    if a.what == "list":
        print(models_table(directory))
    elif a.what in ("fetch", "available"):
        mirror = Path(a.mirror).expanduser() if a.mirror else (Path(cfg.model.mirror) if cfg.model.mirror else fetch.mirror_from_env())
        if mirror is not None and not mirror.is_dir():
            raise UsageError(f"model mirror {mirror} is not a folder")
        if a.what == "available":
            return _print_available(mirror)
        if a.names:
            names = sorted(catalog.catalogue()) if a.names == ["all"] else a.names
            specs = [catalog.get(n) for n in names]
        else:                                      # the configured model, at its configured ρ
            spec = catalog.locate(cfg.model.name, cfg.preprocess.rho, cfg.model.dir).spec
            specs = [spec] if spec is not None else []   # a .tflite path: nothing to fetch
        for spec in specs:                          # provisioned, then converted (model.int8)
            path = fetch.provision(spec, directory, mirror=mirror)
            print(f"{spec.name}: {path}\n  {int8_cache.choose(path, cfg.model.int8, cfg.model.runtime).reason}")
    else:
        _info(a, cfg)
    return 0


def _info(a, cfg) -> None:
    path = catalog.locate(a.name, None, cfg.model.dir).require().path
    cost = costs.analyze(path)
    timed = None
    if a.measure:
        timed = measure.measure(path, a.threads or cfg.model.threads, cfg.model.runtime, a.repeat, a.budget,
                                log=lambda msg: print(f"edgecam: {msg}", file=sys.stderr, flush=True))
    if a.json:
        choice = int8_cache.choose(path, cfg.model.int8, cfg.model.runtime)
        print(json.dumps(dict(cost.to_dict(), runs={"file": str(choice.path), "int8": choice.int8, "why": choice.reason,
                                                    "conversion": choice.record},
                              **({"measured": timed.to_dict()} if timed else {})), indent=1))
        return
    print(costs.format_report(cost, layers=a.layers))
    print(f"runs: {int8_cache.choose(path, cfg.model.int8, cfg.model.runtime).reason}")
    if timed:
        print("\n" + measure.format_measurement(timed))


def _print_available(mirror: Optional[Path]) -> int:
    specs = [m for m in catalog.catalogue().values() if m.alias_of is None]
    names, note = fetch.available(specs, mirror)
    where = f"the model mirror {mirror}" if mirror else "the network"
    if names:
        print(f"{where} can provision: {', '.join(sorted(names))}")
    else:
        print(f"{where} can provision none of the catalogue's models" + (f" ({note})" if note else ""))
    if note and names:
        print(f"  not the others: {note}")
    return 0 if names else 1


def _figures(spec, directory: Path):
    """Mult-adds and parameters measured from a provisioned model's graph (for catalogue
    entries without figures), marked as measured."""
    try:
        cost = costs.analyze(catalog.model_path(spec, directory))
    except Exception:  # an unreadable model is `models info`'s to explain, not the table's
        return "not measured", "here"
    return f"{cost.madds / 1e6:.0f}M (graph)", f"{cost.params / 1e6:.2f}M (graph)"


def models_table(directory: Path) -> str:
    rows = [("name", "task", "α", "res", "ρ", "mult-adds", "params", "file", "here")]
    for name, m in sorted(catalog.catalogue().items(), key=lambda kv: (kv[1].task, kv[1].family, kv[1].alpha, kv[1].size, kv[0])):
        here = catalog.is_provisioned(m, directory)
        madds, params = _figures(m, directory) if here and m.madds_m is None else \
            (f"{m.madds_m:g}M" if m.madds_m else "not measured", f"{m.params_m:g}M" if m.params_m else "here")
        rows.append((name, m.task, f"{m.alpha:g}", f"{m.size}", f"{m.rho:.3g}", madds, params,
                     m.file, "yes" if here else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"models folder: {directory}   (provision: edgecam models fetch NAME [--from MIRROR_DIR])")
    return "\n".join(lines)



"""The package's shape, read from its source (no model mirror needed): no import cycle
(counting imports inside functions, and the package faces every import runs), imports at the
top of modules, sinks that never import the pipeline, package faces that only re-export,
every module importable first and alone, short functions and modules, and a package whose
import changes nothing."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "edgecam"

# imports that stay inside a function, and why
LAZY = {
    ("edgecam.pyenv", "picamera2"): "exists on a Raspberry Pi only, and starts libcamera; its failures are the answer",
    ("edgecam.pyenv", "libcamera"): "comes with picamera2 (apt, on a Pi only), for the camera's flips",
    ("edgecam.pyenv", "numpy"): "which numpy imports, if any, is what it reports",
    # `edgecam doctor` must start where numpy, OpenCV or the TFLite runtime do not import:
    ("edgecam.cli", "edgecam.app"): "the run command", ("edgecam.cli", "edgecam.bench"): "the bench command",
    ("edgecam.cli", "edgecam.provision"): "the models command", ("edgecam.cli", "edgecam.evaluate"): "the eval command",
    ("edgecam.cli", "edgecam.teach"): "the teach command",
    ("edgecam.evaluate", "edgecam.app"): "eval's own run: scoring a run's files needs no model or OpenCV",
    ("edgecam.doctor", "cv2"): "a check", ("edgecam.doctor", "edgecam.model"): "a check",
    ("edgecam.doctor", "edgecam.provision"): "a check (the int8 cache imports numpy)",
    ("edgecam.tradeoff", "matplotlib"): "the optional extra edgecam[plot], for the trade-off chart only",
    ("edgecam.mqtt.link", "paho"): "an optional extra (edgecam[mqtt]): imported only when --mqtt is configured",
}


def lazy_ok(module: str, target: str) -> bool:
    return any(module == m and (target == t or target.startswith(t + ".")) for m, t in LAZY)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str:
    """The edgecam module an import names (``from edgecam.model import catalog`` is the
    submodule edgecam.model.catalog; ``from edgecam.model import Model`` the package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path) -> List[ast.stmt]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, (ast.Import, ast.ImportFrom))]


def targets(node: ast.stmt) -> List[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert node.level == 0, "relative imports: use edgecam.x"
    return [f"{node.module}.{a.name}" for a in node.names] if node.module else []


def packages_of(name: str) -> Set[str]:
    """The packages whose faces (``__init__``) importing ``name`` runs first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def graph() -> Dict[str, Set[str]]:
    """Who imports whom. Importing edgecam.sinks.base runs edgecam/sinks/__init__.py first,
    so that is an edge too, except from inside that package (its face is already running)."""
    edges: Dict[str, Set[str]] = {}
    for name, path in MODULES.items():
        found = {resolve(t) for node in imports(path) for t in targets(node) if t.startswith("edgecam")}
        found |= {p for m in found for p in packages_of(m) if p in MODULES} - packages_of(name)
        edges[name] = {m for m in found if m and m != name}
    return edges


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports():
    edges = graph()
    assert "edgecam.model.loader" in edges["edgecam.model.switch"]
    assert len(MODULES) > 30


def test_no_import_cycle_counting_imports_inside_functions():
    assert cycles(graph()) == []
    # and the check finds one when there is one
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_edges_into_package_faces():
    edges = graph()
    assert "edgecam.sinks" in edges["edgecam.mqtt.sink"]           # it imports edgecam.sinks.base
    assert "edgecam.sinks" not in edges["edgecam.sinks.web.server"]  # inside the package


def test_package_faces_only_re_export():
    """A package's ``__init__`` names its files and re-exports; the work is in modules (a face
    that does work imports half the package, and makes cycles: sinks/opening.py)."""
    busy = []
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            names = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in ("__all__", "__version__") for t in node.targets)
            if not (docstring or names or isinstance(node, (ast.Import, ast.ImportFrom))):
                busy.append(f"{name}:{node.lineno}")
    assert busy == []


# Forks a child per module from a parent that has imported the third-party libraries (never
# edgecam), so that each edgecam module is its interpreter's first edgecam import without
# paying numpy's, OpenCV's and scipy's start-up ~100 times, as many children at a time as
# there are CPUs: 20 s as one `python -c "import X"` per module on two cores, ~5 s so.
IMPORT_EACH = """
import importlib, os, sys, traceback
for lib in ("cv2", "numpy", "yaml", "tqdm", "scipy.optimize", "ai_edge_litert.interpreter", "tflite_runtime",
            "flatbuffers", "paho.mqtt.client", "prometheus_client"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
names, running, failed = sys.argv[1:], {}, []
while names or running:
    while names and len(running) < (os.cpu_count() or 2):
        name = names.pop()
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                traceback.print_exc(limit=-1)
                os._exit(1)
            os._exit(0)
        running[pid] = name
    pid, status = os.wait()
    if status != 0:
        failed.append(running[pid])
    del running[pid]
print(sorted(failed))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per module")
def test_every_module_imports_first_and_alone():
    """Each module as an interpreter's first edgecam import (an import cycle shows only in
    some orders)."""
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    r = subprocess.run([sys.executable, "-c", IMPORT_EACH, *names], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr[-3000:]
    # and the check finds a module that does not import
    bad = subprocess.run([sys.executable, "-c", IMPORT_EACH, "edgecam.no_such_module"], capture_output=True, text=True)
    assert "no_such_module" in bad.stdout


def test_imports_at_module_top():
    late = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set()
        for n in tree.body:   # module level, also inside a top-level try/if
            top |= {id(x) for x in ast.walk(n)} if isinstance(n, (ast.Try, ast.If)) else {id(n)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                for t in targets(node):
                    if not lazy_ok(name, t):
                        late.append(f"{name}:{node.lineno} {t}")
    assert late == [], "imports inside functions (add a measured reason to LAZY, or move them up)"


def test_sinks_and_sources_never_import_the_runners():
    edges = graph()
    for name, deps in edges.items():
        if name.startswith(("edgecam.sinks", "edgecam.sources", "edgecam.model", "edgecam.costlens",
                            "edgecam.provision")):
            bad = sorted(d for d in deps if d.startswith(("edgecam.pipeline", "edgecam.service", "edgecam.app")))
            assert bad == [], f"{name} imports {bad}"
        if name.startswith(("edgecam.sources", "edgecam.model")):
            assert not [d for d in deps if d.startswith("edgecam.sinks")], name


def test_no_long_functions_or_modules():
    long = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 450:
            long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert long == []


def test_importing_edgecam_changes_no_environment():
    """(OpenCV's own import sets Qt variables: imported first, it is not edgecam's doing.)"""
    code = ("import os, cv2, numpy, yaml, tqdm; before = dict(os.environ)\n"
            + "".join(f"import {m}\n" for m in sorted(MODULES) if not m.endswith("__main__"))
            + "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_every_package_is_installed():
    """pyproject.toml lists the packages by name: a new folder must be in it, or a wheel
    install (scripts/install-service.sh) lacks it."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(root).parts) for p in (root / "edgecam").rglob("__init__.py")}
    assert folders <= listed, sorted(folders - listed)

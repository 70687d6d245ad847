"""The floor plan holds: no import circles, no imports that run back up, and the
distribution claims no generic top-level import names.

Every `import` in every module is read with `ast` (also the ones inside functions: a
lazy import that runs back up is still a circle)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = {
    "screwcam": "screwcam",
    **PYPROJECT["tool"]["setuptools"]["package-dir"],
}
JOBS = ("capture", "training", "export", "edge_service")
TOOLS = ("bench", "cli")
#: job -> other jobs it may import (export converts the models training makes)
SIDEWAYS = {"export": {"training"}}


def _modules() -> dict[str, Path]:
    """module name -> file, for every module of the distribution."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
        if package == "screwcam":  # the core's own subpackages (render, ...)
            for path in (ROOT / folder).glob("*/*.py"):
                sub = f"screwcam.{path.parent.name}"
                found[sub if path.stem == "__init__" else f"{sub}.{path.stem}"] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The screwcam modules `name` imports (resolved to modules that exist)."""
    is_package = path.stem == "__init__"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("screwcam"):
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _area(module: str) -> str:
    """ "core", a job's name, a tool's name, or "models"."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in (*JOBS, *TOOLS, "models"):
        return parts[1]
    return "core"


def test_the_modules_are_found() -> None:
    assert {"screwcam.preprocess", "screwcam.bundle", "screwcam.capture.record"} <= set(GRAPH)
    assert "screwcam.preprocess" in GRAPH["screwcam.heads"]  # the reader sees real imports
    assert "screwcam.frames" in GRAPH["screwcam.render.demo"]  # relative ones too


def test_no_import_circles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_no_imports_that_run_back_up() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        area = _area(module)
        for target in targets:
            to = _area(target)
            allowed = (
                to == "core"
                or to == area
                or area in TOOLS
                or to in SIDEWAYS.get(area, set())
                or (area == "core" and module == "screwcam.bundle" and to == "models")
            )
            if not allowed:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the floor plan:\n" + "\n".join(sorted(wrong))


def test_no_generic_top_level_names() -> None:
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert all(p == "screwcam" or p.startswith("screwcam.") for p in packages), packages
    for package, folder in PACKAGE_DIRS.items():
        assert (ROOT / folder / "__init__.py").is_file(), f"{package} ({folder}/) has no __init__"

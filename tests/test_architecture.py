"""The layers flow one way: an import graph of src/trueprob built with ``ast``.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, relative, and
``importlib.import_module("trueprob....")`` with a literal name. Each module belongs to the
top-level unit it sits in (``trueprob.stats.binned`` -> ``stats``; ``trueprob/__init__.py`` is
the unit ``trueprob``, the public facade). :data:`LAYERS` is the one place that writes the
allowed order, lowest first; docs/architecture.md describes it. A unit may import units of its
own layer or lower ones, never a higher one, and the units never form a cycle.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trueprob"

#: (layer, units), lowest first. A new top-level module or package must be placed here.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("_version", "_array", "_format", "_progress", "_validation")),
    ("core", ("core",)),
    ("io", ("io",)),
    ("results", ("results",)),
    ("stats", ("stats",)),
    ("estimators", ("metrics", "calibrators", "inference", "decomposition", "likelihoods",
                    "multilabel", "regression", "coding", "api", "sklearn")),
    ("executors", ("streaming", "dask", "torch", "tables")),
    ("analysis", ("analysis",)),
    ("rendering", ("report",)),
    ("facade", ("trueprob",)),
    ("cli", ("demo", "cli", "__main__")),
)

RANK = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "trueprob"


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The trueprob modules an ``from X import a, b`` statement reaches."""
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    if not module.startswith("trueprob"):
        return []
    # `from trueprob import _progress` reaches the submodule, not the package's __init__
    subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
    rest = [a for a in node.names if f"{module}.{a.name}" not in MODULES]
    return subs + ([module] if rest else [])


def imports_of(module: str, path: Path) -> list[tuple[str, int, str]]:
    """(imported module, line, kind) for every import in the file; kind is "trueprob" or a
    third-party top-level name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and not node.module.startswith("trueprob"):
                out.append((node.module, node.lineno, "external"))
            for target in resolve(module, is_package, node):
                out.append((target, node.lineno, "trueprob"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                kind = "trueprob" if alias.name.startswith("trueprob") else "external"
                out.append((alias.name, node.lineno, kind))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and node.args[0].value.startswith("trueprob")):
            out.append((node.args[0].value, node.lineno, "trueprob"))
    return out


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> ["module:line", ...] (edges between different units)."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module, path in MODULES.items():
        for target, line, kind in imports_of(module, path):
            if kind != "trueprob":
                continue
            a, b = unit_of(module), unit_of(target)
            if a != b:
                graph[a][b].append(f"{module}:{line}")
    return graph


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in MODULES}
    missing = sorted(units - set(RANK))
    assert not missing, f"place these in LAYERS (tests/test_architecture.py): {missing}"
    assert len(RANK) == sum(len(u) for _, u in LAYERS), "a unit is listed twice in LAYERS"


def test_no_upward_import():
    upward = [
        f"{a} ({LAYERS[RANK[a]][0]}) imports {b} ({LAYERS[RANK[b]][0]}) at {', '.join(where)}"
        for a, targets in unit_graph().items() for b, where in targets.items()
        if a in RANK and b in RANK and RANK[b] > RANK[a]
    ]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_cycle_between_units():
    graph = {a: set(t) for a, t in unit_graph().items()}
    # Tarjan's strongly connected components; any component of 2+ units is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = itertools.count()

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"units that import each other (directly or around a loop): {cycles}"


def test_only_the_cli_touches_click_and_the_cli_package():
    offenders = []
    for module, path in MODULES.items():
        if unit_of(module) in ("cli", "__main__"):  # __main__: `python -m trueprob` is the CLI
            continue
        for target, line, _ in imports_of(module, path):
            if target == "click" or target.startswith(("click.", "trueprob.cli")):
                offenders.append(f"{module}:{line} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_a_planted_upward_import(tmp_path):
    # the graph builder must notice an upward import hidden inside a function
    fake = tmp_path / "trueprob"
    (fake / "stats").mkdir(parents=True)
    (fake / "report").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "stats" / "__init__.py").write_text("")
    (fake / "report" / "__init__.py").write_text("")
    (fake / "stats" / "bad.py").write_text(
        "def f():\n    from ..report import html\n    return html\n")
    (fake / "report" / "html.py").write_text("X = 1\n")
    modules = {module_name_in(fake, p): p for p in sorted(fake.rglob("*.py"))}
    edges = [(m, t) for m, p in modules.items() for t, _, k in imports_from(fake, m, p, modules)
             if k == "trueprob"]
    assert ("trueprob.stats.bad", "trueprob.report.html") in edges
    assert RANK[unit_of("trueprob.report.html")] > RANK[unit_of("trueprob.stats.bad")]


def module_name_in(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_from(root: Path, module: str, path: Path,
                 modules: dict[str, Path]) -> list[tuple[str, int, str]]:
    saved = dict(MODULES)
    MODULES.clear()
    MODULES.update(modules)
    try:
        return imports_of(module, path)
    finally:
        MODULES.clear()
        MODULES.update(saved)


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_layer_order_is_documented(layer):
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"**{layer}**" in doc, f"docs/architecture.md does not describe the {layer} layer"


if __name__ == "__main__":  # print the layer order and the unit graph (for notes)
    g = unit_graph()
    for name, units in LAYERS:
        print(f"{name:<11}", ", ".join(units))
    for a in sorted(g):
        print(f"  {a} -> {', '.join(sorted(g[a]))}")

"""No module of ``broker/`` imports from a higher layer, nor from another package of its own
layer, and no modules import each other in a circle (docs/architecture.md section 2).

Every import counts: at module level, inside a function, and under ``if TYPE_CHECKING:``. A
lazy import hides a dependency from the interpreter, not from the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "broker"

#: The layers of ``broker/``, bottom-up: a package (a folder, or a single module) may import from
#: the layers below its own and from itself, never from a layer above, and never from another
#: package of its own layer. ``__init__`` is the package face ``broker/__init__.py``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vocab",),
    ("errors", "ids", "logging"),
    ("wire",),
    ("transport",),
    ("schemas", "keys"),
    ("envelope",),
    ("policy", "sinks", "screening"),
    ("node", "report", "deploy"),
    ("testing", "devbroker", "devpg", "examples"),
    ("bench", "demo"),
    ("cli", "__init__"),
    ("__main__",),
)
LAYER_OF: dict[str, int] = {part: n for n, parts in enumerate(LAYERS) for part in parts}


@dataclass(frozen=True)
class Import:
    """One import of a ``broker`` module: where it is written and what it names."""

    path: str
    line: int
    source: str
    target: str


def module_name(path: Path, root: Path = ROOT) -> str:
    """``broker/keys/bureau.py`` -> ``broker.keys.bureau``; a package's ``__init__.py`` is the
    package itself (``broker/keys/__init__.py`` -> ``broker.keys``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """The entry of :data:`LAYERS` a module belongs to: ``broker.keys.bureau`` -> ``keys``,
    ``broker.errors`` -> ``errors``, ``broker`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(
    path: str, module: str, source: str, is_module: Iterable[str] | None = None
) -> list[Import]:
    """Every import of a ``broker`` module in ``source`` (the text of ``module``, shown as
    ``path``), wherever it stands in the file.

    ``from broker import devbroker`` names the module ``broker.devbroker`` when that is a module
    (``is_module``: the names of all modules), else the package ``broker``.
    """
    modules = set(is_module if is_module is not None else all_modules())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found += [
            Import(path, node.lineno, module, t)
            for t in dict.fromkeys(targets)
            if t == "broker" or t.startswith("broker.")
        ]
    return found


def all_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``broker/`` by name."""
    return {
        module_name(p, root): p
        for p in sorted((root / "broker").rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def layer_violations(found: Iterable[Import], layers: Mapping[str, int] = LAYER_OF) -> list[str]:
    """One line per import that runs up a layer, crosses to another package of the same layer,
    or touches a package that is in no layer."""
    names = {n: ", ".join(parts) for parts in LAYERS for n in parts}
    wrong: list[str] = []
    for imp in found:
        src, dst = part_of(imp.source), part_of(imp.target)
        if src == dst:
            continue
        if src not in layers or dst not in layers:
            unplaced = src if src not in layers else dst
            wrong.append(f"{imp.path}:{imp.line}: {unplaced!r} is in no layer of the table")
            continue
        ls, ld = layers[src], layers[dst]
        if ld < ls:
            continue
        how = "runs up to" if ld > ls else "crosses within"
        wrong.append(
            f"{imp.path}:{imp.line}: {imp.source} ({src}, layer {ls}: {names.get(src, src)}) "
            f"imports {imp.target}: {how} layer {ld} ({names.get(dst, dst)})"
        )
    return wrong


def circles(found: Iterable[Import]) -> list[list[str]]:
    """The modules that import each other in a loop (strongly connected components of more than
    one module, or a module importing itself), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found_circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1 or v in graph[v]:
                found_circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found_circles)


def _broker_imports() -> list[Import]:
    modules = all_modules()
    found: list[Import] = []
    for name, path in modules.items():
        rel = str(path.relative_to(ROOT))
        found += imports(rel, name, path.read_text(encoding="utf-8"), modules)
    return found


def test_every_package_of_broker_is_in_one_layer() -> None:
    """The table places every folder and module of ``broker/`` exactly once."""
    placed = [part for parts in LAYERS for part in parts]
    assert len(placed) == len(set(placed)), placed
    present = {part_of(name) for name in all_modules()}
    assert present == set(placed), (sorted(present - set(placed)), sorted(set(placed) - present))


def test_no_module_imports_from_a_higher_layer_or_across_its_own() -> None:
    """Every import of ``broker/`` runs down the table (or stays inside its own package)."""
    found = _broker_imports()
    assert len(found) > 100  # the walk does see the package's imports
    wrong = layer_violations(found)
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle() -> None:
    """Not even inside one package, not even through a lazy or TYPE_CHECKING import."""
    assert not circles(_broker_imports())


# The check itself can fail: fed imports that break the table, it names them.

FAKE_MODULES = {"broker.wire.canonical", "broker.node.pipeline", "broker.devbroker"}


def test_an_import_that_runs_up_is_named_with_file_line_and_both_layers() -> None:
    """A wire module importing the node, at module level, in a function and under
    TYPE_CHECKING: three findings, each with file:line and both layers."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from broker.node.pipeline import Outcome\n"
        "if TYPE_CHECKING:\n"
        "    import broker.node\n"
        "def f():\n"
        "    from broker.node import pipeline\n"
    )
    found = imports("broker/wire/fake.py", "broker.wire.fake", source, FAKE_MODULES)
    assert [(i.line, i.target) for i in found] == [
        (2, "broker.node.pipeline"),
        (4, "broker.node"),
        (6, "broker.node.pipeline"),
    ]
    wrong = layer_violations(found)
    assert wrong == [
        f"broker/wire/fake.py:{line}: broker.wire.fake (wire, layer {LAYER_OF['wire']}: wire) "
        f"imports {target}: runs up to layer {LAYER_OF['node']} (node, report, deploy)"
        for line, target in [
            (2, "broker.node.pipeline"),
            (4, "broker.node"),
            (6, "broker.node.pipeline"),
        ]
    ]


def test_an_import_across_one_layer_and_an_unplaced_package_are_named() -> None:
    """policy and sinks share a layer: neither may import the other; a package outside the
    table is refused; importing down and inside one's own package is fine."""
    source = (
        "from broker.sinks import Sink\n"
        "from broker.newthing import x\n"
        "from broker.schemas import NoticeBase\n"
        "from broker.policy.rules import Action\n"
        "from . import decision\n"
    )
    found = imports(
        "broker/policy/fake.py", "broker.policy.fake", source, {"broker.policy.decision"}
    )
    assert [i.target for i in found] == [
        "broker.sinks",
        "broker.newthing",
        "broker.schemas",
        "broker.policy.rules",
        "broker.policy.decision",
    ]
    assert layer_violations(found) == [
        f"broker/policy/fake.py:1: broker.policy.fake (policy, layer {LAYER_OF['policy']}: policy, "
        f"sinks, screening) imports broker.sinks: crosses within layer {LAYER_OF['sinks']} "
        "(policy, sinks, screening)",
        "broker/policy/fake.py:2: 'newthing' is in no layer of the table",
    ]


def test_from_broker_import_a_module_names_that_module() -> None:
    """``from broker import devbroker`` is an import of ``broker.devbroker``, not of the
    package face; ``from broker import NbxError`` is one of the face."""
    source = "from broker import devbroker\nfrom broker import NbxError\n"
    found = imports("broker/bench/fake.py", "broker.bench.fake", source, FAKE_MODULES)
    assert [i.target for i in found] == ["broker.devbroker", "broker"]
    assert layer_violations(found) == [
        f"broker/bench/fake.py:2: broker.bench.fake (bench, layer {LAYER_OF['bench']}: bench, "
        f"demo) imports broker: runs up to layer {LAYER_OF['cli']} (cli, __init__)"
    ]


def test_a_circle_is_found_even_through_a_type_checking_import() -> None:
    """Two modules of one package that import each other (one side only for type checking)
    form a circle; a chain does not."""
    a = imports(
        "broker/keys/a.py",
        "broker.keys.a",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from broker.keys.b import B\n",
        {"broker.keys.b"},
    )
    b = imports(
        "broker/keys/b.py", "broker.keys.b", "from broker.keys.a import A\n", {"broker.keys.a"}
    )
    c = imports(
        "broker/keys/c.py", "broker.keys.c", "from broker.keys.a import A\n", {"broker.keys.a"}
    )
    assert circles([*a, *b, *c]) == [["broker.keys.a", "broker.keys.b"]]
    assert circles([*b, *c]) == []

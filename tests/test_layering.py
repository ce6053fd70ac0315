"""No module imports from a layer above its own.

The layers, lowest first: a module may import from its own layer and the ones below it,
at the top of the file or inside a function alike.  Imports under `if TYPE_CHECKING:`
do not run, so annotations may name a class of a higher layer (ops/base.py names the
Emitter and QuantOptions its methods receive).  A new module must be given a layer here.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "edgecompile"

# (name, modules or packages); "edgecompile" alone is the package's __init__ (its __version__).
LAYERS = [
    ("base", ["edgecompile", "edgecompile.errors", "edgecompile.numerics", "edgecompile.formats", "edgecompile.ir",
              "edgecompile.arena", "edgecompile.access_order", "edgecompile.tiling", "edgecompile.packing",
              "edgecompile.sparse_format",
              # helpers that know no graph: files, data, progress, PyTorch modules, toolchains and targets
              "edgecompile.resources", "edgecompile.calibration", "edgecompile.progress", "edgecompile.nn",
              "edgecompile.c_calls", "edgecompile.targets"]),
    ("ops", ["edgecompile.ops"]),
    ("simulate", ["edgecompile.simulate", "edgecompile.metrics"]),
    ("passes", ["edgecompile.passes", "edgecompile.frontend"]),
    ("codegen", ["edgecompile.codegen", "edgecompile.c_api", "edgecompile.manifest", "edgecompile.report",
                 "edgecompile.streaming"]),
    ("compiler", ["edgecompile.compiler"]),
    ("export", ["edgecompile.export", "edgecompile.verify", "edgecompile.explore"]),
    ("tools", ["edgecompile.qat", "edgecompile.fit", "edgecompile.bench"]),
    ("cli", ["edgecompile.cli"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The index of the layer of the longest entry naming `module` or a package holding it."""
    best = None
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            inside = module == entry or (entry != "edgecompile" and module.startswith(entry + "."))
            if inside and (best is None or len(entry) > len(best[0])):
                best = (entry, index)
    return None if best is None else best[1]


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, tree: ast.AST):
    """(line, imported module) of every edgecompile import that runs, in functions too."""
    skipped = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and is_type_checking(block)
               for stmt in block.body for n in ast.walk(stmt)}
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from . import numerics` imports a module
                yield node.lineno, f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_no_import_runs_upward():
    upward = []
    for module, path in MODULES.items():
        own = layer_of(module)
        for line, target in sorted(set(imports(module, ast.parse(path.read_text(), str(path))))):
            if target.split(".")[0] != "edgecompile":
                continue
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[own][0]}) imports {target} "
                              f"({LAYERS[theirs][0]})")
    assert upward == [], "imports from a higher layer:\n" + "\n".join(upward)


def test_the_check_sees_imports_in_functions():
    """An import inside a function counts; one under TYPE_CHECKING does not."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..codegen import Emitter\n"
                     "def f():\n    from ..passes.quantize import quantize_graph\n")
    assert [t for _, t in imports("edgecompile.ops.base", tree)] == ["typing", "edgecompile.passes.quantize"]

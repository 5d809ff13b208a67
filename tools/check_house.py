"""House rules that import-linter does not check: module size and private names.

1. No module of the package over ``MAX_LINES`` lines.
2. No module imports a private module (``_name``) or a private name (``_name``) from outside the package that owns
   it: ``workbench.retrieval._ranking`` is for ``workbench.retrieval`` only, ``workbench._params`` is for the whole
   ``workbench`` package. A private name is shared only through a private module: ``_kernels`` in
   ``workbench.retrieval._ranking`` serves all of ``workbench.retrieval``, while a private name of a public module
   (``workbench.search._rows``) or of a package's ``__init__`` belongs to that module or package alone.

Run ``python tools/check_house.py`` (part of ``make lint``); it prints each breach and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 600
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "workbench"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def owner(name: str) -> str:
    """The package a dotted name is private to: the parent of its first private part (None if all public)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return ""


def private_to(name: str, modules: dict[str, Path]) -> str:
    """The package or module that may import ``name`` ("" if anyone may)."""
    module = name
    while module and module not in modules:
        module = module.rpartition(".")[0]
    attribute = name[len(module) + 1 :] if module != name else ""
    scope = owner(module)
    if attribute.startswith("_") and not attribute.startswith("__"):
        last = module.rpartition(".")[2]
        name_scope = module.rpartition(".")[0] if last.startswith("_") else module
        scope = name_scope if not scope or len(name_scope) > len(scope) else scope
    return scope


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def imported_names(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, dotted name) for every workbench name this module imports, functions and TYPE_CHECKING included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == PACKAGE]


def breaches(root: Path = ROOT) -> list[str]:
    modules = module_names(root)
    problems = []
    for module, path in modules.items():
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        if n_lines > MAX_LINES:
            problems.append(f"{path.relative_to(root)}: {n_lines} lines (at most {MAX_LINES}): split it by concern")
        for line, name in imported_names(module, path, modules):
            scope = private_to(name, modules)
            if scope and not inside(module, scope):
                problems.append(
                    f"{path.relative_to(root)}:{line}: imports {name}, which is private to {scope}: "
                    "make it public there (in __all__) or move it below both"
                )
    return problems


def main() -> int:
    problems = breaches()
    for problem in problems:
        print(problem)
    print(f"house rules: {len(problems)} breach(es)" if problems else "house rules: module sizes and privates kept")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The architecture, held by the imports (docs/design.md, "Layout of the code"): pygit2 is
imported only under git_prov/store/, and the lower layers never import a higher one —
model/ imports only model/ (and the errors); store/ only store/, model/ and the errors.
Imports inside functions count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "git_prov"
ALLOWED = {
    "model": ("git_prov.model", "git_prov.errors"),
    "store": ("git_prov.store", "git_prov.model", "git_prov.errors"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, wherever it sits (functions included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_store_imports_pygit2() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] != "store"
        for line, module in _imports(path)
        if module == "pygit2" or module.startswith("pygit2.")
    ]
    assert offenders == [], "pygit2 outside git_prov/store: " + ", ".join(offenders)


def test_model_and_store_import_no_higher_layer() -> None:
    offenders = []
    for path in _modules():
        layer = path.relative_to(PACKAGE).parts[0]
        if layer not in ALLOWED:
            continue
        for line, module in _imports(path):
            own = module == "git_prov" or module.startswith("git_prov.")
            if own and not any(module == a or module.startswith(a + ".") for a in ALLOWED[layer]):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert offenders == [], "\n".join(offenders)


def test_the_checks_see_imports_inside_functions(tmp_path: Path) -> None:
    """(The checks above would pass vacuously if nested imports were missed.)"""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import pygit2\n    from git_prov.query import located\n")
    assert _imports(sample) == [(2, "pygit2"), (3, "git_prov.query")]

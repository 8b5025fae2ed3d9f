"""The architecture, held by the imports (docs/design.md, "Layout of the code"): pygit2 is
imported only under git_prov/store/, and the lower layers never import a higher one —
model/ imports only model/ (and the errors); store/ only store/, model/ and the errors.
Imports inside functions count: a lazy import is still a dependency. Outside store/, no
code reaches pygit2 through a ``GitRepo``'s (or a ``Ledger``'s) ``.pygit`` handle, nor
writes through the ledger's private ``_commit``/``_cas``: store/ does that work."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "git_prov"
DESIGN = PACKAGE.parent / "docs" / "design.md"
ALLOWED = {
    "model": ("git_prov.model", "git_prov.errors"),
    "store": ("git_prov.store", "git_prov.model", "git_prov.errors"),
}


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, wherever it sits (functions included)."""
    found = []
    for node in ast.walk(_parsed(path)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


# Attributes only store/ may use: the raw pygit2 handle, and the ledger's private writers.
STORE_ONLY_ATTRIBUTES = {"pygit", "_commit", "_cas", "_swap"}


def _store_only_uses(path: Path) -> list[tuple[int, str]]:
    """(line, attribute) of every use of a store-only attribute (``x.pygit`` …) in a file."""
    return [
        (node.lineno, node.attr)
        for node in ast.walk(_parsed(path))
        if isinstance(node, ast.Attribute) and node.attr in STORE_ONLY_ATTRIBUTES
    ]


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


def test_only_store_touches_the_pygit2_handle_and_ledger_writers() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} uses .{attribute}"
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] != "store"
        for line, attribute in _store_only_uses(path)
    ]
    assert offenders == [], "store/'s work done outside git_prov/store:\n" + "\n".join(offenders)


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
    handle = tmp_path / "handle.py"
    handle.write_text("def f(repo, ledger):\n    return repo.pygit.head, ledger._cas\n")
    assert sorted(_store_only_uses(handle)) == [(2, "_cas"), (2, "pygit")]


def test_the_design_layout_names_every_module() -> None:
    """docs/design.md's "Layout of the code" matches the code module by module: each file
    (``name.py``) and each package (``name/``) is named there."""
    text = DESIGN.read_text()
    layout = text[text.index("## Layout of the code") :].split("```")[1]
    names = set(re.findall(r"[\w.]+/|\w+\.py", layout))
    missing = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        if any(not (d / "__init__.py").is_file() for d in path.parents[: len(relative.parts) - 1]):
            continue  # package data (project templates), not a module of git-prov
        wanted = f"{relative.parent.name}/" if path.name == "__init__.py" else path.name
        if relative.parts != ("__init__.py",) and wanted not in names:
            missing.append(str(relative))
    assert missing == [], "docs/design.md's layout does not name: " + ", ".join(missing)

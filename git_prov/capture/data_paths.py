"""Declared data paths as the user typed them, made repo-relative, and the DVC project a
directory is in (kept light: a re-record of unchanged inputs needs only this and the data
memo, not the walk, the hashing or DVC's reader)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from git_prov.errors import BadPath


def declared_paths(
    repo_root: Path, paths: Sequence[str], *, cwd: Path | None = None
) -> tuple[str, tuple[str, ...]]:
    """The repository's root (absolute) and the declared ``paths`` as :func:`list_data`
    names them: repo-relative, sorted, each once (BadPath as it raises, nothing walked)."""
    root = os.path.abspath(repo_root)
    base = os.path.abspath(cwd) if cwd is not None else root
    return root, tuple(sorted({repo_relative(root, base, p) for p in paths}))


def repo_relative(root: str, base: str, typed: str) -> str:
    """The repo-relative POSIX form of a path the user typed, or BadPath."""
    shown = show(typed)
    if not typed:
        raise BadPath("an empty path was declared as data", "name a file or directory")
    absolute = os.path.abspath(os.path.join(base, typed))
    rel = _inside(absolute, root)
    if rel is None:
        rel = _inside_resolved(absolute, root)
    if rel is None:
        raise BadPath(
            f"{shown}: outside the repository ({show(root)})",
            "put the data inside the repository, or symlink it in",
        )
    if rel == ".":
        raise BadPath(
            f"{shown}: is the whole repository", "declare the data files or directories inside it"
        )
    parts = rel.split(os.sep)
    if ".git" in parts:
        raise BadPath(
            f"{shown}: is inside git's own storage (.git)",
            "declare the data files or directories of the working tree",
        )
    check_name(rel)
    return "/".join(parts)


def _inside(absolute: str, root: str) -> str | None:
    rel = os.path.relpath(absolute, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel


def _inside_resolved(absolute: str, root: str) -> str | None:
    """Catch a path that reaches the repository through another name for it (a symlinked
    home or project directory): find the ancestor that *is* the repository root. Only that
    prefix is resolved, so symlinks inside the repository still count as inside."""
    real_root = os.path.realpath(root)
    ancestor = absolute
    while True:
        if os.path.realpath(ancestor) == real_root:
            return os.path.relpath(absolute, ancestor)
        parent = os.path.dirname(ancestor)
        if parent == ancestor:
            return None
        ancestor = parent


def check_name(name: str, shown: str | None = None) -> None:
    """Manifests are UTF-8 TOML: a name that is not UTF-8 cannot be recorded faithfully."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPath(
            f"{show(shown or name)}: the name is not valid UTF-8",
            "rename the file (git-prov records names as UTF-8)",
        ) from None


def show(text: str) -> str:
    return text if text.isprintable() else repr(text)


def dvc_project_of(root: str, directory: str, known: dict[str, str | None]) -> str | None:
    """The directory (repo-relative, "" for the root) whose ``.dvc/`` is in ``directory``
    (repo-relative) or the closest one above it: the DVC project its files are in; None
    outside any. ``known`` keeps the answer of each directory passed through, for the
    next call (one ``.dvc/`` look-up per directory)."""
    chain: list[str] = []
    found: str | None = None
    while True:
        if directory in known:
            found = known[directory]
            break
        chain.append(directory)
        if os.path.isdir(os.path.join(root, directory, ".dvc")):
            found = directory
            break
        if not directory:
            break
        directory = directory.rpartition("/")[0]
    for passed in chain:
        known[passed] = found
    return found

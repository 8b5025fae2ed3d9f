"""Lock and requirement files of the repository, hashed into ``[lockfiles]`` (search rules:
:mod:`git_prov.capture.environment`)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

DEFAULT_LOCKFILES: tuple[str, ...] = (
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pdm.lock",
    "pixi.lock",
    "pylock.toml",
    "pylock.*.toml",
    "requirements*.txt",
    "requirements/*.txt",
    "constraints*.txt",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "conda-lock.yaml",
    "*.conda-lock.yml",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "go.sum",
    "Gemfile.lock",
    "renv.lock",
    "Manifest.toml",
    "flake.lock",
)
"""Lock and requirement files hashed into ``[lockfiles]`` (see the module docstring)."""


def find_lockfiles(repo_root: Path, patterns: Sequence[str] = DEFAULT_LOCKFILES) -> dict[str, str]:
    """``{repo-relative posix path: "sha256:<hex>"}`` of the lock files matching ``patterns``.

    Search depth and pattern rules are in the module docstring; unreadable files are left out.
    """
    root_files = _file_names(repo_root)
    subdirs: list[str] | None = None
    found: set[str] = set()
    for pattern in patterns:
        directory, _, base = pattern.rpartition("/")
        if directory:
            if _is_glob(directory):
                continue
            names = _file_names(repo_root / directory) if _is_glob(base) else [base]
            found.update(
                f"{directory}/{n}"
                for n in names
                if fnmatch.fnmatchcase(n, base) and (repo_root / directory / n).is_file()
            )
        elif _is_glob(base):
            found.update(n for n in root_files if fnmatch.fnmatchcase(n, base))
        else:
            if base in root_files:
                found.add(base)
            if subdirs is None:
                subdirs = _lockfile_subdirs(repo_root)
            found.update(f"{d}/{base}" for d in subdirs if (repo_root / d / base).is_file())
    hashes: dict[str, str] = {}
    for relative in sorted(found):
        digest = _sha256_file(repo_root / relative)
        if digest is not None:
            hashes[relative] = f"sha256:{digest}"
    return hashes


_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


def _lockfile_subdirs(repo_root: Path) -> list[str]:
    try:
        with os.scandir(repo_root) as entries:
            return sorted(
                e.name
                for e in entries
                if e.is_dir(follow_symlinks=False)
                and not e.name.startswith(".")
                and e.name not in _SKIPPED_DIRS
            )
    except OSError:
        return []


def _file_names(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_file())
    except OSError:
        return []


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _sha256_file(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()

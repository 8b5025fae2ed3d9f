"""DVC: name DVC-tracked files by the hash DVC already gave them, without reading them.

DVC keeps the data it tracks in a content-addressed cache (``.dvc/cache`` unless
``cache.dir`` says otherwise) and puts the workspace copy in place as a **link** to the
cache object (``cache.type`` ``symlink`` or ``hardlink``, DVC's advice for large data) or
as a **copy** (``reflink``/``copy``, the default). The object's file name is the hash::

    <cache>/files/md5/<2 hex>/<30 hex>        DVC 3 (``hash: md5`` in .dvc / dvc.lock)
    <cache>/<2 hex>/<30 hex>                  DVC 2 ("legacy": md5 after dos2unix)

A workspace file that *is* a cache object — a symlink resolving into the cache, or a hard
link sharing the object's inode — is therefore named by that object, with nothing read:

* DVC 3 objects give ``md5:<hex>`` (the MD5 of the bytes, what ``md5sum`` prints);
* legacy objects give ``md5-dos2unix:<hex>``: DVC 2 hashed text files after converting
  CRLF to LF, so the value is only the plain MD5 for binary files.

Symlinks name their object themselves. For hard links the candidate hashes come from the
DVC metadata that tracks the file: ``<path>.dvc`` next to the data (or next to a tracked
ancestor directory), the ``outs`` and ``deps`` of ``dvc.lock`` files in the file's
directory or above (paths relative to the stage's ``wdir`` from ``dvc.yaml``), and, for
a tracked directory (``md5: <hex>.dir``), the per-file listing DVC keeps in the cache
object ``<hex>.dir``. Reading that metadata needs PyYAML (the ``yaml`` extra); without
it, hard-linked files are hashed like others. A candidate counts only when the cache
object is the very same inode as the workspace file, so stale metadata never names a
file wrongly.

Copies cannot be matched to a hash without reading them: after ``git checkout`` of a
different ``.dvc`` and before ``dvc checkout`` the metadata describes bytes the workspace
does not hold, and nothing cheap (size, times) tells. They are hashed (``read``) — once;
the stat cache remembers them afterwards.
"""

from __future__ import annotations

import json
import os
import re
import stat as stat_module
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

ALGORITHM_MD5 = "md5"
ALGORITHM_LEGACY = "md5-dos2unix"
MAX_METADATA_BYTES = 16 << 20  # a .dvc / dvc.lock / .dir file bigger than this is ignored
_MD5 = re.compile(r"[0-9a-f]{32}")
_CONFIG_SECTION = re.compile(r"\s*\[\s*(?P<name>[^\]]+?)\s*\]\s*")
_CONFIG_KEY = re.compile(r"\s*(?P<key>[A-Za-z0-9_.-]+)\s*=\s*(?P<value>.*?)\s*")


class StatFile(Protocol):
    """A file found while building a data manifest (see ``capture.data``)."""

    @property
    def rel(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def stat(self) -> os.stat_result: ...

    @property
    def link(self) -> str | None: ...


@dataclass(frozen=True)
class _Project:
    """A DVC project: the directory holding ``.dvc/`` (repo-relative) and its cache."""

    rel: str
    cache: str  # absolute, symlinks resolved


def dvc_hashes(root: str, files: Iterable[StatFile]) -> dict[str, str]:
    """``rel → hash`` for the files that are links into a DVC cache (see the module doc).

    Regular files with one link (copies) are skipped without any file system access, so a
    repository without DVC pays nothing.
    """
    linked = [
        f
        for f in files
        if f.link is not None or (f.stat.st_nlink > 1 and stat_module.S_ISREG(f.stat.st_mode))
    ]
    if not linked:
        return {}
    projects = _Projects(root)
    found: dict[str, str] = {}
    for f in linked:
        project = projects.of(f.rel)
        if project is None:
            continue
        if f.link is not None:
            named = hash_of_cache_path(project.cache, os.path.realpath(f.path))
            if named is not None:
                found[f.rel] = named
            continue
        for candidate in sorted(projects.candidates(project, f.rel)):
            if _same_inode(f.stat, object_path(project.cache, candidate)):
                found[f.rel] = candidate
                break
    return found


def hash_of_cache_path(cache: str, target: str) -> str | None:
    """The hash a path inside the DVC cache ``cache`` names, or None if it names none."""
    try:
        rel = os.path.relpath(target, cache)
    except ValueError:
        return None
    parts = rel.split(os.sep)
    if len(parts) == 4 and parts[:2] == ["files", "md5"]:
        algorithm, (prefix, rest) = ALGORITHM_MD5, parts[2:]
    elif len(parts) == 2:
        algorithm, (prefix, rest) = ALGORITHM_LEGACY, parts
    else:
        return None
    digest = prefix + rest
    if len(prefix) != 2 or not _MD5.fullmatch(digest):
        return None
    return f"{algorithm}:{digest}"


def object_path(cache: str, hash_value: str) -> str:
    """Where the DVC cache ``cache`` keeps the object named by ``hash_value``."""
    algorithm, _, digest = hash_value.partition(":")
    if algorithm == ALGORITHM_MD5:
        return os.path.join(cache, "files", "md5", digest[:2], digest[2:])
    return os.path.join(cache, digest[:2], digest[2:])


def _same_inode(st: os.stat_result, path: str) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


# --- projects and their metadata -------------------------------------------------------------


class _Projects:
    """The DVC projects of a repository, found from the directories files live in."""

    def __init__(self, root: str):
        self.root = root
        self._by_dir: dict[str, _Project | None] = {}
        self._parsed: dict[str, dict[str, set[str]]] = {}
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            yaml = None
        self._yaml: Any = yaml

    def of(self, rel: str) -> _Project | None:
        """The project whose ``.dvc/`` is in the closest directory above ``rel``."""
        directory = posix_dirname(rel)
        chain: list[str] = []
        project: _Project | None = None
        while True:
            if directory in self._by_dir:
                project = self._by_dir[directory]
                break
            chain.append(directory)
            dot_dvc = os.path.join(self.root, directory, ".dvc")
            if os.path.isdir(dot_dvc):
                project = _Project(directory, _cache_dir(dot_dvc))
                break
            if directory == "":
                break
            directory = posix_dirname(directory)
        for seen in chain:
            self._by_dir[seen] = project
        return project

    def candidates(self, project: _Project, rel: str) -> set[str]:
        """The hashes DVC metadata gives the file ``rel``: from ``<p>.dvc`` for ``rel`` and
        each directory above it, and from ``dvc.lock`` in each directory above it, up to
        the project's root. Empty without PyYAML."""
        hashes: set[str] = set()
        if self._yaml is None:
            return hashes
        path = rel
        while path and path != project.rel:
            parent = posix_dirname(path)
            hashes |= self._metadata(project, f"{path}.dvc", parent).get(rel, set())
            hashes |= self._metadata(project, _join(parent, "dvc.lock"), parent).get(rel, set())
            path = parent
        return hashes

    def _metadata(self, project: _Project, rel: str, rel_dir: str) -> dict[str, set[str]]:
        """The paths one ``.dvc`` or ``dvc.lock`` file gives hashes for (read once)."""
        if rel not in self._parsed:
            self._parsed[rel] = _read_metadata(self.root, project, rel, rel_dir, self._yaml)
        return self._parsed[rel]


def posix_dirname(rel: str) -> str:
    return rel.rpartition("/")[0]


def _cache_dir(dot_dvc: str) -> str:
    """``cache.dir`` from ``.dvc/config`` then ``.dvc/config.local`` (relative paths are
    relative to ``.dvc/``), else ``.dvc/cache``; symlinks resolved."""
    directory = os.path.join(dot_dvc, "cache")
    for name in ("config", "config.local"):
        value = _config_value(os.path.join(dot_dvc, name), "cache", "dir")
        if value:
            directory = os.path.join(dot_dvc, os.path.expanduser(value))
    return os.path.realpath(directory)


def _config_value(path: str, section: str, key: str) -> str | None:
    """A value of DVC's INI-style config (read by hand: DVC indents keys, which
    ``configparser`` takes for continuation lines)."""
    try:
        text = _read_small(path).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    current = None
    value = None
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        match = _CONFIG_SECTION.fullmatch(line)
        if match:
            current = match.group("name").strip("'\"")
            continue
        match = _CONFIG_KEY.fullmatch(line)
        if match and current == section and match.group("key") == key:
            value = match.group("value").strip("'\"")
    return value


def _read_metadata(
    root: str, project: _Project, rel: str, rel_dir: str, yaml: Any
) -> dict[str, set[str]]:
    """Hashes one ``*.dvc`` file (its outs) or ``dvc.lock`` (its stages' outs and deps)
    gives paths, with tracked directories expanded from their ``.dir`` listing."""
    out: dict[str, set[str]] = {}
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        return out
    doc = _load_yaml(yaml, path)
    if not isinstance(doc, dict):
        return out
    if rel.rpartition("/")[2] != "dvc.lock":
        _add_items(out, project, rel_dir, doc.get("outs"))
        return out
    stages = doc.get("stages")
    if not isinstance(stages, dict):
        return out
    wdirs = _stage_wdirs(yaml, os.path.join(root, rel_dir, "dvc.yaml"))
    for stage_name, stage in stages.items():
        if isinstance(stage, dict):
            stage_dir = _join(rel_dir, wdirs.get(str(stage_name), "."))
            for section in ("deps", "outs"):
                _add_items(out, project, stage_dir, stage.get(section))
    return out


def _add_items(out: dict[str, set[str]], project: _Project, base_rel: str, items: Any) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        path, md5 = item.get("path"), item.get("md5")
        if not isinstance(path, str) or not isinstance(md5, str) or "://" in path:
            continue
        algorithm = ALGORITHM_MD5 if item.get("hash") == ALGORITHM_MD5 else ALGORITHM_LEGACY
        rel = _normalise(_join(base_rel, path))
        if rel is None:
            continue
        if md5.endswith(".dir"):
            listing = _dir_listing(project.cache, f"{algorithm}:{md5}")
            for relpath, file_md5 in listing:
                file_rel = _normalise(f"{rel}/{relpath}")
                if file_rel is not None:
                    out.setdefault(file_rel, set()).add(f"{algorithm}:{file_md5}")
        elif _MD5.fullmatch(md5):
            out.setdefault(rel, set()).add(f"{algorithm}:{md5}")


def _dir_listing(cache: str, hash_value: str) -> list[tuple[str, str]]:
    """(relpath, md5) of a tracked directory from its ``.dir`` object: a JSON list of
    ``{"md5": …, "relpath": …}``; empty when the object is not in the cache."""
    try:
        doc = json.loads(_read_small(object_path(cache, hash_value)))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(doc, list):
        return []
    out = []
    for entry in doc:
        if isinstance(entry, dict):
            relpath, md5 = entry.get("relpath"), entry.get("md5")
            if isinstance(relpath, str) and isinstance(md5, str) and _MD5.fullmatch(md5):
                out.append((relpath.replace("\\", "/"), md5))
    return out


def _stage_wdirs(yaml: Any, path: str) -> dict[str, str]:
    """Stage name → ``wdir`` from a ``dvc.yaml`` (stages without one are left out)."""
    doc = _load_yaml(yaml, path)
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {
        str(name): stage["wdir"]
        for name, stage in stages.items()
        if isinstance(stage, dict) and isinstance(stage.get("wdir"), str)
    }


def _load_yaml(yaml: Any, path: str) -> Any:
    try:
        return yaml.safe_load(_read_small(path))
    except (OSError, ValueError, RecursionError, yaml.YAMLError):
        return None


def _read_small(path: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(f"{path} is too large to be DVC metadata")
    return data


def _join(base: str, rel: str) -> str:
    return rel if not base or base == "." else f"{base}/{rel}"


def _normalise(rel: str) -> str | None:
    """A repo-relative path without ``.``/``..`` components; None if it leaves the repo."""
    parts: list[str] = []
    for part in rel.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None

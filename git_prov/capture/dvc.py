"""DVC: name DVC-tracked files by the hash DVC gave them — without reading them when they
are links into DVC's cache, after checking their bytes when they are copies.

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
  CRLF to LF (see :class:`DvcDigest`), so the value is the plain MD5 for binary files.

Symlinks name their object themselves. For hard links and copies the candidate hashes
come from the DVC metadata that tracks the file: ``<path>.dvc`` next to the data (or next
to a tracked ancestor directory), the ``outs`` and ``deps`` of ``dvc.lock`` files in the
file's directory or above (paths relative to the stage's ``wdir`` from ``dvc.yaml``), and,
for a tracked directory (``md5: <hex>.dir``), the per-file listing DVC keeps in the cache
object ``<hex>.dir``. Reading that metadata needs PyYAML (the ``yaml`` extra); without it,
hard-linked files and copies are hashed like others. A hard link counts only when the
cache object is the very same inode as the workspace file.

A copy cannot be matched to a hash without reading it: after ``git checkout`` of a
different ``.dvc`` and before ``dvc checkout`` the metadata describes bytes the workspace
does not hold, and nothing cheap (size, times) tells. So a copy's candidates are only a
*claim*: the capture reads the file once, computing DVC's hash alongside its SHA-256, and
names it by DVC's hash only when that equals a candidate (the stat cache keeps both, so
an unchanged file is not read again). Stale metadata therefore never names a file wrongly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat as stat_module
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from git_prov.capture.data_paths import dvc_project_of

# Not DVC's: git's blob id of the bytes (SHA-1 of "blob <size>\0" + bytes), computed from
# the same read for outputs that may later be committed (data manifest ``also``).
ALGORITHM_GIT = "git"
ALGORITHM_MD5 = "md5"
ALGORITHM_LEGACY = "md5-dos2unix"
MAX_METADATA_BYTES = 16 << 20  # a .dvc / dvc.lock / .dir file bigger than this is ignored
_MD5 = re.compile(r"[0-9a-f]{32}")
_NOTHING: dict[str, set[str]] = {}  # no metadata (shared: never modified)
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


@dataclass(frozen=True)
class DvcNames:
    """What DVC says about the files of a manifest.

    ``linked``: rel → hash for files that *are* cache objects (exact without reading).
    ``claimed``: rel → the hashes DVC metadata gives a file that is not (a copy, or a
    hard link to something else): true only if its bytes turn out to have one of them.
    """

    linked: dict[str, str]
    claimed: dict[str, frozenset[str]]


def dvc_names(
    root: str, files: Iterable[StatFile], directories: Iterable[str] | None = None
) -> DvcNames:
    """Links into a DVC cache and DVC's claims about other files (see the module doc).

    Costs one ``.dvc/`` look-up per directory, so a repository without DVC pays next to
    nothing; inside a DVC project, metadata is parsed once per ``.dvc`` / ``dvc.lock``.
    ``directories``, when given, holds every directory the files are in (repo-relative,
    "" for the root): when none of them is in a project, no file is looked at.
    """
    projects = _Projects(root)
    if directories is not None and all(projects.of_directory(d) is None for d in directories):
        return DvcNames({}, {})
    linked: dict[str, str] = {}
    claimed: dict[str, frozenset[str]] = {}
    for f in files:
        project = projects.of(f.rel)
        if project is None:
            continue
        if f.link is not None:
            named = hash_of_cache_path(project.cache, os.path.realpath(f.path))
            if named is not None:
                linked[f.rel] = named
                continue
        candidates = projects.candidates(project, f.rel)
        if not candidates:
            continue
        if f.link is None and f.stat.st_nlink > 1 and stat_module.S_ISREG(f.stat.st_mode):
            cached = (
                c for c in sorted(candidates) if _same_inode(f.stat, object_path(project.cache, c))
            )
            linked_to = next(cached, None)
            if linked_to is not None:
                linked[f.rel] = linked_to
                continue
        claimed[f.rel] = frozenset(candidates)
    return DvcNames(linked, claimed)


def algorithms_of(hashes: Iterable[str]) -> frozenset[str]:
    """The algorithms of ``<algorithm>:<hex>`` values (what to compute to check them)."""
    return frozenset(h.partition(":")[0] for h in hashes)


def confirmed_hash(claimed: Iterable[str], computed: Iterable[str]) -> str | None:
    """The claimed hash the bytes were found to have (computed by :class:`DvcDigest`),
    preferring DVC 3's plain ``md5:``; None when the claim is false."""
    both = set(claimed) & set(computed)
    if not both:
        return None
    return min(both, key=lambda h: (h.partition(":")[0] != ALGORITHM_MD5, h))


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


# --- DVC's hashes of bytes -------------------------------------------------------------------

DVC_BLOCK = 1 << 20  # DVC reads files in blocks of 1 MiB and converts line ends per block
_TEXT_SAMPLE = 512  # DVC looks at this many bytes to tell text from binary
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
_CRLF, _LF = b"\r\n", b"\n"
# How each variant treats a block: never converted (``md5``), converted when the file's
# first block looks like text (DVC 2's ``md5-dos2unix``), or when the block itself does
# (DVC 3 computing ``md5-dos2unix`` for legacy outputs).
_PLAIN, _BY_FILE, _BY_BLOCK = "plain", "by-file", "by-block"


def _looks_like_text(sample: bytes) -> bool:
    """DVC's text heuristic (``istextblock``): empty, or no NUL byte and at most 30 % of
    bytes outside printable ASCII and ``\\n \\r \\t \\f \\b``."""
    if not sample:
        return True
    if b"\x00" in sample:
        return False
    return len(sample.translate(None, _TEXT_CHARS)) / len(sample) <= 0.30


class DvcDigest:
    """DVC's hashes of a file's bytes (``md5`` and/or ``md5-dos2unix``), computed from
    the bytes fed in order, in one pass.

    ``md5-dos2unix`` is the MD5 of each 1 MiB block with CRLF replaced by LF when the file
    looks like text (a CRLF split across two blocks stays). DVC 2 decided "text" once, from
    the file's first 512 bytes; DVC 3 (checking legacy outputs) decides per block, from the
    block's first 512 bytes. Both are computed — they differ only for files whose blocks
    disagree — and either counts. Variants share one MD5 state until a block treats them
    differently (``copy()``), so the usual cost is one MD5 pass, plus a copy of the blocks
    of text files that hold CRLFs.
    """

    def __init__(self, algorithms: Iterable[str], size: int = 0) -> None:
        wanted = set(algorithms)
        # git's blob id needs the size first: that of the stat taken; a file whose byte
        # count turns out different gets no git id (values()).
        self._git = (
            hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
            if ALGORITHM_GIT in wanted
            else None
        )
        self._git_size = size
        self._git_seen = 0
        variants = set()
        if ALGORITHM_MD5 in wanted:
            variants.add(_PLAIN)
        if ALGORITHM_LEGACY in wanted:
            variants |= {_BY_FILE, _BY_BLOCK}
        self._groups: list[tuple[Any, frozenset[str]]] = (
            [(hashlib.md5(usedforsecurity=False), frozenset(variants))] if variants else []
        )
        self._blocks = ALGORITHM_LEGACY in wanted  # needs DVC's block boundaries
        self._pending = bytearray()
        self._file_is_text: bool | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes. Pass whole 1 MiB buffers where possible: those are hashed
        in place, anything else is gathered into blocks first."""
        if self._git is not None:
            self._git.update(data)
            self._git_seen += len(data)
        if not self._blocks:
            for hasher, _ in self._groups:
                hasher.update(data)
            return
        if not self._pending and len(data) == DVC_BLOCK and not isinstance(data, memoryview):
            self._block(data)
            return
        view = memoryview(data)
        while view:
            take = min(DVC_BLOCK - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == DVC_BLOCK:
                self._block(bytes(self._pending))
                self._pending.clear()

    def values(self) -> frozenset[str]:
        """``<algorithm>:<hex>`` for the algorithms asked for (two ``md5-dos2unix`` values
        when DVC 2 and DVC 3 disagree). Call once, after the last :meth:`update`."""
        if self._pending:
            self._block(bytes(self._pending))
            self._pending.clear()
        out = set()
        if self._git is not None and self._git_seen == self._git_size:
            out.add(f"{ALGORITHM_GIT}:{self._git.hexdigest()}")
        for hasher, variants in self._groups:
            digest = hasher.hexdigest()
            for variant in variants:
                algorithm = ALGORITHM_MD5 if variant == _PLAIN else ALGORITHM_LEGACY
                out.add(f"{algorithm}:{digest}")
        return frozenset(out)

    def _block(self, block: bytes | bytearray) -> None:
        block_is_text = _looks_like_text(bytes(block[:_TEXT_SAMPLE]))
        if self._file_is_text is None:
            self._file_is_text = block_is_text
        converted = {_PLAIN: False, _BY_FILE: self._file_is_text, _BY_BLOCK: block_is_text}
        if not any(converted[v] for _, variants in self._groups for v in variants) or (
            block.find(_CRLF) < 0
        ):
            for hasher, _ in self._groups:
                hasher.update(block)
            return
        unix = block.replace(_CRLF, _LF)
        groups = []
        for hasher, variants in self._groups:
            as_is = frozenset(v for v in variants if not converted[v])
            if as_is and as_is != variants:
                other = hasher.copy()
                other.update(unix)
                groups.append((other, variants - as_is))
            hasher.update(block if as_is else unix)
            groups.append((hasher, as_is or variants))
        self._groups = groups


def hash_like(chunks: Iterable[bytes], like: str) -> str | None:
    """The hash of the bytes ``chunks`` yields in DVC's algorithm of ``like`` (``md5:…``
    or ``md5-dos2unix:…``): ``like`` itself when the bytes have it (either DVC 2 or DVC 3
    reading of ``md5-dos2unix``), else the value they have. None for other algorithms.
    Used to verify a recorded DVC hash again (``check``, ``reproduce``)."""
    algorithm = like.partition(":")[0]
    if algorithm not in (ALGORITHM_MD5, ALGORITHM_LEGACY):
        return None
    digest = DvcDigest([algorithm])
    for chunk in chunks:
        digest.update(chunk)
    values = digest.values()
    return like if like in values else min(values)


def file_chunks(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The bytes of a file in DVC's 1 MiB blocks."""
    with open(path, "rb") as handle:
        while chunk := handle.read(DVC_BLOCK):
            yield chunk


# --- projects and their metadata -------------------------------------------------------------


class _Projects:
    """The DVC projects of a repository, found from the directories files live in."""

    def __init__(self, root: str):
        self.root = root
        self._project_of: dict[str, str | None] = {}  # directory → its project's, if any
        self._projects: dict[str, _Project] = {}  # by the directory holding its .dvc/
        self._parsed: dict[str, dict[str, set[str]]] = {}
        self._around_dir: dict[str, list[dict[str, set[str]]]] = {}
        self._listed: dict[str, frozenset[str]] = {}
        self._yaml: Any = None  # the module, once a file inside a project needs it
        self._yaml_loaded = False

    def of(self, rel: str) -> _Project | None:
        """The project whose ``.dvc/`` is in the closest directory above ``rel``."""
        return self.of_directory(posix_dirname(rel))

    def of_directory(self, directory: str) -> _Project | None:
        """The project whose ``.dvc/`` is in ``directory`` or the closest one above it."""
        where = dvc_project_of(self.root, directory, self._project_of)
        if where is None:
            return None
        project = self._projects.get(where)
        if project is None:
            dot_dvc = os.path.join(self.root, where, ".dvc")
            project = self._projects[where] = _Project(where, _cache_dir(dot_dvc))
        return project

    def candidates(self, project: _Project, rel: str) -> set[str]:
        """The hashes DVC metadata gives the file ``rel``: from ``<p>.dvc`` for ``rel`` and
        each directory above it, and from ``dvc.lock`` in each directory above it, up to
        the project's root. Empty without PyYAML."""
        if not self._yaml_loaded:
            self._yaml_loaded = True
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                yaml = None
            self._yaml = yaml
        if self._yaml is None:
            return set()
        directory = posix_dirname(rel)
        hashes = set(self._metadata(project, f"{rel}.dvc", directory).get(rel, ()))
        for metadata in self._around(project, directory):
            hashes.update(metadata.get(rel, ()))
        return hashes

    def _around(self, project: _Project, directory: str) -> list[dict[str, set[str]]]:
        """The metadata that may name files in ``directory`` besides their own ``.dvc``:
        ``dvc.lock`` there and in each directory above, and ``<d>.dvc`` of each of those
        directories, up to the project's root (worked out once per directory)."""
        around = self._around_dir.get(directory)
        if around is None:
            around = [self._metadata(project, _join(directory, "dvc.lock"), directory)]
            if directory and directory != project.rel:
                parent = posix_dirname(directory)
                around.append(self._metadata(project, f"{directory}.dvc", parent))
                around += self._around(project, parent)
            around = [metadata for metadata in around if metadata]
            self._around_dir[directory] = around
        return around

    def _metadata(self, project: _Project, rel: str, rel_dir: str) -> dict[str, set[str]]:
        """The paths one ``.dvc`` or ``dvc.lock`` file in ``rel_dir`` gives hashes for (read
        once; {} when there is no such file)."""
        if rel.rpartition("/")[2] not in self._metadata_names(rel_dir):
            return _NOTHING
        if rel not in self._parsed:
            self._parsed[rel] = _read_metadata(self.root, project, rel, rel_dir, self._yaml)
        return self._parsed[rel]

    def _metadata_names(self, directory: str) -> frozenset[str]:
        """The ``*.dvc`` and ``dvc.lock`` names in ``directory``: listed once, which is
        cheaper than looking for ``<file>.dvc`` next to each of many data files."""
        names = self._listed.get(directory)
        if names is None:
            try:
                with os.scandir(os.path.join(self.root, directory)) as entries:
                    names = frozenset(
                        e.name for e in entries if e.name.endswith(".dvc") or e.name == "dvc.lock"
                    )
            except OSError:
                names = frozenset()
            self._listed[directory] = names
        return names


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

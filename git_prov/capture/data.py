"""Data manifests: the exact bytes of the files a run declared, found as cheaply as possible.

Each declared path (a file or a directory, walked recursively) becomes one
:class:`~git_prov.model.manifest.DataEntry` per file, whose hash comes from the cheapest
source that is still exact:

* ``git`` — a tracked file whose working-tree bytes git vouches for is named by its blob id
  from the index, without reading it;
* ``lfs`` — a git-LFS pointer file is named by the object it points to;
* ``annex`` / ``dvc`` — a file that is a link into git-annex's or DVC's content-addressed
  store is named by the key or hash that store gave it (:mod:`git_prov.capture.annex`,
  :mod:`git_prov.capture.dvc`), without reading it; a DVC-tracked copy is named by the
  hash DVC's metadata gives it once its bytes are found to have it (read once, with the
  SHA-256, and remembered by the stat cache);
* ``read`` — anything else is hashed with SHA-256, or taken from the stat cache when its
  stat data has not changed since it was last read.

Data usually lives in git-ignored directories and is often symlinked in from elsewhere, so
ignored files are included and symlinks are followed (the link target is recorded).
"""

from __future__ import annotations

import errno
import operator
import os
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from git_prov.capture.data_paths import check_name as _check_name
from git_prov.capture.data_paths import declared_paths
from git_prov.capture.data_paths import show as _show
from git_prov.capture.digests import HashJob, KeepSink, StatKey
from git_prov.capture.dvc import ALGORITHM_GIT, algorithms_of, confirmed_hash, dvc_names
from git_prov.capture.hashing import hash_files
from git_prov.capture.racy import RACY_NS
from git_prov.errors import BadPath, ProvError, RepositoryProblem
from git_prov.model.lfs_pointer import LFS_POINTER_MAX
from git_prov.model.manifest import (
    MODE_EXECUTABLE,
    MODE_FILE,
    SOURCE_ANNEX,
    SOURCE_DVC,
    SOURCE_GIT,
    SOURCE_LFS,
    SOURCE_READ,
    DataEntry,
    DataManifest,
)
from git_prov.progress import NO_PROGRESS, Progress
from git_prov.store.gitcli import git_env, object_headers

if TYPE_CHECKING:
    from git_prov.capture.annex import AnnexKey

# Smallest possible LFS pointer: the version line, "oid sha256:<64 hex>" and "size 0".
# Tracked files smaller than this need not be opened to rule out being a pointer.
_LFS_POINTER_MIN = 125
_INDEX_MODES = {b"100644", b"100755"}  # regular files; not symlinks (120000) or submodules


# Outputs up to this size also get their git blob id (``also``): an output later committed
# to git is then recognised when a later run reads it under that name. Bigger files are
# rarely committed to git itself (hosts refuse them; LFS names them by SHA-256 anyway).
GIT_ID_MAX = 16 << 20

_GIT_ID = frozenset({ALGORITHM_GIT})

# A declared output modified this recently before the run could be rewritten during it
# without its stat data changing (coarse timestamps): files up to this size are hashed
# before the run to tell; bigger ones are "unknown".
RACY_HASH_MAX = 64 << 20


@dataclass(frozen=True)
class OutputsBefore:
    """The declared outputs as they were before the command started, to tell afterwards
    which files the run wrote (:func:`build_manifest` ``before=``).

    ``stats``: rel → stat data of every file found; ``digests``: rel → hash of the racy
    ones (modified just before); ``unknown``: declared paths or files whose earlier state
    could not be taken (their ``written`` stays unknown).
    """

    stats: Mapping[str, StatKey]
    digests: Mapping[str, str]
    unknown: frozenset[str]


def outputs_before(
    repo_root: Path, paths: Sequence[str], *, cache_path: Path | None = None
) -> OutputsBefore:
    """Stat the declared output ``paths`` (repo-relative) before the command runs: a walk
    and one ``stat`` per file, plus a hash of the few files modified in the last seconds.
    Never fails: a path that cannot be walked is only marked unknown."""
    root = os.path.abspath(repo_root)
    taken_ns = time.time_ns()
    files: dict[str, _File] = {}
    unknown: set[str] = set()
    for rel in paths:
        found: dict[str, _File] = {}
        try:
            _collect(root, rel, (), True, found, [])
        except ProvError:
            unknown.add(rel)
            continue
        files.update(found)
    racy = [
        f
        for f in files.values()
        if max(f.stat.st_mtime_ns, f.stat.st_ctime_ns) > taken_ns - RACY_NS
    ]
    digests: dict[str, str] = {}
    small = [f for f in racy if f.stat.st_size <= RACY_HASH_MAX]
    unknown.update(f.rel for f in racy if f.stat.st_size > RACY_HASH_MAX)
    if small:
        try:
            hashed = hash_files(
                [HashJob(f.path, f.rel, StatKey.of(f.stat)) for f in small], cache_path=cache_path
            )
            digests = {f.rel: d.hash for f, d in zip(small, hashed, strict=True)}
        except ProvError:
            unknown.update(f.rel for f in small)
    return OutputsBefore(
        {rel: StatKey.of(f.stat) for rel, f in files.items()}, digests, frozenset(unknown)
    )


def _written(
    files: Mapping[str, _File], before: OutputsBefore, cache_path: Path | None
) -> dict[str, bool | None]:
    """rel → whether the run wrote each file found now (see :class:`OutputsBefore`)."""
    out: dict[str, bool | None] = {}
    recheck: list[_File] = []
    for rel, f in files.items():
        earlier = before.stats.get(rel)
        if rel in before.unknown or any(rel.startswith(u + "/") for u in before.unknown):
            out[rel] = None
        elif earlier is None or earlier != StatKey.of(f.stat):
            out[rel] = True  # new, or changed since: the run wrote it
        elif rel in before.digests:
            recheck.append(f)  # same stat data, but too recent for that to prove anything
        else:
            out[rel] = False
    if recheck:
        try:
            hashed = hash_files(
                [HashJob(f.path, f.rel, StatKey.of(f.stat)) for f in recheck],
                cache_path=cache_path,
            )
            for f, digest in zip(recheck, hashed, strict=True):
                out[f.rel] = digest.hash != before.digests[f.rel]
        except ProvError:
            out.update((f.rel, None) for f in recheck)
    return out


class _File(NamedTuple):  # a tuple: cheap to build for every file of a big dataset
    rel: str  # repo-relative POSIX path: the manifest's name for the file
    path: str  # absolute path to open
    stat: os.stat_result  # of the file itself, symlinks followed
    link: str | None  # readlink() of the path, when it is a symlink
    # A locked git-annex file whose content is not here (``stat`` is the link's lstat).
    absent: bool = False

    @property
    def mode(self) -> str:
        return MODE_EXECUTABLE if self.stat.st_mode & stat.S_IXUSR else MODE_FILE


def build_manifest(
    repo_root: Path,
    paths: Sequence[str],
    *,
    cwd: Path | None = None,
    cache_path: Path | None = None,
    missing_ok: bool = False,
    exclude: Sequence[str] = (),
    progress: Progress = NO_PROGRESS,
    workers: int | None = None,
    keep: Callable[[str, int], bool] | None = None,
    keeper: KeepSink | None = None,
    before: OutputsBefore | None = None,
    git_ids: bool = False,
) -> DataManifest:
    """Describe the declared data ``paths`` of the working tree at ``repo_root``.

    ``paths`` are as the user typed them: relative to ``cwd`` (default ``repo_root``) or
    absolute, files or directories, and must lie inside the repository (lexically: a
    symlink inside it may point anywhere). ``exclude`` lists repo-relative path prefixes
    to leave out. A missing path (or dangling symlink) is an error unless ``missing_ok``,
    in which case it is listed in the manifest's ``missing``. ``cache_path`` names the
    stat cache (none: read every file not vouched for by git); ``workers`` bounds the
    hashing threads; ``progress`` hears about the bytes read. ``keep`` (repo-relative path,
    size → bool) chooses files whose bytes ``keeper`` keeps, from the same read that hashes
    them; their entries say how they were kept (files git, LFS, DVC or git-annex already
    hold are not kept again). With ``before`` (outputs: what :func:`outputs_before` saw
    before the command) each entry says whether the run ``written`` it. With ``git_ids``,
    files hashed as SHA-256 of up to :data:`GIT_ID_MAX` bytes also get their git blob id
    in ``also``, computed from the same read (and remembered by the stat cache).

    Raises :class:`BadPath` for a path outside the repository, missing, unreadable or not
    a regular file or directory, and :class:`RepositoryProblem` when git cannot list the
    repository's index.
    """
    listing = list_data(repo_root, paths, cwd=cwd, missing_ok=missing_ok, exclude=exclude)
    return describe_data(
        listing,
        cache_path=cache_path,
        progress=progress,
        workers=workers,
        keep=keep,
        keeper=keeper,
        before=before,
        git_ids=git_ids,
    )


@dataclass(frozen=True)
class DataListing:
    """The files of some declared data paths and their stat data: the walk that
    :func:`build_manifest` starts with (:func:`list_data`), before anything is hashed."""

    root: str  # the repository's root, absolute
    declared: tuple[str, ...]  # the declared paths, repo-relative, sorted
    files: Mapping[str, _File]  # rel → file, in walk order (sorted within each directory)
    missing: tuple[str, ...]  # declared paths (or files found in them) that are not there
    present: tuple[str, ...]  # declared paths that exist
    directories: tuple[str, ...]  # every directory a file was found in ("" for the root)
    started_ns: int  # the time just before the first stat
    # Every directory walked, with its stat data taken before it was read (None when it was
    # reached through a symlink): what tells that no file was added or removed since.
    directory_stats: tuple[tuple[str, os.stat_result | None], ...] = ()


def list_data(
    repo_root: Path,
    paths: Sequence[str],
    *,
    cwd: Path | None = None,
    missing_ok: bool = False,
    exclude: Sequence[str] = (),
) -> DataListing:
    """Walk the declared data ``paths`` (see :func:`build_manifest` for the arguments and
    the errors): every file found and its stat data, nothing read."""
    root, declared = declared_paths(repo_root, paths, cwd=cwd)
    excludes = [e for e in (_clean_prefix(x) for x in exclude) if e]

    started_ns = time.time_ns()
    files: dict[str, _File] = {}
    missing: list[str] = []
    present: list[str] = []  # declared paths that exist, as git pathspecs
    directories: list[str] = []
    dir_stats: list[tuple[str, os.stat_result | None]] = []
    for rel in declared:
        if _excluded(rel, excludes):
            continue
        if _collect(root, rel, excludes, missing_ok, files, missing, directories, dir_stats):
            present.append(rel)
    return DataListing(
        root,
        declared,
        files,
        tuple(missing),
        tuple(present),
        tuple(dict.fromkeys(directories)),
        started_ns,
        tuple(dir_stats),
    )


def describe_data(
    listing: DataListing,
    *,
    cache_path: Path | None = None,
    progress: Progress = NO_PROGRESS,
    workers: int | None = None,
    keep: Callable[[str, int], bool] | None = None,
    keeper: KeepSink | None = None,
    before: OutputsBefore | None = None,
    git_ids: bool = False,
) -> DataManifest:
    """The manifest of the files ``listing`` found (see :func:`build_manifest`)."""
    root, declared, present = listing.root, listing.declared, listing.present
    files = dict(listing.files)
    missing = list(listing.missing)
    absent = {rel: files.pop(rel) for rel in [f.rel for f in files.values() if f.absent]}
    vouched = _vouched_by_git(root, present, files) if files else {}
    stored, claimed = _named_by_store(
        root,
        [f for f in files.values() if f.rel not in vouched] if vouched else list(files.values()),
        listing.directories,
    )

    # Tracked files git vouches for are named by their blob id; only those small enough to
    # be LFS pointers are opened, to tell. Files git-annex or DVC name are not opened.
    # Everything else is hashed (or found in the cache), with DVC's MD5 as well where DVC
    # claims one.
    to_hash = (
        [
            f
            for f in files.values()
            if f.rel not in stored
            and (f.rel not in vouched or _LFS_POINTER_MIN <= f.stat.st_size < LFS_POINTER_MAX)
        ]
        if stored or vouched
        else list(files.values())
    )
    keeping = (
        {
            f.rel
            for f in to_hash
            if f.rel not in vouched and f.rel not in claimed and keep(f.rel, f.stat.st_size)
        }
        if keep is not None and keeper is not None
        else set()
    )
    nothing: frozenset[str] = frozenset()
    if claimed or git_ids or keeping:
        jobs = [
            HashJob(
                f.path,
                f.rel,
                StatKey.of(f.stat),
                (algorithms_of(claimed[f.rel]) if f.rel in claimed else nothing)
                | (_GIT_ID if git_ids and f.stat.st_size <= GIT_ID_MAX else nothing),
                f.rel in keeping,
            )
            for f in to_hash
        ]
    else:  # (the common case, 20k files and more: the tuples made without a call each)
        new, job_type, key_type = tuple.__new__, HashJob, StatKey
        jobs = [
            new(
                job_type,
                (
                    f.path,
                    f.rel,
                    new(key_type, (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)),
                    nothing,
                    False,
                ),
            )
            for f in to_hash
            for s in (f.stat,)
        ]
    digests = hash_files(
        jobs, cache_path=cache_path, workers=workers, progress=progress, keeper=keeper
    )

    entries = []
    if not (vouched or stored or claimed or keeping):
        # Every file hashed (to_hash is files.values()), none claimed by DVC, none kept.
        for f, hashed in zip(to_hash, digests, strict=True):
            mode = MODE_EXECUTABLE if f.stat.st_mode & stat.S_IXUSR else MODE_FILE
            if hashed.lfs:
                # The working tree holds the pointer: the content was never downloaded.
                entries.append(
                    DataEntry(
                        f.rel, hashed.size, hashed.hash, mode, SOURCE_LFS, f.link, present=False
                    )
                )
            elif hashed.dvc:
                also = tuple(sorted(h for h in hashed.dvc if h.startswith("git:")))
                entries.append(
                    DataEntry(f.rel, hashed.size, hashed.hash, mode, SOURCE_READ, f.link, also=also)
                )
            else:
                entries.append(
                    DataEntry(f.rel, hashed.size, hashed.hash, mode, SOURCE_READ, f.link)
                )
    else:
        by_rel = {f.rel: d for f, d in zip(to_hash, digests, strict=True)}
        for f in files.values():
            digest = by_rel.get(f.rel)
            if digest is not None and digest.lfs:
                # The working tree holds the pointer: the content was never downloaded.
                entries.append(
                    DataEntry(
                        f.rel, digest.size, digest.hash, f.mode, SOURCE_LFS, f.link, present=False
                    )
                )
            elif f.rel in vouched:
                entries.append(
                    DataEntry(
                        f.rel, f.stat.st_size, f"git:{vouched[f.rel]}", f.mode, SOURCE_GIT, f.link
                    )
                )
            elif f.rel in stored:
                hash_value, source = stored[f.rel]
                entries.append(DataEntry(f.rel, f.stat.st_size, hash_value, f.mode, source, f.link))
            else:
                assert digest is not None
                confirmed = confirmed_hash(claimed[f.rel], digest.dvc) if f.rel in claimed else None
                if confirmed is not None:
                    entries.append(
                        DataEntry(f.rel, digest.size, confirmed, f.mode, SOURCE_DVC, f.link)
                    )
                else:
                    kept = keeper.kind_of(digest.hash) if keeper and f.rel in keeping else None
                    also = (
                        tuple(sorted(h for h in digest.dvc if h.startswith("git:")))
                        if digest.dvc
                        else ()
                    )
                    entries.append(
                        DataEntry(
                            f.rel,
                            digest.size,
                            digest.hash,
                            f.mode,
                            SOURCE_READ,
                            f.link,
                            kept,
                            also=also,
                        )
                    )
    for f in absent.values():
        key = _annex_key(f.link or "")
        assert key is not None
        entries.append(
            DataEntry(
                f.rel, key.size or 0, key.hash, MODE_FILE, SOURCE_ANNEX, f.link, present=False
            )
        )
    if before is not None:
        written = _written(files, before, cache_path)
        entries = [replace(e, written=written.get(e.path)) for e in entries]
    return DataManifest.build(declared, entries, missing)


def absent_warnings(manifest: DataManifest, role: str) -> list[str]:
    """One warning per kind of declared ``role`` data (``input``, ``output``) whose content
    was not in the working tree (``present = false``), saying how to get it."""
    out = []
    for source in (SOURCE_LFS, SOURCE_ANNEX):
        paths = [e.path for e in manifest.entries if e.present is False and e.source == source]
        if not paths:
            continue
        few = paths[:5]
        words = " ".join(_shell_word(p) for p in few)
        if source == SOURCE_LFS:
            what = "git-LFS pointer file (the content was never downloaded)"
            fix = "git lfs pull" + (
                f" --include={_shell_word(','.join(few))}" if few == paths else ""
            )
        else:
            what = "git-annex file whose content is not present"
            fix = "git annex get " + (words if few == paths else "PATH…")
        if len(paths) == 1:
            head = f"{role} {words} is a {what}"
        else:
            more = f" … and {len(paths) - len(few)} more" if len(paths) > len(few) else ""
            head = f"{len(paths)} {role} files ({words}{more}) are each a {what}"
        out.append(f"{head}; the record names the content it stands for — run `{fix}`")
    return out


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _named_by_store(
    root: str, files: Sequence[_File], directories: Sequence[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, frozenset[str]]]:
    """rel → (hash, source) for files that are links into git-annex's or DVC's store, and
    rel → the hashes DVC claims for other files (true only if their bytes agree).
    ``directories``: every directory the files are in."""
    from git_prov.capture.annex import annexed_hashes

    named = {rel: (h, SOURCE_ANNEX) for rel, h in annexed_hashes(files).items()}
    dvc = dvc_names(root, [f for f in files if f.rel not in named] if named else files, directories)
    named.update((rel, (h, SOURCE_DVC)) for rel, h in dvc.linked.items())
    return named, dvc.claimed


# --- declared paths -----------------------------------------------------------------------


def _clean_prefix(prefix: str) -> str:
    return "/".join(p for p in prefix.replace(os.sep, "/").split("/") if p not in ("", "."))


def _excluded(rel: str, excludes: Sequence[str]) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in excludes)


# --- walking ------------------------------------------------------------------------------


def _collect(
    root: str,
    rel: str,
    excludes: Sequence[str],
    missing_ok: bool,
    files: dict[str, _File],
    missing: list[str],
    directories: list[str] | None = None,
    dir_stats: list[tuple[str, os.stat_result | None]] | None = None,
) -> bool:
    """Add the files of one declared path; False when it does not exist. ``directories``
    hears of every directory files are looked for in, ``dir_stats`` of every directory
    walked and its stat data (see :class:`DataListing`)."""
    path = os.path.join(root, rel)
    found = _stat(path, rel, missing_ok, declared=True)
    if found is None:
        missing.append(rel)
        return False
    st, link = found
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):  # (see _stat: annexed, absent)
        files[rel] = _File(rel, path, st, link, absent=stat.S_ISLNK(st.st_mode))
        if directories is not None:
            directories.append(rel.rpartition("/")[0])
    elif stat.S_ISDIR(st.st_mode):
        top = (rel, None if link is not None else st)
        _walk(rel, path, st, excludes, missing_ok, files, missing, directories, dir_stats, top)
    else:
        raise BadPath(
            f"{_show(rel)}: not a regular file or a directory",
            "declare the files the command reads",
        )
    return True


_NAME = operator.attrgetter("name")
_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK


def _walk(
    top_rel: str,
    top_path: str,
    top_stat: os.stat_result,
    excludes: Sequence[str],
    missing_ok: bool,
    files: dict[str, _File],
    missing: list[str],
    directories: list[str] | None = None,
    dir_stats: list[tuple[str, os.stat_result | None]] | None = None,
    top: tuple[str, os.stat_result | None] | None = None,
) -> None:
    """Add every file under a directory: sorted, hidden files included, ``.git`` skipped,
    symlinks followed; a directory already on the way down (a symlink cycle) is skipped.
    ``dir_stats`` hears of each directory before it is read (``top``: the first one's
    stat data, None when it is reached through a symlink)."""
    ancestors: tuple[tuple[int, int], ...] = ((top_stat.st_dev, top_stat.st_ino),)
    stack = [(top_rel, top_path, ancestors, top[1] if top is not None else None)]
    while stack:
        rel, path, ancestors, seen = stack.pop()
        if directories is not None:
            directories.append(rel)
        if dir_stats is not None:
            dir_stats.append((rel, seen))
        try:
            with os.scandir(path) as it:
                children = sorted(it, key=_NAME)
        except PermissionError:
            raise BadPath(
                f"{_show(rel)}: permission denied (directory)",
                "make the directory readable, or leave it out",
            ) from None
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we walked: whatever was in it is not there to record
        subdirs = []
        # Names are checked once per directory; one that is not UTF-8 is reported below,
        # in order, as before (the common case costs one encode per directory).
        names_ok = _utf8("".join([rel, *map(_NAME, children)]))
        prefix = rel + "/"
        for child in children:
            name = child.name
            if name == ".git":
                continue
            child_rel = prefix + name
            if excludes and _excluded(child_rel, excludes):
                continue
            if not names_ok:
                _check_name(child_rel)
            child_path = child.path
            try:  # the common case, a file or directory: one lstat
                st = os.lstat(child_path)
                link = None
                kind = st.st_mode & _S_IFMT
            except OSError:
                kind = _S_IFLNK
            if kind == _S_IFLNK:  # a symlink (followed), or an error to report
                found = _stat(child_path, child_rel, missing_ok, declared=False)
                if found is None:
                    missing.append(child_rel)
                    continue
                st, link = found
                kind = st.st_mode & _S_IFMT
            if kind == _S_IFREG:
                files[child_rel] = _File(child_rel, child_path, st, link)
            elif kind == _S_IFDIR:
                identity = (st.st_dev, st.st_ino)
                if identity not in ancestors:
                    seen = st if link is None else None
                    subdirs.append((child_rel, child_path, (*ancestors, identity), seen))
            elif kind == _S_IFLNK:  # see _stat: annexed, content absent
                files[child_rel] = _File(child_rel, child_path, st, link, absent=True)
            # Sockets, FIFOs and devices inside a data directory are not data we can hash.
        stack.extend(reversed(subdirs))


def _stat(
    path: str, rel: str, missing_ok: bool, *, declared: bool
) -> tuple[os.stat_result, str | None] | None:
    """(stat with symlinks followed, link target or None); None if missing and allowed.

    A link into git-annex's object store whose content is not present is not broken: it
    is data whose content is elsewhere. It is returned with the link's own ``lstat``
    (so ``S_ISLNK``), for the manifest to record as not present."""
    link: str | None = None
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(path)
            _check_name(link, f"{rel} → {link}")
            st = os.stat(path)
    except PermissionError:
        raise BadPath(
            f"{_show(rel)}: permission denied",
            "make it readable, or leave it out of the declared data",
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise BadPath(f"{_show(rel)}: cannot be read ({exc.strerror})") from None
        if link is not None and exc.errno == errno.ENOENT and _annex_key(link) is not None:
            return st, link
        if missing_ok:
            return None
        if link is not None:
            raise BadPath(
                f"{_show(rel)}: broken symbolic link (to {_show(link)})", "fix or remove the link"
            ) from None
        if declared:
            raise BadPath(
                f"{_show(rel)}: no such file or directory",
                "check the path (relative paths start at the current directory)",
            ) from None
        raise BadPath(
            f"{_show(rel)}: disappeared while the data was being listed",
            "record the run again once the data stops changing",
        ) from None
    return st, link


def _annex_key(link: str) -> AnnexKey | None:
    from git_prov.capture.annex import key_of_link

    return key_of_link(link) if "annex" in link else None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- what git vouches for -----------------------------------------------------------------


def _vouched_by_git(root: str, pathspecs: Sequence[str], files: dict[str, _File]) -> dict[str, str]:
    """Found files whose working-tree bytes equal their index blob: rel → blob id.

    ``git ls-files`` gives the index entries. Which of them differ from the working tree
    is asked of ``git status``, because it refreshes stale stat data in memory and
    compares content, so it reports only real modifications (``git diff-files`` would
    list every touched-but-unchanged file, and refreshing the index ourselves would write
    it, racing the user's own git commands). ``--no-optional-locks`` keeps status from
    writing the index either. Last, files whose size differs from their blob's are left
    out: their checkout went through a filter (LFS smudge, eol conversion), so the blob
    does not name the bytes the run read.
    """
    common = ["--literal-pathspecs", "--no-optional-locks"]
    # The two are independent: run them side by side.
    listing = _git_start(root, *common, "ls-files", "-v", "--stage", "-z", "--", *pathspecs)
    try:
        status = _git_start(
            root,
            *common,
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            "--no-renames",
            "--ignore-submodules=all",
            "--",
            *pathspecs,
        )
    finally:
        index = _git_finish(listing, "ls-files")
    changed = _git_finish(status, "status")

    modified: set[str] = set()
    for record in changed.split(b"\0"):
        # "XY path": Y is the working tree against the index ("U" on either side: unmerged).
        if len(record) > 3 and record[1:2] != b" ":
            modified.add(os.fsdecode(record[3:]))

    candidates: dict[str, str] = {}
    for record in index.split(b"\0"):
        # "<tag> <mode> <blob> <stage>\t<path>"; tag "H" is an ordinary entry (not
        # assume-unchanged or skip-worktree, whose working-tree state git does not check).
        meta, tab, name = record.partition(b"\t")
        if not tab:
            continue
        tag, mode, blob, stage = meta.split(b" ")
        rel = os.fsdecode(name)
        f = files.get(rel)
        if (
            tag == b"H"
            and mode in _INDEX_MODES
            and stage == b"0"
            and f is not None
            and f.link is None
            and rel not in modified
        ):
            candidates[rel] = blob.decode("ascii")
    if not candidates:
        return {}

    sizes = _blob_sizes(root, set(candidates.values()))
    return {
        rel: blob for rel, blob in candidates.items() if sizes.get(blob) == files[rel].stat.st_size
    }


def _blob_sizes(root: str, blobs: set[str]) -> dict[str, int]:
    """Sizes of blobs, read from object headers (one ``git cat-file`` for all of them)."""
    # A blob missing from a partial clone is a size we do without, not a network fetch.
    found = object_headers(root, sorted(blobs), env={"GIT_NO_LAZY_FETCH": "1"})
    return {oid: size for oid, (kind, size) in found.items() if kind == "blob"}


def _git_start(root: str, *args: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["git", *args],
            env=git_env(),
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise RepositoryProblem(
            f"cannot run git: {exc.strerror}", "install git and make sure it is on PATH"
        ) from None


def _git_finish(proc: subprocess.Popen[bytes], what: str) -> bytes:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RepositoryProblem(f"git {what} failed: {err.decode(errors='replace').strip()}")
    return out

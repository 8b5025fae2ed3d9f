"""Unchanged input data costs a walk: the manifest stored for the same files is reused.

Re-recording the same declared inputs (a directory of 20k unchanged files) would otherwise
look up every file in the stat cache, build every manifest entry and serialise the same
manifest again. Instead, ``<git common dir>/prov/data-memo/<key>`` (one small file per set
of declared paths of a working tree) holds a *fingerprint* of the last listing — every
file's name, mode, size, mtime, ctime, inode, device and link target, in walk order, as
git's index keeps them — and the id of the manifest stored for it. A re-record walks and
``stat``\\ s the files (:func:`~git_prov.capture.data.list_data`) and, when the fingerprint
is the same, names that manifest without reading or hashing anything.

What the manifest depends on besides the files' stat data is checked too, and anything
unsure falls back to the full path (which then writes a new memo):

* racy files (git's rule): a listing with a file modified within :data:`RACY_NS` before the
  walk is never remembered, since it could change again without its stat data changing;
* git: only manifests whose every entry was hashed from its bytes (``source = "read"``,
  present, not kept) are remembered. Such a manifest stays right while git's index is the
  one seen then (same stat data, not racy), or while ``git ls-files`` lists no file under
  the declared paths (no file can then be named by its blob id);
* DVC and git-annex: no ``.dvc/`` in or above any directory of the files (DVC metadata
  could name them); annexed files are links, whose targets are in the fingerprint.

Where GNU ``find`` is at hand, the fingerprint is taken without a walk in Python
(:func:`stat_digest`): ``find`` lstats every file in C and prints the same stat data (and
the directories'); a re-record of unchanged files then costs that one process, about what
``git status`` takes to lstat as many tracked files. Its output is hashed as it streams,
and used only when it can vouch for the walk the manifest was built from: regular files
and directories only (a symlink, whose target the walk follows, or anything else sends
the record the Python way), no racy file, no error, and its first line agreeing with the
declared path's own ``lstat`` (a ``find`` printing other fields is never trusted).

Cheaper still, once the files have stayed unchanged past the racy window: a *files index*
(see :func:`write_files_index`) lets ``git diff-files`` lstat and compare them in C, with
an lstat of each directory in Python; ``find`` then runs only when that check fails.

The memo is only a cache: a memo that cannot be read or written is a miss, never an error.
A hit touches the file (its mtime says when it was last of use), and ``git prov gc`` removes
memos unused for :data:`UNUSED_DAYS` days, those no version can use and partial writes
(:func:`unused_memos`), and the files indexes no memo names (:func:`orphaned_indexes`): a
removed memo only costs the next record of those files the full path, a removed files
index the next record a ``find``, never a wrong manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import operator
import os
import re
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from git_prov import __version__
from git_prov.capture.racy import RACY_NS
from git_prov.errors import ProvError
from git_prov.model.ids import is_hex_oid
from git_prov.model.manifest import MANIFEST_VERSION, SOURCE_READ, DataManifest
from git_prov.store.gitcli import git_env

if TYPE_CHECKING:
    from git_prov.capture.data import DataListing

MEMO_VERSION = 3  # 3: the files index
_MEMO_DIR = "data-memo"
_INDEX_DIR = "data-index"  # files indexes, named by their checksum (see write_files_index)
_INDEX_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
UNUSED_DAYS = 30  # gc removes a memo neither written nor hit for this long
_PARTIAL_HOURS = 1  # …and a partial write (``<memo>.<pid>.tmp``) left this long
_INDEX_PARTIAL = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\.[0-9]+\.tmp")
# Writers of files indexes and memos share this lock; gc's sweep of the files indexes no
# memo names takes it alone (see _writing and orphaned_indexes).
_INDEX_LOCK = "lock"
_WRITER_WAIT = 2.0  # seconds a writer waits for gc's sweep (then writes anyway: a cache)
_SWEEP_WAIT = 10.0  # seconds gc waits for writers (then leaves the sweep to the next gc)

IndexStat = tuple[int, int, int, int, int]
DirStat = list[Any]  # [rel, mode, mtime ns, ctime ns, inode, device] (as JSON keeps it)
_MTIME = operator.itemgetter(3)
# A files index check under way (see _start_files_check): git, the index held open, its path.
_FilesCheck = tuple[subprocess.Popen[bytes], int, Path]


class DataMemo:
    """The memo of one set of declared input paths, for one listing of them."""

    root: str
    declared: tuple[str, ...]
    path: Path
    _prov_dir: Path
    stat_digest: str | None
    _started_ns: int
    _finding: subprocess.Popen[bytes] | None
    _checking: _FilesCheck | None
    _doc: dict[str, Any] | None
    _files_index: tuple[str, list[DirStat]] | None

    def __init__(self, prov_dir: Path, index: Path | None, listing: DataListing) -> None:
        """``index``: git's index file for the working tree (None when git uses another,
        e.g. ``GIT_INDEX_FILE``: every hit then asks ``git ls-files``)."""
        self._start(prov_dir, index, listing.root, listing.declared, listing.started_ns)
        self.listed(listing)

    @classmethod
    def before_walk(
        cls, prov_dir: Path, index: Path | None, root: str, declared: tuple[str, ...]
    ) -> DataMemo:
        """The memo of ``declared`` (as :func:`~git_prov.capture.data.declared_paths`
        gives them) before any walk: :meth:`recall` answers from the memo's files index
        (:func:`_start_files_check`) or from :func:`stat_digest` alone; without either,
        :meth:`listed` must give the walk first. With no memo to recall yet, ``find``
        runs while the caller walks, and :meth:`listed` waits for it (before anything is
        read: its stat data are still the files' as read)."""
        return cls.early(prov_dir, index, root, declared).settle()

    @classmethod
    def early(
        cls, prov_dir: Path, index: Path | None, root: str, declared: tuple[str, ...]
    ) -> DataMemo:
        """:meth:`before_walk` in two steps, for the caller to do other work while git
        checks the files index: this one starts the check (:meth:`settle` ends it, and
        :meth:`abandon` when the memo is not wanted after all)."""
        memo = cls.__new__(cls)
        memo._start(prov_dir, index, root, declared, time.time_ns())
        doc = memo._doc = _read_memo(memo.path)
        memo._checking = _start_files_check(prov_dir, root, doc) if doc is not None else None
        return memo

    def settle(self) -> DataMemo:
        """Finish what :meth:`early` started (see :meth:`before_walk`)."""
        checking, self._checking = self._checking, None
        if checking is not None and _files_check_passed(checking):
            assert self._doc is not None
            self._vouched = True  # git and an lstat of each directory: no find, no walk
            self._files_index = (self._doc["files_index"], self._doc["dirs"])
            self.stat_digest = self._doc.get("find")
            return self
        if self._doc is not None:  # (removed by gc, or by another record: index again)
            self._index_lost = _names_lost_index(self._prov_dir, self._doc)
        finding = _start_find(self.root, self.declared, self._started_ns)
        if self.path.exists():
            self.stat_digest = _finish_find(finding, self.root, self.declared)
        else:  # nothing to recall: find runs beside the walk, read by listed()
            self._finding = finding
        return self

    def abandon(self) -> None:
        """End a check :meth:`early` started, unused."""
        checking, self._checking = self._checking, None
        if checking is not None:
            _files_check_passed(checking)

    @property
    def needs_listing(self) -> bool:
        """Whether :meth:`recall` needs the walk (:meth:`listed`) to answer."""
        return self.stat_digest is None and not self._vouched

    def _start(
        self,
        prov_dir: Path,
        index: Path | None,
        root: str,
        declared: tuple[str, ...],
        started_ns: int,
    ) -> None:
        self.root, self.declared = root, declared
        self.listing: DataListing | None = None
        self.stat_digest: str | None = None
        self.fingerprint: str | None = None
        self._directories: tuple[str, ...] | None = None
        self._finding: subprocess.Popen[bytes] | None = None  # see before_walk
        self._started_ns = started_ns
        self._checking: _FilesCheck | None = None  # see early()
        self._index_lost = False  # the memo names a files index that is not there
        self._doc: dict[str, Any] | None = None  # the memo as read by before_walk
        self._vouched = False  # the memo's files index vouched for the files
        self._files_index: tuple[str, list[DirStat]] | None = None  # (index name, dirs)
        # Before git is asked anything about the files: a later change shows as new stat data.
        self._index_path = index
        self._index = _trusted_stat(index, started_ns) if index is not None else None
        # git-prov's version too: another version may build another manifest of the files.
        key = "\0".join((str(MEMO_VERSION), __version__, root, *declared))
        name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        self.path = prov_dir / _MEMO_DIR / name
        self._prov_dir = prov_dir
        self._files_index_new = False

    def listed(self, listing: DataListing) -> None:
        """The walk of the declared paths (taken after :meth:`before_walk`'s digest, which
        then stays the key; without one, the key is the walk's own fingerprint)."""
        self.listing = listing
        self._directories = listing.directories
        finding, self._finding = self._finding, None
        if finding is not None:  # (before anything of the files is read)
            self.stat_digest = _finish_find(finding, self.root, self.declared)
        if self.stat_digest is None:
            self.fingerprint = fingerprint(listing)
        elif listing.missing or any(f.absent for f in listing.files.values()):
            self.stat_digest = None  # (not what find saw: no memo of it)

    def recall(self) -> str | None:
        """The id of the manifest stored for exactly these files, if it can be trusted
        (the caller checks the object is still in the repository)."""
        if self._vouched:
            field, value = "", ""
        elif self.stat_digest is not None:
            field, value = "find", self.stat_digest
        elif self.fingerprint is not None:
            field, value = "fingerprint", self.fingerprint
        else:
            return None
        memo = self._doc = self._doc if self._doc is not None else _read_memo(self.path)
        if memo is None or (field and memo.get(field) != value):
            return None
        oid = memo.get("manifest")
        if not (isinstance(oid, str) and is_hex_oid(oid)):
            return None
        directories = memo.get("directories")
        if not (isinstance(directories, list) and all(isinstance(d, str) for d in directories)):
            return None
        index = memo.get("index")
        same_index = (
            self._index is not None and isinstance(index, list) and tuple(index) == self._index
        )
        present = self.listing.present if self.listing is not None else self.declared
        if not same_index and not _untracked(self.root, present):
            return None
        if self._directories is None:  # (the same digest: the same directories as then)
            self._directories = tuple(directories)
        # (In a DVC project, DVC metadata could name its files: not reused. Found here,
        # not by capture/dvc.py: a re-record of unchanged data does not load DVC's reader.)
        from git_prov.capture.data_paths import dvc_project_of

        known: dict[str, str | None] = {}
        if any(dvc_project_of(self.root, d, known) is not None for d in self._directories):
            return None
        # Once per memo (later hits need no find), and again when its files index is gone.
        reindex = self._files_index is None and (
            memo.get("files_index") is None or self._index_lost
        )
        settled = not same_index and self._index is not None
        if reindex or settled:
            with _writing(self._prov_dir):
                if reindex:
                    self._index_files(oid)
                if settled or self._files_index_new:
                    self._write(oid)  # the index is settled now: the next hit need not ask git
                    return oid
        with contextlib.suppress(OSError):  # in use: gc keeps it (unused_memos)
            os.utime(self.path)
        return oid

    def remember(self, manifest: DataManifest, oid: str) -> None:
        """Remember that these files gave ``manifest``, stored as ``oid`` (unless it names
        something beyond the files' bytes: see the module's doc)."""
        if (self.stat_digest is None and self.fingerprint is None) or not all(
            e.source == SOURCE_READ and e.present is None and e.kept is None and not e.also
            for e in manifest.entries
        ):
            return
        with _writing(self._prov_dir):
            if not self._vouched:
                self._index_files(oid)
            self._write(oid)

    def _index_files(self, oid: str) -> None:
        """Write the files index of a listing of these files that is the one the manifest
        ``oid`` was built from (when the memo vouched without a walk, the walk is taken
        now: nothing changed since the memo vouched unless something is racy, which
        :func:`write_files_index` refuses)."""
        listing = self.listing
        if listing is None:
            if self.stat_digest is None:
                return
            from git_prov.capture.data import list_data

            try:
                listing = list_data(Path(self.root), list(self.declared), cwd=Path(self.root))
            except ProvError:
                return
        since_ns = min(self._started_ns, listing.started_ns)
        written = write_files_index(self._prov_dir, listing, since_ns, len(oid) // 2)
        if written is not None:
            self._files_index, self._files_index_new = written, True

    def _write(self, oid: str) -> None:
        if self._directories is None:
            return
        old = self._doc.get("files_index") if self._doc is not None else None
        name, dirs = self._files_index if self._files_index is not None else (None, None)
        memo = {
            "version": MEMO_VERSION,
            "manifest_version": MANIFEST_VERSION,
            "find": self.stat_digest,
            "fingerprint": self.fingerprint,
            "directories": list(self._directories),
            "manifest": oid,
            "index": list(self._index) if self._index is not None else None,
            "files_index": name,
            "dirs": dirs,
        }
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(memo))
            os.replace(partial, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()
            return
        if isinstance(old, str) and old != name and _INDEX_NAME.fullmatch(old):
            with contextlib.suppress(OSError):  # (a record reading it now just misses)
                (self._prov_dir / _INDEX_DIR / old).unlink()


@contextlib.contextmanager
def _writing(prov_dir: Path) -> Iterator[None]:
    """Write files indexes and memos in this block: from the moment a new files index is
    renamed in until the memo naming it is written (and the files index it replaces
    removed), ``git prov gc`` cannot look for files indexes no memo names. A lock that
    cannot be had in :data:`_WRITER_WAIT` seconds (or at all) is gone without: the worst
    gc can then do is remove a files index just written, which costs the next record a
    ``find`` and a new index (:meth:`DataMemo.settle`), never a wrong manifest."""
    from git_prov.store.locking import ledger_lock

    directory = prov_dir / _INDEX_DIR
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
    with ledger_lock(directory / _INDEX_LOCK, wait=_WRITER_WAIT, shared=True):
        yield


def _read_memo(path: Path) -> dict[str, Any] | None:
    """The memo file at ``path`` as a dict of this layout's version (None: no memo)."""
    try:
        memo = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(memo, dict) and memo.get("version") == MEMO_VERSION:
        return memo
    return None


# --- the files index: git's own lstat-and-compare of every file, in C ----------------------
#
# A memo whose files are all regular files reached without a symlink also keeps an index
# file in git's format (``<prov>/data-index/<its checksum>``, version 2) with an entry per
# file: its stat data as the walk saw them and a placeholder object id, and the stat data
# of every directory walked (in the memo). A re-record then runs ``git diff-files --quiet``
# on that index, which lstats each file and compares the stat data git compares for its own
# index, and lstats each directory in Python: a file added, removed or renamed changes its
# directory's mtime and ctime, a file written, chmod-ed, replaced or touched its own ctime
# (what no program can set). git is made to compare them all whatever the repository's
# configuration says (trustctime, checkStat, no fsmonitor). Only listings none of whose
# files or directories changed within RACY_NS before the walk are indexed (git's racy
# rule, on both times): a later change must then show as other stat data. Anything git
# cannot compare by stat data alone (an entry git finds racy, an empty file whose object
# id it checks) it compares by content with the placeholder id: a difference, so a miss.

_GIT_COMPARES_ALL = (
    "-c", "core.trustctime=true", "-c", "core.checkstat=default",
    "-c", "core.fsmonitor=false", "-c", "core.ignorestat=false",
)  # fmt: skip
_EMPTY_BLOB = {
    20: bytes.fromhex("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
    32: bytes.fromhex("473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813"),
}
_U32 = 0xFFFFFFFF


def write_files_index(
    prov_dir: Path, listing: DataListing, since_ns: int, oid_bytes: int
) -> tuple[str, list[DirStat]] | None:
    """Write the files index of ``listing`` (see above); its name and the directories'
    stat data, or None when it cannot vouch for the files: a symlink, an absent or missing
    file, anything changed within RACY_NS before ``since_ns`` (or in the future), another
    object id size than SHA-1's or SHA-256's, or a write that fails."""
    if oid_bytes not in _EMPTY_BLOB or listing.missing:
        return None
    limit = since_ns - RACY_NS
    dirs: list[DirStat] = []
    for rel, st in listing.directory_stats:
        if st is None or st.st_mtime_ns > limit or st.st_ctime_ns > limit:
            return None
        dirs.append([rel, st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
    entries = []
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    for f in listing.files.values():
        st = f.stat
        if (
            f.link is not None
            or f.absent
            or not stat.S_ISREG(st.st_mode)
            or st.st_mtime_ns > limit
            or st.st_ctime_ns > limit
        ):
            return None
        entries.append((f.rel.encode(encoding, errors), st))  # (os.fsencode, without checks)
    entries.sort(key=operator.itemgetter(0))  # git's order: the paths' bytes
    placeholder = b"\x01" * oid_bytes  # (no file's bytes have it: any check by content differs)
    fixed = 40 + oid_bytes + 2  # stat data, object id, flags
    parts = [b"DIRC", struct.pack(">II", 2, len(entries))]
    # Stat data, object id and flags in one pack (20k files: one call each, not two).
    pack = struct.Struct(f">10I{oid_bytes}sH").pack
    empty = _EMPTY_BLOB[oid_bytes]
    for name, st in entries:
        c_s, c_ns = divmod(st.st_ctime_ns, 1_000_000_000)
        m_s, m_ns = divmod(st.st_mtime_ns, 1_000_000_000)
        length = len(name)
        parts.append(
            pack(
                c_s & _U32, c_ns, m_s & _U32, m_ns, st.st_dev & _U32, st.st_ino & _U32,
                0o100755 if st.st_mode & 0o100 else 0o100644,
                st.st_uid & _U32, st.st_gid & _U32, st.st_size & _U32,
                empty if st.st_size == 0 else placeholder, min(length, 0xFFF),
            )
        )  # fmt: skip
        parts.append(name.ljust(((fixed + length + 8) & ~7) - fixed, b"\0"))
    body = b"".join(parts)
    checksum = (hashlib.sha1 if oid_bytes == 20 else hashlib.sha256)(body).digest()
    index_name = checksum.hex()
    path = prov_dir / _INDEX_DIR / index_name
    partial = path.with_name(f"{index_name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(body + checksum)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        return None
    return index_name, dirs


def _start_files_check(prov_dir: Path, root: str, memo: dict[str, Any]) -> _FilesCheck | None:
    """The directories checked and ``git diff-files`` started (None: no files index, or
    it cannot vouch already): the memo's files index vouches that its files are as they
    were (see above) when every directory's stat data are as kept and git finds no file
    changed (:func:`_files_check_passed`). git reads a missing index as an empty one (no
    file, no change): the index is held open meanwhile, for the check to see that the file
    git read was this one, not one removed before git opened it (by gc, or another
    record's new memo)."""
    name, dirs = memo.get("files_index"), memo.get("dirs")
    if not (isinstance(name, str) and _INDEX_NAME.fullmatch(name) and isinstance(dirs, list)):
        return None
    for row in dirs:
        try:
            rel, mode, mtime, ctime, ino, dev = row
            st = os.lstat(os.path.join(root, rel))
        except (OSError, TypeError, ValueError):
            return None
        if (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev) != (
            mode, mtime, ctime, ino, dev,
        ):  # fmt: skip
            return None
    index = prov_dir / _INDEX_DIR / name
    try:
        held = os.open(index, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(held).st_mode):
            raise OSError
        git = subprocess.Popen(
            ["git", "--no-optional-locks", *_GIT_COMPARES_ALL, "diff-files", "--quiet"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=git_env({"GIT_INDEX_FILE": str(index)}),
        )
    except OSError:
        os.close(held)
        return None
    return git, held, index


def _files_check_passed(checking: _FilesCheck) -> bool:
    """Whether git found no change, in the files index held open (still at its path once
    git is done: so git read it, not a file missing for a moment)."""
    git, held, index = checking
    try:
        if git.wait() != 0:
            return False
        was, now = os.fstat(held), os.stat(index)
        return (was.st_dev, was.st_ino) == (now.st_dev, now.st_ino)
    except OSError:
        return False
    finally:
        os.close(held)


def _names_lost_index(prov_dir: Path, memo: dict[str, Any]) -> bool:
    """Whether ``memo`` names a files index that is not there."""
    name = memo.get("files_index")
    if not (isinstance(name, str) and _INDEX_NAME.fullmatch(name)):
        return False
    return not (prov_dir / _INDEX_DIR / name).exists()


def fingerprint(listing: DataListing) -> str | None:
    """A digest of every file's name and stat data in ``listing`` (None when they cannot
    vouch for the files: one was modified within :data:`RACY_NS` before the walk, a
    declared path is missing, or an annexed file's content is absent)."""
    if listing.missing:
        return None
    files = listing.files.values()
    if any(f.absent for f in files):
        return None
    rows = [
        (f.rel, s.st_mode, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino, s.st_dev, f.link)
        for f in files
        for s in (f.stat,)
    ]
    # git's racy rule: a file whose mtime is this recent could change again in the same
    # timestamp tick, leaving its stat data as they are now.
    if rows and max(map(_MTIME, rows)) > listing.started_ns - RACY_NS:
        return None
    # Version 2 of marshal's format: no back-references, so equal values give equal bytes.
    blob = marshal.dumps((MANIFEST_VERSION, listing.declared, rows), 2)
    return hashlib.sha256(blob).hexdigest()


def _trusted_stat(path: Path, now_ns: int) -> IndexStat | None:
    """A file's stat data, if a later change to it must change them (not racy)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mtime_ns > now_ns - RACY_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _untracked(root: str, pathspecs: Sequence[str]) -> bool:
    """Whether git's index has no file under ``pathspecs`` (False when git cannot tell)."""
    try:
        proc = subprocess.run(
            [
                "git",
                "--literal-pathspecs",
                "--no-optional-locks",
                "ls-files",
                "-z",
                "--",
                *pathspecs,
            ],
            cwd=root,
            env=git_env(),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return False
    return proc.returncode == 0 and not proc.stdout


# What find prints of each file and directory (below each declared path, .git left out):
# type, permission bits, size, mtime and ctime (seconds.nanoseconds), inode, device, path.
_FIND_FORMAT = "%y %m %s %T@ %C@ %i %D %p\\0"
_REFUSED = b"/refused\0"  # (no path find prints starts with "/": they start with "./")


def stat_digest(root: str, declared: Sequence[str], now_ns: int) -> str | None:
    """A digest of the stat data of every file and directory under ``declared``, taken by
    one GNU ``find`` (the same data :func:`fingerprint` hashes: equal digests, equal
    walks); None when it cannot vouch for them — a symlink or special file, a file
    modified within :data:`RACY_NS` before ``now_ns`` (or in the future), an error, or a
    ``find`` that does not print what is asked."""
    return _finish_find(_start_find(root, declared, now_ns), root, declared)


def _start_find(root: str, declared: Sequence[str], now_ns: int) -> subprocess.Popen[bytes] | None:
    """The ``find`` of :func:`stat_digest`, started (None when it cannot be)."""
    racy_after = (now_ns - RACY_NS) // 1_000_000_000  # (seconds, rounded down: stricter)
    command = [
        "find",
        "-P",
        *(f"./{d}" for d in declared),
        "-name",
        ".git",
        "-prune",
        "-o",
        "(",
        "(",
        "-type",
        "f",
        "-newermt",
        f"@{racy_after}",
        ")",
        "-o",
        "!",
        "(",
        "-type",
        "f",
        "-o",
        "-type",
        "d",
        ")",
        ")",
        "-printf",
        "/refused\\0",
        "-quit",
        "-o",
        "-printf",
        _FIND_FORMAT,
    ]
    try:
        return subprocess.Popen(
            command,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # (any error: a non-zero exit)
            env={**os.environ, "LC_ALL": "C"},
        )
    except OSError:
        return None


def _finish_find(
    proc: subprocess.Popen[bytes] | None, root: str, declared: Sequence[str]
) -> str | None:
    """What :func:`stat_digest` says of the ``find`` :func:`_start_find` started."""
    if proc is None:
        return None
    digest = hashlib.sha256(f"{MEMO_VERSION}\0{_FIND_FORMAT}\0".encode())
    with proc:
        assert proc.stdout is not None
        head = tail = b""
        while chunk := proc.stdout.read(1 << 20):
            digest.update(chunk)
            if len(head) < 4096:
                head += chunk[:4096]
            tail = (tail + chunk)[-len(_REFUSED) :]
    if proc.returncode != 0 or tail == _REFUSED or not head:
        return None
    first = head.split(b"\0", 1)[0].split(b" ", 7)
    if len(first) != 8 or first[7] != os.fsencode(f"./{declared[0]}"):
        return None
    try:
        st = os.lstat(os.path.join(root, declared[0]))
    except OSError:
        return None
    kind = b"d" if stat.S_ISDIR(st.st_mode) else b"f" if stat.S_ISREG(st.st_mode) else b"?"
    seen = (
        kind,
        b"%o" % (st.st_mode & 0o7777),
        b"%d" % st.st_size,
        _ns_text(st.st_mtime_ns),
        _ns_text(st.st_ctime_ns),
        b"%d" % st.st_ino,
        b"%d" % st.st_dev,
    )
    if tuple(first[:3]) + tuple(first[5:7]) != seen[:3] + seen[5:] or not all(
        _same_time(text, wanted) for text, wanted in zip(first[3:5], seen[3:5], strict=True)
    ):
        return None
    return digest.hexdigest()


def _ns_text(ns: int) -> bytes:
    return b"%d.%09d" % divmod(ns, 1_000_000_000)


def _same_time(printed: bytes, wanted: bytes) -> bool:
    """find's ``%T@`` (seconds, a point, at least the nanoseconds' digits) is ``wanted``."""
    seconds, _, fraction = printed.partition(b".")
    return (
        len(fraction) >= 9
        and seconds + b"." + fraction[:9] == wanted
        and not fraction[9:].strip(b"0")
    )


def unused_memos(prov_dir: Path, now: float) -> list[Path]:
    """The memo files ``git prov gc`` removes (``now``: seconds since the epoch): those
    neither written nor hit for :data:`UNUSED_DAYS` days (a hit touches its file), those
    that cannot be read as a memo of this layout, and partial writes older than an hour.
    Removing any memo is safe: a record that finds none takes the full path."""
    directory = prov_dir / _MEMO_DIR
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        path = directory / name
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if name.endswith(".tmp"):
            if age > _PARTIAL_HOURS * 3600:
                out.append(path)
            continue
        if age > UNUSED_DAYS * 86400 or not _usable(path):
            out.append(path)
    return out


def _usable(path: Path) -> bool:
    """Whether ``path`` reads as a memo this layout can hit (the rest is never of use)."""
    try:
        memo = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return (
        isinstance(memo, dict)
        and memo.get("version") == MEMO_VERSION
        and (isinstance(memo.get("find"), str) or isinstance(memo.get("fingerprint"), str))
        and isinstance(memo.get("manifest"), str)
        and is_hex_oid(memo["manifest"])
    )


def remove_memos(paths: Sequence[Path]) -> int:
    """Remove the memo files ``paths``, and the files indexes they name that no other memo
    names; how many memos went (one gone already, or that cannot be removed, is not
    counted: it is only a cache)."""
    removed = 0
    named: set[str] = set()
    for path in paths:
        memo = _read_memo(path)
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
        name = memo.get("files_index") if memo is not None else None
        if isinstance(name, str) and _INDEX_NAME.fullmatch(name):
            named.add(name)
    if named:  # (its files index goes with it, unless another memo names it too)
        _sweep(paths[0].parent.parent, None, named)
    return removed


def orphaned_indexes(prov_dir: Path, now: float, gone: Sequence[Path] = ()) -> list[Path]:
    """The files that ``git prov gc`` removes from ``data-index/`` besides those of the
    memos it removes (``gone``: those memos, counted as removed already): the files
    indexes no memo names — their memo was removed or now names another, or the record
    that wrote one died before its memo — and partial writes (``<checksum>.<pid>.tmp``)
    older than an hour. What :func:`remove_orphaned_indexes` would remove now."""
    return _orphans(prov_dir, now, {p.name for p in gone}, _names_in(gone))


def remove_orphaned_indexes(prov_dir: Path, now: float) -> int:
    """Remove the files :func:`orphaned_indexes` names (in turn with the records writing
    files indexes and memos: a files index just renamed in is named by its memo before
    this looks); how many went (none when the writers' lock cannot be had in
    :data:`_SWEEP_WAIT` seconds: the next gc removes them)."""
    return _sweep(prov_dir, now, None)


def _sweep(prov_dir: Path, now: float | None, only: set[str] | None) -> int:
    """Remove, holding the writers' lock alone (see :func:`_writing`), the files indexes
    no memo names — of ``only`` when given, else every one and the partial writes older
    than an hour at ``now``. How many went."""
    from git_prov.store.locking import ledger_lock

    directory = prov_dir / _INDEX_DIR
    if not directory.is_dir():
        return 0
    removed = 0
    with ledger_lock(directory / _INDEX_LOCK, wait=_SWEEP_WAIT) as taken:
        if not taken:
            return 0
        if only is not None:
            paths = [directory / n for n in sorted(only - _named(prov_dir, set()))]
        else:
            paths = _orphans(prov_dir, now or 0.0, set(), set())
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def _orphans(prov_dir: Path, now: float, gone: set[str], counted: set[str]) -> list[Path]:
    """The files indexes no memo but those named ``gone`` names, but those in ``counted``,
    and the partial writes older than an hour at ``now``. (The directory is listed before
    the memos are read: an index listed was renamed in before, so its memo, if any, was
    written before it is read, while gc holds the writers' lock.)"""
    directory = prov_dir / _INDEX_DIR
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    named = _named(prov_dir, gone)
    out = []
    for name in names:
        path = directory / name
        if _INDEX_NAME.fullmatch(name):
            if name not in named and name not in counted:
                out.append(path)
        elif _INDEX_PARTIAL.fullmatch(name):
            try:
                if now - path.stat().st_mtime > _PARTIAL_HOURS * 3600:
                    out.append(path)
            except OSError:
                continue
    return out


def _named(prov_dir: Path, gone: set[str]) -> set[str]:
    """The files indexes the memos in ``data-memo/`` name (of any layout version that
    names one as this one does), those named ``gone`` left out."""
    directory = prov_dir / _MEMO_DIR
    try:
        names = os.listdir(directory)
    except OSError:
        return set()
    return _names_in(directory / n for n in names if n not in gone and not n.endswith(".tmp"))


def _names_in(paths: Iterable[Path]) -> set[str]:
    """The files indexes the memo files ``paths`` name."""
    out = set()
    for path in paths:
        try:
            memo = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        name = memo.get("files_index") if isinstance(memo, dict) else None
        if isinstance(name, str) and _INDEX_NAME.fullmatch(name):
            out.add(name)
    return out

"""Kept data: the bytes of a run's files, stored by content under ``refs/prov/data``.

``git prov run --keep …`` keeps the bytes of declared data beside their hash. Each kept
file is stored once, however many runs share it, named by the SHA-256 its data manifest
records:

* ``sha256/<ab>/<rest>`` — a git blob holding the bytes (files under the LFS threshold);
* ``lfs/<ab>/<rest>`` — a git-LFS pointer; the bytes are an object of the local LFS store
  (``<common>/lfs/objects/…``), moved by ``git lfs`` (large files).

``refs/prov/data`` is its own commit chain, apart from ``refs/prov/objects``, so that
syncing the metadata never moves data: data travels with ``git prov push/fetch/sync
--data`` and is fetched on demand by ``git prov get``. Its tree merges as a union, like the
objects tree; bytes dropped by ``git prov gc`` leave a ``drop-data/<ab>/<rest>`` marker in
``refs/prov/objects`` (which every sync carries), and no merge brings such bytes back.

Writing follows the ledger's discipline: blobs (and LFS objects) first, then one
compare-and-swap update of ``refs/prov/data`` under the ledger lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pygit2

from git_prov.model.manifest import KEPT_GIT, KEPT_LFS
from git_prov.store.gitcli.kept import DATA_REF as DATA_REF
from git_prov.store.gitcli.kept import (
    DROP_DATA_DIR,
    GIT_DIR,
    HEX64,
    LFS_DIR,
    Found,
    drop_path,
    guard_unpushed,
    kept_path,
    tracking_remote_of,
)
from git_prov.store.gitcli.kept import release_guards as release_guards
from git_prov.store.gitcli.kept import restore_kept_lfs as restore_kept_lfs
from git_prov.store.gitcli.kept import sha256_of as sha256_of
from git_prov.store.gitcli.kept import tracking_data_ref as tracking_data_ref
from git_prov.store.gitcli.kept import unpushed_digests as unpushed_digests
from git_prov.store.ledger import OBJECTS_REF, Ledger
from git_prov.store.lfs import LfsObjectWriter, lfs_available, lfs_pointer
from git_prov.store.locking import ledger_lock
from git_prov.store.loose import write_object
from git_prov.store.repo import GitRepo
from git_prov.store.trees import FILEMODE_BLOB, Change, edit_tree, lookup_path, walk_blobs

DEFAULT_LFS_THRESHOLD = 8 << 20
# (The names of the data tree, the unpushed objects' second names and reading through the
# git binary live in store/gitcli/kept.py, which `git prov get` loads without pygit2.)


def tracking_remotes(repo: GitRepo) -> list[str]:
    """Remotes whose kept data was fetched here (``refs/prov/remotes/<remote>/data``)."""
    return sorted(r for ref in repo.pygit.references if (r := tracking_remote_of(ref)) is not None)


class KeptStore:
    """The kept-data store of one repository: what is kept, and keeping more.

    It is also the sink the hashing code writes into (:class:`git_prov.capture.hashing.
    KeepSink`): a file being kept is copied into a git blob (or an LFS object) from the same
    read that hashes it. Writers run on hashing threads; the store's own state is guarded
    by a lock.
    """

    def __init__(self, repo: GitRepo, *, lfs_threshold: int = DEFAULT_LFS_THRESHOLD):
        self.repo = repo
        self.lfs_threshold = lfs_threshold
        self._ledger = Ledger(repo)
        tip = self._ledger.tip(DATA_REF)
        self._tree: pygit2.Tree | None = tip.tree if tip is not None else None
        self._lock = threading.Lock()
        self._new: dict[str, Change] = {}  # data-tree paths written since the last commit
        self._kinds: dict[str, str] = {}  # sha256 hex → KEPT_GIT / KEPT_LFS, this session
        self.too_large: list[str] = []  # names of files that could not be kept (no LFS)
        self._lfs: bool | None = None  # whether git-lfs can be run (asked when first needed)
        self._reflinks: bool | None = None  # whether the file system makes reflinks
        # LFS objects written in this session: (path, sha256 hash, size), so that the stat
        # cache can vouch for them when `get` copies them out (capture/keep.py).
        self.stored_files: list[tuple[str, str, int]] = []

    # ---- the sink the hashing code writes into ------------------------------------------

    def has(self, hash_value: str, size: int) -> bool:
        """Whether the bytes hashed ``hash_value`` are kept already (nothing to read)."""
        hexdigest = sha256_of(hash_value)
        if hexdigest is None:
            return False
        kind = self._kind_here(hexdigest, size)
        if kind is not None:
            with self._lock:
                self._kinds[hexdigest] = kind
        return kind is not None

    def open(self, name: str, size_hint: int) -> KeepWriter | None:
        """A writer for the bytes of file ``name`` (``size_hint`` bytes by its stat data),
        or None when it cannot be kept (too large for a git blob, and no git-LFS)."""
        if size_hint >= self.lfs_threshold:
            if self._lfs is None:
                self._lfs = lfs_available()
            if not self._lfs:
                with self._lock:
                    self.too_large.append(name)
                return None
            return _LfsWriter(self)
        return _GitWriter(self)

    # ---- what is kept -------------------------------------------------------------------

    def kind_of(self, hash_value: str) -> str | None:
        """KEPT_GIT / KEPT_LFS when the bytes of ``hash_value`` were kept (in this session,
        or before)."""
        hexdigest = sha256_of(hash_value)
        if hexdigest is None:
            return None
        with self._lock:
            return self._kinds.get(hexdigest)

    def commit(self, message: str) -> None:
        """Make everything kept in this session reachable from ``refs/prov/data`` (one
        compare-and-swap commit; nothing when there is nothing new)."""
        with self._lock:
            changes = dict(self._new)
        if not changes:
            return
        pygit = self.repo.pygit

        def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
            tree = tip.tree if tip is not None else None
            missing = {
                p: c
                for p, c in changes.items()
                if tree is None or lookup_path(pygit, tree, p) is None
            }
            if not missing:
                return None
            tree_id = edit_tree(pygit, tree, missing)
            return self._ledger._commit(tree_id, [tip.id] if tip is not None else [], message)

        with ledger_lock(self.repo.prov_dir / "ledger.lock"):
            self._ledger._cas(DATA_REF, build, message)
        with self._lock:
            for path in changes:
                self._new.pop(path, None)

    # ---- internals ----------------------------------------------------------------------

    def _kind_here(self, hexdigest: str, size: int) -> str | None:
        with self._lock:
            known = self._kinds.get(hexdigest)
        if known is not None:
            return known
        if self._tree is None:
            return None
        pygit = self.repo.pygit
        if lookup_path(pygit, self._tree, kept_path(KEPT_GIT, hexdigest)) is not None:
            return KEPT_GIT
        if lookup_path(
            pygit, self._tree, kept_path(KEPT_LFS, hexdigest)
        ) is not None and restore_kept_lfs(self.repo, hexdigest, size):
            return KEPT_LFS
        return None

    def _add(self, hexdigest: str, kind: str, blob: pygit2.Oid) -> None:
        with self._lock:
            self._new[kept_path(kind, hexdigest)] = (blob, FILEMODE_BLOB)
            self._kinds[hexdigest] = kind


class KeepWriter:
    """Receives the bytes of one file as they are read and hashed; :meth:`finish` stores
    them under the digest of exactly those bytes, :meth:`abort` forgets them."""

    def snapshot(self, path: str) -> str | None:
        return None

    def copy_target(self) -> str | None:
        return None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def finish(self, hash_value: str, size: int) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _GitWriter(KeepWriter):
    """Small files: gathered in memory, written as one git blob (git compresses it)."""

    def __init__(self, store: KeptStore):
        self._store = store
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._parts.append(bytes(data))

    def finish(self, hash_value: str, size: int) -> None:
        hexdigest = sha256_of(hash_value)
        assert hexdigest is not None
        data = b"".join(self._parts)
        self._parts = []
        with self._store._lock:  # libgit2 object writes from several threads: one at a time
            blob = write_object(self._store.repo.pygit.create_blob, data)
        self._store._add(hexdigest, KEPT_GIT, blob)

    def abort(self) -> None:
        self._parts = []


class _LfsWriter(KeepWriter):
    """Large files: a new object of the local LFS store (:class:`LfsObjectWriter`, the one
    place objects are made) — a reflink of the file, or a copy the kernel makes, either
    then hashed; or, where the kernel cannot copy it, written as the file is hashed — and
    installed under the hash of exactly those bytes."""

    def __init__(self, store: KeptStore):
        self._store = store
        self._object = LfsObjectWriter(store.repo.common_dir)

    def snapshot(self, path: str) -> str | None:
        """Reflink ``path`` into the new object (copy-on-write: instant, no bytes copied)
        where the file system can; the caller hashes that clone."""
        if self._store._reflinks is False:
            return None
        try:
            with open(path, "rb") as source:
                cloned = self._object.reflink(source.fileno())
        except OSError:
            cloned = False
        self._store._reflinks = cloned  # (a file system that cannot: stop asking)
        return str(self._object.path) if cloned else None

    def copy_target(self) -> str | None:
        """The new object's temporary file, for the kernel to copy the file into; the
        caller hashes that copy and :meth:`finish` installs it under that hash."""
        return str(self._object.path)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._object.write(data)

    def finish(self, hash_value: str, size: int) -> None:
        hexdigest = sha256_of(hash_value)
        assert hexdigest is not None
        repo = self._store.repo
        stored = self._object.install(hexdigest, size)
        if stored is not None:  # (None: the store had it already)
            guard_unpushed(repo, hexdigest, stored)
            with self._store._lock:
                self._store.stored_files.append((str(stored), hash_value, size))
        with self._store._lock:
            pointer = write_object(repo.pygit.create_blob, lfs_pointer(hexdigest, size))
        self._store._add(hexdigest, KEPT_LFS, pointer)

    def abort(self) -> None:
        self._object.discard()


# ---- reading ---------------------------------------------------------------------------------


def data_trees(repo: GitRepo, remotes: Iterable[str] = ()) -> list[tuple[str, pygit2.Tree]]:
    """The data trees to look in: ours, then the tracking copies of ``remotes``."""
    ledger = Ledger(repo)
    out = []
    for ref in (DATA_REF, *(tracking_data_ref(r) for r in remotes)):
        tip = ledger.tip(ref)
        if tip is not None:
            out.append((ref, tip.tree))
    return out


def find_kept(
    repo: GitRepo, hexdigest: str, trees: Iterable[tuple[str, pygit2.Tree]]
) -> Found | None:
    """Where the kept bytes of ``hexdigest`` are named in ``trees`` (None: nowhere)."""
    pygit = repo.pygit
    for ref, tree in trees:
        found = lookup_path(pygit, tree, kept_path(KEPT_GIT, hexdigest))
        if isinstance(found, pygit2.Blob):
            return Found(KEPT_GIT, ref, str(found.id))
        if lookup_path(pygit, tree, kept_path(KEPT_LFS, hexdigest)) is not None:
            return Found(KEPT_LFS, ref)
    return None


def dropped_digests(ledger: Ledger) -> set[str]:
    """Digests of kept bytes dropped by ``git prov gc`` (markers in ``refs/prov/objects``)."""
    tip = ledger.tip(OBJECTS_REF)
    if tip is None:
        return set()
    sub = lookup_path(ledger.pygit, tip.tree, DROP_DATA_DIR)
    if not isinstance(sub, pygit2.Tree):
        return set()
    return {path.replace("/", "") for path, _ in walk_blobs(ledger.pygit, sub)}


def _data_entries(repo: GitRepo, ref: str) -> Iterator[tuple[str, str, pygit2.Oid]]:
    """(path without slashes, kind, blob) of every entry of ``ref``'s data tree."""
    tip = Ledger(repo).tip(ref)
    if tip is None:
        return
    for directory, kind in ((GIT_DIR, KEPT_GIT), (LFS_DIR, KEPT_LFS)):
        sub = lookup_path(repo.pygit, tip.tree, directory)
        if isinstance(sub, pygit2.Tree):
            for path, blob in walk_blobs(repo.pygit, sub):
                yield path.replace("/", ""), kind, blob


def kept_digests(repo: GitRepo, ref: str = DATA_REF) -> dict[str, str]:
    """Every digest named by ``ref``'s data tree → its kind."""
    return {digest: kind for digest, kind, _ in _data_entries(repo, ref)}


@dataclass(frozen=True)
class KeptObject:
    """One entry of a data tree: the digest of the kept bytes, how they are kept, and the
    blob at that path (the bytes themselves, or the git-LFS pointer)."""

    digest: str
    kind: str
    blob: str


def kept_objects(repo: GitRepo, ref: str = DATA_REF) -> list[KeptObject]:
    """Every entry of ``ref``'s data tree (``git prov fsck`` checks each). Paths that are
    not a digest (``sha256/ab/<62 hex>``) are left out."""
    return [
        KeptObject(digest, kind, str(blob))
        for digest, kind, blob in _data_entries(repo, ref)
        if HEX64.fullmatch(digest)
    ]


def without_dropped_data(
    repo: pygit2.Repository, data_tree: pygit2.Tree, dropped: Iterable[str]
) -> pygit2.Oid:
    """``data_tree`` without the paths of ``dropped`` digests: applied after the union merge
    of two data trees, so that bytes dropped in one clone never come back from another."""
    changes: dict[str, Change] = {}
    for digest in dropped:
        for kind in ("git", "lfs"):
            path = kept_path(kind, digest)
            if lookup_path(repo, data_tree, path) is not None:
                changes[path] = None
    return data_tree.id if not changes else edit_tree(repo, data_tree, changes)


def merge_data(ledger: Ledger, theirs: pygit2.Commit, message: str) -> None:
    """Merge the data commit ``theirs`` (a remote's ``refs/prov/data``, fetched) into
    ``refs/prov/data``: the union of both trees minus the bytes ``gc`` dropped, or a
    fast-forward; one compare-and-swap under the ledger lock."""
    from git_prov.store.merge import merge_objects_trees

    pygit = ledger.pygit
    dropped = dropped_digests(ledger)

    def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        if tip is None:
            tree = without_dropped_data(pygit, theirs.tree, dropped)
            if tree == theirs.tree.id:
                return theirs.id
            return ledger._commit(tree, [theirs.id], message)
        if tip.id == theirs.id or pygit.descendant_of(tip.id, theirs.id):
            return None
        union = merge_objects_trees(pygit, tip.tree, theirs.tree)
        assert union.tree is not None
        merged = pygit[union.tree]
        assert isinstance(merged, pygit2.Tree)
        tree = without_dropped_data(pygit, merged, dropped)
        if pygit.descendant_of(theirs.id, tip.id) and tree == theirs.tree.id:
            return theirs.id  # a fast-forward
        return ledger._commit(tree, [tip.id, theirs.id], message)

    with ledger_lock(ledger.repo.prov_dir / "ledger.lock"):
        ledger._cas(DATA_REF, build, message)


def drop_kept(ledger: Ledger, digests: Sequence[str], message: str) -> None:
    """Drop the kept bytes of ``digests``: a ``drop-data/`` marker for each in
    ``refs/prov/objects`` first (one CAS commit), then their paths out of
    ``refs/prov/data`` (one CAS commit), under the ledger lock. A crash in between leaves
    bytes that every reader already treats as dropped; the next gc removes them."""
    pygit = ledger.pygit

    def mark(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        tree = tip.tree if tip is not None else None
        empty = pygit.create_blob(b"")
        changes: dict[str, Change] = {
            drop_path(d): (empty, FILEMODE_BLOB)
            for d in digests
            if tree is None or lookup_path(pygit, tree, drop_path(d)) is None
        }
        if not changes:
            return None
        return ledger._commit(
            edit_tree(pygit, tree, changes), [tip.id] if tip is not None else [], message
        )

    here = kept_digests(ledger.repo)

    def unkeep(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        if tip is None:
            return None
        changes: dict[str, Change] = {}
        for d in digests:
            if d in here and lookup_path(pygit, tip.tree, kept_path(here[d], d)) is not None:
                changes[kept_path(here[d], d)] = None
        if not changes:
            return None
        return ledger._commit(edit_tree(pygit, tip.tree, changes), [tip.id], message)

    with ledger_lock(ledger.repo.prov_dir / "ledger.lock"):
        ledger._cas(OBJECTS_REF, mark, message)
        ledger._cas(DATA_REF, unkeep, message)

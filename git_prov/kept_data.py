"""Kept data given back: ``git prov get``, what ``show`` says about each data file, and
moving kept bytes between clones (``--data``).

Bytes are found by the hash a data manifest records: kept by git-prov (a git blob or a
git-LFS object under ``refs/prov/data``, see :mod:`git_prov.store.kept`), or held by the
tool that named them (git for ``git:`` hashes, git-LFS for LFS pointers, DVC's cache,
git-annex). Every file written is verified against its recorded hash before it takes its
place (written beside it, then renamed), and manifest paths — untrusted, they may come from
anyone's clone — never lead outside the destination directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from git_prov.errors import BadPath, CorruptLedger, NotFound, RemoteProblem
from git_prov.model.manifest import (
    KEPT_GIT,
    KEPT_LFS,
    MAX_MANIFEST_BYTES,
    MODE_EXECUTABLE,
    SOURCE_ANNEX,
    SOURCE_DVC,
    SOURCE_GIT,
    SOURCE_LFS,
    DataEntry,
    DataManifest,
    safe_relative,
)
from git_prov.model.record import RunRecord
from git_prov.store.gitcli.kept import (
    DATA_REF,
    Found,
    KeptHere,
    kept_here,
    manifests_here,
    restore_kept_lfs,
    sha256_of,
    tracking_data_ref,
)
from git_prov.store.lfs import lfs_object_path

if TYPE_CHECKING:  # (loaded only where used: `get` of bytes kept here never loads pygit2)
    from git_prov.store.gitcli.paths import RepoPaths
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import GitRepo

# What `show` says about a data file's bytes.
KEPT_HERE = "kept here"
KEPT_ELSEWHERE = "kept, not here (git prov get fetches it)"
KEPT_DROPPED = "dropped by git prov gc (hash only)"
IN_GIT = "in git"
IN_LFS = "in git-LFS"
IN_DVC = "in DVC"
IN_ANNEX = "in git-annex"
HASH_ONLY = "hash only"
HASH_CACHE = "hash-cache.sqlite"  # the stat cache (git_prov.capture.hashing), in the prov dir

_CHUNK = 1 << 20
_FICLONE = 0x40049409  # Linux ioctl: make the destination a reflink of the source


class Availability:
    """Says, for each data entry, whether and where its bytes can be had (read once per
    ``show``: the local and tracking data trees, and the drop markers)."""

    def __init__(self, repo: GitRepo):
        from git_prov.store.kept import data_trees, dropped_digests, tracking_remotes
        from git_prov.store.ledger import Ledger

        self.repo = repo
        self._trees = data_trees(repo, tracking_remotes(repo))
        self._dropped = dropped_digests(Ledger(repo))

    def describe(self, entry: DataEntry) -> str:
        """One of the phrases above."""
        if entry.kept is not None:
            digest = sha256_of(entry.hash)
            if digest is None:
                return HASH_ONLY
            if digest in self._dropped:
                return KEPT_DROPPED
            from git_prov.store.kept import find_kept

            found = find_kept(self.repo, digest, self._trees)
            if found is None:
                return KEPT_ELSEWHERE
            if found.kind == KEPT_LFS and not _lfs_local(self.repo, digest, entry.size):
                return KEPT_ELSEWHERE
            return KEPT_HERE
        return {
            SOURCE_GIT: IN_GIT,
            SOURCE_LFS: IN_LFS,
            SOURCE_DVC: IN_DVC,
            SOURCE_ANNEX: IN_ANNEX,
        }.get(entry.source, HASH_ONLY)


def _lfs_local(repo: GitRepo, digest: str, size: int) -> bool:
    return restore_kept_lfs(repo, digest, size)


# ---- get ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetOptions:
    """What ``git prov get`` writes, and where."""

    paths: Sequence[str] = ()  # manifest paths (or directories) to write; empty: all kept
    output: Path | None = None  # destination directory (default: the working tree)
    force: bool = False  # overwrite files that differ from the recorded bytes
    side: str | None = None  # "inputs" / "outputs": only that manifest
    remote: str | None = None


@dataclass(frozen=True)
class GotFile:
    """One file of a ``get``: where it went, and what happened."""

    path: str
    target: str
    size: int
    hash: str
    action: str  # "written", "unchanged" (already had the recorded bytes)
    source: str  # where the bytes came from: kept, git, lfs, dvc, annex

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "target": self.target,
            "size": self.size,
            "hash": self.hash,
            "action": self.action,
            "from": self.source,
        }


@dataclass(frozen=True)
class GetResult:
    """Everything a ``get`` wrote (or found already there), and what it left out."""

    run: RunRecord
    files: tuple[GotFile, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (path, why) of unkept files

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run.id,
            "files": [f.to_json() for f in self.files],
            "skipped": [{"path": p, "why": why} for p, why in self.skipped],
        }


def run_entries(ledger: Ledger, run: RunRecord, side: str | None = None) -> dict[str, DataEntry]:
    """The data entries of a run by path: inputs, then outputs (an output wins where a run
    read and rewrote the same path: it is the state the run left)."""
    entries: dict[str, DataEntry] = {}
    for name, oid in (("inputs", run.inputs), ("outputs", run.outputs)):
        if oid and side in (None, name):
            manifest: DataManifest = ledger.data_manifest(oid)
            entries.update((e.path, e) for e in manifest.entries)
    return entries


def get_files(repo: GitRepo, spec: str, options: GetOptions = GetOptions()) -> GetResult:
    """``git prov get``: write the recorded bytes of run ``spec``'s data files.

    Without ``paths``, every file whose bytes were kept (or are held by git, LFS, DVC or
    git-annex) is written; with them, the files at or below those manifest paths, each of
    which must be obtainable. Files are written below ``output`` (default: the working
    tree) at their manifest paths. A file already holding the recorded bytes is left alone;
    one holding other bytes is refused (BadPath, exit 5) unless ``force``, before anything is
    written. Raises NotFound (exit 6) for a file whose bytes are not kept or cannot be had
    here or on the remote, RemoteProblem (exit 8) when the remote cannot be reached.
    """
    from git_prov.query.located import find_run
    from git_prov.store.ledger import Ledger

    ledger = Ledger(repo)
    run = find_run(repo, spec).record
    entries = run_entries(ledger, run, options.side)
    wanted, skipped, root = _chosen(run, entries, options, repo.root)
    fetcher = _Fetcher(repo, options.remote)
    plans = _plans(run, wanted, root, options.force)
    return _carry_out(run, plans, skipped, root, fetcher.bytes_of, repo.prov_dir / HASH_CACHE)


def get_here(paths: RepoPaths, spec: str, options: GetOptions = GetOptions()) -> GetResult | None:
    """:func:`get_files` without pygit2, when every file it is to write is kept here: the
    run found through the query index, its manifests and the data trees read through the
    git binary (:mod:`git_prov.store.gitcli.kept`). The same files, bytes, checks, messages
    and result as :func:`get_files`.

    None, having written nothing, when anything is not that simple — a file held by git,
    LFS, DVC or git-annex, bytes not here or dropped, a missing or damaged object, a bare
    repository, GIT_DIR or GIT_WORK_TREE set: :func:`get_files` then does the whole get
    and says what is wrong. Errors that do not depend on how the ledger is read (no such
    run, no such path, an unsafe path, a modified file without ``force``) are raised here
    as :func:`get_files` raises them.
    """
    if paths.workdir is None or "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return None
    from git_prov.query.index import with_index
    from git_prov.query.located import resolve

    run = with_index(paths, lambda index: resolve(index, spec)).record
    oids = [
        oid
        for name, oid in (("inputs", run.inputs), ("outputs", run.outputs))
        if oid and options.side in (None, name)
    ]
    blobs = manifests_here(paths.cwd, oids, MAX_MANIFEST_BYTES)
    if blobs is None:
        return None
    entries: dict[str, DataEntry] = {}
    for oid in oids:  # (as run_entries: inputs, then outputs)
        try:
            manifest = DataManifest.from_toml(blobs[oid])
        except ValueError:
            return None
        entries.update((e.path, e) for e in manifest.entries)
    if not entries:
        return None
    wanted, skipped, root = _chosen(run, entries, options, Path(paths.workdir).resolve())
    digests = [sha256_of(e.hash) if e.kept is not None else None for e in wanted]
    if any(d is None for d in digests):
        return None
    here = kept_here(paths.cwd, list(dict.fromkeys(d for d in digests if d is not None)))
    if here is None or here.dropped:
        return None
    for entry, digest in zip(wanted, digests, strict=True):
        assert digest is not None
        found = here.found.get(digest)
        if found is None or (
            found.kind == KEPT_LFS and not restore_kept_lfs(paths, digest, entry.size)
        ):
            return None
    plans = _plans(run, wanted, root, options.force)
    local = _KeptHere(paths, here, [entry for entry, _, state in plans if state != "same"])
    return _carry_out(run, plans, skipped, root, local.bytes_of, paths.prov_dir / HASH_CACHE)


Plan = tuple[DataEntry, Path, str]  # an entry, its target, and what is there now


def _chosen(
    run: RunRecord, entries: dict[str, DataEntry], options: GetOptions, here: Path
) -> tuple[list[DataEntry], list[tuple[str, str]], Path]:
    """The entries to write, those left out (and why), and the directory to write below;
    every path checked before anything is written (manifests are untrusted)."""
    if not entries:
        raise NotFound(
            f"run {run.short_id} recorded no data files",
            "declare data with -i/-o and keep it with --keep",
        )
    wanted, skipped = _select(run, entries, options.paths)
    root = Path(options.output) if options.output is not None else here
    for entry in wanted:
        safe_relative(entry.path)
    return wanted, skipped, root


def _plans(run: RunRecord, wanted: Sequence[DataEntry], root: Path, force: bool) -> list[Plan]:
    """What is at each target now; BadPath for one that differs, unless ``force``, before
    anything is written."""
    plans = []
    for entry in wanted:
        target = _inside(root, entry.path)
        state = _existing(target, entry)
        if state == "differs" and not force:
            raise BadPath(
                f"{_show_path(target)} exists and does not have the recorded bytes of "
                f"{entry.path} (run {run.short_id})",
                "--force overwrites it, or -o DIR writes the files elsewhere",
            )
        plans.append((entry, target, state))
    return plans


def _carry_out(
    run: RunRecord,
    plans: Sequence[Plan],
    skipped: Sequence[tuple[str, str]],
    root: Path,
    bytes_of: Callable[[RunRecord, DataEntry], tuple[str, Opener]],
    cache_path: Path,
) -> GetResult:
    got = []
    for entry, target, state in plans:
        if state == "same":
            got.append(GotFile(entry.path, str(target), entry.size, entry.hash, "unchanged", "-"))
            continue
        source, opener = bytes_of(run, entry)
        _make_parents(root, entry.path)
        _write_verified(root, entry, opener, cache_path)
        got.append(GotFile(entry.path, str(target), entry.size, entry.hash, "written", source))
    return GetResult(run, tuple(got), tuple(skipped))


def _select(
    run: RunRecord, entries: dict[str, DataEntry], paths: Sequence[str]
) -> tuple[list[DataEntry], list[tuple[str, str]]]:
    if paths:
        chosen: dict[str, DataEntry] = {}
        for raw in paths:
            prefix = raw.strip("/")
            found = [e for p, e in entries.items() if p == prefix or p.startswith(prefix + "/")]
            if not found:
                raise NotFound(
                    f"run {run.short_id} recorded no data file {raw!r}",
                    f"see its files with `git prov show {run.short_id} --all-files`",
                )
            chosen.update((e.path, e) for e in found)
        return [chosen[p] for p in sorted(chosen)], []
    wanted = []
    skipped = []
    for path in sorted(entries):
        entry = entries[path]
        if entry.kept is not None or entry.source in (SOURCE_GIT, SOURCE_LFS):
            wanted.append(entry)
        else:
            skipped.append((path, _why_not(entry)))
    if not wanted:
        raise NotFound(
            f"run {run.short_id} kept none of its data files (their hashes only)",
            "record runs with --keep outputs|inputs|all|PATH (or [keep] in .gitprov.toml)",
        )
    return wanted, skipped


def _why_not(entry: DataEntry) -> str:
    if entry.source == SOURCE_DVC:
        return "held by DVC: name it to get it (git prov get RUN PATH), or dvc pull"
    if entry.source == SOURCE_ANNEX:
        return "held by git-annex: name it to get it (git prov get RUN PATH), or git annex get"
    return "not kept (hash only)"


def _show_path(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


# ---- where the bytes come from ---------------------------------------------------------------

Opener = Callable[[], contextlib.AbstractContextManager[Iterator[bytes]]]


class _Fetcher:
    """Finds the bytes of entries, fetching kept data from the remote once if needed."""

    def __init__(self, repo: GitRepo, remote: str | None):
        from git_prov.store.kept import data_trees, tracking_remotes

        self.repo = repo
        self._remote_name = remote
        self._remote: str | None = None
        self._fetched = False
        self._trees = data_trees(repo, tracking_remotes(repo))
        self._dropped: set[str] | None = None
        self.fetched_from: str | None = None  # set when the last bytes came over the network

    def remote(self) -> str:
        if self._remote is None:
            from git_prov.sync import resolve_remote

            self._remote = resolve_remote(self.repo, self._remote_name)
        return self._remote

    def bytes_of(self, run: RunRecord, entry: DataEntry) -> tuple[str, Opener]:
        """Where ``entry``'s bytes come from (kept, git, lfs, dvc, annex; ", fetched from
        REMOTE" when a git-LFS object had to be downloaded) and how to read them."""
        self.fetched_from = None
        source, opener = self._bytes_of(run, entry)
        if self.fetched_from is not None:
            source += f", fetched from {self.fetched_from}: not in the local git-LFS store"
        return source, opener

    def _bytes_of(self, run: RunRecord, entry: DataEntry) -> tuple[str, Opener]:
        if entry.kept is not None:
            return self._kept(run, entry)
        if entry.source == SOURCE_GIT:
            return "git", self._git_blob(run, entry, entry.digest)
        if entry.source == SOURCE_LFS:
            return "lfs", self._lfs(run, entry, entry.digest)
        if entry.source == SOURCE_DVC:
            return "dvc", self._dvc(run, entry)
        if entry.source == SOURCE_ANNEX:
            return "annex", self._annex(run, entry)
        raise NotFound(
            f"the bytes of {entry.path} (run {run.short_id}) were not kept: only its hash "
            f"({entry.hash}) was recorded",
            "keep data with git prov run --keep …; this run's bytes cannot be had",
        )

    def _kept(self, run: RunRecord, entry: DataEntry) -> tuple[str, Opener]:
        from git_prov.store.kept import dropped_digests, find_kept
        from git_prov.store.ledger import Ledger

        digest = sha256_of(entry.hash)
        if digest is None:
            raise CorruptLedger(f"{entry.path}: kept data with a non-SHA-256 hash {entry.hash!r}")
        if self._dropped is None:
            self._dropped = dropped_digests(Ledger(self.repo))
        if digest in self._dropped:
            raise NotFound(
                f"the kept bytes of {entry.path} (run {run.short_id}) were dropped by "
                "git prov gc; only their hash remains",
                "they cannot be had from this ledger",
            )
        found = find_kept(self.repo, digest, self._trees)
        if found is None and not self._fetched:
            self._fetch_data()
            found = find_kept(self.repo, digest, self._trees)
        if found is None:
            remote = self.remote()
            raise NotFound(
                f"the kept bytes of {entry.path} (run {run.short_id}) are neither here nor "
                f"on {remote}",
                f"whoever recorded run {run.short_id} can share them with "
                f"`git prov push --data {remote}`",
            )
        return "kept", self._from_found(run, entry, digest, found)

    def _from_found(self, run: RunRecord, entry: DataEntry, digest: str, found: Found) -> Opener:
        if found.kind == KEPT_GIT:
            assert found.blob is not None
            return self._blob_reader(found.blob)
        return self._lfs(run, entry, digest)

    def _fetch_data(self) -> None:
        """Fetch the remote's ``refs/prov/data`` into its tracking ref (once per get)."""
        from git_prov.store.kept import data_trees, tracking_remotes

        self._fetched = True
        remote = self.remote()
        fetch_data(self.repo, remote)
        self._trees = data_trees(self.repo, tracking_remotes(self.repo))

    def _blob_reader(self, oid: str) -> Opener:
        def open_blob() -> contextlib.AbstractContextManager[Iterator[bytes]]:
            data = self.repo.blob_data(oid)
            assert data is not None
            return contextlib.nullcontext(iter([data]))

        return open_blob

    def _git_blob(self, run: RunRecord, entry: DataEntry, oid: str) -> Opener:
        if self.repo.blob_data(oid) is None:
            raise NotFound(
                f"{entry.path} (run {run.short_id}) is git blob {oid[:12]}, which is not in "
                "this repository",
                "fetch the branch or the provenance it came with (git fetch; git prov fetch)",
            )
        return self._blob_reader(oid)

    def _lfs(self, run: RunRecord, entry: DataEntry, digest: str) -> Opener:
        from git_prov.store.lfs import LfsError, fetch_lfs_objects, lfs_object_path

        if not _lfs_local(self.repo, digest, entry.size):
            remote = self.remote()
            try:
                fetch_lfs_objects(self.repo.root, remote, [(digest, entry.size)])
            except LfsError as exc:
                if exc.missing:
                    raise NotFound(
                        f"the git-LFS object of {entry.path} (run {run.short_id}) is neither "
                        f"here nor on {remote}",
                        f"whoever recorded run {run.short_id} can upload it with "
                        f"`git prov push --data {remote}`",
                    ) from None
                raise
            self.fetched_from = remote
        return _file_reader(lfs_object_path(self.repo.common_dir, digest))

    def _dvc(self, run: RunRecord, entry: DataEntry) -> Opener:
        from git_prov.capture.dvc import object_path

        root = self.repo.root
        for cache in (root / ".dvc" / "cache",):
            path = Path(object_path(str(cache), entry.hash))
            if path.is_file():
                return _file_reader(path)
        raise NotFound(
            f"{entry.path} (run {run.short_id}) is held by DVC ({entry.hash}) and is not in "
            "the local DVC cache",
            f"fetch it with `dvc fetch` (or `dvc pull {entry.path}`), then run git prov get again",
        )

    def _annex(self, run: RunRecord, entry: DataEntry) -> Opener:
        key = entry.hash.removeprefix("annex:") if entry.hash.startswith("annex:") else None
        located = None
        if key is not None:
            proc = self.repo.git("annex", "contentlocation", key, check=False)
            if proc.returncode == 0 and proc.stdout.strip():
                located = self.repo.root / os.fsdecode(proc.stdout.strip())
        if located is None or not located.is_file():
            raise NotFound(
                f"{entry.path} (run {run.short_id}) is held by git-annex ({entry.hash}) and is "
                "not present here",
                f"get it with `git annex get {entry.path}`, then copy it, or run git prov get "
                "again",
            )
        return _file_reader(located)


class _KeptHere:
    """The bytes of entries kept here, read without pygit2 (:func:`get_here`): LFS objects
    from the local store, git blobs through ``git cat-file --batch``, a few at a time in
    the order they are written (up to :data:`_BLOB_BATCH` bytes per read)."""

    def __init__(self, paths: RepoPaths, here: KeptHere, to_write: Sequence[DataEntry]):
        self.paths = paths
        self.here = here
        self._pending = [
            found.blob
            for entry in to_write
            if (found := self._found(entry)).kind == KEPT_GIT and found.blob is not None
        ]
        self._read: dict[str, bytes] = {}

    def _found(self, entry: DataEntry) -> Found:
        digest = sha256_of(entry.hash)
        assert digest is not None  # (get_here took only kept SHA-256 entries)
        return self.here.found[digest]

    def bytes_of(self, run: RunRecord, entry: DataEntry) -> tuple[str, Opener]:
        found = self._found(entry)
        if found.kind == KEPT_GIT and found.blob is not None:
            return "kept", self._blob_reader(entry, found.blob)
        digest = sha256_of(entry.hash)
        assert digest is not None
        return "kept", _file_reader(lfs_object_path(Path(self.paths.common_dir), digest))

    def _blob_reader(self, entry: DataEntry, oid: str) -> Opener:
        def open_blob() -> contextlib.AbstractContextManager[Iterator[bytes]]:
            if oid not in self._read:
                self._read_from(oid)
            data = self._read.pop(oid, None)
            if data is None:
                raise CorruptLedger(
                    f"the kept bytes of {entry.path} (git blob {oid[:12]}) could not be read; "
                    "nothing was written",
                    "run git prov fsck",
                )
            return contextlib.nullcontext(iter([data]))

        return open_blob

    def _read_from(self, oid: str) -> None:
        from git_prov.store.gitcli import read_blobs

        batch, total = [oid], self.here.sizes.get(oid, 0)
        if oid in self._pending:
            start = self._pending.index(oid)
            for later in self._pending[start + 1 :]:
                total += self.here.sizes.get(later, 0)
                if total > _BLOB_BATCH:
                    break
                batch.append(later)
            del self._pending[start : start + len(batch)]
        self._read.update(read_blobs(self.paths.cwd, batch, check=False))


_BLOB_BATCH = 64 << 20


class _FileSource:
    """An opener over a stored file (an LFS object, a DVC or annex object): besides being
    read in chunks, it may be copied by the kernel once its hash is vouched for."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Iterator[bytes]]:
        with open(self.path, "rb") as handle:
            yield iter(lambda: handle.read(_CHUNK), b"")


def _file_reader(path: Path) -> Opener:
    return _FileSource(path)


# ---- writing, safely and verified ------------------------------------------------------------


def _target(root: Path, rel: str) -> Path:
    return root.joinpath(*PurePosixPath(rel).parts)


def _existing(target: Path, entry: DataEntry) -> str:
    """ "absent", "same" (the recorded bytes are there) or "differs"."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "absent"
    except NotADirectoryError:
        return "differs"
    if not stat.S_ISREG(st.st_mode):
        return "differs"
    if st.st_size != entry.size:
        return "differs"
    return "same" if _hash_like(target, entry.hash) == entry.hash else "differs"


def _hash_like(path: Path, like: str) -> str | None:
    algorithm = like.partition(":")[0]
    if algorithm == "sha256":
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"
    if algorithm == "git":
        return _git_blob_id(path.read_bytes())
    if algorithm in ("md5", "md5-dos2unix"):
        from git_prov.capture.dvc import file_chunks, hash_like

        return hash_like(file_chunks(path), like)
    return None


def _git_blob_id(data: bytes) -> str:
    header = b"blob %d\x00" % len(data)
    return "git:" + hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


class _Verifier:
    """The hash of ``like``'s algorithm over the bytes written."""

    def __init__(self, like: str):
        self.algorithm = like.partition(":")[0]
        self._parts: list[bytes] = []
        self._sha256 = hashlib.sha256() if self.algorithm in ("sha256", "annex") else None

    def update(self, chunk: bytes) -> None:
        if self._sha256 is not None:
            self._sha256.update(chunk)
        else:
            self._parts.append(chunk)

    def value(self) -> str | None:
        if self._sha256 is not None:
            return f"sha256:{self._sha256.hexdigest()}"
        data = b"".join(self._parts)
        if self.algorithm == "git":
            return _git_blob_id(data)
        if self.algorithm in ("md5", "md5-dos2unix"):
            from git_prov.capture.dvc import hash_like

            return hash_like([data], f"{self.algorithm}:")
        return None


def _write_verified(
    root: Path, entry: DataEntry, opener: Opener, cache_path: Path | None = None
) -> None:
    """Write ``entry``'s bytes beside its target, check them against the recorded hash,
    then rename them into place (replacing a file or a symlink itself, never its target).

    A stored file with a SHA-256 hash (an LFS object) is copied by :func:`_copy_stored`:
    by the kernel when the stat cache vouches for its bytes, else in one pass that hashes
    exactly the bytes it writes. Other sources are hashed as they are written."""
    target = _inside(root, entry.path)
    verifier = _Verifier(entry.hash)
    fd, tmp = tempfile.mkstemp(prefix=".git-prov-get-", dir=target.parent)
    found: str | None
    try:
        if isinstance(opener, _FileSource) and entry.algorithm == "sha256":
            with os.fdopen(fd, "wb", buffering=0) as out:
                found = _copy_stored(opener.path, out, entry, cache_path)
        else:
            with os.fdopen(fd, "wb") as out, opener() as chunks:
                for chunk in chunks:
                    verifier.update(chunk)
                    out.write(chunk)
            found = verifier.value()
        if found is not None and found != entry.hash and not entry.hash.startswith("annex:"):
            raise CorruptLedger(
                f"the bytes found for {entry.path} hash to {found}, not the recorded "
                f"{entry.hash}; nothing was written",
                "the stored copy is damaged: run git prov fsck --data",
            )
        os.chmod(tmp, 0o755 if entry.mode == MODE_EXECUTABLE else 0o644)
        _inside(root, entry.path)  # again: nothing may have swapped a parent for a link
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_stored(
    source: Path, out: BinaryIO, entry: DataEntry, cache_path: Path | None
) -> str | None:
    """Copy the stored file ``source`` into ``out``; the ``sha256:`` hash of the bytes
    written.

    When the stat cache knows ``source`` with its current stat data (``--keep`` tells it
    about every LFS object it writes, from the read that hashed the bytes it stored; a
    verified copy tells it too), with the recorded hash, and with an mtime safely older
    than the cache's last write (git's racy-clean rule), the kernel copies it (a
    reflink where the file system can, else copy_file_range): the cost of ``cp``. The
    stat data — device, inode, size, mtime, ctime, the fields git's index trusts — must
    not change during the copy, and the copy must have the recorded size. Otherwise one
    pass reads ``source``, hashing exactly the bytes it writes (the caller compares the
    hash), and the stat cache remembers the object for the next ``get``."""
    from git_prov.capture.hashing import RACY_NS, FileDigest, HashJob, StatKey
    from git_prov.capture.stat_cache import StatCache
    from git_prov.store.lfs import copy_hashing

    written_ns = _last_write_ns(cache_path) if cache_path is not None else 0
    with open(source, "rb", buffering=0) as src:
        before = StatKey.of(os.fstat(src.fileno()))
        job = HashJob(str(source), entry.path, before)
        cache = StatCache.open(cache_path) if cache_path is not None else None
        try:
            known = cache.lookup([job])[0] if cache is not None else None
            # git's racy-clean rule: stat data whose mtime is not safely older than the
            # cache's last write (git compares with its index file's mtime) may also
            # describe a change made right after it was taken, in the same timestamp
            # tick; such an entry is never trusted. (The cache's writers store none: this
            # holds against one an older version wrote, or written by hand.)
            if (
                known is not None
                and not known.lfs
                and known.hash == entry.hash
                and before.mtime_ns <= written_ns - RACY_NS
            ):
                _kernel_copy(src.fileno(), out.fileno())
                if StatKey.of(os.fstat(src.fileno())) != before:
                    raise CorruptLedger(
                        f"{_show_path(source)} changed while it was copied; nothing was written",
                        "run git prov get again",
                    )
                if os.fstat(out.fileno()).st_size != entry.size:
                    raise CorruptLedger(
                        f"the copy of {_show_path(source)} has "
                        f"{os.fstat(out.fileno()).st_size} bytes, not the recorded "
                        f"{entry.size}; nothing was written",
                        "run git prov get again",
                    )
                return entry.hash
            started_ns = time.time_ns()
            hexdigest, size = copy_hashing(src, out)
            found = f"sha256:{hexdigest}"
            stable = StatKey.of(os.fstat(src.fileno())) == before and size == before.size
            if (
                cache is not None
                and found == entry.hash
                and stable
                and before.mtime_ns <= started_ns - RACY_NS
            ):
                cache.store([(job, FileDigest(found, size))])
            return found
        finally:
            if cache is not None:
                cache.close()


def _last_write_ns(cache_path: Path) -> int:
    """When the stat cache was last written: the mtime of its database or of its
    write-ahead log, whichever is later (0 when there is neither)."""
    latest = 0
    for name in (str(cache_path), f"{cache_path}-wal"):
        with contextlib.suppress(OSError):
            latest = max(latest, os.stat(name).st_mtime_ns)
    return latest


def _kernel_copy(src: int, dst: int) -> None:
    """Copy a whole file: a reflink where the file system can, else copy_file_range (no
    bytes through user space), else a plain copy."""
    import fcntl

    try:
        fcntl.ioctl(dst, _FICLONE, src)
        return
    except OSError:
        pass
    offset = 0
    try:
        while n := os.copy_file_range(src, dst, 1 << 30, offset, offset):
            offset += n
        return
    except OSError:
        if offset:
            raise
    while chunk := os.pread(src, _CHUNK, offset):
        os.pwrite(dst, chunk, offset)
        offset += len(chunk)


def _inside(root: Path, rel: str) -> Path:
    target = _target(root, rel)
    real_root = os.path.realpath(root)
    real = os.path.realpath(target.parent)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise BadPath(
            f"{rel!r} leads outside {_show_path(root)} through a symbolic link",
            "nothing was written there; remove the link, or use -o DIR",
        )
    return target


def _make_parents(root: Path, rel: str) -> None:
    """Create the directories above ``root/rel`` one at a time, never through a symlink
    that leaves ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    parts = PurePosixPath(rel).parts[:-1]
    for depth in range(1, len(parts) + 1):
        directory = root.joinpath(*parts[:depth])
        real_root = os.path.realpath(root)
        real = os.path.realpath(directory)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise BadPath(
                f"{rel!r} leads outside {_show_path(root)} through a symbolic link",
                "nothing was written there; remove the link, or use -o DIR",
            )
        if not os.path.lexists(directory):
            os.mkdir(directory)
        elif not directory.is_dir():
            raise BadPath(
                f"{'/'.join(parts[:depth])} is not a directory in {_show_path(root)}",
                "move it away, or use -o DIR",
            )


# ---- moving kept data between clones ---------------------------------------------------------


def fetch_data(repo: GitRepo, remote: str) -> bool:
    """Fetch ``remote``'s ``refs/prov/data`` into ``refs/prov/remotes/<remote>/data``
    (False when the remote has none). Raises RemoteProblem when it cannot be reached."""
    listed = repo.git("ls-remote", remote, DATA_REF, check=False)
    if listed.returncode != 0:
        lines = listed.stderr.decode(errors="replace").strip().splitlines()
        raise RemoteProblem(
            f"cannot reach {remote} for its kept data: {lines[-1] if lines else 'no message'}",
            f"check the remote (git remote -v; git ls-remote {remote})",
        )
    if not listed.stdout.strip():
        return False
    proc = repo.git(
        "fetch",
        "--no-tags",
        "--no-write-fetch-head",
        remote,
        f"+{DATA_REF}:{tracking_data_ref(remote)}",
        check=False,
    )
    if proc.returncode != 0:
        raise RemoteProblem(
            f"fetching the kept data of {remote} failed: "
            + proc.stderr.decode(errors="replace").strip(),
            f"check the remote (git ls-remote {remote})",
        )
    return True


# ---- reproduce and check ---------------------------------------------------------------------


def restorable(repo: GitRepo, manifest: DataManifest, paths: Sequence[str]) -> set[str]:
    """Those of ``paths`` (files of ``manifest``) whose recorded bytes were kept and not
    dropped: ``get`` can write them back (from here, or by fetching from the remote)."""
    available = Availability(repo)
    entries = manifest.by_path()
    return {
        p
        for p in paths
        if p in entries
        and entries[p].kept is not None
        and available.describe(entries[p]) in (KEPT_HERE, KEPT_ELSEWHERE)
    }


def restore_hints(
    repo: GitRepo, run: RunRecord, manifest: DataManifest, paths: Sequence[str]
) -> list[str]:
    """``check``'s notes for drifted inputs whose recorded bytes were kept."""
    return [
        f"{p}: its recorded bytes were kept — restore with git prov get {run.short_id} {p}"
        for p in sorted(restorable(repo, manifest, paths))
    ]


def write_kept(repo: GitRepo, run: RunRecord, paths: Sequence[str], root: Path) -> None:
    """Write the recorded bytes of the input files ``paths`` of ``run`` below ``root``
    (``reproduce``'s worktree), replacing what is there; verified as ``get`` verifies."""
    if paths:
        get_files(repo, run.id, GetOptions(paths=paths, output=root, force=True, side="inputs"))

"""``git prov get``: the recorded bytes of a run's data files written back, verified.

* what a get writes and says (:class:`GetOptions`, :class:`GetResult`), which entries it
  takes (:func:`chosen_entries`), what is at each target now (:func:`plans_for`), and
  the writing itself (:func:`carry_out`): every file written beside its target, checked
  against its recorded hash, then renamed into place; manifest paths — untrusted, they
  may come from anyone's clone — never lead outside the destination directory;
* :func:`get_here`: the whole get of bytes kept here, without pygit2 — the run found
  through the query index, its manifests and the data trees read through three git
  processes started together (:class:`Readers`), so they run while Python imports;
* :func:`quick_get`: that get straight from the command line (:mod:`git_prov.entry`,
  without click), and :func:`say_result`, what both front ends print.

Where bytes come from when they are not all kept here (a remote, git, LFS, DVC,
git-annex) is :mod:`git_prov.kept_data`'s work (:func:`~git_prov.kept_data.get_files`),
which uses the same selection, checks and writing.

Start-up is most of the cost of a get of a large kept file (the copy itself is the
kernel's): this module imports only what the steps it is at need.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol

from git_prov.errors import BadPath, CorruptLedger, NotFound
from git_prov.model.manifest import (
    MODE_EXECUTABLE,
    SOURCE_ANNEX,
    SOURCE_DVC,
    SOURCE_GIT,
    SOURCE_LFS,
    DataEntry,
    safe_relative,
)
from git_prov.store.gitcli import CatFile, finish_git, start_git

if TYPE_CHECKING:
    import subprocess

    from git_prov.model.record import RunRecord
    from git_prov.progress import Progress
    from git_prov.store.gitcli.kept import Found, KeptHere
    from git_prov.store.gitcli.notes import DiffAhead
    from git_prov.store.gitcli.paths import RepoPaths

HASH_CACHE = "hash-cache.sqlite"  # the stat cache (git_prov.capture.hashing), in the prov dir
_CHUNK = 1 << 20
_FICLONE = 0x40049409  # Linux ioctl: make the destination a reflink of the source
_TEMP_PREFIX = ".git-prov-get-"  # a file being written, beside its target

# ---- get ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetOptions:
    """What ``git prov get`` writes, and where."""

    paths: Sequence[str] = ()  # manifest paths (or directories) to write; empty: all kept
    output: Path | None = None  # destination directory (default: the working tree)
    force: bool = False  # overwrite files that differ from the recorded bytes
    side: str | None = None  # "inputs" / "outputs": only that manifest
    remote: str | None = None


ALL_KEPT = GetOptions()  # every kept file of the run, into the working tree


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


class StepAside(Exception):
    """The quick path cannot be sure it would do exactly what click's does (here: build
    the query index, which shows progress on a terminal): nothing was written, click runs
    the command instead."""


class Readers:
    """The git processes a get of bytes kept here reads through, started together in
    ``cwd`` so that they run while Python imports what comes next: where the repository
    is (:data:`~git_prov.store.gitcli.paths.DISCOVER`), its data refs
    (:data:`~git_prov.store.gitcli.kept.REF_LISTING`), and one ``cat-file`` for every
    object read (:class:`~git_prov.store.gitcli.CatFile`)."""

    def __init__(self, cwd: Path):
        from git_prov.store.gitcli.kept import REF_LISTING
        from git_prov.store.gitcli.paths import DISCOVER

        self.cwd = cwd
        self._discover = start_git(cwd, DISCOVER)
        self._refs = start_git(cwd, REF_LISTING)
        self.cat = CatFile(cwd)
        self._listed: subprocess.CompletedProcess[bytes] | None = None

    def paths(self) -> RepoPaths:
        """Where the repository is; RepositoryProblem when ``cwd`` is in none."""
        from git_prov.store.gitcli.paths import RepoPaths

        return RepoPaths.from_rev_parse(self.cwd, finish_git(self._discover))

    def listed(self) -> subprocess.CompletedProcess[bytes]:
        """What git said of the data refs."""
        if self._listed is None:
            self._listed = finish_git(self._refs)
        return self._listed

    def close(self) -> None:
        self.cat.close()
        for proc in (self._discover, self._refs):
            if proc.returncode is None:
                finish_git(proc)


def get_here(
    spec: str, options: GetOptions = ALL_KEPT, readers: Readers | None = None
) -> GetResult | None:
    """:func:`~git_prov.kept_data.get_files` without pygit2, when every file it is to write
    is kept here: the run found through the query index, its manifests and the data trees
    read through ``readers`` (started here, in the working directory, when not given).
    The same files, bytes, checks, messages and result as
    :func:`~git_prov.kept_data.get_files`.

    None, having written nothing, when anything is not that simple — not in a
    repository, a file held by git, LFS, DVC or git-annex, bytes not here or dropped, a
    missing or damaged object, a bare repository, GIT_DIR or GIT_WORK_TREE set:
    :func:`~git_prov.kept_data.get_files` then does the whole get and says what is wrong.
    Errors that do not depend on how the ledger is read (no such run, no such path, an
    unsafe path, a modified file without ``force``) are raised here as
    :func:`~git_prov.kept_data.get_files` raises them.
    """
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return None
    from git_prov.errors import RepositoryProblem
    from git_prov.store.gitcli import sharing

    mine = readers is None
    if readers is None:
        try:
            readers = Readers(Path(os.path.abspath(os.getcwd())))
        except (OSError, RepositoryProblem):
            return None
    try:
        try:
            paths = readers.paths()
        except RepositoryProblem:
            return None  # (the full path says what is wrong with the repository)
        with sharing(readers.cat):  # (the query index reads the run's note through it)
            return _get_here(paths, readers, spec, options)
    finally:
        if mine:
            readers.close()


def _get_here(
    paths: RepoPaths, readers: Readers, spec: str, options: GetOptions
) -> GetResult | None:
    if paths.workdir is None:
        return None
    diff = _diff_ahead(paths)  # (first: git works while Python imports what follows)
    try:
        from git_prov.store.gitcli.notes import ahead

        with ahead(diff) if diff is not None else contextlib.nullcontext():
            return _get_run_here(paths, readers, spec, options)
    finally:
        if diff is not None:
            diff.close()


def _diff_ahead(paths: RepoPaths) -> DiffAhead | None:
    """The difference the newest notes commit made, asked of git now, when the query
    index looks older than the notes ref (a run was recorded since it was last brought
    up to date): its catch-up then finds it ready. Only a hint: the index uses it only
    for exactly the commits it has and needs (:class:`DiffAhead`), else asks git."""
    from git_prov.store.gitcli.notes import DiffAhead
    from git_prov.store.gitcli.paths import read_ref

    notes = "refs/notes/prov"  # (query.index's NOTES_REF and INDEX_FILE: not imported yet)
    index = paths.common_dir / "prov" / "index.sqlite"
    try:
        moved = os.stat(paths.common_dir / notes).st_mtime_ns
        written = os.stat(index).st_mtime_ns
    except OSError:  # (a packed ref, no index yet: nothing to guess from)
        return None
    with contextlib.suppress(OSError):  # (the last writer may have folded it in)
        written = max(written, os.stat(f"{index}-wal").st_mtime_ns)
    tip = read_ref(paths, notes) if moved >= written else None
    return DiffAhead(str(paths.cwd), tip) if tip else None


def _get_run_here(
    paths: RepoPaths, readers: Readers, spec: str, options: GetOptions
) -> GetResult | None:
    from git_prov.model.manifest import KEPT_LFS, MAX_MANIFEST_BYTES, DataManifest
    from git_prov.query.index import with_index
    from git_prov.query.located import resolve
    from git_prov.store.gitcli.kept import kept_here, manifests_here, restore_kept_lfs, sha256_of

    assert paths.workdir is not None  # (_get_here)
    run = with_index(paths, lambda index: resolve(index, spec)).record
    oids = [
        oid
        for name, oid in (("inputs", run.inputs), ("outputs", run.outputs))
        if oid and options.side in (None, name)
    ]
    blobs = manifests_here(readers.cat, oids, MAX_MANIFEST_BYTES)
    if blobs is None:
        return None
    entries: dict[str, DataEntry] = {}
    for oid in oids:  # (as kept_data.run_entries: inputs, then outputs)
        try:
            manifest = DataManifest.from_toml(blobs[oid])
        except ValueError:
            return None
        entries.update((e.path, e) for e in manifest.entries)
    if not entries:
        return None
    wanted, skipped, root = chosen_entries(run, entries, options, Path(paths.workdir).resolve())
    digests = [sha256_of(e.hash) if e.kept is not None else None for e in wanted]
    if any(d is None for d in digests):
        return None
    unique = list(dict.fromkeys(d for d in digests if d is not None))
    here = kept_here(readers.cat, readers.listed(), unique)
    if here is None or here.dropped:
        return None
    for entry, digest in zip(wanted, digests, strict=True):
        assert digest is not None
        found = here.found.get(digest)
        if found is None or (
            found.kind == KEPT_LFS and not restore_kept_lfs(paths, digest, entry.size)
        ):
            return None
    plans = plans_for(run, wanted, root, options.force)
    local = _KeptHere(paths, here, readers.cat)
    return carry_out(run, plans, skipped, root, local.bytes_of, paths.prov_dir / HASH_CACHE)


# ---- the command, without click -------------------------------------------------------------

Style = Callable[..., str]  # (text, dim=…) → text, coloured or not


class Echo(Protocol):
    """Prints one line: :func:`git_prov.terminal.echo`."""

    def __call__(self, text: str, /, *, err: bool = False, data: bool = False) -> None: ...


def quick_get(spec: str, options: GetOptions, *, as_json: bool, color: str) -> int | None:
    """``git prov get`` of bytes kept here, run by :mod:`git_prov.entry` without click (from
    ``-C DIR``, where it went): the exit status, or None — having written and printed
    nothing — when click's command should run instead (bytes not all kept here, a query
    index to build on a terminal, an ``-o`` click would refuse)."""
    output = options.output
    if output is not None and os.path.lexists(output) and not os.path.isdir(output):
        return None  # (click says that DIR is a file)
    import sys

    from git_prov import progress
    from git_prov.terminal import echo, plain, style

    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return None
    readers = Readers(Path(os.path.abspath(os.getcwd())))  # (first: git starts meanwhile)
    try:
        # As click's group: progress of a first query on a terminal (which this path has
        # not got: it steps aside), else none.
        progress.set_ambient(lambda: _no_progress(sys.stderr.isatty()))
        try:
            result = get_here(spec, options, readers)
        except StepAside:
            return None
    finally:
        readers.close()
    if result is None:
        return None
    colored = color == "always" or (
        color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    return say_result(result, as_json=as_json, echo=echo, style=style if colored else plain)


def _no_progress(terminal: bool) -> Progress:
    from git_prov.progress import NO_PROGRESS

    if terminal:
        raise StepAside
    return NO_PROGRESS


def say_result(result: GetResult, *, as_json: bool, echo: Echo, style: Style) -> int:
    """What ``git prov get`` prints of ``result`` (both front ends); the exit status."""
    from git_prov.model.record import printable

    if as_json:
        import json

        echo(json.dumps(result.to_json(), indent=2, sort_keys=True), data=True)
        return 0
    for f in result.files:
        what = "unchanged" if f.action == "unchanged" else f"written (from {f.source})"
        echo(f"{printable(f.target)}  {what}")
    for path, why in result.skipped:
        echo(style(f"{printable(path)}  skipped: {why}", dim=True), err=True)
    return 0


Plan = tuple[DataEntry, Path, str]  # an entry, its target, and what is there now


def chosen_entries(
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


def plans_for(run: RunRecord, wanted: Sequence[DataEntry], root: Path, force: bool) -> list[Plan]:
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


def carry_out(
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


class _KeptHere:
    """The bytes of entries kept here, read without pygit2 (:func:`get_here`): LFS objects
    from the local store, git blobs through the readers' ``cat-file``, one at a time as
    each file is written."""

    def __init__(self, paths: RepoPaths, here: KeptHere, cat: CatFile):
        self.paths = paths
        self.here = here
        self.cat = cat

    def _found(self, entry: DataEntry) -> Found:
        from git_prov.store.gitcli.kept import sha256_of

        digest = sha256_of(entry.hash)
        assert digest is not None  # (get_here took only kept SHA-256 entries)
        return self.here.found[digest]

    def bytes_of(self, run: RunRecord, entry: DataEntry) -> tuple[str, Opener]:
        from git_prov.model.manifest import KEPT_GIT
        from git_prov.store.lfs import lfs_object_path

        found = self._found(entry)
        if found.kind == KEPT_GIT and found.blob is not None:
            return "kept", self._blob_reader(entry, found.blob)
        digest = entry.hash.removeprefix("sha256:")
        return "kept", file_reader(lfs_object_path(Path(self.paths.common_dir), digest))

    def _blob_reader(self, entry: DataEntry, oid: str) -> Opener:
        def open_blob() -> contextlib.AbstractContextManager[Iterator[bytes]]:
            data = (self.cat.contents([oid]) or {}).get(oid)
            if data is None:
                raise CorruptLedger(
                    f"the kept bytes of {entry.path} (git blob {oid[:12]}) could not be read; "
                    "nothing was written",
                    "run git prov fsck",
                )
            return contextlib.nullcontext(iter([data]))

        return open_blob


class _FileSource:
    """An opener over a stored file (an LFS object, a DVC or annex object): besides being
    read in chunks, it may be copied by the kernel once its hash is vouched for."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Iterator[bytes]]:
        with open(self.path, "rb") as handle:
            yield iter(lambda: handle.read(_CHUNK), b"")


def file_reader(path: Path) -> Opener:
    """An opener over the stored file ``path``."""
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
    import hashlib

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
    import hashlib

    header = b"blob %d\x00" % len(data)
    return "git:" + hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


class _Verifier:
    """The hash of ``like``'s algorithm over the bytes written."""

    def __init__(self, like: str):
        self.algorithm = like.partition(":")[0]
        self._parts: list[bytes] = []
        import hashlib

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
    fd, tmp = _new_file_beside(target)
    found: str | None
    try:
        if isinstance(opener, _FileSource) and entry.algorithm == "sha256":
            with os.fdopen(fd, "wb", buffering=0) as out:
                found = _copy_stored(opener.path, out, entry, cache_path)
        else:
            verifier = _Verifier(entry.hash)  # (not for a kernel copy: no hashlib loaded)
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


def _new_file_beside(target: Path) -> tuple[int, str]:
    """A new file in ``target``'s directory, as :func:`tempfile.mkstemp` makes one
    (created exclusively, mode 0600, never through a symlink; a random name) without
    loading tempfile (and random, shutil …) on get's path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        path = os.path.join(target.parent, _TEMP_PREFIX + os.urandom(6).hex())
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


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
    from git_prov.capture.digests import FileDigest, HashJob, StatKey
    from git_prov.capture.racy import RACY_NS
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
            import time

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

"""Kept data given back: the whole ``git prov get`` (bytes from wherever they can be had),
what ``show`` says about each data file, and moving kept bytes between clones
(``--data``).

Bytes are found by the hash a data manifest records: kept by git-prov (a git blob or a
git-LFS object under ``refs/prov/data``, see :mod:`git_prov.store.kept`), or held by the
tool that named them (git for ``git:`` hashes, git-LFS for LFS pointers, DVC's cache,
git-annex), fetched from the remote when needed. Which files a get takes, the checks
before anything is written and the verified writing itself are :mod:`git_prov.kept_get`'s,
which also gets bytes kept here without pygit2 (:func:`~git_prov.kept_get.get_here`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from git_prov.errors import CorruptLedger, NotFound, RemoteProblem
from git_prov.kept_get import (
    ALL_KEPT,
    HASH_CACHE,
    GetOptions,
    GetResult,
    Opener,
    carry_out,
    chosen_entries,
    file_reader,
    plans_for,
)
from git_prov.model.manifest import (
    KEPT_GIT,
    KEPT_LFS,
    SOURCE_ANNEX,
    SOURCE_DVC,
    SOURCE_GIT,
    SOURCE_LFS,
    DataEntry,
    DataManifest,
)
from git_prov.model.record import RunRecord
from git_prov.store.gitcli.kept import (
    DATA_REF,
    Found,
    restore_kept_lfs,
    sha256_of,
    tracking_data_ref,
)

if TYPE_CHECKING:  # (loaded only where used)
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import GitRepo

__all__ = ["GetOptions", "GetResult", "get_files"]  # (the get's types live in kept_get)

# What `show` says about a data file's bytes.
KEPT_HERE = "kept here"
KEPT_ELSEWHERE = "kept, not here (git prov get fetches it)"
KEPT_DROPPED = "dropped by git prov gc (hash only)"
IN_GIT = "in git"
IN_LFS = "in git-LFS"
IN_DVC = "in DVC"
IN_ANNEX = "in git-annex"
HASH_ONLY = "hash only"


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


def run_entries(ledger: Ledger, run: RunRecord, side: str | None = None) -> dict[str, DataEntry]:
    """The data entries of a run by path: inputs, then outputs (an output wins where a run
    read and rewrote the same path: it is the state the run left)."""
    entries: dict[str, DataEntry] = {}
    for name, oid in (("inputs", run.inputs), ("outputs", run.outputs)):
        if oid and side in (None, name):
            manifest: DataManifest = ledger.data_manifest(oid)
            entries.update((e.path, e) for e in manifest.entries)
    return entries


def get_files(repo: GitRepo, spec: str, options: GetOptions = ALL_KEPT) -> GetResult:
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
    wanted, skipped, root = chosen_entries(run, entries, options, repo.root)
    fetcher = _Fetcher(repo, options.remote)
    plans = plans_for(run, wanted, root, options.force)
    return carry_out(run, plans, skipped, root, fetcher.bytes_of, repo.prov_dir / HASH_CACHE)


# ---- where the bytes come from ---------------------------------------------------------------


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
        return file_reader(lfs_object_path(self.repo.common_dir, digest))

    def _dvc(self, run: RunRecord, entry: DataEntry) -> Opener:
        from git_prov.capture.dvc import object_path

        root = self.repo.root
        for cache in (root / ".dvc" / "cache",):
            path = Path(object_path(str(cache), entry.hash))
            if path.is_file():
                return file_reader(path)
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
        return file_reader(located)


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

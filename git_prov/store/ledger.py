"""The ledger: run records as notes under ``refs/notes/prov``, and the objects they name
(manifests, logs, kept commits) under ``refs/prov/objects``.

Writes follow one order: objects first, then ``refs/prov/objects`` (compare-and-swap),
then ``refs/notes/prov`` (compare-and-swap). A crash at any point leaves either no trace of
a run or the whole run; at worst, unreferenced manifests that nothing points to.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from git_prov.errors import CorruptLedger, LedgerConflict, NotFound
from git_prov.model.frozen import FRESH, MutableFields, mutable_fields
from git_prov.model.ids import RUN_ID_RE, is_hex_oid
from git_prov.model.limits import note_too_large
from git_prov.model.manifest import MAX_MANIFEST_BYTES, DataManifest, EnvironmentManifest
from git_prov.model.record import (
    Attachment,
    Entry,
    LineProblem,
    RunRecord,
    Tombstone,
    encode_entry,
    parse_note,
)
from git_prov.model.record import LocatedRun as LocatedRun  # (defined in the model: pure data)
from git_prov.model.values import canonical_json
from git_prov.store import notes
from git_prov.store.authored import remember_authored
from git_prov.store.locking import ledger_lock
from git_prov.store.loose import lost_fanout, write_object
from git_prov.store.repo import GitRepo
from git_prov.store.trees import FILEMODE_BLOB, Change, edit_tree, has_path

if TYPE_CHECKING:
    from git_prov.model.history import Series

NOTES_REF = "refs/notes/prov"
# Derived, local: one short line per run for plain `git log` (notes.displayRef). Rebuilt
# from the ledger whenever it changes; never pushed, never read back.
DISPLAY_REF = "refs/notes/prov-log"
OBJECTS_REF = "refs/prov/objects"
KIND_DATA = "data"
KIND_ENV = "env"
KIND_LOG = "log"
KIND_METRICS = "metrics"  # a run's metric histories (model/history.py)
KEEP_DIR = "keep"
OBJECT_KINDS = (KIND_DATA, KIND_ENV, KIND_LOG, KIND_METRICS)
CAS_ATTEMPTS = 40
EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
# Manifests and logs above this size are refused unread (see MAX_MANIFEST_BYTES).
MAX_OBJECT_BYTES = MAX_MANIFEST_BYTES
# Objects of a write up to this size are kept in memory until its ref is moved, to be
# written again should a concurrent prune delete them (larger ones are only checked).
_REWRITE_LIMIT = 64 << 20
_RECHECKS = 3  # passes over a write's objects after its ref moved
# Builds of one write whose objects a concurrent prune deleted before its ref named them:
# each after any `git gc` then running has ended (a prune loop can take several).
_VANISHED_BUILDS = 20
# How long a write waits for a `git gc` that was running when its ref moved (see _await_gc).
GC_WAIT_SECONDS = 10.0
_DISPLAY_PART = 2000  # commits whose display lines are rewritten at once
# A write changing more notes than this builds its tree a part at a time, each part's new
# objects held by a private ref until the one swap (git_prov.store.staged).
STAGE_NOTES = 2000


def object_path(kind: str, oid: str) -> str:
    """Where an object of ``kind`` lives in the objects tree (content-addressed, fanned out)."""
    return f"{kind}/{oid[:2]}/{oid[2:]}"


@mutable_fields
class LedgerScan(MutableFields):
    """Everything in the notes ref, grouped by run."""

    runs: dict[str, LocatedRun] = field(default_factory=dict)
    conflicts: dict[str, list[RunRecord]] = field(default_factory=dict)
    tombstones: dict[str, Tombstone] = field(default_factory=dict)
    problems: list[LineProblem] = field(default_factory=list)
    by_commit: dict[str, list[str]] = field(default_factory=dict)

    def __init__(
        self,
        runs: dict[str, LocatedRun] = FRESH,
        conflicts: dict[str, list[RunRecord]] = FRESH,
        tombstones: dict[str, Tombstone] = FRESH,
        problems: list[LineProblem] = FRESH,
        by_commit: dict[str, list[str]] = FRESH,
    ) -> None:
        self.runs = {} if runs is FRESH else runs
        self.conflicts = {} if conflicts is FRESH else conflicts
        self.tombstones = {} if tombstones is FRESH else tombstones
        self.problems = [] if problems is FRESH else problems
        self.by_commit = {} if by_commit is FRESH else by_commit

    def live_runs(self) -> list[LocatedRun]:
        """Runs not deleted by a tombstone, oldest first."""
        return [r for k, r in sorted(self.runs.items()) if k not in self.tombstones]


class Ledger:
    """Read and write access to one repository's provenance."""

    def __init__(self, repo: GitRepo):
        self.repo = repo
        self.pygit = repo.pygit
        # Bytes of the blobs this process stored, so that a blob a concurrent
        # `git gc --prune=now` deleted before its ref named it can be written again.
        self._stored: dict[str, bytes] = {}
        self._budget = 0

    # ---- reading -------------------------------------------------------------------------

    def tip(self, ref: str) -> pygit2.Commit | None:
        """The commit a ledger ref points at, or None when it does not exist yet."""
        try:
            target = self.pygit.references[ref].target
        except KeyError:
            return None
        obj = self.pygit.get(target)
        if not isinstance(obj, pygit2.Commit):
            raise broken_ref(ref, str(target), missing=obj is None)
        if not self.pygit.odb.exists(obj.tree_id):
            raise broken_ref(ref, str(target), missing=True)
        return obj

    def _tree(self, ref: str) -> pygit2.Tree | None:
        tip = self.tip(ref)
        return tip.tree if tip is not None else None

    def notes_in(self, tree: pygit2.Tree) -> Iterator[tuple[str, pygit2.Oid]]:
        """Every (annotated commit hex, note blob id) of a notes tree (the tree of any notes
        ref: :func:`git_prov.store.notes.iter_notes`)."""
        return notes.iter_notes(self.pygit, tree)

    def note_text(self, commit_hex: str) -> str:
        """The raw note on one commit ('' when there is none, or when it is over the
        reader limit: :meth:`scan` reports that)."""
        tree = self._tree(NOTES_REF)
        found = notes.find_note(self.pygit, tree, commit_hex)
        if found is None or self._oversized(commit_hex, found[1]):
            return ""
        return notes.read_note_text(self.pygit, tree, commit_hex)

    def _oversized(self, commit_hex: str, blob_id: pygit2.Oid) -> str | None:
        """Why a note is not read (model/limits.py), from its header only."""
        try:
            size = self.pygit.odb.read_header(blob_id)[1]
        except (KeyError, ValueError, pygit2.GitError):
            return None  # (reading it says what is wrong)
        return note_too_large(commit_hex, int(size))

    def entries_on(self, commit_hex: str) -> tuple[list[Entry], list[LineProblem]]:
        """The parsed entries of one commit's note, and the lines that could not be read."""
        parsed = parse_note(self.note_text(commit_hex), commit_hex)
        return list(parsed.entries), list(parsed.problems)

    def scan(self) -> LedgerScan:
        """Read every note. Bad lines are collected in ``problems``, never fatal."""
        scan = LedgerScan()
        tree = self._tree(NOTES_REF)
        if tree is None:
            return scan
        shown: dict[str, list[str]] = {}
        attached: dict[str, list[Attachment]] = {}
        # In commit id order: the first record of a run id is the one in the note of the
        # smallest commit id (the query index picks the same one).
        for commit_hex, blob_id in sorted(notes.iter_notes(self.pygit, tree)):
            skipped = self._oversized(commit_hex, blob_id)
            if skipped is not None:  # the same limit every reader applies, reported
                scan.problems.append(LineProblem(commit_hex, 0, skipped, ""))
                continue
            blob = self.pygit[blob_id]
            assert isinstance(blob, pygit2.Blob)
            parsed = parse_note(blob.data.decode("utf-8", errors="replace"), commit_hex)
            scan.problems.extend(parsed.problems)
            for entry in parsed.entries:
                if isinstance(entry, RunRecord):
                    _add_record(scan, entry)
                    shown.setdefault(entry.id, []).append(commit_hex)
                    scan.by_commit.setdefault(commit_hex, []).append(entry.id)
                elif isinstance(entry, Attachment):
                    attached.setdefault(entry.run, []).append(entry)
                    shown.setdefault(entry.run, []).append(commit_hex)
                    scan.by_commit.setdefault(commit_hex, []).append(entry.run)
                elif isinstance(entry, Tombstone):
                    scan.tombstones.setdefault(entry.run, entry)
        for run_id, located in list(scan.runs.items()):
            record = located.record
            commits = [record.commit] + [
                c for c in dict.fromkeys(shown.get(run_id, [])) if c != record.commit
            ]
            scan.runs[run_id] = LocatedRun(record, tuple(commits), tuple(attached.get(run_id, ())))
        return scan

    def runs_on(self, commit_hex: str, scan: LedgerScan | None = None) -> list[LocatedRun]:
        """Runs shown on one commit, oldest first (without ``scan``: from a fresh one).

        Queries find them through the query index instead, which gives the same answer
        without reading every note (:func:`git_prov.query.located.runs_on_commit`)."""
        if scan is None:
            scan = self.scan()
        ids = scan.by_commit.get(commit_hex, [])
        return [
            scan.runs[i] for i in sorted(set(ids)) if i in scan.runs and i not in scan.tombstones
        ]

    def resolve_run(self, spec: str, scan: LedgerScan | None = None) -> LocatedRun:
        """Find a run by full id, by its short id (or a prefix of it), or by an id prefix
        (without ``scan``: in a fresh one; queries use the query index instead, as
        :func:`git_prov.query.located.find_run`)."""
        if scan is None:
            scan = self.scan()
        spec = spec.strip()
        if spec in scan.runs and spec not in scan.tombstones:
            return scan.runs[spec]
        if len(spec) < 4:
            raise NotFound(f"run id {spec!r} is too short", "give at least 4 characters")
        found = [
            r
            for rid, r in scan.runs.items()
            if rid.startswith(spec) or _short(rid).startswith(spec)
        ]
        matches = [r for r in found if r.id not in scan.tombstones]
        if not matches and found:
            # A run removed by `git prov gc` is hidden everywhere, but say so.
            stone = scan.tombstones[found[0].id]
            raise NotFound(
                f"run {found[0].id} was removed on {stone.at[:10]}"
                + (f" ({stone.reason})" if stone.reason else ""),
                "removed runs are hidden; `git prov fsck` still checks them",
            )
        if not matches:
            raise NotFound(f"no run matches {spec!r}", "list runs with `git prov find`")
        if len(matches) > 1:
            listed = ", ".join(sorted(m.id for m in matches)[:5])
            raise NotFound(
                f"run id {spec!r} is ambiguous: {listed}", "give more characters of the id"
            )
        return matches[0]

    def read_object(self, oid: str, what: str, limit: int = MAX_OBJECT_BYTES) -> bytes:
        """The bytes of a stored object (manifest, log); a clear error when it is missing,
        not a blob, or larger than ``limit`` (checked from its header, before reading it:
        a ledger fetched from someone else may hold hostile giants)."""
        if not is_hex_oid(oid):
            raise CorruptLedger(f"{what} id {oid[:50]!r} is not an object id")
        try:
            kind, size = self.pygit.odb.read_header(oid)
        except (KeyError, ValueError, pygit2.GitError):
            raise NotFound(
                f"{what} {oid[:12]} is not in this repository",
                "fetch the provenance it came with (git prov fetch), or run git prov fsck",
            ) from None
        if kind != pygit2.enums.ObjectType.BLOB:
            raise CorruptLedger(f"{what} {oid[:12]} is not a blob")
        if size > limit:
            raise CorruptLedger(
                f"{what} {oid[:12]} is {size:,} bytes, over the {limit:,}-byte limit",
                "it was not read; inspect it with git cat-file -s / git prov fsck",
            )
        obj = self.pygit[oid]
        assert isinstance(obj, pygit2.Blob)
        return obj.data

    def object_size(self, oid: str, what: str) -> int:
        """The size of a stored blob, read from its header only."""
        try:
            return int(self.pygit.odb.read_header(oid)[1])
        except (KeyError, ValueError, pygit2.GitError):
            raise NotFound(
                f"{what} {oid[:12]} is not in this repository",
                "fetch the provenance it came with (git prov fetch), or run git prov fsck",
            ) from None

    def data_manifest(self, oid: str) -> DataManifest:
        """Load a data manifest by id."""
        try:
            return DataManifest.from_toml(self.read_object(oid, "data manifest"))
        except ValueError as exc:
            raise CorruptLedger(f"data manifest {oid[:12]}: {exc}") from None

    def env_manifest(self, oid: str) -> EnvironmentManifest:
        """Load an environment manifest by id."""
        try:
            return EnvironmentManifest.from_toml(self.read_object(oid, "environment manifest"))
        except ValueError as exc:
            raise CorruptLedger(f"environment manifest {oid[:12]}: {exc}") from None

    def metric_history(self, oid: str) -> dict[str, Series]:
        """Load a run's metric histories by the id its record names (``history``)."""
        from git_prov.model.history import decode_history

        try:
            return decode_history(self.read_object(oid, "metric history"))
        except ValueError as exc:
            raise CorruptLedger(f"metric history {oid[:12]}: {exc}") from None

    def is_kept(self, commit_hex: str) -> bool:
        """True when ``refs/prov/objects`` keeps ``commit_hex`` reachable."""
        tree = self._tree(OBJECTS_REF)
        return tree is not None and has_path(tree, object_path(KEEP_DIR, commit_hex))

    # ---- writing -------------------------------------------------------------------------

    def store_object(self, data: bytes) -> str:
        """Write a blob (manifest, log) into the object database; returns its id."""
        try:
            oid = str(write_object(self.pygit.create_blob, data))
        except (pygit2.GitError, OSError) as exc:
            from git_prov.store.writable import explain_write_failure

            raise explain_write_failure(self.repo, exc, len(data)) or exc from None
        if len(data) <= _REWRITE_LIMIT:
            self._stored[oid] = data
        return oid

    def write(
        self,
        entries: Iterable[tuple[str, Entry]],
        *,
        objects: Mapping[str, Iterable[str]] | None = None,
        keep: Iterable[str] = (),
        message: str = "git-prov: record",
    ) -> None:
        """Add ``entries`` (annotated commit, entry) to the ledger in one atomic step.

        ``objects`` maps a kind (data, env, log) to blob ids already written with
        :meth:`store_object`; they and the ``keep`` commits become reachable from
        ``refs/prov/objects`` before any note names them.
        """
        objects = objects or {}
        keep = list(dict.fromkeys(keep))
        with ledger_lock(self.repo.prov_dir / "ledger.lock"):
            self._update_objects(objects, keep, message)
            # A snapshot held from a private ref since it was taken is kept now (only a
            # process that took one has loaded store/pins.py).
            pins = sys.modules.get("git_prov.store.pins")
            if pins is not None:
                pins.release(keep)
            additions: dict[str, list[str]] = {}
            authored: list[str] = []
            for commit_hex, entry in entries:  # (read once: gc gives a generator)
                additions.setdefault(commit_hex, []).append(encode_entry(entry))
                if isinstance(entry, RunRecord):
                    authored.append(canonical_json(entry.to_json_dict()))
            if additions:
                self._update_notes(additions, message)
                remember_authored(self.repo.prov_dir, authored)
                self.refresh_display(additions)

    def display_enabled(self) -> bool:
        """True when ``git log`` is set to show the display ref (``git prov init``)."""
        try:
            values = list(self.pygit.config.get_multivar("notes.displayRef"))
        except (pygit2.GitError, KeyError, ValueError):
            return False
        return DISPLAY_REF in values

    def refresh_display(self, commits: Iterable[str] | None = None, *, force: bool = False) -> None:
        """Rewrite the ``git log`` display lines of ``commits`` (None: every commit) from
        the ledger. Does nothing unless the display is enabled (or ``force``)."""
        if not (force or self.display_enabled()):
            return
        notes_tree = self._tree(NOTES_REF)
        if commits is None:
            targets = [c for c, _ in notes.iter_notes(self.pygit, notes_tree)] if notes_tree else []
        else:
            targets = list(commits)

        def text(commit_hex: str) -> str:
            parsed = parse_note(notes.read_note_text(self.pygit, notes_tree, commit_hex))
            # `git prov gc` writes a tombstone in every note its run is shown on.
            removed = {e.run for e in parsed.entries if isinstance(e, Tombstone)}
            lines = [
                e.display_line()
                for e in parsed.entries
                if (isinstance(e, RunRecord) and e.id not in removed)
                or (isinstance(e, Attachment) and e.run not in removed)
            ]
            return "".join(line + "\n" for line in sorted(set(lines)))

        # A part at a time (a merge that brought a whole ledger changes every note): the
        # display lines of one part are held at once, not those of every commit, and each
        # part's objects are held by a private ref until the one swap (store/staged.py).
        parts = [targets[i : i + _DISPLAY_PART] for i in range(0, len(targets), _DISPLAY_PART)]
        message = "git-prov: refresh git log display"
        if len(parts) > 1:
            from git_prov.store.staged import write_staged

            def step(part: list[str]) -> Callable[[pygit2.Tree | None], pygit2.Oid]:
                return lambda tree: notes.set_notes(self.pygit, tree, {c: text(c) for c in part})

            write_staged(self, DISPLAY_REF, lambda _: [step(p) for p in parts], message)
            return
        texts = {c: text(c) for c in parts[0]} if parts else {}

        def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
            tree = tip.tree if tip is not None else None
            tree_id = notes.set_notes(self.pygit, tree, texts)
            if tree is not None and tree_id == tree.id:
                return None
            return self._commit(
                tree_id, [tip.id] if tip is not None else [], "git-prov: refresh git log display"
            )

        self._cas(DISPLAY_REF, build, "git-prov: refresh git log display")

    def _update_objects(
        self, objects: Mapping[str, Iterable[str]], keep: list[str], message: str
    ) -> None:
        wanted: dict[str, Change] = {}
        for kind, oids in objects.items():
            for oid in oids:
                wanted[object_path(kind, oid)] = (pygit2.Oid(hex=oid), FILEMODE_BLOB)
        empty = None
        for commit_hex in keep:
            if empty is None:  # (stored: written again if a prune deletes it meanwhile)
                empty = pygit2.Oid(hex=self.store_object(b""))
            wanted[object_path(KEEP_DIR, commit_hex)] = (empty, FILEMODE_BLOB)
        if not wanted:
            return

        def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
            tree = tip.tree if tip is not None else None
            missing = {p: c for p, c in wanted.items() if tree is None or not has_path(tree, p)}
            if not missing:
                return None
            new_keep = [c for c in keep if object_path(KEEP_DIR, c) in missing]
            tree_id = edit_tree(self.pygit, tree, missing)
            parents = ([tip.id] if tip is not None else []) + [pygit2.Oid(hex=c) for c in new_keep]
            return self._commit(tree_id, parents, message)

        self._cas(OBJECTS_REF, build, message)

    def _update_notes(self, additions: Mapping[str, list[str]], message: str) -> None:
        if len(additions) > STAGE_NOTES:  # (a gc of 100,000 runs: written a part at a time)
            from git_prov.store.staged import write_staged

            order = sorted(additions)
            parts = [order[i : i + STAGE_NOTES] for i in range(0, len(order), STAGE_NOTES)]

            def step(part: list[str]) -> Callable[[pygit2.Tree | None], pygit2.Oid]:
                return lambda tree: notes.append_lines(
                    self.pygit, tree, {c: additions[c] for c in part}
                )

            write_staged(self, NOTES_REF, lambda _: [step(p) for p in parts], message)
            return

        def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
            tree = tip.tree if tip is not None else None
            tree_id = notes.append_lines(self.pygit, tree, additions)
            if tree is not None and tree_id == tree.id:
                return None
            return self._commit(tree_id, [tip.id] if tip is not None else [], message)

        self._cas(NOTES_REF, build, message)

    def _commit(self, tree: pygit2.Oid, parents: list[pygit2.Oid], message: str) -> pygit2.Oid:
        sig = self.repo.signature()
        now = pygit2.Signature(sig.name, sig.email, int(time.time()), 0)
        return write_object(self.pygit.create_commit, None, now, now, message + "\n", tree, parents)

    def _cas(
        self,
        ref: str,
        build: Callable[[pygit2.Commit | None], pygit2.Oid | None],
        message: str,
        held: list[pygit2.Tree] | None = None,
    ) -> None:
        """Compare-and-swap ``ref`` to what ``build`` makes of its current tip, retrying
        from a fresh read whenever someone else moved it first. A full disk or a
        read-only ``.git`` is a StorageProblem (exit 11), not a race to retry. ``held``:
        trees another ref of ours keeps reachable (``build`` may set them), whose objects
        are not new (git_prov.store.staged)."""
        try:
            self._swap(ref, build, message, held)
        except (pygit2.GitError, OSError) as exc:
            from git_prov.store.writable import explain_write_failure

            raise explain_write_failure(self.repo, exc) or exc from None

    def _swap(
        self,
        ref: str,
        build: Callable[[pygit2.Commit | None], pygit2.Oid | None],
        message: str,
        held: list[pygit2.Tree] | None = None,
    ) -> None:
        recovered = False
        vanished = 0
        for attempt in range(CAS_ATTEMPTS):
            try:
                reference = self.pygit.references[ref]
            except KeyError:
                reference = None
            tip = None
            if reference is not None:
                obj = self.pygit.get(reference.target)
                if not isinstance(obj, pygit2.Commit):
                    raise broken_ref(ref, str(reference.target), missing=obj is None)
                if not self.pygit.odb.exists(obj.tree_id):
                    raise broken_ref(ref, str(reference.target), missing=True)
                tip = obj
            try:
                new = build(tip)
            except OSError as exc:
                # A tree or blob of the new commit lost its fan-out directory to a
                # concurrent prune as it was written (store/loose.py): build again.
                if not lost_fanout(exc):
                    raise
                continue
            except (KeyError, pygit2.GitError) as exc:
                # An object the new commit needs vanished while it was built (a blob
                # stored a moment ago, a snapshot commit): build again, a few times.
                said = str(exc)
                if not isinstance(exc, KeyError) and not (
                    "not found" in said or "invalid object" in said
                ):
                    raise
                vanished += 1
                if vanished >= _VANISHED_BUILDS:
                    raise _vanished(ref) from None
                self._after_prune()
                continue
            if new is None:
                return
            # A concurrent `git gc --prune=now` deletes loose objects no ref names yet:
            # ours, until the swap below. Never point the ref at a commit whose objects
            # are gone (build again from a fresh read), and put back any that vanish
            # around the swap.
            written = self._new_objects(new, tip, held or ())
            if written is None:
                vanished += 1
                if vanished >= _VANISHED_BUILDS:
                    raise _vanished(ref)
                self._after_prune()
                continue
            try:
                if reference is None:
                    self.pygit.create_reference_direct(ref, new, False, message=message)
                else:
                    reference.set_target(new, message)
                self._keep_present(ref, new, written)
                return
            except (pygit2.GitError, pygit2.AlreadyExistsError, ValueError, OSError) as exc:
                from git_prov.store.writable import explain_write_failure

                problem = explain_write_failure(self.repo, exc)
                if problem is not None:
                    raise problem from None
                # libgit2 reports a ref locked by someone else as OSError ("failed to lock
                # file … .lock"): a race like any other, unless the lock is stale.
                if ".lock" in str(exc) and not recovered:
                    # A writer killed inside a ref update left <ref>.lock behind. Writers
                    # hold ledger.lock here, so one that stays old is provably stale.
                    from git_prov.store.reflocks import recover_stale_ref_locks

                    recovered = True
                    recover_stale_ref_locks(self.repo, held=True)
                    continue
                import random

                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise LedgerConflict(
            f"could not update {ref}: it kept changing under us ({CAS_ATTEMPTS} attempts)",
            "try again; if it persists, look for a process rewriting it in a loop",
        )

    def _after_prune(self) -> None:
        """Before building a write again whose objects vanished: wait for a `git gc`
        running now to end (its prune deletes what no ref names yet, ours included), then
        write again the blobs this process stored."""
        _await_gc(self.repo.common_dir, time.time())
        self._restore_stored()

    def _restore_stored(self) -> None:
        """Write again the blobs this process stored that have vanished."""
        for oid, data in self._stored.items():
            if not self.pygit.odb.exists(pygit2.Oid(hex=oid)):
                write_object(self.pygit.create_blob, data)

    def _new_objects(
        self, new: pygit2.Oid, tip: pygit2.Commit | None, held: Sequence[pygit2.Tree] = ()
    ) -> dict[pygit2.Oid, tuple[int, bytes | None]] | None:
        """The objects of commit ``new`` that its parents (and the trees ``held``) do not
        have (the commit, its changed trees and blobs), with their bytes, or None when one
        is missing and cannot be written again. Parents must exist: a commit with a missing
        parent would break ``git gc`` for the whole repository."""
        commit = self.pygit.get(new)
        if not isinstance(commit, pygit2.Commit):
            return None
        if any(not self.pygit.odb.exists(p) for p in commit.parent_ids):
            return None
        bases = [*held, *([tip.tree] if tip is not None else [])]
        if len(commit.parent_ids) > 1:  # a merge: what the other side had is not new
            other = self.pygit.get(commit.parent_ids[1])
            if isinstance(other, pygit2.Commit) and (tip is None or other.id != tip.id):
                bases.append(other.tree)
        found: dict[pygit2.Oid, tuple[int, bytes | None]] = {}
        self._budget = _REWRITE_LIMIT * 4
        try:
            kind, raw = self.pygit.odb.read(new)
            found[new] = (int(kind), raw)
            if not self._collect(commit.tree_id, bases, found):
                return None
            # The commits a record keeps (a snapshot of a dirty tree is as new and as
            # loose as ours): each, and what it adds to its own first parent.
            for extra in commit.parent_ids[1:]:
                kept = self.pygit.get(extra)
                if not isinstance(kept, pygit2.Commit) or extra in found:
                    return None
                kind, raw = self.pygit.odb.read(extra)
                found[extra] = (int(kind), raw)
                first = self.pygit.get(kept.parent_ids[0]) if kept.parent_ids else None
                if isinstance(first, pygit2.Commit):
                    if not self._collect(kept.tree_id, [first.tree], found):
                        return None
                elif not self.pygit.odb.exists(kept.tree_id):
                    return None
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return found

    def _collect(
        self,
        tree_id: pygit2.Oid,
        bases: list[pygit2.Tree],
        found: dict[pygit2.Oid, tuple[int, bytes | None]],
    ) -> bool:
        """Add tree ``tree_id`` and what below it the ``bases`` (the same place in the
        parents) lack to ``found``; False when one of them is missing for good."""
        if any(b.id == tree_id for b in bases):
            return True
        try:
            kind, raw = self.pygit.odb.read(tree_id)
        except (KeyError, ValueError, pygit2.GitError):
            return False
        found[tree_id] = (int(kind), raw)
        tree = self.pygit[tree_id]
        assert isinstance(tree, pygit2.Tree)
        for entry in tree:
            name = entry.name or ""
            same = [b[name] for b in bases if name in b]
            if any(e.id == entry.id for e in same):
                continue
            if entry.type_str == "tree":
                subs = [self.pygit[e.id] for e in same if e.type_str == "tree"]
                if not self._collect(
                    entry.id, [t for t in subs if isinstance(t, pygit2.Tree)], found
                ):
                    return False
            elif entry.type_str == "blob" and not self._blob_present(entry.id, found):
                return False
        return True

    def _blob_present(
        self, oid: pygit2.Oid, found: dict[pygit2.Oid, tuple[int, bytes | None]]
    ) -> bool:
        if oid in found:
            return True
        saved = self._stored.get(str(oid))
        try:
            kind, size = self.pygit.odb.read_header(oid)
        except (KeyError, ValueError, pygit2.GitError):
            if saved is None:
                return False
            # Deleted before its ref named it: write again.
            write_object(self.pygit.create_blob, saved)
            found[oid] = (int(pygit2.enums.ObjectType.BLOB), saved)
            return True
        data = saved
        if data is None and size <= _REWRITE_LIMIT and self._budget >= size:
            self._budget -= size
            data = self.pygit.odb.read(oid)[1]
        found[oid] = (int(kind), data)  # (None: too large to keep; only checked)
        return True

    def _keep_present(
        self, ref: str, new: pygit2.Oid, written: dict[pygit2.Oid, tuple[int, bytes | None]]
    ) -> None:
        """After ``ref`` was moved to ``new``: write back any of its new objects that a
        concurrent prune deleted meanwhile (identical bytes, so identical ids). Once at
        once; and while a ``git gc`` that started before the swap runs (its prune may still
        be deleting what it found unreachable), again until it ends."""
        swapped = time.time()
        self._put_back(ref, new, written)
        if not _gc_running(self.repo.common_dir, swapped):
            return  # (the usual case: no sleeping, one pass of header lookups)
        for attempt in range(1, _RECHECKS):
            time.sleep(0.001 * attempt)
            self._put_back(ref, new, written)
        _await_gc(self.repo.common_dir, swapped)
        self._put_back(ref, new, written)

    def _put_back(
        self, ref: str, new: pygit2.Oid, written: dict[pygit2.Oid, tuple[int, bytes | None]]
    ) -> None:
        odb = self.pygit.odb
        for oid, (kind, data) in written.items():
            if odb.exists(oid):
                continue
            if data is None:
                raise broken_ref(ref, str(new), missing=True)
            write_object(odb.write, kind, data)


def _await_gc(common_dir: Path, since: float) -> None:
    """Wait (at most :data:`GC_WAIT_SECONDS`) for a ``git gc`` that was running when our
    ref moved — its prune may still delete objects it found unreachable before — to end."""
    deadline = time.monotonic() + GC_WAIT_SECONDS
    while _gc_running(common_dir, since) and time.monotonic() < deadline:
        time.sleep(0.02)


def _gc_running(common_dir: Path, since: float) -> bool:
    """Whether a live ``git gc`` holds ``gc.pid`` and started before ``since`` (one that
    started later sees our ref, and keeps what it names)."""
    pid_file = common_dir / "gc.pid"
    try:
        stat = pid_file.stat()
        owner = pid_file.read_text(errors="replace").split()
    except OSError:
        return False
    return stat.st_mtime <= since + 1 and _running_here(owner)


def _running_here(owner: list[str]) -> bool:
    """Whether the ``<pid> <host>`` of a gc.pid file names a live process (a gc.pid of
    another host, on a shared file system, is taken as live)."""
    import socket

    if len(owner) < 2 or not (owner[0].isascii() and owner[0].isdigit()):
        return False
    return owner[1] != socket.gethostname() or pid_running(int(owner[0]))


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` of this host is running (one we may not signal counts)."""
    import os

    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # (OverflowError: no process has that id)
        return False
    except OSError:
        return True
    return True


def _vanished(ref: str) -> LedgerConflict:
    return LedgerConflict(
        f"could not update {ref}: objects it was to name were deleted while it was being "
        "written (a concurrent git gc --prune=now?); this write was not made",
        "run it again; do not run git gc --prune=now while git prov writes",
    )


def broken_ref(ref: str, target: str, *, missing: bool) -> CorruptLedger:
    """The error every command gives when a ledger ref names a missing (or non-commit)
    object: exit 9, and what repairs it."""
    if missing:
        what = (
            f"{ref} names {target[:12]}, which is missing from the object store "
            "(a git gc racing a write can do this)"
        )
    else:
        what = f"{ref} does not point at a commit ({target[:12]})"
    return CorruptLedger(what, "run git prov fsck --repair to restore the newest intact ledger")


def _short(run_id: str) -> str:
    match = RUN_ID_RE.match(run_id)
    return match.group(2) if match else run_id


def _add_record(scan: LedgerScan, record: RunRecord) -> None:
    existing = scan.runs.get(record.id)
    if existing is None:
        scan.runs[record.id] = LocatedRun(record, (record.commit,))
    elif existing.record != record:
        # The same id with different content: keep both, report it; never drop one.
        bucket = scan.conflicts.setdefault(record.id, [existing.record])
        if record not in bucket:
            bucket.append(record)

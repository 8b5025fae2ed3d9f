"""fsck of the notes: every line read, every run's distinct records checked as the notes stream
by, the git log display ref.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from git_prov.errors import CorruptLedger
from git_prov.fsck.findings import ERROR, INFO, WARNING, Finding, FsckReport
from git_prov.fsck.objects import check_commit, check_object
from git_prov.model.limits import MAX_LINE_BYTES, MAX_NOTE_BYTES
from git_prov.model.record import (
    FORMAT_VERSION,
    Attachment,
    RunRecord,
    Tombstone,
    line_object,
    parse_line,
)
from git_prov.query.rows import (
    NOTE_ID_GROUP,
    NOTE_OBJECT_GROUPS,
    RunObjects,
    note_run_match,
    run_objects,
)
from git_prov.store.headers import OBJ_BLOB, OBJ_COMMIT, ObjectHeaders
from git_prov.store.ledger import (
    DISPLAY_REF,
    KIND_DATA,
    KIND_ENV,
    KIND_LOG,
    KIND_METRICS,
    Ledger,
)
from git_prov.store.repo import Tree

RunKey = int | str
_USUAL_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}").fullmatch


def run_key(run_id: str) -> RunKey:
    """A run id as a key of :attr:`Runs.seen`: an id of the form git-prov gives (the only
    form :func:`~git_prov.query.rows.note_run_match` reads) packed into an int (40 bytes
    rather than 78: a million runs take 38 MB less), any other as it is."""
    if _USUAL_RUN_ID(run_id):
        return _packed_id(run_id)
    return run_id


def _packed_id(run_id: str) -> int:
    """The digits of an id of the usual form, then its 32-bit hex suffix (one to one)."""
    return int(run_id[:8] + run_id[9:15] + run_id[16:19]) << 32 | int(run_id[21:], 16)


@dataclass
class Runs:
    """What the notes hold, streamed (memory: a few dozen bytes per run id, not its record).

    ``seen`` packs, per run id, a digest of the text of its first line with the position of
    that line (note index, line number). Records are kept only for the runs whose lines
    differ (``versions``: candidates for a conflict, rare) — or every run's, for ``--data``
    (``keep_all``)."""

    seen: dict[RunKey, int] = field(default_factory=dict)  # by run_key(run id)
    versions: dict[str, list[RunRecord]] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (commit, blob) scan order
    tombstoned: set[str] = field(default_factory=set)
    annotated: dict[str, bool] = field(default_factory=dict)  # commit -> has run/attach lines
    tombstones: list[tuple[Tombstone, str]] = field(default_factory=list)
    attachments: list[tuple[Attachment, str]] = field(default_factory=list)
    keep_all: bool = False

    # The ``seen`` of the parts forked helpers read (git_prov/fsck/parts.py), each without
    # the runs of ``seen`` and of the parts before it: kept apart rather than merged into
    # ``seen``, which would hold a second table of every run while it grows.
    taken: list[dict[RunKey, int]] = field(default_factory=list)

    def first(self, run_id: str) -> int | None:
        """The packed digest and position of the first line of ``run_id``, if any."""
        return self.first_of(run_key(run_id))

    def first_of(self, key: RunKey) -> int | None:
        """:meth:`first` of a run by its :func:`run_key`."""
        found = self.seen.get(key)
        if found is None:
            for part in self.taken:
                found = part.get(key)
                if found is not None:
                    break
        return found

    def where(self, run_id: str) -> tuple[str, int]:
        """The (commit, line number) of the first line of ``run_id``."""
        packed = self.first(run_id)
        assert packed is not None
        return self.notes[(packed >> 32) & 0xFFFFFFFF][0], packed & 0xFFFFFFFF

    def count(self) -> int:
        """How many runs the notes read so far have."""
        return len(self.seen) + sum(len(part) for part in self.taken)

    def gather(self) -> None:
        """Every run in ``seen`` (before this process reads more notes itself)."""
        for part in self.taken:
            self.seen.update(part)
        self.taken.clear()


def _blake_digest(line: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    )


# A line's 64-bit digest (signed): lines of one run with equal digests are taken as the same
# text. Python's string hash is keyed by a secret drawn at start-up (forked helpers share
# it), so no line can be made to collide with another on purpose, and it costs a tenth of
# blake2b; with hash randomisation turned off (PYTHONHASHSEED=0), blake2b.
_line_digest: Callable[[str], int] = hash if sys.flags.hash_randomization else _blake_digest


# What each object slot of a record is (RunObjects' members after id, commit and snapshot).
_SLOTS = {
    2: ("inputs", KIND_DATA),
    3: ("outputs", KIND_DATA),
    4: ("env", KIND_ENV),
    5: ("stdout", KIND_LOG),
    6: ("stderr", KIND_LOG),
    7: ("metric history", KIND_METRICS),
}


_RECENT_KEPT = 1024


class RunChecks:
    """The checks of every run's record, one record at a time, as the notes stream by; the
    findings come out in the order of a whole-ledger check (by run id, version, field),
    each object of a kind checked once and reported for the first run (in that order)
    naming it."""

    def __init__(self, tree_paths: set[str], objects: ObjectHeaders) -> None:
        self.tree_paths = tree_paths
        self.objects = objects
        self.found: list[tuple[tuple[str, int, int, int], Finding]] = []
        self.clean: set[bytes] = set()  # kind initial + raw object id: checked, nothing found
        self.clean_commits: set[str] = set()  # commits present and kept: nothing to find
        # The last few clean objects by id (most runs name the same environment): the
        # same verdict as ``clean`` without packing the id.
        self.recent: dict[str, str] = {}
        self.owner: dict[tuple[str, str], tuple[str, int, int, str]] = {}  # with findings
        # The last few sets of objects (a record's, without its id) found clean.
        self.clean_records: set[tuple[str | None, ...]] = set()
        self.note_commit = ""  # the commit of the note being read, when it is a commit

    def _keep(self, key: tuple[str, int, int], findings: list[Finding]) -> None:
        for seq, finding in enumerate(findings):
            self.found.append(((*key, seq), finding))

    def _check_commit(self, run_id: str, what: str, oid: str, key: tuple[str, int, int]) -> bool:
        """Check a commit or snapshot of a run; True when nothing was found."""
        if oid in self.clean_commits:  # (the verdict depends on the commit alone)
            return True
        scratch = FsckReport()
        present = oid == self.note_commit  # (the note's commit, just looked up)
        check_commit(run_id, what, oid, self.tree_paths, self.objects, scratch, present=present)
        if scratch.findings:
            self._keep(key, scratch.findings)
            return False
        self.clean_commits.add(oid)
        return True

    def check(self, record: RunObjects, version: int) -> bool:
        """Check one version of a run's record; True when nothing was found in it (every
        object of it clean: the same objects named by another run are clean too)."""
        run_id = record.id
        clean = self._check_commit(run_id, "commit", record.commit, (run_id, version, 0))
        if record.snapshot:
            clean &= self._check_commit(run_id, "snapshot", record.snapshot, (run_id, version, 1))
        for slot in range(2, 8):  # inputs, outputs, env, stdout, stderr, history
            oid = record[slot + 1]
            if oid is None:
                continue
            what, kind = _SLOTS[slot]
            if kind != KIND_LOG:
                if self.recent.get(oid) == kind:
                    continue
                # (every id a reader accepts is hex: is_hex_oid)
                compact = kind.encode() + b"/" + bytes.fromhex(oid)
                if compact in self.clean:
                    self._recent(oid, kind)
                    continue
                mine = (run_id, version, slot, what)
                known = self.owner.get((kind, oid))
                if known is not None:
                    self.owner[(kind, oid)] = min(known, mine)
                    clean = False
                    continue
            scratch = FsckReport()
            check_object(run_id, what, kind, oid, self.tree_paths, self.objects, scratch)
            if scratch.findings:
                clean = False
            if kind == KIND_LOG:
                self._keep((run_id, version, slot), scratch.findings)
            elif scratch.findings:
                self.owner[(kind, oid)] = (run_id, version, slot, what)
            else:
                self.clean.add(compact)
                self._recent(oid, kind)
        return clean

    def check_first(self, run_id: str, named: tuple[str | None, ...]) -> None:
        """Check the first version of a run naming the objects ``named`` (RunObjects'
        members after the id). Records naming the same objects as one found clean are
        clean too (every verdict depends on the objects alone): not checked again."""
        if named in self.clean_records:
            return
        if self.check(RunObjects(run_id, *named), 0):  # type: ignore[arg-type]
            if len(self.clean_records) >= _RECENT_KEPT:
                self.clean_records.clear()
            self.clean_records.add(named)

    def _recent(self, oid: str, kind: str) -> None:
        if len(self.recent) >= _RECENT_KEPT:
            self.recent.clear()
        self.recent[oid] = kind

    def finish(self, report: FsckReport) -> None:
        for (kind, oid), (run_id, version, slot, what) in self.owner.items():
            scratch = FsckReport()
            check_object(run_id, what, kind, oid, self.tree_paths, self.objects, scratch)
            self._keep((run_id, version, slot), scratch.findings)
        self.found.sort(key=lambda item: item[0])
        report.findings.extend(finding for _, finding in self.found)
        self.found.clear()


def check_notes(
    ledger: Ledger,
    tree: Tree | None,
    objects: ObjectHeaders,
    report: FsckReport,
    checks: RunChecks,
    *,
    keep_all: bool = False,
) -> Runs:
    """Read every note once, in constant memory per record: each line parsed, each run's
    distinct records checked (``checks``) as they are found."""
    from git_prov.progress import ambient

    runs = Runs(keep_all=keep_all)
    if tree is None:
        return runs
    runs.notes = [(commit, str(blob_id)) for commit, blob_id in ledger.notes_in(tree)]
    progress = ambient()
    progress.start("checking the ledger's notes", len(runs.notes), "notes")
    from git_prov.fsck.parts import read_in_parts

    if not read_in_parts(runs, objects, report, checks, progress.advance):
        read_notes(runs, range(len(runs.notes)), objects, report, checks, progress.advance)
    progress.finish()
    conclude(runs, report)
    return runs


def read_notes(
    runs: Runs,
    indices: Sequence[int],
    objects: ObjectHeaders,
    report: FsckReport,
    checks: RunChecks,
    advance: Callable[[int], None],
) -> None:
    """Read the notes ``runs.notes[i]`` for ``i`` in ``indices``, in order: every line
    parsed, every new version of a run checked. Canonical run lines are read straight out
    of the note's text (:func:`~git_prov.query.rows.note_run_match`); any other line the
    fast ways, else exactly."""
    runs.gather()
    # The notes' headers first (a note over the reader limit is never read), then the
    # contents of the others as git streams them.
    wanted: list[str] = []
    oversized: dict[int, int] = {}  # index -> size
    notes = runs.notes
    # (each note's blob, then its commit: one lookup for all of them)
    headers = objects.headers([oid for index in indices for oid in notes[index][::-1]])
    commits: list[bool] = []  # whether each note's commit is a commit here
    for at, index in enumerate(indices):
        commit, blob_id = notes[index]
        header = headers[2 * at]
        found = headers[2 * at + 1]
        commits.append(found is not None and found[0] == OBJ_COMMIT)
        if header is None:
            raise KeyError(f"note blob {blob_id} of {commit} is missing")
        if header[1] > MAX_NOTE_BYTES:
            oversized[index] = header[1]
            continue
        if header[0] != OBJ_BLOB:
            raise ValueError("not a blob")
        wanted.append(blob_id)
    with contextlib.closing(objects.blobs(wanted)) as contents:
        _read_texts(runs, indices, oversized, commits, contents, objects, report, checks, advance)


def _read_texts(
    runs: Runs,
    indices: Sequence[int],
    oversized: dict[int, int],
    commits: Sequence[bool],
    contents: Iterator[tuple[str, bytes | None]],
    objects: ObjectHeaders,
    report: FsckReport,
    checks: RunChecks,
    advance: Callable[[int], None],
) -> None:
    match = note_run_match()
    id_group, object_groups = NOTE_ID_GROUP, NOTE_OBJECT_GROUPS
    seen = runs.seen
    seen_get = seen.get
    check_first = checks.check_first
    clean_records = checks.clean_records
    digest = _line_digest
    strict = not runs.keep_all  # (--data keeps every record: read each exactly)
    known: set[str] = set()  # object ids the fast reader found well formed
    for count, index in enumerate(indices, start=1):
        if count % 256 == 0:
            advance(256)
        commit, blob_id = runs.notes[index]
        report.notes += 1
        if index in oversized:
            report.add(
                ERROR,
                "note-too-large",
                f"the note on {commit[:12]} is {oversized[index] >> 20} MiB, over the "
                f"{MAX_NOTE_BYTES >> 20} MiB reader limit: not read by any command",
                commit=commit,
                object=blob_id,
            )
            continue
        raw = next(contents, (blob_id, None))[1]
        if raw is None:
            raise KeyError(f"note blob {blob_id} of {commit} is missing")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            report.add(
                ERROR, "note-not-utf8", f"the note on {commit[:12]} is not UTF-8", commit=commit
            )
            text = raw.decode("utf-8", errors="replace")
        if commits[count - 1]:
            checks.note_commit = commit
        else:
            checks.note_commit = ""
            report.add(
                WARNING,
                "note-on-missing-commit",
                f"a note is attached to {commit[:12]}, which is not a commit in this repository",
                commit=commit,
            )
        has_runs = False
        # The lines of ``text.split("\n")``, numbered from 1, each at ``pos``.
        pos, end, number, lines, taken = 0, len(text), 0, 0, 0
        while pos < end:
            number += 1
            found = match(text, pos) if strict else None
            if found is not None and (stop := found.end()) - pos <= MAX_LINE_BYTES:
                line = text[pos:stop]
                pos = stop + 1
                taken += 1
                run_id = found[id_group]
                key = int(run_id[:8] + run_id[9:15] + run_id[16:19]) << 32 | int(run_id[21:], 16)
                first = seen_get(key)  # (key: _packed_id(run_id), inline)
                if first is None:
                    seen[key] = digest(line) << 64 | index << 32 | number
                    named = found.group(*object_groups)
                    if named not in clean_records:
                        check_first(run_id, named)
                elif first >> 64 != digest(line):
                    objects_of = RunObjects(run_id, *found.group(*object_groups))
                    _add_run(runs, objects_of, line, index, number, objects, checks)
                continue
            stop = text.find("\n", pos)
            if stop < 0:
                stop = end
            line = text[pos:stop].removesuffix("\r")
            pos = stop + 1
            if not line.strip():
                continue
            lines += 1
            fast = run_objects(line, known)  # a run line, read fast
            if fast is not None:
                has_runs = True
                _add_run(runs, fast, line, index, number, objects, checks)
                continue
            entry = _parse(line, commit, number, report)
            if isinstance(entry, RunRecord):
                has_runs = True
                _add_run(runs, _objects_of(entry), line, index, number, objects, checks)
            elif isinstance(entry, Attachment):
                has_runs = True
                runs.attachments.append((entry, commit))
            elif isinstance(entry, Tombstone):
                runs.tombstoned.add(entry.run)
                runs.tombstones.append((entry, commit))
        report.lines += lines + taken
        runs.annotated[commit] = has_runs or taken > 0
    advance(len(indices) % 256)


def conclude(runs: Runs, report: FsckReport) -> None:
    """What only the whole ledger tells: conflicts, tombstones and attachments of runs it
    does not have, the number of runs."""
    for run_id, versions in sorted(runs.versions.items()):
        if len(versions) > 1:
            commit, number = runs.where(run_id)
            report.add(
                ERROR,
                "conflict",
                f"run {run_id} has {len(versions)} different records (first in the note on "
                f"{commit[:12]}, line {number}); check them with `git prov verify {run_id}`",
                run=run_id,
                commit=commit,
            )
    for stone, commit in runs.tombstones:
        if runs.first(stone.run) is None:
            report.add(
                INFO,
                "tombstone-unknown-run",
                f"a tombstone in the note on {commit[:12]} removes run {stone.run}, which this "
                "ledger never had (it was deleted before it reached you)",
                run=stone.run,
                commit=commit,
            )
    for attach, commit in runs.attachments:
        if runs.first(attach.run) is None:
            report.add(
                INFO,
                "attach-unknown-run",
                f"the note on {commit[:12]} shows run {attach.run}, which this ledger does not "
                "have (fetch the provenance it came with)",
                run=attach.run,
                commit=commit,
            )
    report.runs = runs.count()


def _objects_of(record: RunRecord) -> RunObjects:
    return RunObjects(
        record.id, record.commit, record.snapshot, record.inputs, record.outputs, record.env,
        record.stdout, record.stderr, record.history,
    )  # fmt: skip


def _add_run(
    runs: Runs,
    found: RunObjects,
    line: str,
    index: int,
    number: int,
    objects: ObjectHeaders,
    checks: RunChecks,
) -> None:
    """Remember a run line (``found``: its id and objects); check its record when it is a
    new version of the run. The whole record is read only to keep it (``--data``) or to
    compare it with another text of the same run."""
    run_id = found.id
    digest = _line_digest(line)
    first = runs.first(run_id)
    if first is None:
        runs.seen[run_key(run_id)] = digest << 64 | index << 32 | number
        if runs.keep_all:
            runs.versions[run_id] = [_record(line)]
        checks.check(found, 0)
        return
    if first >> 64 == digest:
        return  # the same text: the same record
    bucket = runs.versions.get(run_id)
    if bucket is None:  # a second, different text: read the first record again
        bucket = runs.versions[run_id] = [_reread(runs, first, objects)]
    entry = _record(line)
    if entry not in bucket:
        bucket.append(entry)
        checks.check(found, len(bucket) - 1)


def _record(line: str) -> RunRecord:
    """The record of a line already read as a run."""
    entry = parse_line(line)
    assert isinstance(entry, RunRecord)
    return entry


def _reread(runs: Runs, packed: int, objects: ObjectHeaders) -> RunRecord:
    _, blob_id = runs.notes[(packed >> 32) & 0xFFFFFFFF]
    text = objects.blob(blob_id).decode("utf-8", errors="replace")
    return _record(text.split("\n")[(packed & 0xFFFFFFFF) - 1].removesuffix("\r"))


def _parse(line: str, commit: str, number: int, report: FsckReport) -> Any:
    try:
        return parse_line(line)
    except ValueError as exc:
        newer = False
        with contextlib.suppress(ValueError):
            version = line_object(line).get("v")
            newer = isinstance(version, int) and version > FORMAT_VERSION
        report.add(
            WARNING if newer else ERROR,
            "newer-format" if newer else "bad-line",
            f"the note on {commit[:12]}, line {number}: {exc}",
            commit=commit,
            line=number,
        )
        return None


def check_display(ledger: Ledger, runs: Runs, report: FsckReport) -> None:
    if not ledger.display_enabled():
        return
    try:
        tip = ledger.tip(DISPLAY_REF)
    except CorruptLedger as exc:
        report.add(WARNING, "display-unreadable", f"{exc.message}; `git prov init` rebuilds it")
        return
    shown = set() if tip is None else {c for c, _ in ledger.notes_in(tip.tree)}
    live = {commit for commit, has_runs in runs.annotated.items() if has_runs}
    missing = sorted(c for c in live if c not in shown and _has_live_run(ledger, runs, c))
    extra = sorted(c for c in shown if c not in runs.annotated)
    if missing or extra:
        report.add(
            WARNING,
            "display-out-of-date",
            f"the git log display (refs/notes/prov-log) misses {len(missing)} and has "
            f"{len(extra)} extra commits; `git prov init` rebuilds it",
        )


def _has_live_run(ledger: Ledger, runs: Runs, commit: str) -> bool:
    entries, _ = ledger.entries_on(commit)
    return any(
        (isinstance(e, RunRecord) and e.id not in runs.tombstoned)
        or (isinstance(e, Attachment) and e.run not in runs.tombstoned)
        for e in entries
    )

"""``git prov fsck``: is the ledger whole, and can everything it names be read?

Checks, in order (each finding has a severity: ``error`` makes fsck exit 1, ``warning``
and ``info`` do not):

* the ledger refs (``refs/notes/prov``, ``refs/prov/objects``) point at readable commits —
  if not, :class:`~git_prov.errors.CorruptLedger` (exit 9): nothing else can be trusted;
* stale ``*.lock`` files on ledger refs left by a killed writer (warning; the next
  git-prov write removes them, see :func:`git_prov.store.reflocks.recover_stale_ref_locks`);
* every note line parses (commit and line number of each that does not); no two lines
  give one run id different content (a conflict); tombstones and attachments naming
  runs this ledger does not have (info);
* every run's commit and snapshot exist (and are kept by ``refs/prov/objects``), every
  manifest and log it names exists, is reachable from ``refs/prov/objects`` (or was
  dropped by ``git prov gc``), is not larger than the manifest limit (checked from the
  object header, before reading), parses, and names only safe paths (no ``..``, no
  absolute paths, no control characters);
* every path of the objects tree is well formed and content-addressed (``data/ab/cd…``
  holds the blob ``abcd…``), every kept commit exists;
* the ``git log`` display ref lists the commits that have runs (warning);
* kept bytes (``refs/prov/data``): every git blob and git-LFS object is here with the size
  its pointer names — or, when not, whether it can still be had (git-prov's hold on an
  unpushed object `git lfs prune` removed, a remote that has it: ``info``) or is lost
  (``error``); with ``--data`` their bytes are hashed too (a mismatch is an ``error``);
* with ``--data``: the files of data manifests that still exist in the working tree are
  re-hashed and compared (``info``: drift is what ``git prov check`` is for, not damage).

Nothing is modified (stale ref locks are removed by the writers:
:func:`git_prov.store.reflocks.recover_stale_ref_locks`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from git_prov.capture.hashing import parse_lfs_pointer
from git_prov.errors import CorruptLedger
from git_prov.model.ids import is_hex_oid
from git_prov.model.limits import MAX_NOTE_BYTES
from git_prov.model.manifest import MAX_MANIFEST_BYTES, DataManifest, EnvironmentManifest
from git_prov.model.record import (
    FORMAT_VERSION,
    Attachment,
    RunRecord,
    Tombstone,
    line_object,
    parse_line,
    printable,
)
from git_prov.query.rows import RunObjects, run_objects
from git_prov.store.drops import DROP_DIR  # drop/<ab>/<rest>: a log `git prov gc` dropped
from git_prov.store.headers import OBJ_BLOB, ObjectHeaders, git_hash_file
from git_prov.store.ledger import (
    DISPLAY_REF,
    KEEP_DIR,
    KIND_DATA,
    KIND_ENV,
    KIND_LOG,
    KIND_METRICS,
    NOTES_REF,
    OBJECTS_REF,
    Ledger,
    object_path,
)
from git_prov.store.reflocks import STALE_LOCK_SECONDS as STALE_LOCK_SECONDS
from git_prov.store.reflocks import ledger_ref_locks, lock_age
from git_prov.store.reflocks import recover_stale_ref_locks as recover_stale_ref_locks
from git_prov.store.repo import GitError, GitRepo, Tree

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

REPAIR_HINT = "run git prov fsck --repair to restore the newest intact ledger"
# Top-level directories of the objects tree this version knows; others are reported as
# information (a newer git-prov may add some).
_CONTENT_ADDRESSED = (KIND_DATA, KIND_ENV, KIND_LOG, KIND_METRICS)
# drop-data/<ab>/<rest of sha256>: kept bytes `git prov gc` dropped (git_prov.store.kept)
_KNOWN_TOP = {*_CONTENT_ADDRESSED, KEEP_DIR, DROP_DIR, "envtag", "drop-data"}
_HEX = re.compile(r"^[0-9a-f]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Finding:
    """One thing fsck found. ``code`` is stable, for scripts; ``message`` is for people."""

    severity: str
    code: str
    message: str
    commit: str | None = None
    line: int | None = None
    run: str | None = None
    object: str | None = None
    path: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def text(self) -> str:
        """One line for people, with control characters escaped."""
        return f"{self.severity}: {printable(self.message)}"


@dataclass
class FsckReport:
    """Everything fsck found, and how much it looked at."""

    findings: list[Finding] = field(default_factory=list)
    notes: int = 0
    lines: int = 0
    runs: int = 0
    objects: int = 0
    files_hashed: int = 0
    kept: int = 0  # kept files (entries of refs/prov/data) checked

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        """True when nothing of severity ``error`` was found."""
        return not self.errors

    def add(self, severity: str, code: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(severity, code, message, **where))

    def to_json_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        return {
            "ok": self.ok,
            "checked": {
                "notes": self.notes,
                "lines": self.lines,
                "runs": self.runs,
                "objects": self.objects,
                "files_hashed": self.files_hashed,
                "kept": self.kept,
            },
            "counts": counts,
            "findings": [f.to_json_dict() for f in self.findings],
        }


# ---- the check ------------------------------------------------------------------------------


def _tip_tree(ledger: Ledger, ref: str) -> Tree | None:
    try:
        tip = ledger.tip(ref)
        return tip.tree if tip is not None else None
    except CorruptLedger:
        raise
    except (KeyError, ValueError, GitError) as exc:
        raise CorruptLedger(f"{ref} cannot be read: {exc}", REPAIR_HINT) from None


def fsck(repo: GitRepo, *, data: bool = False) -> FsckReport:
    """Check the ledger of ``repo``; raises CorruptLedger when its refs cannot be read."""
    ledger = Ledger(repo)
    report = FsckReport()
    objects = ObjectHeaders(repo)
    notes_tree = _tip_tree(ledger, NOTES_REF)
    objects_tree = _tip_tree(ledger, OBJECTS_REF)
    for path in ledger_ref_locks(repo):
        age = lock_age(path)
        report.add(
            WARNING,
            "stale-lock",
            f"{path} exists ({age or 0:.0f} s old): a writer was killed inside a ref update; "
            f"the next git-prov write removes it, or remove it yourself: rm '{path}'",
            path=str(path),
        )
    try:
        tree_paths = _objects_tree_paths(repo, objects_tree, objects, report)
        checks = _RunChecks(tree_paths, objects)
        runs = _check_notes(ledger, notes_tree, objects, report, checks, keep_all=data)
    except (KeyError, GitError) as exc:
        raise CorruptLedger(
            f"the ledger's trees are incomplete or damaged: {exc}", REPAIR_HINT
        ) from None
    checks.finish(report)
    _check_display(ledger, runs, report)
    _check_kept(repo, objects, report, hash_bytes=data)
    if data and repo.workdir is not None:
        _check_data(repo, runs, tree_paths, objects, report)
    return report


@dataclass
class _Runs:
    """What the notes hold, streamed (memory: a few dozen bytes per run id, not its record).

    ``seen`` packs, per run id, a digest of the text of its first line with the position of
    that line (note index, line number). Records are kept only for the runs whose lines
    differ (``versions``: candidates for a conflict, rare) — or every run's, for ``--data``
    (``keep_all``)."""

    seen: dict[str, int] = field(default_factory=dict)
    versions: dict[str, list[RunRecord]] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (commit, blob) scan order
    tombstoned: set[str] = field(default_factory=set)
    annotated: dict[str, bool] = field(default_factory=dict)  # commit -> has run/attach lines
    tombstones: list[tuple[Tombstone, str]] = field(default_factory=list)
    attachments: list[tuple[Attachment, str]] = field(default_factory=list)
    keep_all: bool = False

    def where(self, run_id: str) -> tuple[str, int]:
        """The (commit, line number) of the first line of ``run_id``."""
        packed = self.seen[run_id]
        return self.notes[(packed >> 32) & 0xFFFFFFFF][0], packed & 0xFFFFFFFF


def _line_digest(line: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    )


# What each object slot of a record is (RunObjects' members after id, commit and snapshot).
_SLOTS = {
    2: ("inputs", KIND_DATA),
    3: ("outputs", KIND_DATA),
    4: ("env", KIND_ENV),
    5: ("stdout", KIND_LOG),
    6: ("stderr", KIND_LOG),
    7: ("metric history", KIND_METRICS),
}


class _RunChecks:
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
        self.owner: dict[tuple[str, str], tuple[str, int, int, str]] = {}  # with findings

    def _keep(self, key: tuple[str, int, int], findings: list[Finding]) -> None:
        for seq, finding in enumerate(findings):
            self.found.append(((*key, seq), finding))

    def _check_commit(self, run_id: str, what: str, oid: str, key: tuple[str, int, int]) -> None:
        if oid in self.clean_commits:  # (the verdict depends on the commit alone)
            return
        scratch = FsckReport()
        _check_commit(run_id, what, oid, self.tree_paths, self.objects, scratch)
        if scratch.findings:
            self._keep(key, scratch.findings)
        else:
            self.clean_commits.add(oid)

    def check(self, record: RunObjects, version: int) -> None:
        run_id = record.id
        self._check_commit(run_id, "commit", record.commit, (run_id, version, 0))
        if record.snapshot:
            self._check_commit(run_id, "snapshot", record.snapshot, (run_id, version, 1))
        for slot in range(2, 8):  # inputs, outputs, env, stdout, stderr, history
            oid = record[slot + 1]
            if oid is None:
                continue
            what, kind = _SLOTS[slot]
            if kind != KIND_LOG:
                # (every id a reader accepts is hex: is_hex_oid)
                compact = kind.encode() + b"/" + bytes.fromhex(oid)
                if compact in self.clean:
                    continue
                mine = (run_id, version, slot, what)
                known = self.owner.get((kind, oid))
                if known is not None:
                    self.owner[(kind, oid)] = min(known, mine)
                    continue
            scratch = FsckReport()
            _check_object(run_id, what, kind, oid, self.tree_paths, self.objects, scratch)
            if kind == KIND_LOG:
                self._keep((run_id, version, slot), scratch.findings)
            elif scratch.findings:
                self.owner[(kind, oid)] = (run_id, version, slot, what)
            else:
                self.clean.add(compact)

    def finish(self, report: FsckReport) -> None:
        for (kind, oid), (run_id, version, slot, what) in self.owner.items():
            scratch = FsckReport()
            _check_object(run_id, what, kind, oid, self.tree_paths, self.objects, scratch)
            self._keep((run_id, version, slot), scratch.findings)
        self.found.sort(key=lambda item: item[0])
        report.findings.extend(finding for _, finding in self.found)
        self.found.clear()


def _check_notes(
    ledger: Ledger,
    tree: Tree | None,
    objects: ObjectHeaders,
    report: FsckReport,
    checks: _RunChecks,
    *,
    keep_all: bool = False,
) -> _Runs:
    """Read every note once, in constant memory per record: each line parsed, each run's
    distinct records checked (``checks``) as they are found."""
    from git_prov.progress import ambient

    runs = _Runs(keep_all=keep_all)
    if tree is None:
        return runs
    runs.notes = [(commit, str(blob_id)) for commit, blob_id in ledger.notes_in(tree)]
    progress = ambient()
    progress.start("checking the ledger's notes", len(runs.notes), "notes")
    known: set[str] = set()  # object ids the fast reader found well formed
    for index, (commit, blob_id) in enumerate(runs.notes):
        if index % 256 == 255:
            progress.advance(256)
        report.notes += 1
        header = objects.header(blob_id)
        if header is None:
            raise KeyError(f"note blob {blob_id} of {commit} is missing")
        if header[1] > MAX_NOTE_BYTES:
            report.add(
                ERROR,
                "note-too-large",
                f"the note on {commit[:12]} is {header[1] >> 20} MiB, over the "
                f"{MAX_NOTE_BYTES >> 20} MiB reader limit: not read by any command",
                commit=commit,
                object=blob_id,
            )
            continue
        raw = objects.blob(blob_id)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            report.add(
                ERROR, "note-not-utf8", f"the note on {commit[:12]} is not UTF-8", commit=commit
            )
            text = raw.decode("utf-8", errors="replace")
        if not objects.is_commit(commit):
            report.add(
                WARNING,
                "note-on-missing-commit",
                f"a note is attached to {commit[:12]}, which is not a commit in this repository",
                commit=commit,
            )
        has_runs = False
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            report.lines += 1
            found = run_objects(line, known)  # a run line, read fast
            if found is not None:
                has_runs = True
                _add_run(runs, found, line, index, number, objects, checks)
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
        runs.annotated[commit] = has_runs
    progress.finish()
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
        if stone.run not in runs.seen:
            report.add(
                INFO,
                "tombstone-unknown-run",
                f"a tombstone in the note on {commit[:12]} removes run {stone.run}, which this "
                "ledger never had (it was deleted before it reached you)",
                run=stone.run,
                commit=commit,
            )
    for attach, commit in runs.attachments:
        if attach.run not in runs.seen:
            report.add(
                INFO,
                "attach-unknown-run",
                f"the note on {commit[:12]} shows run {attach.run}, which this ledger does not "
                "have (fetch the provenance it came with)",
                run=attach.run,
                commit=commit,
            )
    report.runs = len(runs.seen)
    return runs


def _objects_of(record: RunRecord) -> RunObjects:
    return RunObjects(
        record.id, record.commit, record.snapshot, record.inputs, record.outputs, record.env,
        record.stdout, record.stderr, record.history,
    )  # fmt: skip


def _add_run(
    runs: _Runs,
    found: RunObjects,
    line: str,
    index: int,
    number: int,
    objects: ObjectHeaders,
    checks: _RunChecks,
) -> None:
    """Remember a run line (``found``: its id and objects); check its record when it is a
    new version of the run. The whole record is read only to keep it (``--data``) or to
    compare it with another text of the same run."""
    run_id = found.id
    digest = _line_digest(line)
    first = runs.seen.get(run_id)
    if first is None:
        runs.seen[run_id] = digest << 64 | index << 32 | number
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


def _reread(runs: _Runs, packed: int, objects: ObjectHeaders) -> RunRecord:
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


def _objects_tree_paths(
    repo: GitRepo, tree: Tree | None, objects: ObjectHeaders, report: FsckReport
) -> set[str]:
    """Every blob path of the objects tree, checked for shape and content addressing."""
    paths: set[str] = set()
    if tree is None:
        return paths
    for name, kind, oid in repo.tree_listing(tree):
        if name not in _KNOWN_TOP:
            report.add(
                INFO,
                "unknown-tree-entry",
                f"refs/prov/objects has {name!r}, which this version does not know",
                path=name,
            )
            continue
        if name in ("envtag", "drop-data") or kind != "tree":
            continue
        for fan_name, fan_kind, fan_id in repo.tree_listing(oid):
            if fan_kind != "tree" or len(fan_name) != 2 or not _HEX.match(fan_name):
                report.add(ERROR, "bad-tree-path", f"malformed objects path {name}/{fan_name!r}")
                continue
            for rest, leaf_kind, leaf_id in repo.tree_listing(fan_id):
                named = fan_name + rest
                path = f"{name}/{fan_name}/{rest}"
                report.objects += 1
                if leaf_kind != "blob" or not is_hex_oid(named):
                    report.add(ERROR, "bad-tree-path", f"malformed objects path {path!r}")
                    continue
                if name in _CONTENT_ADDRESSED and leaf_id != named:
                    report.add(
                        ERROR,
                        "tree-content-mismatch",
                        f"{path} holds object {leaf_id}, not the object its name says",
                        path=path,
                        object=leaf_id,
                    )
                    continue
                paths.add(path)
    for path in sorted(paths):
        if path.startswith(KEEP_DIR + "/"):
            oid = path[len(KEEP_DIR) + 1 :].replace("/", "")
            if not objects.exists(oid):
                report.add(
                    ERROR,
                    "keep-missing-commit",
                    f"refs/prov/objects keeps commit {oid[:12]}, which is missing (a history "
                    "rewrite such as git filter-repo purged it: the code runs ran on is gone)",
                    object=oid,
                )
        elif path.startswith(DROP_DIR + "/"):
            oid = path[len(DROP_DIR) + 1 :].replace("/", "")
            if object_path(KIND_LOG, oid) in paths:
                report.add(
                    WARNING,
                    "dropped-log-present",
                    f"log {oid[:12]} was dropped by git prov gc but came back with a merge; "
                    "`git prov gc --logs-only --force` drops it again",
                    object=oid,
                )
    return paths


def _check_commit(
    run_id: str,
    what: str,
    oid: str,
    tree_paths: set[str],
    objects: ObjectHeaders,
    report: FsckReport,
) -> None:
    if not objects.is_commit(oid):
        if object_path(KEEP_DIR, oid) in tree_paths:
            # We kept it, so it was here: a history rewrite purged it (git filter-repo's
            # default rewrites refs/prov/objects too).
            from git_prov.rewrite.filter_repo import rewritten_to

            new = rewritten_to(objects.repo.path, oid)
            detail = (
                f"git filter-repo rewrote it to {new[:12]}; git prov remap shows the run there"
                if new
                else "purged by a history rewrite such as git filter-repo"
            )
            message = (
                f"run {run_id}: the code it ran on no longer exists: its {what} "
                f"{oid[:12]} was kept but is not in this repository ({detail})"
            )
        else:
            message = (
                f"run {run_id}: its {what} {oid[:12]} is not in this repository "
                "(fetch the provenance it came with: git prov fetch)"
            )
        report.add(ERROR, f"missing-{what}", message, run=run_id, object=oid)
    elif object_path(KEEP_DIR, oid) not in tree_paths:
        report.add(
            WARNING,
            f"{what}-not-kept",
            f"run {run_id}: its {what} {oid[:12]} is not kept by refs/prov/objects "
            "(git gc may delete it once no branch reaches it)",
            run=run_id,
            object=oid,
        )


_WHAT = {KIND_LOG: "log", KIND_METRICS: "blob"}


def _check_history(
    run_id: str, oid: str, size: int, objects: ObjectHeaders, report: FsckReport
) -> None:
    """A run's metric history blob: within the reader limit, and in its layout."""
    where = {"run": run_id, "object": oid}
    if size > MAX_MANIFEST_BYTES:
        report.add(
            ERROR,
            "object-too-large",
            f"run {run_id}: its metric history {oid[:12]} is {size >> 20} MiB, over the "
            f"{MAX_MANIFEST_BYTES >> 20} MiB limit: not read",
            **where,
        )
        return
    from git_prov.model.history import decode_history

    try:
        decode_history(objects.blob(oid))
    except ValueError as exc:
        report.add(ERROR, "bad-history", f"run {run_id}: metric history {oid[:12]}: {exc}", **where)


def _check_object(
    run_id: str,
    what: str,
    kind: str,
    oid: str,
    tree_paths: set[str],
    objects: ObjectHeaders,
    report: FsckReport,
) -> None:
    where = {"run": run_id, "object": oid}
    in_tree = object_path(kind, oid) in tree_paths
    dropped = kind == KIND_LOG and object_path(DROP_DIR, oid) in tree_paths
    if dropped and not in_tree:
        report.add(INFO, "log-dropped", f"run {run_id}: {what} log dropped by git prov gc", **where)
        return
    header = objects.header(oid)
    if header is None:
        report.add(
            ERROR,
            "missing-object",
            f"run {run_id}: its {what} {_WHAT.get(kind, 'manifest')} {oid[:12]} is missing",
            **where,
        )
        return
    if header[0] != OBJ_BLOB:
        report.add(
            ERROR, "not-a-blob", f"run {run_id}: its {what} {oid[:12]} is not a blob", **where
        )
        return
    if not in_tree:
        report.add(
            WARNING,
            "object-not-in-tree",
            f"run {run_id}: its {what} {oid[:12]} is not reachable from refs/prov/objects "
            "(git gc may delete it; it is not pushed)",
            **where,
        )
    if kind == KIND_LOG:
        return
    if kind == KIND_METRICS:
        _check_history(run_id, oid, header[1], objects, report)
        return
    if header[1] > MAX_MANIFEST_BYTES:
        report.add(
            ERROR,
            "object-too-large",
            f"run {run_id}: its {what} manifest {oid[:12]} is {header[1] >> 20} MiB, over the "
            f"{MAX_MANIFEST_BYTES >> 20} MiB limit: not read",
            **where,
        )
        return
    try:
        raw = objects.blob(oid)
        if kind == KIND_DATA:
            data_manifest = DataManifest.from_toml(raw)
            paths = [
                *data_manifest.paths,
                *data_manifest.missing,
                *(e.path for e in data_manifest.entries),
            ]
            links = [e.link for e in data_manifest.entries if e.link is not None]
        else:
            env_manifest = EnvironmentManifest.from_toml(raw)
            paths = list(env_manifest.lockfiles)
            links = []
    except (ValueError, RecursionError) as exc:
        report.add(
            ERROR, "bad-manifest", f"run {run_id}: {what} manifest {oid[:12]}: {exc}", **where
        )
        return
    for path in sorted(set(paths)):
        reason = unsafe_path_reason(path)
        if reason:
            report.add(
                ERROR,
                "unsafe-path",
                f"run {run_id}: {what} manifest {oid[:12]} names {path!r}: {reason}",
                path=path,
                **where,
            )
    for link in links:
        if _CONTROL.search(link):
            report.add(
                ERROR,
                "unsafe-path",
                f"run {run_id}: {what} manifest {oid[:12]} has a link target with control "
                f"characters: {link!r}",
                path=link,
                **where,
            )


def unsafe_path_reason(path: str) -> str | None:
    """Why a repo-relative path from a manifest must not be used, or None when it is fine:
    empty, absolute, with ``..``/``.``/empty components, inside ``.git``, or with control
    characters (a newline in a path can forge lines of output)."""
    if not path:
        return "empty path"
    if _CONTROL.search(path):
        return "control characters in the path"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return "absolute path"
    parts = path.split("/")
    if ".." in parts:
        return "'..' leaves the working tree"
    if "." in parts or "" in parts:
        return "not a normalised path"
    if parts[0] == ".git":
        return "inside .git"
    return None


def _check_display(ledger: Ledger, runs: _Runs, report: FsckReport) -> None:
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


def _has_live_run(ledger: Ledger, runs: _Runs, commit: str) -> bool:
    entries, _ = ledger.entries_on(commit)
    return any(
        (isinstance(e, RunRecord) and e.id not in runs.tombstoned)
        or (isinstance(e, Attachment) and e.run not in runs.tombstoned)
        for e in entries
    )


# ---- kept bytes -----------------------------------------------------------------------------


def _check_kept(
    repo: GitRepo, objects: ObjectHeaders, report: FsckReport, *, hash_bytes: bool
) -> None:
    """Every kept file of ``refs/prov/data``: present, of the right size, and (with
    ``hash_bytes``) hashing to the digest it is kept under."""
    from git_prov.capture.hashing import hash_file
    from git_prov.store.kept import (
        kept_digests,
        kept_objects,
        tracking_data_ref,
        tracking_remotes,
        unpushed_digests,
    )
    from git_prov.store.lfs import lfs_object_path

    kept = kept_objects(repo)
    if not kept:
        return
    held = unpushed_digests(repo)
    remotes: dict[str, set[str]] | None = None
    for item in kept:
        report.kept += 1
        where = {"object": item.blob, "path": f"sha256:{item.digest}"}
        header = objects.header(item.blob)
        if header is None or header[0] != OBJ_BLOB:
            report.add(
                ERROR,
                "kept-missing",
                f"kept bytes sha256:{item.digest[:12]}: git blob {item.blob[:12]} of "
                "refs/prov/data is missing from the object store",
                **where,
            )
            continue
        if item.kind == "git":
            if hash_bytes:
                report.files_hashed += 1
                if hashlib.sha256(objects.blob(item.blob)).hexdigest() != item.digest:
                    report.add(
                        ERROR,
                        "kept-damaged",
                        f"kept bytes sha256:{item.digest[:12]} (git blob {item.blob[:12]}) "
                        "do not hash to the digest they are kept under",
                        **where,
                    )
            continue
        pointer = parse_lfs_pointer(objects.blob(item.blob)) if header[1] < 1024 else None
        if pointer is None or pointer[0] != item.digest:
            report.add(
                ERROR,
                "kept-damaged",
                f"kept bytes sha256:{item.digest[:12]}: the git-LFS pointer of refs/prov/data "
                "is not a pointer to that object",
                **where,
            )
            continue
        size = pointer[1]
        path = lfs_object_path(repo.common_dir, item.digest)
        try:
            found_size: int | None = path.stat().st_size
        except OSError:
            found_size = None
        if found_size is None:
            if remotes is None:
                remotes = {
                    r: set(kept_digests(repo, tracking_data_ref(r))) for r in tracking_remotes(repo)
                }
            having = sorted(r for r, digests in remotes.items() if item.digest in digests)
            if item.digest in held:
                report.add(
                    INFO,
                    "kept-held",
                    f"kept git-LFS object {item.digest[:12]} is not in the git-LFS store "
                    "(git lfs prune?); git-prov holds it, unpushed: git prov get and "
                    "git prov push --data put it back",
                    **where,
                )
            elif having:
                report.add(
                    INFO,
                    "kept-on-remote",
                    f"kept git-LFS object {item.digest[:12]} is not here; {having[0]} has it "
                    "(git prov get fetches it)",
                    **where,
                )
            else:
                report.add(
                    ERROR,
                    "kept-missing",
                    f"kept git-LFS object {item.digest[:12]} ({size:,} bytes) is neither in "
                    "the git-LFS store nor on a remote this clone has fetched kept data "
                    "from: its bytes may be lost (git prov fetch --data checks the remote)",
                    **where,
                )
            continue
        if found_size != size or (hash_bytes and hash_file(path) != f"sha256:{item.digest}"):
            report.add(
                ERROR,
                "kept-damaged",
                f"kept git-LFS object {item.digest[:12]} ({path}) does not hold the bytes it "
                f"is named by ({found_size:,} bytes, {size:,} recorded"
                + (")" if found_size != size else "; other content)")
                + ": remove it, then git prov get fetches it again from a remote that has it",
                **where,
            )
        report.files_hashed += hash_bytes


# ---- --data -----------------------------------------------------------------------------


def _check_data(
    repo: GitRepo, runs: _Runs, tree_paths: set[str], objects: ObjectHeaders, report: FsckReport
) -> None:
    root = repo.root
    users: dict[str, list[str]] = {}
    for run_id, versions in sorted(runs.versions.items()):
        if run_id in runs.tombstoned:
            continue
        for record in versions:
            for oid in (record.inputs, record.outputs):
                if oid is not None and run_id not in users.setdefault(oid, []):
                    users[oid].append(run_id)
    digests: dict[tuple[str, str], str | None] = {}
    for oid, run_ids in sorted(users.items()):
        header = objects.header(oid)
        if header is None or header[1] > MAX_MANIFEST_BYTES:
            continue  # reported above
        try:
            manifest = DataManifest.from_toml(objects.blob(oid))
        except (ValueError, RecursionError):
            continue
        named = ", ".join(run_ids[:3]) + (
            f" and {len(run_ids) - 3} more" if len(run_ids) > 3 else ""
        )
        for entry in manifest.entries:
            if unsafe_path_reason(entry.path):
                continue  # never open what a hostile manifest points at
            path = root / entry.path
            if not path.is_file():
                continue
            key = (entry.path, entry.algorithm)
            if key not in digests:
                digests[key] = _digest(path, entry.algorithm, entry.source)
                report.files_hashed += digests[key] is not None
            current = digests[key]
            if current is None or current == entry.digest:
                continue
            report.add(
                INFO,
                "data-drift",
                f"{entry.path} changed since run {named} recorded it "
                f"({entry.algorithm}:{entry.digest[:12]} then, {current[:12]} now)",
                path=entry.path,
                object=oid,
                run=run_ids[0],
            )


def _digest(path: Path, algorithm: str, source: str) -> str | None:
    """The hex digest of ``path`` in ``algorithm`` as manifests record it, or None when
    this version cannot compute it (an unknown algorithm, an unreadable file)."""
    try:
        if algorithm == "git":
            return git_hash_file(path)
        if algorithm not in ("sha256", "md5", "sha1", "sha512"):
            return None
        if source == "lfs" and path.stat().st_size < 1024:
            pointer = parse_lfs_pointer(path.read_bytes())
            if pointer is not None:
                return pointer[0]
        digest = hashlib.new(algorithm)
        with path.open("rb") as f:
            for chunk in _chunks(f):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _chunks(f: Any, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


def summary(report: FsckReport) -> str:
    """The last line of ``git prov fsck``."""
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES}
    checked = (
        f"checked {report.notes} notes, {report.lines} lines, {report.runs} runs, "
        f"{report.objects} stored objects"
        + (f", {report.kept} kept files" if report.kept else "")
        + (f", re-hashed {report.files_hashed} files" if report.files_hashed else "")
    )
    verdict = (
        "ledger is consistent"
        if report.ok
        else f"{counts[ERROR]} problem{'s' if counts[ERROR] != 1 else ''}"
    )
    extra = ", ".join(f"{counts[s]} {s}" for s in (WARNING, INFO) if counts[s])
    return f"{checked}: {verdict}" + (f" ({extra})" if extra else "")

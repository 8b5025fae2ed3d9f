"""``git prov gc``: remove runs, or only their logs, by retention rules.

Removal is a ledger entry, never an edit: a **tombstone** line (``"kind": "tombstone"``)
per removed run, written in the note of every commit the run is shown on, so each note
stays self-contained and the union merge carries the removal to every clone. Logs are
dropped from the objects tree (``log/ab/cd…`` removed) and a **drop marker**
``drop/ab/cd…`` (an empty blob) is added, which the union merge also carries; a log path
that a merge brings back next to its drop marker is dropped again by the next ``gc``
(and by :func:`git_prov.store.drops.without_dropped_logs`, which merges apply). The
metric history of a removed run (``metrics/ab/cd…``) goes the same way, with a
``drop-metrics/ab/cd…`` marker, unless a remaining run names the same blob.

What gc does *not* do: rewrite history. The ledger refs are commit chains, so removed
lines and dropped logs stay in their history (and in other clones' histories) until that
history is rewritten everywhere; see docs/security.md.

Rules (docs/cli.md): a run is removed when it matches every selecting rule given —
``RUN`` ids, ``--older-than``, ``--failed-only``, ``--keep-last`` (all but the newest N
runs of each commit) — and no protecting one (``--keep-tagged``, ``--keep-last``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from git_prov.errors import NotFound
from git_prov.kept_retention import DataDrops, drop_data, plan_data_drops
from git_prov.model.ids import short_run_id
from git_prov.model.record import STATUS_OK, Entry, RunRecord, Tombstone
from git_prov.model.when import parse_time
from git_prov.store.drops import DROP_DIR as DROP_DIR
from git_prov.store.drops import (
    drop_logs,
    put_back_by_a_write,
    returned_histories,
    returned_logs,
    stored_histories,
    stored_logs,
)
from git_prov.store.drops import dropped_logs as dropped_logs
from git_prov.store.drops import is_dropped as is_dropped
from git_prov.store.drops import without_dropped_logs as without_dropped_logs
from git_prov.store.ledger import OBJECTS_REF, Ledger, LedgerScan, LocatedRun
from git_prov.store.repo import GitRepo

# Object ids written out in a note (SHA-1 or SHA-256): a line naming none of those asked
# about (and with no escape, which could spell one) cannot name it.
_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?:[0-9a-f]{24})?(?![0-9a-f])")
_NOTES_PER_PASS = 20_000  # note blobs asked of one git cat-file
_RUNS_PER_READ = 1_000  # chosen runs read back from their notes at once


def parse_age(text: str, now: datetime | None = None) -> datetime:
    """The cut-off time of ``--older-than``: an age before ``now`` (``30d``, ``12h``, ``2w``,
    ``1y``, ``1w2d``, ``2 days ago``) or a date or time (``2026-01-31``, local unless it says
    otherwise), read as every time option reads it (:func:`git_prov.model.when.parse_time`)."""
    return parse_time(text, now, option="--older-than")


@dataclass(frozen=True)
class RetentionRules:
    """Which runs ``gc`` removes. ``runs`` are full run ids (resolve short ones first)."""

    runs: tuple[str, ...] = ()
    older_than: datetime | None = None
    keep_last: int | None = None
    keep_tagged: bool = False
    failed_only: bool = False

    def selects(self) -> bool:
        """Whether any rule chooses runs (protecting rules alone remove nothing)."""
        return (
            bool(self.runs)
            or self.older_than is not None
            or self.keep_last is not None
            or (self.failed_only)
        )

    def describe(self) -> str:
        """The rules as a reason stored in tombstones."""
        parts = []
        if self.runs:
            parts.append("named")
        if self.older_than is not None:
            parts.append(f"older than {_iso(self.older_than)[:10]}")
        if self.failed_only:
            parts.append("failed")
        if self.keep_last is not None:
            parts.append(f"beyond the last {self.keep_last} per commit")
        return "gc: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class GcRun:
    """A run ``gc`` removes, as slim as what it needs: what the listing and ``--json``
    show of its record, and the commits its tombstone goes to (``shown_on``). A plan of
    100,000 runs holds these, not their records (~5 KB each; issue #20)."""

    id: str
    commit: str
    started: str
    status: str
    command: str
    tags: tuple[str, ...]
    shown_on: tuple[str, ...]

    @classmethod
    def of(cls, run: LocatedRun) -> GcRun:
        r = run.record
        return cls(r.id, r.commit, r.started, r.status, r.command, r.tags, run.shown_on)

    @property
    def short_id(self) -> str:
        return short_run_id(self.id)


@dataclass(frozen=True)
class GcPlan:
    """What ``gc`` removes: ``runs`` to tombstone, ``logs`` (blob ids) to drop, and how
    many bytes those logs hold. ``redrop`` are logs dropped before that a merge brought
    back into the objects tree."""

    runs: tuple[GcRun, ...]
    logs: tuple[str, ...]
    log_bytes: int
    logs_only: bool
    kept: int
    redrop: tuple[str, ...] = ()
    data: DataDrops | None = None  # kept bytes to drop (git_prov.kept_retention)
    data_only: bool = False  # --data-only: the runs stay; only their kept bytes go
    # Metric histories (blob ids) of removed runs that no remaining run names, and those
    # dropped before that a merge brought back.
    histories: tuple[str, ...] = ()
    history_redrop: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.runs
            or self.logs
            or self.redrop
            or self.histories
            or self.history_redrop
            or (self.data and not self.data.empty)
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "logs_only": self.logs_only,
            "runs": [
                {
                    "id": r.id,
                    "commit": r.commit,
                    "started": r.started,
                    "status": r.status,
                    "command": r.command,
                    "tags": list(r.tags),
                }
                for r in self.runs
            ],
            "logs": list(self.logs),
            "log_bytes": self.log_bytes,
            "runs_kept": self.kept,
            "data_only": self.data_only,
            "data": list(self.data.digests) if self.data else [],
            "data_bytes": self.data.size if self.data else 0,
            "histories": [*self.histories, *self.history_redrop],
        }


@dataclass
class GcResult:
    """What ``gc`` did (or, with ``dry_run``, would do)."""

    plan: GcPlan
    dry_run: bool
    tombstones: int = 0
    dropped: list[str] = field(default_factory=list)
    dropped_data: list[str] = field(default_factory=list)  # digests of kept bytes dropped
    dropped_histories: list[str] = field(default_factory=list)  # metric history blob ids


def select_runs(scan: LedgerScan, rules: RetentionRules) -> tuple[list[LocatedRun], int]:
    """The live runs the rules remove, oldest first, and how many live runs stay."""
    live = scan.live_runs()
    protected: set[str] = set()
    if rules.keep_last is not None:
        by_commit: dict[str, list[LocatedRun]] = {}
        for run in live:
            by_commit.setdefault(run.record.commit, []).append(run)
        for runs in by_commit.values():
            newest = sorted(runs, key=lambda r: r.id, reverse=True)[: rules.keep_last]
            protected.update(r.id for r in newest)
    chosen = []
    for run in live:
        record = run.record
        if run.id in protected:
            continue
        if rules.keep_tagged and any(r.tags for r in _versions(scan, run)):
            continue
        if rules.runs and run.id not in rules.runs:
            continue
        if rules.failed_only and record.status == STATUS_OK:
            continue
        if rules.older_than is not None and not _started_before(record, rules.older_than):
            continue
        chosen.append(run)
    return chosen, len(live) - len(chosen)


def _versions(scan: LedgerScan, run: LocatedRun) -> list[RunRecord]:
    return scan.conflicts.get(run.id, [run.record])


def _started_before(record: RunRecord, cutoff: datetime) -> bool:
    return _time_before(record.started, cutoff)


def _time_before(text: str, cutoff: datetime) -> bool:
    try:
        started = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False  # an unreadable time is never old enough to delete
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return started < cutoff


def plan_gc(
    ledger: Ledger,
    rules: RetentionRules,
    *,
    logs_only: bool = False,
    scan: LedgerScan | None = None,
    data_only: bool = False,
) -> GcPlan:
    """What :func:`gc` would remove. Without a selecting rule nothing is chosen, and only
    logs (and kept bytes) dropped before that a merge brought back are dropped again.
    With ``data_only`` the runs stay and only kept bytes go (git_prov.kept_retention).

    Without ``scan`` the plan comes from the query index and one streamed pass over the
    notes, in memory bounded by the runs chosen (:func:`plan_gc_streamed`; with
    ``data_only``, by the runs that name data manifests); with a ``scan``, from that
    whole-ledger scan. Both give the same plan (tests/test_gc_streamed.py)."""
    if scan is None:
        return plan_gc_streamed(ledger, rules, logs_only=logs_only, data_only=data_only)
    if data_only:
        selected = None
        if rules.selects():
            chosen_runs, _ = select_runs(scan, replace(rules, keep_last=None))
            selected = [r.id for r in chosen_runs]
        data = plan_data_drops(ledger, scan, selected=selected, keep_last=rules.keep_last)
        going = set(data.runs)
        runs = tuple(GcRun.of(r) for r in scan.live_runs() if r.id in going)
        return GcPlan(runs, (), 0, False, len(scan.live_runs()), (), data, True)
    chosen, kept = select_runs(scan, rules) if rules.selects() else ([], len(scan.live_runs()))
    chosen_ids = {r.id for r in chosen}
    # A log is dropped only when no surviving run (any version) still names it.
    still_used = {
        oid
        for run in scan.live_runs()
        if run.id not in chosen_ids
        for record in _versions(scan, run)
        for oid in (record.stdout, record.stderr)
        if oid
    }
    tip = ledger.tip(OBJECTS_REF)
    tree = tip.tree if tip is not None else None
    candidates = {
        oid
        for run in chosen
        for record in _versions(scan, run)
        for oid in (record.stdout, record.stderr)
        if oid and oid not in still_used
    }
    logs = stored_logs(ledger, tree, candidates) if tree is not None else []
    redrop: list[str] = []
    if tree is not None:
        redrop = [
            oid
            for oid in returned_logs(ledger, tree)
            if oid not in candidates
            and not (oid in still_used and put_back_by_a_write(ledger, oid))
        ]
    size = sum(_size(ledger, oid) for oid in logs)
    data = plan_data_drops(ledger, scan, removed=() if logs_only else sorted(chosen_ids))
    histories, history_redrop = _history_drops(ledger, scan, [] if logs_only else chosen, tree)
    if logs_only:
        with_logs = [
            r for r in chosen if any(o in logs for o in (r.record.stdout, r.record.stderr))
        ]
        return GcPlan(
            tuple(map(GcRun.of, with_logs)), tuple(logs), size, True, kept, tuple(redrop),
            data, history_redrop=history_redrop,
        )  # fmt: skip
    return GcPlan(
        tuple(map(GcRun.of, chosen)), tuple(logs), size, False, kept, tuple(redrop), data,
        histories=histories, history_redrop=history_redrop,
    )  # fmt: skip


def plan_gc_streamed(
    ledger: Ledger, rules: RetentionRules, *, logs_only: bool = False, data_only: bool = False
) -> GcPlan:
    """:func:`plan_gc` without a whole-ledger scan: the runs are chosen from the query index
    (one pass over its live rows, keeping only the ids chosen), the chosen runs are read
    back as :meth:`Ledger.scan` gives them, and whether a remaining run still names a log,
    history or kept bytes of theirs is asked of the notes (or manifests) streamed once.
    Memory: the chosen runs and what they name, not the ledger. With ``data_only``, only
    the records that name data manifests are read, and those manifests."""
    from git_prov.query.index import with_index
    from git_prov.store.gitcli.paths import RepoPaths

    def plan(index: Any) -> GcPlan:
        if data_only:
            return _plan_data_in_index(ledger, index, rules)
        return _plan_in_index(ledger, index, rules, logs_only)

    return with_index(RepoPaths.of_repo(ledger.repo), plan)  # type: ignore[no-any-return]


def _plan_in_index(ledger: Ledger, index: Any, rules: RetentionRules, logs_only: bool) -> GcPlan:
    from git_prov.kept_retention import plan_removed_data
    from git_prov.query.located import as_scanned

    # Sorting every live run by commit (--keep-last) and the distinct manifests of the runs
    # that stay spill to a temporary file past the page cache, instead of growing in memory.
    index.db.execute("PRAGMA temp_store=FILE")

    chosen_ids, live = _select_in_index(index, rules) if rules.selects() else ([], None)
    if live is None:
        live = index.run_count()
    # The chosen runs' records are read a part at a time and only what the plan needs is
    # kept of them: the slim run, the logs and histories any version names, the data
    # manifests (and under --logs-only the live record's logs, to list the runs by them).
    runs: list[GcRun] = []
    log_ids: set[str] = set()
    history_ids: set[str] = set()
    manifests: list[tuple[str, tuple[str, ...]]] = []  # (every run, for the index's query)
    live_logs: dict[str, tuple[str | None, str | None]] = {}
    commits: dict[str, str] = {}  # (one string per commit, shared by its runs)
    for start in range(0, len(chosen_ids), _RUNS_PER_READ):
        found = as_scanned(index, chosen_ids[start : start + _RUNS_PER_READ])
        for run_id in chosen_ids[start : start + _RUNS_PER_READ]:
            if run_id not in found:
                continue
            run, versions = found[run_id]
            r = run.record
            shown = tuple(commits.setdefault(c, c) for c in run.shown_on)
            commit = commits.setdefault(r.commit, r.commit)
            runs.append(GcRun(r.id, commit, r.started, r.status, r.command, r.tags, shown))
            log_ids.update(o for v in versions for o in (v.stdout, v.stderr) if o)
            if logs_only:
                live_logs[run_id] = (r.stdout, r.stderr)
                continue
            history_ids.update(v.history for v in versions if v.history)
            manifests.append(
                (run_id, tuple(m for v in versions for m in (v.inputs, v.outputs) if m))
            )
        del found
    kept = live - len(runs)
    going = {run.id for run in runs}
    tip = ledger.tip(OBJECTS_REF)
    tree = tip.tree if tip is not None else None
    returned = returned_logs(ledger, tree) if tree is not None else []
    back = returned_histories(ledger, tree) if tree is not None else []
    # Which of them a remaining run names: for histories under --logs-only every run
    # remains (the chosen ones keep their records).
    named_logs, named_histories = _named_by_live_runs(
        index, {*log_ids, *returned}, going, {*history_ids, *back}, set() if logs_only else going
    )
    candidates = log_ids - named_logs
    logs = stored_logs(ledger, tree, candidates) if tree is not None else []
    redrop = [
        o
        for o in returned
        if o not in candidates and not (o in named_logs and put_back_by_a_write(ledger, o))
    ]
    size = sum(_size(ledger, oid) for oid in logs)
    data = plan_removed_data(ledger, index, manifests)
    history_going = history_ids - named_histories
    histories = tuple(stored_histories(ledger, tree, history_going)) if tree is not None else ()
    history_redrop = tuple(o for o in back if o not in history_going and o not in named_histories)
    if logs_only:
        dropping = set(logs)
        with_logs = [r for r in runs if any(o in dropping for o in live_logs[r.id])]
        return GcPlan(
            tuple(with_logs), tuple(logs), size, True, kept, tuple(redrop), data,
            history_redrop=history_redrop,
        )  # fmt: skip
    return GcPlan(
        tuple(runs), tuple(logs), size, False, kept, tuple(redrop), data,
        histories=histories, history_redrop=history_redrop,
    )  # fmt: skip


def _plan_data_in_index(ledger: Ledger, index: Any, rules: RetentionRules) -> GcPlan:
    """The ``--data-only`` plan :func:`plan_gc` makes of a scan, from the index: the kept
    entries of the live runs that name data manifests, the rules applied to those runs."""
    from git_prov.kept_retention import live_kept_entries, weigh_data_drops
    from git_prov.query.located import as_scanned
    from git_prov.store.kept import dropped_digests, kept_digests

    already = dropped_digests(ledger)
    here = kept_digests(ledger.repo)
    redrop = sorted(d for d in already if d in here)
    live = index.run_count()
    if not rules.selects():
        return GcPlan((), (), 0, False, live, (), DataDrops(redrop=tuple(redrop)), True)
    entries = live_kept_entries(ledger, index)
    among = sorted({e.run for e in entries})
    selected, _ = _select_in_index(index, replace(rules, keep_last=None), among=among)
    data = weigh_data_drops(entries, already, redrop, (), selected, rules.keep_last)
    del entries
    runs: list[GcRun] = []
    for start in range(0, len(data.runs), _RUNS_PER_READ):
        part = data.runs[start : start + _RUNS_PER_READ]
        found = as_scanned(index, part)
        runs.extend(GcRun.of(found[r][0]) for r in part if r in found)
    return GcPlan(tuple(runs), (), 0, False, live, (), data, True)


def _select_in_index(
    index: Any, rules: RetentionRules, among: Sequence[str] | None = None
) -> tuple[list[str], int | None]:
    """The ids of the live runs ``rules`` remove (sorted: oldest first) and how many live
    runs there are (None when only the named runs were read), from the index's live rows
    — the records :meth:`Ledger.scan` keeps — holding only the ids chosen. ``among``: only
    these runs are considered (not with ``keep_last``)."""
    if among is not None:
        assert rules.keep_last is None
        with index.selecting(among):
            return _select_rows(index, rules, wanted=True)
    return _select_rows(index, rules, wanted=False)


def _select_rows(index: Any, rules: RetentionRules, wanted: bool) -> tuple[list[str], int | None]:
    db = index.db
    among = " AND run IN temp.wanted" if wanted else ""
    tagged: set[str] = set()
    if rules.keep_tagged:  # a tag on any other copy of a run protects it too
        tagged = {
            run
            for (run,) in db.execute(
                "SELECT DISTINCT run FROM lines WHERE kind = 0 AND live = 0 AND tags IS NOT NULL"
                + among
            )
        }
    columns = "run, started, status, tags"
    if wanted:
        rows = db.execute(f"SELECT {columns}, 0 FROM lines WHERE live = 1{among}").fetchall()
    elif rules.keep_last is not None:  # the newest N runs of each commit (the record's)
        rank = "ROW_NUMBER() OVER (PARTITION BY commit_id ORDER BY run DESC)"
        rows = db.execute(f"SELECT {columns}, {rank} FROM lines WHERE live = 1")
    elif rules.runs:
        with index.selecting(rules.runs):
            rows = db.execute(
                f"SELECT {columns}, 0 FROM lines WHERE live = 1 AND run IN temp.wanted"
            ).fetchall()
    else:
        rows = db.execute(f"SELECT {columns}, 0 FROM lines WHERE live = 1")
    named = set(rules.runs)
    chosen: list[str] = []
    live = 0
    for run, started, status, tags, position in rows:
        live += 1
        if rules.keep_last is not None and position <= rules.keep_last:
            continue
        if rules.keep_tagged and (tags is not None or run in tagged):
            continue
        if named and run not in named:
            continue
        if rules.failed_only and status == STATUS_OK:
            continue
        if rules.older_than is not None and not _time_before(started, rules.older_than):
            continue
        chosen.append(run)
    chosen.sort()
    return chosen, None if rules.runs and rules.keep_last is None else live


def _named_by_live_runs(
    index: Any, logs: set[str], logs_by_others_of: set[str], histories: set[str],
    histories_by_others_of: set[str],
) -> tuple[set[str], set[str]]:  # fmt: skip
    """Those of ``logs`` that a live run outside ``logs_by_others_of`` names as its stdout
    or stderr (any version of it), and those of ``histories`` that a live run outside
    ``histories_by_others_of`` names as its history: the notes are streamed once, a note
    only parsed where it could name one (a line with an escape, or one of the ids written
    out), and the pass stops once every id is found named."""
    from git_prov.model.limits import note_too_large
    from git_prov.model.record import RunRecord, parse_line
    from git_prov.query.rows import note_lines, run_objects
    from git_prov.store.gitcli import stream_blobs

    logs_left, histories_left = set(logs), set(histories)
    named_logs: set[str] = set()
    named_histories: set[str] = set()
    if not logs_left and not histories_left:
        return named_logs, named_histories
    live: dict[str, bool] = {}

    def is_live(run: str) -> bool:
        if run not in live:
            live[run] = bool(
                index.db.execute(
                    "SELECT 1 FROM lines WHERE live = 1 AND run = ? LIMIT 1", (run,)
                ).fetchall()
            )
        return live[run]

    def consider(run: str, stdout: str | None, stderr: str | None, history: str | None) -> None:
        hit_logs = [o for o in (stdout, stderr) if o in logs_left and run not in logs_by_others_of]
        hit_history = history in histories_left and run not in histories_by_others_of
        if (hit_logs or hit_history) and is_live(run):
            for oid in hit_logs:
                logs_left.discard(oid)
                named_logs.add(oid)
            if hit_history and history is not None:
                histories_left.discard(history)
                named_histories.add(history)

    notes = [(c, b) for c, b in index.db.execute("SELECT commit_id, blob FROM notes")]
    for start in range(0, len(notes), _NOTES_PER_PASS):
        part = notes[start : start + _NOTES_PER_PASS]
        blobs = stream_blobs(index.paths.cwd, [blob for _, blob in part])
        for (commit, _), (_, data) in zip(part, blobs, strict=False):
            if data is None or note_too_large(commit, len(data)) is not None:
                continue  # (Ledger.scan reads neither)
            text = data.decode("utf-8", "replace")
            wanted = logs_left | histories_left
            if "\\" not in text and not any(o in wanted for o in _HEX.findall(text)):
                continue
            for line in note_lines(data):
                if "\\" not in line and not any(o in wanted for o in _HEX.findall(line)):
                    continue
                found = run_objects(line)
                if found is not None:
                    consider(found.id, found.stdout, found.stderr, found.history)
                    continue
                try:
                    entry = parse_line(line)
                except ValueError:
                    continue
                if isinstance(entry, RunRecord):
                    consider(entry.id, entry.stdout, entry.stderr, entry.history)
            if not logs_left and not histories_left:
                getattr(blobs, "close", lambda: None)()  # (stops git cat-file)
                return named_logs, named_histories
    return named_logs, named_histories


def _history_drops(
    ledger: Ledger, scan: LedgerScan, chosen: list[LocatedRun], tree: Any
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The metric histories of the removed runs ``chosen`` that no remaining run (any
    version) names and the objects tree holds, and those a merge brought back beside
    their drop marker that no remaining run names; each sorted."""
    if tree is None:
        return (), ()
    chosen_ids = {r.id for r in chosen}
    still_used = {
        record.history
        for run in scan.live_runs()
        if run.id not in chosen_ids
        for record in _versions(scan, run)
        if record.history
    }
    candidates = {
        record.history
        for run in chosen
        for record in _versions(scan, run)
        if record.history and record.history not in still_used
    }
    going = stored_histories(ledger, tree, candidates)
    back = [
        oid
        for oid in returned_histories(ledger, tree)
        if oid not in candidates and oid not in still_used
    ]
    return tuple(going), tuple(back)


def _size(ledger: Ledger, oid: str) -> int:
    try:
        return ledger.object_size(oid, "log")
    except NotFound:
        return 0


def gc(
    repo: GitRepo,
    rules: RetentionRules,
    *,
    logs_only: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    data_only: bool = False,
    plan: GcPlan | None = None,
) -> GcResult:
    """Remove runs (or only their logs) chosen by ``rules``.

    Order, for crash safety: the objects ref first (drop markers added and log and
    metric history paths removed, one compare-and-swap), then every tombstone in one
    ledger write. A crash in between leaves dropped logs of runs that are still listed —
    consistent, and the next ``gc`` finishes the job. ``plan``: the one :func:`plan_gc`
    made of these rules just before (the CLI shows it first), else it is made here.
    """
    from git_prov.store.reflocks import recover_stale_ref_locks

    ledger = Ledger(repo)
    if plan is None:
        plan = plan_gc(ledger, rules, logs_only=logs_only, data_only=data_only)
    result = GcResult(plan, dry_run)
    if dry_run or plan.empty:
        return result
    recover_stale_ref_locks(repo)
    if plan.data is not None and not plan.data.empty:
        result.dropped_data = drop_data(ledger, plan.data, rules.describe())
    if plan.data_only:
        return result
    drops = [*plan.logs, *plan.redrop]
    histories = [*plan.histories, *plan.history_redrop]
    if drops or histories:
        drop_logs(ledger, drops, rules.describe(), histories)
        result.dropped = drops
        result.dropped_histories = histories
    if plan.runs and not plan.logs_only:
        at = _iso(now or datetime.now(UTC))
        stone_reason = rules.describe()

        def entries() -> Iterator[tuple[str, Entry]]:  # (made as the write reads them)
            for run in plan.runs:
                stone = Tombstone(run=run.id, at=at, reason=stone_reason)
                yield from ((commit, stone) for commit in dict.fromkeys(run.shown_on))

        ledger.write(entries(), message=f"git-prov: gc removes {len(plan.runs)} runs")
        result.tombstones = len(plan.runs)
    return result


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"

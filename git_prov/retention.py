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

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from git_prov.errors import NotFound
from git_prov.kept_retention import DataDrops, drop_data, plan_data_drops
from git_prov.model.record import STATUS_OK, Entry, RunRecord, Tombstone
from git_prov.model.when import parse_time
from git_prov.store.drops import DROP_DIR as DROP_DIR
from git_prov.store.drops import (
    drop_logs,
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


@dataclass(frozen=True)
class GcPlan:
    """What ``gc`` removes: ``runs`` to tombstone, ``logs`` (blob ids) to drop, and how
    many bytes those logs hold. ``redrop`` are logs dropped before that a merge brought
    back into the objects tree."""

    runs: tuple[LocatedRun, ...]
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
                    "commit": r.record.commit,
                    "started": r.record.started,
                    "status": r.record.status,
                    "command": r.record.command,
                    "tags": list(r.record.tags),
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
    try:
        started = datetime.fromisoformat(record.started.replace("Z", "+00:00"))
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
    With ``data_only`` the runs stay and only kept bytes go (git_prov.kept_retention)."""
    scan = scan or ledger.scan()
    if data_only:
        selected = None
        if rules.selects():
            chosen_runs, _ = select_runs(scan, replace(rules, keep_last=None))
            selected = [r.id for r in chosen_runs]
        data = plan_data_drops(ledger, scan, selected=selected, keep_last=rules.keep_last)
        going = set(data.runs)
        runs = tuple(r for r in scan.live_runs() if r.id in going)
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
        redrop = [oid for oid in returned_logs(ledger, tree) if oid not in candidates]
    size = sum(_size(ledger, oid) for oid in logs)
    data = plan_data_drops(ledger, scan, removed=() if logs_only else sorted(chosen_ids))
    histories, history_redrop = _history_drops(ledger, scan, [] if logs_only else chosen, tree)
    if logs_only:
        with_logs = [
            r for r in chosen if any(o in logs for o in (r.record.stdout, r.record.stderr))
        ]
        return GcPlan(
            tuple(with_logs), tuple(logs), size, True, kept, tuple(redrop), data,
            history_redrop=history_redrop,
        )  # fmt: skip
    return GcPlan(
        tuple(chosen), tuple(logs), size, False, kept, tuple(redrop), data,
        histories=histories, history_redrop=history_redrop,
    )  # fmt: skip


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
) -> GcResult:
    """Remove runs (or only their logs) chosen by ``rules``.

    Order, for crash safety: the objects ref first (drop markers added and log and
    metric history paths removed, one compare-and-swap), then every tombstone in one
    ledger write. A crash in between leaves dropped logs of runs that are still listed —
    consistent, and the next ``gc`` finishes the job.
    """
    from git_prov.store.reflocks import recover_stale_ref_locks

    ledger = Ledger(repo)
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
        entries: list[tuple[str, Entry]] = []
        for run in plan.runs:
            stone = Tombstone(run=run.id, at=at, reason=stone_reason)
            entries.extend((commit, stone) for commit in dict.fromkeys(run.shown_on))
        ledger.write(entries, message=f"git-prov: gc removes {len(plan.runs)} runs")
        result.tombstones = len(plan.runs)
    return result


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"

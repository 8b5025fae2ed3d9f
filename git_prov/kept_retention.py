"""``git prov gc`` for kept data: which kept bytes go, and dropping them.

Kept bytes are shared by content: a digest is dropped only when no surviving kept entry
(of a run that stays, or whose data stays) still names it. Dropping leaves the hash in the
manifests, writes a ``drop-data/<ab>/<rest>`` marker in ``refs/prov/objects`` (which every
sync carries, so the bytes stay dropped in every clone and no merge brings them back) and
removes the bytes' path from ``refs/prov/data``. Local git-LFS objects of dropped bytes are
left to ``git lfs prune`` (git-prov lets go of its second name of unpushed ones).

Rules (with ``--data-only``): a run's kept entries go when the run matches the selecting
rules (RUN ids, ``--older-than``, ``--failed-only``; all runs when only ``--keep-last`` is
given), unless ``--keep-tagged`` protects the run or ``--keep-last N`` does: the newest N
runs that kept a path keep it. Without ``--data-only``, the kept data of the runs gc
removes goes with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from git_prov.model.manifest import DataManifest
from git_prov.store.kept import (
    drop_kept,
    dropped_digests,
    kept_digests,
    release_guards,
    sha256_of,
)
from git_prov.store.ledger import Ledger, LedgerScan, LocatedRun


@dataclass(frozen=True)
class KeptEntry:
    """One kept file of one run."""

    run: str
    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class DataDrops:
    """Kept bytes ``gc`` drops (digests) and their size; ``redrop``: dropped before, then
    brought back into ``refs/prov/data`` by a merge."""

    digests: tuple[str, ...] = ()
    size: int = 0
    redrop: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()  # runs some of whose kept data goes

    @property
    def empty(self) -> bool:
        return not (self.digests or self.redrop)


def kept_entries(ledger: Ledger, runs: Iterable[LocatedRun], scan: LedgerScan) -> list[KeptEntry]:
    """The kept files of ``runs`` (every version of a conflicting run)."""
    manifests: dict[str, DataManifest] = {}
    out = []
    for run in runs:
        for record in scan.conflicts.get(run.id, [run.record]):
            for oid in (record.inputs, record.outputs):
                if not oid:
                    continue
                if oid not in manifests:
                    try:
                        manifests[oid] = ledger.data_manifest(oid)
                    except Exception:  # unreadable or missing: fsck reports it
                        manifests[oid] = DataManifest((), ())
                for entry in manifests[oid].entries:
                    digest = sha256_of(entry.hash) if entry.kept else None
                    if digest is not None:
                        out.append(KeptEntry(run.id, entry.path, digest, entry.size))
    return out


def plan_data_drops(
    ledger: Ledger,
    scan: LedgerScan,
    *,
    removed: Sequence[str] = (),
    selected: Sequence[str] | None = None,
    keep_last: int | None = None,
) -> DataDrops:
    """What kept bytes go: those of the ``removed`` runs, and (``--data-only``) of the
    ``selected`` runs except the newest ``keep_last`` runs keeping each path; in both
    cases only bytes no remaining kept entry names."""
    already = dropped_digests(ledger)
    here = kept_digests(ledger.repo)
    redrop = sorted(d for d in already if d in here)
    if not removed and selected is None:  # nothing chosen: only bytes a merge brought back
        return DataDrops(redrop=tuple(redrop))
    entries = kept_entries(ledger, scan.live_runs(), scan)
    return weigh_data_drops(entries, already, redrop, removed, selected, keep_last)


def weigh_data_drops(
    entries: Sequence[KeptEntry],
    already: set[str] | frozenset[str],
    redrop: Sequence[str],
    removed: Sequence[str],
    selected: Sequence[str] | None,
    keep_last: int | None,
) -> DataDrops:
    """:func:`plan_data_drops` once the kept ``entries`` of every live run (every version)
    are known: those of runs without kept entries change nothing."""
    removed_ids = set(removed)
    going: set[KeptEntry] = {e for e in entries if e.run in removed_ids}
    if selected is not None:
        chosen = set(selected)
        protected: set[tuple[str, str]] = set()
        if keep_last is not None:
            by_path: dict[str, set[str]] = {}
            for e in entries:
                by_path.setdefault(e.path, set()).add(e.run)
            for path, keeping in by_path.items():
                newest = sorted(keeping, reverse=True)[:keep_last]  # run ids sort by start
                protected.update((run, path) for run in newest)
        going |= {e for e in entries if e.run in chosen and (e.run, e.path) not in protected}
    staying = {e.digest for e in entries if e not in going}
    sizes: dict[str, int] = {}
    for e in going:
        if e.digest not in staying and e.digest not in already:
            sizes[e.digest] = e.size
    runs = sorted({e.run for e in going if e.digest in sizes})
    return DataDrops(tuple(sorted(sizes)), sum(sizes.values()), tuple(redrop), tuple(runs))


def live_kept_entries(ledger: Ledger, index: Any) -> list[KeptEntry]:
    """:func:`kept_entries` of every live run (every version), from the query index ``index``
    instead of a whole-ledger scan: only the records that name a data manifest are read,
    and each manifest once."""
    rows = index.db.execute(
        "SELECT run, inputs, outputs FROM lines WHERE kind = 0"
        " AND (inputs IS NOT NULL OR outputs IS NOT NULL)"
        " AND run IN (SELECT run FROM lines WHERE live = 1) ORDER BY run"
    )
    memo: dict[str, list[KeptEntry]] = {}
    out: list[KeptEntry] = []
    for run, inputs, outputs in rows:
        for oid in (inputs, outputs):
            if not oid:
                continue
            if oid not in memo:
                memo[oid] = _kept_in(ledger, "", (oid,), {})
            out.extend(KeptEntry(run, e.path, e.digest, e.size) for e in memo[oid])
    return out


def plan_removed_data(
    ledger: Ledger, index: Any, removed: Sequence[tuple[str, Sequence[str | None]]]
) -> DataDrops:
    """:func:`plan_data_drops` for the runs ``removed``, each as its id and the data
    manifests every version of it names (inputs, outputs; none: ``()``), asking the query
    index ``index`` instead of a whole-ledger scan: only the manifests of the runs that stay
    are read, each once, streamed, and only while some bytes of a removed run are not yet
    known to be named by a run that stays."""
    already = dropped_digests(ledger)
    here = kept_digests(ledger.repo)
    redrop = tuple(sorted(d for d in already if d in here))
    if not removed:
        return DataDrops(redrop=redrop)
    going: list[KeptEntry] = []
    for run_id, manifests in removed:
        going.extend(_kept_in(ledger, run_id, manifests, {}))
    left = {e.digest for e in going} - already
    if left:
        ids = [run_id for run_id, _ in removed]
        with index.selecting(ids):
            rows = index.db.execute(
                "SELECT DISTINCT m FROM (SELECT inputs AS m, run FROM lines WHERE kind = 0"
                " UNION ALL SELECT outputs, run FROM lines WHERE kind = 0)"
                " WHERE m IS NOT NULL AND run NOT IN temp.wanted"
                " AND run IN (SELECT run FROM lines WHERE live = 1)"
            ).fetchall()
        for (manifest,) in rows:
            for entry in _kept_in(ledger, "", (manifest,), {}):
                left.discard(entry.digest)
            if not left:
                break
    sizes: dict[str, int] = {}
    for e in going:
        if e.digest in left:
            sizes[e.digest] = e.size
    runs = sorted({e.run for e in going if e.digest in sizes})
    return DataDrops(tuple(sorted(sizes)), sum(sizes.values()), redrop, tuple(runs))


def _kept_in(
    ledger: Ledger, run: str, manifests: Iterable[str | None], memo: dict[str, DataManifest]
) -> list[KeptEntry]:
    """The kept files the data manifests ``manifests`` list, as ``run``'s."""
    out = []
    for oid in manifests:
        if not oid:
            continue
        manifest = memo.get(oid)
        if manifest is None:
            try:
                manifest = ledger.data_manifest(oid)
            except Exception:  # unreadable or missing: fsck reports it
                manifest = DataManifest((), ())
        for entry in manifest.entries:
            digest = sha256_of(entry.hash) if entry.kept else None
            if digest is not None:
                out.append(KeptEntry(run, entry.path, digest, entry.size))
    return out


def drop_data(ledger: Ledger, drops: DataDrops, reason: str) -> list[str]:
    """Drop the planned kept bytes: markers in ``refs/prov/objects`` first (one CAS
    commit), then their paths out of ``refs/prov/data`` (one CAS commit). A crash in between
    leaves bytes that every reader already treats as dropped; the next gc removes them."""
    digests = list(dict.fromkeys([*drops.digests, *drops.redrop]))
    if not digests:
        return []
    drop_kept(ledger, digests, f"git-prov: {reason}: drop the kept bytes of {len(digests)} files")
    release_guards(ledger.repo, digests)  # (the store's copies are left to git lfs prune)
    return digests


__all__ = [
    "DataDrops",
    "KeptEntry",
    "drop_data",
    "kept_entries",
    "live_kept_entries",
    "plan_data_drops",
    "plan_removed_data",
    "weigh_data_drops",
]

"""Logs and metric histories dropped by ``git prov gc``: a ``drop/ab/cd…`` marker (an empty
blob) in the objects tree for each log, a ``drop-metrics/ab/cd…`` one for each history,
carried by the union merge like everything there, and the ``log/`` (``metrics/``) path
taken out (see :mod:`git_prov.retention` for the rules that choose them)."""

from __future__ import annotations

from collections.abc import Iterable

import pygit2

from git_prov.store.ledger import KIND_LOG, KIND_METRICS, OBJECTS_REF, Ledger, object_path
from git_prov.store.locking import ledger_lock
from git_prov.store.trees import FILEMODE_BLOB, Change, edit_tree, lookup_path

DROP_DIR = "drop"
HISTORY_DROP_DIR = "drop-metrics"  # drop-metrics/<ab>/<rest>: a history gc dropped
# The marker directory of each kind of object gc drops.
_MARKERS = ((KIND_LOG, DROP_DIR), (KIND_METRICS, HISTORY_DROP_DIR))


def drop_markers(repo: pygit2.Repository, tree: pygit2.Tree, directory: str = DROP_DIR) -> set[str]:
    """The ids of the logs (``directory`` ``HISTORY_DROP_DIR``: the metric histories) an
    objects tree has drop markers for."""
    sub = lookup_path(repo, tree, directory)
    if not isinstance(sub, pygit2.Tree):
        return set()
    found: set[str] = set()
    for fan in sub:
        leaves = repo[fan.id]
        if isinstance(leaves, pygit2.Tree):
            found.update((fan.name or "") + (leaf.name or "") for leaf in leaves)
    return found


def dropped_logs(ledger: Ledger) -> set[str]:
    """Ids of the logs ``gc`` dropped (their ``drop/`` markers in the objects tree)."""
    tip = ledger.tip(OBJECTS_REF)
    return set() if tip is None else drop_markers(ledger.pygit, tip.tree)


def is_dropped(ledger: Ledger, oid: str) -> bool:
    """Whether ``gc`` dropped the log ``oid`` (readers say so instead of showing it)."""
    tip = ledger.tip(OBJECTS_REF)
    return (
        tip is not None
        and lookup_path(ledger.pygit, tip.tree, object_path(DROP_DIR, oid)) is not None
    )


def is_history_dropped(ledger: Ledger, oid: str) -> bool:
    """Whether ``gc`` dropped the metric history ``oid``: its marker is there and its
    ``metrics/`` path is not (readers say "dropped by git prov gc" instead of failing)."""
    tip = ledger.tip(OBJECTS_REF)
    if tip is None:
        return False
    repo, tree = ledger.pygit, tip.tree
    return (
        lookup_path(repo, tree, object_path(HISTORY_DROP_DIR, oid)) is not None
        and lookup_path(repo, tree, object_path(KIND_METRICS, oid)) is None
    )


def history_marked(ledger: Ledger, oid: str) -> bool:
    """Whether the objects tree has a drop marker for the metric history ``oid`` (a run
    recording these same bytes again stores them under another id: see
    :func:`git_prov.model.history.encode_history`'s ``run``)."""
    tip = ledger.tip(OBJECTS_REF)
    return (
        tip is not None
        and lookup_path(ledger.pygit, tip.tree, object_path(HISTORY_DROP_DIR, oid)) is not None
    )


def returned_histories(ledger: Ledger, tree: pygit2.Tree) -> list[str]:
    """The metric histories objects tree ``tree`` holds beside their drop marker, sorted."""
    return sorted(
        oid
        for oid in drop_markers(ledger.pygit, tree, HISTORY_DROP_DIR)
        if lookup_path(ledger.pygit, tree, object_path(KIND_METRICS, oid)) is not None
    )


def put_back_by_a_write(ledger: Ledger, oid: str) -> bool:
    """Whether the log ``oid``, present beside its drop marker, was put back by a write of
    this clone (the newest commit of the objects ref's first-parent chain that added
    ``log/…`` has one parent) rather than by a merge: a run recorded after the drop stored
    the same bytes without the header that makes them its own (an older git-prov), so
    dropping them again would take a live run's log. A merge that brought a dropped log
    back (an older git-prov's) repeats nothing but the drop."""
    proc = ledger.repo.git(
        "log", "--first-parent", "-1", "--format=%P", "--diff-filter=A", OBJECTS_REF, "--",
        object_path(KIND_LOG, oid), check=False,
    )  # fmt: skip
    return proc.returncode == 0 and len(proc.stdout.split()) == 1


def stored_logs(ledger: Ledger, tree: pygit2.Tree, oids: Iterable[str]) -> list[str]:
    """Those of the logs ``oids`` that objects tree ``tree`` holds, sorted."""
    return sorted(
        oid for oid in oids if lookup_path(ledger.pygit, tree, object_path(KIND_LOG, oid))
    )


def stored_histories(ledger: Ledger, tree: pygit2.Tree, oids: Iterable[str]) -> list[str]:
    """Those of the metric histories ``oids`` that objects tree ``tree`` holds, sorted."""
    return sorted(
        oid for oid in oids if lookup_path(ledger.pygit, tree, object_path(KIND_METRICS, oid))
    )


def returned_logs(ledger: Ledger, tree: pygit2.Tree) -> list[str]:
    """The logs objects tree ``tree`` holds beside their drop marker (a merge brought
    them back), sorted: the next ``gc`` drops them again."""
    return sorted(
        oid
        for oid in drop_markers(ledger.pygit, tree)
        if lookup_path(ledger.pygit, tree, object_path(KIND_LOG, oid)) is not None
    )


def without_dropped_logs(repo: pygit2.Repository, tree: pygit2.Tree) -> pygit2.Oid:
    """``tree`` (an objects tree) without the ``log/`` paths that have a ``drop/`` marker
    and the ``metrics/`` paths that have a ``drop-metrics/`` marker.

    A pure function of the tree, so applying it after the union merge keeps that merge
    commutative, associative and idempotent: (A ∪ B) minus drops is the same whichever
    side dropped a log, and a dropped log never comes back from a clone that still has it.
    """
    changes: dict[str, Change] = {
        object_path(kind, oid): None
        for kind, directory in _MARKERS
        for oid in drop_markers(repo, tree, directory)
        if lookup_path(repo, tree, object_path(kind, oid)) is not None
    }
    return tree.id if not changes else edit_tree(repo, tree, changes)


def drop_logs(
    ledger: Ledger, oids: Iterable[str], reason: str, histories: Iterable[str] = ()
) -> None:
    """Add drop markers for the logs ``oids`` and the metric histories ``histories`` and
    take their ``log/`` (``metrics/``) paths out of the objects tree, in one
    compare-and-swap of the objects ref (nothing when there is nothing to change)."""
    repo = ledger.pygit
    wanted = list(dict.fromkeys(oids))
    metrics = list(dict.fromkeys(histories))
    message = f"git-prov: {reason}: drop {len(wanted)} logs"
    if metrics:
        message += f" and {len(metrics)} metric histories"
    targets = [(oid, KIND_LOG, DROP_DIR) for oid in wanted]
    targets += [(oid, KIND_METRICS, HISTORY_DROP_DIR) for oid in metrics]

    def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        if tip is None:
            return None
        tree = tip.tree
        empty = repo.create_blob(b"")
        changes: dict[str, Change] = {}
        for oid, kind, directory in targets:
            if lookup_path(repo, tree, object_path(directory, oid)) is None:
                changes[object_path(directory, oid)] = (empty, FILEMODE_BLOB)
            if lookup_path(repo, tree, object_path(kind, oid)) is not None:
                changes[object_path(kind, oid)] = None
        if not changes:
            return None
        return ledger._commit(edit_tree(repo, tree, changes), [tip.id], message)

    with ledger_lock(ledger.repo.prov_dir / "ledger.lock"):
        ledger._cas(OBJECTS_REF, build, message)

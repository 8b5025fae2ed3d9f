"""Where a run is shown now, and which runs reproduce it.

A record names the commit it ran on forever; after a rewrite (rebase, amend, squash merge,
git filter-repo) the run is *also* shown on the new commit by an attachment, and that is
where ``git log`` shows it now. ``shown_now`` is the commit of the run's newest attachment
(by its time, then commit id, so every clone agrees), else the commit it ran on.

``git prov reproduce`` records the rerun on the commit the original ran on (with the same
snapshot for a dirty tree) and ``reproduces`` = the original's id, so the reproductions of
a run are found in the notes of the commits it is shown on (and, for reproductions
recorded before that, of its snapshot)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from git_prov.model.record import Attachment

if TYPE_CHECKING:  # (the index is loaded by the commands that query, not by log's render)
    from git_prov.query.index import RunIndex
    from git_prov.store.ledger import LocatedRun


def newest_commit(commit: str, attachments: Iterable[Attachment]) -> str:
    """The commit a run is shown on now: its newest attachment's, else ``commit``."""
    newest = max(attachments, key=lambda a: (a.at, a.commit), default=None)
    return newest.commit if newest is not None else commit


def shown_now(index: RunIndex, run_ids: Sequence[str]) -> dict[str, str]:
    """Where each run is shown now (:func:`newest_commit`). Only runs shown on more than
    one commit have their attachments read."""
    from git_prov.query.located import located

    shown = index.shown_on(run_ids)
    out = {run: commits[0] for run, commits in shown.items()}
    moved = [run for run, commits in shown.items() if len(commits) > 1]
    for run, where in located(index, moved).items():
        out[run] = newest_commit(where.record.commit, where.attachments)
    return out


def reproductions(index: RunIndex, run: LocatedRun) -> list[LocatedRun]:
    """The live runs that reproduce ``run`` (oldest first)."""
    from git_prov.query.located import runs_on

    record = run.record
    commits = list(dict.fromkeys([*run.shown_on, *filter(None, [record.snapshot])]))
    found: dict[str, LocatedRun] = {}
    for listed in runs_on(index, commits).values():
        for other in listed:
            if other.record.reproduces == record.id:
                found[other.id] = other
    return [found[k] for k in sorted(found)]

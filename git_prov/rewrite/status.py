"""Where a run's code is now, for ``git prov show``: commits of the run this repository no
longer has (a history purge such as ``git filter-repo``, or a clone without them), and, for
an orphaned run, reachable commits with the same change that remap will not attach."""

from __future__ import annotations

from dataclasses import dataclass

from git_prov.rewrite.orphans import existing_commits, unreachable_from
from git_prov.rewrite.report import RemapCandidate
from git_prov.store.ledger import LocatedRun
from git_prov.store.repo import GitRepo


@dataclass(frozen=True)
class CodeWhereabouts:
    """What :func:`whereabouts` found for one run."""

    gone: tuple[str, ...] = ()  # its commit, snapshot or shown-on commits this repo lacks
    orphaned: bool = False  # no branch, remote-tracking branch, tag or HEAD reaches it
    unconfirmed: tuple[RemapCandidate, ...] = ()  # same change, no evidence of a copy


def whereabouts(repo: GitRepo, run: LocatedRun, *, candidates: bool = True) -> CodeWhereabouts:
    """Which of ``run``'s commits are gone and, when it is orphaned and ``candidates``, the
    commits remap lists for it but does not attach (from the remap watermark when no ref
    changed, else a dry-run remap)."""
    record = run.record
    commits = list(dict.fromkeys([record.commit, *run.shown_on, *filter(None, [record.snapshot])]))
    have = existing_commits(repo, commits)
    gone = tuple(c for c in commits if c not in have)
    mine = [c for c in run.shown_on if c in have]
    if not mine:
        return CodeWhereabouts(gone)
    unreachable = unreachable_from(repo, mine)
    if any(c not in unreachable for c in mine):
        return CodeWhereabouts(gone)
    found: tuple[RemapCandidate, ...] = ()
    if candidates:
        from git_prov.rewrite.matching import remap

        found = tuple(c for c in remap(repo, dry_run=True).unconfirmed if c.run == run.id)
    return CodeWhereabouts(gone, True, found)

"""Runs follow their code through history rewrites.

A record always names the commit the run ran on, and that commit stays in the repository
(``refs/prov/objects`` keeps it, so ``git gc`` never prunes it). When history is rewritten,
the run is *also shown* on the new commit by an :class:`~git_prov.model.record.Attachment`
line in the new commit's note (``how`` says why; ``original`` is always the commit the run
ran on, however many rewrites lie between). Three ways find the new commit:

* :func:`follow_rewrite` / :func:`remap_rewritten` (:mod:`.hook`) — git says which commit
  became which: the ``post-rewrite`` hook (``git commit --amend``, ``git rebase``).
* :func:`follow_filter_repo` (:mod:`.filter_repo`) — ``git filter-repo`` leaves its exact
  old → new map in ``.git/filter-repo/commit-map``.
* :func:`remap` (:mod:`.matching`) — git said nothing: a cherry-pick, a hosting service's squash
  or rebase merge, a rebase without the hook. It matches *orphaned* runs to reachable
  commits, and only with evidence that the commit is a copy (:mod:`.evidence`).

Decisions:

* **Orphaned** (:mod:`.orphans`): no commit the run is shown on is reachable from a local or
  remote-tracking branch, a tag or HEAD (``git prov``'s own refs do not count).
* **Candidates**: commits of ``git rev-list REV-RANGE``; by default every commit reachable
  as above whose committer date is no older than the oldest orphan's author or committer
  date less :data:`CLOCK_SLACK_SECONDS` (copies are made after their originals).
* **Evidence, not likeness.** The same patch-id is not enough: two people make the same
  one-line change. A copy made by rebase or cherry-pick keeps author, author date and
  message; a squash keeps the branch tip's tree (nothing else came in) or names the
  squashed commits in its message. Matches without that evidence are listed as
  *unconfirmed* candidates, never attached. Same tree — byte-for-byte the code that ran —
  is the last step. Several candidates with evidence make a run *ambiguous*: reported,
  never attached. No fuzzy matching: a rebase whose conflict was resolved by hand changes
  the patch-id and the tree, so its run is reported *unmatched* (the hook, when installed,
  still follows it).
* **Cherry-picks** leave the original reachable, so its runs are not orphaned and remap
  leaves them alone. ``include_reachable`` with a REV-RANGE (``git prov remap
  --include-reachable release``) also shows reachable runs on their copies in that range,
  by copy evidence only. Once the original's branch is deleted, a plain remap finds the copy.

Patch-ids are cached per commit and per combined range (:mod:`.patchids`); a watermark
(:mod:`.watermark`) makes a repeated :func:`remap` with no ref changed return the previous
result without any work.
"""

from __future__ import annotations

from git_prov.rewrite.hook import (
    HOW_AMEND,
    HOW_REBASE,
    REWRITE_KINDS,
    follow_rewrite,
    now_iso,
    parse_rewrite_lines,
    rebase_in_progress,
    remap_rewritten,
)
from git_prov.rewrite.matching import (
    CLOCK_SLACK_SECONDS,
    HOW_EMPTY,
    HOW_PATCH_ID,
    HOW_SAME_TREE,
    MATCHER_VERSION,
    MAX_SQUASH_STARTS,
    how_squash,
    remap,
)
from git_prov.rewrite.orphans import REACHABLE_REFS, CommitInfo, find_orphans
from git_prov.rewrite.patchids import patch_ids
from git_prov.rewrite.report import (
    RemapAmbiguity,
    RemapCandidate,
    RemapMatch,
    RemapReport,
    RemapUnmatched,
)
from git_prov.rewrite.status import CodeWhereabouts, whereabouts

__all__ = [
    "CLOCK_SLACK_SECONDS",
    "HOW_AMEND",
    "HOW_EMPTY",
    "HOW_PATCH_ID",
    "HOW_REBASE",
    "HOW_SAME_TREE",
    "MATCHER_VERSION",
    "MAX_SQUASH_STARTS",
    "REACHABLE_REFS",
    "REWRITE_KINDS",
    "CodeWhereabouts",
    "CommitInfo",
    "RemapAmbiguity",
    "RemapCandidate",
    "RemapMatch",
    "RemapReport",
    "RemapUnmatched",
    "find_orphans",
    "follow_rewrite",
    "how_squash",
    "now_iso",
    "parse_rewrite_lines",
    "patch_ids",
    "rebase_in_progress",
    "remap",
    "remap_rewritten",
    "whereabouts",
]

"""What fetch, push, sync and the pre-push hook did.

Named tuples, not dataclasses: importing dataclasses (it loads inspect) and building four
would add ~14 ms to the start-up of every sync."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from git_prov.rewrite import RemapMatch


class FetchResult(NamedTuple):
    """What ``fetch`` did: runs new to the local ledger, and what to warn about.

    ``rewritten`` names the remote's ledger refs that were force-rewritten since the last
    fetch (they were still union-merged: no local run is dropped); ``rewritten_here``
    those whose tracking copy was rewritten in this repository instead (git filter-repo
    rewrites every ref), so that the remote's, which did not change, no longer descends
    from it. ``remote_total`` counts the runs the remote's notes hold. ``remapped`` lists the
    arrived runs that :func:`git_prov.rewrite.remap` attached to the commits their code
    was copied to; ``remap_problem`` says why that step failed (the fetch itself did not).
    """

    remote: str
    had_provenance: bool
    runs_added: int
    runs_total: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    remapped: tuple[RemapMatch, ...] = ()
    remap_problem: str | None = None
    rewritten_here: tuple[str, ...] = ()
    remote_total: int = 0


class PushResult(NamedTuple):
    """What ``push`` did. ``runs_fetched`` counts runs merged in while retrying."""

    remote: str
    had_provenance: bool
    runs_pushed: int
    runs_total: int
    attempts: int
    up_to_date: bool
    runs_fetched: int = 0
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    # git-LFS objects of the pushed commits (snapshots): sent, and not in the local store
    lfs_uploaded: int = 0
    lfs_missing: tuple[str, ...] = ()
    rewritten_here: tuple[str, ...] = ()


class SyncResult(NamedTuple):
    """What ``sync`` (fetch + merge + push, retried) did; ``remapped`` as for fetch."""

    remote: str
    had_provenance: bool
    runs_fetched: int
    runs_pushed: int
    runs_total: int
    attempts: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    remapped: tuple[RemapMatch, ...] = ()
    remap_problem: str | None = None
    lfs_uploaded: int = 0
    lfs_missing: tuple[str, ...] = ()
    rewritten_here: tuple[str, ...] = ()


class HookResult(NamedTuple):
    """What the pre-push hook did: pushed (``pushed``), skipped (``skipped`` says why), or
    failed without blocking the user's push (``warning``)."""

    pushed: PushResult | None = None
    skipped: str | None = None
    warning: str | None = None

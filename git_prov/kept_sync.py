"""Kept data between clones: ``git prov push/fetch/sync --data``.

Metadata sync (``refs/notes/prov``, ``refs/prov/objects``) never moves kept bytes, so it
stays as fast as it is whatever runs keep. ``--data`` moves ``refs/prov/data``: the git
blobs of small kept files through git, and the git-LFS objects of large ones through
``git lfs`` (uploaded before the pointers naming them are pushed). ``git prov get``
fetches what it needs on demand, so ``fetch --data`` is only for having everything local.

The data ref merges as the objects ref does: a commit whose tree is the union of both
sides (content-addressed, so never conflicting), minus the bytes ``git prov gc`` dropped
(``drop-data/`` markers of ``refs/prov/objects``). Every ref update is compare-and-swap;
pushes are never forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from git_prov.errors import RemoteProblem
from git_prov.kept_data import fetch_data
from git_prov.model.manifest import KEPT_LFS
from git_prov.store.kept import (
    DATA_REF,
    dropped_digests,
    kept_digests,
    merge_data,
    release_guards,
    restore_kept_lfs,
    tracking_data_ref,
)
from git_prov.store.ledger import Ledger
from git_prov.store.repo import GitRepo

PUSH_ATTEMPTS = 6
_REJECTED = (
    "rejected",
    "fetch first",
    "non-fast-forward",
    "cannot lock ref",
    "incorrect old value",
)


@dataclass(frozen=True)
class DataSync:
    """What moving kept data did: files (digests) here before and after, sent or received."""

    remote: str
    direction: str  # "push" or "fetch"
    files_here: int
    received: int = 0
    sent: int = 0
    lfs_uploaded: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "direction": self.direction,
            "files_here": self.files_here,
            "received": self.received,
            "sent": self.sent,
            "lfs_uploaded": self.lfs_uploaded,
        }


def merge_tracking_data(repo: GitRepo, remote: str) -> int:
    """Merge ``refs/prov/remotes/<remote>/data`` into ``refs/prov/data``; returns how many
    kept files arrived."""
    ledger = Ledger(repo)
    theirs = ledger.tip(tracking_data_ref(remote))
    if theirs is None:
        return 0
    before = set(kept_digests(repo))
    merge_data(ledger, theirs, f"git-prov: merge the kept data of {remote}")
    # LFS objects are uploaded before the pointers naming them: the remote has these.
    release_guards(repo, [*kept_digests(repo, tracking_data_ref(remote)), *dropped_digests(ledger)])
    return len(set(kept_digests(repo)) - before)


def fetch_kept_data(repo: GitRepo, remote: str) -> DataSync:
    """``fetch --data``: fetch the remote's kept data and merge it into ours."""
    received = merge_tracking_data(repo, remote) if fetch_data(repo, remote) else 0
    return DataSync(remote, "fetch", len(kept_digests(repo)), received=received)


def push_kept_data(repo: GitRepo, remote: str, attempts: int = PUSH_ATTEMPTS) -> DataSync:
    """``push --data``: upload the git-LFS objects of kept large files, then push
    ``refs/prov/data`` (merging the remote's first when it moved). Never forced."""
    ledger = Ledger(repo)
    received = 0
    for _ in range(attempts):
        tip = ledger.tip(DATA_REF)
        if tip is None:
            return DataSync(remote, "push", 0)
        ours = kept_digests(repo)
        theirs = kept_digests(repo, tracking_data_ref(remote))
        lfs = sorted(d for d, kind in ours.items() if kind == KEPT_LFS and d not in theirs)
        for digest in lfs:  # (put back what `git lfs prune` removed and git-prov held)
            restore_kept_lfs(repo, digest)
        if lfs:
            from git_prov.store.lfs import push_lfs_objects

            push_lfs_objects(repo.root, remote, lfs)
        proc = repo.git(
            "push",
            "--no-verify",
            "--porcelain",
            remote,
            f"{tip.id}:{DATA_REF}",
            check=False,
        )
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode == 0:
            # What the remote now has is what we pushed: remember it, as git does for
            # branches, so the next push uploads only newer LFS objects.
            repo.git("update-ref", tracking_data_ref(remote), str(tip.id))
            release_guards(repo, ours)  # (`git lfs prune` may now remove them: on remote)
            sent = len([d for d in ours if d not in theirs])
            return DataSync(
                remote, "push", len(ours), received=received, sent=sent, lfs_uploaded=len(lfs)
            )
        if not any(word in text.lower() for word in _REJECTED):
            lines = [line for line in text.splitlines() if line.strip()]
            raise RemoteProblem(
                f"pushing the kept data to {remote} failed: {lines[-1] if lines else '?'}",
                f"check the remote (git ls-remote {remote}) and your access to it",
            )
        # Someone else pushed kept data first: take theirs, merge, try again.
        if fetch_data(repo, remote):
            received += merge_tracking_data(repo, remote)
    raise RemoteProblem(
        f"{remote} kept rejecting the kept data ({attempts} attempts)",
        "try again; others are pushing kept data at the same time",
    )


def data_summary(result: DataSync) -> str:
    """One line for people."""
    if result.direction == "push":
        if not result.files_here:
            return "no kept data here: nothing to push (git prov run --keep …)"
        extra = f", {result.lfs_uploaded} through git-LFS" if result.lfs_uploaded else ""
        return (
            f"kept data: {result.sent} new files pushed to {result.remote}{extra} "
            f"({result.files_here} kept here)"
        )
    return (
        f"kept data: {result.received} files fetched from {result.remote} "
        f"({result.files_here} kept here)"
    )


def with_data(
    repo_path: str | None, remote: str | None, *, push: bool, fetch: bool
) -> list[DataSync]:
    """Fetch and/or push kept data for the ``--data`` option of fetch, push and sync."""
    from git_prov.store.repo import open_repo
    from git_prov.sync import resolve_remote

    repo = open_repo(None if repo_path is None else Path(repo_path))
    name = resolve_remote(repo, remote)
    out = []
    if fetch:
        out.append(fetch_kept_data(repo, name))
    if push:
        out.append(push_kept_data(repo, name))
    return out


__all__: Sequence[str] = (
    "DataSync",
    "data_summary",
    "fetch_kept_data",
    "merge_tracking_data",
    "push_kept_data",
    "with_data",
)

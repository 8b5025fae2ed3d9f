"""Merging a remote's tracking refs into the local ledger (pygit2 is loaded only for a real
merge), and deciding whether runs that arrived call for a remap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from git_prov.errors import (
    ProvError,
)
from git_prov.model.notepath import note_commit
from git_prov.sync.counts import run_total
from git_prov.sync.remotes import tracking_refs
from git_prov.sync.repo import (
    DISPLAY_REF,
    NOTES_REF,
    RepoLike,
    SyncRepo,
    Tip,
    _contains,
    _git,
    _ledger_tip,
    read_refs,
)

if TYPE_CHECKING:
    from git_prov.rewrite import RemapMatch
    from git_prov.store.ledger import Ledger

MERGE_MESSAGE = "git-prov: merge provenance from {remote}"


class _Merged:
    """What merging tracking refs did, summed over the refs (and over push retries)."""

    def __init__(self) -> None:
        self.merged = False  # a ledger ref moved
        self.runs_added = 0
        self.conflicts: set[str] = set()
        self.object_conflicts: set[str] = set()
        self.changed: set[str] | None = set()  # commits whose note changed; None: all


def merge_tracking(repo: RepoLike, remote: str) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Merge the remote's tracking refs (filled by ``git prov fetch`` or, once
    :func:`configure_remote` ran, by a plain ``git fetch``) into the local ledger.

    Objects first, then notes. Cheap when nothing changed (a ref lookup and an ancestry
    test, without loading pygit2). Returns (runs added, run ids in conflict, object paths
    in conflict).
    """
    merged = _merge_tracking(SyncRepo.open(repo), remote)
    return (
        merged.runs_added,
        tuple(sorted(merged.conflicts)),
        tuple(sorted(merged.object_conflicts)),
    )


def _merge_tracking(repo: SyncRepo, remote: str, refs: Mapping[str, Tip] | None = None) -> _Merged:
    """Merge ``remote``'s tracking refs into ours (``refs``: the four refs, if just read)."""
    out = _Merged()
    tracking = tracking_refs(remote)
    if refs is None:
        refs = read_refs(repo, [*tracking, *tracking.values()])
    todo = []
    for local, copy in tracking.items():  # objects first, then notes
        theirs, ours = refs.get(copy), _ledger_tip(refs, local)
        if theirs is not None and (ours is None or ours.commit != theirs.commit):
            todo.append((local, theirs, ours))
    ours_tips = [ours.commit for _, _, ours in todo if ours is not None]
    if not todo or (
        len(ours_tips) == len(todo)
        and _contains(repo, ours_tips, [theirs.commit for _, theirs, _ in todo])
    ):
        return out  # every remote commit is already in ours (we are ahead, or equal)
    message = MERGE_MESSAGE.format(remote=remote)
    ledger: Ledger | None = None
    for local, theirs, ours in todo:
        if ledger is None and ours is None and _create_ref(repo, local, theirs, message):
            # A ledger ref this repository lacked (a first fetch): it now names their
            # commit, as a merge would have, and every run in it arrived.
            out.merged = True
            if local == NOTES_REF:
                out.changed = None
                out.runs_added += run_total(repo, theirs.tree)
            continue
        if ledger is None:  # a real merge: this is where pygit2 is needed
            from git_prov.store.ledger import Ledger

            ledger = Ledger(repo.full())
        from git_prov.store import merge

        result = merge.merge_commit_into(ledger, local, theirs.commit, message=message)
        out.conflicts.update(result.conflicts)
        out.object_conflicts.update(result.object_conflicts)
        out.merged = out.merged or result.action != merge.UP_TO_DATE
        if local != NOTES_REF or result.action == merge.UP_TO_DATE:
            continue
        if result.changed is None or out.changed is None:
            out.changed = None
        else:
            out.changed.update(result.changed)
        if result.runs_added is not None:
            out.runs_added += result.runs_added
        else:  # created: every run is theirs
            out.runs_added += run_total(repo, theirs.tree)
    if (out.changed is None or out.changed) and (ledger is not None or _display_enabled(repo)):
        # The `git log` display is derived from the notes: redo the lines that changed.
        if ledger is None:
            from git_prov.store.ledger import Ledger

            ledger = Ledger(repo.full())
        ledger.refresh_display(sorted(out.changed) if out.changed is not None else None)
    return out


def _create_ref(repo: SyncRepo, ref: str, theirs: Tip, message: str) -> bool:
    """Create the local ledger ref ``ref`` at ``theirs`` (a tracking ref's tip) through git,
    compare-and-swap against its absence; False when that cannot be done this way (it is
    not a commit, or the ref appeared meanwhile): then it is merged as any other.

    What a merge adds for a ref being created — a check that every object the new commit
    reaches is present, and a copy kept of new loose ones against a concurrent prune —
    holds here already: git's fetch checked that the commit's closure is here before it
    set the tracking ref, which keeps it reachable. So none of what arrived is read.
    """
    if theirs.tree is None:
        return False
    from git_prov.store.locking import ledger_lock

    with ledger_lock(repo.prov_dir / "ledger.lock"):  # (local writers queue; CAS decides)
        proc = _git(repo, "update-ref", "-m", message, ref, theirs.commit, "")
    return proc.returncode == 0


def _display_enabled(repo: SyncRepo) -> bool:
    """Whether ``git log`` shows the display ref (as ``Ledger.display_enabled`` reads it)."""
    return DISPLAY_REF in repo.config().get("notes.displayref", [])


def _remap_arrived(
    repo: SyncRepo, runs_added: int, before: Tip | None
) -> tuple[tuple[RemapMatch, ...], str | None]:
    """Remap after runs arrived (the notes ref was at ``before``): (attachments written,
    why it failed or None).

    :func:`git_prov.rewrite.remap` reads the whole ledger, so it runs only when an arrived
    run can be an orphan: when a note changed on a commit that this repository has and
    that no branch, remote-tracking branch, tag or HEAD reaches.
    """
    if not runs_added or not _arrived_on_unreachable(repo, before):
        return (), None
    from git_prov.rewrite import remap

    try:
        return remap(repo.full()).matched, None
    except ProvError as exc:
        return (), str(exc)


# What keeps a commit alive for remap (git_prov.rewrite.REACHABLE_REFS, and HEAD).
ALIVE_REFS = ("--branches", "--tags", "--remotes")


def _arrived_on_unreachable(repo: SyncRepo, before: Tip | None) -> bool:
    """True when the notes ref, since ``before``, changed the note of a commit this
    repository has and cannot reach from :data:`ALIVE_REFS` or HEAD."""
    now = read_refs(repo, [NOTES_REF]).get(NOTES_REF)
    if now is None or now.tree is None or (before is not None and before.tree == now.tree):
        return False
    if before is not None and before.tree is not None:
        proc = _git(repo, "diff-tree", "-r", "-z", "--name-only", before.tree, now.tree, "--")
    elif now.tree in repo._annotated:  # every note is new, and counting them listed them
        proc = None
    else:
        proc = _git(repo, "ls-tree", "-r", "-z", "--name-only", now.tree)
    if proc is None:
        commits = repo._annotated[now.tree]
    elif proc.returncode != 0:
        return True  # cannot tell: let remap look
    else:
        commits = {c for p in proc.stdout.decode().split("\0") if (c := note_commit(p))}
    if not commits:
        return False
    proc = _git(
        repo,
        "rev-list",
        "-n",
        "1",
        "--ignore-missing",  # commits this repository lacks are not orphans, merely elsewhere
        "--stdin",
        "--not",
        *ALIVE_REFS,
        "HEAD",
        input="".join(f"{c}\n" for c in sorted(commits)).encode(),
    )
    return proc.returncode != 0 or bool(proc.stdout.strip())

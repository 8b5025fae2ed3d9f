"""Fetching a remote's ledger refs into their tracking copies (never into the ledger), and
finding out what the remote holds, hides, or rewrote."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from typing import NamedTuple

from git_prov.sync.pushing import _receive_pack_has
from git_prov.sync.races import _backoff
from git_prov.sync.remotes import _hidden_from_fetch, _transport_problem, tracking_refs
from git_prov.sync.repo import (
    NOTES_REF,
    OBJECTS_REF,
    SyncRepo,
    Tip,
    _contains,
    _descends,
    _git,
    _refs_of,
    read_refs,
)

FETCH_ATTEMPTS = 4


class _Fetched(NamedTuple):
    had: bool  # the remote has provenance
    rewritten: list[str]  # ledger refs the remote force-rewrote
    rewritten_here: list[str]  # ledger refs whose tracking copy was rewritten here
    refs: dict[str, Tip]  # the local ledger refs and their tracking copies afterwards


def _fetch_tracking(
    repo: SyncRepo, remote: str, opened: Mapping[str, Tip] | None = None
) -> _Fetched:
    """Fetch the remote's ledger refs into their tracking refs, in one round trip when the
    remote has provenance."""
    tracking = tracking_refs(remote)
    before = _refs_of(repo, tracking.values(), opened)
    base = ["fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", remote]
    specs = [f"+{src}:{dst}" for src, dst in tracking.items()]
    proc = _git_fetch(repo, base, specs)
    if proc.returncode != 0:
        if b"couldn't find remote ref" not in proc.stderr:
            raise _transport_problem("fetching provenance from", remote, proc.stderr)
        # The remote lacks one or both refs (no provenance yet, or a partial push), or
        # hides them from fetch.
        present = _remote_ledger_refs(repo, remote)
        _refuse_hidden_refs(repo, remote, present, before)
        for src, dst in tracking.items():
            if src not in present and dst in before:
                # A copy of a ref the remote no longer has: forget it (ours stays intact).
                _git(repo, "update-ref", "-d", dst, before[dst].commit)
        specs = [f"+{src}:{dst}" for src, dst in tracking.items() if src in present]
        if specs:
            proc = _git_fetch(repo, base, specs)
            if proc.returncode != 0:
                raise _transport_problem("fetching provenance from", remote, proc.stderr)
    after = read_refs(repo, [*tracking, *tracking.values()])
    rewritten: list[str] = []
    here: list[str] = []
    moved = {
        src: (old.commit, new.commit)
        for src, dst in tracking.items()
        if (old := before.get(dst)) is not None
        and (new := after.get(dst)) is not None
        and old.commit != new.commit
    }
    # One rev-list answers "did both only move forward?" (the two refs' histories share no
    # commit, so an old tip reachable from either new one is reachable from its own).
    if moved and not _contains(
        repo, [n for _, n in moved.values()], [o for o, _ in moved.values()]
    ):
        for src, (old_commit, new_commit) in moved.items():
            if not _descends(repo, new_commit, old_commit):
                dst = tracking[src]
                (here if _filter_repo_made(repo, dst, old_commit) else rewritten).append(src)
    return _Fetched(any(dst in after for dst in tracking.values()), rewritten, here, after)


def _filter_repo_made(repo: SyncRepo, ref: str, commit: str) -> bool:
    """Whether git filter-repo, run in this repository, set ``ref`` to ``commit`` (its
    ``filter-repo/ref-map``: a header, then ``old new ref`` per line)."""
    try:
        with open(os.path.join(repo._common_dir, "filter-repo", "ref-map")) as file:
            lines = file.read().splitlines()
    except OSError:
        return False
    return any(
        len(parts) == 3 and parts[1] == commit and parts[2] == ref and parts[0] != commit
        for parts in (line.split() for line in lines[1:])
    )


_LOCAL_LOCK = ("cannot lock ref", "unable to update local ref", "could not be updated")


def _git_fetch(
    repo: SyncRepo, base: list[str], specs: list[str]
) -> subprocess.CompletedProcess[bytes]:
    # Two fetches of one clone at once (two syncs, a plain `git fetch`) can collide on the
    # tracking refs' locks: that is a local race, so try again rather than fail.
    for attempt in range(FETCH_ATTEMPTS):
        proc = _git(repo, *base, *specs)
        err = proc.stderr.decode(errors="replace").lower()
        if proc.returncode == 0 or not any(word in err for word in _LOCAL_LOCK):
            return proc
        time.sleep(_backoff(attempt + 1))
    return proc


def _refuse_hidden_refs(
    repo: SyncRepo, remote: str, present: set[str], before: Mapping[str, Tip]
) -> None:
    """Raise when ``remote`` holds a ledger ref that its fetch side does not list
    (``present``): a server whose upload-pack hides it. Asked only when there is reason
    to (the other ledger ref is there, or we had a copy of this one), with a dry-run push,
    which sends nothing."""
    commit = None
    for src, dst in tracking_refs(remote).items():
        if src in present or not (present or dst in before):
            continue
        if commit is None:  # any commit of ours: the dry run only names it
            commit = _git(repo, "rev-parse", "--verify", "-q", "HEAD").stdout.decode().strip()
        if commit and _receive_pack_has(repo, remote, src, commit):
            raise _hidden_from_fetch(remote, src)


def _fetchable(repo: SyncRepo, remote: str, ref: str) -> bool:
    """Whether ``remote``'s fetch side lists ``ref`` (after a push created it there)."""
    proc = _git(repo, "ls-remote", remote, ref)
    return proc.returncode != 0 or bool(proc.stdout.strip())  # (cannot tell: say yes)


def _remote_ledger_refs(repo: SyncRepo, remote: str) -> set[str]:
    proc = _git(repo, "ls-remote", remote, OBJECTS_REF, NOTES_REF)
    if proc.returncode != 0:
        raise _transport_problem("listing the refs of", remote, proc.stderr)
    names = {line.split("\t", 1)[1] for line in proc.stdout.decode().splitlines() if "\t" in line}
    return names & {OBJECTS_REF, NOTES_REF}

"""Writes that change many notes at once, built a part at a time, still one atomic step.

A write changing more notes than :data:`git_prov.store.ledger.STAGE_NOTES` (``git prov
gc`` of 100,000 runs rewrites 100,000 notes) would build the whole new notes tree at once
and hold the bytes of every new object until its ref has moved, so that a concurrent
``git gc --prune=now`` cannot delete them (``Ledger._keep_present``): hundreds of MB.
Instead the new tree is built a part at a time, in commit id order (so that a part
rewrites few fan-out trees). Each part is merged into the tree of the part before, its
objects are written, and a commit of that tree goes onto a private ref,
``refs/prov-staging/<pid>-<host>``, which from then on keeps the part's objects
reachable: only one part's objects are held in memory, and checked, at a time.

Then the ledger ref moves once, compare-and-swap, to one commit of the last part's tree
on the tip it was built from — the same commit an unstaged write makes — and the private
ref is deleted. When the ledger ref moved meanwhile (a writer that does not take the
ledger lock), the tree is built again from the new tip. A crash leaves the ledger ref as
it was, and at worst the private ref, which the next staged write deletes once its
process is gone. The private ref is outside ``refs/prov/`` and ``refs/notes/``: nothing
pushes, fetches or reads it.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pygit2

if TYPE_CHECKING:
    from git_prov.store.ledger import Ledger

STAGING_PREFIX = "refs/prov-staging/"
_STEP_MESSAGE = "git-prov: staged part of a write"
_WINDOW = 32 << 20  # bytes of a pack file libgit2 maps at once while a staged write runs

# One part: the tree the part before made (None: no tree yet) -> the tree with this part.
Step = Callable[[pygit2.Tree | None], pygit2.Oid]


def write_staged(
    ledger: Ledger,
    ref: str,
    steps: Callable[[pygit2.Tree | None], Sequence[Step]],
    message: str,
) -> None:
    """Move ``ref`` (compare-and-swap, with the ledger's retries) to one commit on its tip
    whose tree is the tip's tree with every step of ``steps(tip tree)`` applied in order.
    Each step's new objects are made reachable from a private ref before the next step
    starts."""
    from git_prov.store.ledger import _vanished

    pygit = ledger.pygit
    private = staging_ref()
    clear_stale(pygit)
    held: list[pygit2.Tree] = []

    def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        held.clear()
        base = tip.tree if tip is not None else None
        current, staged = base, tip
        for step in steps(base):
            new, written = None, None
            for _ in range(3):
                tree_id = step(current)
                if current is not None and tree_id == current.id:
                    break  # (this part changes nothing)
                parents = [staged.id] if staged is not None else []
                new = ledger._commit(tree_id, parents, _STEP_MESSAGE)
                written = ledger._new_objects(new, staged)
                if written is not None:
                    break
            else:  # (objects kept vanishing before the private ref named them)
                raise _vanished(ref)
            if new is None or written is None:
                continue
            pygit.create_reference_direct(private, new, True, message=_STEP_MESSAGE)
            ledger._keep_present(private, new, written)
            del written
            staged_commit = pygit[new]
            assert isinstance(staged_commit, pygit2.Commit)
            staged, current = staged_commit, staged_commit.tree
        if current is None or (base is not None and current.id == base.id):
            return None
        held.append(current)
        return ledger._commit(current.id, [tip.id] if tip is not None else [], message)

    settings = pygit2.settings
    windows = settings.mwindow_size, settings.mwindow_mapped_limit
    # The old notes are read through libgit2, which maps pack files in windows of 1 GiB
    # (on 64-bit): every page read stays resident, so reading all of a 1M-run ledger's
    # notes would add its whole pack to the peak (~130 MB). Small windows, few at once.
    settings.mwindow_size, settings.mwindow_mapped_limit = _WINDOW, 2 * _WINDOW
    try:
        ledger._cas(ref, build, message, held)
    finally:
        settings.mwindow_size, settings.mwindow_mapped_limit = windows
        _delete(pygit, private)


def staging_ref(pid: int | None = None, host: str | None = None) -> str:
    """This process's private ref (``refs/prov-staging/<pid>-<host>``)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", host if host is not None else socket.gethostname())
    return f"{STAGING_PREFIX}{os.getpid() if pid is None else pid}-{name}"


def clear_stale(pygit: pygit2.Repository) -> None:
    """Delete the private refs of staged writes, and of snapshots held until a record keeps
    them (``<pid>-<host>.snapshot-<commit>``, store/pins.py), whose process is gone (this
    host's only: another host's may still be writing into a shared ``.git``)."""
    from git_prov.store.ledger import pid_running

    mine = staging_ref(0).removeprefix(f"{STAGING_PREFIX}0-")
    for name in [r for r in pygit.references if r.startswith(STAGING_PREFIX)]:
        pid, _, host = name.removeprefix(STAGING_PREFIX).partition("-")
        host = host.partition(".")[0]  # (a host's name here has no dot: see staging_ref)
        if host != mine or not (pid.isascii() and pid.isdigit()) or pid_running(int(pid)):
            continue
        _delete(pygit, name)


def _delete(pygit: pygit2.Repository, name: str) -> None:
    with contextlib.suppress(KeyError, ValueError, pygit2.GitError, OSError):
        pygit.references.delete(name)

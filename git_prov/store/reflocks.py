"""Stale ``*.lock`` files on the ledger refs: found (:func:`ledger_ref_locks`, which
``git prov fsck`` reports) and removed when provably stale (:func:`recover_stale_ref_locks`,
which writers call when a ref update fails on a lock)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from git_prov.store.ledger import DISPLAY_REF, NOTES_REF, OBJECTS_REF
from git_prov.store.locking import ledger_lock
from git_prov.store.repo import GitRepo

# A ref lock this old, found while we hold the ledger lock, belongs to a dead writer: git
# and libgit2 hold ref locks for milliseconds (git itself gives up after 100 ms).
STALE_LOCK_SECONDS = 2.0


def ledger_ref_locks(repo: GitRepo) -> list[Path]:
    """``*.lock`` files present next to the ledger refs, their git-log display ref and the
    tracking copies of remotes' ledgers."""
    refs = repo.common_dir / "refs"
    candidates = [
        repo.common_dir / f"{NOTES_REF}.lock",
        repo.common_dir / f"{OBJECTS_REF}.lock",
        repo.common_dir / f"{DISPLAY_REF}.lock",
        *refs.glob("notes/remotes/*/prov.lock"),
        *refs.glob("prov/remotes/*/objects.lock"),
    ]
    return [p for p in candidates if p.is_file()]


def lock_age(path: Path) -> float | None:
    """How many seconds ago ``path`` was last modified; None when it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def recover_stale_ref_locks(
    repo: GitRepo, *, min_age: float = STALE_LOCK_SECONDS, wait: bool = True, held: bool = False
) -> list[Path]:
    """Remove ref ``*.lock`` files that a killed writer left on the ledger refs.

    A writer killed inside a ref update (SIGKILL, power loss) leaves ``<ref>.lock``, and
    every later update of that ref fails. git never removes such files. We do, only when
    it is provably safe: while holding ``ledger.lock`` (so no git-prov writer of this
    repository is inside an update — the flock dies with its holder) and only for lock
    files at least ``min_age`` seconds old (no other git program holds a ref lock that
    long). With ``wait``, a younger lock is waited for until it goes or ages. ``held``
    says the caller already holds ``ledger.lock`` (inside :meth:`Ledger.write`: taking it
    again from a second descriptor would wait for ourselves). Returns the files removed.
    """
    if not ledger_ref_locks(repo):
        return []
    if held:
        return _remove_stale(repo, min_age, wait)
    with ledger_lock(repo.prov_dir / "ledger.lock") as taken:
        return _remove_stale(repo, min_age, wait) if taken else []


def _remove_stale(repo: GitRepo, min_age: float, wait: bool) -> list[Path]:
    removed: list[Path] = []
    deadline = time.monotonic() + (min_age + 0.5 if wait else 0.0)
    for path in ledger_ref_locks(repo):
        while True:
            age = lock_age(path)
            if age is None:  # its owner finished after all
                break
            if age >= min_age:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return removed

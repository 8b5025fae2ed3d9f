"""A dirty tree's snapshot held reachable from the moment it is written until a record keeps it.

git writes a snapshot's objects (``git add`` and ``git write-tree`` in a private index, the
commit through libgit2) as loose objects that no ref names: a ``git gc --prune=now`` (or
``git prune --expire=now``) running meanwhile deletes them, and until the record that
names the snapshot has put it into ``refs/prov/objects`` — after the command ran, for
``git prov run`` — every later one may too. git's own grace for young objects
(``gc.pruneExpire``, two weeks by default) does not apply with ``--prune=now``.

So a new snapshot is put on a private ref as soon as its commit exists,
``refs/prov-staging/<pid>-<host>.snapshot-<commit>`` (beside store/staged.py's refs; never
pushed, fetched or read), which every prune that starts later keeps. A prune that started
before may still delete what it found unreachable then: :func:`hold_snapshot` waits for a
``git gc`` that was running when the ref was made to end (as a ledger write does, see
``Ledger._keep_present``) and then checks that every object of the snapshot is there (those
its bases — HEAD, the snapshot the untracked files' index came from — do not hold, which
are reachable already). When one is missing, the caller takes the snapshot again: git
writes again each object it finds missing. The ref goes when a ledger write keeps the
snapshot (:func:`release`), when the process ends, or — for a process that was killed — at
the next ``git prov gc`` or staged write (``store.staged.clear_stale``).

A bare ``git prune`` holds no ``gc.pid``: one that started before the ref was made and
deletes a snapshot object after the check is not waited for; the ledger write then finds
the object missing and refuses the record (``could not update refs/prov/objects: objects it
was to name were deleted …``), as it did before.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Iterable, Sequence

import pygit2

from git_prov.store.repo import GitRepo
from git_prov.store.staged import staging_ref

_MESSAGE = "git-prov: hold a snapshot until a record keeps it"

# This process's holds: ref name -> (how many captures hold it, the repository). Threads
# (``sweep --jobs``) may hold one snapshot twice.
_held: dict[str, tuple[int, GitRepo]] = {}
_lock = threading.Lock()
_registered = False


def snapshot_ref(commit: str) -> str:
    """The private ref this process holds snapshot ``commit`` with."""
    return f"{staging_ref()}.snapshot-{commit}"


def hold_snapshot(repo: GitRepo, commit: str, bases: Sequence[str]) -> bool:
    """Hold snapshot ``commit`` (a commit just written) reachable until :func:`release`;
    whether all of it is there (see the module's doc). ``bases``: commits whose objects
    are reachable already (HEAD, a kept snapshot). False releases the hold."""
    from git_prov.store.ledger import Ledger, _await_gc, _gc_running

    if Ledger(repo).is_kept(commit):
        return True  # (an unchanged dirty tree: kept by an earlier record)
    name = snapshot_ref(commit)
    try:
        _take(repo, name, commit)
    except (pygit2.GitError, KeyError, ValueError, OSError):
        return False  # (the commit itself is gone already)
    made = time.time()
    if _gc_running(repo.common_dir, made):
        _await_gc(repo.common_dir, made)
    if complete(repo, commit, bases):
        return True
    _drop(name)
    return False


def await_gc(repo: GitRepo) -> None:
    """Wait (a while at most) for a ``git gc`` running now to end: taking a snapshot again
    right after one ended leaves the most time before the next one prunes."""
    from git_prov.store.ledger import _await_gc

    _await_gc(repo.common_dir, time.time())


def release(commits: Iterable[str]) -> None:
    """Let go of this process's holds on ``commits`` (a ledger write keeps them now)."""
    if not _held:
        return
    for commit in commits:
        _drop(snapshot_ref(commit))


def clear_dead_holds(repo: GitRepo) -> None:
    """Delete the holds (and staged writes' private refs) of this host's processes that
    are gone (``git prov gc``: a recorder killed before its record kept its snapshot)."""
    from git_prov.store.staged import clear_stale

    clear_stale(repo.pygit)


def complete(repo: GitRepo, commit: str, bases: Sequence[str]) -> bool:
    """Whether commit ``commit``, its tree and every tree and blob below it that the trees
    of ``bases`` do not have at the same path are in the repository — as its files say,
    or a new ``git cat-file``: libgit2 answers from its caches (objects read a moment
    ago, the pack files it listed then) for files a prune has deleted since."""
    pygit = repo.pygit
    ids = [commit]
    try:
        obj = pygit.get(commit)
        if not isinstance(obj, pygit2.Commit):
            return False
        trees = []
        for base in bases:
            found = pygit.get(base)
            if isinstance(found, pygit2.Commit):
                trees.append(found.tree)
        if not _new_below(pygit, obj.tree_id, trees, ids):
            return False
    except (KeyError, ValueError, pygit2.GitError):
        return False
    # A snapshot's new objects are loose files, as git and libgit2 wrote them: one there
    # is there. The others (packed since, or found packed when written) git looks up.
    objects = repo.common_dir / "objects"
    rest = [oid for oid in ids if not os.path.isfile(objects / oid[:2] / oid[2:])]
    if not rest:
        return True
    listed = repo.git(
        "cat-file", "--batch-check=%(objectname)", input="\n".join(rest).encode() + b"\n"
    )
    found = listed.stdout.splitlines()
    return len(found) == len(rest) and not any(f.endswith(b" missing") for f in found)


def _new_below(
    pygit: pygit2.Repository, tree_id: pygit2.Oid, bases: list[pygit2.Tree], ids: list[str]
) -> bool:
    """Add ``tree_id`` and the trees and blobs below it that ``bases`` (the trees at the
    same place in the bases) do not have to ``ids``; False when a tree cannot be read."""
    if any(b.id == tree_id for b in bases):
        return True
    tree = pygit.get(tree_id)
    if not isinstance(tree, pygit2.Tree):
        return False
    ids.append(str(tree_id))
    for entry in tree:
        name = entry.name or ""
        same = [b[name] for b in bases if name in b]
        if any(e.id == entry.id for e in same):
            continue
        if entry.type_str == "tree":
            subs = [pygit.get(e.id) for e in same if e.type_str == "tree"]
            below = [t for t in subs if isinstance(t, pygit2.Tree)]
            if not _new_below(pygit, entry.id, below, ids):
                return False
        elif entry.type_str == "blob":
            ids.append(str(entry.id))
    return True


def _take(repo: GitRepo, name: str, commit: str) -> None:
    global _registered
    with _lock:
        count, _ = _held.get(name, (0, repo))
        if count == 0:
            repo.pygit.create_reference_direct(name, pygit2.Oid(hex=commit), True, message=_MESSAGE)
        _held[name] = (count + 1, repo)
        if not _registered:
            _registered = True
            atexit.register(_drop_all)


def _drop(name: str) -> None:
    with _lock:
        count, repo = _held.get(name, (0, None))
        if repo is None:
            return
        if count > 1:
            _held[name] = (count - 1, repo)
            return
        del _held[name]
        _delete(repo, name)


def _drop_all() -> None:
    with _lock:
        held = list(_held.items())
        _held.clear()
    for name, (_, repo) in held:
        _delete(repo, name)


def _delete(repo: GitRepo, name: str) -> None:
    """Delete ref ``name`` (trying for about two seconds; what is left then is for
    ``clear_stale``). A ``git pack-refs`` (``git gc``) holds the lock of ``packed-refs``
    from reading the loose refs until it writes them packed: one that read ours before it
    was deleted writes it back, so it is looked for again once no such lock is held."""
    packing = repo.common_dir / "packed-refs.lock"
    for attempt in range(1, 41):
        try:
            repo.pygit.references.delete(name)
        except (KeyError, ValueError):
            pass  # (not there now)
        except (pygit2.GitError, OSError) as exc:
            if ".lock" not in str(exc):
                return
        if not packing.exists():
            try:
                if name not in repo.pygit.references:
                    return
            except (pygit2.GitError, OSError):
                return
        time.sleep(0.001 * attempt)

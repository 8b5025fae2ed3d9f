"""The git-LFS objects a provenance push must upload: snapshots' LFS files travel too.

A dirty-tree snapshot of a repository that uses git-LFS holds LFS pointers (``git add``
ran the clean filter), and ``refs/prov/objects`` keeps it — and every commit a run ran
on — reachable, so ``git prov push`` carries those commits to the remote. It pushes with
``--no-verify`` (git-lfs's pre-push hook would upload every object of every branch), so
the LFS objects they name must be uploaded here, or ``git checkout <snapshot>`` fails in
every other clone with "smudge filter lfs failed".

Only what the push makes newly reachable is scanned: the commits of the local objects ref
that are neither in the remote's copy of it (as last fetched or pushed) nor on the
remote's branches (whose LFS objects git-lfs's own pre-push hook uploaded). A repository
without a local LFS store has nothing to upload, and costs one ``stat``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from git_prov.errors import RepositoryProblem
from git_prov.store.gitcli import git_env, read_blobs

# (git-lfs never treats a blob this big as a pointer; the smallest pointer is larger.)
_POINTER_MAX = 1024
_POINTER_MIN = 120


@dataclass(frozen=True)
class LfsUpload:
    """What a push uploaded: object ids sent to the remote (which skips those it has),
    and those the commits name but the local LFS store lacks (never uploaded from here:
    such a commit does not check out elsewhere unless the remote got them another way)."""

    uploaded: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def upload_lfs_objects_for_push(
    cwd: str, common_dir: str, remote: str, new: str, known: Sequence[str] = ()
) -> LfsUpload:
    """Upload to ``remote`` the LFS objects named by commits reachable from ``new`` (the
    objects ref about to be pushed) and not from ``known`` (the remote's copy of it) nor
    from ``remote``'s remote-tracking branches. Raises
    :class:`git_prov.store.lfs.LfsError` when the upload fails.
    """
    if not os.path.isdir(os.path.join(common_dir, "lfs", "objects")):
        return LfsUpload()
    pointers = _new_pointers(cwd, new, known, remote)
    if not pointers:
        return LfsUpload()
    from pathlib import Path

    from git_prov.store.lfs import has_lfs_object, push_lfs_objects

    store = Path(common_dir)
    present = sorted(oid for oid, size in pointers.items() if has_lfs_object(store, oid, size))
    missing = sorted(set(pointers) - set(present))
    if present:
        push_lfs_objects(Path(cwd), remote, present)
    return LfsUpload(tuple(present), tuple(missing))


def _new_pointers(cwd: str, new: str, known: Sequence[str], remote: str) -> dict[str, int]:
    """{oid: size} of the LFS pointer blobs in the trees of the commits the push adds."""
    from git_prov.model.lfs_pointer import parse_lfs_pointer

    env = git_env({"LC_ALL": "C"})
    listing = subprocess.Popen(
        [
            "git",
            "rev-list",
            "--objects",
            "--no-object-names",
            # (A partial clone's missing blobs are not fetched for this, just skipped:
            # snapshot blobs are always local.)
            "--missing=allow-any",
            f"--filter=blob:limit={_POINTER_MAX}",  # (large blobs are not even listed)
            new,
            "--not",
            *known,
            f"--remotes={remote}",
        ],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert listing.stdout is not None
    sizes = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objecttype) %(objectsize) %(objectname)"],
        cwd=cwd,
        stdin=listing.stdout,
        capture_output=True,
        env=env,
        check=False,
    )
    listing.stdout.close()
    listing.wait()
    candidates = []
    for line in sizes.stdout.decode(errors="replace").splitlines():
        kind, _, rest = line.partition(" ")
        size, _, oid = rest.partition(" ")
        if kind == "blob" and size.isdigit() and _POINTER_MIN <= int(size) < _POINTER_MAX:
            candidates.append(oid)
    if listing.returncode != 0 or sizes.returncode != 0:
        # Never a silent "nothing to upload": the commits would not check out elsewhere.
        raise RepositoryProblem(
            f"cannot list the commits {new[:12]} adds to {remote}'s provenance "
            "(git rev-list failed)",
            "check the repository with `git fsck`",
        )
    if not candidates:
        return {}
    found: dict[str, int] = {}
    for body in read_blobs(cwd, candidates).values():
        pointer = parse_lfs_pointer(body)
        if pointer is not None:
            found[pointer[0]] = pointer[1]
    return found

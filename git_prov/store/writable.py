"""Can this repository take a record? Asked before ``git prov run`` starts the command:
a read-only ``.git`` or a full disk would otherwise be found only after the command ran,
when its run can no longer be recorded (docs/cli.md, "Exit codes")."""

from __future__ import annotations

import os
import tempfile

from git_prov.errors import StorageProblem, storage_problem
from git_prov.store.repo import GitRepo

PROBE_BYTES = 4096  # a small object's worth: a disk without it cannot take a record


def ensure_writable(repo: GitRepo) -> None:
    """Raise :class:`StorageProblem` (exit 11) unless a record could be written now: a
    file of :data:`PROBE_BYTES` can be created in the object store, and the ref and
    cache directories accept new files. Costs one small file write."""
    objects = repo.common_dir / "objects"
    try:
        fd, name = tempfile.mkstemp(prefix="prov-probe-", dir=objects)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise _problem(exc, objects) from None
    cache = repo.common_dir / "prov"
    for directory in (repo.common_dir / "refs", cache if cache.is_dir() else repo.common_dir):
        if not os.access(directory, os.W_OK):
            error = OSError(30 if _read_only(directory) else 13, "not writable", str(directory))
            raise _problem(error, directory)


def _read_only(directory: os.PathLike[str]) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _problem(exc: OSError, where: os.PathLike[str]) -> StorageProblem:
    found = storage_problem(OSError(exc.errno, exc.strerror, str(where)))
    if found is not None:
        return found
    return StorageProblem(f"cannot write {where}: {exc.strerror or exc}", "check .git")


def explain_write_failure(
    repo: GitRepo, exc: BaseException, needed: int = 0
) -> StorageProblem | None:
    """The :class:`StorageProblem` behind a failed write, or None. libgit2 often loses
    the OS's reason (a full disk comes back as ``GitError: no error``), so the file
    system is asked too: read-only, or less free space than ``needed`` plus a margin."""
    found = storage_problem(exc)
    if found is not None:
        return found
    objects = repo.common_dir / "objects"
    try:
        stats = os.statvfs(objects)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return _problem(OSError(30, "read-only"), objects)
    free = stats.f_bavail * stats.f_frsize
    if free < needed + (1 << 16) or stats.f_favail == 0:
        return _problem(OSError(28, "no space"), objects)
    return None

"""Everything git-prov does through the ``git`` binary, without pygit2.

The fast paths (``sync``, a query that finds its index fresh) never load pygit2, and the
pygit2 layer (:mod:`git_prov.store.repo`) needs git's own semantics for status, rev-list
and transport: both run git through this package.

* this module — running git (:func:`run_git`, or :func:`start_git` + :func:`finish_git`
  for several processes side by side); reading many objects through one
  ``git cat-file --batch`` (:func:`read_blobs`, :func:`stream_blobs`: one parser); the
  local cache directory;
* :mod:`~git_prov.store.gitcli.paths` — where a repository is (:class:`RepoPaths`) and
  reading a ref from its files;
* :mod:`~git_prov.store.gitcli.notes` — a notes tree listed and diffed through git.

Start-up matters: this module imports nothing beyond ``os`` and ``subprocess`` (not
pathlib, not dataclasses), since ``git prov sync`` loads it before anything else.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from git_prov.errors import RepositoryProblem

if TYPE_CHECKING:  # (pathlib is not imported on sync's path: see git_prov.sync.SyncRepo)
    from pathlib import Path

PROV_DIR = "prov"  # under the git common dir
NO_GIT = "the git command is not installed or not on PATH"


def run_git(
    cwd: str | os.PathLike[str],
    args: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args…`` in ``cwd``; on failure (when ``check``) raise RepositoryProblem.

    ``env`` adds to the current environment. Without ``input``, git's stdin is /dev/null:
    git never needs it here, and a hook's own stdin must not be consumed by a nested git.
    """
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            env={**os.environ, **env} if env is not None else None,
            check=False,
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        raise RepositoryProblem(f"git {args[0]} failed: {detail}")
    return proc


def start_git(
    cwd: str | os.PathLike[str],
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``git args…`` in ``cwd`` (stdin a pipe when ``input``, else /dev/null);
    :func:`finish_git` waits for it. Several started at once run side by side."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env} if env is not None else None,
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None


def finish_git(
    proc: subprocess.Popen[bytes], input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Wait for a git started by :func:`start_git` (feeding it ``input``); its result."""
    out, err = proc.communicate(input)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def prov_dir(common_dir: Path) -> Path:
    """Local, rebuildable caches and locks: ``<git common dir>/prov`` (created if needed)."""
    path = common_dir / PROV_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- reading objects in batches -----------------------------------------------------------

_BATCH = ("cat-file", "--batch", "--buffer")


def _entries(out: IO[bytes], oids: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    """(oid, contents, or None when git says it is missing) for each of ``oids`` in
    order, read from ``git cat-file --batch`` output; stops early when the output ends.

    Each answer is ``<oid> <type> <size>\\n<contents>\\n``, or ``<oid> missing\\n`` (or
    ``ambiguous``) for an object git cannot give.
    """
    for oid in oids:
        header = out.readline().split()
        if not header:
            return
        if len(header) != 3:  # "<oid> missing", "<oid> ambiguous"
            yield oid, None
            continue
        data = out.read(int(header[2]))
        out.read(1)  # the newline after the contents
        yield oid, data


def read_blobs(
    cwd: str | os.PathLike[str], oids: Sequence[str], *, check: bool = True
) -> dict[str, bytes]:
    """The contents of many objects through one ``git cat-file --batch`` (missing ones are
    absent); ``check``: RepositoryProblem when git fails (else what it gave)."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    proc = run_git(cwd, _BATCH, input="\n".join(wanted).encode() + b"\n", check=check)
    return {
        oid: data for oid, data in _entries(io.BytesIO(proc.stdout), wanted) if data is not None
    }


def stream_blobs(
    cwd: str | os.PathLike[str], oids: Sequence[str]
) -> Iterator[tuple[str, bytes | None]]:
    """(oid, contents or None when missing) for each of ``oids``, in order, as ``git
    cat-file --batch`` produces them — so the caller works while git still reads."""
    import contextlib
    import threading

    if not oids:
        return
    try:
        proc = subprocess.Popen(
            ["git", *_BATCH],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        with contextlib.suppress(OSError):
            stdin.write("\n".join(oids).encode() + b"\n")
        with contextlib.suppress(OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        count = 0
        for entry in _entries(stdout, oids):
            count += 1
            yield entry
        if count < len(oids):
            raise RepositoryProblem("git cat-file stopped early while reading the ledger")
    finally:
        stdout.close()
        proc.wait()
        feeder.join()

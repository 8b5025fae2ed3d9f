"""Running the ``git`` binary, without pygit2: what the fast paths (sync) and the pygit2
layer (:mod:`git_prov.store.repo`) share."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from git_prov.errors import RepositoryProblem

if TYPE_CHECKING:  # (pathlib is not imported on sync's path: see git_prov.sync.SyncRepo)
    from pathlib import Path

PROV_DIR = "prov"  # under the git common dir


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
        raise RepositoryProblem("the git command is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        raise RepositoryProblem(f"git {args[0]} failed: {detail}")
    return proc


def prov_dir(common_dir: Path) -> Path:
    """Local, rebuildable caches and locks: ``<git common dir>/prov`` (created if needed)."""
    path = common_dir / PROV_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path

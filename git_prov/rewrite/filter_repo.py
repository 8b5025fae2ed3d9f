"""``git filter-repo`` rewrites every ref by default — ``refs/prov/objects`` too — so the
commits runs ran on are gone afterwards. It leaves its exact old → new map in
``<git dir>/filter-repo/commit-map`` (a header line, then ``old new`` per line; ``new`` is
all zeros for a commit it pruned). Runs follow that map exactly, as they follow the
post-rewrite hook's: an ``attach`` line with ``how`` ``filter-repo`` on the new commit.
The map names only the last filter-repo run; runs already shown on its "old" commits (after
an earlier one) are carried along, as for a chain of rebases."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from git_prov.model.ids import is_hex_oid
from git_prov.model.record import Attachment
from git_prov.rewrite.hook import remap_rewritten
from git_prov.store.ledger import Ledger, LedgerScan
from git_prov.store.repo import GitRepo

HOW_FILTER_REPO = "filter-repo"
COMMIT_MAP = ("filter-repo", "commit-map")


def commit_map_path(repo: GitRepo) -> Path:
    """Where git filter-repo leaves its commit-map (it works in the main git directory)."""
    return repo.common_dir.joinpath(*COMMIT_MAP)


def commit_map_state(repo: GitRepo) -> list[int] | None:
    """(size, mtime) of the commit-map, or None: a change means a new filter-repo run."""
    try:
        stat = commit_map_path(repo).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def read_commit_map(repo: GitRepo) -> dict[str, str]:
    """git filter-repo's old → new commit ids (pruned commits left out; {} without a map)."""
    return _parse_map(commit_map_path(repo))


def rewritten_to(git_dir: Path | str, oid: str) -> str | None:
    """The commit git filter-repo rewrote ``oid`` to, per the commit-map of the repository
    whose (worktree or main) git directory is ``git_dir``; None when it names none."""
    path = Path(git_dir)
    with contextlib.suppress(OSError):
        path = path / (path / "commondir").read_text().strip()
    found = path.joinpath(*COMMIT_MAP)
    try:
        stat = found.stat()
    except OSError:
        return None
    return _cached_map(str(found), stat.st_size, stat.st_mtime_ns).get(oid)


@functools.lru_cache(maxsize=2)
def _cached_map(path: str, size: int, mtime: int) -> dict[str, str]:
    return _parse_map(Path(path))


def _parse_map(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or not (is_hex_oid(parts[0]) and is_hex_oid(parts[1])):
            continue  # the header, or damage
        old, new = parts
        if new.strip("0") and old != new:
            mapping[old] = new
    return mapping


def follow_filter_repo(
    repo: GitRepo, scan: LedgerScan | None = None, *, write: bool = True
) -> list[Attachment]:
    """Show every run whose commit git filter-repo rewrote on the commit it became
    (idempotent: runs already shown there get nothing). Returns the attachments written
    (or, without ``write``, those that would be)."""
    mapping = read_commit_map(repo)
    if not mapping:
        return []
    scan = scan or Ledger(repo).scan()
    shown = sorted({c for run in scan.live_runs() for c in run.shown_on if c in mapping})
    return remap_rewritten(
        repo, [(old, mapping[old]) for old in shown], HOW_FILTER_REPO, write=write
    )

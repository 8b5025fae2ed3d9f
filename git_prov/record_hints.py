"""What is told about a recorded run: the problems met while recording it, why its tree
was dirty, what its snapshot left out (``git prov run`` and ``record`` print these; the
API's :class:`~git_prov.api.runs.Run` gives the warnings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from git_prov.config import load_config
from git_prov.model.frozen import Fields, frozen_fields

if TYPE_CHECKING:
    from git_prov.model.record import RunRecord
    from git_prov.store.repo import GitRepo

# Run key listing the untracked files the snapshot left out as secret files (docs/format.md).
SECRETS_LEFT_OUT = "omitted_secrets"


def secrets_left_out(record: RunRecord) -> tuple[str, ...]:
    """The untracked files a record's snapshot left out as secret files (``.env`` …)."""
    found = record.extra.get(SECRETS_LEFT_OUT)
    if not isinstance(found, list):
        return ()
    return tuple(p for p in found if isinstance(p, str))


# How many paths a hint names before it says "and N more".
HINT_PATHS = 3


@frozen_fields
class DirtyReasons(Fields):
    """Why a run's working tree counted as dirty, as far as the record's snapshot tells:
    the files it has that the commit has not (untracked files, or new files staged but not
    committed: the first few, and how many), whether tracked files changed, and the
    untracked files left out of it for their size (the record's ``omitted``)."""

    new_files: tuple[str, ...] = ()
    tracked_changed: bool = False
    too_large: tuple[str, ...] = ()
    size_limit: int = 0
    new_count: int = 0

    def __init__(
        self,
        new_files: tuple[str, ...] = (),
        tracked_changed: bool = False,
        too_large: tuple[str, ...] = (),
        size_limit: int = 0,
        new_count: int = 0,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "new_files", new_files)
        set_(self, "tracked_changed", tracked_changed)
        set_(self, "too_large", too_large)
        set_(self, "size_limit", size_limit)
        set_(self, "new_count", new_count)


def dirty_reasons(repo: GitRepo, record: RunRecord) -> DirtyReasons:
    """What made ``record``'s tree dirty (:func:`~git_prov.capture.source.snapshot_changes`
    between its commit and its snapshot, only when there is a snapshot) and what the
    snapshot left out for size. Nothing for a clean run."""
    from git_prov.capture.source import snapshot_changes

    new_files: tuple[str, ...] = ()
    new_count = 0
    tracked_changed = False
    if record.snapshot:
        changes = snapshot_changes(repo, record.commit, record.snapshot, HINT_PATHS)
        new_files, new_count = changes.new_first, changes.new_count
        tracked_changed = changes.tracked_changed
    limit = load_config(repo.root).max_snapshot_file if record.omitted else 0
    return DirtyReasons(new_files, tracked_changed, record.omitted, limit, new_count)


def dirty_hints(reasons: DirtyReasons) -> list[str]:
    """One line for each thing a newcomer needs told about a dirty record: the new files
    that made the tree dirty (a few named, and a count) and the files too large for the
    snapshot, each with what to do. Tracked changes alone need no word: that is editing
    code. (The CLI prints these as ``note: run ID: …``.)"""
    lines = []
    if reasons.new_files:
        count = max(reasons.new_count, len(reasons.new_files))
        what = "1 untracked file" if count == 1 else f"{count} untracked files"
        lines.append(
            f"the tree was dirty because of {what} in the snapshot: "
            f"{_some(reasons.new_files, count)} — commit what is code, .gitignore what runs "
            "make, or declare data with -i/-o (declared data is hashed, not snapshotted)"
        )
    if reasons.too_large:
        count = len(reasons.too_large)
        what = "1 untracked file" if count == 1 else f"{count} untracked files"
        limit = _size(reasons.size_limit) if reasons.size_limit else "the size limit"
        them = "it" if count == 1 else "them"
        lines.append(
            f"{what} larger than {limit} left out of the snapshot: "
            f"{_some(reasons.too_large)} — .gitignore {them}, declare {them} with -i/-o, "
            "or raise [run] max_snapshot_file in .gitprov.toml"
        )
    return lines


def _some(paths: Sequence[str], count: int | None = None) -> str:
    shown = ", ".join(paths[:HINT_PATHS])
    more = (len(paths) if count is None else count) - HINT_PATHS
    return f"{shown} and {more} more" if more > 0 else shown


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def record_warnings(record: RunRecord) -> tuple[str, ...]:
    """The problems a record's ``warnings`` key lists (none for older records)."""
    found = record.extra.get("warnings")
    if not isinstance(found, list):
        return ()
    return tuple(w for w in found if isinstance(w, str))

"""Which files of a run to keep the bytes of (``--keep``, ``keep=``, ``[keep]`` in
``.gitprov.toml``), and the store they go to.

A choice is ``inputs``, ``outputs``, ``all``, ``none`` (drop the defaults of
``.gitprov.toml``) or a path (a file or directory, relative to the current directory; write
``./outputs`` for a path that is called ``outputs``). Choices from ``.gitprov.toml`` keep
files up to its ``max_size``; choices given for one run keep files of any size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from git_prov.errors import BadPath, UsageProblem

if TYPE_CHECKING:
    from git_prov.config import ProvConfig
    from git_prov.store.kept import KeptStore
    from git_prov.store.repo import GitRepo

KEEP_INPUTS = "inputs"
KEEP_OUTPUTS = "outputs"
KEEP_ALL = "all"
KEEP_NONE = "none"
WORDS = (KEEP_INPUTS, KEEP_OUTPUTS, KEEP_ALL, KEEP_NONE)


@dataclass(frozen=True)
class KeepChoice:
    """One rule: keep the inputs, the outputs, or the files below ``paths`` (repo-relative),
    files up to ``max_size`` bytes (None: any size)."""

    inputs: bool = False
    outputs: bool = False
    paths: tuple[str, ...] = ()
    max_size: int | None = None

    def chooses(self, side: str, rel: str, size: int) -> bool:
        """Whether this rule keeps the file ``rel`` of ``size`` bytes on ``side``."""
        if self.max_size is not None and size > self.max_size:
            return False
        if (side == KEEP_INPUTS and self.inputs) or (side == KEEP_OUTPUTS and self.outputs):
            return True
        return any(rel == p or rel.startswith(p + "/") for p in self.paths)


def parse_choices(
    values: Sequence[str], root: Path, cwd: Path, max_size: int | None = None
) -> tuple[KeepChoice, bool]:
    """The rule ``values`` make, and whether they said ``none``. Paths are relative to
    ``cwd`` (or absolute) and must lie inside the repository at ``root``."""
    inputs = outputs = none = False
    paths: list[str] = []
    for value in values:
        if value == KEEP_NONE:
            none = True
        elif value == KEEP_INPUTS:
            inputs = True
        elif value == KEEP_OUTPUTS:
            outputs = True
        elif value == KEEP_ALL:
            inputs = outputs = True
        else:
            paths.append(_repo_relative(root, cwd, value))
    return KeepChoice(inputs, outputs, tuple(paths), max_size), none


def _repo_relative(root: Path, cwd: Path, value: str) -> str:
    absolute = os.path.abspath(os.path.join(cwd, value))
    rel = os.path.relpath(absolute, root)
    if not value or rel == "." or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise BadPath(
            f"--keep {value}: not a path inside the repository",
            "give inputs, outputs, all, none, or a declared file or directory",
        )
    return rel.replace(os.sep, "/")


@dataclass(frozen=True)
class KeepPlan:
    """The rules of one run and the store kept bytes go to."""

    choices: tuple[KeepChoice, ...]
    store: KeptStore

    def chooser(self, side: str) -> Callable[[str, int], bool] | None:
        """A (path, size) → keep? test for one side (None when nothing there is kept)."""
        choices = [
            c for c in self.choices if c.paths or (c.inputs if side == KEEP_INPUTS else c.outputs)
        ]
        if not choices:
            return None
        return lambda rel, size: any(c.chooses(side, rel, size) for c in choices)

    def remember(self, cache_path: Path) -> None:
        """Tell the stat cache the hashes of the LFS objects just written (the bytes hashed
        are the bytes stored), so that ``get`` verifies them without reading them again.

        The cache trusts no stat data whose mtime is in the racy window (a change in the
        same timestamp tick would leave it as it is, see ``RACY_NS``). Each object here is
        a new file the store made itself (never another name of the user's file), so its
        mtime is set back out of that window first: any later write sets the mtime to the
        current time, which then differs from what is remembered. An object whose mtime
        cannot be set back is not remembered (``get`` hashes it while copying it)."""
        from git_prov.capture.digests import FileDigest, HashJob, StatKey
        from git_prov.capture.racy import RACY_NS
        from git_prov.capture.stat_cache import StatCache

        if not self.store.stored_files:
            return
        cache = StatCache.open(cache_path)
        if cache is None:
            return
        try:
            entries = []
            now = time.time_ns()
            for path, hash_value, size in self.store.stored_files:
                try:
                    st = os.stat(path)
                    if st.st_mtime_ns > now - RACY_NS:
                        os.utime(path, ns=(st.st_atime_ns, now - RACY_NS - _BACKDATE_NS))
                        st = os.stat(path)
                except OSError:
                    continue
                if st.st_mtime_ns > now - RACY_NS:
                    continue
                entries.append((HashJob(path, path, StatKey.of(st)), FileDigest(hash_value, size)))
            cache.store(entries)
        finally:
            cache.close()


_BACKDATE_NS = 1_000_000_000  # how far past the racy window a kept object's mtime is set


def plan_keep(
    repo: GitRepo,
    config: ProvConfig,
    values: Sequence[str],
    cwd: Path,
    declared: Sequence[str] = (),
) -> KeepPlan | None:
    """The keep plan of a run: ``.gitprov.toml``'s rules (unless ``values`` say ``none``)
    and the run's own ``values`` (relative to ``cwd``); None when nothing is to be kept."""
    from git_prov.store.kept import KeptStore

    root = repo.root
    own, none = parse_choices(values, root, cwd)
    for path in own.paths:  # only declared data is kept: say so before anything runs
        if not any(_overlaps(path, d) for d in declared):
            raise UsageProblem(
                f"--keep {path}: not declared data of this run",
                "declare it with -i/--input or -o/--output (only declared data is kept)",
            )
    choices = [own]
    if not none and config.keep:
        defaults, _ = parse_choices(config.keep, root, root, config.keep_max_size)
        choices.append(defaults)
    choices = [c for c in choices if c.inputs or c.outputs or c.paths]
    if not choices:
        return None
    return KeepPlan(tuple(choices), KeptStore(repo, lfs_threshold=config.lfs_threshold))


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def not_kept_warning(names: Sequence[str], threshold: int) -> str:
    """The record's warning for chosen files that could not be kept (as large as the LFS
    threshold, and git-LFS not available): their hashes are recorded, their bytes not."""
    shown = ", ".join(sorted(names)[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"{len(names)} file(s) not kept ({shown}): {threshold:,} bytes or more needs git-LFS, "
        "which is not available — install git-lfs, or raise [keep] lfs_threshold"
    )

"""Patch-ids of commits and of combined ranges, cached under ``<git common dir>/prov/``.

Per commit under ``prov/patch-id/<ab>/<rest>`` — the layout and values of
:func:`git_prov.capture.source.patch_id` (an empty file means "no patch-id": a merge or an
empty change) — and per combined range under ``prov/patch-id-range/<ab>/<rest of start>-<end>``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from git_prov.capture.source import patch_id_pipeline
from git_prov.rewrite.orphans import lines
from git_prov.store.repo import GitRepo

PATCH_ID_CACHE = "patch-id"
RANGE_CACHE = "patch-id-range"
CACHE_WRITE_THREADS = 4
CACHE_WRITE_THREADS_FROM = 256

K = TypeVar("K")


def patch_ids(repo: GitRepo, commits: Iterable[str]) -> dict[str, str | None]:
    """``git patch-id --stable`` of each commit against its first parent (None for merges
    and empty changes), from the per-commit cache; the missing ones are computed in one
    ``git diff-tree --stdin -p --no-renames --full-index --root | git patch-id --stable``
    pipeline and cached.

    Same values and cache as :func:`git_prov.capture.source.patch_id`, which computes one
    commit at a time. Every commit given must exist in the repository.
    """
    wanted = list(dict.fromkeys(commits))
    cache = repo.prov_dir / PATCH_ID_CACHE
    known = _read_cached(cache, {c: f"{c[:2]}/{c[2:]}" for c in wanted})
    todo = [c for c in wanted if c not in known]
    if todo:
        computed = patch_id_pipeline(repo, lines(todo))
        for commit in todo:
            known[commit] = computed.get(commit)
        _write_cached(cache, [(f"{c[:2]}/{c[2:]}", known[c]) for c in todo])
    return known


def range_patch_ids(
    repo: GitRepo, ranges: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    """Patch-ids of the combined diffs ``git diff-tree -p start end`` (cached per range).

    Each batch gives ``diff-tree --stdin`` lines ``END START`` (END diffed against START as
    if START were its parent); patch-id labels each result with END, so one batch holds
    each end once.
    """
    cache = repo.prov_dir / RANGE_CACHE
    names = {span: f"{span[0][:2]}/{span[0][2:]}-{span[1]}" for span in dict.fromkeys(ranges)}
    known = _read_cached(cache, names)
    todo = [span for span in names if span not in known]
    while todo:
        batch: dict[str, str] = {}
        later: list[tuple[str, str]] = []
        for start, end in todo:
            if end in batch:
                later.append((start, end))
            else:
                batch[end] = start
        computed = patch_id_pipeline(
            repo, lines(f"{end} {start}" for end, start in batch.items()), fake_parents=True
        )
        for end, start in batch.items():
            known[(start, end)] = computed.get(end)
        _write_cached(cache, [(names[(s, e)], known[(s, e)]) for e, s in batch.items()])
        todo = later
    return known


def _read_cached(folder: Path, names: Mapping[K, str]) -> dict[K, str | None]:
    """The cached values of ``names`` (key → path under ``folder``) that are present
    (an empty file is a cached None)."""
    root = str(folder)
    found: dict[K, str | None] = {}
    for key, name in names.items():
        try:
            with open(f"{root}/{name}", encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, ValueError):
            continue
        found[key] = text or None
    return found


def _write_cached(folder: Path, items: Sequence[tuple[str, str | None]]) -> None:
    """Write cache entries (path under ``folder``, value), each atomically (temp + rename).

    Creating thousands of small files is bound by file-system latency, not CPU, so large
    batches are written by a few threads.
    """
    root = str(folder)
    for sub in {name.rpartition("/")[0] for name, _ in items}:
        with contextlib.suppress(OSError):
            os.makedirs(f"{root}/{sub}", exist_ok=True)
    suffix = f".{os.getpid()}.tmp"

    def write(chunk: Sequence[tuple[str, str | None]]) -> None:
        for name, value in chunk:
            path = f"{root}/{name}"
            with contextlib.suppress(OSError):
                fd = os.open(path + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, (value or "").encode())
                finally:
                    os.close(fd)
                os.replace(path + suffix, path)

    if len(items) < CACHE_WRITE_THREADS_FROM:
        write(items)
        return
    with ThreadPoolExecutor(max_workers=CACHE_WRITE_THREADS) as pool:
        list(pool.map(write, [items[i::CACHE_WRITE_THREADS] for i in range(CACHE_WRITE_THREADS)]))

"""Counting run records in notes trees through the git binary, without pygit2: a whole tree
(every note read once), the difference of two trees (the notes that differ), and the cache
of recent totals (``<git common dir>/prov/run-counts``)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence

from git_prov.errors import (
    CorruptLedger,
)
from git_prov.model.notepath import note_commit
from git_prov.store.gitcli import (
    stream_blobs,
)
from git_prov.sync.repo import NOTES_REF, RepoLike, SyncRepo, _git, _ledger_tip, read_refs

RUN_COUNT_CACHE = "run-counts"
RUN_COUNT_KEPT = 4  # trees whose run count is remembered
# The JSON of a run record always holds this (canonical JSON: no spaces, sorted keys); the
# same test as git_prov.store.merge.count_run_lines, which a test keeps in step.
RUN_MARK = '"kind":"run"'


def run_total(repo: RepoLike, tree: str | None = None, *, hint: str | None = None) -> int:
    """Run records in the ledger: in notes tree ``tree`` (hex id; default: the local
    notes ref's).

    Counting reads every note, so the last few answers are kept in
    ``<git common dir>/prov/run-counts`` by tree id, and a new tree is counted as a known
    one (``hint`` first, when known) plus the notes that differ — a ``git diff-tree`` and
    the changed notes' text, whatever the ledger's size.
    """
    sync_repo = SyncRepo.open(repo)
    if tree is None:
        tip = _ledger_tip(read_refs(sync_repo, [NOTES_REF]), NOTES_REF)
        tree = tip.tree if tip is not None else None
    if tree is None:
        return 0
    path = sync_repo._cache_file(RUN_COUNT_CACHE)
    cached: dict[str, int] = {}
    try:
        with open(path) as file:
            text = file.read()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            cached.setdefault(key, int(value))
    except (OSError, ValueError):
        cached = {}
    if tree in cached:
        return cached[tree]
    total = None
    # Bases whose difference is already known (the push just counted it) go first.
    bases = sorted(cached, key=lambda k: (k != hint, (k, tree) not in sync_repo._diffs))
    for base in bases:
        diff = _runs_between(sync_repo, base, tree)
        if diff is not None:
            total = cached[base] + diff[0] - diff[1]
            break
    if total is None:
        total = _count_all(sync_repo, tree)
    lines = [f"{tree} {total}", *[f"{k} {c}" for k, c in cached.items()][: RUN_COUNT_KEPT - 1]]
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "w") as file:
            file.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache
    return total


def _run_lines(texts: Iterable[bytes]) -> set[str]:
    """The distinct run-record lines of some note texts (see :data:`RUN_MARK`)."""
    found = set()
    for text in texts:
        for line in text.decode("utf-8", errors="replace").splitlines():
            if RUN_MARK in line.rpartition("\t")[2]:
                found.add(line)
    return found


def _runs_between(repo: SyncRepo, old: str, new: str) -> tuple[int, int] | None:
    """(run records in notes tree ``new`` and not in ``old``, and the reverse), from the
    notes that differ; None when git cannot compare them (an object was pruned)."""
    key = (old, new)
    if key not in repo._diffs:
        repo._diffs[key] = _diff_runs(repo, old, new)
    return repo._diffs[key]


def _diff_runs(repo: SyncRepo, old: str, new: str) -> tuple[int, int] | None:
    proc = _git(repo, "diff-tree", "-r", "-z", "--no-renames", old, new, "--")
    if proc.returncode != 0:
        return None
    fields = proc.stdout.split(b"\0")
    sides: dict[str, tuple[list[str], list[str]]] = {}
    zero = {"0" * 40, "0" * 64}
    for meta, raw_path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode().lstrip(":").split(" ")
        commit = note_commit(raw_path.decode(errors="replace"))
        if len(parts) < 5 or commit is None:
            continue
        before, after = sides.setdefault(commit, ([], []))
        if parts[2] not in zero:
            before.append(parts[2])
        if parts[3] not in zero:
            after.append(parts[3])
    pairs = list(sides.values())
    gained = lost = 0
    for (before, after), blobs in zip(
        pairs, _grouped_blobs(repo, [[*b, *a] for b, a in pairs]), strict=True
    ):
        old_lines = _run_lines(blobs.get(oid, b"") for oid in before)
        new_lines = _run_lines(blobs.get(oid, b"") for oid in after)
        gained += len(new_lines - old_lines)
        lost += len(old_lines - new_lines)
    return gained, lost


def _grouped_blobs(repo: SyncRepo, groups: Sequence[Sequence[str]]) -> Iterator[dict[str, bytes]]:
    """The blobs of each group of ids (the notes of one commit), one group at a time from
    one ``git cat-file --batch``: memory holds one note, not the ledger (missing blobs are
    left out)."""
    stream = stream_blobs(repo._cwd, [oid for group in groups for oid in group])
    for group in groups:
        got: dict[str, bytes] = {}
        for oid, data in itertools.islice(stream, len(group)):
            if data is not None:
                got[oid] = data
        yield got
    for _ in stream:  # (none left: ends git and checks it read them all)
        pass


def _count_all(repo: SyncRepo, tree: str) -> int:
    """Run records in a whole notes tree (reads every note once)."""
    proc = _git(repo, "ls-tree", "-r", "-z", tree)
    if proc.returncode != 0:
        raise CorruptLedger(
            f"cannot read notes tree {tree[:12]}: "
            + (proc.stderr.decode(errors="replace").strip() or "git ls-tree failed"),
            "run git prov fsck",
        )
    notes: dict[str, list[str]] = {}
    annotated = set()  # (every note path, whatever its type: what fetch's remap check asks)
    for entry in proc.stdout.split(b"\0"):
        info, _, raw_path = entry.partition(b"\t")
        parts = info.decode().split(" ")
        commit = note_commit(raw_path.decode(errors="replace"))
        if commit is not None:
            annotated.add(commit)
        if len(parts) == 3 and parts[1] == "blob" and commit is not None:
            notes.setdefault(commit, []).append(parts[2])
    repo._annotated = {tree: annotated}
    groups = list(notes.values())
    return sum(len(_run_lines(blobs.values())) for blobs in _grouped_blobs(repo, groups))

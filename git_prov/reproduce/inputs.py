"""Where each recorded input of a run to reproduce can be had with its recorded bytes:
in the run's source, in the user's working tree, or in the bytes the run kept — each
checked against the recorded hash in the recorded algorithm."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from git_prov.errors import BadPath
from git_prov.model.manifest import DataEntry, DataManifest, safe_relative
from git_prov.model.record import RunRecord
from git_prov.progress import NO_PROGRESS, Progress
from git_prov.query.drift import rehash
from git_prov.store.repo import GitRepo

# What became of one recorded input.
INPUT_OK = "ok"
INPUT_MISSING = "missing"
INPUT_CHANGED = "changed"
INPUT_UNVERIFIABLE = "unverifiable"  # an algorithm we cannot compute (git-annex keys)
FOUND_IN_SOURCE = "source"  # checked out with the run's source
FOUND_IN_WORKING_TREE = "working-tree"  # copied from the user's working tree
FOUND_IN_KEPT = "kept"  # drifted here; the recorded bytes come from kept data (git prov get)
_VERIFIABLE = ("sha256", "git", "md5", "md5-dos2unix")  # md5*: DVC's (capture/dvc.py)


@dataclass(frozen=True)
class InputCheck:
    """One recorded input file and what was found at its path."""

    path: str
    status: str  # ok | missing | changed | unverifiable
    recorded_hash: str
    recorded_size: int
    found_hash: str | None = None
    found_size: int | None = None
    found_in: str | None = None  # source | working-tree | kept


def _source_blobs(repo: GitRepo, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """path → blob id of every file below ``paths`` in ``commit``'s tree (one git call)."""
    if not paths:
        return {}
    listing = repo.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths, check=False)
    blobs = {}
    for item in listing.stdout.split(b"\0"):
        meta, _, name = item.partition(b"\t")
        fields = meta.split()
        if len(fields) == 3 and fields[1] == b"blob":
            blobs[name.decode("utf-8", "surrogateescape")] = fields[2].decode()
    return blobs


def _blob_hash(repo: GitRepo, blob: str, like: str) -> str | None:
    """The hash of a stored blob in the algorithm of ``like``."""
    algorithm = like.partition(":")[0]
    if algorithm == "git":
        return f"git:{blob}"
    if algorithm in ("md5", "md5-dos2unix"):
        from git_prov.capture.dvc import hash_like

        return hash_like([repo.git("cat-file", "blob", blob).stdout], like)
    if algorithm == "sha256":
        from git_prov.model.lfs_pointer import parse_lfs_pointer

        data = repo.git("cat-file", "blob", blob).stdout
        pointer = parse_lfs_pointer(data[:1024])
        return f"sha256:{pointer[0]}" if pointer else f"sha256:{hashlib.sha256(data).hexdigest()}"
    return None


def file_hash(repo: GitRepo, root: Path, rel: str, like: str) -> tuple[str | None, int | None]:
    """Hash and size of the regular file at ``root/rel`` (None, None when absent)."""
    path = root / rel
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    return rehash(repo, path, like), st.st_size


def check_inputs(
    repo: GitRepo, manifest: DataManifest, source: str, progress: Progress = NO_PROGRESS
) -> tuple[list[InputCheck], list[str]]:
    """Where each recorded input can be had with its recorded bytes: in ``source``'s tree,
    else in the user's working tree (hashed through the stat cache, so unchanged data costs
    stat calls). Returns the checks and the unsafe paths (never used)."""
    unsafe = [e.path for e in manifest.entries if not is_safe(e.path)]
    entries = [e for e in manifest.entries if e.path not in unsafe]
    blobs = _source_blobs(repo, source, [e.path for e in entries])
    checks: dict[str, InputCheck] = {}
    in_source: dict[str, str | None] = {}
    for entry in entries:
        if entry.algorithm not in _VERIFIABLE:
            present = os.path.lexists(repo.root / entry.path)
            checks[entry.path] = InputCheck(
                entry.path,
                INPUT_UNVERIFIABLE,
                entry.hash,
                entry.size,
                found_in=FOUND_IN_WORKING_TREE if present else None,
            )
            continue
        blob = blobs.get(entry.path)
        found = _blob_hash(repo, blob, entry.hash) if blob else None
        in_source[entry.path] = found
        if found == entry.hash:
            checks[entry.path] = InputCheck(
                entry.path, INPUT_OK, entry.hash, entry.size, found, entry.size, FOUND_IN_SOURCE
            )
    rest = [e for e in entries if e.path not in checks]
    now = _working_tree_manifest(repo, [e.path for e in rest], progress)
    for entry in rest:
        current = now.get(entry.path)
        found_hash, size = (current.hash, current.size) if current else (None, None)
        if current is not None and current.algorithm != entry.algorithm:
            found_hash = rehash(repo, repo.root / entry.path, entry.hash)
        if found_hash is None:
            source_hash = in_source.get(entry.path)
            checks[entry.path] = (
                InputCheck(
                    entry.path,
                    INPUT_CHANGED,
                    entry.hash,
                    entry.size,
                    source_hash,
                    None,
                    FOUND_IN_SOURCE,
                )
                if source_hash is not None
                else InputCheck(entry.path, INPUT_MISSING, entry.hash, entry.size)
            )
            continue
        status = INPUT_OK if found_hash == entry.hash else INPUT_CHANGED
        checks[entry.path] = InputCheck(
            entry.path, status, entry.hash, entry.size, found_hash, size, FOUND_IN_WORKING_TREE
        )
    return [checks[e.path] for e in entries], unsafe


def is_safe(path: str) -> bool:
    try:
        safe_relative(path)
    except BadPath:
        return False
    return True


def _working_tree_manifest(
    repo: GitRepo, paths: Sequence[str], progress: Progress
) -> dict[str, DataEntry]:
    """The user's working-tree files at ``paths`` (absent ones left out)."""
    if not paths:
        return {}
    from git_prov.capture.data import build_manifest

    try:
        manifest = build_manifest(
            repo.root,
            list(paths),
            cwd=repo.root,
            cache_path=repo.prov_dir / "hash-cache.sqlite",
            missing_ok=True,
            progress=progress,
        )
    except BadPath:
        # Something unreadable or odd among them: hash the regular files one by one.
        out = {}
        for path in paths:
            found, size = file_hash(repo, repo.root, path, "sha256:")
            if found is not None and size is not None:
                out[path] = DataEntry(path, size, found)
        return out
    return {e.path: e for e in manifest.entries if e.path in set(paths)}


def use_kept(
    repo: GitRepo,
    run: RunRecord,
    inputs: DataManifest,
    checks: list[InputCheck],
    drifted: list[InputCheck],
    notes: list[str],
) -> tuple[list[InputCheck], list[InputCheck]]:
    """Drifted inputs whose recorded bytes were kept are no drift: the rerun gets the kept
    bytes (and a note says so). Returns the checks and what still drifted."""
    from git_prov.kept_data import restorable

    kept = restorable(repo, inputs, [c.path for c in drifted])
    if not kept:
        return checks, drifted
    out = []
    for check in checks:
        if check.path in kept:
            how = "is missing" if check.status == INPUT_MISSING else "changed"
            notes.append(f"input {check.path} {how} here: the rerun uses its kept recorded bytes")
            check = InputCheck(
                check.path,
                INPUT_OK,
                check.recorded_hash,
                check.recorded_size,
                check.recorded_hash,
                check.recorded_size,
                FOUND_IN_KEPT,
            )
        out.append(check)
    return out, [c for c in drifted if c.path not in kept]


def describe_drift(check: InputCheck) -> str:
    if check.status == INPUT_MISSING:
        return f"input {check.path} is missing (recorded {check.recorded_hash})"
    return (
        f"input {check.path} changed: recorded {check.recorded_hash} "
        f"({check.recorded_size} bytes), found {check.found_hash} "
        f"({check.found_size if check.found_size is not None else '?'} bytes)"
    )

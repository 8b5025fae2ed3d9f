"""fsck --data: the files of data manifests still in the working tree, re-hashed and compared."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from git_prov.fsck.findings import INFO, FsckReport
from git_prov.fsck.notes import Runs
from git_prov.fsck.objects import unsafe_path_reason
from git_prov.model.lfs_pointer import parse_lfs_pointer
from git_prov.model.manifest import MAX_MANIFEST_BYTES, DataManifest
from git_prov.store.headers import ObjectHeaders, git_hash_file
from git_prov.store.repo import GitRepo

# ---- --data -----------------------------------------------------------------------------


def check_data(
    repo: GitRepo, runs: Runs, tree_paths: set[str], objects: ObjectHeaders, report: FsckReport
) -> None:
    root = repo.root
    users: dict[str, list[str]] = {}
    for run_id, versions in sorted(runs.versions.items()):
        if run_id in runs.tombstoned:
            continue
        for record in versions:
            for oid in (record.inputs, record.outputs):
                if oid is not None and run_id not in users.setdefault(oid, []):
                    users[oid].append(run_id)
    digests: dict[tuple[str, str], str | None] = {}
    for oid, run_ids in sorted(users.items()):
        header = objects.header(oid)
        if header is None or header[1] > MAX_MANIFEST_BYTES:
            continue  # reported above
        try:
            manifest = DataManifest.from_toml(objects.blob(oid))
        except (ValueError, RecursionError):
            continue
        named = ", ".join(run_ids[:3]) + (
            f" and {len(run_ids) - 3} more" if len(run_ids) > 3 else ""
        )
        for entry in manifest.entries:
            if unsafe_path_reason(entry.path):
                continue  # never open what a hostile manifest points at
            path = root / entry.path
            if not path.is_file():
                continue
            key = (entry.path, entry.algorithm)
            if key not in digests:
                digests[key] = _digest(path, entry.algorithm, entry.source)
                report.files_hashed += digests[key] is not None
            current = digests[key]
            if current is None or current == entry.digest:
                continue
            report.add(
                INFO,
                "data-drift",
                f"{entry.path} changed since run {named} recorded it "
                f"({entry.algorithm}:{entry.digest[:12]} then, {current[:12]} now)",
                path=entry.path,
                object=oid,
                run=run_ids[0],
            )


def _digest(path: Path, algorithm: str, source: str) -> str | None:
    """The hex digest of ``path`` in ``algorithm`` as manifests record it, or None when
    this version cannot compute it (an unknown algorithm, an unreadable file)."""
    try:
        if algorithm == "git":
            return git_hash_file(path)
        if algorithm not in ("sha256", "md5", "sha1", "sha512"):
            return None
        if source == "lfs" and path.stat().st_size < 1024:
            pointer = parse_lfs_pointer(path.read_bytes())
            if pointer is not None:
                return pointer[0]
        digest = hashlib.new(algorithm)
        with path.open("rb") as f:
            for chunk in _chunks(f):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _chunks(f: Any, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk

"""Kept bytes stay safe and checked (issue #14): `git lfs prune` (the real one) never loses
a kept object that was not pushed, `get` brings back a pruned one, and `git prov fsck`
tells present, held, on-remote, missing and damaged kept bytes apart."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import git, prov
from test_keep import _run_id, _sha, _write, kept_repo, remote

__all__ = ["kept_repo", "remote"]  # (fixtures this module uses, from test_keep)


def _lfs_repo(repo: Path) -> Path:
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 10000\n")
    return repo


def _object(repo: Path, data: bytes) -> Path:
    digest = _sha(data)
    return repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest


def _prune(repo: Path, *, old: bool) -> None:
    # old=True: as `git lfs prune` sees refs/prov/data once its last commit is older than
    # lfs.fetchrecentrefsdays + lfs.pruneoffsetdays (10 days by default): not recent.
    days = ["-c", "lfs.fetchrecentrefsdays=0", "-c", "lfs.pruneoffsetdays=0"] if old else []
    git(repo, *days, "lfs", "prune")


def _fsck(repo: Path, *args: str) -> tuple[int, dict[str, list[dict[str, str]]]]:
    proc = prov(repo, "fsck", "--json", *args, check=False)
    doc = json.loads(proc.stdout)
    by_code: dict[str, list[dict[str, str]]] = {}
    for finding in doc["findings"]:
        by_code.setdefault(finding["code"], []).append(finding)
    return proc.returncode, by_code


def test_git_lfs_prune_never_loses_unpushed_kept_bytes_and_get_refetches_pushed_ones(
    kept_repo: Path, remote: Path, tmp_path: Path
) -> None:
    repo = _lfs_repo(kept_repo)
    big = os.urandom(30_000)
    _write(repo / "data/big.bin", big)
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "x")
    stored = _object(repo, big)
    assert stored.is_file()

    _prune(repo, old=False)  # refs/prov/data is a recent ref: prune keeps its objects
    assert stored.is_file()
    _prune(repo, old=True)  # an old one: prune deletes them (what git-lfs 3.3 does)
    assert not stored.exists()
    # Never pushed: git-prov held the bytes; show and get find them, the store has them back.
    assert "kept here" in prov(repo, "show", run).stdout
    prov(repo, "get", run, "-o", "g1")
    assert (repo / "g1/data/big.bin").read_bytes() == big
    assert stored.read_bytes() == big

    prov(repo, "push", "--data")  # uploaded: git-prov lets go, prune may now take it
    _prune(repo, old=True)
    assert not stored.exists()
    code, found = _fsck(repo)
    assert code == 0 and "kept-on-remote" in found, found
    got = prov(repo, "get", run, "-o", "g2")
    assert "fetched from origin" in got.stdout, got.stdout
    assert (repo / "g2/data/big.bin").read_bytes() == big


def test_fsck_checks_kept_bytes(kept_repo: Path) -> None:
    repo = _lfs_repo(kept_repo)
    big, other, small = os.urandom(30_000), os.urandom(20_000), os.urandom(500)
    _write(repo / "data/big.bin", big)
    _write(repo / "data/other.bin", other)
    _write(repo / "data/small.bin", small)
    _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "x")
    code, found = _fsck(repo, "--data")
    assert code == 0 and not [c for c in found if c.startswith("kept")], found

    # By hand: same size, other bytes. Only hashing (--data) can tell.
    stored = _object(repo, big)
    os.chmod(stored, 0o644)
    stored.write_bytes(b"X" + big[1:])
    assert _fsck(repo)[0] == 0
    code, found = _fsck(repo, "--data")
    assert code == 1, found
    assert [f["path"] for f in found["kept-damaged"]] == [f"sha256:{_sha(big)}"]

    # Another size: fsck sees it without hashing.
    truncated = _object(repo, other)
    os.chmod(truncated, 0o644)
    truncated.write_bytes(other[:100])
    code, found = _fsck(repo)
    assert code == 1 and [f["path"] for f in found["kept-damaged"]] == [f"sha256:{_sha(other)}"]

    # Removed (git lfs prune) but held by git-prov: information, not damage; gone for good
    # (nothing holds it, no remote has it): an error.
    truncated.unlink()
    code, found = _fsck(repo)
    assert "kept-held" in found and "kept-missing" not in found
    (repo / ".git/prov/lfs-unpushed" / _sha(other)).unlink()
    code, found = _fsck(repo)
    assert code == 1 and [f["path"] for f in found["kept-missing"]] == [f"sha256:{_sha(other)}"]
    text = prov(repo, "fsck", check=False)
    assert "error: kept git-LFS object" in text.stdout and "kept files" in text.stderr


def test_gc_of_kept_bytes_lets_go_of_the_unpushed_hold(kept_repo: Path) -> None:
    repo = _lfs_repo(kept_repo)
    big = os.urandom(20_000)
    _write(repo / "data/big.bin", big)
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "x")
    held = repo / ".git/prov/lfs-unpushed" / _sha(big)
    assert held.stat().st_ino == _object(repo, big).stat().st_ino  # a link: nothing copied
    prov(repo, "gc", "--data-only", run, "--force")
    assert not held.exists()  # the store's copy is git lfs prune's to remove now

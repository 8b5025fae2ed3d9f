"""Snapshots travel with their git-LFS content: a run recorded on a dirty tree that holds
LFS-tracked files checks out in another clone after ``git prov push`` and ``fetch``.

``git prov push`` pushes with ``--no-verify`` (git-lfs's pre-push hook would upload every
object of every branch), so git-prov itself uploads the LFS objects of the commits its
push makes reachable — and only of those."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import commit_file, git, prov, runs_json
from lfs_server import LfsServer

from git_prov.store.lfs import lfs_available, lfs_object_path

pytestmark = pytest.mark.skipif(not lfs_available(), reason="git-lfs is not installed")


def lfs_repo(repo: Path, url: str) -> dict[str, bytes]:
    """``repo`` with LFS-tracked ``*.bin`` committed and pushed to ``url`` as ``origin``,
    then made dirty: the committed file edited, an untracked one added. Returns what the
    working tree holds."""
    git(repo, "lfs", "install", "--local")
    git(repo, "remote", "add", "origin", url)
    commit_file(repo, ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (repo / "model.bin").write_bytes(b"committed weights" + os.urandom(2000))
    git(repo, "add", "model.bin")
    git(repo, "commit", "-q", "-m", "model")
    git(repo, "push", "-q", "origin", "main")  # (git-lfs's own hook uploads this one)
    dirty = {"model.bin": b"edited weights" + os.urandom(3000), "new.bin": os.urandom(4000)}
    for name, data in dirty.items():
        (repo / name).write_bytes(data)
    return dirty


def snapshot_of_last_run(repo: Path) -> str:
    (run,) = runs_json(repo)
    snapshot = run.get("snapshot")
    assert isinstance(snapshot, str), run
    return snapshot


def check_out_elsewhere(tmp_path: Path, url: str, snapshot: str, *config: str) -> Path:
    clone = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", *config, url, str(clone))
    git(clone, "lfs", "install", "--local")
    prov(clone, "fetch")
    git(clone, "checkout", "-q", "--detach", snapshot)
    return clone


def test_snapshot_with_lfs_files_checks_out_in_a_clone(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    dirty = lfs_repo(repo, remote.as_uri())
    prov(repo, "run", "--", "true")
    snapshot = snapshot_of_last_run(repo)
    prov(repo, "push")
    clone = check_out_elsewhere(tmp_path, remote.as_uri(), snapshot)
    for name, data in dirty.items():
        assert (clone / name).read_bytes() == data


def test_snapshot_lfs_content_through_an_http_lfs_server(
    lfs_server: LfsServer, repo: Path, tmp_path: Path
) -> None:
    url = lfs_server.create_repo("org/repo")
    lfs_server.authorize(repo)
    dirty = lfs_repo(repo, url)
    prov(repo, "run", "--", "true")
    snapshot = snapshot_of_last_run(repo)
    prov(repo, "sync")
    clone = check_out_elsewhere(tmp_path, url, snapshot, "-c", "=".join(lfs_server.batch_header()))
    for name, data in dirty.items():
        assert (clone / name).read_bytes() == data


def push_json(repo: Path, *args: str) -> dict[str, object]:
    import json

    doc = json.loads(prov(repo, "push", "--json", *args).stdout)
    assert isinstance(doc, dict)
    return doc


def test_only_objects_of_new_commits_are_uploaded(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    lfs_repo(repo, remote.as_uri())
    prov(repo, "run", "--", "true")
    assert push_json(repo)["lfs_uploaded"] == 2  # the edited model.bin and new.bin
    assert push_json(repo)["lfs_uploaded"] == 0  # nothing new: nothing scanned or sent
    (repo / "model.bin").write_bytes(b"third version")
    prov(repo, "run", "--", "true")
    # The new snapshot's objects: model.bin's new version, and new.bin again (its pointer
    # is in the new tree too; the remote skips what it has). The first version is not.
    assert push_json(repo)["lfs_uploaded"] == 2
    snapshot = snapshot_of_last_run_on(repo)
    clone = check_out_elsewhere(tmp_path, remote.as_uri(), snapshot)
    assert (clone / "model.bin").read_bytes() == b"third version"


def snapshot_of_last_run_on(repo: Path) -> str:
    runs = runs_json(repo)
    latest = max(runs, key=lambda run: str(run["started"]))
    return str(latest["snapshot"])


def test_objects_missing_from_the_local_store_are_a_warning(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    dirty = lfs_repo(repo, remote.as_uri())
    prov(repo, "run", "--", "true")
    import hashlib

    gone = hashlib.sha256(dirty["new.bin"]).hexdigest()
    lfs_object_path(repo / ".git", gone).unlink()  # (as `git lfs prune` might)
    done = prov(repo, "push")
    assert f"not uploaded to origin ({gone[:12]})" in done.stderr
    assert "will not check out elsewhere" in done.stderr
    assert (remote / "lfs" / "objects").is_dir()  # the other object went


def test_a_refused_lfs_upload_pushes_no_provenance(
    lfs_server: LfsServer, repo: Path, tmp_path: Path
) -> None:
    url = lfs_server.create_repo("org/repo")
    lfs_server.authorize(repo)
    lfs_repo(repo, url)
    prov(repo, "run", "--", "true")
    lfs_server.authorize(repo, token="expired-or-wrong")
    failed = prov(repo, "push", check=False)
    assert failed.returncode == 8, failed.stderr
    assert "uploading git-LFS objects to origin was refused" in failed.stderr
    assert "Traceback" not in failed.stderr
    # No snapshot reached the remote without its content.
    assert git(repo, "ls-remote", "origin", "refs/prov/*") == ""
    lfs_server.authorize(repo)
    prov(repo, "push")
    assert git(repo, "ls-remote", "origin", "refs/prov/objects") != ""


def test_plain_git_push_with_the_hook_carries_snapshot_lfs_content(
    repo: Path, tmp_path: Path
) -> None:
    # git-lfs's own pre-push hook (installed by `git lfs install`) is chained as
    # pre-push.legacy; ours then pushes provenance, snapshots' LFS objects first.
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    dirty = lfs_repo(repo, remote.as_uri())
    prov(repo, "hooks", "install", "pre-push")
    assert (repo / ".git" / "hooks" / "pre-push.legacy").is_file()
    prov(repo, "run", "--", "true")
    snapshot = snapshot_of_last_run(repo)
    commit_file(repo, "notes.txt", "a plain commit to push\n")
    git(repo, "push", "-q", "origin", "main")
    clone = check_out_elsewhere(tmp_path, remote.as_uri(), snapshot)
    for name, data in dirty.items():
        assert (clone / name).read_bytes() == data

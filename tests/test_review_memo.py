"""Review of the data memo's files index (capture/data_memo.py): races and hostile files
around ``git diff-files`` on the private index. Real git, real repositories."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import git
from test_data_memo_index import SETTLE, _built_id, _data, _memo, _record

from git_prov.capture.data import describe_data, list_data
from git_prov.capture.data_memo import DataMemo


def test_a_files_index_removed_while_git_starts_vouches_for_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git reads a missing GIT_INDEX_FILE as an empty index, which has no change: a files
    index removed (by another record's rewrite of the memo, or gc) between the check that
    it is there and git's open of it must not vouch for files that changed."""
    _data(repo)
    time.sleep(SETTLE)
    stale = _record(repo)
    _, doc = _memo(repo)
    index = repo / ".git" / "prov" / "data-index" / str(doc["files_index"])
    (repo / "data" / "d0" / "f000.bin").write_bytes(b"changed since")
    # git opens its trace2 target first thing, before the index: a FIFO holds it there
    # until the files index is gone.
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("GIT_TRACE2_EVENT", str(fifo))
    early = DataMemo.early(repo / ".git" / "prov", None, str(repo), ("data",))
    index.unlink()
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        memo = early.settle()
    finally:
        os.close(reader)
    monkeypatch.delenv("GIT_TRACE2_EVENT")
    if memo.needs_listing:
        memo.listed(list_data(repo, ["data"]))
    assert memo.recall() != stale
    assert _record(repo) == _built_id(repo) != stale


def test_a_files_index_sees_changes_git_could_be_configured_to_overlook(repo: Path) -> None:
    """With core.fileMode, core.ignoreCase, core.symlinks, a split index and index v4 set
    against it, a files index never vouches for files one of which became a symlink to the
    same bytes, a directory, executable, or was renamed in case only."""
    for key, value in [
        ("core.fileMode", "false"),
        ("core.ignoreCase", "true"),
        ("core.symlinks", "false"),
        ("core.splitIndex", "true"),
        ("index.version", "4"),
    ]:
        git(repo, "config", key, value)
    prov_dir = repo / ".git" / "prov"
    sets = ["data/link", "data/dir", "data/mode", "data/case"]
    for name in sets:
        (repo / name).mkdir(parents=True)
        (repo / name / "f.bin").write_bytes(b"same bytes\n")
        (repo / name / "g.sh").write_text("#!/bin/sh\n")
    time.sleep(SETTLE)
    remembered = {}
    for name in sets:
        listing = list_data(repo, [name])
        manifest = describe_data(listing)
        oid = git(repo, "hash-object", "-w", "--stdin", input=manifest.to_toml().decode())
        DataMemo(prov_dir, None, listing).remember(manifest, oid)
        assert _recalled(repo, name) == (oid, False)  # (vouched for by git: no walk)
        remembered[name] = oid
    (repo / "data/link/copy").write_bytes(b"same bytes\n")
    (repo / "data/link/f.bin").unlink()
    (repo / "data/link/f.bin").symlink_to("copy")
    (repo / "data/dir/f.bin").unlink()
    (repo / "data/dir/f.bin").mkdir()
    (repo / "data/dir/f.bin/inner").write_bytes(b"same bytes\n")
    (repo / "data/mode/g.sh").chmod(0o755)
    (repo / "data/case/f.bin").rename(repo / "data/case/F.bin")
    for name in sets:
        assert _recalled(repo, name)[0] != remembered[name], name


def _recalled(repo: Path, path: str) -> tuple[str | None, bool]:
    """What a record of ``path`` recalls from its memo, and whether it walked for it."""
    memo = DataMemo.early(repo / ".git" / "prov", None, str(repo), (path,)).settle()
    walked = memo.needs_listing
    if walked:
        memo.listed(list_data(repo, [path]))
    return memo.recall(), walked

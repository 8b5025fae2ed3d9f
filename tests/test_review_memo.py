"""Review of the data memo's files index (capture/data_memo.py): races and hostile files
around ``git diff-files`` on the private index. Real git, real repositories."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_data_memo_index import SETTLE, _built_id, _data, _memo, _record

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
        from git_prov.capture.data import list_data

        memo.listed(list_data(repo, ["data"]))
    assert memo.recall() != stale
    assert _record(repo) == _built_id(repo) != stale

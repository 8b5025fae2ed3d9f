"""``git prov gc`` and the data memo's files indexes (``.git/prov/data-index/``,
capture/data_memo.py): files indexes no memo names and old partial writes go, in turn with
the records that write them; a files index removed at any moment (by gc, by another record)
costs a record a ``find`` and a new index, never a wrong manifest."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import prov, runs_json
from test_data_memo_index import _built_id, _memo

from git_prov.capture.data_memo import UNUSED_DAYS
from git_prov.store.locking import ledger_lock

OLD_NS = 1_600_000_000 * 10**9
SETTLE = 2.1  # seconds: git's racy window past, ctimes included (see test_data_memo_index)


def _data(repo: Path) -> None:
    for i in range(6):
        (repo / "data" / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (repo / "data" / f"d{i % 2}" / f"f{i}.bin").write_bytes(bytes([i]) * 100)
    for p in [repo / "data", *(repo / "data").rglob("*")]:
        os.utime(p, ns=(OLD_NS, OLD_NS))
    os.utime(repo / ".git" / "index", ns=(OLD_NS, OLD_NS))


def _record(repo: Path) -> str:
    proc = prov(repo, "record", "-i", "data", "--command", "true")
    match = re.search(r"recorded run ([0-9a-f]+)", proc.stdout + proc.stderr)
    assert match is not None
    [run] = [r for r in runs_json(repo) if str(r["id"]).endswith(match.group(1))]
    return str(run["inputs"])


def _indexes(repo: Path) -> set[str]:
    return {p.name for p in (repo / ".git" / "prov" / "data-index").iterdir()} - {"lock"}


def _hours_ago(path: Path, hours: float) -> None:
    moment = int((time.time() - hours * 3600) * 10**9)
    os.utime(path, ns=(moment, moment))


def test_gc_removes_files_indexes_no_memo_names_and_old_partial_writes(repo: Path) -> None:
    _data(repo)
    time.sleep(SETTLE)
    first = _record(repo)
    memo, doc = _memo(repo)
    name = str(doc["files_index"])
    index_dir = repo / ".git" / "prov" / "data-index"
    assert _indexes(repo) == {name}
    # What is left behind: a files index whose memo went (a record killed before writing
    # its memo, or a memo that names another one now), a killed writer's partial write,
    # one being written now, and a file gc does not know.
    orphan = "ab" * 20
    shutil.copyfile(index_dir / name, index_dir / orphan)
    (index_dir / f"{'cd' * 20}.123.tmp").write_bytes(b"DIRC")
    _hours_ago(index_dir / f"{'cd' * 20}.123.tmp", 2)
    (index_dir / f"{'ef' * 20}.456.tmp").write_bytes(b"DIRC")
    (index_dir / "README").write_text("not ours\n")
    dry = json.loads(prov(repo, "gc", "--json", "--dry-run").stdout)
    assert dry["memo_indexes_removed"] == 2 and "memos_removed" not in dry
    assert len(_indexes(repo)) == 5
    proc = prov(repo, "gc")  # no rules, no --force: only a cache goes
    assert "removed 2 data-index files no memo names (a cache)" in proc.stderr
    assert _indexes(repo) == {name, f"{'ef' * 20}.456.tmp", "README"}
    # A memo unused for 30 days goes with its files index (counted as the memo).
    _hours_ago(memo, (UNUSED_DAYS + 1) * 24)
    gone = json.loads(prov(repo, "gc", "--json").stdout)
    assert gone["memos_removed"] == 1 and "memo_indexes_removed" not in gone
    assert _indexes(repo) == {f"{'ef' * 20}.456.tmp", "README"}
    # The next record takes the full path: the same manifest, memo and index again.
    assert _record(repo) == first
    assert _memo(repo)[1]["files_index"] == name and name in _indexes(repo)
    # A memo removed by hand leaves its files index to the next gc.
    _memo(repo)[0].unlink()
    assert "removed 1 data-index file no memo names" in prov(repo, "gc").stderr
    assert name not in _indexes(repo)


def test_a_files_index_removed_costs_the_next_record_a_find_and_is_written_again(
    repo: Path,
) -> None:
    """(One removed while git reads it: tests/test_review_memo.py.)"""
    _data(repo)
    time.sleep(SETTLE)
    first = _record(repo)
    name = str(_memo(repo)[1]["files_index"])
    index = repo / ".git" / "prov" / "data-index" / name
    index.unlink()
    assert _record(repo) == first
    assert index.is_file() and _memo(repo)[1]["files_index"] == name
    # Its files changed meanwhile: seen (find), a new manifest and a new files index.
    (repo / "data" / "d0" / "f0.bin").write_bytes(b"\x7f" * 100)
    os.utime(repo / "data" / "d0" / "f0.bin", ns=(OLD_NS, OLD_NS))
    index.unlink()
    changed = _record(repo)
    assert changed == _built_id(repo) != first


def test_gc_waits_for_a_writer_between_its_files_index_and_its_memo(repo: Path) -> None:
    """A record renames its new files index in, then writes the memo naming it, holding
    the writers' lock (shared) throughout; gc looks for files indexes no memo names only
    holding it alone, so it never removes one a writer is about to name."""
    _data(repo)
    time.sleep(SETTLE)
    _record(repo)
    memo, doc = _memo(repo)
    old = str(doc["files_index"])
    prov_dir = repo / ".git" / "prov"
    new = "12" * 20
    junk = prov_dir / "data-memo" / "junk"  # removed by gc just before it sweeps
    junk.write_text("not a memo")
    with ledger_lock(prov_dir / "data-index" / "lock", shared=True) as taken:
        assert taken
        # A writer's first step: the new files index is there, no memo names it yet.
        shutil.copyfile(prov_dir / "data-index" / old, prov_dir / "data-index" / new)
        gc = subprocess.Popen(
            [sys.executable, "-m", "git_prov", "gc"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while junk.exists() and gc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not junk.exists()  # gc is at its sweep now, waiting for the lock
        assert new in _indexes(repo)
        # The writer's second step: the memo names the new index (the old one is
        # removed by the writer, or left to gc).
        memo.write_text(json.dumps({**doc, "files_index": new}))
    _, err = gc.communicate(timeout=60)
    assert gc.returncode == 0, err
    assert "removed 1 data-index file no memo names" in err
    assert _indexes(repo) == {new}

"""Review of the query index's lazy secondary indexes (query/index.py, RunIndex.need): an
index made inside an update's transaction, on a disk that fills up as it is made, makes
SQLite roll the whole transaction back; the update must then fail, not go on outside any
transaction (its rows committed one statement at a time, where a reader sees half of them
and another process's update can run in between). Needs root for a small tmpfs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import commit_file, git
from factories import make_record

from git_prov.query.index import INDEX_FILE, RepoPaths, RunIndex, _connect, open_index
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo


@pytest.fixture
def disk_repo(tmp_path: Path) -> Iterator[Path]:
    """A repository on a 16 MiB tmpfs of its own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if os.geteuid() != 0 or done.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        repo = mount / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        commit_file(repo, "README.md", "# experiment\n")
        yield repo
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_an_index_the_disk_cannot_take_fails_the_update_not_half_of_it(disk_repo: Path) -> None:
    repo = disk_repo
    head = git(repo, "rev-parse", "HEAD")
    ledger = Ledger(open_repo(repo))
    records = [make_record(head, started=f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00.000Z")
               for i in range(3000)]  # fmt: skip
    ledger.write([(head, r) for r in records])
    paths = RepoPaths.discover(repo)
    with open_index(paths) as index:  # (a first build: no index by note yet)
        index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        old_tip = index.tips.notes
    added = make_record(head, started="2026-02-01T00:00:00.000Z")
    ledger.write([(head, added)])  # a changed note: its update makes the index by note
    path = repo / ".git" / "prov" / INDEX_FILE
    # Opened as open_index opens it, with a page cache of a few pages: making the index
    # by note spills its pages into the WAL as it goes, and the disk has room for the
    # update's few pages, not for that index.
    index = RunIndex(_connect(path), paths)
    index.db.execute("PRAGMA cache_size = 2")
    stats = os.statvfs(repo)
    (repo.parent / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - (48 << 10)))
    try:
        index.refresh()
        refreshed = True
    except sqlite3.OperationalError:
        refreshed = False
    finally:
        index.close()
        (repo.parent / "filler").unlink()
    with sqlite3.connect(path) as db:
        tip = db.execute("SELECT value FROM meta WHERE key = 'notes_tip'").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM lines WHERE run = ?", (added.id,)).fetchone()[0]
    # All of the update or none of it.
    new_tip = git(repo, "rev-parse", "refs/notes/prov")
    assert (refreshed, tip, rows) in [(False, old_tip, 0), (True, new_tip, 1)]
    # The next command brings it up to date: every row at the line of its record.
    lines = git(repo, "notes", "--ref=prov", "show", head).splitlines()
    with open_index(paths) as index:
        assert index.run_count() == 3001
        found = index.db.execute("SELECT run, lineno FROM lines WHERE kind = 0").fetchall()
    assert sorted(found) == sorted((r.id, n) for r in [*records, added]
                                   for n in [_line_of(lines, r.id)])  # fmt: skip


def _line_of(lines: list[str], run: str) -> int:
    [number] = [n for n, line in enumerate(lines, start=1) if f'"id":"{run}"' in line]
    return number

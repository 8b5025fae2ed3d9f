"""``git prov gc`` cleans ``.git/prov/data-memo/`` (capture/data_memo.py): memos unused for
30 days, memos no version can use and old partial writes go; a memo in use (a hit touches
it) stays; a record after the cleaning names the same manifest (the memo is only a cache)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from conftest import prov, runs_json

from git_prov.capture.data_memo import UNUSED_DAYS

OLD = 1_600_000_000 * 10**9  # 2020: stat data git and the memo trust (not racy)


def _age(path: Path, ns: int = OLD) -> None:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, ns=(ns, ns), follow_symlinks=False)


def _record(repo: Path, data: str) -> str:
    """Record a run reading ``data``; its inputs manifest id."""
    proc = prov(repo, "record", "-i", data, "--command", "true")
    match = re.search(r"recorded run ([0-9a-f]+)", proc.stdout + proc.stderr)
    assert match is not None
    [run] = [r for r in runs_json(repo) if str(r["id"]).endswith(match.group(1))]
    return str(run["inputs"])


def _memos(repo: Path) -> set[str]:
    return {p.name for p in (repo / ".git" / "prov" / "data-memo").iterdir()}


def _days_ago(path: Path, days: float) -> None:
    moment = int((time.time() - days * 86400) * 10**9)
    os.utime(path, ns=(moment, moment))


def test_gc_removes_unused_and_unusable_memos_and_a_record_stays_right(repo: Path) -> None:
    for name in ("old", "new"):
        (repo / name).mkdir()
        (repo / name / "f.txt").write_text(f"{name} data\n")
        _age(repo / name)
    _age(repo / ".git" / "index")
    old_id = _record(repo, "old")
    before = _memos(repo)
    new_id = _record(repo, "new")
    [old_memo] = before
    [new_memo] = _memos(repo) - before
    memo_dir = repo / ".git" / "prov" / "data-memo"
    _days_ago(memo_dir / old_memo, UNUSED_DAYS + 1)
    (memo_dir / "junk").write_text("not a memo")  # no version can use it
    (memo_dir / f"{new_memo}.123.tmp").write_text("{")  # a crashed writer's partial write
    _days_ago(memo_dir / f"{new_memo}.123.tmp", 1)
    (memo_dir / f"{new_memo}.456.tmp").write_text("{")  # one being written now: stays
    dry = json.loads(prov(repo, "gc", "--json", "--dry-run").stdout)
    assert dry["memos_removed"] == 3 and len(_memos(repo)) == 5
    proc = prov(repo, "gc")  # no rules, no --force: only a cache goes
    assert "removed 3 unused data-memo entries" in proc.stderr
    assert _memos(repo) == {new_memo, f"{new_memo}.456.tmp"}
    assert _record(repo, "old") == old_id  # the full path: the same manifest, memo again
    assert _record(repo, "new") == new_id
    assert old_memo in _memos(repo)


def test_a_memo_in_use_is_kept(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f.txt").write_text("data\n")
    _age(repo / "data")
    _age(repo / ".git" / "index")
    first = _record(repo, "data")
    [memo] = _memos(repo)
    path = repo / ".git" / "prov" / "data-memo" / memo
    _days_ago(path, UNUSED_DAYS + 1)
    assert _record(repo, "data") == first  # a hit: touches the memo
    assert time.time() - path.stat().st_mtime < 3600
    proc = prov(repo, "gc", "--json", check=False)
    assert proc.returncode == 2  # nothing to do: gc asks for rules, as before
    assert _memos(repo) == {memo}

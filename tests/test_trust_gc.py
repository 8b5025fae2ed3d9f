"""``git prov gc``: retention rules, tombstones written in one ledger write, dropped logs
marked so they stay dropped, --dry-run and --force, and removal that reaches every clone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import commit_file, git, prov
from factories import make_record

from git_prov import retention
from git_prov.errors import UsageProblem
from git_prov.model.ids import new_run_id
from git_prov.model.record import RunRecord, Tombstone
from git_prov.store.ledger import KIND_LOG, NOTES_REF, OBJECTS_REF, Ledger, object_path
from git_prov.store.merge import merge_objects_trees
from git_prov.store.repo import open_repo
from git_prov.store.trees import lookup_path

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _add_run(
    path: Path,
    *,
    days_ago: float,
    status: str = "ok",
    tags: tuple[str, ...] = (),
    log: bytes | None = None,
    commit: str | None = None,
) -> RunRecord:
    """A run that started ``days_ago`` days before NOW, with a kept stdout log."""
    repo = open_repo(path)
    ledger = Ledger(repo)
    commit = commit or str(repo.head_commit().id)
    started = NOW - timedelta(days=days_ago)
    stdout = ledger.store_object(log) if log is not None else None
    record = make_record(
        commit,
        id=new_run_id(started),
        started=started.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        status=status,
        exit_code=0 if status == "ok" else 1,
        tags=tags,
        stdout=stdout,
    )
    ledger.write([(commit, record)], objects={KIND_LOG: [stdout] if stdout else []}, keep=[commit])
    return record


def _live(path: Path) -> set[str]:
    scan = Ledger(open_repo(path)).scan()
    return {r.id for r in scan.live_runs()}


def _gc(path: Path, *args: str, check: bool = True) -> dict[str, Any]:
    proc = prov(path, "gc", "--json", *args, check=check)
    return json.loads(proc.stdout) if proc.stdout else {}


def _age_args(days: int) -> list[str]:
    # --older-than as a date, so tests do not depend on today's date.
    return ["--older-than", (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")]


def test_dry_run_lists_what_would_go_and_changes_nothing(repo: Path) -> None:
    old = _add_run(repo, days_ago=40, log=b"old log\n")
    new = _add_run(repo, days_ago=1, log=b"new log\n")
    before = git(repo, "rev-parse", NOTES_REF, OBJECTS_REF)
    doc = _gc(repo, *_age_args(30), "--dry-run")
    assert [r["id"] for r in doc["runs"]] == [old.id]
    assert doc["logs"] == [old.stdout] and doc["log_bytes"] == len(b"old log\n")
    assert git(repo, "rev-parse", NOTES_REF, OBJECTS_REF) == before
    assert _live(repo) == {old.id, new.id}
    text = prov(repo, "gc", *_age_args(30), "--dry-run")
    assert f"would remove {old.short_id}" in text.stdout and "dry run" in text.stderr


def test_removal_needs_force_and_rules(repo: Path) -> None:
    old = _add_run(repo, days_ago=40)
    proc = prov(repo, "gc", *_age_args(30), check=False)  # not a terminal: no prompt
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert _live(repo) == {old.id}
    proc = prov(repo, "gc", "--keep-tagged", "--force", check=False)
    assert proc.returncode == 2 and "say which runs" in proc.stderr
    proc = prov(repo, "gc", "--older-than", "soon", "--force", check=False)
    assert proc.returncode == 2 and "30d" in proc.stderr


def test_rules_combine_and_tombstones_hide_runs(repo: Path) -> None:
    old_ok = _add_run(repo, days_ago=40)
    old_failed = _add_run(repo, days_ago=41, status="failed", log=b"traceback\n")
    old_tagged = _add_run(repo, days_ago=42, status="failed", tags=("baseline",))
    recent_failed = _add_run(repo, days_ago=2, status="failed")
    _gc(repo, *_age_args(30), "--failed-only", "--keep-tagged", "--force")
    assert _live(repo) == {old_ok.id, old_tagged.id, recent_failed.id}
    listed = {
        str(r["id"]) for c in json.loads(prov(repo, "log", "--json").stdout) for r in c["runs"]
    }
    assert old_failed.id not in listed
    ledger = Ledger(open_repo(repo))
    stone = ledger.scan().tombstones[old_failed.id]
    assert stone.reason.startswith("gc: ") and "failed" in stone.reason
    # One ledger write: one new notes commit for all the tombstones.
    assert git(repo, "log", "--format=%s", "-1", NOTES_REF) == "git-prov: gc removes 1 runs"
    assert prov(repo, "fsck").returncode == 0


def test_keep_last_keeps_the_newest_runs_of_every_commit(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    a = [_add_run(repo, days_ago=d, commit=first) for d in (5, 4, 3)]
    second = commit_file(repo, "train.py", "print(1)\n")
    b = [_add_run(repo, days_ago=d, commit=second) for d in (2, 1)]
    doc = _gc(repo, "--keep-last", "2", "--force")
    assert [r["id"] for r in doc["runs"]] == [a[0].id]
    assert _live(repo) == {a[1].id, a[2].id, b[0].id, b[1].id}


def test_named_runs_and_a_shared_log_that_another_run_still_needs(repo: Path) -> None:
    shared = b"same output\n"
    one = _add_run(repo, days_ago=3, log=shared)
    two = _add_run(repo, days_ago=2, log=shared)
    doc = _gc(repo, one.short_id, "--force")
    assert doc["tombstones"] == 1 and doc["logs"] == []  # run two still names that log
    assert _live(repo) == {two.id}


def test_logs_only_drops_logs_keeps_runs_and_marks_the_drop(repo: Path) -> None:
    old = _add_run(repo, days_ago=40, log=b"x" * 5000)
    new = _add_run(repo, days_ago=1, log=b"recent\n")
    doc = _gc(repo, "--logs-only", *_age_args(30), "--force")
    assert doc["dropped"] == [old.stdout] and doc["tombstones"] == 0
    assert _live(repo) == {old.id, new.id}
    ledger = Ledger(open_repo(repo))
    tip = ledger.tip(OBJECTS_REF)
    assert tip is not None and old.stdout and new.stdout
    assert lookup_path(ledger.pygit, tip.tree, object_path(KIND_LOG, old.stdout)) is None
    assert lookup_path(ledger.pygit, tip.tree, object_path("drop", old.stdout)) is not None
    assert retention.dropped_logs(ledger) == {old.stdout}
    assert retention.is_dropped(ledger, old.stdout)
    assert not retention.is_dropped(ledger, new.stdout)
    report = json.loads(prov(repo, "fsck", "--json").stdout)
    assert report["ok"] and "log-dropped" in {f["code"] for f in report["findings"]}


def test_a_dropped_log_that_a_merge_brings_back_is_dropped_again(
    repo: Path, tmp_path: Path
) -> None:
    old = _add_run(repo, days_ago=40, log=b"big log\n")
    assert old.stdout
    ledger = Ledger(open_repo(repo))
    before = ledger.tip(OBJECTS_REF)
    assert before is not None
    _gc(repo, "--logs-only", *_age_args(30), "--force")
    after = ledger.tip(OBJECTS_REF)
    assert after is not None
    # A clone that never saw the drop still has the log: the union brings it back…
    union = merge_objects_trees(ledger.pygit, after.tree, before.tree).tree
    assert union is not None
    union_tree = ledger.pygit[union]
    assert isinstance(union_tree, pygit2.Tree)
    assert lookup_path(ledger.pygit, union_tree, object_path(KIND_LOG, old.stdout)) is not None
    # …and without_dropped_logs (for merges) takes it out again: union minus drops.
    pruned = retention.without_dropped_logs(ledger.pygit, union_tree)
    assert pruned == after.tree.id
    # gc without rules drops again what a merge brought back, without --force.
    commit = ledger._commit(union, [after.id, before.id], "simulated merge")
    ledger.pygit.references[OBJECTS_REF].set_target(commit)
    warn = json.loads(prov(repo, "fsck", "--json").stdout)
    assert "dropped-log-present" in {f["code"] for f in warn["findings"]}
    doc = _gc(repo)
    assert doc["dropped"] == [old.stdout]
    assert retention.without_dropped_logs(ledger.pygit, ledger.tip(OBJECTS_REF).tree) == (  # type: ignore[union-attr]
        ledger.tip(OBJECTS_REF).tree.id  # type: ignore[union-attr]
    )


def test_tombstones_reach_other_clones_through_sync(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", str(a))
    commit_file(a, "README.md", "# x\n")
    git(a, "remote", "add", "origin", str(bare))
    git(a, "push", "-q", "origin", "main")
    old = _add_run(a, days_ago=40, log=b"old\n")
    keep = _add_run(a, days_ago=1, log=b"new\n")
    prov(a, "sync")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    prov(b, "sync")
    assert _live(b) == {old.id, keep.id}
    _gc(a, *_age_args(30), "--force")
    prov(a, "sync")
    prov(b, "sync")
    assert _live(b) == {keep.id}
    listed = {str(r["id"]) for c in json.loads(prov(b, "log", "--json").stdout) for r in c["runs"]}
    assert listed == {keep.id}
    assert retention.dropped_logs(Ledger(open_repo(b))) == {old.stdout}
    assert prov(b, "fsck").returncode == 0


def test_parse_age_accepts_durations_and_dates() -> None:
    assert retention.parse_age("30d", NOW) == NOW - timedelta(days=30)
    assert retention.parse_age("1w2d", NOW) == NOW - timedelta(days=9)
    assert retention.parse_age("12h", NOW) == NOW - timedelta(hours=12)
    assert retention.parse_age("2026-01-31T00:00Z", NOW) == datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(UsageProblem):
        retention.parse_age("last tuesday", NOW)


def test_tombstone_lines_are_in_every_note_the_run_is_shown_on(repo: Path) -> None:
    run = _add_run(repo, days_ago=40)
    elsewhere = commit_file(repo, "b.txt", "b\n")
    from git_prov.model.record import Attachment

    ledger = Ledger(open_repo(repo))
    ledger.write(
        [(elsewhere, Attachment(run.id, elsewhere, run.commit, "rebase", "2026-11-26T00:00:00Z"))]
    )
    _gc(repo, run.short_id, "--force")
    for commit in (run.commit, elsewhere):
        entries, _ = ledger.entries_on(commit)
        assert any(isinstance(e, Tombstone) and e.run == run.id for e in entries)


# ---- readers and merges (wired in store/ledger.py, store/merge.py, render.py, cli) ---------


def test_removed_runs_leave_show_and_the_git_log_display(repo: Path) -> None:
    prov(repo, "init", "--no-hooks")
    old = _add_run(repo, days_ago=40)
    keep = _add_run(repo, days_ago=1)
    Ledger(open_repo(repo)).refresh_display()
    assert old.short_id in git(repo, "log", "-1")
    _gc(repo, old.short_id, "--force")
    proc = prov(repo, "show", old.short_id, check=False)
    assert proc.returncode == 6 and "was removed" in proc.stderr
    shown = git(repo, "log", "-1")
    assert old.short_id not in shown and keep.short_id in shown


def test_show_says_a_log_was_dropped(repo: Path) -> None:
    old = _add_run(repo, days_ago=40, log=b"old\n")
    _gc(repo, "--logs-only", old.short_id, "--force")
    proc = prov(repo, "show", "--log", "stdout", old.short_id, check=False)
    assert proc.returncode == 6 and "dropped" in proc.stderr
    assert "dropped by git prov gc" in prov(repo, "show", old.short_id).stdout


def test_a_dropped_log_stays_dropped_when_a_clone_that_has_it_syncs(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", str(a))
    commit_file(a, "README.md", "# x\n")
    git(a, "remote", "add", "origin", str(bare))
    git(a, "push", "-q", "origin", "main")
    old = _add_run(a, days_ago=40, log=b"old\n")
    prov(a, "sync")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    prov(b, "sync")
    _add_run(b, days_ago=1, log=b"b's own\n")  # both ledger refs diverge: a real merge
    _gc(a, "--logs-only", old.short_id, "--force")
    prov(a, "sync")
    prov(b, "sync")
    prov(a, "sync")
    for clone in (a, b):
        doc = json.loads(prov(clone, "fsck", "--json").stdout)
        codes = {f["code"] for f in doc["findings"]}
        assert "dropped-log-present" not in codes and "log-dropped" in codes, clone.name

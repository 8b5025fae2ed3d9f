"""``git prov gc`` and metric histories: the history blob of a removed run is dropped (a
``drop-metrics/`` marker) unless a remaining run names the same blob, stays dropped after a
sync with a clone that still has it, and readers (show, metrics, report, fsck) say "dropped
by git prov gc" instead of failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov

import git_prov
from git_prov.model.history import decode_history
from git_prov.store.drops import HISTORY_DROP_DIR, is_history_dropped
from git_prov.store.ledger import KIND_METRICS, OBJECTS_REF, Ledger, object_path
from git_prov.store.repo import open_repo
from git_prov.store.trees import lookup_path

# No time column: the same file gives the same blob, so two runs share one.
CSV = "step,loss\n0,1.0\n1,0.5\n2,0.25\n"


def _record(path: Path, command: str) -> dict[str, Any]:
    out = prov(path, "record", "--metrics-file", "log.csv", "--json", "--", command)
    return dict(json.loads(out.stdout))


def _paths(path: Path, oid: str) -> tuple[bool, bool]:
    """(the objects tree holds metrics/<oid>, it has a drop-metrics/ marker for it)."""
    ledger = Ledger(open_repo(path))
    tip = ledger.tip(OBJECTS_REF)
    assert tip is not None
    found = [
        lookup_path(ledger.pygit, tip.tree, object_path(d, oid)) is not None
        for d in (KIND_METRICS, HISTORY_DROP_DIR)
    ]
    return found[0], found[1]


def _gc(path: Path, *args: str) -> dict[str, Any]:
    return dict(json.loads(prov(path, "gc", "--json", *args).stdout))


@pytest.fixture
def here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    commit_file(repo, "log.csv", CSV)
    return repo


def test_gc_drops_a_removed_runs_history_unless_another_run_names_it(here: Path) -> None:
    first, second = _record(here, "train a"), _record(here, "train b")
    shared = first["history"]
    assert shared and second["history"] == shared
    with git_prov.run(command="python own.py") as own:
        own.log_metric("acc", 0.5, step=0)
    own_history = json.loads(prov(here, "show", own.id, "--json").stdout)["history"]
    assert own_history and own_history != shared

    # The shared blob stays while the second run names it.
    doc = _gc(here, first["id"], "--force")
    assert doc["tombstones"] == 1 and doc["histories"] == [] and doc["dropped_histories"] == []
    assert _paths(here, shared) == (True, False)

    dry = _gc(here, own.id, "--dry-run")
    assert dry["histories"] == [own_history] and _paths(here, own_history) == (True, False)
    shown = prov(here, "gc", own.id, "--dry-run")
    assert "would remove 1 run (and 1 metric history)" in shown.stderr
    doc = _gc(here, own.id, "--force")
    assert doc["dropped_histories"] == [own_history]
    assert _paths(here, own_history) == (False, True)

    doc = _gc(here, second["id"], "--force")
    assert doc["dropped_histories"] == [shared] and _paths(here, shared) == (False, True)
    findings = json.loads(prov(here, "fsck", "--json").stdout)["findings"]
    dropped = [f for f in findings if f["code"] == "history-dropped"]
    assert {f["object"] for f in dropped} == {shared, own_history}
    assert {f["severity"] for f in dropped} == {"info"}
    assert prov(here, "fsck").returncode == 0

    # The same points recorded again: stored under another id (the run in the header),
    # so no merge drops them with the old blob.
    third = _record(here, "train c")
    assert third["history"] not in (None, shared) and _paths(here, third["history"])[0]
    blob = Ledger(open_repo(here)).read_object(third["history"], "metric history")
    assert json.loads(blob.split(b"\n")[1])["run"] == third["id"]
    assert list(decode_history(blob)["loss"].values) == [1.0, 0.5, 0.25]
    assert not is_history_dropped(Ledger(open_repo(here)), third["history"])
    assert "dropped" not in prov(here, "metrics", third["id"][-8:]).stdout

    # A dropped history back beside its marker (as an older git-prov's merge leaves it):
    # fsck warns, and gc without rules drops it again (no run names it; no --force).
    Ledger(open_repo(here)).write([], objects={KIND_METRICS: [own_history]})
    assert _paths(here, own_history) == (True, True)
    findings = json.loads(prov(here, "fsck", "--json").stdout)["findings"]
    assert [f["object"] for f in findings if f["code"] == "dropped-history-present"] == [
        own_history
    ]
    again = prov(here, "gc")
    assert "dropped again 1 metric histories" in again.stdout
    assert _paths(here, own_history) == (False, True)


def test_a_dropped_history_stays_dropped_after_sync_and_readers_say_so(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", str(a))
    commit_file(a, "log.csv", CSV)
    git(a, "remote", "add", "origin", str(bare))
    git(a, "push", "-q", "origin", "main")
    old = _record(a, "train old")
    prov(a, "sync")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    prov(b, "sync")
    # b records the same points before it hears of the drop (both objects refs diverge:
    # a real merge), then a removes the old run.
    mine = _record(b, "train mine")
    assert mine["history"] == old["history"]
    doc = _gc(a, old["id"], "--force")
    assert doc["dropped_histories"] == [old["history"]]
    prov(a, "sync")
    prov(b, "sync")
    prov(a, "sync")
    for clone in (a, b):
        assert _paths(clone, old["history"]) == (False, True), clone.name  # not resurrected

    # b's run names the blob the merge dropped: readers say so, none fails.
    short = mine["id"][-8:]
    shown = prov(b, "show", short).stdout
    assert "history dropped by git prov gc" in shown and "loss 3 points" in shown
    metrics = prov(b, "metrics", short)
    assert "metric history dropped by git prov gc" in metrics.stdout
    [doc_run] = json.loads(prov(b, "metrics", short, "--json").stdout)
    assert doc_run["history_dropped"] is True and doc_run["metrics"] == {}
    html = b / "report.html"
    prov(b, "report", "-o", str(html))
    assert f"run {mine['id']}: metric history dropped by git prov gc" in html.read_text()
    findings = json.loads(prov(b, "fsck", "--json").stdout)["findings"]
    assert [f["severity"] for f in findings if f["code"] == "history-dropped"] == ["info"]
    assert "dropped-history-present" not in {f["code"] for f in findings}

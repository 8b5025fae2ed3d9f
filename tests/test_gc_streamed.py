"""``git prov gc`` planned without a whole-ledger scan (issue #20): the runs chosen from the
query index, what they name asked of the notes streamed once — the same plan as the scan
gives, on ledgers with conflicts, copies, attachments, tombstones, tags and shared logs and
histories. And the two log follow-ups: a new run whose log has a dropped log's bytes keeps
it (the run id in the blob's header), and gc does not drop again a log a live run put back.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import commit_file, prov
from factories import make_record

from git_prov import retention
from git_prov.model.ids import new_run_id
from git_prov.model.logs import log_blob, log_bytes
from git_prov.model.record import Attachment, RunRecord, Tombstone
from git_prov.retention import RetentionRules, plan_gc
from git_prov.store.drops import DROP_DIR, without_dropped_logs
from git_prov.store.ledger import KIND_LOG, KIND_METRICS, OBJECTS_REF, Ledger, object_path
from git_prov.store.repo import open_repo
from git_prov.store.trees import lookup_path

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _run(commit: str, days_ago: float, **changes: object) -> RunRecord:
    started = NOW - timedelta(days=days_ago)
    return make_record(
        commit,
        id=new_run_id(started),
        started=started.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        **changes,
    )


@pytest.fixture
def mixed(repo: Path) -> Path:
    """A ledger with every shape gc weighs: runs of three commits and several ages, failed
    and tagged ones, a log and a history two runs share, a run in conflict (a tagged copy
    on another commit), an identical copy, an attachment, a removed run, and a dropped log
    a merge brought back."""
    c1 = commit_file(repo, "a.txt", "a\n")
    c2 = commit_file(repo, "b.txt", "b\n")
    c3 = commit_file(repo, "c.txt", "c\n")
    ledger = Ledger(open_repo(repo))
    shared_log = ledger.store_object(b"shared log\n")
    own_log = ledger.store_object(b"own log\n")
    err_log = ledger.store_object(b"traceback\n")
    history = ledger.store_object(b"git-prov history 1\n{}\n")
    other_history = ledger.store_object(b"git-prov history 1\n{} \n")
    runs = [
        _run(c1, 50, stdout=shared_log, history=history),
        _run(c1, 45, stdout=own_log, status="failed", exit_code=1, stderr=err_log),
        _run(c1, 40, tags=("best",), stdout=shared_log),
        _run(c2, 35, history=history),
        _run(c2, 20, status="killed", exit_code=-9, history=other_history),
        _run(c3, 10),
        _run(c3, 5, status="failed", exit_code=2),
    ]
    entries: list[tuple[str, object]] = [(r.commit, r) for r in runs]
    conflicted = runs[3]
    copy = replace(conflicted, tags=("keep",), message="other copy")
    entries.append((c3, copy))  # a different record under the same id: a conflict
    entries.append((c2, runs[0]))  # an identical copy on another commit
    entries.append(
        (c3, Attachment(run=runs[1].id, commit=c3, original=c1, how="amend", at="2026-11-01"))
    )
    removed = _run(c2, 60, stdout=err_log)
    entries.append((c2, removed))
    entries.append((c2, Tombstone(run=removed.id, at="2026-11-02T00:00:00.000Z", reason="x")))
    ledger.write(
        entries,  # type: ignore[arg-type]
        objects={KIND_LOG: [shared_log, own_log, err_log], KIND_METRICS: [history, other_history]},
        keep=[c1, c2, c3],
    )
    # A log dropped before, then brought back by a merge of an older git-prov.
    back = ledger.store_object(b"came back\n")
    ledger.write([(c3, _run(c3, 70, stdout=back))], objects={KIND_LOG: [back]}, keep=[c3])
    before = ledger.tip(OBJECTS_REF)
    assert before is not None
    retention.gc(ledger.repo, RetentionRules(older_than=NOW - timedelta(days=65)))
    after = ledger.tip(OBJECTS_REF)
    assert after is not None
    from git_prov.store.merge import merge_objects_trees

    union = merge_objects_trees(ledger.pygit, after.tree, before.tree).tree
    assert union is not None
    merged = ledger._commit(union, [after.id, before.id], "an older git-prov's merge")
    ledger.pygit.references[OBJECTS_REF].set_target(merged)
    return repo


RULES = [
    RetentionRules(),
    RetentionRules(older_than=NOW - timedelta(days=30)),
    RetentionRules(older_than=NOW - timedelta(days=30), keep_tagged=True),
    RetentionRules(failed_only=True),
    RetentionRules(keep_last=1),
    RetentionRules(keep_last=0, keep_tagged=True),
    RetentionRules(older_than=NOW - timedelta(days=42), failed_only=True),
    RetentionRules(older_than=NOW),
]


@pytest.mark.parametrize("logs_only", [False, True])
def test_the_streamed_plan_is_the_scans_plan(mixed: Path, logs_only: bool) -> None:
    ledger = Ledger(open_repo(mixed))
    scan = ledger.scan()
    live = scan.live_runs()
    named = RetentionRules(runs=(live[0].id, live[3].id))
    for rules in [*RULES, named]:
        expected = plan_gc(ledger, rules, logs_only=logs_only, scan=scan)
        assert plan_gc(ledger, rules, logs_only=logs_only) == expected, rules
    everything = plan_gc(ledger, RetentionRules(older_than=NOW), logs_only=logs_only)
    assert everything.kept == 0 and (logs_only or len(everything.runs) == len(live))
    assert everything.logs and (logs_only or everything.histories)


def _kept_manifest(ledger: Ledger, *files: tuple[str, bytes, bool]) -> str:
    """A data manifest listing ``files`` (path, bytes, kept by git-prov or not)."""
    import hashlib

    from git_prov.model.manifest import KEPT_GIT, DataEntry, DataManifest

    entries = [
        DataEntry(path, len(data), "sha256:" + hashlib.sha256(data).hexdigest(),
                  kept=KEPT_GIT if kept else None)
        for path, data, kept in files
    ]  # fmt: skip
    return ledger.store_object(DataManifest.build([p for p, _, _ in files], entries).to_toml())


@pytest.fixture
def kept_mixed(mixed: Path) -> Path:
    """``mixed`` with kept data: a path kept by several runs (newest last), bytes two runs
    share, an input manifest two runs name, a manifest only a conflicting copy names, files
    not kept, and a removed run's kept bytes."""
    ledger = Ledger(open_repo(mixed))
    c1, c2, c3 = (c for c, _ in sorted(ledger.scan().by_commit.items()))
    shared_in = _kept_manifest(ledger, ("data/in.csv", b"in", True), ("data/big", b"x", False))
    versions = [_kept_manifest(ledger, ("out/model", b"v%d" % n, True)) for n in range(4)]
    same = _kept_manifest(ledger, ("out/other", b"v1", True))  # the bytes of versions[1]
    only_copy = _kept_manifest(ledger, ("out/copy", b"copy", True))
    runs = [
        _run(c1, 33, inputs=shared_in, outputs=versions[0]),
        _run(c2, 25, outputs=versions[1], status="failed", exit_code=1),
        _run(c2, 15, inputs=shared_in, outputs=versions[2], tags=("best",)),
        _run(c3, 8, outputs=versions[3]),
        _run(c3, 3, outputs=same),
    ]
    entries: list[tuple[str, object]] = [(r.commit, r) for r in runs]
    entries.append((c1, replace(runs[3], outputs=only_copy, message="a copy")))
    removed = _run(c1, 2, outputs=_kept_manifest(ledger, ("out/gone", b"gone", True)))
    entries += [(c1, removed), (c1, Tombstone(run=removed.id, at="2026-11-20", reason="x"))]
    ledger.write(entries)  # type: ignore[arg-type]
    return mixed


def test_the_data_only_plan_from_the_index_is_the_scans_plan(kept_mixed: Path) -> None:
    ledger = Ledger(open_repo(kept_mixed))
    scan = ledger.scan()
    live = scan.live_runs()
    named = RetentionRules(runs=(live[0].id, live[-1].id, live[-4].id))
    chose = 0
    for rules in [*RULES, named, RetentionRules(keep_last=2), RetentionRules(keep_last=0)]:
        expected = plan_gc(ledger, rules, scan=scan, data_only=True)
        assert plan_gc(ledger, rules, data_only=True) == expected, rules
        chose += bool(expected.data and expected.data.digests)
    assert chose >= 5


def test_gc_on_the_command_line_plans_once_through_the_index(mixed: Path) -> None:
    """The CLI's plan (streamed) and its JSON are those of the scan's plan."""
    ledger = Ledger(open_repo(mixed))
    cutoff = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    expected = plan_gc(
        ledger, RetentionRules(older_than=NOW - timedelta(days=30)), scan=ledger.scan()
    )
    doc = json.loads(prov(mixed, "gc", "--json", "--dry-run", "--older-than", cutoff).stdout)
    assert doc["runs"] == expected.to_json_dict()["runs"]
    assert doc["logs"] == list(expected.logs)
    assert doc["runs_kept"] == expected.kept


def _record_echo(path: Path, text: str) -> dict[str, object]:
    prov(path, "run", "--", "printf", text)
    runs = json.loads(prov(path, "find", "--json").stdout)
    return dict(max(runs, key=lambda r: r["id"]))


def test_a_new_runs_log_with_a_dropped_logs_bytes_is_its_own(repo: Path) -> None:
    first = _record_echo(repo, "same output\n")
    prov(repo, "gc", "--force", str(first["id"]))
    ledger = Ledger(open_repo(repo))
    dropped = str(first["stdout"])
    tip = ledger.tip(OBJECTS_REF)
    assert tip is not None
    assert lookup_path(ledger.pygit, tip.tree, object_path(DROP_DIR, dropped)) is not None
    second = _record_echo(repo, "same output\n")
    assert second["stdout"] != dropped  # a blob of its own, no marker names it
    shown = prov(repo, "show", str(second["id"]), "--log", "stdout").stdout
    assert shown == "same output\n"
    tip = ledger.tip(OBJECTS_REF)
    assert tip is not None
    # Every merge takes the marked paths out: this run's log stays.
    assert without_dropped_logs(ledger.pygit, tip.tree) == tip.tree.id
    stored = ledger.read_object(str(second["stdout"]), "log")
    assert stored == log_blob(b"same output\n", str(second["id"]))
    assert git_prov_log(repo, str(second["id"])) == b"same output\n"
    # A third run, another output: stored bare, as before.
    third = _record_echo(repo, "other\n")
    assert ledger.read_object(str(third["stdout"]), "log") == b"other\n"


def git_prov_log(path: Path, run: str) -> bytes | None:
    import git_prov

    return git_prov.Ledger(path).run(run).log("stdout")


def test_a_log_that_begins_like_a_header_keeps_its_bytes(repo: Path) -> None:
    text = "git-prov log 1 run x\nmore\n"
    run = _record_echo(repo, text)
    assert prov(repo, "show", str(run["id"]), "--log", "stdout").stdout == text
    blob = Ledger(open_repo(repo)).read_object(str(run["stdout"]), "log")
    assert blob.startswith(b"git-prov log 1 run " + str(run["id"]).encode() + b"\n")
    assert log_bytes(blob, str(run["id"])) == text.encode()
    assert log_bytes(blob, "another run") == blob  # only the run's own header goes


def test_gc_does_not_drop_again_a_log_a_live_run_put_back(repo: Path) -> None:
    """An older git-prov recording a run with a dropped log's bytes put ``log/…`` back
    beside the marker; that run is live and names it, so gc leaves it."""
    ledger = Ledger(open_repo(repo))
    commit = str(ledger.repo.head_commit().id)
    log = ledger.store_object(b"hello\n")
    old = _run(commit, 40, stdout=log)
    ledger.write([(commit, old)], objects={KIND_LOG: [log]}, keep=[commit])
    retention.gc(ledger.repo, RetentionRules(runs=(old.id,)))
    new = _run(commit, 1, stdout=log)  # (no header: as an older git-prov wrote it)
    ledger.write([(commit, new)], objects={KIND_LOG: [log]}, keep=[commit])
    for scan in (None, ledger.scan()):
        assert plan_gc(ledger, RetentionRules(), scan=scan).redrop == ()
    proc = prov(repo, "gc", "--json", check=False)
    assert proc.returncode == 2  # nothing to drop again: gc asks for rules
    tip = ledger.tip(OBJECTS_REF)
    assert tip is not None
    assert lookup_path(ledger.pygit, tip.tree, object_path(KIND_LOG, log)) is not None


def test_gc_json_written_in_parts_is_json_dumps(capsys: pytest.CaptureFixture[str]) -> None:
    """gc --json writes its document 64 KiB at a time (a plan of 100,000 runs is never one
    string): the same bytes as one json.dumps, across part boundaries, escapes included."""
    from git_prov.cli.trust import _echo_json

    runs = [
        {"id": f"run{i:06d}", "command": f"python train.py --seed {i} \x1b[31m\u2028é", "tags": []}
        for i in range(3000)
    ]
    doc = {"runs": runs, "logs": ["a" * 40] * 500, "dry_run": True, "runs_kept": 0}
    _echo_json(doc)
    out = capsys.readouterr().out
    assert len(out) > 3 * (1 << 16)
    assert out == json.dumps(doc, indent=2, sort_keys=True) + "\n"

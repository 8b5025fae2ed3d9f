"""Runs found through the index equal what a full read of the ledger (Ledger.scan) finds.

`git prov show`, `log`, `diff`, `check` and the API find runs through the index; if the
index and the scan disagreed on a run's record, the commits it is shown on or its
attachments, a user would see different answers from `show` and from `find`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov
from factories import make_record
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from git_prov.errors import NotFound
from git_prov.model.record import Attachment, Tombstone
from git_prov.query import find_json
from git_prov.query import located as loc
from git_prov.query.index import RepoPaths, open_index
from git_prov.render import record_json
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo

RUN_IDS = [f"2026010{i}T000000.000Z-{i:08x}" for i in range(1, 6)]


def _expected(ledger: Ledger) -> tuple[list[str], dict[str, object], dict[str, list[object]]]:
    scan = ledger.scan()
    live = {r.id: r for r in scan.live_runs()}
    on = {c: ledger.runs_on(c, scan) for c in scan.by_commit}
    ids = sorted({*RUN_IDS, *scan.runs, *scan.tombstones})
    return ids, live, {c: runs for c, runs in on.items() if runs}


def _without_conflicts(runs: dict[Any, Any]) -> dict[Any, Any]:
    return {k: replace(r, conflict=None) for k, r in runs.items()}


def _check_agrees(repo: Path) -> None:
    ledger = Ledger(open_repo(repo))
    ids, live, on = _expected(ledger)
    scan = ledger.scan()
    with open_index(RepoPaths.discover(repo)) as index:
        found_runs = loc.located(index, ids)
        # The index also says which runs are in conflict (the scan lists them apart);
        # with unsigned copies it shows the same (first) copy the scan does.
        in_conflict = {i for i, r in found_runs.items() if r.conflict is not None}
        assert in_conflict == set(scan.conflicts) & set(live)
        for i in in_conflict:
            conflict = found_runs[i].conflict
            assert conflict is not None and conflict.shown == "first"
            shown = sorted(json.dumps(c.record.to_json_dict()) for c in conflict.copies)
            stored = {json.dumps(r.to_json_dict()) for r in [live[i].record, *scan.conflicts[i]]}
            assert shown == sorted(stored)
        assert _without_conflicts(found_runs) == live
        # and `find --json` (index.record_jsons) says what `show --json` says
        assert index.record_jsons(ids) == {i: record_json(r) for i, r in found_runs.items()}
        # and streamed a part at a time (find --json of many runs), in the order asked
        order = [*reversed(ids), ids[0]]
        encode = json.JSONEncoder(sort_keys=True).encode
        streamed = list(find_json.records_in_order(index, order, encode, part=2))
        expected_lines = [encode(record_json(found_runs[i])) for i in order if i in found_runs]
        assert streamed == expected_lines
        # (and a few of many: read through temp.wanted, not a pass over every run)
        for few in (ids[:1], ids[-2:]):
            expected_few = [encode(record_json(found_runs[i])) for i in few if i in found_runs]
            assert list(find_json.records_in_order(index, few, encode)) == expected_few
        found_on = loc.runs_on(index, sorted(loc.annotated(index)))
        assert {
            c: list(_without_conflicts(dict(enumerate(rs))).values()) for c, rs in found_on.items()
        } == on
        for run_id in ids:
            try:
                expected: object = ledger.resolve_run(run_id[-8:], scan)
            except NotFound as exc:
                expected = str(exc)
            try:
                found: object = replace(loc.resolve(index, run_id[-8:]), conflict=None)
            except NotFound as exc:
                found = str(exc)
            assert found == expected


# One step of a ledger's life: a record (two contents per id: a conflict), an attachment,
# a tombstone, or a rewind of the notes ref to an earlier tip.
STEP = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 4), st.integers(0, 3), st.integers(0, 1)),
    st.tuples(st.just("attach"), st.integers(0, 4), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("tombstone"), st.integers(0, 4), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("rewind"), st.just(0), st.just(0), st.just(0)),
)


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("located")
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "T")
    commits = [commit_file(path, f"f{i}.txt", f"{i}\n") for i in range(4)]
    return path, commits


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.lists(STEP, min_size=1, max_size=3), min_size=1, max_size=6))
# A run attached to two commits in one write: attachments listed in note order, not blob order
@example(steps=[[("record", 0, 0, 0), ("attach", 0, 0, 1), ("attach", 0, 1, 1)]])
@example(steps=[[("record", 0, 0, 0), ("attach", 0, 2, 1), ("attach", 0, 3, 1)]])
def test_index_lookups_agree_with_a_full_scan(
    shared_repo: tuple[Path, list[str]], steps: list[list[tuple[str, int, int, int]]]
) -> None:
    repo, commits = shared_repo
    git(repo, "update-ref", "-d", NOTES_REF)
    for suffix in ("", "-wal", "-shm"):
        (repo / ".git" / "prov" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    ledger = Ledger(open_repo(repo))
    tips: list[str] = []
    for batch in steps:  # each batch is one ledger commit; the index catches up after it
        entries: list[tuple[str, object]] = []
        for action, run, at, extra in batch:
            run_id, commit = RUN_IDS[run], commits[at]
            if action == "record":
                entries.append((commit, make_record(commit, id=run_id, metrics={"acc": extra})))
            elif action == "attach":
                original = commits[extra]
                entries.append(
                    (commit, Attachment(run_id, commit, original, "rebase", "2026-02-01T00:00:00Z"))
                )
            elif action == "tombstone":
                entries.append((commit, Tombstone(run_id, "2026-03-01T00:00:00Z", "old")))
            elif tips:
                git(repo, "update-ref", NOTES_REF, tips[len(tips) // 2])
        if entries:
            ledger.write(entries)  # type: ignore[arg-type]
        tip = git(repo, "for-each-ref", "--format=%(objectname)", NOTES_REF)
        if tip:
            tips.append(tip)
        _check_agrees(repo)
    # and a full rebuild gives the same as the incremental updates did, in one process
    # and in parts parsed by forked helpers (each note its own part)
    for jobs in ("1", "4"):
        for suffix in ("", "-wal", "-shm"):
            (repo / ".git" / "prov" / f"index.sqlite{suffix}").unlink(missing_ok=True)
        os.environ["GIT_PROV_INDEX_JOBS"] = jobs
        try:
            _check_agrees(repo)
        finally:
            del os.environ["GIT_PROV_INDEX_JOBS"]


def test_show_and_log_agree_after_amends_and_a_rebase(repo: Path) -> None:
    """What `show` and `log` print comes from the index, and equals the scan's view."""
    prov(repo, "init")
    commit_file(repo, "train.py", "print(1)\n")
    first = prov(repo, "record", "--json", "--command", "python train.py").stdout
    (repo / "train.py").write_text("print(2)\n")
    git(repo, "commit", "-q", "-a", "--amend", "-m", "amended")
    git(repo, "commit", "-q", "--amend", "-m", "amended again")
    commit_file(repo, "other.py", "x\n")
    prov(repo, "record", "--command", "python other.py")
    git(repo, "commit", "-q", "--amend", "-m", "other amended")
    _check_agrees(repo)
    run = json.loads(first)
    shown = json.loads(prov(repo, "show", "--json", run["id"][-8:]).stdout)
    scan_view = Ledger(open_repo(repo)).scan().runs[run["id"]]
    assert shown["shown_on"] == list(scan_view.shown_on)
    assert len(shown["attachments"]) == len(scan_view.attachments) == 2
    logged = json.loads(prov(repo, "log", "--json").stdout)
    ledger = Ledger(open_repo(repo))
    scan = ledger.scan()
    history = git(repo, "rev-list", "HEAD").split()
    expected = {c: [r.id for r in ledger.runs_on(c, scan)] for c in history}
    assert {c["commit"]: [r["id"] for r in c["runs"]] for c in logged} == {
        c: ids for c, ids in expected.items() if ids
    }
    assert len(logged) == 2


def test_log_streams_into_the_pager_and_stops_quietly_when_it_quits(
    repo: Path, tmp_path: Path
) -> None:
    """`git prov log` on a terminal pipes into git's pager as it goes; quitting the pager
    early (a long history) ends it with status 0 and no traceback, as for git log."""
    import os
    import pty
    import subprocess
    import sys

    marks = "".join(
        f"commit refs/heads/main\nmark :{i}\ncommitter T <t@example.com> {1700000000 + i} +0000\n"
        f"data 7\nstep{i:03d}\n" + ("from refs/heads/main^0\n" if i == 1 else "") + "\n"
        for i in range(1, 401)
    )
    git(repo, "fast-import", "--quiet", input=marks)
    commits = git(repo, "rev-list", "main").split()
    ledger = Ledger(open_repo(repo))
    ledger.write([(c, make_record(c)) for c in commits])
    out = tmp_path / "paged.txt"
    env = {**os.environ, "GIT_PAGER": f"head -n 3 > {out}"}
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "git_prov", "--color", "never", "log"],
            cwd=repo, stdout=secondary, stderr=subprocess.PIPE, env=env, timeout=120,
        )  # fmt: skip
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    paged = out.read_text().splitlines()
    assert paged[0] == f"commit {commits[0]} (HEAD -> main)" and paged[1] == "    step400"


def test_log_n_stops_git_log_once_it_has_its_commits(repo: Path, tmp_path: Path) -> None:
    """`log -n 1` of a long history reads git log's output as git walks and stops git
    once the commit is shown (git's trace2 has no exit for that git log); the whole log
    lets git finish. The runs listed are the same either way."""
    import os
    import subprocess
    import sys

    marks = "".join(
        f"commit refs/heads/main\nmark :{i}\ncommitter T <t@example.com> {1700000000 + i} +0000\n"
        f"data 8\nstep{i:04d}\n" + ("from refs/heads/main^0\n" if i == 1 else "") + "\n"
        for i in range(1, 5001)
    )  # (5000 commits: git log's output is far more than a pipe holds)
    git(repo, "fast-import", "--quiet", input=marks)
    commits = git(repo, "rev-list", "main").split()
    Ledger(open_repo(repo)).write([(c, make_record(c)) for c in (commits[0], commits[-1])])

    def logged(*args: str) -> tuple[list[str], bool]:
        trace = tmp_path / f"trace{len(args)}.json"
        env = {**os.environ, "GIT_TRACE2_EVENT": str(trace)}
        done = subprocess.run(
            [sys.executable, "-m", "git_prov", "log", "--json", *args],
            cwd=repo, capture_output=True, text=True, env=env, timeout=120, check=True,
        )  # fmt: skip
        events = [json.loads(line) for line in trace.read_text().splitlines()]
        logs = {e["sid"] for e in events if e["event"] == "cmd_name" and e["name"] == "log"}
        assert len(logs) == 1
        exited = any(e["event"] == "exit" and e["sid"] in logs for e in events)
        return [c["commit"] for c in json.loads(done.stdout)], exited

    assert logged() == ([commits[0], commits[-1]], True)
    assert logged("-n", "1") == ([commits[0]], False)


def test_a_missing_note_blob_is_named_not_hidden(repo: Path) -> None:
    """A note blob lost from the object store (a broken copy of a repository): show and
    log say which note cannot be read, whether the index was built before or after."""
    head = git(repo, "rev-parse", "HEAD")
    record = make_record(head)
    Ledger(open_repo(repo)).write([(head, record)])
    assert prov(repo, "show", record.short_id).returncode == 0  # the index is built
    blob = git(repo, "notes", "--ref=prov", "list", "HEAD")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()

    fresh_index = prov(repo, "show", record.short_id, check=False)
    assert fresh_index.returncode == 9  # a corrupt ledger (docs/cli.md)
    assert f"the note on {head[:12]} that holds run {record.id} cannot be read" in (
        fresh_index.stderr
    )
    assert "Traceback" not in fresh_index.stderr

    for suffix in ("", "-wal", "-shm"):
        (repo / ".git" / "prov" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    rebuilt = prov(repo, "show", record.short_id, check=False)
    assert rebuilt.returncode == 6
    assert f"the note on {head[:12]}: note blob is missing" in rebuilt.stderr
    logged = prov(repo, "log")
    assert "note blob is missing" in logged.stderr and logged.stdout == ""

"""Issue #20 at 100,000 runs: the bounded paths give what the whole-ledger computations give.

tests/test_million.py checks each bounded path on 2,400 runs with its bound lowered; this
checks them at their real bounds on 100,000 runs on 10,000 commits (bench/ledger_factory.py,
built once), with the hand-made records of that file's ledger (two failed runs, a run whose
environment is not kept, a copy, a conflicting copy, a line that is not a record) and three
orphaned runs: the report's default page and totals, fsck's findings, remap's dry run and
the run counts of push, fetch and sync. Slow (the whole-ledger reads it compares with take
most of it): marked slow, run in CI.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.test_million import make_big_ledger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from ledger_factory import make_run

from git_prov.model.record import RunRecord
from git_prov.report import MAX_SAMPLE_RUNS, MAX_TABLE_RUNS, build_report
from git_prov.store.ledger import NOTES_REF, Ledger, LedgerScan
from git_prov.store.repo import open_repo

pytestmark = pytest.mark.slow

RUNS, COMMITS = 100_000, 10_000
HAND_MADE = 3 + 3 + 1  # failed late, failed early, unkept; three orphans; one on no commit
ZERO = "0" * 40  # (a run's id does not depend on its commit)


@pytest.fixture(scope="session")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "repo"
    ledger, head = make_big_ledger(path, RUNS, COMMITS)
    # runs on a branch deleted since, and on a commit this repository never had
    git(path, "checkout", "-q", "-b", "side")
    side = []
    for i in range(3):
        git(path, "commit", "-q", "--allow-empty", "-m", f"side {i}")
        side.append(git(path, "rev-parse", "HEAD").strip())
    git(path, "checkout", "-q", "main")
    git(path, "branch", "-q", "-D", "side")
    runs = [make_run(c, RUNS + 10 + i) for i, c in enumerate(side)]
    gone = make_run("cd" * 20, RUNS + 20)
    ledger.write([*((r.commit, r) for r in runs), (gone.commit, gone), (head, runs[0])])
    return path


@pytest.fixture(scope="session")
def whole(huge: Path) -> LedgerScan:
    """The whole ledger read at once: what every bounded path is compared with."""
    return Ledger(open_repo(huge)).scan()


def test_the_default_report_page_is_the_whole_report_on_its_runs(
    huge: Path, whole: LedgerScan
) -> None:
    repo = open_repo(huge)
    page = build_report(repo)  # the default page: MAX_TABLE_RUNS rows of MAX_SAMPLE_RUNS
    full = build_report(repo, scan=whole, max_runs=None)
    assert page.sampled and not full.sampled
    assert page.total_runs == full.total_runs == len(full.every_run)
    assert len(page.every_run) == MAX_SAMPLE_RUNS
    newest = [v.id for v in full.runs[:MAX_SAMPLE_RUNS]]
    assert sorted(page.every_run) == sorted(newest)
    assert [v.record for v in page.runs] == [v.record for v in full.runs[:MAX_TABLE_RUNS]]
    totals = page.totals
    assert totals is not None
    assert totals.runs == len(full.every_run)
    assert totals.commits == len({v.record.commit for v in full.every_run.values()})
    assert totals.not_ok == 2 == sum(v.record.status != "ok" for v in full.every_run.values())
    chosen = set(newest)
    assert page.trends.keys() == full.trends.keys()
    for name, series in full.trends.items():
        assert page.trends[name] == [(rid, x) for rid, x in series if rid in chosen]
    assert page.anomalies == [a for a in full.anomalies if a.run is None or a.run in chosen]
    assert page.mismatches == full.mismatches
    assert page.metric_names == full.metric_names


def test_fsck_streams_and_finds_what_a_whole_read_finds(huge: Path, whole: LedgerScan) -> None:
    from git_prov.fsck import fsck

    repo = open_repo(huge)
    report = fsck(repo)
    assert report.runs == len(whole.runs) == RUNS + HAND_MADE
    found = [(f.severity, f.code, f.run) for f in report.findings]
    (conflicted,) = whole.conflicts
    unkept, gone = make_run(ZERO, RUNS + 6).id, make_run(ZERO, RUNS + 20).id
    # what tests/test_million.py's small ledger gives, and what the orphans add
    assert found == [
        ("error", "bad-line", None),
        ("warning", "note-on-missing-commit", None),
        ("error", "conflict", conflicted),
        ("warning", "object-not-in-tree", conflicted),
        ("error", "bad-manifest", conflicted),
        ("error", "missing-object", unkept),
        *(("warning", "commit-not-kept", make_run(ZERO, RUNS + 10 + i).id) for i in range(3)),
        ("error", "missing-commit", gone),
    ]


def test_remap_finds_the_orphans_a_whole_read_finds(huge: Path, whole: LedgerScan) -> None:
    from git_prov.rewrite import remap
    from git_prov.rewrite.orphans import index_orphans, scan_orphans

    repo = open_repo(huge)
    quick = index_orphans(repo, Ledger(repo))
    assert quick is not None
    found, _ = quick
    every = scan_orphans(repo, whole)
    assert found.runs == every.runs and len(found.runs) == 2  # one side run is also on main
    assert found.missing == every.missing and len(found.missing) == 1
    assert found.unreachable == every.unreachable and found.present == every.present
    first = remap(repo, dry_run=True)
    assert first.dry_run and not first.up_to_date
    again = remap(repo, dry_run=True)  # nothing moved: the watermark answers, the same
    assert again.up_to_date and dataclasses.replace(again, up_to_date=False) == first


def test_push_fetch_and_sync_count_what_reading_every_note_counts(
    huge: Path, tmp_path: Path
) -> None:
    from git_prov import sync
    from git_prov.store.merge import count_runs

    repo = open_repo(huge)
    every = count_runs(repo.pygit, repo.pygit.revparse_single(NOTES_REF + "^{tree}"))
    assert every == RUNS + HAND_MADE + 3  # two copies and a conflicting copy are lines too
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(huge, "push", "-q", str(bare), "main")
    (huge / ".git" / "prov" / sync.RUN_COUNT_CACHE).unlink(missing_ok=True)
    pushed = sync.push(huge, str(bare))
    assert (pushed.runs_pushed, pushed.runs_total, pushed.attempts) == (every, every, 1)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-local", str(bare), str(clone)], check=True)
    fetched = sync.fetch(clone, str(bare), remap=False)
    assert (fetched.runs_added, fetched.runs_total, fetched.remote_total) == (every,) * 3
    # one more run on each side: each sync brings the other's and counts both
    head = git(clone, "rev-parse", "HEAD").strip()
    ours: RunRecord = make_run(head, RUNS + 30)
    Ledger(open_repo(clone)).write([(head, ours)])
    Ledger(repo).write([(head, make_run(head, RUNS + 31))])
    there = sync.sync(clone, str(bare), remap=False)
    assert (there.runs_fetched, there.runs_pushed, there.runs_total) == (0, 1, every + 1)
    here = sync.sync(huge, str(bare), remap=False)
    assert (here.runs_fetched, here.runs_pushed, here.runs_total) == (1, 1, every + 2)

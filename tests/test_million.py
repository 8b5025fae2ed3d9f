"""Big ledgers (issue #20): the bounded paths give what computing over every run gives.

One ledger of 2,400 runs (bench/ledger_factory.py, about a second) plus a few hand-made
records and a bad note line; each bounded path runs with its bound lowered so the sample is
a strict part of the ledger, and is compared with the full computation on the same ledger.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from tests.conftest import git

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from ledger_factory import make_ledger, make_run

from git_prov.report import build_report
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

RUNS, COMMITS = 2_400, 240


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "repo"
    make_big_ledger(path, RUNS, COMMITS)
    return path


def make_big_ledger(path: Path, runs: int, commits: int) -> tuple[Ledger, str]:
    """A factory ledger of ``runs`` plus the hand-made ones every bounded path is tried
    on: two failed runs (the newest and the oldest), one whose environment is not kept,
    a copy and a conflicting record, and a bad note line. Returns the ledger and HEAD."""
    stats = make_ledger(path, runs, commits)
    repo = open_repo(path)
    first = git(path, "rev-list", "--max-parents=0", "HEAD").strip()
    late = dataclasses.replace(make_run(stats.head, runs + 5), status="failed", exit_code=2)
    early = dataclasses.replace(make_run(first, 3), status="failed", exit_code=1)
    unkept = dataclasses.replace(make_run(stats.head, runs + 6), env="ab" * 20)
    ledger = Ledger(repo)
    ledger.write([(stats.head, late), (first, early), (stats.head, unkept)])
    # the same record again on another commit (a copy), and a different one (a conflict)
    ledger.write([(stats.head, early), (stats.head, dataclasses.replace(early, host="other"))])
    git(path, "notes", "--ref=prov", "append", "-m", "not a record", first)
    return ledger, stats.head


def test_report_sample_equals_the_full_report_on_its_runs(big: Path) -> None:
    repo = open_repo(big)
    full = build_report(repo, max_runs=None)
    sampled = build_report(repo, max_runs=50, sample=300)
    assert sampled.sampled and not full.sampled
    assert sampled.total_runs == full.total_runs == RUNS + 3
    assert len(sampled.every_run) == 300
    newest = [v.id for v in full.runs[:300]]
    assert sorted(sampled.every_run) == sorted(newest)
    assert [v.id for v in sampled.runs] == newest[:50]
    assert [v.record for v in sampled.runs] == [v.record for v in full.runs[:50]]
    # summary counts are over every run, from SQL
    totals = sampled.totals
    assert totals is not None
    assert totals.runs == len(full.every_run)
    assert totals.commits == len({v.record.commit for v in full.every_run.values()})
    assert totals.not_ok == 2 == sum(v.record.status != "ok" for v in full.every_run.values())
    # trends: the full series restricted to the sample
    chosen = set(newest)
    assert sampled.trends.keys() == full.trends.keys()
    for name, series in full.trends.items():
        assert sampled.trends[name] == [(rid, x) for rid, x in series if rid in chosen]
    # anomalies: the failed run in the sample and the bad line; the old failed run is not
    assert sampled.anomalies == [a for a in full.anomalies if a.run is None or a.run in chosen]
    assert {a.kind for a in sampled.anomalies} == {"failed", "unreadable"}
    assert len([a for a in full.anomalies if a.kind == "failed"]) == 2
    assert sampled.mismatches == full.mismatches == []
    assert sampled.metric_names == full.metric_names


def test_report_of_revisions_reads_only_their_runs_through_the_index(big: Path) -> None:
    repo = open_repo(big)
    scan = Ledger(repo).scan()
    head = git(big, "rev-parse", "HEAD").strip()
    for revisions in (["HEAD~3..HEAD"], ["HEAD"]):
        through_scan = build_report(repo, revisions, scan=scan, max_runs=None)
        through_index = build_report(repo, revisions, max_runs=None)
        assert sorted(through_index.every_run) == sorted(through_scan.every_run)
        assert [v.record for v in through_index.runs] == [v.record for v in through_scan.runs]
        assert through_index.anomalies == through_scan.anomalies
        assert through_index.trends == through_scan.trends
    assert {a.kind for a in through_index.anomalies} >= {"failed", "conflict", "unreadable"}
    assert not through_index.sampled
    # over more runs than the sample: the newest of them, totals over all of them
    sampled = build_report(repo, ["HEAD"], max_runs=50, sample=300)
    full = through_index
    assert sampled.sampled and sampled.totals is not None
    assert sampled.totals.runs == sampled.total_runs == len(full.every_run)
    assert sampled.totals.not_ok == sum(v.record.status != "ok" for v in full.every_run.values())
    assert sorted(sampled.every_run) == sorted(v.id for v in full.runs[:300])
    assert [v.record for v in sampled.runs] == [v.record for v in full.runs[:50]]
    assert head in {v.record.commit for v in sampled.runs}


def test_report_below_the_sample_reads_every_run(big: Path) -> None:
    repo = open_repo(big)
    report = build_report(repo, max_runs=50, sample=RUNS + 3)
    assert not report.sampled and report.totals is None
    assert len(report.every_run) == RUNS + 3


def test_max_runs_0_says_what_it_costs(big: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import git_prov.report as report

    repo = open_repo(big)
    assert report.full_read_cost(repo) is None  # below MAX_SAMPLE_RUNS: nothing to say
    monkeypatch.setattr(report, "MAX_SAMPLE_RUNS", 1000)
    said = report.full_read_cost(repo)
    assert said is not None and f"reads all {RUNS + 3} runs" in said and " MB " in said


def test_fsck_streams_and_finds_what_a_whole_read_finds(big: Path) -> None:
    from git_prov.fsck import fsck

    repo = open_repo(big)
    scan = Ledger(repo).scan()
    report = fsck(repo)
    assert report.runs == len(scan.runs) == RUNS + 3
    assert report.lines == RUNS + 6  # the copy and the conflicting line are lines too
    found = [(f.severity, f.code, f.run) for f in report.findings]
    (conflicted,) = scan.conflicts
    unkept = next(r.id for r in scan.runs.values() if r.record.env == "ab" * 20)
    # make_run's env is the empty blob, outside refs/prov/objects and no manifest: found
    # once, for the first run naming it in run id order (the early one), as a whole read does
    assert found == [
        ("error", "bad-line", None),
        ("error", "conflict", conflicted),
        ("warning", "object-not-in-tree", conflicted),
        ("error", "bad-manifest", conflicted),
        ("error", "missing-object", unkept),
    ]
    # --data keeps every record (its file check needs them): the same findings
    assert [(f.severity, f.code, f.run) for f in fsck(repo, data=True).findings] == found


def test_remap_dry_run_with_nothing_new_is_answered_by_the_watermark(big: Path) -> None:
    from git_prov.rewrite import remap

    repo = open_repo(big)
    first = remap(repo, dry_run=True)
    assert not first.up_to_date and first.dry_run and not first.matched
    again = remap(repo, dry_run=True)  # no ref moved: the watermark answers
    assert again.up_to_date and dataclasses.replace(again, up_to_date=False) == first
    real = remap(repo)  # and the real remap agrees, without work
    assert real.up_to_date and dataclasses.replace(real, up_to_date=False, dry_run=True) == first
    git(big, "commit", "-q", "--allow-empty", "-m", "one more")
    assert not remap(repo, dry_run=True).up_to_date  # a ref moved: looked at again


def test_orphans_from_the_index_equal_those_of_a_whole_read(tmp_path: Path) -> None:
    from git_prov.rewrite.orphans import index_orphans, scan_orphans

    stats = make_ledger(tmp_path, 300, 30)
    git(tmp_path, "checkout", "-q", "-b", "side")
    side = []
    for i in range(3):
        git(tmp_path, "commit", "-q", "--allow-empty", "-m", f"side {i}")
        side.append(git(tmp_path, "rev-parse", "HEAD").strip())
    git(tmp_path, "checkout", "-q", "main")
    git(tmp_path, "branch", "-q", "-D", "side")
    repo = open_repo(tmp_path)
    ledger = Ledger(repo)
    runs = [make_run(c, 1000 + i) for i, c in enumerate(side)]
    gone = make_run("ab" * 20, 2000)  # a commit this repository never had
    ledger.write([*((r.commit, r) for r in runs), (gone.commit, gone), (stats.head, runs[0])])
    quick = index_orphans(repo, ledger)
    assert quick is not None
    found, purged = quick
    whole = scan_orphans(repo, ledger.scan())
    assert found.runs == whole.runs and len(found.runs) == 2  # runs[0] is also on main
    assert found.missing == whole.missing == [gone.id]
    assert found.unreachable == whole.unreachable and found.present == whole.present
    assert purged == 0


def test_sync_run_counts_stream_the_notes(big: Path) -> None:
    from git_prov.sync import RUN_COUNT_CACHE, run_total

    (big / ".git" / "prov" / RUN_COUNT_CACHE).unlink(missing_ok=True)
    before = git(big, "rev-parse", "refs/notes/prov~2^{tree}").strip()
    tip = git(big, "rev-parse", "refs/notes/prov^{tree}").strip()
    # every run line of every note, read one note at a time (then came a copy and a
    # conflicting record: two lines, and a bad line)
    assert run_total(big, before) == RUNS + 3
    # then the next tree from the difference of the two (a diff-tree, the changed notes)
    assert run_total(big, tip, hint=before) == RUNS + 5
    (big / ".git" / "prov" / RUN_COUNT_CACHE).unlink()
    assert run_total(big, tip) == RUNS + 5  # and the same, counted whole

"""`git prov compare`: N runs side by side (differing params, metrics, best marked), and
the varying params in `git prov find`'s table. Ledger written through the Ledger API;
commands through the real entry point in this process (``cli_run``), one subprocess."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from factories import make_record
from test_query_find import cli_run

from git_prov.query.comparison import MAXIMIZE, MINIMIZE, direction_by_name
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo


@pytest.fixture
def three(repo: Path) -> tuple[Path, list[str]]:
    """Three runs of one sweep (lr and depth vary, seed does not) and one unrelated run."""
    head = git(repo, "rev-parse", "HEAD")
    rows = [
        ({"lr": 0.1, "depth": 3, "seed": 7}, {"acc": 0.81, "loss": 0.52, "speed": 10}, "ok"),
        ({"lr": 0.01, "depth": 3, "seed": 7}, {"acc": 0.93, "loss": 0.31, "speed": 12}, "ok"),
        ({"lr": 0.001, "depth": 5, "seed": 7}, {"acc": 0.99, "loss": 0.05, "speed": 9}, "failed"),
    ]
    records = [
        make_record(
            head,
            params=p,
            metrics=m,
            status=s,
            exit_code=0 if s == "ok" else 1,
            tags=("sweep:s1",),
            started=f"2026-12-01T10:0{i}:00.000Z",
        )
        for i, (p, m, s) in enumerate(rows)
    ]
    other = make_record(head, params={"lr": 5}, metrics={"acc": 1.0}, tags=("other",))
    Ledger(open_repo(repo)).write([(head, r) for r in [*records, other]], keep=[head])
    return repo, [r.id for r in records]


def test_compare_three_runs_marks_best_and_shows_only_differing_params(
    three: tuple[Path, list[str]],
) -> None:
    repo, ids = three
    ran = cli_run(repo, "compare", *(i[-8:] for i in ids))
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "3 runs; the same in all: seed=7"
    header = lines[1].split()
    assert header == ["ID", "COMMIT", "STARTED", "STATUS", "depth", "lr", "acc", "loss", "speed"]
    rows = {line.split()[0]: line for line in lines[2:5]}
    # best among the runs that ended ok: the failed run's 0.99 is not the best acc
    assert "0.93*" in rows[ids[1][-8:]] and "0.31*" in rows[ids[1][-8:]]
    assert "*" not in rows[ids[0][-8:]] and "*" not in rows[ids[2][-8:]]
    assert "acc higher, by its name; loss lower, by its name" in ran.stdout
    assert "no best marked for speed" in ran.stdout  # never guessed
    # said explicitly, a metric gets a best; and --json says how each was decided
    ran = cli_run(repo, "compare", *ids, "--maximize", "speed", "--minimize", "acc", "--json")
    doc = json.loads(ran.stdout)
    assert [r["id"] for r in doc["runs"]] == ids
    assert doc["constant_params"] == {"seed": 7}
    assert doc["varying_params"] == ["depth", "lr"]
    assert doc["metrics"]["speed"] == {"best": "max", "decided_by": "option", "best_runs": [ids[1]]}
    assert doc["metrics"]["acc"]["best_runs"] == [ids[0]]
    assert doc["metrics"]["loss"]["decided_by"] == "name"
    assert doc["runs"][1]["best"] == ["loss", "speed"]


def test_compare_a_selection_csv_and_errors(three: tuple[Path, list[str]]) -> None:
    repo, ids = three
    ran = cli_run(repo, "compare", "--tag", "sweep:s1", "--sort", "started", "--csv")
    assert ran.returncode == 0, ran.stderr
    rows = list(csv.DictReader(io.StringIO(ran.stdout)))
    assert [r["id"] for r in rows] == ids
    assert [k for k in rows[0] if k.startswith("params.")] == ["params.depth", "params.lr"]
    assert [r["best"] for r in rows] == ["", "acc;loss", ""]
    # a revision selects the runs on its commits (here all four); a run named twice once
    ran = cli_run(repo, "compare", "HEAD", ids[0], "--json")
    assert len(json.loads(ran.stdout)["runs"]) == 4
    bad = cli_run(repo, "compare")
    assert bad.returncode == 2 and "name the runs to compare" in bad.stderr
    bad = cli_run(repo, "compare", *ids, "--maximize", "acc", "--minimize", "acc")
    assert bad.returncode == 2 and "both --maximize and --minimize" in bad.stderr
    bad = cli_run(repo, "compare", *ids, "--maximize", "nope")
    assert bad.returncode == 2 and "no compared run has a metric 'nope'" in bad.stderr
    bad = cli_run(repo, "compare", "zzzzzzzz")
    assert bad.returncode != 0 and "no run matches" in bad.stderr and "Traceback" not in bad.stderr


def test_direction_by_name() -> None:
    assert direction_by_name("val_loss") == MINIMIZE
    assert direction_by_name("top1_acc") == MAXIMIZE
    assert direction_by_name("test/RMSE") == MINIMIZE
    assert direction_by_name("loss_acc") is None  # both: unknown
    assert direction_by_name("lossy") is None  # words, not substrings
    assert direction_by_name("speed") is None


def test_find_table_shows_varying_params_and_caps_them(repo: Path) -> None:
    head = commit_file(repo, "train.py", "print(1)\n")
    params = [{f"p{k}": i * 10 + k for k in range(6)} | {"same": "x"} for i in range(2)]
    params[1]["p0"] = params[0]["p0"]  # p0 does not vary
    records = [make_record(head, params=p) for p in params]
    Ledger(open_repo(repo)).write([(head, r) for r in records], keep=[head])
    out = prov(repo, "find").stdout
    header = out.splitlines()[0].split()
    assert header[-5:] == ["p1", "p2", "p3", "p4", "acc"]  # 4 of the 5 that vary
    assert "same" not in header and "p0" not in header
    assert "1 more varying param not shown: p5" in out
    # a param named in --where comes first
    out = cli_run(repo, "find", "--where", "p5>0").stdout
    assert out.splitlines()[0].split()[-5:] == ["p5", "p1", "p2", "p3", "acc"]

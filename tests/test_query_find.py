"""`git prov find`: every filter and output format, through the CLI on a real ledger.

The ledger is written with the Ledger API (fast, exact control of every field); the
queries go through the CLI entry point as users type them — in this process (``cli_run``,
fast) for the many filter cases, and as a real subprocess (``prov``) end to end.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from factories import make_record

from git_prov.model.manifest import DataEntry, DataManifest, EnvironmentManifest
from git_prov.query.find import Condition, FindQuery, find_runs, parse_when
from git_prov.query.index import RepoPaths, open_index
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

TRAIN_SHA = "sha256:" + "ab" * 32
VAL_BLOB = "git:" + "cd" * 20
MODEL_SHA = "sha256:" + "ef" * 32


@dataclass
class World:
    repo: Path
    ids: dict[str, str]  # name → short id
    env_a: str
    env_b: str
    data_in: str
    data_out: str
    c1: str
    c2: str
    c3: str


@pytest.fixture
def world(repo: Path) -> World:
    """Four runs on three commits (two on main, one on branch exp) with varied fields."""
    c1 = git(repo, "rev-parse", "HEAD")
    c2 = commit_file(repo, "train.py", "print(1)\n")
    git(repo, "checkout", "-q", "-b", "exp")
    c3 = commit_file(repo, "train.py", "print(2)\n")
    git(repo, "checkout", "-q", "main")
    ledger = Ledger(open_repo(repo))
    env_a = ledger.store_object(
        EnvironmentManifest(
            python={"version": "3.11.7"}, packages={"torch": "2.4.1", "numpy": "1.26.0"}
        ).to_toml()
    )
    env_b = ledger.store_object(
        EnvironmentManifest(python={"version": "3.12.1"}, packages={"torch": "2.3.0"}).to_toml()
    )
    data_in = ledger.store_object(
        DataManifest.build(
            ["data"],
            [
                DataEntry("data/train.csv", 10, TRAIN_SHA),
                DataEntry("data/val.csv", 5, VAL_BLOB, source="git"),
            ],
        ).to_toml()
    )
    data_out = ledger.store_object(
        DataManifest.build(["model.pt"], [DataEntry("model.pt", 99, MODEL_SHA)]).to_toml()
    )
    runs = {
        "base": make_record(
            c1, started="2026-01-01T10:00:00.000Z", host="gpu-1", user="ada",
            tags=("baseline",), env=env_a, inputs=data_in, params={"lr": 0.1, "model": "mlp"},
            metrics={"acc": 0.8, "loss": 0.5},
        ),
        "fail": make_record(
            c2, started="2026-01-05T10:00:00.000Z", status="failed", exit_code=1, host="gpu-2",
            user="bob", env=env_b, outputs=data_out, params={"lr": 0.01},
            metrics={"acc": 0.93},
        ),
        "exp": make_record(
            c3, started="2026-01-10T10:00:00.000Z", status="killed", exit_code=None, signal=9,
            host="cpu-1", user="ada", tags=("exp", "baseline"), env=env_a, inputs=data_in,
            outputs=data_out, params={"lr": "0.10", "model": "resnet"},
            metrics={"acc": 0.95, "loss": 0.2},
        ),
        "plain": make_record(
            c2, started="2026-01-07T10:00:00.000Z", host="gpu-1", user="bob",
            params={"lr": 0.001}, metrics={"loss": 0.9},
        ),
    }  # fmt: skip
    ledger.write(
        [(r.commit, r) for r in runs.values()],
        objects={"env": [env_a, env_b], "data": [data_in, data_out]},
        keep=[c1, c2, c3],
    )
    return World(
        repo, {k: r.short_id for k, r in runs.items()}, env_a, env_b, data_in, data_out, c1, c2, c3
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli_run(cwd: Path, *args: str) -> Ran:
    """``git prov ARGS`` through the real entry point (``main``), in this process."""
    import contextlib
    import os

    from git_prov.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(here)
    return Ran(code, out.getvalue(), err.getvalue())


def found(w: World, *args: str, cwd: Path | None = None) -> list[str]:
    """The names of the runs `git prov find ARGS` lists, in its order."""
    by_short = {v: k for k, v in w.ids.items()}
    ran = cli_run(cwd or w.repo, "find", *args, "--format", "{short_id}")
    assert ran.returncode == 0, ran.stderr
    return [by_short[s] for s in ran.stdout.split()]


def test_selectors_and_time_filters(world: World) -> None:
    w = world
    assert found(w) == ["exp", "plain", "fail", "base"]  # newest first by default
    assert found(w, "--status", "failed") == ["fail"]
    assert found(w, "--status", "failed", "--status", "killed") == ["exp", "fail"]
    assert found(w, "--host", "gpu-*") == ["plain", "fail", "base"]
    assert found(w, "--host", "cpu-1") == ["exp"]
    assert found(w, "--user", "bob") == ["plain", "fail"]
    assert found(w, "--tag", "baseline") == ["exp", "base"]
    assert found(w, "--tag", "exp", "--user", "ada") == ["exp"]
    assert found(w, "--since", "2026-01-05", "--until", "2026-01-08T00:00Z") == ["plain", "fail"]
    assert found(w, "--since", "3d") == []  # 2026 January is long ago in any test run…
    assert found(w, "--limit", "2") == ["exp", "plain"]


def test_revision_range_and_branch(world: World) -> None:
    w = world
    assert found(w, "main") == ["plain", "fail", "base"]
    assert found(w, f"{w.c1}..main") == ["plain", "fail"]
    assert found(w, "--branch", "exp") == ["exp", "plain", "fail", "base"]
    assert found(w, "main..exp") == ["exp"]
    bad = cli_run(w.repo, "find", "no-such-branch")
    assert bad.returncode == 2 and "bad revision" in bad.stderr


def test_params_and_where_conditions(world: World) -> None:
    w = world
    # Numeric-aware equality: 0.1 and the string "0.10" are the same number.
    assert found(w, "--param", "lr=0.1") == ["exp", "base"]
    assert found(w, "--param", "model=resnet") == ["exp"]
    assert found(w, "--where", "acc>0.9") == ["exp", "fail"]
    assert found(w, "--where", "acc>=0.93", "--where", "lr<0.05") == ["fail"]
    assert found(w, "--where", "acc!=0.8") == ["exp", "fail"]  # runs without acc: no
    assert found(w, "--where", "metrics.loss<=0.5") == ["exp", "base"]
    assert found(w, "--where", "params.model==mlp") == ["base"]
    assert found(w, "--where", "loss<0.5", "--where", "lr==0.1") == ["exp"]
    bad = cli_run(w.repo, "find", "--where", "acc")
    assert bad.returncode == 2 and "not a condition" in bad.stderr


def test_sorting(world: World) -> None:
    w = world
    assert found(w, "--sort", "started") == ["base", "fail", "plain", "exp"]
    assert found(w, "--sort", "-acc") == ["exp", "fail", "base", "plain"]  # no acc: last
    assert found(w, "--sort", "acc") == ["base", "fail", "exp", "plain"]
    assert found(w, "--sort", "lr", "-n", "2") == ["plain", "fail"]
    assert found(w, "--sort", "-duration", "--status", "ok")[0] in ("base", "plain")


def test_data_environment_and_package_filters(world: World) -> None:
    w = world
    assert found(w, "--data", "data") == ["exp", "base"]  # a directory prefix
    assert found(w, "--data", "data/train.csv") == ["exp", "base"]
    assert found(w, "--data", "model.pt") == ["exp", "fail"]  # written, not read
    assert found(w, "--data", "dat") == []  # a prefix of a name is not a directory
    (w.repo / "data").mkdir()
    assert found(w, "--data", "train.csv", cwd=w.repo / "data") == ["exp", "base"]
    assert found(w, "--data-hash", TRAIN_SHA) == ["exp", "base"]
    assert found(w, "--data-hash", "efefefef") == ["exp", "fail"]  # bare sha256 prefix
    assert found(w, "--data-hash", "cdcdcdcd") == ["exp", "base"]  # git blob id prefix
    assert found(w, "--data-hash", w.data_out[:10]) == ["exp", "fail"]  # manifest id
    assert found(w, "--env", w.env_b[:10]) == ["fail"]
    assert found(w, "--env", w.env_a[:8], "--env", w.env_b[:8]) == ["exp", "fail", "base"]
    assert found(w, "--package", "torch==2.4.*") == ["exp", "base"]
    assert found(w, "--package", "numpy") == ["exp", "base"]
    assert found(w, "--package", "torch!=2.4.*") == ["fail"]
    assert found(w, "--package", "Torch==2.3.0") == ["fail"]  # names normalised
    missing = cli_run(w.repo, "find", "--env", "no-such-tag")
    assert missing.returncode == 6 and "no environment tag" in missing.stderr


def test_output_formats(world: World) -> None:
    w = world
    table = prov(w.repo, "find", "--where", "acc>0").stdout.splitlines()
    assert table[0].split()[:6] == ["ID", "STARTED", "STATUS", "DURATION", "COMMIT", "COMMAND"]
    assert "acc" in table[0] and "loss" in table[0]
    assert table[1].startswith(w.ids["exp"]) and "killed" in table[1] and "0.95" in table[1]
    assert len(table) == 4

    doc = json.loads(prov(w.repo, "find", "--json", "--status", "ok").stdout)
    assert [r["short_id"] for r in doc] == [w.ids["plain"], w.ids["base"]]
    base = doc[1]
    assert base["params"] == {"lr": 0.1, "model": "mlp"} and base["tags"] == ["baseline"]
    assert base["shown_on"] == [w.c1] and base["kind"] == "run" and base["inputs"] == w.data_in
    # The same document `git prov log --json` gives for the run.
    logged = json.loads(prov(w.repo, "log", "--json", "main").stdout)
    from_log = next(r for c in logged for r in c["runs"] if r["short_id"] == w.ids["base"])
    assert from_log == base

    rows = list(csv.DictReader(io.StringIO(cli_run(w.repo, "find", "--csv").stdout)))
    assert [r["short_id"] for r in rows] == [w.ids[k] for k in ("exp", "plain", "fail", "base")]
    assert rows[0]["params.lr"] == "0.10" and rows[0]["metrics.acc"] == "0.95"
    assert rows[1]["metrics.acc"] == "" and rows[0]["tags"] == "exp;baseline"
    assert rows[2]["status"] == "failed" and rows[2]["exit_code"] == "1"

    text = cli_run(
        w.repo, "find", "--status", "ok", "--format",
        "{short_id}|{params[lr]}|{metrics[acc]}|{short_commit}|{nothing}|{tags}",
    ).stdout  # fmt: skip
    assert text.splitlines() == [
        f"{w.ids['plain']}|0.001||{w.c2[:7]}||",
        f"{w.ids['base']}|0.1|0.8|{w.c1[:7]}||baseline",
    ]
    bad = cli_run(w.repo, "find", "--format", "{oops")
    assert bad.returncode == 2 and "--format" in bad.stderr
    both = cli_run(w.repo, "find", "--json", "--csv")
    assert both.returncode == 2


def test_runs_alias_and_empty_result(world: World) -> None:
    w = world
    alias = prov(w.repo, "runs", "--status", "killed", "--format", "{short_id}").stdout
    assert alias.split() == [w.ids["exp"]]
    none = cli_run(w.repo, "find", "--status", "killed", "--host", "gpu-1")
    assert none.stdout == "" and "no runs match" in none.stderr


def test_library_query_matches_cli(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.repo)
    with open_index(RepoPaths.discover()) as index:
        query = FindQuery(where=(Condition.parse("acc>0.9"),), sort="acc")
        result = find_runs(index, query)
    assert [r.short_id for r in result.runs] == [world.ids["fail"], world.ids["exp"]]
    assert result.runs[1].metrics == {"acc": 0.95, "loss": 0.2}


def test_parse_when_accepts_dates_and_ages() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_when("2026-03-01T00:00Z", now) == "2026-03-01T00:00:00.000Z"
    assert parse_when("2d", now) == "2026-03-08T12:00:00.000Z"
    assert parse_when("3 hours ago", now) == "2026-03-10T09:00:00.000Z"
    assert parse_when("90m", now) == "2026-03-10T10:30:00.000Z"
    assert parse_when("1w", now) == "2026-03-03T12:00:00.000Z"
    with pytest.raises(Exception, match="not a time"):
        parse_when("last tuesday", now)


@pytest.mark.parametrize(
    ("args", "bad_part"),
    [
        (("--where", "acc>>0.9"), ">0.9"),
        (("--where", "acc => 0.9"), "> 0.9"),
        (("--where", "acc<>0.9"), ">0.9"),
        (("--where", "acc=!0.9"), "!0.9"),
        (("--where", "acc>=>0.9"), "=>0.9"),
        (("--param", "lr=>0.1"), ">0.1"),
        (("--param", "lr>0.1"), "lr>0.1"),
    ],
)
def test_malformed_conditions_are_usage_errors(
    world: World, args: tuple[str, ...], bad_part: str | None
) -> None:
    ran = cli_run(world.repo, "find", *args)
    assert ran.returncode == 2, (args, ran.stderr)
    assert ran.stderr.startswith("error: ") and ran.stdout == ""
    if bad_part is not None:
        assert bad_part in ran.stderr


def test_param_accepts_double_equals_and_quoted_values(world: World) -> None:
    assert found(world, "--param", "lr==0.1") == found(world, "--param", "lr=0.1") != []
    assert found(world, "--where", "model=='resnet'") == ["exp"]


def test_unknown_names_get_a_hint_listing_the_names_that_exist(world: World) -> None:
    ran = cli_run(world.repo, "find", "--where", "accuracy>0.9")
    assert ran.returncode == 0 and "no runs match" in ran.stderr
    assert "no run has a metric or param 'accuracy'" in ran.stderr
    assert "acc" in ran.stderr and "loss" in ran.stderr and "lr" in ran.stderr
    ran = cli_run(world.repo, "find", "--param", "learning_rate=0.1")
    assert "no run has a param 'learning_rate'" in ran.stderr and "lr" in ran.stderr
    # A name some run has is not hinted at, even when no run matches.
    ran = cli_run(world.repo, "find", "--where", "acc>5")
    assert "no runs match" in ran.stderr and "no run has" not in ran.stderr


def test_an_unknown_sort_key_is_a_usage_error_listing_what_can_be_sorted(world: World) -> None:
    ran = cli_run(world.repo, "find", "--sort", "-acuracy")
    assert ran.returncode == 2 and ran.stdout == ""
    assert "acuracy" in ran.stderr and "started" in ran.stderr and "acc" in ran.stderr
    assert found(world, "--sort", "-metrics.acc")[0] == "exp"
    # A param only some runs have still sorts.
    assert found(world, "--sort", "model")[:2] == ["base", "exp"]


def test_find_with_a_fresh_index_loads_no_pygit2(repo: Path) -> None:
    """A query that finds its index fresh (``find``, ``log``) reads it and the git binary
    only: pygit2 alone costs more start-up than the rest of a short ``find`` — also when
    a run is shown on a second commit (whose attachment ``find`` reads to say where it is
    shown now)."""
    from git_prov.model.record import Attachment

    first = commit_file(repo, "a.txt", "a\n")
    record = make_record(first)
    moved = commit_file(repo, "b.txt", "b\n")
    attach = Attachment(record.id, moved, first, "amend", "2026-11-26T12:00:00.000Z")
    Ledger(open_repo(repo)).write([(first, record), (moved, attach)])
    assert record.short_id in prov(repo, "find").stdout  # (builds the index)
    for args in (
        ("find",),
        ("find", "--json"),
        ("find", "-n", "1", "--format", "{id}"),
        ("log", "-n", "20"),
    ):
        done = prov(repo, *args, env={"PYTHONPROFILEIMPORTTIME": "1"})
        modules = {ln.rsplit("|", 1)[1].strip() for ln in done.stderr.splitlines() if "|" in ln}
        assert "git_prov.query.index" in modules, args  # (the import list was read)
        assert "pygit2" not in modules, args


def test_a_page_counts_the_rest_exactly_on_a_small_ledger_and_at_least_on_a_big_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-n`` on a ledger of more than COUNT_SCAN index rows: a filtered page counts the
    runs beyond it among those rows only and says "at least" (a lower bound, never a wrong
    number); an unfiltered page, and any page of a small ledger, count exactly."""
    from git_prov.query import find as finding

    exact = cli_run(world.repo, "find", "--where", "acc>0.5", "-n", "1")
    assert exact.stdout.splitlines()[-1].endswith("… 2 more (--limit)")
    monkeypatch.setattr(finding, "COUNT_SCAN", 2)
    bounded = cli_run(world.repo, "find", "--where", "acc>0.5", "-n", "1")
    assert bounded.stdout.splitlines()[:-1] == exact.stdout.splitlines()[:-1]
    last = bounded.stdout.splitlines()[-1]
    assert last.startswith("… at least ") and last.endswith(" more (--limit)")
    assert 1 <= int(last.split()[3]) <= 2  # 3 runs match: 1 shown, 2 beyond it
    unfiltered = cli_run(world.repo, "find", "-n", "1")
    assert unfiltered.stdout.splitlines()[-1].endswith("… 3 more (--limit)")
    monkeypatch.chdir(world.repo)
    with open_index(RepoPaths.discover()) as index:
        many = finding.find_runs(index, FindQuery(where=(Condition.parse("acc>0"),), limit=1))
        few = finding.find_runs(index, FindQuery(where=(Condition.parse("acc>0.94"),), limit=1))
    assert not many.exact and 2 <= many.matched <= 3 and len(many.runs) == 1
    assert few.exact and few.matched == 1  # (no more than the page: known without a count)


def test_a_page_newest_first_walks_the_index_of_start_times(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page sorted by start time reads runs newest first from ``lines_started`` until
    it has enough, with no sort of every match (EXPLAIN QUERY PLAN)."""
    monkeypatch.chdir(world.repo)
    statements: list[str] = []
    with open_index(RepoPaths.discover()) as index:
        index.db.set_trace_callback(statements.append)
        query = FindQuery(where=(Condition.parse("acc>0.5"),), statuses=("ok",), limit=2)
        assert len(find_runs(index, query).runs) == 1
        find_runs(index, FindQuery(since="2026-01-02T00:00:00.000Z", limit=1))
        index.db.set_trace_callback(None)
        pages = [s for s in statements if " ORDER BY started DESC" in s and "LIMIT" in s]
        assert len(pages) == 2
        for page in pages:
            plan = " | ".join(row[-1] for row in index.db.execute("EXPLAIN QUERY PLAN " + page))
            assert "USING INDEX lines_started" in plan and "TEMP B-TREE" not in plan, plan

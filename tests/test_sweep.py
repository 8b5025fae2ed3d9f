"""`git prov sweep` (a grid, or param sets from a file, each cell a recorded run tagged
with one sweep id) and `git prov run`'s {name} substitution: real commands, real ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import commit_file, prov, runs_json, signals_as_from_a_terminal
from test_query_find import cli_run

from git_prov.errors import UsageProblem
from git_prov.sweep import parse_grid, plan, read_param_sets, substitute

TRAIN = """\
import json, pathlib, sys
lr, depth = float(sys.argv[2]), int(sys.argv[4])
if depth == 5 and lr < 0.05:
    sys.exit("diverged")
out = pathlib.Path(sys.argv[6]); out.mkdir(parents=True, exist_ok=True)
(out / "m.json").write_text(json.dumps({"loss": lr * depth}))
"""


def test_two_by_two_sweep_with_one_failing_cell(repo: Path) -> None:
    commit_file(repo, "train.py", TRAIN)
    commit_file(repo, ".gitignore", "out/\n")
    ran = prov(
        repo,
        "sweep", "-p", "lr=0.1,0.01", "-p", "depth=3,5", "--jobs", "2",
        "--metrics-file", "out/{lr}-{depth}/m.json", "-t", "mine",
        "--", sys.executable, "train.py", "--lr", "{lr}", "--depth", "{depth}",
        "--out", "out/{lr}-{depth}",
        check=False,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr  # one cell failed: documented exit 1
    assert "4 of 4 recorded, 3 ok, 1 failed or not run" in ran.stderr
    runs = runs_json(repo)
    assert len(runs) == 4
    sweep_tags = {t for r in runs for t in r["tags"] if str(t).startswith("sweep:")}  # type: ignore[attr-defined]
    assert len(sweep_tags) == 1 and all("mine" in r["tags"] for r in runs)  # type: ignore[operator]
    by_params = {(r["params"]["lr"], r["params"]["depth"]): r for r in runs}  # type: ignore[index]
    assert set(by_params) == {(0.1, 3), (0.1, 5), (0.01, 3), (0.01, 5)}  # typed values
    bad = by_params[(0.01, 5)]
    assert bad["status"] == "failed" and bad["exit_code"] == 1
    good = by_params[(0.1, 5)]
    assert good["status"] == "ok" and good["metrics"] == {"loss": 0.5}
    assert good["argv"][2:] == ["--lr", "0.1", "--depth", "5", "--out", "out/0.1-5"]  # type: ignore[index]
    # the summary is the compare table of the cells
    assert ran.stdout.startswith("4 runs; no param has one value in all")
    assert "loss lower, by its name" in ran.stdout
    tag = sweep_tags.pop()
    doc = json.loads(cli_run(repo, "compare", "--tag", str(tag), "--json").stdout)
    assert len(doc["runs"]) == 4 and doc["metrics"]["loss"]["best_runs"] == [
        by_params[(0.01, 3)]["id"]
    ]


def test_fail_fast_and_run_substitution(repo: Path) -> None:
    ran = prov(
        repo,
        "sweep", "-p", "code=0,3,0", "--fail-fast", "-q", "--",
        sys.executable, "-c", "import sys; sys.exit({code})",
        check=False,
    )  # fmt: skip
    assert ran.returncode == 1
    assert "cell 3 (code=0): not run — not started" in ran.stdout
    recorded = json.loads(cli_run(repo, "find", "--json", "--sort", "started").stdout)
    assert [r["status"] for r in recorded] == ["ok", "failed"]  # the third never started
    # run: the value as typed, in the arguments naming it; others untouched
    ran = prov(
        repo, "run", "-p", "n=1e-3", "--", sys.executable, "-c",
        "import sys; print(sys.argv[1:])", "--n={n}", "{x}", "{{n}}",
    )  # fmt: skip
    assert "['--n=1e-3', '{x}', '{{n}}']" in ran.stdout
    newest = json.loads(cli_run(repo, "find", "--json", "-n", "1").stdout)[0]
    assert newest["params"] == {"n": 0.001}


def test_substitution_rules() -> None:
    assert substitute("--lr={lr}", {"lr": "0.1"}) == "--lr=0.1"
    assert substitute("{{lr}} {lr}}}", {"lr": "1"}) == "{lr} 1}"
    with pytest.raises(UsageProblem, match=r"names \{x\} but no param 'x'"):
        substitute("{x}", {"lr": "1"})
    with pytest.raises(UsageProblem, match="no param"):
        plan(["echo", '{"a": 1}'], parse_grid(["lr=1"]))  # literal JSON needs {{ }}
    cells = plan(["t", "{a}{b}"], parse_grid(["a=1,2", "b=x,y"]))
    assert [c.argv[1] for c in cells] == ["1x", "1y", "2x", "2y"]  # last -p fastest
    assert cells[0].params == {"a": 1, "b": "x"}
    for bad in (["lr"], ["lr=1,,2"], ["lr=1", "lr=2"]):
        with pytest.raises(UsageProblem):
            parse_grid(bad)


def test_param_sets_from_json_toml_csv(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('[{"lr": 0.1, "m": {"d": 3}}, {"lr": 1e-3, "m": {"d": 5}}]')
    (tmp_path / "s.toml").write_text("[[runs]]\nlr = 0.1\nuse = true\n[[runs]]\nlr = 0.5\n")
    (tmp_path / "s.csv").write_text("lr,opt\n0.1,adam\n0.2,\n")
    assert read_param_sets(tmp_path / "s.json") == [
        {"lr": "0.1", "m.d": "3"},
        {"lr": "0.001", "m.d": "5"},
    ]
    assert read_param_sets(tmp_path / "s.toml") == [{"lr": "0.1", "use": "true"}, {"lr": "0.5"}]
    assert read_param_sets(tmp_path / "s.csv") == [{"lr": "0.1", "opt": "adam"}, {"lr": "0.2"}]
    cells = plan(["t", "{lr}"], parse_grid(["seed=1,2"]), read_param_sets(tmp_path / "s.csv"))
    assert [(c.argv[1], c.params["seed"]) for c in cells] == [
        ("0.1", 1), ("0.1", 2), ("0.2", 1), ("0.2", 2),
    ]  # fmt: skip
    with pytest.raises(UsageProblem, match="no param 'opt'"):
        plan(["t", "{opt}"], (), read_param_sets(tmp_path / "s.csv"))  # the 2nd set has none
    (tmp_path / "bad.json").write_text('{"lr": 1}')
    with pytest.raises(UsageProblem, match="not a JSON list of objects"):
        read_param_sets(tmp_path / "bad.json")


def test_sweep_usage_errors_run_nothing(repo: Path) -> None:
    ran = cli_run(repo, "sweep", "-p", "lr=1", "--", "touch", "{nope}")
    assert ran.returncode == 2 and "{nope}" in ran.stderr
    ran = cli_run(repo, "sweep", "--", "touch", "x")
    assert ran.returncode == 2 and "no params to sweep" in ran.stderr
    assert not (repo / "x").exists() and runs_json(repo) == []


def test_interrupt_records_the_running_cells_and_starts_no_more(repo: Path) -> None:
    """^C reaches the running cells' commands and git-prov (one process group, as from a
    terminal): both running cells are recorded as killed, no further cell starts, exit 130.
    (Waiting with Thread.join, a join cut short by ^C lost a running cell's record: this
    test failed 1 time in 3 then.)"""
    import os
    import signal
    import subprocess
    import time

    ready = repo / "ready"
    ready.mkdir()
    script = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "git_prov", "sweep", "-p", "n=1,2,3,4", "-j", "2", "--",
         sys.executable, "-c", script, "ready/{n}"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=signals_as_from_a_terminal,  # (not ignored, as under `nohup`/`&`)
    )  # fmt: skip
    try:
        while len(list(ready.iterdir())) < 2:  # both running cells have started
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert sorted(p.name for p in ready.iterdir()) == ["1", "2"]
    recorded = json.loads(cli_run(repo, "find", "--json").stdout)
    assert sorted(r["params"]["n"] for r in recorded) == [1, 2]
    assert {r["status"] for r in recorded} == {"killed"}
    assert "cell 3 (n=3): not run — not started" in out


def test_a_cell_killed_by_sigint_in_a_worker_starts_no_further_cell(repo: Path) -> None:
    """With --jobs 2 the cells run in worker threads, where git-prov's ^C handler cannot be:
    a cell whose command died of SIGINT is taken as the terminal's ^C, so its worker starts
    no further cell, even before the main thread has seen the signal (here it never does:
    only the cell's own shell gets it). The sweep ends as a ^C ends it: exit 130."""
    cell = (
        "import os, signal, sys, time\n"
        "with open('started', 'a') as f: f.write(sys.argv[1] + '\\n')\n"
        "if sys.argv[1] == '1':  # (SIGINT may be ignored here, as under nohup: not for us)\n"
        "    signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(1)\n"
    )
    ran = cli_run(
        repo, "sweep", "-p", "n=1,2,3,4,5,6", "-j", "2", "--", sys.executable, "-c", cell, "{n}"
    )
    assert ran.returncode == 130, ran.stderr
    started = sorted((repo / "started").read_text().split())
    assert "1" in started and len(started) <= 3, started  # 1, the other worker's, maybe its next
    recorded = json.loads(cli_run(repo, "find", "--json").stdout)
    statuses = {r["params"]["n"]: r["status"] for r in recorded}
    assert statuses[1] == "killed"
    assert sorted(statuses) == sorted(int(n) for n in started)

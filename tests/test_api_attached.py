"""A ``with git_prov.run()`` block in a script that ``git prov run`` / ``git prov sweep``
records joins that run: one record per command, holding the block's metrics, params, tags
and data (git_prov/attach.py) — on real repositories, through the real CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov

import git_prov


@pytest.fixture
def here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def _script(repo: Path, name: str, body: str) -> None:
    commit_file(repo, name, "import sys\nimport git_prov\nimport git_prov.errors\n" + body)


def test_git_prov_run_of_an_api_script_is_one_record(here: Path) -> None:
    _script(
        here,
        "t.py",
        "with git_prov.run(params={'lr': 0.1, 'model': {'depth': 3}}, tags=['api'],\n"
        "                  goals={'score': 'min'}, message='from the block') as r:\n"
        "    assert r.attached\n"
        "    print('ID', r.id)\n"
        "    for step in range(3):\n"
        "        r.log_metric('acc', 0.5 + step / 10)\n"
        "    r.log_metric('score', 7)\n"
        "    r.log_metric('phase', 'done')\n"
        "    r.log_param('seed', 1)\n"
        "    r.add_tag('more')\n"
        "    try:\n"
        "        with git_prov.run():\n"
        "            pass\n"
        "    except git_prov.errors.UsageProblem as exc:\n"
        "        print('NESTED', exc)\n"
        "print('RUN', r.run)\n"
        "git_prov.log_metric('after', 1.0)\n",  # after the block: still this run's
    )
    out = prov(here, "run", "-p", "lr=0.1", "-t", "outer", "--", sys.executable, "t.py").stdout
    [recorded] = git_prov.Ledger(here).runs()
    assert f"ID {recorded.id}" in out and "RUN None" in out
    assert "NESTED a git-prov run is already being recorded here" in out
    assert recorded.origin == "run" and recorded.command == f"{sys.executable} t.py"
    assert recorded.params == {"lr": 0.1, "model.depth": 3, "seed": 1}
    assert recorded.metrics == {"acc": 0.7, "score": 7, "phase": "done", "after": 1.0}
    assert list(recorded.histories()["acc"].steps) == [0, 1, 2]
    assert recorded.series["score"]["goal"] == "min"
    assert recorded.tags == ("outer", "api", "more") and recorded.message == "from the block"
    assert not recorded.warnings and recorded.duration > 0
    assert not list((here / ".git" / "prov" / "live").glob("*"))


def test_each_sweep_cell_is_one_record_with_the_scripts_metrics(here: Path) -> None:
    _script(
        here,
        "s.py",
        # {lr} reaches the script as text: the same value as the sweep's 0.1
        "with git_prov.run(params={'lr': sys.argv[2]}) as r:\n"
        "    r.log_metric('acc', 1 - float(sys.argv[2]))\n",
    )
    done = prov(here, "sweep", "-p", "lr=0.1,0.2", "--", sys.executable, "s.py", "--lr", "{lr}")
    assert "acc" in done.stdout  # the sweep's summary shows the script's metric
    runs = git_prov.Ledger(here).runs()
    assert len(runs) == 2
    [tag] = {t for r in runs for t in r.tags}
    assert tag.startswith("sweep:") and all(r.tags == (tag,) for r in runs)
    assert sorted((r.params["lr"], r.metrics["acc"]) for r in runs) == [(0.1, 0.9), (0.2, 0.8)]
    compared = json.loads(prov(here, "compare", "--tag", tag, "--json").stdout)
    assert "acc" in json.dumps(compared) and "0.9" in json.dumps(compared)


def test_a_raising_block_records_the_exit_status_once(here: Path) -> None:
    _script(
        here,
        "f.py",
        "with git_prov.run(params={'lr': 0.5}) as r:\n"
        "    r.log_metric('loss', 2.0)\n"
        "    raise ValueError('boom')\n",
    )
    failed = prov(here, "run", "--", sys.executable, "f.py", check=False)
    assert failed.returncode == 1 and "ValueError: boom" in failed.stderr
    [recorded] = git_prov.Ledger(here).runs()
    assert recorded.status == "failed" and recorded.exit_code == 1
    assert recorded.params == {"lr": 0.5} and recorded.metrics == {"loss": 2.0}
    log = recorded.log("stderr")
    assert log is not None and b"ValueError: boom" in log


def test_a_raising_block_gives_the_record_its_structured_error(here: Path) -> None:
    """As a block that is a run of its own records it (docs/format.md, `error`): the
    exception's class and first line, in the one record of the command it failed."""
    _script(
        here,
        "e.py",
        "try:\n"
        "    with git_prov.run():\n"
        "        raise KeyError('caught, and the script went on')\n"
        "except KeyError:\n"
        "    pass\n"
        "with git_prov.run(params={'lr': 0.5}):\n"
        "    raise ValueError('bad learning rate\\nsecond line is dropped')\n",
    )
    failed = prov(here, "run", "--", sys.executable, "e.py", check=False)
    assert failed.returncode == 1 and "ValueError: bad learning rate" in failed.stderr
    [recorded] = git_prov.Ledger(here).runs()
    assert recorded.status == "failed" and recorded.params == {"lr": 0.5}
    stored = json.loads(git(here, "notes", "--ref=prov", "show", recorded.commit).split("\t")[-1])
    assert stored["error"] == {"type": "ValueError", "message": "bad learning rate"}
    # A block that raised in a command that then succeeded: the run did not fail.
    _script(
        here,
        "c.py",
        "try:\n    with git_prov.run():\n        1 / 0\nexcept ZeroDivisionError:\n    pass\n",
    )
    prov(here, "run", "--", sys.executable, "c.py")
    ok = next(r for r in git_prov.Ledger(here).runs() if r.id != recorded.id)
    note = git(here, "notes", "--ref=prov", "show", ok.commit)
    assert ok.status == "ok" and '"error"' not in note


def test_a_param_given_two_values_is_refused_naming_both(here: Path) -> None:
    _script(here, "c.py", "with git_prov.run(params={'lr': 0.5}):\n    pass\n")
    refused = prov(here, "run", "-p", "lr=0.1", "--", sys.executable, "c.py", check=False)
    assert refused.returncode == 1
    assert "param 'lr' is 0.5 in this git_prov.run() block but 0.1 in run" in refused.stderr
    [recorded] = git_prov.Ledger(here).runs()  # the command's run, as it ended
    assert recorded.status == "failed" and recorded.params == {"lr": 0.1}
    # log_param inside the block, and across two blocks of one process: the same rule
    _script(
        here,
        "d.py",
        "with git_prov.run(params={'a': 1}) as r:\n"
        "    r.log_param('b', 2)\n"
        "with git_prov.run() as r:\n"
        "    r.log_param('b', 3)\n",
    )
    refused = prov(here, "run", "--", sys.executable, "d.py", check=False)
    assert "param 'b' is 3 in this git_prov.run() block but 2 in run" in refused.stderr
    assert "git_prov.run(…, attach=False)" in refused.stderr
    recorded = git_prov.Ledger(here).runs()[-1]
    assert recorded.params == {"a": 1, "b": 2}
    # Two processes of one command: each is checked against the command line only; the
    # record keeps one value and its warnings name both.
    _script(
        here,
        "e.py",
        "import subprocess\n"
        "with git_prov.run(params={'a': 1}):\n"
        "    subprocess.run([sys.executable, '-c', 'import git_prov\\n'\n"
        "                    'with git_prov.run(params={\"a\": 2}): pass'], check=True)\n",
    )
    prov(here, "run", "--", sys.executable, "e.py")
    recorded = git_prov.Ledger(here).runs()[-1]
    assert recorded.ok and recorded.params["a"] in (1, 2)
    other = 2 if recorded.params["a"] == 1 else 1
    assert recorded.warnings == (
        f"param a: a git_prov.run() block gave {other}, recorded as {recorded.params['a']}",
    )


def test_the_blocks_data_is_described_when_the_block_starts_and_ends(here: Path) -> None:
    commit_file(here, "outer.csv", "o\n")
    commit_file(here, "data.csv", "x\n1\n")
    _script(
        here,
        "io.py",
        "open('data.csv', 'w').write('x\\n2\\n')\n"  # before the block: what the block reads
        "with git_prov.run(inputs=['data.csv', 'outer.csv'], outputs=['out.txt']):\n"
        "    open('out.txt', 'w').write('in the block')\n"
        "open('data.csv', 'w').write('x\\n3\\n')\n"  # after the block: not what it read
        "open('out.txt', 'w').write('after the block')\n",
    )
    prov(here, "run", "-i", "outer.csv", "--", sys.executable, "io.py")
    [recorded] = git_prov.Ledger(here).runs()
    inputs, outputs = recorded.inputs_manifest(), recorded.outputs_manifest()
    assert inputs is not None and outputs is not None
    assert inputs.paths == ("data.csv", "outer.csv")
    import hashlib

    by_path = {e.path: e for e in inputs.entries}
    assert by_path["data.csv"].size == len("x\n2\n")
    assert [(e.path, e.size) for e in outputs.entries] == [("out.txt", len("in the block"))]
    assert outputs.entries[0].hash.endswith(hashlib.sha256(b"in the block").hexdigest())


def test_what_the_outer_run_decides_is_refused_in_the_block(here: Path) -> None:
    _script(here, "k.py", "with git_prov.run(outputs=['o.txt'], keep='outputs'):\n    pass\n")
    refused = prov(here, "run", "--", sys.executable, "k.py", check=False)
    assert "keep= cannot be used here: this block is part of run" in refused.stderr
    assert "pass --keep to git prov run" in refused.stderr
    _script(here, "g.py", "with git_prov.run(goals={'acc': 'min'}):\n    pass\n")
    refused = prov(here, "run", "--goal", "acc=max", "--", sys.executable, "g.py", check=False)
    assert "the goal of metric 'acc' is 'min' in this git_prov.run() block but 'max'" in (
        refused.stderr
    )


def test_a_block_recording_into_another_repository_records_its_own_run(
    here: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    from conftest import git

    git(other, "init", "-q")
    commit_file(other, "README.md", "other\n")
    _script(
        here,
        "o.py",
        f"with git_prov.run(repo={str(other)!r}) as r:\n"
        "    assert not r.attached\n"
        "    r.log_metric('acc', 0.5)\n",
    )
    prov(here, "run", "--", sys.executable, "o.py")
    [outer] = git_prov.Ledger(here).runs()
    [own] = git_prov.Ledger(other).runs()
    assert outer.metrics == {} and own.metrics == {"acc": 0.5} and own.origin == "api"


def test_blocks_with_attach_false_are_runs_of_their_own(here: Path) -> None:
    _script(
        here,
        "loop.py",
        "for lr in (0.1, 0.2):\n"
        "    with git_prov.run(params={'lr': lr}, attach=False) as r:\n"
        "        assert not r.attached\n"
        "        r.log_metric('acc', 1 - lr)\n",
    )
    prov(here, "run", "-t", "outer", "--", sys.executable, "loop.py")
    runs = git_prov.Ledger(here).runs()
    own = sorted((r.params["lr"], r.metrics["acc"]) for r in runs if r.origin == "api")
    assert own == [(0.1, 0.9), (0.2, 0.8)]
    [outer] = [r for r in runs if r.origin == "run"]
    assert outer.tags == ("outer",) and outer.metrics == {}

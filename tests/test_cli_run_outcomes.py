"""What a finished run's record says about how it ended: problems found after the command
ran never lose the run (they become warnings in the record and on stderr), and an output
the command did not write is recorded as such and never credited to it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import prov, runs_json

import git_prov

PY = sys.executable


# ---- problems after the command ran ------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_a_missing_metrics_file_never_loses_the_run(repo: Path, code: int) -> None:
    proc = prov(
        repo,
        "run",
        "--metrics-file",
        "nope.json",
        "--",
        PY,
        "-c",
        f"print('ok'); raise SystemExit({code})",
        check=False,
    )
    assert proc.returncode == code  # the command's own status, ok or not
    assert proc.stdout == "ok\n"
    assert "warning:" in proc.stderr and "nope.json" in proc.stderr
    [run] = runs_json(repo)
    assert run["exit_code"] == code
    assert any("nope.json" in w for w in run["warnings"])


def test_unparseable_metrics_and_unreadable_outputs_are_warnings(repo: Path) -> None:
    script = (
        "import os; open('m.json','w').write('{not json');"
        "os.makedirs('out', exist_ok=True); open('out/good.txt','w').write('fine');"
        "os.mkfifo('pipe')"
    )
    proc = prov(
        repo,
        "run",
        "--metrics-file",
        "m.json",
        "--metric",
        "kept=1",
        "-o",
        "out",
        "-o",
        "pipe",
        "--",
        PY,
        "-c",
        script,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [run] = runs_json(repo)
    assert run["metrics"] == {"kept": 1}  # what could be captured is kept
    warnings = " | ".join(run["warnings"])
    assert "m.json" in warnings and "pipe" in warnings  # a FIFO cannot be hashed
    assert proc.stderr.count("warning:") >= 2
    shown = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)
    assert [f["path"] for f in shown["outputs_manifest"]["files"]] == ["out/good.txt"]


def test_record_agrees_with_run(repo: Path) -> None:
    proc = prov(repo, "record", "--metrics-file", "nope.json", "--command", "sbatch x", "--json")
    assert "warning:" in proc.stderr and "nope.json" in proc.stderr
    record = json.loads(proc.stdout)
    assert any("nope.json" in w for w in record["warnings"])
    assert [r["id"] for r in runs_json(repo)] == [record["id"]]


def test_the_api_records_the_block_and_warns(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    with (
        pytest.warns(UserWarning, match="nope.json"),
        git_prov.run(metrics_files=["nope.json"], command="block") as active,
    ):
        pass
    assert active.run is not None
    assert any("nope.json" in w for w in active.run.warnings)
    assert [r["id"] for r in runs_json(repo)] == [active.run.id]

"""`git prov demo`: the README's first command must keep working."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, prov


def test_demo_records_a_three_stage_pipeline_and_shows_it(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    out = prov(tmp_path, "demo", "--dir", str(where)).stdout
    assert "$ git prov log" in out and "$ git prov show" in out
    assert "Notes (prov-log):" in out  # plain git log shows the runs
    runs = [r for c in json.loads(prov(where, "log", "--json").stdout) for r in c["runs"]]
    assert len(runs) == 4 and all(r["status"] == "ok" for r in runs)
    assert sum("snapshot" in r for r in runs) == 1  # the uncommitted edit was snapshotted
    assert any(r.get("metrics", {}).get("r2", 0) > 0.9 for r in runs)
    assert git(where, "status", "--porcelain", "--untracked-files=no") != ""


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("mine")
    proc = prov(tmp_path, "demo", "--dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "x").read_text() == "mine"

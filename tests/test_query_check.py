"""`git prov check`: exit 0 when nothing drifted, 1 when the inputs, the environment or the
code changed since the run; categories can be left out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import commit_file, git, prov

PY = sys.executable


def check(repo: Path, *args: str) -> tuple[int, dict[str, object]]:
    proc = prov(repo, "check", "--json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_check_finds_each_kind_of_drift(repo: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = list(venv.glob("lib/python*/site-packages"))
    foo = site / "foo-1.0.dist-info"
    foo.mkdir()
    (foo / "METADATA").write_text("Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n")
    commit_file(repo, "train.py", "print(1)\n")
    (repo / "data.csv").write_text("x\n1\n")
    prov(
        repo, "run", "--python", str(venv / "bin" / "python"), "-i", "data.csv", "--", PY, "-c", "1"
    )

    code, doc = check(repo)
    assert code == 0 and doc["drifted"] is False
    text = prov(repo, "check").stdout
    assert "nothing drifted" in text and "inputs       no drift (1 file)" in text

    # Inputs: changed bytes are drift; the same bytes written again are not.
    (repo / "data.csv").write_text("x\n2\n")
    code, doc = check(repo)
    assert code == 1 and doc["inputs"]["same"] is False  # type: ignore[index]
    [change] = doc["inputs"]["changes"]  # type: ignore[index]
    assert change["path"] == "data.csv" and change["change"] == "changed"
    assert check(repo, "--no-data")[0] == 0
    text = prov(repo, "check", check=False).stdout
    assert "~ data.csv" in text and "drift: inputs" in text
    (repo / "data.csv").write_text("x\n1\n")
    assert check(repo)[0] == 0

    # Environment: a package installed into the run's interpreter.
    bar = site / "bar-2.0.dist-info"
    bar.mkdir()
    (bar / "METADATA").write_text("Metadata-Version: 2.1\nName: bar\nVersion: 2.0\n")
    code, doc = check(repo)
    assert code == 1 and doc["environment"]["same"] is False  # type: ignore[index]
    assert doc["environment"]["packages"] == [  # type: ignore[index]
        {"name": "bar", "change": "added", "old": None, "new": "2.0"}
    ]
    assert check(repo, "--no-env")[0] == 0
    shutil.rmtree(bar)
    assert check(repo)[0] == 0

    # Code: a tracked file edited.
    (repo / "train.py").write_text("print(2)\n")
    code, doc = check(repo)
    assert code == 1 and doc["code"]["same"] is False  # type: ignore[index]
    assert [f["path"] for f in doc["code"]["diff"]["files"]] == ["train.py"]  # type: ignore[index]
    assert check(repo, "--no-code")[0] == 0


def test_run_argument_default_and_hash_kinds(repo: Path) -> None:
    (repo / "data.csv").write_text("a\n")
    prov(repo, "run", "-i", "data.csv", "--", PY, "-c", "1")
    [run] = json.loads(prov(repo, "find", "--json").stdout)
    assert run["short_id"] in prov(repo, "check").stdout
    # Committing the input after the run: it is now named by its git blob id rather than
    # its sha256, and is still the same content.
    git(repo, "add", "data.csv")
    git(repo, "commit", "-q", "-m", "add data")
    none = prov(repo, "check", check=False)
    assert none.returncode == 6 and "no runs recorded on HEAD" in none.stderr
    code, doc = check(repo, run["short_id"], "--no-code")
    assert code == 0 and doc["inputs"]["same"] is True  # type: ignore[index]
    # The commit added only the run's own data: that is not a change of its code.
    code, doc = check(repo, run["short_id"])
    assert code == 0 and doc["code"]["data_files"] == ["data.csv"]  # type: ignore[index]

"""`git prov diff RUN_A RUN_B`: code, data, environment, params and metrics, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, prov

from git_prov.query.compare import compare_versions, version_key

PY = sys.executable


def fake_venv(where: Path, packages: dict[str, str]) -> str:
    """A venv without pip whose site-packages holds fake distributions; its python."""
    subprocess.run([PY, "-m", "venv", "--without-pip", str(where)], check=True)
    [site] = list(where.glob("lib/python*/site-packages"))
    for name, version in packages.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(where / "bin" / "python")


def run(repo: Path, python: str, *options: str) -> str:
    """Record one run through the CLI; its short id."""
    proc = prov(repo, "run", "--python", python, *options, "--", PY, "-c", "pass")
    return proc.stderr.split("recorded run ")[1].split()[0]


@pytest.fixture
def two_runs(repo: Path, tmp_path: Path) -> tuple[Path, str, str]:
    old_env = fake_venv(tmp_path / "v1", {"foo": "1.0", "bar": "1.0", "qux": "2.0"})
    new_env = fake_venv(tmp_path / "v2", {"foo": "2.0", "baz": "0.1", "qux": "1.5"})
    commit_file(repo, "train.py", "print(1)\n")
    data = repo / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    (data / "b.csv").write_text("3,4\n")
    (repo / "out.txt").write_text("first\n")
    a = run(
        repo, old_env, "-i", "data", "-o", "out.txt", "-p", "lr=0.1", "-p", "seed=1",
        "--metric", "acc=0.8", "--metric", "loss=0.5", "--metric", "n=3",
    )  # fmt: skip
    (repo / "train.py").write_text("print(2)\n")  # dirty: the snapshot is the code
    (data / "a.csv").write_text("1,2\n5,6\n")
    (data / "b.csv").unlink()
    (data / "c.csv").write_text("7\n")
    (repo / "out.txt").write_text("second\n")
    b = run(
        repo, new_env, "-i", "data", "-o", "out.txt", "-p", "lr=0.2", "-p", "batch=32",
        "--metric", "acc=0.9", "--metric", "loss=0.25", "--metric", "n=3",
    )  # fmt: skip
    return repo, a, b


def test_diff_json_reports_every_kind_of_change(two_runs: tuple[Path, str, str]) -> None:
    repo, a, b = two_runs
    doc = json.loads(prov(repo, "diff", a, b, "--json").stdout)
    assert doc["a"]["id"].endswith(a) and doc["b"]["id"].endswith(b)

    source = doc["source"]
    assert source["new"] == doc["b"]["snapshot"] and source["old"] == doc["a"]["commit"]
    assert not source["same"] and [f["path"] for f in source["files"]] == ["train.py"]
    assert source["files"][0]["added"] == 1 and source["files"][0]["deleted"] == 1

    changes = {c["path"]: c for c in doc["inputs"]["changes"]}
    assert {p: c["change"] for p, c in changes.items()} == {
        "data/a.csv": "changed",
        "data/b.csv": "removed",
        "data/c.csv": "added",
    }
    assert (changes["data/a.csv"]["old_size"], changes["data/a.csv"]["new_size"]) == (4, 8)
    assert changes["data/c.csv"]["new_hash"].startswith("sha256:")
    assert [c["change"] for c in doc["outputs"]["changes"]] == ["changed"]

    env = doc["environment"]
    packages = {p["name"]: (p["change"], p["old"], p["new"]) for p in env["packages"]}
    assert packages == {
        "foo": ("upgraded", "1.0", "2.0"),
        "qux": ("downgraded", "2.0", "1.5"),
        "bar": ("removed", "1.0", None),
        "baz": ("added", None, "0.1"),
    }
    facts = {(f["section"], f["key"]): (f["old"], f["new"]) for f in env["facts"]}
    old_python, new_python = facts[("python", "executable")]
    assert old_python.endswith("v1/bin/python") and new_python.endswith("v2/bin/python")

    params = {p["name"]: (p["change"], p["old"], p["new"]) for p in doc["params"]}
    assert params == {
        "lr": ("changed", 0.1, 0.2),
        "seed": ("removed", 1, None),
        "batch": ("added", None, 32),
    }
    metrics = {m["name"]: m for m in doc["metrics"]}
    assert metrics["acc"]["delta"] == pytest.approx(0.1)
    assert metrics["acc"]["relative"] == pytest.approx(0.125)
    assert metrics["loss"]["delta"] == pytest.approx(-0.25)
    assert metrics["loss"]["relative"] == pytest.approx(-0.5)
    assert metrics["n"]["change"] == "same" and metrics["n"]["delta"] == 0


def test_diff_text_and_patch(two_runs: tuple[Path, str, str]) -> None:
    repo, a, b = two_runs
    text = prov(repo, "diff", a, b).stdout
    assert f"diff run {a} → run {b}" in text
    assert "train.py | 2 +-" in text
    assert "~ foo 1.0 → 2.0 (upgraded)" in text and "+ baz 0.1" in text and "- bar 1.0" in text
    assert "- data/b.csv" in text and "+ data/c.csv" in text and "~ data/a.csv" in text
    assert "acc   0.8 → 0.9  +0.1 (+12.5%)" in text and "n     3  (same)" in text
    assert "lr: 0.1 → 0.2" in text
    patch = prov(repo, "diff", "--patch", a, b).stdout
    assert "-print(1)" in patch and "+print(2)" in patch
    same = prov(repo, "diff", a, a).stdout
    assert "same code" in same and "Environment  same" in same and "Params       same" in same
    missing = prov(repo, "diff", a, "ffffffff", check=False)
    assert missing.returncode == 6 and "no run matches" in missing.stderr


def test_version_order() -> None:
    ordered = ["1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0.post1", "1.1", "1.9", "1.10", "2!0.1"]
    keys = [version_key(v) for v in ordered]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert compare_versions("2.4.0", "2.4") == "same"
    assert compare_versions("2.4.0+cu121", "2.4.0+cu124") == "upgraded"
    assert compare_versions("abc", "abd") == "changed"

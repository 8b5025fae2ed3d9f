"""Declared data whose content is not in the working tree — a git-LFS pointer never
downloaded, a git-annex file whose content is absent — is recorded as what it is, with a
warning that says how to get the content. Real ``git lfs`` and ``git annex``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git, prov, runs_json


def _tool(*argv: str) -> bool:
    if shutil.which(argv[0]) is None:
        return False
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _input_files(repo: Path, run: dict[str, object]) -> list[dict[str, object]]:
    shown = json.loads(prov(repo, "show", "--json", str(run["short_id"])).stdout)
    files: list[dict[str, object]] = shown["inputs_manifest"]["files"]
    return files


@pytest.mark.skipif(not _tool("git", "lfs", "version"), reason="git-lfs is not installed")
def test_an_lfs_pointer_never_downloaded_is_recorded_as_not_present(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "lfs", "install", "--local")
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    content = os.urandom(3000)
    (repo / "model.bin").write_bytes(content)
    git(repo, "add", ".gitattributes", "model.bin")
    git(repo, "commit", "-q", "-m", "model")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", str(repo), str(clone)],
        check=True,
        env={**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"},
    )
    assert (clone / "model.bin").stat().st_size < 200  # the pointer, not the model

    proc = prov(clone, "run", "-i", "model.bin", "--", "true")
    assert "warning:" in proc.stderr and "git lfs pull" in proc.stderr
    assert "model.bin" in proc.stderr
    [run] = runs_json(clone)
    assert any("git lfs pull" in w for w in run["warnings"])
    [entry] = _input_files(clone, run)
    assert entry["source"] == "lfs" and entry["present"] is False
    assert entry["hash"] == "sha256:" + hashlib.sha256(content).hexdigest()

    # With the content downloaded, the same file is the real one: no warning, no fact.
    proc = prov(repo, "run", "-i", "model.bin", "--", "true")
    assert "warning:" not in proc.stderr
    [run] = runs_json(repo)
    [entry] = _input_files(repo, run)
    assert "present" not in entry and "warnings" not in run


@pytest.mark.skipif(not _tool("git", "annex", "version"), reason="git-annex is not installed")
def test_annexed_content_that_is_absent_is_recorded_with_a_hint_to_get_it(repo: Path) -> None:
    git(repo, "annex", "init", "-q", "test")
    (repo / "data").mkdir()
    content = os.urandom(5000)
    (repo / "data" / "big.bin").write_bytes(content)
    git(repo, "annex", "add", "-q", "data")
    git(repo, "commit", "-q", "-m", "data")
    git(repo, "annex", "drop", "-q", "--force", "data/big.bin")
    assert not (repo / "data" / "big.bin").exists()  # a link to content that is not here

    proc = prov(repo, "run", "-i", "data", "--", "true", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "git annex get data/big.bin" in proc.stderr
    [run] = runs_json(repo)
    assert any("git annex get" in w for w in run["warnings"])
    [entry] = _input_files(repo, run)
    assert entry["source"] == "annex" and entry["present"] is False
    assert entry["hash"] == "sha256:" + hashlib.sha256(content).hexdigest()
    assert entry["size"] == len(content)

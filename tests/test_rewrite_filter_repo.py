"""`git filter-repo` (issue 15, item 5): with its default (every ref) it rewrites
refs/prov/objects too, so the commits runs ran on are gone; its commit-map says exactly
which commit became which, and runs follow it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from factories import shown_on

FILTER_REPO = shutil.which("git-filter-repo") or str(
    Path(sys.executable).with_name("git-filter-repo")
)
pytestmark = pytest.mark.skipif(
    not Path(FILTER_REPO).exists() and shutil.which("git-filter-repo") is None,
    reason="git-filter-repo is not installed (pip install git-filter-repo)",
)


def _filter_repo(repo: Path, *args: str) -> None:
    subprocess.run(
        [FILTER_REPO, "--force", *args], cwd=repo, check=True, capture_output=True, text=True
    )


def _record(repo: Path, command: str) -> str:
    prov(repo, "record", "--command", command)
    doc = json.loads(prov(repo, "log", "--json", "-n", "1").stdout)
    return str(doc[0]["runs"][-1]["id"])


def test_runs_follow_git_filter_repo_through_its_commit_map(repo: Path) -> None:
    commit_file(repo, "secret.txt", "password\n", "oops")
    first = commit_file(repo, "model.py", "depth = 1\n", "model")
    one = _record(repo, "python train.py")
    second = commit_file(repo, "model.py", "depth = 2\n", "deeper")
    two = _record(repo, "python train.py --deeper")
    _filter_repo(repo, "--invert-paths", "--path", "secret.txt")
    new = {
        s: c
        for c, _, s in (ln.partition(" ") for ln in git(repo, "log", "--format=%H %s").splitlines())
    }
    assert new["model"] != first and new["deeper"] != second
    assert git(repo, "cat-file", "-t", first, check=False) == ""  # the code that ran is gone
    # Before: remap said "no orphaned runs" and show printed commits that do not exist.
    text = prov(repo, "remap").stdout
    assert "filter-repo" in text
    assert shown_on(repo, one)[1:] == (new["model"],)
    assert shown_on(repo, two)[1:] == (new["deeper"],)
    show = prov(repo, "show", two).stdout
    assert f"Also on:     {new['deeper']} (filter-repo)" in show
    assert "Code:" in show and "is not in this repository" in show and "filter-repo" in show
    log = json.loads(prov(repo, "log", "--json", "-n", "1").stdout)
    assert [r["id"] for r in log[0]["runs"]] == [two]
    fsck = prov(repo, "fsck", check=False)
    assert "no longer exists" in fsck.stdout + fsck.stderr
    assert "filter-repo" in fsck.stdout + fsck.stderr
    # Idempotent: a second remap writes nothing new.
    notes = git(repo, "rev-parse", "refs/notes/prov")
    prov(repo, "remap")
    assert git(repo, "rev-parse", "refs/notes/prov") == notes


def test_without_the_commit_map_remap_says_the_code_is_gone(repo: Path) -> None:
    commit_file(repo, "secret.txt", "password\n", "oops")
    commit_file(repo, "model.py", "depth = 1\n", "model")
    run = _record(repo, "python train.py")
    _filter_repo(repo, "--invert-paths", "--path", "secret.txt")
    shutil.rmtree(repo / ".git" / "filter-repo")
    text = prov(repo, "remap").stdout
    assert "1 run(s) ran on code that no longer exists here" in text
    assert "git prov fetch brings them" not in text
    assert "Code:        gone:" in prov(repo, "show", run).stdout

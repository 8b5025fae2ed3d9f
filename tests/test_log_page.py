"""A page of ``git prov log`` (``-n N``) in a history longer than a pipe holds: git is let
write only a page ahead of what is read (git_prov/history.py), and the page is the same as
git's own first N commits, however many times git had to wait for it to be read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git, prov


def _history(path: Path, commits: int) -> None:
    """``commits`` commits on main, made at once by git fast-import."""
    stream = []
    for i in range(1, commits + 1):
        message, content = f"step {i}\n", f"{i}\n"
        stream.append(
            f"commit refs/heads/main\ncommitter A <a@example.com> {1_700_000_000 + i} +0000\n"
            f"data {len(message)}\n{message}M 644 inline f.txt\ndata {len(content)}\n{content}"
        )
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=path, input="".join(stream), text=True, check=True
    )
    git(path, "reset", "-q", "--hard")


def test_a_page_of_a_long_history_is_gits_first_commits(tmp_path: Path) -> None:
    repo = tmp_path / "long"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    _history(repo, 2000)  # (~180 KB of git log's output: 45 pipes of the page's size)
    prov(repo, "record", "--command", "true", "-q")
    for count in (1, 100):
        shown = json.loads(prov(repo, "log", "-n", str(count), "--all-commits", "--json").stdout)
        ids = [c["commit"] for c in shown]
        assert ids == git(repo, "log", "-n", str(count), "--format=%H").split("\n"), count
    paged = prov(repo, "log", "-n", "100", "--all-commits").stdout
    assert paged == prov(repo, "log", "--all-commits").stdout[: len(paged)]

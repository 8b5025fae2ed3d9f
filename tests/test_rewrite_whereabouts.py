"""Where a run is shown now, and links between a run and its reproductions (issue 15,
item 8): after a rebase `find` named the pre-rebase commits while `log` showed the new
ones; a reproduction was recorded on a snapshot no branch reaches, without params, and
the run it reproduces did not mention it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import commit_file, git, prov


def _find_json(repo: Path, *args: str) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = json.loads(prov(repo, "find", "--json", *args).stdout)
    return doc


def test_find_shows_where_a_run_is_shown_now_and_where_it_ran(repo: Path) -> None:
    prov(repo, "hooks", "install")
    git(repo, "checkout", "-q", "-b", "feature")
    original = commit_file(repo, "model.py", "depth = 1\n", "model")
    prov(repo, "run", "--", "sh", "-c", "echo trained")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "main.py", "m\n", "main moves")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")
    rebased = git(repo, "rev-parse", "HEAD")
    assert rebased != original
    [run] = _find_json(repo)
    assert run["commit"] == original  # where it ran: the record is never edited
    assert run["shown_now"] == rebased  # where git log shows it now
    table = prov(repo, "find").stdout
    header, row = table.splitlines()[:2]
    assert "COMMIT" in header and "RAN ON" in header
    assert rebased[:7] in row and original[:7] in row
    assert row.index(rebased[:7]) < row.index(original[:7])


def test_a_reproduction_is_recorded_on_the_runs_code_with_its_params_and_linked_both_ways(
    repo: Path,
) -> None:
    commit = commit_file(repo, "train.sh", "echo acc=1\n", "train")
    (repo / "notes.txt").write_text("dirty\n")  # untracked: the run gets a snapshot
    prov(repo, "run", "-p", "lr=0.1", "--", "sh", "train.sh")
    [original] = _find_json(repo)
    assert original["snapshot"] and original["params"] == {"lr": 0.1}
    done = prov(repo, "reproduce", original["id"], "--yes", check=False)
    assert done.returncode in (0, 1), done.stderr
    runs = {r["id"]: r for r in _find_json(repo)}
    [again] = [r for r in runs.values() if r.get("reproduces") == original["id"]]
    assert again["commit"] == commit  # not the snapshot, which no branch reaches
    assert again["snapshot"] == original["snapshot"]  # the same exact code
    assert again["params"] == {"lr": 0.1}
    show = prov(repo, "show", original["id"]).stdout
    assert f"Reproduced:  {again['short_id']}" in show
    doc = json.loads(prov(repo, "show", "--json", original["id"]).stdout)
    assert doc["reproduced_by"] == [again["id"]]
    assert f"Reproduces:  {original['id']}" in prov(repo, "show", again["id"]).stdout

"""remap attaches a run only with evidence that a reachable commit is a *copy* of the commit it
ran on (issue 15, items 3 and 4): the same change alone is not enough — two people make the
same one-line change independently. Weaker matches are listed as candidates, never attached."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov
from factories import shown_on, write_run, write_runs

from git_prov import sync
from git_prov.rewrite import remap
from git_prov.store.repo import open_repo


def _at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Commits made from now on carry this author and committer date."""
    monkeypatch.setenv("GIT_AUTHOR_DATE", when)
    monkeypatch.setenv("GIT_COMMITTER_DATE", when)


def _chmod_commit(repo: Path) -> str:
    os.chmod(repo / "s.sh", 0o755)
    git(repo, "add", "s.sh")
    git(repo, "commit", "-q", "-m", "chmod +x s.sh")
    return git(repo, "rev-parse", "HEAD")


def _remap_json(repo: Path, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(prov(repo, "remap", "--json", *args).stdout)
    return doc


# ---- item 3: the same change is not a copy ----------------------------------------------------


def test_the_same_change_made_independently_is_a_candidate_never_attached(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_file(repo, "s.sh", "echo hi\n")
    commit_file(repo, "model.py", "depth = 1\n")
    git(repo, "checkout", "-q", "-b", "experiment")
    commit_file(repo, "model.py", "depth = 2\n", "deeper model")
    original = _chmod_commit(repo)
    run = write_run(repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "experiment")
    _at(monkeypatch, "2026-01-05T10:00:00Z")  # days later, someone makes the same commit
    same = _chmod_commit(repo)
    assert git(repo, "show", f"{same}:model.py") == "depth = 1"  # not the code that ran
    dry = _remap_json(repo, "--dry-run")
    assert dry["matched"] == []
    [candidate] = dry["unconfirmed"]
    assert (candidate["run"], candidate["commit"], candidate["how"]) == (run.id, same, "patch-id")
    assert "author date" in candidate["missing"]
    text = prov(repo, "remap").stdout
    assert "not attached" in text and same[:7] in text and "author date" in text
    assert shown_on(repo, run.id) == (original,)
    show = prov(repo, "show", run.id).stdout
    assert f"Candidate:   {same} has the same change (patch-id" in show


def test_a_copy_keeps_author_date_and_message_and_is_attached(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_file(repo, "s.sh", "echo hi\n")
    git(repo, "checkout", "-q", "-b", "experiment")
    original = _chmod_commit(repo)
    run = write_run(repo)
    git(repo, "checkout", "-q", "main")
    _at(monkeypatch, "2026-01-05T10:00:00Z")
    commit_file(repo, "other.txt", "main moves\n")
    git(repo, "cherry-pick", "-x", original)  # keeps author, author date; names the original
    copy = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "experiment")
    [match] = remap(open_repo(repo)).matched
    assert (match.run, match.commit, match.how) == (run.id, copy, "patch-id")
    log = prov(repo, "log", "-n", "1").stdout
    assert f"ran on {original[:7]}, patch-id" in log
    assert f"Also on:     {copy} (patch-id)" in prov(repo, "show", run.id).stdout


def test_git_prov_fetch_never_attaches_to_an_unrelated_commit_of_another_clone(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_file(repo, "s.sh", "echo hi\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(remote), str(a))
    git(tmp_path, "clone", "-q", str(remote), str(b))
    git(a, "checkout", "-q", "-b", "experiment")  # never pushed
    commit_file(a, "model.py", "depth = 2\n", "deeper model")
    _chmod_commit(a)
    [run] = write_runs(a, 1)
    sync.push(open_repo(a))  # the provenance (and the code it ran on) travels
    _at(monkeypatch, "2026-01-05T10:00:00Z")
    unrelated = _chmod_commit(b)
    git(b, "push", "-q", "origin", "main")
    done = prov(b, "fetch")
    assert "attached" not in done.stdout
    assert unrelated not in shown_on(b, run.id)


def test_a_squashed_toggle_made_again_on_main_is_not_a_squash_of_the_branch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_file(repo, "config.py", "flag = False\n")
    git(repo, "checkout", "-q", "-b", "feature")
    commit_file(repo, "config.py", "flag = True\ndebug = 1\n", "try the flag")
    first = write_run(repo)
    commit_file(repo, "config.py", "flag = True\n", "no debug")
    second = write_run(repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "feature")  # abandoned
    _at(monkeypatch, "2026-01-05T10:00:00Z")
    commit_file(repo, "other.py", "x\n", "main moves")
    toggle = commit_file(repo, "config.py", "flag = True\n", "enable the flag")
    report = remap(open_repo(repo))
    assert report.matched == ()
    assert {(c.run, c.commit) for c in report.unconfirmed} == {
        (first.id, toggle),
        (second.id, toggle),
    }
    assert toggle not in shown_on(repo, second.id)


# ---- item 4: hosting merges ---------------------------------------------------------------------


def test_a_branch_updated_from_main_midway_then_squash_merged_reattaches_every_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    runs = [write_run(repo, commit_file(repo, "model.py", "v1\n", "model v1"))]
    runs.append(write_run(repo, commit_file(repo, "data.py", "d\n", "data loader")))
    git(repo, "checkout", "-q", "main")
    _at(monkeypatch, "2026-01-03T10:00:00Z")
    commit_file(repo, "main.py", "m\n", "main moves")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "--no-edit", "main")  # the host's "Update branch"
    runs.append(write_run(repo, commit_file(repo, "model.py", "v2\n", "model v2")))
    git(repo, "checkout", "-q", "main")
    _at(monkeypatch, "2026-01-04T10:00:00Z")
    git(repo, "merge", "-q", "--squash", "feature")
    git(repo, "commit", "-q", "-m", "Feature (#3)")
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    report = remap(open_repo(repo))
    assert report.unmatched == () and report.ambiguous == ()
    assert {m.run: m.commit for m in report.matched} == {r.id: squash for r in runs}
    assert {m.how for m in report.matched} <= {"squash of 4 commits", "same tree"}


def test_a_squash_onto_a_moved_main_is_attached_when_its_message_lists_the_commits(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit_file(repo, "prep.py", "prep\n", "no run here")
    one = write_run(repo, commit_file(repo, "model.py", "v1\n", "step 1"))
    two = write_run(repo, commit_file(repo, "model.py", "v2\n", "step 2"))
    git(repo, "checkout", "-q", "main")
    _at(monkeypatch, "2026-01-04T10:00:00Z")
    commit_file(repo, "elsewhere.py", "x\n")  # main moved: no tree equals a feature tree
    git(repo, "merge", "-q", "--squash", "feature")
    message = "Feature (#2)\n\n* no run here\n\n* step 1\n\n* step 2\n"  # a host's default
    git(repo, "commit", "-q", "-m", message)
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    report = remap(open_repo(repo))
    assert {(m.run, m.commit, m.how) for m in report.matched} == {
        (one.id, squash, "squash of 3 commits"),
        (two.id, squash, "squash of 3 commits"),
    }


def test_a_run_on_an_empty_commit_follows_its_own_copy_after_a_rebase_merge(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    work = write_run(repo, commit_file(repo, "model.py", "v1\n", "model"))
    git(repo, "commit", "-q", "--allow-empty", "-m", "rerun with a new seed")
    empty = write_run(repo)
    git(repo, "checkout", "-q", "main")
    _at(monkeypatch, "2026-01-04T10:00:00Z")
    commit_file(repo, "main.py", "m\n", "main moves")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")  # keeps the empty commit (it started empty)
    copies = git(repo, "rev-list", "--reverse", "main..feature").splitlines()
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "feature")
    git(repo, "branch", "-q", "-D", "feature")
    report = remap(open_repo(repo))
    assert {m.run: m.commit for m in report.matched} == {work.id: copies[0], empty.id: copies[1]}

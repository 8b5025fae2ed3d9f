"""`git prov remap`: orphaned runs found again after rewrites git ran no hook for
(cherry-picks, a hosting service's squash and rebase merges, hand-resolved conflicts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov
from factories import make_record, shown_on, write_run

from git_prov.capture.source import patch_id
from git_prov.rewrite import find_orphans, matching, patch_ids, remap, remap_rewritten
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo


def _remap_json(repo: Path, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(prov(repo, "remap", "--json", *args).stdout)
    return doc


def _git_patch_id(repo: Path, commit: str) -> str | None:
    diff = subprocess.run(
        ["git", "diff-tree", "-p", "--no-renames", "--full-index", "--root", commit],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    out = subprocess.run(
        ["git", "patch-id", "--stable"], cwd=repo, input=diff, capture_output=True, check=True
    ).stdout.split()
    return out[0].decode() if out else None


# ---- patch-ids -----------------------------------------------------------------------------


def test_batched_patch_ids_agree_with_git_and_the_per_commit_cache(repo: Path) -> None:
    root = git(repo, "rev-parse", "HEAD")
    (repo / "blob.bin").write_bytes(b"\0\1\2binary")
    git(repo, "add", "blob.bin")
    git(repo, "commit", "-q", "-m", "binary")
    binary = git(repo, "rev-parse", "HEAD")
    (repo / "blob.bin").write_bytes(b"\0\1\3other binary")
    git(repo, "commit", "-q", "-am", "binary again")
    binary2 = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    empty = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "side", root)
    side = commit_file(repo, "side.txt", "s\n")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "side")
    merge = git(repo, "rev-parse", "HEAD")
    git(repo, "config", "diff.noprefix", "true")  # must not change anything
    commits = [root, binary, binary2, empty, side, merge]
    gprov = open_repo(repo)
    batched = patch_ids(gprov, commits)
    assert batched == {c: _git_patch_id(repo, c) for c in commits}
    assert batched[empty] is None and batched[merge] is None and batched[binary] != batched[binary2]
    # The same cache as capture.source.patch_id: it reads what the batch wrote, and back.
    assert all(patch_id(gprov, c) == batched[c] for c in commits)
    cache = gprov.prov_dir / "patch-id"
    assert (cache / binary[:2] / binary[2:]).read_text() == batched[binary]


# ---- cherry-pick ---------------------------------------------------------------------------


def test_cherry_pick_keeps_the_original_reachable_so_only_asked_remaps_attach(
    repo: Path,
) -> None:
    git(repo, "checkout", "-q", "-b", "experiment")
    original = commit_file(repo, "fix.py", "fixed\n", "the fix")
    run = write_run(repo)
    git(repo, "checkout", "-q", "-b", "release", "main")
    commit_file(repo, "release.txt", "1.0\n")
    git(repo, "cherry-pick", original)
    copy = git(repo, "rev-parse", "HEAD")
    # The original is still on `experiment`: the run is not orphaned; nothing happens.
    assert find_orphans(open_repo(repo)) == []
    doc = _remap_json(repo)
    assert doc["matched"] == [] and doc["orphans"] == 0
    # Asked to look at `release`, remap shows the run on the cherry-picked copy.
    dry = _remap_json(repo, "--dry-run", "--include-reachable", "release")
    assert [m["commit"] for m in dry["matched"]] == [copy]
    assert shown_on(repo, run.id) == (original,)
    text = prov(repo, "remap", "--include-reachable", "release").stdout
    assert f"ran on {original[:7]} → now also on {copy[:7]} (patch-id)" in text
    assert shown_on(repo, run.id) == (original, copy)


def test_cherry_pick_then_original_branch_deleted_is_found_by_patch_id(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "experiment")
    original = commit_file(repo, "fix.py", "fixed\n", "the fix")
    run = write_run(repo)
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "other.txt", "moved on\n")
    git(repo, "cherry-pick", original)
    copy = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "experiment")
    assert [r.id for r in find_orphans(open_repo(repo))] == [run.id]
    report = remap(open_repo(repo))
    assert [(m.run, m.commit, m.how, m.original) for m in report.matched] == [
        (run.id, copy, "patch-id", original)
    ]
    assert report.written and shown_on(repo, run.id) == (original, copy)
    assert find_orphans(open_repo(repo)) == []


# ---- hosting-service merges in another clone -------------------------------------------------


def _clone(source: Path, path: Path) -> Path:
    git(source.parent, "clone", "-q", str(source), str(path))
    return path


def test_squash_and_rebase_merges_done_elsewhere_then_gc(tmp_path: Path, repo: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    mine = _clone(remote, tmp_path / "mine")
    # Two feature branches with runs on every commit, pushed for review.
    git(mine, "checkout", "-q", "-b", "feature")
    squashed = []
    for n in range(3):
        commit_file(mine, "model.py", f"depth = {n}\n", f"feature step {n}")
        squashed.append(write_run(mine))
    git(mine, "checkout", "-q", "-b", "feature2", "main")
    rebased = []
    for n in range(2):
        commit_file(mine, f"data{n}.py", f"{n}\n", f"feature2 step {n}")
        rebased.append(write_run(mine))
    git(mine, "push", "-q", "origin", "feature", "feature2")
    # The hosting service: squash-merge `feature`, rebase-merge `feature2`, delete both.
    host = _clone(remote, tmp_path / "host")
    git(host, "merge", "-q", "--squash", "origin/feature")
    git(host, "commit", "-q", "-m", "Feature (#1)")
    squash_commit = git(host, "rev-parse", "HEAD")
    git(host, "checkout", "-q", "-b", "f2", "origin/feature2")
    git(host, "rebase", "-q", "main")
    git(host, "checkout", "-q", "main")
    git(host, "merge", "-q", "--ff-only", "f2")
    git(host, "push", "-q", "origin", "main", ":feature", ":feature2")
    copies = git(host, "rev-list", "--reverse", f"{squash_commit}..main").splitlines()
    # Back in the recording clone: fetch, prune, drop the local branches.
    git(mine, "checkout", "-q", "main")
    git(mine, "fetch", "-q", "--prune")
    git(mine, "branch", "-q", "-D", "feature", "feature2")
    assert len(find_orphans(open_repo(mine))) == 5
    doc = _remap_json(mine)
    got = {m["run"]: (m["commit"], m["how"]) for m in doc["matched"]}
    assert got == {
        **{r.id: (squash_commit, "squash of 3 commits") for r in squashed},
        rebased[0].id: (copies[0], "patch-id"),
        rebased[1].id: (copies[1], "patch-id"),
    }
    assert doc["ambiguous"] == [] and doc["unmatched"] == []
    # A second remap with nothing changed does no work.
    again = _remap_json(mine)
    assert again["up_to_date"] and again["matched"] == []
    # gc with every reflog gone: runs and the code they ran on survive.
    git(mine, "reflog", "expire", "--expire=now", "--all")
    git(mine, "gc", "-q", "--prune=now")
    first = squashed[0]
    show = prov(mine, "show", first.id).stdout
    assert f"Also on:     {squash_commit} (squash of 3 commits)" in show
    assert git(mine, "show", f"{first.commit}:model.py") == "depth = 0"
    assert git(mine, "show", f"{rebased[1].commit}:data1.py") == "1"
    log = prov(mine, "log", "origin/main").stdout
    assert f"ran on {first.commit[:7]}" in log


def test_squash_from_the_fork_point_onto_a_moved_main_without_evidence_is_only_listed(
    repo: Path,
) -> None:
    # (With a message naming the squashed commits it is attached: test_rewrite_evidence.)
    git(repo, "checkout", "-q", "-b", "feature")
    commit_file(repo, "prep.py", "prep\n", "no run here")
    commit_file(repo, "model.py", "v1\n", "step 1")
    one = write_run(repo)
    commit_file(repo, "model.py", "v2\n", "step 2")
    two = write_run(repo)
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "elsewhere.py", "x\n")  # main moved: no tree equals a feature tree
    git(repo, "merge", "-q", "--squash", "feature")
    git(repo, "commit", "-q", "-m", "Feature (#2)")
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    report = remap(open_repo(repo))
    assert report.matched == ()
    assert {(c.run, c.commit, c.how, c.missing) for c in report.unconfirmed} == {
        (one.id, squash, "squash of 3 commits", "tree, message"),
        (two.id, squash, "squash of 3 commits", "tree, message"),
    }


def test_a_run_that_followed_an_amend_is_found_through_the_amended_commit(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    original = commit_file(repo, "model.py", "v1\n", "model")
    run = write_run(repo)
    commit_file(repo, "model.py", "v1 fixed\n")
    git(repo, "reset", "-q", "--soft", "HEAD~2")
    git(repo, "commit", "-q", "-m", "model, fixed")  # rewritten by hand: a different change
    amended = git(repo, "rev-parse", "HEAD")
    remap_rewritten(open_repo(repo), [(original, amended)], "amend")  # as the hook does
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "other.py", "x\n")
    git(repo, "cherry-pick", amended)
    copy = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    [match] = remap(open_repo(repo)).matched
    assert (match.run, match.commit, match.original, match.via, match.how) == (
        run.id,
        copy,
        original,
        amended,
        "patch-id",
    )
    shown = shown_on(repo, run.id)  # the commit it ran on first, then the others
    assert shown[0] == original and set(shown) == {original, amended, copy}


# ---- conflicts, same tree, ambiguity ----------------------------------------------------------


def test_rebase_with_a_hand_resolved_conflict_is_never_attached(repo: Path) -> None:
    commit_file(repo, "config.py", "lr = 0.1\nepochs = 1\n")
    git(repo, "checkout", "-q", "-b", "feature")
    original = commit_file(repo, "config.py", "lr = 0.2\nepochs = 1\n", "tune lr")
    run = write_run(repo)
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "config.py", "lr = 0.5\nepochs = 1\n", "main tunes lr too")
    git(repo, "checkout", "-q", "feature")
    proc = subprocess.run(["git", "rebase", "-q", "main"], cwd=repo, capture_output=True)
    assert proc.returncode != 0  # a conflict
    (repo / "config.py").write_text("lr = 0.3\nepochs = 1\n")  # resolved by hand
    git(repo, "add", "config.py")
    subprocess.run(
        ["git", "-c", "core.editor=true", "rebase", "--continue"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    assert git(repo, "rev-parse", "HEAD") != original
    report = remap(open_repo(repo))
    assert report.matched == () and report.ambiguous == ()
    [unmatched] = report.unmatched
    assert unmatched.run == run.id and unmatched.original == original
    assert shown_on(repo, run.id) == (original,)


def test_same_tree_is_the_safe_fallback_when_patch_ids_differ(repo: Path) -> None:
    commit_file(repo, "config.py", "lr = 0.1\n")
    git(repo, "checkout", "-q", "-b", "feature")
    original = commit_file(repo, "config.py", "lr = 0.3\n", "lr 0.3")
    run = write_run(repo)
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "config.py", "lr = 0.2\n", "lr 0.2")
    same = commit_file(repo, "config.py", "lr = 0.3\n", "lr 0.3 after all")
    git(repo, "branch", "-q", "-D", "feature")
    report = remap(open_repo(repo))
    assert [(m.run, m.commit, m.how) for m in report.matched] == [(run.id, same, "same tree")]
    assert shown_on(repo, run.id) == (original, same)


def test_several_copies_are_ambiguous_and_not_attached(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "experiment")
    original = commit_file(repo, "fix.py", "fixed\n", "the fix")
    run = write_run(repo)
    copies = []
    for branch in ("release-1", "release-2"):
        git(repo, "checkout", "-q", "-b", branch, "main")
        commit_file(repo, f"{branch}.txt", "x\n")
        git(repo, "cherry-pick", original)
        copies.append(git(repo, "rev-parse", "HEAD"))
    git(repo, "branch", "-q", "-D", "experiment")
    report = remap(open_repo(repo))
    assert report.matched == ()
    [amb] = report.ambiguous
    assert amb.run == run.id and amb.candidates == tuple(sorted(copies)) and amb.how == "patch-id"
    assert shown_on(repo, run.id) == (original,)
    text = prov(repo, "remap").stdout
    assert "nothing changed since the last remap" in text and "ambiguous" in text


# ---- cost: one write, watermark, dry run --------------------------------------------------------


def test_many_orphans_one_write_and_no_work_when_nothing_changed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    records = []
    ledger = Ledger(open_repo(repo))
    for n in range(12):
        commit = commit_file(repo, f"step{n}.py", f"{n}\n")
        record = make_record(commit)
        records.append((commit, record))
    ledger.write(records, keep=[c for c, _ in records])
    base = git(repo, "rev-parse", "main")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "main.py", "moved\n")
    git(repo, "checkout", "-q", "-b", "copy", "feature")
    git(repo, "rebase", "-q", "main")  # no hook installed: the originals are orphaned
    git(repo, "branch", "-q", "-D", "feature")
    assert git(repo, "merge-base", "main", "copy") != base
    gprov = open_repo(repo)
    notes_before = git(repo, "rev-parse", NOTES_REF)
    dry = remap(gprov, dry_run=True)
    assert len(dry.matched) == 12 and not dry.written
    assert git(repo, "rev-parse", NOTES_REF) == notes_before
    report = remap(gprov)
    assert len(report.matched) == 12 and report.written
    assert git(repo, "rev-parse", f"{NOTES_REF}~1") == notes_before  # one notes commit

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("a remap with nothing changed must not recompute")

    monkeypatch.setattr(matching, "_compute", no_work)
    again = remap(gprov)
    assert again.up_to_date and again.matched == () and not again.written
    monkeypatch.undo()
    commit_file(repo, "later.py", "1\n")  # a ref moved: recomputed, nothing left to do
    assert remap(gprov).orphans == 0


def test_bad_revision_arguments_are_usage_errors(repo: Path) -> None:
    proc = prov(repo, "remap", "--include-reachable", check=False)
    assert proc.returncode == 2 and "needs a REV-RANGE" in proc.stderr
    write_run(repo)
    git(repo, "commit", "-q", "--amend", "-m", "orphan the run")
    proc = prov(repo, "remap", "no-such-branch", check=False)
    assert proc.returncode == 2
    assert "bad revision 'no-such-branch': it names no commit" in proc.stderr
    proc = prov(repo, "remap", "--", "--all", check=False)
    assert proc.returncode == 2

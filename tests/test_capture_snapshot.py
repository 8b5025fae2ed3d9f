"""Dirty-tree snapshots of many untracked files: a private index (under the git dir) keeps
git's stat data between records, so an unchanged tree is not added again; and the bytes
(snapshot, data manifest) stay exactly what they were before that index existed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import git, prov, runs_json

from git_prov.capture.source import SourceState, _index_tree, capture_source
from git_prov.store.repo import open_repo


def _dirty_tree(repo: Path) -> None:
    """Tracked edits, untracked files in new and tracked directories, an executable, a
    symlink, a secret file and declared data."""
    (repo / "README.md").write_text("# changed\n")
    for i in range(12):
        sub = repo / "gen" / f"d{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")
    (repo / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "tool.sh").chmod(0o755)
    os.symlink("tool.sh", repo / "tool-link")
    (repo / ".env").write_text("TOKEN=x\n")
    (repo / "data").mkdir()
    for i in range(3):
        (repo / "data" / f"part{i}.bin").write_bytes(bytes([i]) * 4096)


def _children(trace: Path) -> list[list[str]]:
    """The argv of every git process a GIT_TRACE2_EVENT file shows."""
    found = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "start":
            found.append(event["argv"])
    return found


def test_unchanged_dirty_tree_is_not_added_again_and_bytes_are_unchanged(
    repo: Path, tmp_path: Path
) -> None:
    _dirty_tree(repo)
    prov(repo, "record", "-i", "data", "--command", "true")
    trace = tmp_path / "trace.json"
    prov(repo, "record", "-i", "data", "--command", "true", env={"GIT_TRACE2_EVENT": str(trace)})
    argvs = _children(trace)
    assert any("write-tree" in argv for argv in argvs)  # a snapshot was built …
    adding = [
        argv
        for argv in argvs
        if ("update-index" in argv and "--add" in argv)
        or any(a.startswith("--pathspec-from-file") for a in argv)
    ]
    assert adding == []  # … without adding any untracked file again
    # Ids computed by git-prov before the snapshot index existed (same inputs, hermetic
    # identity and dates): the bytes of a snapshot and a data manifest did not move.
    first, second = runs_json(repo)
    assert first["snapshot"] == second["snapshot"] == SNAPSHOT
    assert first["inputs"] == second["inputs"] == INPUTS


def test_reused_index_gives_the_tree_git_add_gives(repo: Path) -> None:
    _dirty_tree(repo)
    prov(repo, "record", "--command", "true")
    assert list((repo / ".git" / "prov").glob("snapshot-untracked-*.index"))
    # Change what the kept index holds: edit (same size), delete, add, turn a file into a
    # directory, start tracking one, and make one a secret.
    (repo / "gen" / "d0" / "f0.txt").write_text("FILE 0\n")
    (repo / "gen" / "d1" / "f1.txt").unlink()
    (repo / "gen" / "d2" / "f2.txt").unlink()
    (repo / "gen" / "d2" / "f2.txt").mkdir()
    (repo / "gen" / "d2" / "f2.txt" / "inner").write_text("inner\n")
    (repo / "gen" / "new.txt").write_text("new\n")
    git(repo, "add", "gen/d0/f3.txt")
    (repo / "gen" / "d1" / "f4.txt").rename(repo / "gen" / "d1" / "f4.pem")
    opened = open_repo(repo)
    state = capture_source(opened, exclude=["data"])
    assert state.snapshot is not None
    status = git(repo, "status", "--porcelain", "-uall").splitlines()
    untracked = [
        line[3:]
        for line in status
        if line.startswith("?? ")
        and not line[3:].startswith("data/")
        and line[3:] != ".env"
        and not line.endswith(".pem")
    ]
    assert "gen/new.txt" in untracked
    tree = git(repo, "rev-parse", f"{state.snapshot}^{{tree}}")
    assert tree == _index_tree(opened, untracked)
    # That snapshot is not recorded (as `git prov check`'s): the recorded one's index
    # stays beside it, for the next record to start from.
    [run] = runs_json(repo)
    kept = {p.name for p in (repo / ".git" / "prov").glob("snapshot-untracked-*.index")}
    assert kept == {f"snapshot-untracked-{s}.index" for s in (run["snapshot"], state.snapshot)}


SNAPSHOT = "0c9436ac5f76483d3fe5379146dbe6f6651f8568"
INPUTS = "6f0516671c48c5ffaed9858a83b2e8909b39c158"


def test_a_large_unchanged_manifest_is_stored_once_with_the_same_bytes(repo: Path) -> None:
    from git_prov.model.manifest import DataEntry, DataManifest
    from git_prov.record_parts import store_manifest as _store_manifest
    from git_prov.store.ledger import Ledger

    ledger = Ledger(open_repo(repo))
    entries = [DataEntry(f"data/f{i:04d}", 4096, f"sha256:{i:064x}") for i in range(300)]
    manifest = DataManifest.build(["data"], entries)
    plain = ledger.store_object(manifest.to_toml())
    memo = repo / ".git" / "prov" / "manifest-ids"
    assert _store_manifest(ledger, manifest) == plain
    [remembered] = memo.iterdir()
    assert remembered.read_text().strip() == plain
    assert _store_manifest(ledger, manifest) == plain  # (from the memo)
    remembered.write_text("0" * 40 + "\n")  # a blob this repository lacks: not trusted
    assert _store_manifest(ledger, manifest) == plain
    changed = DataManifest.build(["data"], [*entries[:-1], DataEntry("data/f0299", 1, "git:1")])
    assert _store_manifest(ledger, changed) == ledger.store_object(changed.to_toml())


# ---- the kept index's state: what changes between records, and what git must see ----


def _gen(repo: Path, count: int = 9) -> None:
    for i in range(count):
        sub = repo / "gen" / f"d{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")


def _capture(repo: Path, trace: Path | None = None, limit: int = 1 << 20) -> SourceState:
    """A snapshot of ``repo``'s tree, the git children's trace in ``trace``."""
    with pytest.MonkeyPatch.context() as patch:
        if trace is not None:
            patch.setenv("GIT_TRACE2_EVENT", str(trace))
        return capture_source(open_repo(repo), max_untracked_bytes=limit)


def _without_cache(repo: Path, limit: int = 1 << 20) -> SourceState:
    """The same snapshot taken with no kept index: from scratch."""
    for old in (repo / ".git" / "prov").glob("snapshot-untracked-*"):
        old.unlink()
    return _capture(repo, limit=limit)


def _plain_tree(repo: Path, omitted: tuple[str, ...] = ()) -> str:
    """The tree `git add` gives for the untracked files (what snapshots were before)."""
    status = git(repo, "status", "--porcelain", "-uall").splitlines()
    untracked = [line[3:] for line in status if line.startswith("?? ")]
    return _index_tree(open_repo(repo), [p for p in untracked if p not in omitted])


def _adding(trace: Path) -> list[list[str]]:
    """The git children that hash files into an index."""
    return [
        argv
        for argv in _children(trace)
        if ("update-index" in argv and "--add" in argv)
        or argv[1:2] == ["add"]
        or any(a.startswith("--pathspec-from-file") for a in argv)
    ]


def _keep_for_record(repo: Path, state: SourceState) -> None:
    """Keep ``state``'s snapshot as a record would (the kept index is trusted only while
    refs/prov/objects keeps its snapshot)."""
    from git_prov.store.ledger import Ledger

    assert state.snapshot is not None
    Ledger(open_repo(repo)).write([], keep=[state.snapshot])


def test_an_unchanged_tree_is_taken_from_the_kept_index_without_listing_it(
    repo: Path, tmp_path: Path
) -> None:
    _gen(repo)
    first = _capture(repo)
    _keep_for_record(repo, first)
    trace = tmp_path / "trace.json"
    again = _capture(repo, trace)
    assert again == first
    ran = {argv[1] for argv in _children(trace)}
    assert "diff-files" in ran  # git lstat'ed every kept file …
    assert not ran & {"ls-files", "update-index", "add", "write-tree"}  # … and that was all
    assert _without_cache(repo) == first


def test_a_same_size_edit_with_the_same_mtime_is_seen_by_gits_racy_rule(
    repo: Path, tmp_path: Path
) -> None:
    # No ctime (core.trustctime=false): only git's racy-file rule can tell this edit from
    # no change. The file's mtime is the kept index's own, so git must look at its bytes —
    # provided the record's working index keeps the kept one's mtime.
    git(repo, "config", "core.trustctime", "false")
    _gen(repo)
    target = repo / "gen" / "d0" / "f0.txt"
    past = target.stat().st_mtime_ns - 100 * 10**9
    os.utime(target, ns=(past, past))
    _keep_for_record(repo, _capture(repo))
    [kept] = (repo / ".git" / "prov").glob("snapshot-untracked-*.index")
    os.utime(kept, ns=(past, past))
    inode = target.stat().st_ino
    with open(target, "r+") as f:  # in place: the same inode, size and mtime
        f.write("FILE 0\n")
    os.utime(target, ns=(past, past))
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (inode, past)
    state = _capture(repo, tmp_path / "trace.json")
    assert state.snapshot is not None
    assert git(repo, "show", f"{state.snapshot}:gen/d0/f0.txt") == "FILE 0"
    assert git(repo, "rev-parse", f"{state.snapshot}^{{tree}}") == _plain_tree(repo)


def test_a_same_size_edit_within_the_index_s_second_is_seen_on_the_fast_path(
    repo: Path, tmp_path: Path
) -> None:
    # The file's mtime is past the kept index's (it was written after git read it):
    # racily clean, whatever the index file's mtime; the listing is unchanged.
    git(repo, "config", "core.trustctime", "false")
    _gen(repo)
    target = repo / "gen" / "d1" / "f1.txt"
    future = target.stat().st_mtime_ns + 1000 * 10**9
    os.utime(target, ns=(future, future))
    first = _capture(repo)
    _keep_for_record(repo, first)
    with open(target, "r+") as f:
        f.write("FILE 1\n")
    os.utime(target, ns=(future, future))
    trace = tmp_path / "trace.json"
    state = _capture(repo, trace)
    assert "ls-files" not in {argv[1] for argv in _children(trace)}  # the same listing
    assert state.snapshot not in (None, first.snapshot)
    assert git(repo, "show", f"{state.snapshot}:gen/d1/f1.txt") == "FILE 1"
    assert git(repo, "rev-parse", f"{state.snapshot}^{{tree}}") == _plain_tree(repo)
    assert _without_cache(repo) == state


def test_a_deleted_untracked_file_leaves_the_snapshot_without_adding_any(
    repo: Path, tmp_path: Path
) -> None:
    _gen(repo)
    _keep_for_record(repo, _capture(repo))
    (repo / "gen" / "d1" / "f4.txt").unlink()
    trace = tmp_path / "trace.json"
    state = _capture(repo, trace)
    assert _adding(trace) == []
    assert state.snapshot is not None
    assert git(repo, "rev-parse", f"{state.snapshot}^{{tree}}") == _plain_tree(repo)
    assert _without_cache(repo) == state


def test_a_new_file_in_a_known_untracked_directory_is_the_only_one_hashed(
    repo: Path, tmp_path: Path
) -> None:
    _gen(repo)
    _keep_for_record(repo, _capture(repo))
    objects = repo / ".git" / "objects"
    old = 10**18  # 2001: git freshens (touches) an object it is asked to write again
    for loose in objects.glob("??/*"):
        os.utime(loose, ns=(old, old))
    (repo / "gen" / "d2" / "new.txt").write_text("new\n")
    trace = tmp_path / "trace.json"
    state = _capture(repo, trace)
    assert len(_adding(trace)) == 1  # one update-index --add …
    assert state.snapshot is not None
    fresh = git(repo, "rev-parse", f"{state.snapshot}:gen/d2/new.txt")
    for i in range(9):  # … that hashed no file it had already
        blob = git(repo, "rev-parse", f"{state.snapshot}:gen/d{i % 3}/f{i}.txt")
        assert (objects / blob[:2] / blob[2:]).stat().st_mtime_ns == old
    assert (objects / fresh[:2] / fresh[2:]).stat().st_mtime_ns != old
    assert git(repo, "rev-parse", f"{state.snapshot}^{{tree}}") == _plain_tree(repo)
    assert _without_cache(repo) == state


def test_a_file_grown_past_the_size_limit_is_left_out_and_named(repo: Path) -> None:
    _gen(repo)
    _keep_for_record(repo, _capture(repo, limit=100))
    (repo / "gen" / "d2" / "f5.txt").write_text("x" * 101)
    state = _capture(repo, limit=100)
    assert state.omitted == ("gen/d2/f5.txt",)
    assert state.snapshot is not None
    assert "  gen/d2/f5.txt\n" in git(repo, "log", "-1", "--format=%B", state.snapshot) + "\n"
    assert git(repo, "cat-file", "-e", f"{state.snapshot}:gen/d2/f5.txt", check=False) == ""
    tree = _plain_tree(repo, omitted=("gen/d2/f5.txt",))
    assert git(repo, "rev-parse", f"{state.snapshot}^{{tree}}") == tree
    assert _without_cache(repo, limit=100) == state
    # Back under the limit: in the snapshot again, named no more.
    (repo / "gen" / "d2" / "f5.txt").write_text("x" * 10)
    back = _capture(repo, limit=100)
    assert back.omitted == ()
    assert git(repo, "rev-parse", f"{back.snapshot}^{{tree}}") == _plain_tree(repo)


def test_the_dirty_tree_hint_is_the_same_from_the_remembered_listing(
    repo: Path, tmp_path: Path
) -> None:
    _gen(repo, 5)
    first = prov(repo, "record", "--command", "true").stderr
    trace = tmp_path / "trace.json"
    again = prov(repo, "record", "--command", "true", env={"GIT_TRACE2_EVENT": str(trace)})
    hint = "because of 5 untracked files in the snapshot: gen/d0/f0.txt, gen/d0/f3.txt, "
    assert hint + "gen/d1/f1.txt and 2 more" in first
    said = [line.partition(": the tree")[2] for line in again.stderr.splitlines() if hint in line]
    assert said == [line.partition(": the tree")[2] for line in first.splitlines() if hint in line]
    assert not any("diff-tree" in argv for argv in _children(trace))


def test_the_kept_index_checked_beside_git_status_is_dropped_when_the_tree_is_clean(
    repo: Path, tmp_path: Path
) -> None:
    # git diff-files on the kept index starts before git status (they run side by side);
    # when status then shows a clean tree, it is stopped and its work index removed.
    _gen(repo)
    _keep_for_record(repo, _capture(repo))
    prov_dir = repo / ".git" / "prov"
    kept = sorted(p.name for p in prov_dir.glob("snapshot-untracked-*"))
    shutil.rmtree(repo / "gen")
    trace = tmp_path / "trace.json"
    state = _capture(repo, trace)
    assert state.snapshot is None
    assert {"diff-files", "status"} <= {argv[1] for argv in _children(trace)}
    assert sorted(p.name for p in prov_dir.glob("snapshot-untracked-*")) == kept  # no .tmp

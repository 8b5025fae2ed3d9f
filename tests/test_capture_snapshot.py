"""Dirty-tree snapshots of many untracked files: a private index (under the git dir) keeps
git's stat data between records, so an unchanged tree is not added again; and the bytes
(snapshot, data manifest) stay exactly what they were before that index existed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import git, prov, runs_json

from git_prov.capture.source import _index_tree, capture_source
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
    from git_prov.recording import _store_manifest
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

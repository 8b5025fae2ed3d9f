"""Re-recording unchanged inputs reuses the manifest stored for them (capture/data_memo.py):
the same bytes as building it again, and never when a file, git's index or DVC could make
the manifest differ."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov, runs_json

from git_prov.capture.data import build_manifest, list_data
from git_prov.capture.data_memo import DataMemo, fingerprint, stat_digest
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

OLD_NS = 1_600_000_000 * 10**9


def _age(path: Path, ns: int = OLD_NS) -> None:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, ns=(ns, ns), follow_symlinks=False)


def _data(repo: Path) -> None:
    data = repo / "data"
    for i in range(30):
        (data / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (data / f"d{i % 3}" / f"f{i:03}.bin").write_bytes(i.to_bytes(2, "big") * 50)
    (data / "line\nbreak.txt").write_text("a name with a newline\n")
    (data / "ünï cödé.txt").write_text("non-ASCII name\n")
    (data / "tool.sh").write_text("#!/bin/sh\n")
    (data / "tool.sh").chmod(0o755)
    os.symlink("d0/f000.bin", data / "link.bin")
    _age(data)
    _age(repo / ".git" / "index")


def _record(repo: Path, trace: Path | None = None) -> str:
    """Record a run reading data/; its inputs manifest id."""
    env = {"GIT_TRACE2_EVENT": str(trace)} if trace is not None else None
    proc = prov(repo, "record", "-i", "data", "--command", "true", env=env)
    match = re.search(r"recorded run ([0-9a-f]+)", proc.stdout + proc.stderr)
    assert match is not None
    [run] = [r for r in runs_json(repo) if str(r["id"]).endswith(match.group(1))]
    return str(run["inputs"])


def _git_children(trace: Path) -> list[list[str]]:
    return [
        event["argv"]
        for event in map(json.loads, trace.read_text().splitlines())
        if event.get("event") == "start"
    ]


def _vouching(children: list[list[str]]) -> list[list[str]]:
    """The git commands a manifest is built with: which declared files git tracks and
    vouches for (``ls-files --stage``, ``status --untracked-files=no``)."""
    return [a for a in children if "--stage" in a or "--untracked-files=no" in a]


def _memo_asking(children: list[list[str]]) -> list[list[str]]:
    """The memo's question, when git's index changed: does git track a declared file?"""
    return [a[a.index("ls-files") :] for a in children if "ls-files" in a and "--stage" not in a]


def _built_id(repo: Path) -> str:
    """The id of the manifest built from scratch (no cache, no memo)."""
    toml = build_manifest(repo, ["data"]).to_toml()
    return git(repo, "hash-object", "--stdin", input=toml.decode())


def test_unchanged_inputs_reuse_the_stored_manifest_without_git_or_the_stat_cache(
    repo: Path, tmp_path: Path
) -> None:
    _data(repo)
    first = _record(repo)
    assert first == _built_id(repo)
    for suffix in ("", "-wal", "-shm"):
        (repo / ".git" / "prov" / f"hash-cache.sqlite{suffix}").unlink(missing_ok=True)
    trace = tmp_path / "trace.json"
    assert _record(repo, trace) == first
    # No manifest was built: git was not asked to vouch for files, the stat cache not opened.
    assert _vouching(_git_children(trace)) == []
    assert not (repo / ".git" / "prov" / "hash-cache.sqlite").exists()


def test_a_new_index_is_asked_about_the_declared_paths_only(repo: Path, tmp_path: Path) -> None:
    _data(repo)
    first = _record(repo)
    commit_file(repo, "code.py", "print(1)\n")  # a new index, too recent to vouch for
    trace = tmp_path / "trace.json"
    assert _record(repo, trace) == first
    children = _git_children(trace)
    assert _vouching(children) == []
    assert _memo_asking(children) == [["ls-files", "-z", "--", "data"]]


def test_an_index_unchanged_since_the_memo_needs_no_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _data(repo)
    first = _record(repo)
    prov_dir, index = repo / ".git" / "prov", repo / ".git" / "index"
    _age(index)  # settled: its stat data now vouch for it
    assert DataMemo(prov_dir, index, list_data(repo, ["data"])).recall() == first  # (rewritten)
    monkeypatch.setenv("PATH", str(repo / "no-such-dir"))  # no git to ask
    assert DataMemo(prov_dir, index, list_data(repo, ["data"])).recall() == first
    os.utime(index, ns=(OLD_NS + 1, OLD_NS + 1))  # another index: git must be asked
    assert DataMemo(prov_dir, index, list_data(repo, ["data"])).recall() is None


def test_a_file_git_starts_tracking_is_named_by_its_blob(repo: Path) -> None:
    _data(repo)
    _record(repo)
    git(repo, "add", "data/d1/f001.bin")
    git(repo, "commit", "-q", "-m", "track one data file")
    _age(repo / ".git" / "index")
    oid = _record(repo)
    entry = Ledger(open_repo(repo)).data_manifest(oid).by_path()["data/d1/f001.bin"]
    assert entry.source == "git"
    assert oid == _built_id(repo)


def test_changed_added_and_removed_files_give_the_manifest_built_afresh(repo: Path) -> None:
    _data(repo)
    ids = {_record(repo)}
    changes = [
        lambda: (repo / "data" / "d0" / "f003.bin").write_bytes(b"\xff" * 100),  # same size
        lambda: (repo / "data" / "d2" / "new.bin").write_bytes(b"new"),
        lambda: (repo / "data" / "d1" / "f004.bin").unlink(),
        lambda: (repo / "data" / "tool.sh").chmod(0o644),
        lambda: os.replace(repo / "data" / "link.bin", repo / "data" / "moved.bin"),
    ]
    for n, change in enumerate(changes):
        change()
        _age(repo / "data", OLD_NS + n + 1)  # old, but not the mtime remembered
        oid = _record(repo)
        assert oid == _built_id(repo)
        assert oid not in ids
        ids.add(oid)


def test_a_file_rewritten_within_the_same_tick_is_hashed_again(repo: Path) -> None:
    _data(repo)
    racy = repo / "data" / "d0" / "f000.bin"
    racy.write_bytes(b"\x01" * 100)  # just written: racy
    before = racy.stat()
    first = _record(repo)
    # Rewritten with the same size, and its mtime put back as it was: only git's racy rule
    # (and the ctime) tell.
    racy.write_bytes(b"\x02" * 100)
    os.utime(racy, ns=(before.st_atime_ns, before.st_mtime_ns))
    oid = _record(repo)
    assert oid != first
    entry = Ledger(open_repo(repo)).data_manifest(oid).by_path()["data/d0/f000.bin"]
    assert entry.hash == "sha256:" + hashlib.sha256(b"\x02" * 100).hexdigest()


def test_racy_listing_has_no_fingerprint(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "a.bin").write_bytes(b"a")
    assert fingerprint(list_data(repo, ["data"])) is None
    _age(repo / "data")
    assert fingerprint(list_data(repo, ["data"])) is not None
    (repo / "data" / "b.bin").write_bytes(b"b")
    assert fingerprint(list_data(repo, ["data"])) is None


def test_no_memo_inside_a_dvc_project_or_for_a_missing_manifest(repo: Path) -> None:
    _data(repo)
    first = _record(repo)
    prov_dir = repo / ".git" / "prov"
    index = repo / ".git" / "index"
    assert DataMemo(prov_dir, index, list_data(repo, ["data"])).recall() == first
    (repo / ".dvc").mkdir()
    assert DataMemo(prov_dir, index, list_data(repo, ["data"])).recall() is None
    (repo / ".dvc").rmdir()
    # A memo naming an object the repository does not have is not used.
    [memo] = (prov_dir / "data-memo").iterdir()
    doc = json.loads(memo.read_text())
    memo.write_text(json.dumps({**doc, "manifest": "1" * 40}))
    assert _record(repo) == first


def test_a_name_that_is_not_utf8_still_fails_after_a_memo(repo: Path) -> None:
    _data(repo)
    _record(repo)
    bad = os.path.join(os.fsencode(repo / "data" / "d0"), b"caf\xe9.bin")
    with open(bad, "wb") as f:
        f.write(b"x")
    os.utime(bad, ns=(OLD_NS, OLD_NS))
    proc = prov(repo, "record", "-i", "data", "--command", "true", check=False)
    assert proc.returncode != 0
    assert "not valid UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_concurrent_records_agree(repo: Path) -> None:
    _data(repo)
    first = _record(repo)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "git_prov", "record", "-i", "data", "--command", "true"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert {str(r["inputs"]) for r in runs_json(repo)} == {first}


def test_a_re_record_of_unchanged_inputs_loads_no_stat_cache(repo: Path) -> None:
    _data(repo)
    _record(repo)
    command = ["record", "-i", "data", "--command", "true"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "git_prov", *command],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "git_prov.capture.data_memo" in modules  # (the import list was read)
    assert not {"git_prov.capture.stat_cache", "sqlite3", "concurrent.futures"} & modules


# --- the fingerprint taken by GNU find (stat_digest), when the data has no symlink ---------


def _plain_data(repo: Path) -> None:
    """Data of regular files and directories only: find can vouch for it."""
    _data(repo)
    (repo / "data" / "link.bin").unlink()
    _age(repo / "data")


def _memo_doc(repo: Path) -> dict[str, object]:
    [memo] = (repo / ".git" / "prov" / "data-memo").iterdir()
    return dict(json.loads(memo.read_text()))


def test_find_vouches_for_plain_files_without_a_walk(repo: Path) -> None:
    _plain_data(repo)
    first = _record(repo)
    assert first == _built_id(repo)
    doc = _memo_doc(repo)
    assert doc["find"] is not None and doc["fingerprint"] is None
    assert "data/d1" in list(doc["directories"])  # type: ignore[arg-type]
    _age(repo / ".git" / "index")
    root, declared = str(repo), ("data",)
    prov_dir, index = repo / ".git" / "prov", repo / ".git" / "index"
    memo = DataMemo.before_walk(prov_dir, index, root, declared)
    assert memo.recall() == first and memo.listing is None  # nothing walked in Python
    (repo / ".dvc").mkdir()
    assert DataMemo.before_walk(prov_dir, index, root, declared).recall() is None
    (repo / ".dvc").rmdir()
    # A symlink (whose target the walk follows) or a racy file: find cannot vouch.
    os.symlink("d0/f000.bin", repo / "data" / "link.bin")
    assert DataMemo.before_walk(prov_dir, index, root, declared).stat_digest is None
    (repo / "data" / "link.bin").unlink()
    (repo / "data" / "d2" / "new.bin").write_bytes(b"new")
    assert DataMemo.before_walk(prov_dir, index, root, declared).stat_digest is None


def test_find_sees_every_change_the_walk_sees(repo: Path) -> None:
    _plain_data(repo)
    ids = {_record(repo)}
    racy = repo / "data" / "d0" / "f000.bin"
    before = racy.stat()
    changes = [
        # Same size, mtime put back: only the ctime tells.
        lambda: (racy.write_bytes(b"\xfe" * 100), os.utime(racy, ns=(OLD_NS, OLD_NS))),
        lambda: (repo / "data" / "d2" / "new.bin").write_bytes(b"new"),
        lambda: (repo / "data" / "d1" / "f004.bin").unlink(),
        lambda: (repo / "data" / "tool.sh").chmod(0o644),
        lambda: os.replace(repo / "data" / "d1", repo / "data" / "d3"),
    ]
    assert before.st_mtime_ns == OLD_NS
    for n, change in enumerate(changes):
        change()
        if n:
            _age(repo / "data", OLD_NS + n)  # old, but not the mtime remembered
        oid = _record(repo)
        assert oid == _built_id(repo)
        assert oid not in ids
        assert _memo_doc(repo)["find"] is not None
        ids.add(oid)


def test_a_find_that_prints_something_else_is_not_trusted(repo: Path, tmp_path: Path) -> None:
    _plain_data(repo)
    root, declared = str(repo), ("data",)
    now = OLD_NS + 100 * 10**9
    assert stat_digest(root, declared, now) is not None
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "find").write_text("#!/bin/sh\nprintf 'd 755 4096 0.0 0.0 1 1 ./data\\0'\n")
    (fake / "find").chmod(0o755)
    os.environ["PATH"], path = f"{fake}:{os.environ['PATH']}", os.environ["PATH"]
    try:
        assert stat_digest(root, declared, now) is None
    finally:
        os.environ["PATH"] = path

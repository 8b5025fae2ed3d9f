"""The data memo's files index (capture/data_memo.py): a re-record of unchanged plain files
asks ``git diff-files`` on a private index of them (and lstats their directories) instead of
running ``find`` or walking; every change is still seen, whatever the repository's git
configuration lets git skip, and only listings nothing changed in just before are indexed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from conftest import git, prov, runs_json

from git_prov.capture.data import build_manifest, list_data
from git_prov.capture.data_memo import remove_memos, write_files_index

OLD_NS = 1_600_000_000 * 10**9
SETTLE = 2.1  # seconds: git's racy window (RACY_NS) past, ctimes included (none can be set)


def _data(repo: Path) -> None:
    data = repo / "data"
    for i in range(12):
        (data / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (data / f"d{i % 3}" / f"f{i:03}.bin").write_bytes(i.to_bytes(2, "big") * 50)
    (data / "empty.bin").write_bytes(b"")
    (data / "ünï\ncödé.txt").write_text("an odd name\n")
    (data / "tool.sh").write_text("#!/bin/sh\n")
    (data / "tool.sh").chmod(0o755)
    for p in [data, *data.rglob("*")]:
        os.utime(p, ns=(OLD_NS, OLD_NS))


def _record(repo: Path, trace: Path | None = None, path: str | None = None) -> str:
    env = {"GIT_TRACE2_EVENT": str(trace)} if trace is not None else {}
    if path is not None:
        env["PATH"] = path
    proc = prov(repo, "record", "-i", "data", "--command", "true", env=env)
    match = re.search(r"recorded run ([0-9a-f]+)", proc.stdout + proc.stderr)
    assert match is not None
    [run] = [r for r in runs_json(repo) if str(r["id"]).endswith(match.group(1))]
    return str(run["inputs"])


def _built_id(repo: Path) -> str:
    toml = build_manifest(repo, ["data"]).to_toml()
    return git(repo, "hash-object", "--stdin", input=toml.decode())


def _memo(repo: Path) -> tuple[Path, dict[str, object]]:
    [memo] = (repo / ".git" / "prov" / "data-memo").iterdir()
    return memo, dict(json.loads(memo.read_text()))


def _git_commands(trace: Path) -> list[list[str]]:
    events = map(json.loads, trace.read_text().splitlines())
    return [e["argv"] for e in events if e.get("event") == "start"]


def _no_find(tmp_path: Path) -> str:
    """A PATH whose ``find`` leaves a mark and fails: a record that runs it is seen."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "find").write_text(f"#!/bin/sh\ntouch {tmp_path / 'find-ran'}\nexit 1\n")
    (fake / "find").chmod(0o755)
    return f"{fake}:{os.environ['PATH']}"


def test_unchanged_plain_files_are_checked_by_git_diff_files_alone(
    repo: Path, tmp_path: Path
) -> None:
    _data(repo)
    time.sleep(SETTLE)
    first = _record(repo)
    assert first == _built_id(repo)
    memo, doc = _memo(repo)
    name = doc["files_index"]
    assert isinstance(name, str)
    index = repo / ".git" / "prov" / "data-index" / name
    listed = subprocess.run(
        ["git", "ls-files", "-z"],
        cwd=repo,
        env={**os.environ, "GIT_INDEX_FILE": str(index)},
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")[:-1]
    assert sorted(listed) == sorted(os.fsencode(p) for p in list_data(repo, ["data"]).files)
    trace = tmp_path / "trace.json"
    assert _record(repo, trace, _no_find(tmp_path)) == first
    assert not (tmp_path / "find-ran").exists()
    commands = _git_commands(trace)
    # One check of the files by git, one snapshot status (they run side by side: the order
    # in which their trace events land is the scheduler's, not ours to assert).
    assert len([a for a in commands if "diff-files" in a]) == 1
    assert len([a for a in commands if "status" in a]) == 1
    # gc's removal of the memo takes its files index too.
    assert remove_memos([memo]) == 1
    assert not index.exists()


def test_every_change_is_seen_though_git_is_configured_to_look_less(
    repo: Path, tmp_path: Path
) -> None:
    hook = tmp_path / "fsmonitor"  # claims nothing ever changed
    hook.write_text("#!/bin/sh\nprintf 'token\\0'\n")
    hook.chmod(0o755)
    for key, value in [
        ("core.trustctime", "false"),
        ("core.checkStat", "minimal"),
        ("core.fsmonitor", str(hook)),
        ("core.ignoreStat", "true"),
    ]:
        git(repo, "config", key, value)
    _data(repo)
    time.sleep(SETTLE)
    ids = {_record(repo)}
    target = repo / "data" / "d0" / "f000.bin"
    renamed = repo / "data" / "d1" / "other.bin"
    changes = [
        # Same size, mtime put back: only the ctime tells (git checks it, trustctime or not).
        lambda: (target.write_bytes(b"\xfe" * 100), os.utime(target, ns=(OLD_NS, OLD_NS))),
        lambda: (repo / "data" / "tool.sh").chmod(0o644),
        lambda: (repo / "data" / "d2" / "new.bin").write_bytes(b"new"),
        # Replaced by a file of the same size and mtime (a new inode, its directory changed).
        lambda: (
            renamed.write_bytes(b"\xfd" * 100),
            os.utime(renamed, ns=(OLD_NS, OLD_NS)),
            os.replace(renamed, repo / "data" / "d1" / "f001.bin"),
        ),
    ]
    for change in changes:
        assert _memo(repo)[1]["files_index"] is not None  # (the index is what answers)
        change()
        oid = _record(repo)
        assert oid == _built_id(repo)
        assert oid not in ids
        ids.add(oid)
        time.sleep(SETTLE)
        assert _record(repo) == oid  # unchanged since: indexed again, now the change is old


def test_only_plain_settled_listings_are_indexed(repo: Path) -> None:
    _data(repo)
    prov_dir = repo / ".git" / "prov"
    listing = list_data(repo, ["data"])
    # Every ctime is just now: racy.
    assert write_files_index(prov_dir, listing, listing.started_ns, 20) is None
    later = listing.started_ns + 10 * 10**9
    written = write_files_index(prov_dir, listing, later, 20)
    assert written is not None
    name, dirs = written
    assert (prov_dir / "data-index" / name).is_file()
    assert sorted(d[0] for d in dirs) == ["data", "data/d0", "data/d1", "data/d2"]
    assert write_files_index(prov_dir, listing, later, 16) is None  # no such object ids
    os.symlink("d0/f000.bin", repo / "data" / "link.bin")
    assert write_files_index(prov_dir, list_data(repo, ["data"]), later, 20) is None

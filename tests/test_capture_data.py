"""Data manifests built from real repositories: git-vouched, LFS and read files, the path
rules, symlinks, and the stat cache (including concurrent use by several processes)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import commit_file, git

from git_prov.capture import hashing
from git_prov.capture.data import build_manifest
from git_prov.capture.hashing import hash_file
from git_prov.errors import BadPath
from git_prov.model.lfs_pointer import parse_lfs_pointer
from git_prov.model.manifest import SOURCE_GIT, SOURCE_LFS, SOURCE_READ, DataManifest

LONG_AGO_NS = time.time_ns() - 3600 * 10**9  # older than the racy window: cacheable


class RecordingProgress:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int]] = []
        self.advanced = 0
        self.finished = 0

    def start(self, label: str, total: int) -> None:
        self.starts.append((label, total))

    def advance(self, amount: int) -> None:
        self.advanced += amount

    def finish(self) -> None:
        self.finished += 1

    @property
    def total(self) -> int:
        assert len(self.starts) == 1
        return self.starts[0][1]


def write(path: Path, content: bytes | str, *, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def age(*paths: Path) -> None:
    """Make files (recursively) old enough for the stat cache to trust them."""
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS), follow_symlinks=False)


def sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def lfs_pointer(content: bytes) -> bytes:
    oid = hashlib.sha256(content).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n"
    ).encode()


@pytest.fixture
def cache(repo: Path) -> Path:
    return repo / ".git" / "prov" / "hash-cache.sqlite"


@pytest.fixture
def permissions_apply(tmp_path: Path) -> None:
    """Skip when file permissions do not stop this process (root, CAP_DAC_OVERRIDE)."""
    probe = write(tmp_path / "probe", "x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return
    finally:
        probe.chmod(0o644)
    pytest.skip("this process can read files without read permission (root)")


# --- files, directories and what git vouches for -----------------------------------------


def test_untracked_file_is_read_and_hashed(repo: Path) -> None:
    write(repo / "data" / "train.csv", "a,b\n1,2\n")
    manifest = build_manifest(repo, ["data/train.csv"])
    assert manifest.paths == ("data/train.csv",)
    assert manifest.missing == ()
    (entry,) = manifest.entries
    assert entry.path == "data/train.csv"
    assert entry.hash == sha256("a,b\n1,2\n")
    assert entry.size == 8
    assert entry.source == SOURCE_READ
    assert entry.mode == "100644"
    assert entry.link is None


def test_directory_is_walked_recursively_sorted_with_hidden_files(repo: Path) -> None:
    for name in (
        "d/z.txt",
        "d/a.txt",
        "d/sub/b.txt",
        "d/sub/deeper/c.txt",
        "d/.hidden",
        "d/sub/.cfg/x",
        "d/B.txt",
    ):
        write(repo / name, name)
    write(repo / "d" / "nested" / ".git" / "HEAD", "ref: refs/heads/main\n")  # a nested repo
    write(repo / "d" / "nested" / "kept.txt", "kept")
    manifest = build_manifest(repo, ["d"])
    assert [e.path for e in manifest.entries] == [
        "d/.hidden",
        "d/B.txt",
        "d/a.txt",
        "d/nested/kept.txt",
        "d/sub/.cfg/x",
        "d/sub/b.txt",
        "d/sub/deeper/c.txt",
        "d/z.txt",
    ]
    assert manifest.by_path()["d/sub/deeper/c.txt"].hash == sha256("d/sub/deeper/c.txt")
    assert manifest.paths == ("d",)


def test_tracked_clean_file_uses_its_blob_id_without_reading(repo: Path) -> None:
    commit_file(repo, "data/small.csv", "x,y\n")
    commit_file(repo, "data/medium.csv", "m" * 500)  # in the LFS pointer size range
    commit_file(repo, "data/large.csv", "l" * 5000)
    progress = RecordingProgress()
    manifest = build_manifest(repo, ["data"], progress=progress)
    for name in ("data/small.csv", "data/medium.csv", "data/large.csv"):
        entry = manifest.by_path()[name]
        assert entry.source == SOURCE_GIT
        assert entry.hash == "git:" + git(repo, "rev-parse", f"HEAD:{name}")
        assert entry.size == (repo / name).stat().st_size
    # Only the file that might have been an LFS pointer was opened.
    assert progress.starts == [("hashing", 500)]
    assert progress.advanced == 500


def test_modified_tracked_file_is_read(repo: Path) -> None:
    commit_file(repo, "data.csv", "old\n")
    commit_file(repo, "other.csv", "old\n")
    # Same size, and within the same second as the commit: only content tells them apart.
    write(repo / "data.csv", "new\n")
    entries = build_manifest(repo, ["data.csv", "other.csv"]).by_path()
    assert entries["data.csv"].source == SOURCE_READ
    assert entries["data.csv"].hash == sha256("new\n")
    assert entries["other.csv"].source == SOURCE_GIT


def test_staged_change_uses_the_index_blob(repo: Path) -> None:
    commit_file(repo, "data.csv", "old\n")
    write(repo / "data.csv", "staged\n")
    git(repo, "add", "data.csv")
    (entry,) = build_manifest(repo, ["data.csv"]).entries
    assert entry.source == SOURCE_GIT
    assert entry.hash == "git:" + git(repo, "rev-parse", ":data.csv")
    assert entry.hash != "git:" + git(repo, "rev-parse", "HEAD:data.csv")


def test_touched_but_unchanged_tracked_file_is_still_vouched_for(repo: Path) -> None:
    commit_file(repo, "data.csv", "same\n")
    os.utime(repo / "data.csv", ns=(LONG_AGO_NS, LONG_AGO_NS))  # stat data no longer matches
    (entry,) = build_manifest(repo, ["data.csv"]).entries
    assert entry.source == SOURCE_GIT


def test_assume_unchanged_file_is_read_not_trusted(repo: Path) -> None:
    commit_file(repo, "data.csv", "old\n")
    git(repo, "update-index", "--assume-unchanged", "data.csv")
    write(repo / "data.csv", "new\n")  # same size: only content tells
    assert git(repo, "status", "--porcelain") == ""  # git itself is fooled
    (entry,) = build_manifest(repo, ["data.csv"]).entries
    assert entry.source == SOURCE_READ
    assert entry.hash == sha256("new\n")


def test_skip_worktree_file_is_read_not_trusted(repo: Path) -> None:
    commit_file(repo, "data.csv", "old\n")
    git(repo, "update-index", "--skip-worktree", "data.csv")
    write(repo / "data.csv", "new\n")
    (entry,) = build_manifest(repo, ["data.csv"]).entries
    assert entry.source == SOURCE_READ
    assert entry.hash == sha256("new\n")


def test_untracked_and_ignored_files_are_included(repo: Path) -> None:
    commit_file(repo, ".gitignore", "*.bin\ncache/\n")
    write(repo / "data" / "weights.bin", b"\x00\x01")
    write(repo / "data" / "cache" / "x.txt", "cached")
    write(repo / "data" / "notes.txt", "untracked")
    manifest = build_manifest(repo, ["data"])
    assert {e.path: e.source for e in manifest.entries} == {
        "data/weights.bin": SOURCE_READ,
        "data/cache/x.txt": SOURCE_READ,
        "data/notes.txt": SOURCE_READ,
    }
    assert manifest.by_path()["data/weights.bin"].hash == sha256(b"\x00\x01")


def test_executable_mode(repo: Path) -> None:
    write(repo / "run.sh", "#!/bin/sh\n").chmod(0o755)
    write(repo / "plain.txt", "x").chmod(0o644)
    modes = {e.path: e.mode for e in build_manifest(repo, ["run.sh", "plain.txt"]).entries}
    assert modes == {"run.sh": "100755", "plain.txt": "100644"}


def test_exclude_prefixes(repo: Path) -> None:
    for name in ("d/keep.txt", "d/tmp/a", "d/tmp/b/c", "d/tmpfile"):
        write(repo / name, name)
    manifest = build_manifest(repo, ["d"], exclude=["d/tmp/"])
    assert [e.path for e in manifest.entries] == ["d/keep.txt", "d/tmpfile"]


# --- path rules ---------------------------------------------------------------------------


def test_paths_relative_to_cwd_and_absolute(repo: Path) -> None:
    write(repo / "data" / "a.txt", "a")
    (repo / "src").mkdir()
    manifest = build_manifest(repo, ["../data/a.txt", str(repo / "data")], cwd=repo / "src")
    assert manifest.paths == ("data", "data/a.txt")
    assert [e.path for e in manifest.entries] == ["data/a.txt"]


def test_repository_reached_through_a_symlinked_parent(repo: Path, tmp_path: Path) -> None:
    write(repo / "data" / "a.txt", "a")
    alias = tmp_path / "alias"
    alias.symlink_to(repo)
    manifest = build_manifest(repo, [str(alias / "data" / "a.txt")])
    assert manifest.paths == ("data/a.txt",)


def test_path_outside_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere.csv", "x")
    with pytest.raises(BadPath, match=re.escape("elsewhere.csv: outside the repository")) as info:
        build_manifest(repo, [str(outside)])
    assert "symlink it in" in str(info.value)


def test_dot_dot_escape_is_refused(repo: Path, tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", "x")
    (repo / "data").mkdir()
    with pytest.raises(BadPath, match="outside the repository"):
        build_manifest(repo, ["data/../../secret.txt"])
    with pytest.raises(BadPath, match="outside the repository"):
        build_manifest(repo, ["../secret.txt"], cwd=repo)


@pytest.mark.parametrize("path", [".", "", "data/..", ".git", ".git/config", "sub/.git"])
def test_repository_root_and_git_dir_are_refused(repo: Path, path: str) -> None:
    (repo / "data").mkdir()
    with pytest.raises(BadPath):
        build_manifest(repo, [path])


def test_missing_path(repo: Path) -> None:
    with pytest.raises(BadPath, match=re.escape("data/nope.csv: no such file")):
        build_manifest(repo, ["data/nope.csv"])
    write(repo / "data" / "there.csv", "x")
    manifest = build_manifest(repo, ["data/nope.csv", "data/there.csv"], missing_ok=True)
    assert manifest.missing == ("data/nope.csv",)
    assert manifest.paths == ("data/nope.csv", "data/there.csv")
    assert [e.path for e in manifest.entries] == ["data/there.csv"]


@pytest.mark.usefixtures("permissions_apply")
def test_unreadable_file_is_refused(repo: Path) -> None:
    secret = write(repo / "data" / "secret.bin", "x")
    secret.chmod(0)
    try:
        with pytest.raises(BadPath, match=re.escape("data/secret.bin: permission denied")):
            build_manifest(repo, ["data"])
    finally:
        secret.chmod(0o644)
    closed = repo / "data" / "closed"
    write(closed / "inside.bin", "x")
    closed.chmod(0)
    try:
        with pytest.raises(BadPath, match="data/closed: permission denied"):
            build_manifest(repo, ["data"])
    finally:
        closed.chmod(0o755)


def test_odd_file_names(repo: Path) -> None:
    names = [
        "data/with space.csv",
        "data/ünïcødé ✓.csv",
        "data/new\nline.csv",
        "data/*.csv",
        'data/tab\tand"quote',
    ]
    for name in names:
        write(repo / name, name)
    tracked = ["data/tracked\nname [x].csv", ":(top)magic", ":!odd", "sp ace"]
    for name in tracked:
        write(repo / name, "tracked")
    git(repo, "--literal-pathspecs", "add", "--", *tracked)
    git(repo, "commit", "-q", "-m", "odd names")
    manifest = build_manifest(repo, ["data", "data/*.csv", *tracked[1:]])
    entries = manifest.by_path()
    assert set(entries) == {*names, *tracked}
    for name in names:
        assert entries[name].hash == sha256(name)
        assert entries[name].source == SOURCE_READ
    for name in tracked:  # pathspec magic and globs in names are taken literally
        assert entries[name].source == SOURCE_GIT, name
        assert entries[name].hash == "git:" + git(repo, "rev-parse", f"HEAD:{name}")
    # "data/*.csv" names one file; it is not a glob over the directory.
    assert manifest.paths == tuple(sorted(["data", "data/*.csv", *tracked[1:]]))
    assert DataManifest.from_toml(manifest.to_toml()) == manifest


def test_file_name_that_is_not_utf8_is_refused(repo: Path) -> None:
    (repo / "data").mkdir()
    fd = os.open(os.fsencode(repo / "data") + b"/caf\xe9.csv", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    with pytest.raises(BadPath, match="not valid UTF-8"):
        build_manifest(repo, ["data"])


# --- symlinks -----------------------------------------------------------------------------


def test_symlink_to_file_outside_is_followed(repo: Path, tmp_path: Path) -> None:
    target = write(tmp_path / "store" / "big.bin", b"real data")
    target.chmod(0o755)
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").symlink_to(target)
    manifest = build_manifest(repo, ["data/big.bin"])
    (entry,) = manifest.entries
    assert entry.hash == sha256(b"real data")
    assert entry.size == 9
    assert entry.link == str(target)
    assert entry.mode == "100755"  # the target's mode, not the link's
    assert entry.source == SOURCE_READ


def test_tracked_symlink_is_read_not_named_by_its_link_blob(repo: Path) -> None:
    write(repo / "real.csv", "content\n")
    (repo / "alias.csv").symlink_to("real.csv")
    git(repo, "add", "real.csv", "alias.csv")
    git(repo, "commit", "-q", "-m", "link")
    entries = build_manifest(repo, ["alias.csv", "real.csv"]).by_path()
    assert entries["alias.csv"].source == SOURCE_READ
    assert entries["alias.csv"].hash == sha256("content\n")
    assert entries["alias.csv"].link == "real.csv"
    assert entries["real.csv"].source == SOURCE_GIT


def test_symlinked_directories_are_followed_and_cycles_end(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store / "part-0.csv", "p0")
    write(store / "inner" / "part-1.csv", "p1")
    (store / "inner" / "up").symlink_to("..")  # a cycle: store/inner/up -> store
    (repo / "data").mkdir()
    (repo / "data" / "shards").symlink_to(store)
    (repo / "data" / "self").symlink_to(".")  # a cycle: data/self -> data
    manifest = build_manifest(repo, ["data"])
    assert [e.path for e in manifest.entries] == [
        "data/shards/inner/part-1.csv",
        "data/shards/part-0.csv",
    ]
    assert all(e.link is None for e in manifest.entries)
    assert manifest.by_path()["data/shards/part-0.csv"].hash == sha256("p0")


def test_same_directory_linked_twice_is_listed_under_both_names(repo: Path) -> None:
    write(repo / "data" / "real" / "x.txt", "x")
    (repo / "data" / "alias").symlink_to("real")
    manifest = build_manifest(repo, ["data"])
    assert [e.path for e in manifest.entries] == ["data/alias/x.txt", "data/real/x.txt"]


def test_dangling_symlink_is_missing(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "gone.csv").symlink_to("/nonexistent/gone.csv")
    write(repo / "data" / "ok.csv", "ok")
    with pytest.raises(BadPath, match=re.escape("data/gone.csv: broken symbolic link")):
        build_manifest(repo, ["data"])
    with pytest.raises(BadPath, match=re.escape("data/gone.csv: broken symbolic link")):
        build_manifest(repo, ["data/gone.csv"])
    manifest = build_manifest(repo, ["data"], missing_ok=True)
    assert manifest.missing == ("data/gone.csv",)
    assert [e.path for e in manifest.entries] == ["data/ok.csv"]


def test_fifos_are_skipped_in_directories_and_refused_when_declared(repo: Path) -> None:
    write(repo / "data" / "a.txt", "a")
    os.mkfifo(repo / "data" / "pipe")
    assert [e.path for e in build_manifest(repo, ["data"]).entries] == ["data/a.txt"]
    with pytest.raises(BadPath, match="not a regular file"):
        build_manifest(repo, ["data/pipe"])


def test_hashing_a_fifo_fails_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    errors: list[BadPath] = []

    def attempt() -> None:
        try:
            hash_file(fifo)
        except BadPath as exc:
            errors.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release the blocked open()
        thread.join()
        pytest.fail("opening a FIFO blocked")
    assert len(errors) == 1
    assert "not a regular file" in str(errors[0])


def test_hard_links_are_read_once(repo: Path) -> None:
    original = write(repo / "data" / "a.bin", b"shared bytes")
    os.link(original, repo / "data" / "b.bin")
    progress = RecordingProgress()
    manifest = build_manifest(repo, ["data"], progress=progress)
    assert [e.hash for e in manifest.entries] == [sha256(b"shared bytes")] * 2
    assert progress.total == len(b"shared bytes")


# --- git-LFS ------------------------------------------------------------------------------


def test_lfs_pointer_files_name_their_object(repo: Path) -> None:
    content = b"the real weights" * 100
    pointer = lfs_pointer(content)
    write(repo / "untracked.bin", pointer)
    commit_file(repo, "tracked.bin", pointer.decode())
    entries = build_manifest(repo, ["untracked.bin", "tracked.bin"]).by_path()
    for name in ("untracked.bin", "tracked.bin"):
        assert entries[name].source == SOURCE_LFS
        assert entries[name].hash == sha256(content)
        assert entries[name].size == len(content)


def test_smudged_lfs_file_is_hashed_from_its_content(repo: Path, tmp_path: Path) -> None:
    # A stand-in for git-lfs's clean filter: the index gets the pointer, the working tree
    # keeps the real content, and git status calls the file clean.
    clean = write(
        tmp_path / "lfs-clean.py",
        (
            "import hashlib, sys\n"
            "data = sys.stdin.buffer.read()\n"
            "oid = hashlib.sha256(data).hexdigest()\n"
            "sys.stdout.write('version https://git-lfs.github.com/spec/v1\\n'\n"
            "                 f'oid sha256:{oid}\\nsize {len(data)}\\n')\n"
        ),
    )
    git(repo, "config", "filter.lfs.clean", f"'{sys.executable}' '{clean}'")
    commit_file(repo, ".gitattributes", "*.bin filter=lfs\n")
    content = b"\x89weights" * 1000
    write(repo / "model.bin", content)
    git(repo, "add", "model.bin")
    git(repo, "commit", "-q", "-m", "model")
    assert git(repo, "cat-file", "-p", ":model.bin").encode() + b"\n" == lfs_pointer(content)
    assert git(repo, "status", "--porcelain") == ""
    (entry,) = build_manifest(repo, ["model.bin"]).entries
    assert entry.source == SOURCE_READ
    assert entry.hash == sha256(content)
    assert entry.size == len(content)


@pytest.mark.parametrize(
    "text",
    [
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\n",
        "version https://git-lfs.github.com/spec/v1\nsize 3\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize -3\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "A" * 64 + "\nsize 3\n",
        "oid sha256:" + "a" * 64 + "\nsize 3\nversion https://git-lfs.github.com/spec/v1\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:"
        + "a" * 64
        + "\nsize 3\n"
        + "x" * 1024,
    ],
)
def test_not_lfs_pointers(text: str) -> None:
    assert parse_lfs_pointer(text.encode()) is None


def test_lfs_pointer_with_extension_lines() -> None:
    text = (
        "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:"
        + "b" * 64
        + "\noid sha256:"
        + "a" * 64
        + "\nsize 12345\n"
    )
    assert parse_lfs_pointer(text.encode()) == ("a" * 64, 12345)


# --- hashing and the stat cache -----------------------------------------------------------


def test_hash_file_matches_hashlib_on_both_read_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    path = write(tmp_path / "f.bin", data)
    assert hash_file(path) == sha256(data)
    monkeypatch.setattr(hashing, "_usable_cpus", lambda: 2)  # read ahead even on 1 CPU
    monkeypatch.setattr(hashing, "READ_AHEAD_MIN", 1)
    monkeypatch.setattr(hashing, "CHUNK", 4096)  # many buffers through the read-ahead ring
    assert hash_file(path) == sha256(data)
    assert hash_file(write(tmp_path / "empty", b"")) == sha256(b"")
    with pytest.raises(BadPath, match="nothing-here"):
        hash_file(tmp_path / "nothing-here")


def test_second_build_reads_nothing_and_is_identical(repo: Path, cache: Path) -> None:
    write(repo / "data" / "a.bin", os.urandom(3000))
    write(repo / "data" / "b" / "c.bin", os.urandom(5000))
    write(repo / "data" / "pointer", lfs_pointer(b"content"))
    age(repo / "data")
    first_progress, second_progress = RecordingProgress(), RecordingProgress()
    first = build_manifest(repo, ["data"], cache_path=cache, progress=first_progress)
    second = build_manifest(repo, ["data"], cache_path=cache, progress=second_progress)
    uncached = build_manifest(repo, ["data"])
    total = 3000 + 5000 + len(lfs_pointer(b"content"))
    assert first_progress.starts == [("hashing", total)]
    assert first_progress.advanced == total and first_progress.finished == 1
    assert second_progress.starts == [("hashing", 0)]
    assert second_progress.advanced == 0
    assert first.to_toml() == second.to_toml() == uncached.to_toml()
    assert second.by_path()["data/pointer"].source == SOURCE_LFS


def test_changed_file_is_read_again(repo: Path, cache: Path) -> None:
    path = write(repo / "data.bin", b"version 1", mtime_ns=LONG_AGO_NS)
    build_manifest(repo, ["data.bin"], cache_path=cache)
    write(path, b"version two", mtime_ns=LONG_AGO_NS + 10**9)
    progress = RecordingProgress()
    (entry,) = build_manifest(repo, ["data.bin"], cache_path=cache, progress=progress).entries
    assert progress.total == len(b"version two")
    assert entry.hash == sha256(b"version two")


def test_same_size_change_with_restored_mtime_is_read_again(repo: Path, cache: Path) -> None:
    path = write(repo / "data.bin", b"AAAA", mtime_ns=LONG_AGO_NS)
    build_manifest(repo, ["data.bin"], cache_path=cache)
    write(path, b"BBBB", mtime_ns=LONG_AGO_NS)  # only the ctime tells
    (entry,) = build_manifest(repo, ["data.bin"], cache_path=cache).entries
    assert entry.hash == sha256(b"BBBB")


def test_recently_modified_files_are_not_cached(repo: Path, cache: Path) -> None:
    write(repo / "fresh.bin", b"just written")  # mtime: now, within the racy window
    build_manifest(repo, ["fresh.bin"], cache_path=cache)
    progress = RecordingProgress()
    build_manifest(repo, ["fresh.bin"], cache_path=cache, progress=progress)
    assert progress.total == len(b"just written")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "directory"])
def test_damaged_cache_is_ignored_and_rebuilt(repo: Path, cache: Path, damage: str) -> None:
    write(repo / "data" / "a.bin", os.urandom(4000))
    write(repo / "data" / "b.bin", os.urandom(4000))
    age(repo / "data")
    expected = build_manifest(repo, ["data"])
    if damage == "garbage":
        cache.parent.mkdir(parents=True)
        cache.write_bytes(b"this is not a database" * 500)
    elif damage == "truncated":
        for i in range(300):  # a cache big enough that the damage lands inside a table
            write(repo / "more" / f"{i}.txt", str(i))
        age(repo / "more")
        build_manifest(repo, ["more"], cache_path=cache)
        with cache.open("r+b") as f:
            f.seek(100)
            f.write(os.urandom(3000))
    elif damage == "empty":
        cache.parent.mkdir(parents=True)
        cache.write_bytes(b"")
    else:
        cache.mkdir(parents=True)  # unusable: hashing goes on without a cache
    assert build_manifest(repo, ["data"], cache_path=cache) == expected
    progress = RecordingProgress()
    assert build_manifest(repo, ["data"], cache_path=cache, progress=progress) == expected
    assert progress.total == (8000 if damage == "directory" else 0)


def test_garbled_cache_rows_are_misses(repo: Path, cache: Path) -> None:
    write(repo / "a.bin", b"a", mtime_ns=LONG_AGO_NS)
    build_manifest(repo, ["a.bin"], cache_path=cache)
    db = sqlite3.connect(cache)
    assert db.execute("UPDATE files SET hash = 'sha256:not-hex'").rowcount == 1
    db.commit()
    db.close()
    progress = RecordingProgress()
    (entry,) = build_manifest(repo, ["a.bin"], cache_path=cache, progress=progress).entries
    assert entry.hash == sha256(b"a")
    assert progress.total == 1


def test_foreign_schema_version_is_replaced(repo: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    db = sqlite3.connect(cache)
    db.execute("CREATE TABLE files (nonsense)")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    write(repo / "a.bin", b"a", mtime_ns=LONG_AGO_NS)
    build_manifest(repo, ["a.bin"], cache_path=cache)
    progress = RecordingProgress()
    build_manifest(repo, ["a.bin"], cache_path=cache, progress=progress)
    assert progress.total == 0


CONCURRENT_SCRIPT = """
import sys
from pathlib import Path
from git_prov.capture.data import build_manifest
repo, cache = Path(sys.argv[1]), Path(sys.argv[2])
for paths in (["data"], ["data/part-1"], ["data"]):
    manifest = build_manifest(repo, paths, cache_path=cache, workers=2)
sys.stdout.buffer.write(manifest.to_toml())
"""


def test_concurrent_processes_share_the_cache(repo: Path, cache: Path) -> None:
    for part in range(4):
        for i in range(60):
            write(repo / "data" / f"part-{part}" / f"{i:03}.bin", os.urandom(200 + i))
    age(repo / "data")
    expected = build_manifest(repo, ["data"]).to_toml()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(repo), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert out == expected
    progress = RecordingProgress()
    assert build_manifest(repo, ["data"], cache_path=cache, progress=progress).to_toml() == expected
    assert progress.total == 0


def test_parallel_hashing_equals_single_threaded(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small thresholds so that KB-sized files go through batching, the pool and read-ahead.
    monkeypatch.setattr(hashing, "BATCH_FILES", 7)
    monkeypatch.setattr(hashing, "BATCH_BYTES", 20_000)
    monkeypatch.setattr(hashing, "_usable_cpus", lambda: 2)  # read ahead even on 1 CPU
    monkeypatch.setattr(hashing, "READ_AHEAD_MIN", 30_000)
    for i in range(150):
        write(repo / "data" / f"d{i % 5}" / f"{i}.bin", os.urandom((i * 397) % 5000))
    for i in range(3):
        write(repo / "data" / f"big-{i}.bin", os.urandom(40_000 + i))
    commit_file(repo, "data/tracked.txt", "tracked")
    serial_progress, parallel_progress = RecordingProgress(), RecordingProgress()
    serial = build_manifest(repo, ["data"], workers=1, progress=serial_progress)
    parallel = build_manifest(repo, ["data"], workers=4, progress=parallel_progress)
    assert parallel == serial
    assert len(parallel.entries) == 154
    assert parallel_progress.advanced == parallel_progress.total == serial_progress.total
    assert parallel.by_path()["data/big-2.bin"].hash == sha256(
        (repo / "data" / "big-2.bin").read_bytes()
    )


def test_small_files_hashed_in_one_thread_equal_the_pool(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small files are read whole on the calling thread; the pool (every file through it,
    # in batches) must give the same digests, LFS pointers and progress.
    for i in range(60):
        write(repo / "data" / f"{i}.bin", os.urandom((i * 397) % 5000))
    write(repo / "data" / "empty.bin", b"")
    write(repo / "data" / "mid.bin", os.urandom(40_000))
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'a' * 64}\nsize 7\n"
    commit_file(repo, "data/pointer.bin", pointer)
    loop_progress, pool_progress = RecordingProgress(), RecordingProgress()
    in_loop = build_manifest(repo, ["data"], workers=4, progress=loop_progress)
    monkeypatch.setattr(hashing, "SMALL_FILE_MAX", 0)
    monkeypatch.setattr(hashing, "BATCH_FILES", 7)
    in_pool = build_manifest(repo, ["data"], workers=4, progress=pool_progress)
    assert in_loop == in_pool
    assert in_loop.by_path()["data/pointer.bin"].source == SOURCE_LFS
    assert in_loop.by_path()["data/empty.bin"].hash == sha256(b"")
    assert in_loop.by_path()["data/7.bin"].hash == sha256((repo / "data" / "7.bin").read_bytes())
    assert loop_progress.advanced == loop_progress.total == pool_progress.total


@pytest.mark.usefixtures("permissions_apply")
def test_unreadable_file_among_many_stops_parallel_hashing(repo: Path) -> None:
    for i in range(600):
        write(repo / "data" / f"{i:03}.bin", b"x" * 100)
    (repo / "data" / "450.bin").chmod(0)
    try:
        with pytest.raises(BadPath, match=re.escape("data/450.bin: permission denied")):
            build_manifest(repo, ["data"], workers=4)
    finally:
        (repo / "data" / "450.bin").chmod(0o644)

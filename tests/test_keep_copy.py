"""How kept bytes get into the store (issue #14): the kernel copies a large file into the
LFS store's temporary file (``copy_file_range``) and the SHA-256 is computed from that copy,
so the bytes stored are exactly the bytes hashed; a file whose stat data changed over the
copy and the hash is read again the one-pass way, and so is a file the kernel cannot copy
(another file system). Real git and a real git-LFS store; the copy and the hash are the
real code, watched through the test seam ``kernel_copy.on_copied``."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git

from git_prov.capture import kernel_copy
from git_prov.capture.data import build_manifest
from git_prov.capture.digests import HashJob, StatKey
from git_prov.capture.keep import KeepPlan
from git_prov.capture.stat_cache import StatCache
from git_prov.model.manifest import DataManifest
from git_prov.store.kept import DATA_REF, KeptStore
from git_prov.store.repo import open_repo

THRESHOLD = 64 << 10  # a small LFS threshold keeps these tests cheap
OLD = 1_700_000_000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lfs_objects(repo: Path) -> dict[str, bytes]:
    root = repo / ".git/lfs/objects"
    if not root.exists():
        return {}
    return {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _leftovers(repo: Path) -> list[str]:
    tmp = repo / ".git/lfs/tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


class _BytesRead:
    """A Progress that adds up the bytes the hashing code says it will read."""

    def __init__(self) -> None:
        self.total = 0

    def start(self, label: str, total: int, unit: str = "B") -> None:
        self.total += total

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


class _Copies:
    """Calls of the test seam: (path, bytes copied so far) after each chunk the kernel
    copied; ``change`` is done to the file at the first call."""

    def __init__(self, change: object = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.change = change

    def __call__(self, path: str, copied: int) -> None:
        self.calls.append((path, copied))
        if len(self.calls) == 1 and callable(self.change):
            self.change(path)


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> _Copies:
    seen = _Copies()
    monkeypatch.setattr(kernel_copy, "on_copied", seen)
    return seen


def _keep(repo: Path, rel: str) -> tuple[DataManifest, KeptStore, _BytesRead]:
    handle = open_repo(repo)
    store = KeptStore(handle, lfs_threshold=THRESHOLD)
    read = _BytesRead()
    manifest = build_manifest(
        repo,
        [rel],
        cache_path=handle.prov_dir / "hash-cache.sqlite",
        keep=lambda rel, size: True,
        keeper=store,
        progress=read,
    )
    KeepPlan((), store).remember(handle.prov_dir / "hash-cache.sqlite")
    store.commit("test: keep")
    return manifest, store, read


@pytest.fixture
def kept_repo(repo: Path) -> Path:
    (repo / ".gitignore").write_text("data/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore data")
    (repo / "data").mkdir()
    return repo


@pytest.mark.parametrize(
    ("size", "kind"),
    [
        (5_000, "git"),  # a git blob: gathered from the read that hashes it
        (200_000, "lfs"),  # LFS, copied in one go, then hashed
        (12 << 20, "lfs"),  # LFS, over READ_AHEAD_MIN: copied by a thread while hashed
    ],
)
def test_kept_bytes_are_the_source_bytes_and_hash_to_their_name(
    kept_repo: Path, copies: _Copies, size: int, kind: str
) -> None:
    repo = kept_repo
    payload = os.urandom(size)
    source = repo / "data/x.bin"
    source.write_bytes(payload)
    os.utime(source, (OLD, OLD))  # old: the stat cache trusts it
    manifest, _, read = _keep(repo, "data")
    (entry,) = manifest.entries
    digest = _sha(payload)
    assert (entry.hash, entry.size, entry.kept) == (f"sha256:{digest}", size, kind)
    assert read.total == size  # one read pass (of the copy, for LFS)
    if kind == "git":
        assert copies.calls == []  # git objects are written from the hashing read
        blob = git(repo, "rev-parse", f"{DATA_REF}:sha256/{digest[:2]}/{digest[2:]}")
        stored = open_repo(repo).pygit[blob].data
        assert stored == payload
        return
    assert copies.calls and copies.calls[-1] == (str(source), size)  # the kernel copied it
    assert _lfs_objects(repo) == {digest: payload}
    obj = repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert _leftovers(repo) == []
    # The stat cache vouches for the stored object (what `get` relies on) and the source.
    cache = StatCache.open(open_repo(repo).prov_dir / "hash-cache.sqlite")
    assert cache is not None
    try:
        jobs = [HashJob(str(p), str(p), StatKey.of(os.stat(p))) for p in (obj, source)]
        found = cache.lookup(jobs)
    finally:
        cache.close()
    assert [f.hash if f else None for f in found] == [f"sha256:{digest}"] * 2
    # Known and kept: nothing is copied or read again.
    calls = len(copies.calls)
    manifest, _, read = _keep(repo, "data")
    assert (read.total, manifest.entries[0].kept, len(copies.calls)) == (0, "lfs", calls)


def _rewrite(new: bytes, *, same_size_and_mtime: bool) -> object:
    """What a program writing the file at the wrong moment does: new bytes (all of them:
    a copy taken across the write holds old bytes and new ones), the same size and the old
    mtime put back (only ctime tells), or one byte more."""

    def change(path: str) -> None:
        st = os.stat(path)
        with open(path, "r+b") as f:  # in place: the same inode
            f.write(new if same_size_and_mtime else new + b"!")
        if same_size_and_mtime:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    return change


@pytest.mark.parametrize("size", [200_000, 12 << 20])
@pytest.mark.parametrize("same_size_and_mtime", [True, False])
def test_a_file_changed_during_the_copy_is_never_kept_from_that_copy(
    kept_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    same_size_and_mtime: bool,
) -> None:
    repo = kept_repo
    old = os.urandom(size)
    new = os.urandom(size)
    source = repo / "data/x.bin"
    source.write_bytes(old)
    os.utime(source, (OLD, OLD))
    time.sleep(0.05)  # the change below gets a later ctime even on coarse-clock file systems
    seen = _Copies(_rewrite(new, same_size_and_mtime=same_size_and_mtime))
    monkeypatch.setattr(kernel_copy, "on_copied", seen)
    manifest, _, _ = _keep(repo, "data")
    assert len(seen.calls) >= 1  # the kernel copy ran, and saw the change
    final = source.read_bytes()
    assert final == (new if same_size_and_mtime else new + b"!")
    (entry,) = manifest.entries
    # The record names the bytes the one-pass read found (the file as it is now), the store
    # holds exactly those bytes under that name, and nothing else (no copy taken across the
    # change, torn or old) was stored.
    assert (entry.hash, entry.size, entry.kept) == (f"sha256:{_sha(final)}", len(final), "lfs")
    assert _lfs_objects(repo) == {_sha(final): final}
    assert _leftovers(repo) == []
    # The changed file's new stat data was not seen before the read: nothing was cached for
    # it, so the next record reads it again (and finds it kept).
    manifest, _, read = _keep(repo, "data")
    assert read.total == len(final) and manifest.entries[0].hash == f"sha256:{_sha(final)}"


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """A directory on another file system than ``tmp_path`` (tmpfs at /dev/shm), between
    which the kernel refuses ``copy_file_range`` (EXDEV) on this kernel; skipped where
    there is no such directory or the kernel copies across them."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no /dev/shm on another file system")
    where = Path(tempfile.mkdtemp(prefix="git-prov-test-", dir=shm))
    try:
        probe, target = where / "probe", tmp_path / "probe"
        probe.write_bytes(b"x")
        with open(probe, "rb") as src, open(target, "wb") as dst:
            try:
                os.copy_file_range(src.fileno(), dst.fileno(), 1)
            except OSError:
                pass
            else:
                pytest.skip("this kernel copies from /dev/shm to tmp_path with copy_file_range")
        yield where
    finally:
        for p in where.iterdir():
            p.unlink()
        where.rmdir()


@pytest.mark.parametrize("size", [200_000, 12 << 20])
def test_a_file_the_kernel_cannot_copy_is_kept_from_the_hashing_read(
    kept_repo: Path, copies: _Copies, other_file_system: Path, size: int
) -> None:
    repo = kept_repo
    payload = os.urandom(size)
    elsewhere = other_file_system / "x.bin"
    elsewhere.write_bytes(payload)
    (repo / "data/x.bin").symlink_to(elsewhere)  # declared in the repo, bytes on tmpfs
    manifest, _, read = _keep(repo, "data")
    (entry,) = manifest.entries
    digest = _sha(payload)
    assert (entry.hash, entry.size, entry.kept) == (f"sha256:{digest}", size, "lfs")
    assert copies.calls == []  # the kernel copied nothing: EXDEV on the first call
    assert read.total == size  # one read pass, hashing and writing
    assert _lfs_objects(repo) == {digest: payload}
    assert _leftovers(repo) == []

"""The local git-LFS store and transfers through the real ``git lfs`` program: objects
git-prov stores are the objects git-lfs reads, and they travel to a ``file://`` remote
and back."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import git
from lfs_server import LfsServer

from git_prov.errors import EXIT_BAD_PATH, EXIT_NOT_FOUND, EXIT_REMOTE, EXIT_REPOSITORY
from git_prov.model.lfs_pointer import parse_lfs_pointer
from git_prov.store.lfs import (
    LfsError,
    fetch_lfs_objects,
    has_lfs_object,
    lfs_available,
    lfs_object_path,
    lfs_pointer,
    push_lfs_objects,
    store_in_lfs,
)

needs_lfs = pytest.mark.skipif(not lfs_available(), reason="git-lfs is not installed")


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keep(repo: Path, name: str, data: bytes) -> str:
    """Write ``data`` to a file in ``repo`` and store it; return its oid."""
    path = repo / name
    path.write_bytes(data)
    oid = oid_of(data)
    store_in_lfs(repo / ".git", path, oid, len(data))
    return oid


def test_object_path_is_the_lfs_layout(tmp_path: Path) -> None:
    oid = oid_of(b"x")
    assert lfs_object_path(tmp_path, oid) == tmp_path / "lfs/objects" / oid[:2] / oid[2:4] / oid


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "a" * 63, "A" * 64, "a" * 65, "g" * 64, "", "a" * 62 + "/x"]
)
def test_hostile_object_ids_never_become_paths(tmp_path: Path, bad: str) -> None:
    with pytest.raises(LfsError) as err:
        lfs_object_path(tmp_path, bad)
    assert err.value.exit_code == EXIT_BAD_PATH
    with pytest.raises(LfsError):
        lfs_pointer(bad, 1)
    assert not has_lfs_object(tmp_path, bad, 1)


@needs_lfs
def test_pointer_is_what_git_lfs_writes(tmp_path: Path) -> None:
    data = b"some model weights\n" * 100
    (tmp_path / "f").write_bytes(data)
    git(tmp_path, "init", "-q")
    made = git(tmp_path, "lfs", "pointer", "--file=f")
    assert lfs_pointer(oid_of(data), len(data)) == (made + "\n").encode()
    assert parse_lfs_pointer(lfs_pointer(oid_of(data), len(data))) == (oid_of(data), len(data))


@needs_lfs
def test_stored_object_is_what_git_lfs_checks_out(repo: Path) -> None:
    # Nothing but the store holds the content: git's smudge filter must find it there.
    data = os.urandom(300_000)
    oid = keep(repo, "model.bin", data)
    (repo / "model.bin").unlink()
    assert has_lfs_object(repo / ".git", oid, len(data))
    assert not has_lfs_object(repo / ".git", oid, len(data) + 1)
    git(repo, "lfs", "install", "--local")
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    blob = git(repo, "hash-object", "-w", "--stdin", input=lfs_pointer(oid, len(data)).decode())
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},model.bin")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "pointer")
    git(repo, "checkout", "--", "model.bin")
    assert (repo / "model.bin").read_bytes() == data
    git(repo, "lfs", "fsck", "--objects")


def test_store_is_idempotent_and_leaves_no_temporaries(repo: Path) -> None:
    data = b"weights" * 1000
    oid = keep(repo, "a.bin", data)
    keep(repo, "b.bin", data)  # the same bytes under another name: stored once
    assert lfs_object_path(repo / ".git", oid).read_bytes() == data
    assert lfs_object_path(repo / ".git", oid).stat().st_mode & 0o777 == 0o444  # never edited
    assert list((repo / ".git/lfs/tmp").iterdir()) == []
    assert [p.name for p in (repo / ".git/lfs/objects").rglob("*") if p.is_file()] == [oid]


def test_a_file_that_changed_since_its_hash_is_not_stored(repo: Path) -> None:
    recorded = b"what was hashed"
    (repo / "out.bin").write_bytes(b"what is there now")
    with pytest.raises(LfsError) as err:
        store_in_lfs(repo / ".git", repo / "out.bin", oid_of(recorded), len(recorded))
    assert err.value.exit_code == EXIT_BAD_PATH
    assert "changed while it was being kept" in str(err.value)
    assert not lfs_object_path(repo / ".git", oid_of(recorded)).exists()
    assert list((repo / ".git/lfs/tmp").iterdir()) == []


def test_a_missing_source_is_a_bad_path(repo: Path) -> None:
    with pytest.raises(LfsError) as err:
        store_in_lfs(repo / ".git", repo / "gone.bin", oid_of(b""), 0)
    assert err.value.exit_code == EXIT_BAD_PATH


def test_editing_the_file_in_place_later_leaves_the_store_intact(repo: Path) -> None:
    # The common way outputs are rewritten: open(path, "w") truncates the same inode. A hard
    # link would carry the new bytes into the store; a copy or reflink does not.
    data = b"epoch 1 weights" * 1000
    oid = keep(repo, "model.pkl", data)
    with open(repo / "model.pkl", "r+b") as f:
        f.write(b"EPOCH 2")
    with open(repo / "model.pkl", "wb") as f:
        f.write(b"epoch 2 weights")
    assert lfs_object_path(repo / ".git", oid).read_bytes() == data


def test_a_read_only_file_is_linked_not_copied(repo: Path) -> None:
    data = b"frozen dataset" * 1000
    path = repo / "data.bin"
    path.write_bytes(data)
    path.chmod(0o444)
    store_in_lfs(repo / ".git", path, oid_of(data), len(data))
    stored = lfs_object_path(repo / ".git", oid_of(data))
    assert stored.read_bytes() == data
    # (Same inode unless the file system could reflink it, which it prefers.)
    assert stored.stat().st_ino == path.stat().st_ino or stored.stat().st_nlink == 1


def test_a_read_only_file_on_another_file_system_is_copied(repo: Path) -> None:
    # A hard link cannot cross file systems: the store falls back to a verified copy.
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(repo).st_dev:
        pytest.skip("no second file system at /dev/shm")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        data = b"dataset on tmpfs" * 1000
        path = Path(elsewhere) / "data.bin"
        path.write_bytes(data)
        path.chmod(0o444)
        store_in_lfs(repo / ".git", path, oid_of(data), len(data))
        stored = lfs_object_path(repo / ".git", oid_of(data))
        assert stored.read_bytes() == data
        assert stored.stat().st_nlink == 1


@pytest.fixture
def pair(tmp_path: Path, repo: Path) -> tuple[Path, Path, Path]:
    """``repo`` with a bare ``file://`` remote ``origin``, and a clone of it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", remote.as_uri())
    git(repo, "push", "-q", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(clone))
    return repo, remote, clone


@needs_lfs
def test_objects_travel_through_a_file_remote(pair: tuple[Path, Path, Path]) -> None:
    repo, remote, clone = pair
    blobs = [os.urandom(1000 + i) for i in range(3)]
    oids = [keep(repo, f"f{i}.bin", b) for i, b in enumerate(blobs)]
    push_lfs_objects(repo, "origin", oids)
    for oid, data in zip(oids, blobs, strict=True):
        assert lfs_object_path(remote, oid).read_bytes() == data  # the remote's own LFS store
    wanted = [(oid, len(b)) for oid, b in zip(oids, blobs, strict=True)]
    # An include filter must not stop objects git-prov asks for by id.
    git(clone, "config", "lfs.fetchexclude", "*")
    fetch_lfs_objects(clone, "origin", wanted[:2])
    assert [has_lfs_object(clone / ".git", o, n) for o, n in wanted] == [True, True, False]
    assert lfs_object_path(clone / ".git", oids[0]).read_bytes() == blobs[0]
    objects_before = sorted(p.name for p in (clone / ".git/objects").rglob("*"))
    fetch_lfs_objects(clone, "origin", wanted)  # the one missing; the others are not asked for
    assert all(has_lfs_object(clone / ".git", o, n) for o, n in wanted)
    # The pointers used to ask git-lfs were written to a throwaway object store.
    assert sorted(p.name for p in (clone / ".git/objects").rglob("*")) == objects_before


@needs_lfs
def test_many_objects_go_in_several_commands(
    pair: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from git_prov.store import lfs

    monkeypatch.setattr(lfs, "PUSH_BATCH", 2)
    repo, remote, _ = pair
    oids = [keep(repo, f"f{i}.bin", f"object {i}".encode()) for i in range(5)]
    push_lfs_objects(repo, "origin", oids)
    assert all(lfs_object_path(remote, oid).is_file() for oid in oids)


@needs_lfs
def test_a_path_remote_works_too(tmp_path: Path, repo: Path) -> None:
    remote = tmp_path / "plain.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "plain", str(remote))
    oid = keep(repo, "a.bin", b"abc" * 100)
    push_lfs_objects(repo, "plain", [oid])
    assert lfs_object_path(remote, oid).is_file()


@needs_lfs
def test_objects_missing_on_the_remote_are_named(pair: tuple[Path, Path, Path]) -> None:
    repo, _, clone = pair
    there = keep(repo, "a.bin", b"uploaded")
    push_lfs_objects(repo, "origin", [there])
    absent = oid_of(b"never uploaded")
    with pytest.raises(LfsError) as err:
        fetch_lfs_objects(clone, "origin", [(there, 8), (absent, 14)])
    assert err.value.exit_code == EXIT_NOT_FOUND
    assert err.value.missing == (absent,)
    assert "origin" in str(err.value) and absent in str(err.value)
    assert has_lfs_object(clone / ".git", there, 8)  # what it has still arrived


@needs_lfs
def test_uploading_an_object_the_store_lacks_names_it(pair: tuple[Path, Path, Path]) -> None:
    repo, _, _ = pair
    there = keep(repo, "a.bin", b"stored")
    absent = oid_of(b"not stored")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "origin", [there, absent])
    assert err.value.exit_code == EXIT_NOT_FOUND
    assert err.value.missing == (absent,)


@needs_lfs
def test_an_unknown_remote_is_a_remote_problem(repo: Path) -> None:
    oid = keep(repo, "a.bin", b"x")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "nowhere", [oid])
    assert "no remote named 'nowhere'" in str(err.value)


@needs_lfs
def test_an_unreachable_lfs_server_is_named(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    git(repo, "remote", "add", "origin", "http://127.0.0.1:9/org/repo.git")
    oid = keep(repo, "a.bin", b"weights")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "origin", [oid])
    assert err.value.exit_code == EXIT_REMOTE
    assert "cannot reach origin's git-LFS server" in str(err.value)
    with pytest.raises(LfsError) as err:
        fetch_lfs_objects(repo, "origin", [(oid_of(b"other"), 5)])
    assert "cannot reach origin's git-LFS server" in str(err.value)


def test_without_git_lfs_the_error_says_how_to_install(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH with git but no git-lfs: the real situation of a machine without it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    (bin_dir / "git").symlink_to(real_git)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("GIT_EXEC_PATH", git(repo, "--exec-path"))
    assert not lfs_available()
    oid = keep(repo, "a.bin", b"x")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "origin", [oid])
    assert err.value.exit_code == EXIT_REPOSITORY
    assert "git-lfs is not installed" in str(err.value) and "apt install git-lfs" in str(err.value)
    with pytest.raises(LfsError):
        fetch_lfs_objects(repo, "origin", [(oid_of(b"y"), 1)])


# ---- a real LFS server over HTTP (giftless, tests/lfs_server.py) -------------------------------


@pytest.fixture
def served(lfs_server: LfsServer, repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """``repo`` pushed to repository org/repo on the server, and a clone of it; both may
    use the server's LFS."""
    url = lfs_server.create_repo("org/repo")
    git(repo, "remote", "add", "origin", url)
    lfs_server.authorize(repo)
    git(repo, "push", "-q", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-c", "=".join(lfs_server.batch_header()), url, str(clone))
    return repo, clone


def test_objects_travel_through_an_http_lfs_server(
    lfs_server: LfsServer, served: tuple[Path, Path]
) -> None:
    repo, clone = served
    blobs = [os.urandom(5000), os.urandom(70_000)]
    oids = [keep(repo, f"f{i}.bin", b) for i, b in enumerate(blobs)]
    push_lfs_objects(repo, "origin", oids)
    assert all(lfs_server.has_object("org/repo", oid) for oid in oids)
    push_lfs_objects(repo, "origin", oids)  # again: the server has them, nothing to do
    fetch_lfs_objects(clone, "origin", [(o, len(b)) for o, b in zip(oids, blobs, strict=True)])
    for oid, data in zip(oids, blobs, strict=True):
        assert lfs_object_path(clone / ".git", oid).read_bytes() == data


def test_objects_missing_on_the_http_server_are_named(served: tuple[Path, Path]) -> None:
    repo, clone = served
    there = keep(repo, "a.bin", b"uploaded")
    push_lfs_objects(repo, "origin", [there])
    absent = oid_of(b"never uploaded")
    with pytest.raises(LfsError) as err:
        fetch_lfs_objects(clone, "origin", [(absent, 14), (there, 8)])
    assert err.value.exit_code == EXIT_NOT_FOUND
    assert err.value.missing == (absent,)
    assert "origin does not have 1 git-LFS object(s)" in str(err.value)
    assert has_lfs_object(clone / ".git", there, 8)


def test_a_refused_token_is_an_auth_failure(
    lfs_server: LfsServer, served: tuple[Path, Path]
) -> None:
    repo, clone = served
    oid = keep(repo, "a.bin", b"secret weights")
    lfs_server.authorize(repo, token="not-a-valid-token")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "origin", [oid])
    assert err.value.exit_code == EXIT_REMOTE
    assert "uploading git-LFS objects to origin was refused" in str(err.value)
    assert not lfs_server.has_object("org/repo", oid)
    git(clone, "config", "--unset-all", lfs_server.batch_header()[0])
    with pytest.raises(LfsError) as err:
        fetch_lfs_objects(clone, "origin", [(oid, 14)])
    assert "was refused" in str(err.value)


def test_a_host_without_lfs_says_so(lfs_server: LfsServer, repo: Path) -> None:
    # The server has no LFS endpoint for a repository outside any organization.
    url = lfs_server.create_repo("plain")
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "main")
    oid = keep(repo, "a.bin", b"weights")
    with pytest.raises(LfsError) as err:
        push_lfs_objects(repo, "origin", [oid])
    assert err.value.exit_code == EXIT_REMOTE
    assert "origin has no git-LFS endpoint that answers" in str(err.value)

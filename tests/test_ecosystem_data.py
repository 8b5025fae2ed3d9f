"""Data named by the stores it lives in, without reading it: git-annex keys, DVC cache
objects, git-LFS pointers — with hand-made layouts of the exact real formats, and with the
real tools when they are installed (``git annex``, ``dvc``, ``git lfs``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import commit_file, git, missing, prov

from git_prov.capture import hashing
from git_prov.capture.annex import key_of_link, parse_key
from git_prov.capture.data import build_manifest
from git_prov.capture.dvc import hash_of_cache_path, object_path
from git_prov.model.manifest import SOURCE_ANNEX, SOURCE_DVC, SOURCE_LFS, SOURCE_READ


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def has_yaml() -> bool:
    try:
        import yaml  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


needs_yaml = pytest.mark.skipif(not has_yaml(), reason=missing("PyYAML, which reads DVC metadata,"))


def _tool(*argv: str) -> bool:
    if shutil.which(argv[0]) is None:
        return False
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


# ---- git-annex -------------------------------------------------------------------------------

HEX = "f6bfd632e56d745c5b6ec8db52bf92b11c2666a1fe18d80cf4023bb32541f338"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"SHA256E-s12--{HEX}.bin", f"sha256:{HEX}"),
        (f"SHA256E-s12--{HEX}.tar.gz", f"sha256:{HEX}"),
        (f"SHA256E-s12--{HEX}", f"sha256:{HEX}"),
        (f"SHA256-s12--{HEX}", f"sha256:{HEX}"),
        (f"SHA256-s12-S1048576-C2--{HEX}", f"sha256:{HEX}"),  # a chunk of a chunked object
        ("MD5E-s2--69b64623f86def16ce17d454b8be41ae.txt", "md5:69b64623f86def16ce17d454b8be41ae"),
        ("SHA1-s2--" + "a" * 40, "sha1:" + "a" * 40),
        ("SHA512E-s2--" + "b" * 128 + ".x", "sha512:" + "b" * 128),
        ("WORM-s2-m1795697040--worm.txt", "annex:WORM-s2-m1795697040--worm.txt"),
        ("URL--https&c%%example.com%x", "annex:URL--https&c%%example.com%x"),
        ("SHA3_256E-s2--" + "c" * 64 + ".txt", "annex:SHA3_256E-s2--" + "c" * 64 + ".txt"),
        (f"SHA256-s12--{HEX}.bin", f"annex:SHA256-s12--{HEX}.bin"),  # no E: no extension
        ("SHA256E-s12--abc.bin", "annex:SHA256E-s12--abc.bin"),  # not a whole digest
    ],
)
def test_annex_keys(key: str, expected: str) -> None:
    parsed = parse_key(key)
    assert parsed is not None and parsed.hash == expected


def test_annex_key_fields_and_link_targets() -> None:
    key = parse_key(f"SHA256E-s5000-m17--{HEX}.gz")
    assert key is not None and key.size == 5000 and key.backend == "SHA256E"
    assert parse_key("not a key") is None and parse_key("SHA256E-s1--") is None
    link = f".git/annex/objects/v2/mv/SHA256E-s12--{HEX}.bin/SHA256E-s12--{HEX}.bin"
    assert key_of_link(link) == parse_key(f"SHA256E-s12--{HEX}.bin")
    assert key_of_link("../../" + link) is not None
    assert key_of_link(
        f"/srv/repo.git/annex/objects/f87/4d5/SHA1-s1--{'a' * 40}/SHA1-s1--{'a' * 40}"
    )
    assert key_of_link(f"elsewhere/SHA256E-s12--{HEX}.bin/SHA256E-s12--{HEX}.bin") is None
    assert key_of_link(f".git/annex/objects/v2/mv/SHA256E-s12--{HEX}.bin/other") is None
    assert key_of_link("data/file.csv") is None


def _annex_object(repo: Path, key: str, content: bytes) -> Path:
    obj = repo / ".git" / "annex" / "objects" / "Xx" / "Yy" / key / key
    obj.parent.mkdir(parents=True)
    obj.write_bytes(content)
    obj.chmod(0o444)  # as git-annex leaves it
    return obj


def test_locked_annexed_files_are_named_by_their_key_without_reading(repo: Path) -> None:
    # The key names different bytes than the object holds: if the manifest has the key's
    # digest, the object was not read (git-annex vouched for it when it stored it).
    content, claimed = b"hello", sha256(b"world")
    key = f"SHA256E-s5--{claimed}.csv"
    obj = _annex_object(repo, key, content)
    (repo / "data").mkdir()
    os.symlink(os.path.relpath(obj, repo / "data"), repo / "data" / "train.csv")
    worm = "WORM-s5-m1700000000--notes.txt"
    os.symlink(os.path.relpath(_annex_object(repo, worm, content), repo), repo / "notes.txt")
    entries = build_manifest(repo, ["data", "notes.txt"]).by_path()
    train = entries["data/train.csv"]
    assert (train.hash, train.source, train.size) == (f"sha256:{claimed}", SOURCE_ANNEX, 5)
    assert train.link is not None and train.link.endswith(key)
    assert entries["notes.txt"].hash == f"annex:{worm}"
    assert entries["notes.txt"].source == SOURCE_ANNEX


def test_an_annex_key_whose_size_disagrees_is_not_trusted(repo: Path) -> None:
    key = f"SHA256E-s999--{sha256(b'other')}.bin"
    os.symlink(os.path.relpath(_annex_object(repo, key, b"hello"), repo), repo / "x.bin")
    (entry,) = build_manifest(repo, ["x.bin"]).entries
    assert (entry.hash, entry.source) == (f"sha256:{sha256(b'hello')}", SOURCE_READ)


@pytest.mark.skipif(not _tool("git", "annex", "version"), reason="git-annex is not installed")
def test_real_git_annex(repo: Path) -> None:
    git(repo, "annex", "init", "-q", "test")
    (repo / "data").mkdir()
    big, small = os.urandom(5000), b"x,y\n1,2\n"
    (repo / "data" / "big.tar.gz").write_bytes(big)
    (repo / "data" / "small.csv").write_bytes(small)
    git(repo, "annex", "add", "-q", "data")
    git(repo, "commit", "-q", "-m", "data")
    entries = build_manifest(repo, ["data"]).by_path()
    assert entries["data/big.tar.gz"].hash == f"sha256:{sha256(big)}"
    assert entries["data/small.csv"].hash == f"sha256:{sha256(small)}"
    assert {e.source for e in entries.values()} == {SOURCE_ANNEX}
    # An unlocked file is an ordinary file: hashed.
    git(repo, "annex", "unlock", "data/small.csv")
    assert build_manifest(repo, ["data/small.csv"]).entries[0].source != SOURCE_ANNEX


# ---- DVC -------------------------------------------------------------------------------------


def _dvc_project(root: Path, config: str = "") -> Path:
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(config)
    return root / ".dvc" / "cache"


def _cache_object(cache: Path, content: bytes, *, legacy: bool = False) -> Path:
    digest = md5(content)
    obj = Path(object_path(str(cache), f"{'md5-dos2unix' if legacy else 'md5'}:{digest}"))
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(content)
    obj.chmod(0o444)
    return obj


def test_dvc_cache_paths() -> None:
    cache = "/r/.dvc/cache"
    digest = md5(b"x")
    assert hash_of_cache_path(cache, f"{cache}/files/md5/{digest[:2]}/{digest[2:]}") == (
        f"md5:{digest}"
    )
    assert hash_of_cache_path(cache, f"{cache}/{digest[:2]}/{digest[2:]}") == (
        f"md5-dos2unix:{digest}"
    )
    assert hash_of_cache_path(cache, f"{cache}/files/md5/{digest[:2]}/{digest[2:]}.dir") is None
    assert hash_of_cache_path(cache, f"/elsewhere/files/md5/{digest[:2]}/{digest[2:]}") is None
    assert hash_of_cache_path(cache, f"{cache}/files/md5/zz/{digest[2:]}") is None


def test_dvc_symlinks_into_the_cache_are_named_by_the_object(repo: Path) -> None:
    cache = _dvc_project(repo)
    content, legacy = b"a,b\r\n1,2\r\n", b"\x00binary"
    os.symlink(_cache_object(cache, content), repo / "data.csv")  # DVC links absolutely
    os.symlink(_cache_object(cache, legacy, legacy=True), repo / "old.bin")
    entries = build_manifest(repo, ["data.csv", "old.bin"]).by_path()
    assert entries["data.csv"].hash == f"md5:{md5(content)}"
    assert entries["old.bin"].hash == f"md5-dos2unix:{md5(legacy)}"
    assert {e.source for e in entries.values()} == {SOURCE_DVC}
    assert entries["data.csv"].size == len(content)


def test_a_configured_cache_dir_is_followed(repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    # DVC's own config style: indented keys, relative to .dvc/.
    _dvc_project(
        repo, f"[core]\n    remote = store\n[cache]\n    dir = {shared}\n    type = symlink\n"
    )
    os.symlink(_cache_object(shared, b"shared"), repo / "x.bin")
    (entry,) = build_manifest(repo, ["x.bin"]).entries
    assert (entry.hash, entry.source) == (f"md5:{md5(b'shared')}", SOURCE_DVC)


@needs_yaml
def test_dvc_hardlinks_are_matched_through_dvc_files_and_dir_listings(repo: Path) -> None:
    cache = _dvc_project(repo)
    one, two, table = b"one\n", b"two\n", b"a,b\n"
    # images/ tracked as a directory: its .dir object lists the files (the real format).
    listing = json.dumps(
        [{"md5": md5(one), "relpath": "1.txt"}, {"md5": md5(two), "relpath": "sub/2.txt"}]
    ).encode()
    dir_md5 = md5(listing)
    dir_obj = cache / "files" / "md5" / dir_md5[:2] / f"{dir_md5[2:]}.dir"
    dir_obj.parent.mkdir(parents=True)
    dir_obj.write_bytes(listing)
    (repo / "images" / "sub").mkdir(parents=True)
    os.link(_cache_object(cache, one), repo / "images" / "1.txt")
    os.link(_cache_object(cache, two), repo / "images" / "sub" / "2.txt")
    (repo / "images.dvc").write_text(
        f"outs:\n- md5: {dir_md5}.dir\n  size: 8\n  nfiles: 2\n  hash: md5\n  path: images\n"
    )
    os.link(_cache_object(cache, table), repo / "table.csv")
    (repo / "table.csv.dvc").write_text(
        f"outs:\n- md5: {md5(table)}\n  size: 4\n  hash: md5\n  path: table.csv\n"
    )
    entries = build_manifest(repo, ["images", "table.csv"]).by_path()
    assert {p: e.hash for p, e in entries.items()} == {
        "images/1.txt": f"md5:{md5(one)}",
        "images/sub/2.txt": f"md5:{md5(two)}",
        "table.csv": f"md5:{md5(table)}",
    }
    assert {e.source for e in entries.values()} == {SOURCE_DVC}


@needs_yaml
def test_dvc_lock_outs_and_deps_with_a_stage_wdir(repo: Path) -> None:
    cache = _dvc_project(repo)
    model, data = b"weights", b"rows"
    (repo / "pipeline").mkdir()
    os.link(_cache_object(cache, model), repo / "pipeline" / "model.bin")
    os.link(_cache_object(cache, data), repo / "pipeline" / "data.csv")
    (repo / "pipeline" / "dvc.yaml").write_text(
        "stages:\n  train:\n    wdir: ..\n    cmd: python train.py\n"
    )
    (repo / "pipeline" / "dvc.lock").write_text(
        "schema: '2.0'\n"
        "stages:\n"
        "  train:\n"
        "    cmd: python train.py\n"
        "    deps:\n"
        "    - path: pipeline/data.csv\n"
        "      hash: md5\n"
        f"      md5: {md5(data)}\n"
        "      size: 4\n"
        "    outs:\n"
        "    - path: pipeline/model.bin\n"
        "      hash: md5\n"
        f"      md5: {md5(model)}\n"
        "      size: 7\n"
    )
    entries = build_manifest(repo, ["pipeline/model.bin", "pipeline/data.csv"]).by_path()
    assert entries["pipeline/model.bin"].hash == f"md5:{md5(model)}"
    assert entries["pipeline/data.csv"].hash == f"md5:{md5(data)}"
    assert {e.source for e in entries.values()} == {SOURCE_DVC}


@needs_yaml
def test_dvc_copies_and_stale_metadata_are_hashed(repo: Path) -> None:
    cache = _dvc_project(repo)
    old, new = b"version 1", b"version 2"
    _cache_object(cache, old)
    # A copy (DVC's default cache type) whose .dvc names the old bytes, as after a
    # `git checkout` without `dvc checkout`: its bytes are read and do not match.
    (repo / "copy.csv").write_bytes(new)
    (repo / "copy.csv.dvc").write_text(f"outs:\n- md5: {md5(old)}\n  hash: md5\n  path: copy.csv\n")
    # A hard link to some other file than the cache object the metadata names.
    other = repo / "elsewhere.bin"
    other.write_bytes(new)
    os.link(other, repo / "linked.csv")
    (repo / "linked.csv.dvc").write_text(f"outs:\n- md5: {md5(old)}\n  path: linked.csv\n")
    entries = build_manifest(repo, ["copy.csv", "linked.csv"]).by_path()
    for entry in entries.values():
        assert (entry.hash, entry.source) == (f"sha256:{sha256(new)}", SOURCE_READ)


def test_files_outside_a_dvc_project_are_untouched(repo: Path) -> None:
    target = repo / "real.bin"
    target.write_bytes(b"data")
    os.symlink("real.bin", repo / "link.bin")
    os.link(target, repo / "hard.bin")
    entries = build_manifest(repo, ["link.bin", "hard.bin"]).by_path()
    assert {e.source for e in entries.values()} == {SOURCE_READ}


# ---- DVC copies: read once, named by DVC's hash only when the bytes have it ------------------

LONG_AGO_NS = time.time_ns() - 3600 * 10**9  # older than the stat cache's racy window
MiB = 1 << 20


class BytesRead:
    """A progress that adds up the bytes the capture says it is going to read."""

    def __init__(self) -> None:
        self.total = 0

    def start(self, label: str, total: int) -> None:
        self.total += total

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


@pytest.fixture
def stat_cache(repo: Path) -> Path:
    return repo / ".git" / "prov" / "hash-cache.sqlite"


def _age(*paths: Path) -> None:
    """Make files old enough for the stat cache to remember them."""
    for path in paths:
        os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS))


def _dvc_file(data: Path, digest: str, *, legacy: bool = False) -> Path:
    """``<data>.dvc`` as `dvc add` writes it (DVC 3; DVC 2 wrote no ``hash`` field)."""
    field = "" if legacy else "  hash: md5\n"
    dvc_file = data.with_name(data.name + ".dvc")
    dvc_file.write_text(f"outs:\n- md5: {digest}\n  size: 1\n{field}  path: {data.name}\n")
    return dvc_file


def _record(repo: Path, paths: list[str], cache: Path) -> tuple[dict[str, tuple[str, str]], int]:
    """path → (hash, source) of a manifest built with the stat cache, and the bytes read."""
    progress = BytesRead()
    manifest = build_manifest(repo, paths, cache_path=cache, progress=progress)
    return {e.path: (e.hash, e.source) for e in manifest.entries}, progress.total


@needs_yaml
def test_dvc_copies_are_named_by_dvc_md5_once_their_bytes_are_checked(
    repo: Path, stat_cache: Path
) -> None:
    # DVC's default cache type: the workspace holds copies of the cache objects.
    cache = _dvc_project(repo, "[cache]\n    type = reflink,copy\n")
    model, one, two = os.urandom(3 * MiB + 17), b"one\n", b"two\n"
    (repo / "images").mkdir()
    for path, content in [(repo / "model.bin", model), (repo / "images" / "1.txt", one)]:
        _cache_object(cache, content)
        path.write_bytes(content)
    _cache_object(cache, two)
    (repo / "images" / "2.txt").write_bytes(two)
    _dvc_file(repo / "model.bin", md5(model))
    listing = json.dumps(
        [{"md5": md5(one), "relpath": "1.txt"}, {"md5": md5(two), "relpath": "2.txt"}]
    ).encode()
    dir_obj = cache / "files" / "md5" / md5(listing)[:2] / f"{md5(listing)[2:]}.dir"
    dir_obj.parent.mkdir(parents=True, exist_ok=True)
    dir_obj.write_bytes(listing)
    _dvc_file(repo / "images", f"{md5(listing)}.dir")
    _age(repo / "model.bin", repo / "images" / "1.txt", repo / "images" / "2.txt")
    expected = {
        "model.bin": (f"md5:{md5(model)}", SOURCE_DVC),
        "images/1.txt": (f"md5:{md5(one)}", SOURCE_DVC),
        "images/2.txt": (f"md5:{md5(two)}", SOURCE_DVC),
    }
    assert _record(repo, ["model.bin", "images"], stat_cache) == (expected, len(model) + 8)
    # Recording again reads nothing: the stat cache remembers the checked MD5.
    assert _record(repo, ["model.bin", "images"], stat_cache) == (expected, 0)


@needs_yaml
def test_a_dvc_copy_edited_since_dvc_add_is_named_by_its_bytes(
    repo: Path, stat_cache: Path
) -> None:
    cache = _dvc_project(repo)
    added, edited = b"a,b\n1,2\n", b"a,b\n1,3\n"
    _cache_object(cache, added)
    data = repo / "data.csv"
    data.write_bytes(edited)
    _age(data)
    dvc_file = _dvc_file(data, md5(added))
    read = {"data.csv": (f"sha256:{sha256(edited)}", SOURCE_READ)}
    assert _record(repo, ["data.csv"], stat_cache) == (read, len(edited))
    assert _record(repo, ["data.csv"], stat_cache) == (read, 0)
    # `dvc commit` records the edit; the MD5 the stat cache kept now matches.
    dvc_file.unlink()
    _dvc_file(data, md5(edited))
    assert _record(repo, ["data.csv"], stat_cache) == (
        {"data.csv": (f"md5:{md5(edited)}", SOURCE_DVC)},
        0,
    )


@needs_yaml
def test_a_file_added_to_dvc_after_a_record_is_read_once_more(repo: Path, stat_cache: Path) -> None:
    content = os.urandom(5000)
    data = repo / "table.parquet"
    data.write_bytes(content)
    _age(data)
    assert _record(repo, ["table.parquet"], stat_cache) == (
        {"table.parquet": (f"sha256:{sha256(content)}", SOURCE_READ)},
        len(content),
    )
    # `dvc add` (copy mode): the stat cache knows the SHA-256 but not yet the MD5.
    _cache_object(_dvc_project(repo), content)
    _dvc_file(data, md5(content))
    named = {"table.parquet": (f"md5:{md5(content)}", SOURCE_DVC)}
    assert _record(repo, ["table.parquet"], stat_cache) == (named, len(content))
    assert _record(repo, ["table.parquet"], stat_cache) == (named, 0)


def dvc_legacy_md5(data: bytes, *, per_block: bool) -> str:
    """``md5-dos2unix`` exactly as DVC computes it, transcribed from DVC 2's
    ``dvc.utils.file_md5`` + ``dvc.istextfile`` (text decided once, from the first 512
    bytes; ``per_block=False``) and dvc-data's ``Dos2UnixHashStreamFile`` (DVC 3 checking
    legacy outputs: decided for each 1 MiB block)."""
    text_chars = bytes(range(32, 127)) + b"\n\r\t\f\b"

    def istextblock(block: bytes) -> bool:
        if not block:
            return True
        if b"\x00" in block:
            return False
        return float(len(block.translate(None, text_chars))) / len(block) <= 0.30

    digest = hashlib.md5()
    file_is_text = istextblock(data[:512])
    for start in range(0, len(data), MiB):
        block = data[start : start + MiB]
        text = istextblock(block[:512]) if per_block else file_is_text
        digest.update(block.replace(b"\r\n", b"\n") if text else block)
    return digest.hexdigest()


def _crlf_text(size: int) -> bytes:
    lines = b"".join(b"%d,row %d,%d\r\n" % (i, i * 7, i % 13) for i in range(size // 10 + 1))
    return lines[:size]


@needs_yaml
@pytest.mark.parametrize("read_path", ["sequential", "read-ahead", "small buffers"])
def test_dvc2_copies_are_checked_with_dvc2s_dos2unix_md5(
    repo: Path, stat_cache: Path, monkeypatch: pytest.MonkeyPatch, read_path: str
) -> None:
    if read_path != "sequential":
        monkeypatch.setattr(hashing, "_usable_cpus", lambda: 2)  # read ahead even on 1 CPU
        monkeypatch.setattr(hashing, "READ_AHEAD_MIN", 1)
    if read_path == "small buffers":
        monkeypatch.setattr(hashing, "CHUNK", 4096)  # reads that are not DVC's 1 MiB blocks
    _dvc_project(repo)
    crlf = _crlf_text(MiB - 1) + b"\r\n" + _crlf_text(MiB + 300)  # a CRLF across blocks
    mixed = b"\x00" * 600 + os.urandom(MiB - 600) + _crlf_text(MiB)  # binary, then text
    weights = b"\x00" + os.urandom(2 * MiB) + b"\r\n"
    files = {
        "small.csv": (b"a,b\r\n1,2\r\n", md5(b"a,b\n1,2\n")),
        "big.csv": (crlf, dvc_legacy_md5(crlf, per_block=False)),
        "weights.bin": (weights, md5(weights)),  # binary: dos2unix leaves it alone
        # DVC 2 and DVC 3 disagree about a file whose blocks look different: both count.
        "mixed-dvc2.bin": (mixed, dvc_legacy_md5(mixed, per_block=False)),
        "mixed-dvc3.bin": (mixed, dvc_legacy_md5(mixed, per_block=True)),
        # The plain MD5 of a CRLF text file is not what DVC 2 recorded: no claim holds.
        "wrong.csv": (crlf, md5(crlf)),
    }
    assert files["mixed-dvc2.bin"][1] == md5(mixed) != files["mixed-dvc3.bin"][1]
    for name, (content, digest) in files.items():
        (repo / name).write_bytes(content)
        _age(repo / name)
        _dvc_file(repo / name, digest, legacy=True)
    expected = {
        name: (f"md5-dos2unix:{digest}", SOURCE_DVC)
        for name, (_, digest) in files.items()
        if name != "wrong.csv"
    }
    expected["wrong.csv"] = (f"sha256:{sha256(crlf)}", SOURCE_READ)
    total = sum(len(content) for content, _ in files.values())
    assert _record(repo, sorted(files), stat_cache) == (expected, total)
    assert _record(repo, sorted(files), stat_cache) == (expected, 0)


def test_a_stat_cache_from_before_dvc_checks_is_kept(repo: Path, stat_cache: Path) -> None:
    # Upgrading git-prov must not cost a full re-read of unchanged data.
    content = os.urandom(4000)
    (repo / "data.bin").write_bytes(content)
    _age(repo / "data.bin")
    _record(repo, ["data.bin"], stat_cache)
    db = sqlite3.connect(stat_cache)
    db.execute("DROP TABLE dvc")  # the cache as git-prov wrote it before DVC copies
    db.commit()
    db.close()
    read = {"data.bin": (f"sha256:{sha256(content)}", SOURCE_READ)}
    assert _record(repo, ["data.bin"], stat_cache) == (read, 0)


# DVC from PyPI: on PATH, or installed beside the interpreter running the tests (a venv's
# bin/, which `.venv/bin/python -m pytest` does not put on PATH).
DVC = shutil.which("dvc") or shutil.which("dvc", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(DVC is None, reason=missing("DVC"))
@pytest.mark.parametrize("cache_type", ["symlink", "hardlink", "copy"])
def test_real_dvc(repo: Path, cache_type: str) -> None:
    def dvc(*args: str) -> None:
        assert DVC is not None
        subprocess.run([DVC, *args], cwd=repo, check=True, capture_output=True)

    dvc("init", "-q")
    dvc("config", "cache.type", cache_type)
    (repo / "images" / "sub").mkdir(parents=True)
    files = {"data.csv": b"a,b\r\n1,2\r\n", "images/1.txt": b"one\n", "images/sub/2.txt": b"2\n"}
    for name, content in files.items():
        (repo / name).write_bytes(content)
    dvc("add", "-q", "data.csv", "images")
    entries = build_manifest(repo, ["data.csv", "images"]).by_path()
    if cache_type != "symlink" and not has_yaml():
        pytest.skip(missing("PyYAML, which reads the metadata hard links and copies match,"))
    assert {p: e.hash for p, e in entries.items()} == {n: f"md5:{md5(c)}" for n, c in files.items()}
    assert {e.source for e in entries.values()} == {SOURCE_DVC}


# ---- git-LFS ---------------------------------------------------------------------------------


@pytest.mark.skipif(not _tool("git", "lfs", "version"), reason="git-lfs is not installed")
def test_real_git_lfs_pointer_and_smudged_file_agree(repo: Path, tmp_path: Path) -> None:
    git(repo, "lfs", "install", "--local")
    commit_file(repo, ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    content = os.urandom(3000)
    (repo / "model.bin").write_bytes(content)
    git(repo, "add", "model.bin")
    git(repo, "commit", "-q", "-m", "model")
    (smudged,) = build_manifest(repo, ["model.bin"]).entries
    assert smudged.hash == f"sha256:{sha256(content)}" and smudged.size == len(content)
    # A clone that skipped the download holds the pointer; it names the same object.
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", str(repo), str(clone)],
        check=True,
        env={**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"},
    )
    (pointer,) = build_manifest(clone, ["model.bin"]).entries
    assert (clone / "model.bin").stat().st_size < 200
    assert (pointer.hash, pointer.size, pointer.source) == (smudged.hash, len(content), SOURCE_LFS)


@needs_yaml
def test_check_and_reproduce_verify_inputs_named_by_dvcs_md5(repo: Path) -> None:
    """A DVC copy recorded by DVC's MD5 is verified by `check` and `reproduce`: unchanged
    it is ok, edited (so no longer DVC's bytes) it is reported changed — never left
    unverified or unverifiable."""
    cache = _dvc_project(repo, "[cache]\n    type = reflink,copy\n")
    added = b"a,b\n1,2\n"
    _cache_object(cache, added)
    (repo / ".gitignore").write_text("/data.csv\n")
    data = repo / "data.csv"
    data.write_bytes(added)
    _dvc_file(data, md5(added))
    git(repo, "add", ".gitignore", ".dvc/config", "data.csv.dvc")
    git(repo, "commit", "-q", "-m", "track data with dvc")
    run = json.loads(prov(repo, "record", "-i", "data.csv", "--json", "--command", "true").stdout)
    [entry] = json.loads(prov(repo, "show", "--json", run["id"]).stdout)["inputs_manifest"]["files"]
    assert (entry["hash"], entry["source"]) == (f"md5:{md5(added)}", SOURCE_DVC)

    assert prov(repo, "check", run["id"], check=False).returncode == 0
    ready = json.loads(prov(repo, "reproduce", "--dry-run", "--json", run["id"]).stdout)
    assert [(i["path"], i["status"]) for i in ready["inputs"]] == [("data.csv", "ok")]

    edited = b"a,b\n1,3\n"  # the same size, other bytes
    data.write_bytes(edited)
    drift = prov(repo, "check", "--json", run["id"], check=False)
    assert drift.returncode == 1
    [change] = json.loads(drift.stdout)["inputs"]["changes"]
    assert (change["change"], change["old_hash"]) == ("changed", f"md5:{md5(added)}")
    assert change["new_hash"] == f"md5:{md5(edited)}"
    blocked = prov(repo, "reproduce", "--dry-run", "--json", run["id"], check=False)
    assert [(i["path"], i["status"]) for i in json.loads(blocked.stdout)["inputs"]] == [
        ("data.csv", "changed")
    ]

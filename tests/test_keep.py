"""Kept data (issue #14): ``--keep`` stores the bytes of declared data by content under
``refs/prov/data``; ``git prov get`` writes them back, verified; ``show`` says where each
file's bytes can be had. Real git, real repositories, the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from lfs_server import LfsServer

DATA_REF = "refs/prov/data"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _run_id(repo: Path, *args: str, input_bytes: bytes | None = None, check: bool = True) -> str:
    if input_bytes is not None:  # the command reads these bytes on stdin
        feed = repo.parent / "stdin.bin"
        feed.write_bytes(input_bytes)
        args = (*args[:-1], args[-1] + f" < {feed}")
    proc = prov(repo, *args, check=check)
    text = proc.stderr  # run and record say so on stderr
    return text.split("recorded run ")[1].split()[0]


def _manifest(repo: Path, run: str, side: str) -> dict[str, dict[str, object]]:
    doc = json.loads(prov(repo, "show", run, "--json").stdout)
    return {f["path"]: f for f in doc[f"{side}_manifest"]["files"]}


def _ignore_data(repo: Path) -> None:
    (repo / ".gitignore").write_text("data/\nout/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore data")


@pytest.fixture
def kept_repo(repo: Path) -> Path:
    _ignore_data(repo)
    return repo


def test_keep_outputs_and_inputs_then_get_restores_exact_bytes(kept_repo: Path) -> None:
    repo = kept_repo
    train = os.urandom(3000) + b"\x00\r\n"  # binary, with bytes text filters would change
    _write(repo / "data/train.csv", train)
    run = _run_id(
        repo,
        "run",
        "-i",
        "data",
        "-o",
        "out",
        "--keep",
        "all",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cp data/train.csv out/model.bin && echo x > out/log.txt",
    )
    inputs = _manifest(repo, run, "inputs")
    outputs = _manifest(repo, run, "outputs")
    assert inputs["data/train.csv"]["kept"] == "git"
    assert outputs["out/model.bin"]["kept"] == "git"
    assert outputs["out/log.txt"]["kept"] == "git"
    # Stored by content under refs/prov/data: plain git can read the bytes back.
    digest = _sha(train)
    raw = subprocess.run(
        ["git", "cat-file", "blob", f"{DATA_REF}:sha256/{digest[:2]}/{digest[2:]}"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert raw == train

    # Change and remove them; get puts the recorded bytes back.
    _write(repo / "data/train.csv", b"changed")
    (repo / "out/model.bin").unlink()
    (repo / "out/log.txt").unlink()
    refused = prov(repo, "get", run, check=False)
    assert refused.returncode == 5, refused.stderr
    assert "data/train.csv" in refused.stderr and "--force" in refused.stderr
    assert not (repo / "out/model.bin").exists()  # refused before anything was written
    prov(repo, "get", run, "--force")
    assert (repo / "data/train.csv").read_bytes() == train
    assert (repo / "out/model.bin").read_bytes() == train
    assert (repo / "out/log.txt").read_bytes() == b"x\n"
    # Again: nothing to do, nothing refused.
    again = json.loads(prov(repo, "get", run, "--json").stdout)
    assert {f["action"] for f in again["files"]} == {"unchanged"}


def test_get_one_path_into_another_directory(kept_repo: Path, tmp_path: Path) -> None:
    repo = kept_repo
    _write(repo / "data/a.bin", b"A" * 100)
    _write(repo / "data/sub/b.bin", b"B" * 100)
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "true")
    dest = tmp_path / "elsewhere"
    prov(repo, "get", run, "data/sub", "-o", str(dest))
    assert (dest / "data/sub/b.bin").read_bytes() == b"B" * 100
    assert not (dest / "data/a.bin").exists()
    missing = prov(repo, "get", run, "data/nothing", "-o", str(dest), check=False)
    assert missing.returncode == 6 and "no data file" in missing.stderr


def test_not_kept_is_a_clear_error_and_show_says_hash_only(kept_repo: Path) -> None:
    repo = kept_repo
    _write(repo / "data/a.bin", b"hello")
    run = _run_id(repo, "record", "-i", "data", "-c", "true")
    proc = prov(repo, "get", run, check=False)
    assert proc.returncode == 6
    assert "kept none of its data files" in proc.stderr and "--keep" in proc.stderr
    named = prov(repo, "get", run, "data/a.bin", "-o", "x", check=False)
    assert named.returncode == 6 and "were not kept" in named.stderr
    assert "hash only" in prov(repo, "show", run).stdout


def test_show_says_where_bytes_can_be_had(kept_repo: Path) -> None:
    repo = kept_repo
    commit_file(repo, "params.yaml", "lr: 1\n")
    _write(repo / "data/a.bin", b"kept")
    _write(repo / "data/b.bin", b"not kept")
    run = _run_id(
        repo, "record", "-i", "params.yaml", "-i", "data", "--keep", "data/a.bin", "-c", "true"
    )
    lines = {
        line.split()[0]: line
        for line in prov(repo, "show", run).stdout.splitlines()
        if "  " in line
    }
    assert "kept here" in lines["data/a.bin"]
    assert "hash only" in lines["data/b.bin"]
    assert "in git" in lines["params.yaml"]
    doc = json.loads(prov(repo, "show", run, "--json").stdout)
    files = {f["path"]: f for f in doc["inputs_manifest"]["files"]}
    assert files["data/a.bin"]["available"] == "kept here"
    # A file in git comes back from git, without being stored again.
    (repo / "params.yaml").write_text("lr: 2\n")
    prov(repo, "get", run, "params.yaml", "--force")
    assert (repo / "params.yaml").read_text() == "lr: 1\n"


def test_kept_bytes_are_stored_once_for_two_runs(kept_repo: Path) -> None:
    repo = kept_repo
    _write(repo / "data/big.bin", os.urandom(200_000))
    first = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "one")
    tip = git(repo, "rev-parse", DATA_REF)
    second = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "two")
    assert first != second
    assert git(repo, "rev-parse", DATA_REF) == tip  # nothing new to store
    listing = git(repo, "ls-tree", "-r", "--name-only", DATA_REF).splitlines()
    assert len(listing) == 1


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


def test_kept_file_is_read_once_and_an_unchanged_one_not_again(kept_repo: Path) -> None:
    """Keeping costs no second read: the bytes stored are the bytes hashed, and a file the
    stat cache knows and the store holds costs nothing on the next record."""
    from git_prov.capture.data import build_manifest
    from git_prov.store.kept import KeptStore
    from git_prov.store.repo import open_repo

    repo = kept_repo
    payload = os.urandom(50_000)
    _write(repo / "data/x.bin", payload)
    os.utime(repo / "data/x.bin", (1_700_000_000, 1_700_000_000))  # old: the cache trusts it
    handle = open_repo(repo)
    cache = handle.prov_dir / "hash-cache.sqlite"

    def record() -> tuple[int, str | None]:
        store = KeptStore(handle)
        read = _BytesRead()
        manifest = build_manifest(
            repo,
            ["data"],
            cache_path=cache,
            keep=lambda rel, size: True,
            keeper=store,
            progress=read,
        )
        store.commit("test: keep")
        return read.total, manifest.entries[0].kept

    assert record() == (len(payload), "git")  # read once: hashed and kept
    assert record() == (0, "git")  # known and kept: not read at all
    # Known to the stat cache but not kept yet (the store lost it): read once, kept again.
    git(repo, "update-ref", "-d", DATA_REF)
    assert record() == (len(payload), "git")


def test_keep_defaults_from_gitprov_toml_with_a_size_limit(kept_repo: Path) -> None:
    repo = kept_repo
    (repo / ".gitprov.toml").write_text('[keep]\nwhat = ["outputs"]\nmax_size = 1000\n')
    run = _run_id(
        repo,
        "run",
        "-o",
        "out",
        "--",
        "sh",
        "-c",
        "mkdir -p out && head -c 10 /dev/zero > out/small && head -c 5000 /dev/zero > out/big",
    )
    outputs = _manifest(repo, run, "outputs")
    assert outputs["out/small"].get("kept") == "git"
    assert "kept" not in outputs["out/big"]
    # --keep none ignores the defaults for one run.
    run2 = _run_id(repo, "run", "-o", "out", "--keep", "none", "--", "true")
    assert all("kept" not in f for f in _manifest(repo, run2, "outputs").values())


def test_hostile_manifest_paths_never_write_outside_the_destination(
    kept_repo: Path, tmp_path: Path
) -> None:
    """A ledger fetched from someone else may name any path: get refuses the unsafe ones
    and never follows a symlink out of the destination."""
    from git_prov.model.manifest import DataEntry, DataManifest
    from git_prov.store.kept import KeptStore
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    repo = kept_repo
    outside = tmp_path / "outside"
    outside.mkdir()
    _write(repo / "data/ok.bin", b"payload")
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "true")
    entry = _manifest(repo, run, "inputs")["data/ok.bin"]

    handle = open_repo(repo)
    ledger = Ledger(handle)
    store = KeptStore(handle)
    assert store.has(str(entry["hash"]), 7)
    for hostile in ("../outside/evil", "/tmp/evil-abs", "data/../../outside/evil", ".git/hooks/x"):
        manifest = DataManifest.build(
            [hostile], [DataEntry(hostile, 7, str(entry["hash"]), kept="git")]
        )
        oid = ledger.store_object(manifest.to_toml())
        bad_run = _forge_run(repo, ledger, oid)
        dest = tmp_path / "dest"
        proc = prov(repo, "get", bad_run, "-o", str(dest), check=False)
        assert proc.returncode == 5, proc.stderr
        assert "unsafe path" in proc.stderr
        assert list(outside.iterdir()) == []

    # A symlink inside the destination that leads out is not followed.
    dest = tmp_path / "dest2"
    (dest).mkdir()
    (dest / "data").symlink_to(outside)
    proc = prov(repo, "get", run, "-o", str(dest), check=False)
    assert proc.returncode == 5 and "symbolic link" in proc.stderr
    assert list(outside.iterdir()) == []


def _forge_run(repo: Path, ledger: object, inputs_oid: str) -> str:
    """Write a run record naming ``inputs_oid`` straight into the ledger (as a hostile
    clone could), and return its id."""
    from git_prov.model.ids import new_run_id
    from git_prov.model.record import RunRecord
    from git_prov.store.ledger import KIND_DATA, Ledger

    assert isinstance(ledger, Ledger)
    head = git(repo, "rev-parse", "HEAD")
    run_id = new_run_id()
    record = RunRecord(
        id=run_id,
        commit=head,
        command="evil",
        started="2026-01-02T03:04:05.000Z",
        ended="2026-01-02T03:04:05.000Z",
        duration=0.0,
        status="ok",
        exit_code=0,
        inputs=inputs_oid,
    )
    ledger.write([(head, record)], objects={KIND_DATA: [inputs_oid]}, keep=[head])
    return run_id


def test_large_files_are_kept_in_git_lfs_not_as_git_blobs(kept_repo: Path) -> None:
    repo = kept_repo
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 10000\n")
    big = os.urandom(50_000)
    run = _run_id(
        repo,
        "run",
        "-o",
        "out",
        "--keep",
        "outputs",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cat > out/model.bin",
        input_bytes=big,
    )
    outputs = _manifest(repo, run, "outputs")
    assert outputs["out/model.bin"]["kept"] == "lfs"
    digest = _sha(big)
    # The bytes are an object of the local LFS store; refs/prov/data holds its pointer.
    stored = repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == big
    pointer = git(repo, "cat-file", "blob", f"{DATA_REF}:lfs/{digest[:2]}/{digest[2:]}")
    assert f"oid sha256:{digest}" in pointer and "size 50000" in pointer
    assert "sha256/" not in git(repo, "ls-tree", "-r", "--name-only", DATA_REF)
    (repo / "out/model.bin").write_bytes(b"overwritten in place")
    assert stored.read_bytes() == big  # the store is not the user's file
    prov(repo, "get", run, "--force")
    assert (repo / "out/model.bin").read_bytes() == big


def test_reproduce_uses_kept_bytes_of_a_drifted_input_and_check_says_how_to_restore(
    kept_repo: Path,
) -> None:
    repo = kept_repo
    _write(repo / "data/in.txt", b"the recorded input\n")
    run = _run_id(
        repo,
        "run",
        "-i",
        "data/in.txt",
        "-o",
        "out/res.txt",
        "--keep",
        "inputs",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cp data/in.txt out/res.txt",
    )
    _write(repo / "data/in.txt", b"drifted since\n")

    check = prov(repo, "check", run, check=False)
    assert check.returncode == 1
    assert f"restore with git prov get {run} data/in.txt" in check.stdout

    proc = prov(repo, "reproduce", "--json", run, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert doc["verdict"] == "identical"
    assert any("kept recorded bytes" in n for n in doc["notes"])
    (checked,) = doc["inputs"]
    assert checked["found_in"] == "kept" and checked["status"] == "ok"
    # The user's working tree is not touched.
    assert (repo / "data/in.txt").read_bytes() == b"drifted since\n"

    # Without kept bytes, the same drift refuses (exit 5), as before.
    plain = _run_id(
        repo,
        "run",
        "-i",
        "data/in.txt",
        "--",
        "true",
    )
    _write(repo / "data/in.txt", b"drifted again\n")
    refused = prov(repo, "reproduce", "--json", plain, check=False)
    assert refused.returncode == 5


def test_python_api_keep_and_get(
    kept_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import git_prov

    repo = kept_repo
    monkeypatch.chdir(repo)
    with git_prov.run(outputs=["out"], keep="outputs", command="train") as active:
        _write(repo / "out/model.bin", b"weights")
    run = active.id
    (repo / "out/model.bin").unlink()
    written = git_prov.get(run, output=tmp_path / "got")
    assert written == [str(tmp_path / "got/out/model.bin")]
    assert (tmp_path / "got/out/model.bin").read_bytes() == b"weights"
    rec = git_prov.record("by hand", inputs=["out"], keep=["inputs"], repo=repo)
    assert rec.id


def test_gc_drops_kept_bytes_by_keep_last_per_path_and_get_then_says_so(kept_repo: Path) -> None:
    repo = kept_repo
    runs = []
    for n in range(3):
        runs.append(
            _run_id(
                repo,
                "run",
                "-o",
                "out",
                "--keep",
                "outputs",
                "--",
                "sh",
                "-c",
                f"mkdir -p out && echo version {n} > out/model.txt",
            )
        )
    plan = json.loads(
        prov(repo, "gc", "--data-only", "--keep-last", "1", "--dry-run", "--json").stdout
    )
    assert len(plan["data"]) == 2 and plan["dry_run"]
    prov(repo, "gc", "--data-only", "--keep-last", "1", "--force")
    # The runs stay, with their hashes; the bytes of the older two are gone.
    assert len(json.loads(prov(repo, "find", "--json").stdout)) == 3
    proc = prov(repo, "get", runs[0], "-o", "x", check=False)
    assert proc.returncode == 6
    assert "dropped by git prov gc" in proc.stderr and "out/model.txt" in proc.stderr
    assert "dropped by git prov gc" in prov(repo, "show", runs[1]).stdout
    listing = git(repo, "ls-tree", "-r", "--name-only", DATA_REF).splitlines()
    assert len(listing) == 1
    prov(repo, "get", runs[2], "-o", "y")
    assert (repo / "y/out/model.txt").read_text() == "version 2\n"
    fsck = json.loads(prov(repo, "fsck", "--json", check=False).stdout)
    assert not [f for f in fsck["findings"] if f["code"] == "unknown-tree-entry"]


def test_gc_of_failed_runs_drops_their_kept_bytes_unless_shared(kept_repo: Path) -> None:
    repo = kept_repo
    ok = _run_id(
        repo,
        "run",
        "-o",
        "out",
        "--keep",
        "outputs",
        "--",
        "sh",
        "-c",
        "mkdir -p out && echo same > out/a.txt",
    )
    failed = _run_id(
        repo,
        "run",
        "-o",
        "out",
        "--keep",
        "outputs",
        "--",
        "sh",
        "-c",
        "mkdir -p out && echo same > out/a.txt && echo bad > out/b.txt && exit 3",
        check=False,
    )
    assert prov(repo, "gc", "--failed-only", "--force", check=False).returncode == 0
    listing = git(repo, "ls-tree", "-r", "--name-only", DATA_REF).splitlines()
    assert len(listing) == 1  # out/a.txt stays: the surviving run kept the same bytes
    prov(repo, "get", ok, "-o", "z")
    assert (repo / "z/out/a.txt").read_text() == "same\n"
    assert failed


# ---- between clones ------------------------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path, kept_repo: Path) -> Path:
    """A bare remote (reached by a file:// URL, as git-lfs's file transfer needs) holding
    the kept repo's main branch; the kept repo is its clone "origin"."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(kept_repo, "remote", "add", "origin", f"file://{bare}")
    git(kept_repo, "push", "-q", "origin", "main")
    return bare


def _clone(remote: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", f"file://{remote}", str(dest))
    prov(dest, "fetch")
    return dest


def test_push_data_then_get_in_a_fresh_clone(kept_repo: Path, remote: Path, tmp_path: Path) -> None:
    repo = kept_repo
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 20000\n")
    small, big = os.urandom(1000), os.urandom(60_000)
    _write(repo / "data/small.bin", small)
    _write(repo / "data/big.bin", big)
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "train")
    kinds = {p: f["kept"] for p, f in _manifest(repo, run, "inputs").items()}
    assert kinds == {"data/small.bin": "git", "data/big.bin": "lfs"}

    # Metadata only: the remote gets the run, not the bytes.
    prov(repo, "push")
    assert git(remote, "for-each-ref", DATA_REF) == ""
    early = _clone(remote, tmp_path / "early")
    assert "kept, not here" in prov(early, "show", run).stdout
    proc = prov(early, "get", run, check=False)
    assert proc.returncode == 6
    assert "origin" in proc.stderr and "git prov push --data origin" in proc.stderr

    out = prov(repo, "push", "--data")
    assert "1 through git-LFS" in out.stdout, out.stdout
    assert git(remote, "for-each-ref", "--format=%(refname)", DATA_REF) == DATA_REF

    clone = _clone(remote, tmp_path / "clone")
    assert git(clone, "for-each-ref", DATA_REF, "refs/prov/remotes/origin/data") == ""
    prov(clone, "get", run)  # fetches what it needs: git blobs, then the LFS object
    assert (clone / "data/small.bin").read_bytes() == small
    assert (clone / "data/big.bin").read_bytes() == big
    assert "kept here" in prov(clone, "show", run).stdout


def test_dropped_data_stays_dropped_after_sync(
    kept_repo: Path, remote: Path, tmp_path: Path
) -> None:
    repo = kept_repo
    _write(repo / "data/a.bin", b"will be dropped")
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "one")
    prov(repo, "push", "--data")
    other = _clone(remote, tmp_path / "other")
    prov(other, "fetch", "--data")
    assert "kept here" in prov(other, "show", run).stdout

    prov(repo, "gc", "--data-only", run, "--force")
    prov(repo, "sync", "--data")
    prov(other, "sync", "--data")  # the other clone still had the bytes
    for clone in (repo, other):
        assert "dropped by git prov gc" in prov(clone, "show", run).stdout
        proc = prov(clone, "get", run, "data/a.bin", "-o", "x", check=False)
        assert proc.returncode == 6 and "dropped" in proc.stderr
    assert git(other, "ls-tree", "-r", "--name-only", DATA_REF) == ""
    assert git(remote, "ls-tree", "-r", "--name-only", DATA_REF) == ""


def test_concurrent_data_pushes_merge(kept_repo: Path, remote: Path, tmp_path: Path) -> None:
    repo = kept_repo
    prov(repo, "push")
    other = _clone(remote, tmp_path / "other")
    _ignore_data(other) if not (other / ".gitignore").exists() else None
    _write(repo / "data/a.bin", b"from repo")
    _write(other / "data/b.bin", b"from other")
    first = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "one")
    second = _run_id(other, "record", "-i", "data", "--keep", "inputs", "-c", "two")
    prov(repo, "push", "--data")
    prov(other, "sync", "--data")  # rejected once, merges, pushes the union
    prov(repo, "sync", "--data")
    assert len(git(remote, "ls-tree", "-r", "--name-only", DATA_REF).splitlines()) == 2
    third = _clone(remote, tmp_path / "third")
    prov(third, "get", first, "-o", "g1")
    prov(third, "get", second, "-o", "g2")
    assert (third / "g1/data/a.bin").read_bytes() == b"from repo"
    assert (third / "g2/data/b.bin").read_bytes() == b"from other"


def test_large_kept_file_through_an_http_lfs_server(
    lfs_server: LfsServer, kept_repo: Path, tmp_path: Path
) -> None:
    repo = kept_repo
    url = lfs_server.create_repo("org/repo")
    lfs_server.authorize(repo)
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "main")
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 20000\n")
    big = os.urandom(80_000)
    run = _run_id(
        repo,
        "run",
        "-o",
        "out",
        "--keep",
        "outputs",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cat > out/model.bin",
        input_bytes=big,
    )
    prov(repo, "push", "--data")
    assert lfs_server.has_object("org/repo", _sha(big))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", url, str(clone))
    lfs_server.authorize(clone)
    prov(clone, "fetch")
    prov(clone, "get", run, "-o", "got")
    assert (clone / "got/out/model.bin").read_bytes() == big


def test_get_refuses_damaged_kept_bytes(kept_repo: Path) -> None:
    repo = kept_repo
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 10000\n")
    big = os.urandom(30_000)
    _write(repo / "data/big.bin", big)
    run = _run_id(repo, "record", "-i", "data", "--keep", "inputs", "-c", "x")
    digest = _sha(big)
    stored = repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest
    os.chmod(stored, 0o644)
    stored.write_bytes(b"X" + big[1:])  # same size, other bytes
    proc = prov(repo, "get", run, "-o", "out", check=False)
    assert proc.returncode == 9, proc.stderr
    assert "not the recorded" in proc.stderr
    assert not (repo / "out/data/big.bin").exists()


def test_keeping_an_undeclared_path_is_refused_before_the_command_runs(kept_repo: Path) -> None:
    repo = kept_repo
    proc = prov(repo, "run", "--keep", "models", "--", "touch", "ran", check=False)
    assert proc.returncode == 2
    assert "--keep models: not declared data" in proc.stderr and "-o/--output" in proc.stderr
    assert not (repo / "ran").exists()

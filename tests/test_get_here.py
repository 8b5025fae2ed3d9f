"""``git prov get`` of bytes kept here reads the ledger through the git binary, without
pygit2 (kept_get.get_here), and does exactly what the full path does; a stat cache entry
in the racy window is never trusted (kept_get._copy_stored). Real git, real git-lfs, the
real CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from conftest import git, prov

from git_prov.capture.digests import FileDigest, HashJob, StatKey
from git_prov.capture.racy import RACY_NS
from git_prov.capture.stat_cache import StatCache

IMPORTS = {"PYTHONPROFILEIMPORTTIME": "1"}
FULL_PATH = {"GIT_DIR": ".git"}  # (get_here steps aside when GIT_DIR is set)


def _modules(stderr: str) -> set[str]:
    return {ln.rsplit("|", 1)[1].strip() for ln in stderr.splitlines() if "import time:" in ln}


def _said(stderr: str) -> str:
    return "\n".join(ln for ln in stderr.splitlines() if "import time:" not in ln)


@pytest.fixture
def kept(repo: Path) -> tuple[Path, str, dict[str, bytes]]:
    """A run that kept a small output (a git blob), a large one (git-LFS) and an input;
    the files themselves then removed."""
    (repo / ".gitignore").write_text("data/\nout/\nA/\nB/\n")
    (repo / ".gitprov.toml").write_text("[keep]\nlfs_threshold = 10000\n")
    git(repo, "add", ".gitignore", ".gitprov.toml")
    git(repo, "commit", "-q", "-m", "ignore data")
    files = {
        "data/in.csv": b"a,b\n1,2\n",
        "out/small.txt": os.urandom(500),
        "out/model.bin": os.urandom(40_000),
        "out/sub/also.bin": os.urandom(300),
    }
    for rel, data in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    done = prov(repo, "record", "-i", "data", "-o", "out", "--keep", "all", "-c", "train")
    run = done.stderr.split("recorded run ")[1].split()[0]
    for rel in files:
        (repo / rel).unlink()
    return repo, run, files


def _get(repo: Path, *args: str, full: bool = False) -> tuple[int, str, str, set[str]]:
    env = {**IMPORTS, **(FULL_PATH if full else {})}
    done = prov(repo, "get", *args, check=False, env=env)
    return done.returncode, done.stdout, _said(done.stderr), _modules(done.stderr)


def test_get_of_bytes_kept_here_loads_no_pygit2_and_does_what_the_full_path_does(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    repo, run, files = kept
    quick = _get(repo, run, "-o", "A")
    full = _get(repo, run, "-o", "B", full=True)
    assert "git_prov.kept_get" in quick[3] and "pygit2" not in quick[3]
    assert "pygit2" in full[3]  # (the full path really was taken)
    assert quick[0] == full[0] == 0
    assert quick[1] == full[1].replace("B/", "A/") and quick[2] == full[2]
    assert "A/out/model.bin  written (from kept)" in quick[1]
    for rel, data in files.items():
        assert (repo / "A" / rel).read_bytes() == data == (repo / "B" / rel).read_bytes()
    # Again: every file is there already.
    again = [_get(repo, run, "-o", d, "--json", full=d == "B") for d in ("A", "B")]
    assert "pygit2" not in again[0][3]
    docs = [json.loads(g[1]) for g in again]
    for f in docs[1]["files"]:
        f["target"] = f["target"].replace("B/", "A/")
    assert docs[0] == docs[1] and {f["action"] for f in docs[0]["files"]} == {"unchanged"}
    # One path, one side, a directory.
    for args in (("out/model.bin",), ("--inputs",), ("out/sub",)):
        for d in ("A", "B"):
            for rel in files:
                (repo / d / rel).unlink(missing_ok=True)
        one = _get(repo, run, *args, "-o", "A")
        other = _get(repo, run, *args, "-o", "B", full=True)
        assert "pygit2" not in one[3], args
        assert one[:3] == (other[0], other[1].replace("B/", "A/"), other[2]), args
    # A file that differs is refused, and overwritten with --force: the same words.
    for d in ("A", "B"):
        (repo / d / "out/model.bin").write_bytes(b"edited")
    refused = [_get(repo, run, "-o", d, full=d == "B") for d in ("A", "B")]
    assert refused[0][0] == refused[1][0] == 5
    assert refused[0][2] == refused[1][2].replace("B/", "A/")
    assert "does not have the recorded bytes" in refused[0][2]
    assert (repo / "A/out/model.bin").read_bytes() == b"edited"
    forced = _get(repo, run, "-o", "A", "--force")
    assert forced[0] == 0 and "pygit2" not in forced[3]
    assert (repo / "A/out/model.bin").read_bytes() == files["out/model.bin"]


def test_errors_and_bytes_not_here_say_what_the_full_path_says(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    repo, run, files = kept
    for args in (("nope",), (run, "no/such/file"), ("0000",)):
        quick = _get(repo, *args)
        full = _get(repo, *args, full=True)
        assert quick[:3] == full[:3] and quick[0] == 6, args
    # Bytes gone from the local LFS store (and from git-prov's second name), with no
    # remote to fetch them from: get_here steps aside and the full path says so.
    digest = hashlib.sha256(files["out/model.bin"]).hexdigest()
    (repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest).unlink()
    (repo / ".git/prov/lfs-unpushed" / digest).unlink()
    gone = _get(repo, run, "out/model.bin", "-o", "A")
    assert gone[:3] == _get(repo, run, "out/model.bin", "-o", "B", full=True)[:3]
    assert gone[0] != 0 and "pygit2" in gone[3]
    assert not (repo / "A/out/model.bin").exists()


def test_a_stat_cache_entry_in_the_racy_window_is_not_trusted(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    """An LFS object changed within the same timestamp tick as the stat data its cache
    entry holds: the entry still matches, but its mtime is not safely older than the
    cache's last write (git's racy-clean rule), so get hashes the object while copying it
    and refuses the other bytes (exit 9) — however long after that it runs."""
    repo, run, files = kept
    digest = hashlib.sha256(files["out/model.bin"]).hexdigest()
    stored = repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest
    os.chmod(stored, 0o644)
    stored.write_bytes(b"X" + files["out/model.bin"][1:])  # same size, other bytes
    os.chmod(stored, 0o444)
    # What a cache written at the moment of that change would hold: the current stat
    # data with the recorded hash.
    cache = StatCache.open(repo / ".git/prov/hash-cache.sqlite")
    assert cache is not None
    job = HashJob(str(stored), str(stored), StatKey.of(os.stat(stored)))
    cache.store([(job, FileDigest(f"sha256:{digest}", len(files["out/model.bin"])))])
    cache.close()
    for full in (False, True):
        code, _, said, _ = _get(repo, run, "out/model.bin", "-o", "A", full=full)
        assert code == 9, said
        assert "not the recorded" in said
        assert not (repo / "A/out/model.bin").exists()
    # The right bytes again, in an object older than the window (as if downloaded a while
    # ago): get verifies it while copying, and then vouches for it (the next get copies it
    # without reading it).
    os.chmod(stored, 0o644)
    stored.write_bytes(files["out/model.bin"])
    os.chmod(stored, 0o444)
    old = time.time_ns() - 10 * RACY_NS
    os.utime(stored, ns=(old, old))
    assert _vouched(repo, stored) is None
    assert _get(repo, run, "out/model.bin", "-o", "A")[0] == 0
    assert (repo / "A/out/model.bin").read_bytes() == files["out/model.bin"]
    assert _vouched(repo, stored) == f"sha256:{digest}"


def _vouched(repo: Path, stored: Path) -> str | None:
    cache = StatCache.open(repo / ".git/prov/hash-cache.sqlite")
    assert cache is not None
    known = cache.lookup([HashJob(str(stored), str(stored), StatKey.of(os.stat(stored)))])[0]
    cache.close()
    return known.hash if known is not None else None


def _last_write_ns(repo: Path) -> int:
    cache = repo / ".git/prov/hash-cache.sqlite"
    return max(os.stat(p).st_mtime_ns for p in (cache, Path(f"{cache}-wal")) if p.exists())


def test_keep_vouches_for_its_objects_out_of_the_racy_window(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    """keep remembers each LFS object it wrote with an mtime set back out of the racy
    window, so that even the first get copies it without reading it; a later write to the
    object (which sets the mtime to now) no longer matches, and get then verifies it."""
    repo, run, files = kept
    digest = hashlib.sha256(files["out/model.bin"]).hexdigest()
    stored = repo / ".git/lfs/objects" / digest[:2] / digest[2:4] / digest
    assert _vouched(repo, stored) == f"sha256:{digest}"
    # (git's racy-clean rule, as get applies it: safely older than the cache's last write)
    assert os.stat(stored).st_mtime_ns <= _last_write_ns(repo) - RACY_NS
    # So the kernel copies it: get hashes nothing, and loads neither hashlib nor the
    # writers' modules (start-up is most of the cost of a get of a large file).
    code, _, said, modules = _get(repo, run, "out/model.bin", "-o", "C")
    assert code == 0, said
    assert (repo / "C/out/model.bin").read_bytes() == files["out/model.bin"]
    assert "git_prov.capture.digests" in modules, sorted(modules)
    assert not {"hashlib", "tomli_w", "queue"} & modules, sorted(modules)
    os.chmod(stored, 0o644)
    with open(stored, "r+b") as f:
        f.write(b"Y")
    code, _, said, _ = _get(repo, run, "out/model.bin", "-o", "A")
    assert code == 9 and "not the recorded" in said
    assert not (repo / "A/out/model.bin").exists()


CLICK = {"GIT_PROV_NO_QUICK": "1"}  # every command line through click (entry.NO_QUICK_ENV)


def _both(repo: Path, *args: str) -> tuple[tuple[int, str, str], set[str], tuple[int, str, str]]:
    """``git prov ARGS`` through the executable's quick path (with ``{d}`` as A) and through
    click (``{d}`` as B, shown as A): what each said, and the quick one's modules."""
    quick = prov(repo, *(a.format(d="A") for a in args), check=False, env=IMPORTS)
    slow = prov(repo, *(a.format(d="B") for a in args), check=False, env={**IMPORTS, **CLICK})
    said = (slow.returncode, *(t.replace("B/", "A/") for t in (slow.stdout, _said(slow.stderr))))
    return (quick.returncode, quick.stdout, _said(quick.stderr)), _modules(quick.stderr), said


def test_get_without_click_says_what_the_click_command_says(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    """The executable runs a get of bytes kept here without importing click (nor pygit2):
    the same files, stdout, stderr and exit codes as the click command, errors included;
    option spellings it does not take, and an -o click would refuse, go to click."""
    repo, run, files = kept
    (repo / "sub").mkdir()
    (repo / "afile").write_text("x")
    for args in (
        (run, "-o", "{d}"),
        (run, "--output={d}", "--json"),  # (all unchanged now)
        (run, "out/sub", "--force", "--output", "{d}", "--inputs"),  # no such file: 6
        (run, "--outputs", "out/model.bin", "-o", "{d}", "--remote", "nowhere"),
        ("-C", "sub", "get", run[-8:], "-o", "../{d}/c"),
        ("nope",),
        (run, "-o", "{d}", "no/such"),
        (run[:3],),
    ):
        if args[0] != "-C":
            args = ("get", *args)
        quick, modules, slow = _both(repo, *args)
        assert quick == slow, args
        assert "click" not in modules and "pygit2" not in modules, args
    for rel, data in files.items():
        assert (repo / "A" / rel).read_bytes() == data == (repo / "B" / rel).read_bytes()
        if rel.startswith("out/"):
            assert (repo / "A/c" / rel).read_bytes() == data
    (repo / "A/out/small.txt").write_bytes(b"edited")
    (repo / "B/out/small.txt").write_bytes(b"edited")
    quick, modules, slow = _both(repo, "get", run, "-o", "{d}")
    assert quick == slow and quick[0] == 5 and "click" not in modules
    # Click's own: help, a spelling the quick parser leaves to it, an -o that is a file
    # (from -C DIR: the quick path went there, and came back before click went again).
    (repo / "sub/afile").write_text("x")
    for args in (
        ("get", "--help"),
        ("get", run, "-o{d}"),
        ("get", run, "--inputs", "--outputs", "-o", "{d}/x"),
        ("get", run, "-o", "afile"),
        ("-C", "sub", "get", run, "-o", "afile"),
    ):
        quick, modules, slow = _both(repo, *args)
        assert quick == slow and "click" in modules, args


def test_get_without_click_steps_aside_for_a_first_index_on_a_terminal(
    kept: tuple[Path, str, dict[str, bytes]],
) -> None:
    """Building the query index shows progress on a terminal, which only the click command
    draws: with no index and stderr a terminal, the quick path leaves the get to click
    (having written nothing); with an index, it does the get itself."""
    import pty
    import subprocess
    import sys

    repo, run, files = kept

    def on_terminal(*args: str) -> tuple[int, set[str]]:
        leader, follower = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "git_prov", "get", run, *args],
                cwd=repo,
                env={**os.environ, **IMPORTS},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=follower,
                check=False,
            )
            os.close(follower)
            said = b""
            with contextlib.suppress(OSError):  # (EIO once everything was read)
                while chunk := os.read(leader, 1 << 16):
                    said += chunk
        finally:
            os.close(leader)
        return done.returncode, _modules(said.decode(errors="replace").replace("\r", ""))

    index = repo / ".git/prov/index.sqlite"
    index.unlink(missing_ok=True)
    code, modules = on_terminal("-o", "A")
    assert code == 0 and "click" in modules and index.exists()
    assert (repo / "A/out/model.bin").read_bytes() == files["out/model.bin"]
    code, modules = on_terminal("-o", "B")
    assert code == 0 and "click" not in modules
    assert (repo / "B/out/model.bin").read_bytes() == files["out/model.bin"]


def _diff_trees(trace: Path) -> list[str]:
    """The ``git diff-tree`` commands GIT_TRACE logged (and forget them)."""
    lines = trace.read_text().splitlines() if trace.exists() else []
    trace.unlink(missing_ok=True)
    return [ln for ln in lines if "built-in: git diff-tree" in ln]


def _found_after_rebuild(repo: Path) -> tuple[str, str]:
    """``find --json`` through the index as it is, then through one rebuilt from scratch."""
    now = prov(repo, "find", "--json").stdout
    for end in ("", "-wal", "-shm"):
        Path(f"{repo}/.git/prov/index.sqlite{end}").unlink(missing_ok=True)
    return now, prov(repo, "find", "--json").stdout


def test_the_first_get_after_a_record_finds_the_notes_difference_asked_early(
    kept: tuple[Path, str, dict[str, bytes]], tmp_path: Path
) -> None:
    """After a record, the quick get asks git for the difference the new notes commit made
    while it imports (kept_get._diff_ahead): the index's catch-up uses it, and asks git
    itself when it is not the difference it needs (two records since); either way the
    index ends as a rebuilt one, and an up-to-date index starts no such git."""
    repo, run, files = kept
    trace = tmp_path / "trace"
    env = {"GIT_TRACE": str(trace)}
    prov(repo, "find", "--json")  # (the index up to date)
    prov(repo, "record", "-c", "one more")
    done = prov(repo, "get", run, "out/model.bin", "-o", "A", env=env)
    (early,) = _diff_trees(trace)  # (one git diff-tree: the early one, used)
    assert "--format=%P" in early, early
    assert (repo / "A/out/model.bin").read_bytes() == files["out/model.bin"], done.stderr
    now, rebuilt = _found_after_rebuild(repo)
    assert now == rebuilt and "one more" in now
    prov(repo, "get", run, "-o", "B", env=env)  # up to date: no diff-tree at all
    assert _diff_trees(trace) == []
    # Two records since: the early difference is the newest commit's, not the index's
    # catch-up; it asks git for that one.
    prov(repo, "record", "-c", "two")
    prov(repo, "record", "-c", "three")
    done = prov(repo, "get", run, "-o", "C", "--json", env=env)
    asked = _diff_trees(trace)
    assert sorted("--format=%P" in ln for ln in asked) == [False, True], asked
    assert {f["action"] for f in json.loads(done.stdout)["files"]} == {"written"}
    for rel, data in files.items():
        assert (repo / "C" / rel).read_bytes() == data
    now, rebuilt = _found_after_rebuild(repo)
    assert now == rebuilt and "three" in now and "two" in now

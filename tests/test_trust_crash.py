"""Crash safety: ``record``, ``run``, ``gc``, ``sync`` and ``remap`` killed with SIGKILL at
random moments leave a ledger that ``git prov fsck`` passes, every listed run complete, and
a repository where the next write works (stale ref locks are recovered)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import commit_file, git, prov

from git_prov.fsck import fsck
from git_prov.store.ledger import KEEP_DIR, KIND_DATA, KIND_ENV, OBJECTS_REF, Ledger, object_path
from git_prov.store.repo import open_repo
from git_prov.store.trees import lookup_path

PY = sys.executable
ITERATIONS = 32
OPERATIONS = {
    "record": ["record", "-i", "data.csv", "--metric", "acc=0.5", "-c", "python train.py"],
    "run": ["run", "-i", "data.csv", "--", PY, "-c", "print('x' * 5000)"],
    "gc": ["gc", "--keep-last", "3", "--force"],
    "gc-logs": ["gc", "--logs-only", "--keep-last", "1", "--force"],
    "sync": ["sync"],
    "remap": ["remap"],
}


def _assert_complete(path: Path, context: str, *, cli: bool = True) -> int:
    """fsck passes and every live run names objects that exist and are kept. ``cli``:
    through ``git prov fsck`` (else its library call, without a process start: the random
    kills check after each of many operations)."""
    if cli:
        proc = prov(path, "fsck", "--json", check=False)
        assert proc.returncode == 0, f"{context}: fsck failed:\n{proc.stdout}\n{proc.stderr}"
        errors = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] == "error"]
    else:
        errors = [f.text() for f in fsck(open_repo(path)).errors]
    assert errors == [], context
    ledger = Ledger(open_repo(path))
    tip = ledger.tip(OBJECTS_REF)
    runs = ledger.scan().live_runs()
    for run in runs:
        r = run.record
        assert tip is not None, context
        assert r.env is not None, f"{context}: run {r.id} has no environment"
        for kind, oid in ((KIND_DATA, r.inputs), (KIND_DATA, r.outputs), (KIND_ENV, r.env)):
            if oid is None:
                continue
            assert oid in ledger.pygit, f"{context}: run {r.id}: {kind} {oid} missing"
            assert lookup_path(ledger.pygit, tip.tree, object_path(kind, oid)) is not None
        assert lookup_path(ledger.pygit, tip.tree, object_path(KEEP_DIR, r.commit)) is not None
    return len(runs)


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    seed = int(os.environ.get("GIT_PROV_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", str(work))
    commit_file(work, "train.py", "print('train')\n")
    (work / "data.csv").write_text("x,y\n1,2\n")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    prov(work, "record", "-i", "data.csv", "-c", "seed run")
    started = time.monotonic()
    prov(work, "--version")
    startup = time.monotonic() - started  # kills before this mostly hit the interpreter
    killed = 0
    for i in range(ITERATIONS):
        name = rng.choice(sorted(OPERATIONS))
        delay = rng.uniform(0, 0.3) + rng.choice([0.0, startup])
        proc = subprocess.Popen(
            [PY, "-m", "git_prov", *OPERATIONS[name]],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        context = f"seed {seed}, iteration {i}: {name} killed after {delay:.3f}s"
        _assert_complete(work, context, cli=False)
    assert killed >= ITERATIONS // 4, f"seed {seed}: only {killed} processes were killed"
    # Whatever the kills left behind (ref locks included), the next writes work.
    prov(work, "record", "-i", "data.csv", "-c", "after the storm")
    prov(work, "sync")
    assert _assert_complete(work, f"seed {seed}: after recovery") >= 1
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    prov(clone, "sync")
    _assert_complete(clone, f"seed {seed}: a fresh clone of the remote")


# ---- deterministic: a kill at every ref update -------------------------------------------

# Runs git prov with Ledger._cas wrapped: at the N-th ref update the process SIGKILLs itself
# before it, after it, or "inside" it (leaving the <ref>.lock a killed libgit2 leaves).
_CRASHING = """
import os, signal, sys, time
from git_prov.store import ledger

target, phase = int(sys.argv[1]), sys.argv[2]
original = ledger.Ledger._cas
calls = [0]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def cas(self, ref, build, message):
    calls[0] += 1
    if calls[0] == target and phase == "before":
        die()
    if calls[0] == target and phase == "inside":
        lock = self.repo.common_dir / (ref + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("")
        past = time.time() - 30  # as if the crash happened a while ago
        os.utime(lock, (past, past))
        die()
    original(self, ref, build, message)
    if calls[0] == target and phase == "after":
        die()

ledger.Ledger._cas = cas
from git_prov.cli import main
main(sys.argv[3:])
"""


def _crash(path: Path, n: int, phase: str, *args: str) -> int:
    proc = subprocess.run(
        [PY, "-c", _CRASHING, str(n), phase, *args], cwd=path, capture_output=True, text=True
    )
    return proc.returncode


@pytest.mark.parametrize(
    ("update", "phase"),
    [(1, "before"), (1, "inside"), (2, "inside"), (2, "after"), (3, "inside")],
)
def test_record_killed_at_each_ref_update(repo: Path, update: int, phase: str) -> None:
    prov(repo, "init", "--no-hooks")  # three ref updates: objects, notes, git log display
    (repo / "data.csv").write_text("1\n")
    code = _crash(repo, update, phase, "record", "-i", "data.csv", "-c", "crashing")
    assert code == -signal.SIGKILL
    runs = _assert_complete(repo, f"record killed {phase} ref update {update}")
    present = update == 3 or (update == 2 and phase == "after")
    assert runs == (1 if present else 0)  # the whole run, or none of it
    prov(repo, "record", "-i", "data.csv", "-c", "next")  # recovers a stale lock, if any
    assert _assert_complete(repo, "after the next record") == runs + 1
    assert not list((repo / ".git" / "refs").rglob("*.lock"))


@pytest.mark.parametrize(("update", "phase"), [(1, "after"), (2, "inside")])
def test_gc_killed_at_each_ref_update(repo: Path, update: int, phase: str) -> None:
    (repo / "data.csv").write_text("1\n")
    prov(repo, "run", "-i", "data.csv", "--", PY, "-c", "print('old')")
    prov(repo, "run", "-i", "data.csv", "--", PY, "-c", "print('new')")
    code = _crash(repo, update, phase, "gc", "--keep-last", "1", "--force")
    assert code == -signal.SIGKILL
    # Killed between dropping the log and writing the tombstone: both runs still listed,
    # the old one without its log — consistent; the next gc finishes the job.
    assert _assert_complete(repo, f"gc killed {phase} ref update {update}") == 2
    prov(repo, "gc", "--keep-last", "1", "--force")
    assert _assert_complete(repo, "after the next gc") == 1


@pytest.mark.parametrize(("update", "phase"), [(1, "after"), (2, "inside")])
def test_sync_killed_while_merging(tmp_path: Path, update: int, phase: str) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", str(a))
    commit_file(a, "train.py", "print(1)\n")
    (a / "data.csv").write_text("1\n")
    git(a, "remote", "add", "origin", str(bare))
    git(a, "push", "-q", "origin", "main")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    (b / "data.csv").write_text("2\n")
    prov(b, "record", "-i", "data.csv", "-c", "from b")
    prov(b, "sync")
    prov(a, "record", "-i", "data.csv", "-c", "from a")
    assert _crash(a, update, phase, "sync") == -signal.SIGKILL  # two ledgers to merge
    _assert_complete(a, f"sync killed {phase} ref update {update}")
    prov(a, "record", "-i", "data.csv", "-c", "next")  # recovers a stale lock, if any
    prov(a, "sync")
    assert _assert_complete(a, "after the next sync") == 3


def test_sync_recovers_a_stale_ref_lock_by_itself(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", str(a))
    commit_file(a, "train.py", "print(1)\n")
    git(a, "remote", "add", "origin", str(bare))
    git(a, "push", "-q", "origin", "main")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    prov(b, "record", "-c", "from b")
    prov(b, "sync")
    prov(a, "record", "-c", "from a")
    lock = a / ".git" / "refs" / "notes" / "prov.lock"
    lock.write_text("")
    past = time.time() - 30
    os.utime(lock, (past, past))
    prov(a, "sync")
    assert not lock.exists()
    assert _assert_complete(a, "after sync") == 2

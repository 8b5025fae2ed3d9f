"""A query that finds another process building the index (holding index.sqlite.lock, taken
through the same locking function by a real second process) says that it waits and for
whom, waits while that builder may finish, and answers from an index in memory — the right
runs, nothing written to the index file — when the builder is stopped or the wait reaches
GIT_PROV_INDEX_WAIT (docs/cli.md, "Local files")."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import prov
from factories import write_runs

_HOLD = """
import sys
from pathlib import Path
from git_prov.store.locking import ledger_lock
with ledger_lock(Path(sys.argv[1]), wait=0) as taken:
    print("held" if taken else "not taken", flush=True)
    sys.stdin.read()  # (held until the test closes this process's stdin)
"""


@pytest.fixture
def ledger(repo: Path) -> tuple[Path, set[str]]:
    return repo, {r.id for r in write_runs(repo, 3)}


def _holder(repo: Path) -> subprocess.Popen[str]:
    """A process holding the index builders' lock of ``repo`` until its stdin is closed."""
    lock = repo / ".git" / "prov" / "index.sqlite.lock"
    lock.parent.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


@pytest.fixture
def held(ledger: tuple[Path, set[str]]) -> Iterator[subprocess.Popen[str]]:
    proc = _holder(ledger[0])
    yield proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.communicate()


def _found(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The ids ``git prov find --json`` lists, and what it said on stderr. (A query that
    waited for ever, as one did before the bound, fails here after 120 s, not hangs.)"""
    done = subprocess.run(
        [sys.executable, "-m", "git_prov", "find", "--json", *args],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {run["id"] for run in json.loads(done.stdout)}, done.stderr


def test_a_stopped_builder_is_not_waited_for(
    ledger: tuple[Path, set[str]], held: subprocess.Popen[str]
) -> None:
    repo, ids = ledger
    os.kill(held.pid, signal.SIGSTOP)
    found, said = _found(repo)
    assert found == ids
    assert f"note: waiting for process {held.pid} building the query index" in said
    assert f"process {held.pid} holding index.sqlite.lock is stopped" in said
    assert not (repo / ".git" / "prov" / "index.sqlite").exists()  # (the builder's to make)
    logged = json.loads(prov(repo, "log", "--json").stdout)  # (log: the same path)
    assert {run["id"] for commit in logged for run in commit["runs"]} == ids


def test_a_builder_that_never_finishes_is_waited_for_up_to_the_bound(
    ledger: tuple[Path, set[str]], held: subprocess.Popen[str]
) -> None:
    repo, ids = ledger
    found, said = _found(repo, env={"GIT_PROV_INDEX_WAIT": "2"})
    assert found == ids
    assert f"note: waiting for process {held.pid} building the query index" in said
    assert "waited 2 s for index.sqlite.lock (GIT_PROV_INDEX_WAIT)" in said
    assert not (repo / ".git" / "prov" / "index.sqlite").exists()


def test_a_builder_that_finishes_is_waited_for(ledger: tuple[Path, set[str]]) -> None:
    """The lock released once the query said it waits: the query then builds the index
    file as a first query does (no bound reached, nothing in memory)."""
    repo, ids = ledger
    holder = _holder(repo)
    query = subprocess.Popen(
        [sys.executable, "-m", "git_prov", "find", "--json"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert query.stderr is not None
        said = ""
        if select.select([query.stderr], [], [], 120)[0]:  # (no note: fails, not hangs)
            said = query.stderr.readline()
        assert said.startswith(f"note: waiting for process {holder.pid} building")
    finally:
        holder.communicate()  # (stdin closed: the lock released)
        out, rest = query.communicate(timeout=120)
    assert query.returncode == 0, rest
    assert {run["id"] for run in json.loads(out)} == ids and rest == ""
    assert (repo / ".git" / "prov" / "index.sqlite").exists()
    assert _found(repo) == (ids, "")  # (no wait, nothing said)

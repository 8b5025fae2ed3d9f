"""Sharing under load and against odd servers, over real transports (smart HTTP through
``git http-backend``, bare repositories by path): many writers syncing after every record,
servers that hide the ledger refs from fetch, and what sync says about rewritten ledgers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from lfs_server import LfsServer

from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo

TESTS = Path(__file__).resolve().parent

# One writer: record a run, then `git prov sync`, ROUNDS times; prints each sync's exit
# status, attempts and stderr as JSON lines.
WRITER = """
import json, subprocess, sys
from pathlib import Path
from factories import write_runs
for _ in range(int(sys.argv[1])):
    ran = write_runs(Path.cwd(), 1)[0].id
    done = subprocess.run([sys.executable, "-m", "git_prov", "sync", "--json"],
                          capture_output=True, text=True)
    attempts = json.loads(done.stdout)["attempts"] if done.returncode == 0 else None
    print(json.dumps({"run": ran, "code": done.returncode, "attempts": attempts,
                      "stderr": done.stderr}), flush=True)
"""


def _seeded(server: LfsServer, tmp_path: Path, name: str = "org/repo") -> tuple[str, Path]:
    """A repository on ``server`` holding one commit on main: (its URL, its directory)."""
    url = server.create_repo(name)
    bare = server.root / "git" / f"{name}.git"
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_file(seed, "README.md", "# project\n", "initial commit")
    git(seed, "push", "-q", url, "main")
    return url, bare


def _clone(url: str | Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(url), str(dest))
    return dest


def _run_ids(path: Path) -> set[str]:
    return set(Ledger(open_repo(path)).scan().runs)


# ---- contention ------------------------------------------------------------------------------


@pytest.mark.slow
def test_eight_writers_syncing_after_every_record_over_http_all_succeed(
    http_server: LfsServer, tmp_path: Path
) -> None:
    """Eight CI jobs, each syncing after each of its records against one smart-HTTP
    remote: every sync exits 0 (rejections by the others' pushes — "fetch first", a
    server-side "cannot lock ref", git's bare "atomic push failed … status: 5" — are
    retried), and every run arrives."""
    url, bare = _seeded(http_server, tmp_path)
    clones = [_clone(url, tmp_path / f"c{i}") for i in range(8)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "2"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone in clones
    ]
    syncs = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        syncs.extend(json.loads(line) for line in out.splitlines())
    assert len(syncs) == 16
    failed = [s["stderr"] for s in syncs if s["code"] != 0]
    assert not failed, failed
    assert max(s["attempts"] for s in syncs) > 1  # there was contention to survive
    # Each sync pushed its own run: the remote holds all of them, and so does a new clone.
    late = _clone(url, tmp_path / "late")
    prov(late, "fetch")
    assert _run_ids(late) == {s["run"] for s in syncs}
    assert git(bare, "rev-parse", NOTES_REF) == git(late, "rev-parse", NOTES_REF)
    assert git(bare, "rev-parse", OBJECTS_REF)

"""``git prov gc`` and the live directories of runs being recorded (git_prov/live.py): those
of a killed recorder are removed (listed with --dry-run), those of a running recorder are
kept, and those of another host sharing the .git are left and named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import prov

from git_prov.live import live_root, start_live
from git_prov.store.repo import open_repo

TRAIN = """\
import sys, time
import git_prov
for step in range(3):
    git_prov.log_metric("loss", 1.0 / (step + 1), step=step)
print("logged", flush=True)
time.sleep(120)
"""


def _wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_gc_removes_the_live_directory_of_a_killed_recorder_and_keeps_the_others(
    repo: Path,
) -> None:
    (repo / "train.py").write_text(TRAIN)
    root = live_root(open_repo(repo).prov_dir)
    recorder = subprocess.Popen(
        [sys.executable, "-m", "git_prov", "run", "--", sys.executable, "train.py"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert recorder.stdout is not None
        assert recorder.stdout.readline().strip() == b"logged"
        [killed] = list(root.iterdir())
        _wait_for(lambda: any(killed.glob("points-*.bin")), "the points to be flushed")
        # Kill the recorder alone (SIGKILL: nothing of it runs again), then its command.
        os.kill(recorder.pid, signal.SIGKILL)
        recorder.wait()
        for points in killed.glob("points-*.bin"):
            os.kill(int(points.stem.split("-")[1]), signal.SIGKILL)
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGKILL)
            recorder.wait()
        assert recorder.stdout is not None
        recorder.stdout.close()
    run_id = killed.name
    shown = prov(repo, "metrics", run_id[-8:]).stdout
    assert "not recorded: the process recording it is gone" in shown
    [doc] = json.loads(prov(repo, "metrics", run_id[-8:], "--json").stdout)
    assert doc["live"] and doc["gone"]  # docs/cli.md: per run id, command, live, gone

    # A running recorder (this test's process) and one on another host sharing the .git.
    prov_dir = open_repo(repo).prov_dir
    running = start_live(prov_dir, "20261203T060000.000Z-0000a11e", "python going.py", "")
    elsewhere = start_live(prov_dir, "20261203T060000.000Z-00000e15", "python far.py", "")
    assert running is not None and elsewhere is not None
    info = json.loads((elsewhere / "run.json").read_text())
    (elsewhere / "run.json").write_text(json.dumps({**info, "host": "gpu-node-7", "pid": 1}))

    refused = prov(repo, "gc", check=False)
    assert refused.returncode == 2 and "gc would remove 1 live directory" in refused.stderr
    dry = prov(repo, "gc", "--dry-run")
    assert f"would remove live directory of {run_id[-8:]}" in dry.stdout
    assert f"(no process {recorder.pid})" in dry.stdout
    assert "left live directory of 00000e15: recorded on host gpu-node-7" in dry.stdout
    assert "0000a11e" not in dry.stdout + dry.stderr
    assert "would remove 1 live directory of killed recorders; left 1" in dry.stderr
    assert killed.is_dir()  # a dry run changes nothing

    doc = json.loads(prov(repo, "gc", "--force", "--json").stdout)
    assert doc["live_removed"] == [{"id": run_id, "why": f"no process {recorder.pid}"}]
    assert doc["live_left"] == [{"id": info["id"], "why": "recorded on host gpu-node-7"}]
    assert not killed.exists() and running.is_dir() and elsewhere.is_dir()
    assert sorted(p.name for p in root.iterdir()) == sorted([running.name, elsewhere.name])

    # Nothing provable left: gc without rules says what it leaves, and what to give.
    again = prov(repo, "gc", "--force", check=False)
    assert again.returncode == 2 and "say which runs to remove" in again.stderr
    assert "left live directory of 00000e15" in again.stderr


def test_a_reused_pid_is_not_the_recorder(repo: Path) -> None:
    """The pid of a live directory now belongs to another process (it started at another
    time): the recorder is gone."""
    prov_dir = open_repo(repo).prov_dir
    directory = start_live(prov_dir, "20261203T060000.000Z-0000beef", "python old.py", "")
    assert directory is not None
    info = json.loads((directory / "run.json").read_text())
    if not info["pid_start"]:
        pytest.skip("no /proc here: the start time is not recorded, the pid alone decides")
    (directory / "run.json").write_text(json.dumps({**info, "pid_start": "1"}))
    dry = prov(repo, "gc", "--dry-run")
    assert f"process {os.getpid()} is another process (the pid was reused)" in dry.stdout

"""Ordinary faults say what happened (issue 16.5): a read-only `.git`, a full disk and a
disk that fills while a run logs each give one `error: what — what to do` line and exit
11, never "internal error". `run` refuses before starting the command when the repository
cannot take a record; a disk that fills while the command runs costs the log, not the run.

These need root (a read-only bind mount, a small tmpfs); they are skipped otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import commit_file, git, prov


def _mount(*args: str) -> bool:
    proc = subprocess.run(["mount", *args], capture_output=True, check=False)
    return proc.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _one_error_line(stderr: str) -> None:
    assert stderr.startswith("error: ") and " — " in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "internal error" not in stderr


@pytest.fixture
def read_only_git(repo: Path) -> Iterator[Path]:
    """``repo`` with one run recorded, then its .git bind-mounted read-only."""
    prov(repo, "run", "--", "true")
    git_dir = repo / ".git"
    if os.geteuid() != 0 or not _mount("--bind", str(git_dir), str(git_dir)):
        pytest.skip("needs root and bind mounts (chmod does not stop root)")
    try:
        if not _mount("-o", "remount,ro,bind", str(git_dir)):
            pytest.skip("cannot remount read-only here")
        yield repo
    finally:
        _umount(git_dir)


def test_read_only_git_refuses_run_before_the_command(read_only_git: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proc = prov(read_only_git, "run", "--", "touch", str(marker), check=False)
    assert proc.returncode == 11, proc.stderr
    _one_error_line(proc.stderr)
    assert "read-only" in proc.stderr
    assert not marker.exists()  # refused before running
    proc = prov(read_only_git, "record", "--metric", "a=1", "--", "echo", check=False)
    assert proc.returncode == 11
    _one_error_line(proc.stderr)
    # Reading works as it is.
    assert prov(read_only_git, "log", "--oneline").stdout.strip()
    assert prov(read_only_git, "find", "--json").stdout.strip() != "[]"


def test_immutable_objects_directory_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    objects = repo / ".git" / "objects"
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["chattr", "+i", str(objects)], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("needs root and a file system with chattr +i")
    try:
        marker = tmp_path / "ran"
        proc = prov(repo, "run", "--", "touch", str(marker), check=False)
        assert proc.returncode == 11, proc.stderr
        _one_error_line(proc.stderr)
        assert not marker.exists()
    finally:
        subprocess.run(["chattr", "-i", str(objects)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A repository (one commit, one run) on a 4 MiB tmpfs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        repo = mount / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        commit_file(repo, "README.md", "# experiment\n")
        prov(repo, "run", "--", "true")
        yield repo
    finally:
        _umount(mount)


def _fill(disk: Path, leave_kib: int) -> Path:
    """Fill the file system of ``disk`` up to ``leave_kib`` KiB of free space."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk.parent / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))
    return filler


def test_full_disk_refuses_run_before_the_command(small_disk: Path, tmp_path: Path) -> None:
    _fill(small_disk, 0)
    marker = tmp_path / "ran"
    proc = prov(small_disk, "run", "--", "touch", str(marker), check=False)
    assert proc.returncode == 11, proc.stderr
    _one_error_line(proc.stderr)
    assert "no space left" in proc.stderr
    assert not marker.exists()


def test_disk_filling_while_a_run_logs_keeps_the_run_without_its_log(small_disk: Path) -> None:
    _fill(small_disk, 200)
    noise = "import os, sys; sys.stdout.write(os.urandom(450000).hex())"  # 900 kB, random
    proc = prov(small_disk, "run", "--", sys.executable, "-c", noise, check=False)
    assert proc.returncode == 0, proc.stderr  # the command's own status
    assert "stdout log not kept" in proc.stderr and "no space left" in proc.stderr
    assert len(proc.stdout) == 900000  # the command's output was not affected
    runs = prov(small_disk, "log", "--oneline").stdout.strip().splitlines()
    assert len(runs) == 2  # recorded


def test_disk_filled_by_the_command_says_it_ran_but_was_not_recorded(small_disk: Path) -> None:
    _fill(small_disk, 400)
    fill = f"head -c 8M /dev/zero > {small_disk.parent / 'big'} 2>/dev/null; true"
    proc = prov(small_disk, "run", "--", "sh", "-c", fill, check=False)
    assert proc.returncode == 11, proc.stderr
    _one_error_line(proc.stderr)
    assert "the command ran (ok, exit status 0) but it could not be recorded" in proc.stderr

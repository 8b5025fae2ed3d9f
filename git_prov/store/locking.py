"""Serialising local writers: one advisory lock per repository around ref updates.

The lock only makes concurrent local writers queue instead of racing; correctness never
depends on it, because every ref update is also compare-and-swap with retries (writers
that do not take our lock — plain ``git notes``, a fetch — are handled by the CAS).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_WAIT_SECONDS = 120.0


@contextlib.contextmanager
def ledger_lock(
    path: Path,
    wait: float = LOCK_WAIT_SECONDS,
    *,
    shared: bool = False,
    waiting: Callable[[float], bool] | None = None,
) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` while the block runs; yields whether it was taken.
    With ``shared``, a shared lock: any number of holders at once, none beside an
    exclusive one. ``waiting``, while another process holds the lock, is told how many
    seconds it has been waited for (every few tens of milliseconds); when it answers
    False the wait ends as when ``wait`` runs out.

    If the file system cannot lock, or the wait runs out, the block runs anyway (unlocked):
    compare-and-swap keeps the result correct, only with more retries.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    taken = False
    try:
        start = time.monotonic()
        deadline = start + wait
        delay = 0.001
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                taken = True
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    break
                if waiting is not None and not waiting(now - start):
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError:
                break
        yield taken
    finally:
        if taken:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_holder(path: Path) -> int | None:
    """The id of the process holding a ``flock`` on the file at ``path``, when the system
    says (Linux's /proc/locks; the process that took the lock); None when unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            listing = locks.read()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in listing.splitlines():
        fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def process_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP, Ctrl-Z, a debugger), when the system
    says (Linux's /proc/<pid>/stat); False when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return False
    state = text[text.rfind(b")") + 2 :][:1]  # (after the command name, which may hold ")")
    return state in (b"T", b"t")

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
from collections.abc import Iterator
from pathlib import Path

LOCK_WAIT_SECONDS = 120.0


@contextlib.contextmanager
def ledger_lock(
    path: Path, wait: float = LOCK_WAIT_SECONDS, *, shared: bool = False
) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` while the block runs; yields whether it was taken.
    With ``shared``, a shared lock: any number of holders at once, none beside an
    exclusive one.

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
        deadline = time.monotonic() + wait
        delay = 0.001
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                taken = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
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

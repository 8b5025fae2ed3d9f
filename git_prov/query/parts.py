"""Building the query index on several cores.

A full build parses every line of every note, about 15 µs of Python each. On a machine
with several cores, :func:`part_count` cuts the notes into contiguous parts (in commit id
order). Forked helpers parse all the parts but the first into SQLite files of their own,
while this process parses the first; the index then copies each file in with one
``INSERT … SELECT``. The rows end up exactly as a single process would have made them.

Forking is used only on Linux, and only when this process runs a single thread: there a
fork is cheap and safe, and the helpers start with everything already imported. Anywhere
else, or when a helper fails for any reason, the part is parsed in this process instead.
``GIT_PROV_INDEX_JOBS=N`` sets the number of parts (``1``: never fork), whatever the size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

JOBS_ENV = "GIT_PROV_INDEX_JOBS"
MIN_NOTES_PER_PART = 256  # below this, a fork costs about what it saves
MAX_PARTS = 8

T = TypeVar("T")


def can_fork() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1


def part_count(notes: int) -> int:
    """How many parts to cut ``notes`` notes into (1: parse them all in this process)."""
    if not can_fork() or notes < 2:
        return 1
    forced = os.environ.get(JOBS_ENV, "").strip()
    if forced.isdigit() and int(forced) > 0:
        return min(int(forced), notes)
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, MAX_PARTS, notes // MIN_NOTES_PER_PART))


def first_share(parts: int) -> float:
    """The share of the notes this process parses itself when they are cut into ``parts``:
    an equal share. What follows the parsing — copying the helpers' rows in, the secondary
    indexes, the commit — can start only once every helper has finished, so the build
    takes as long as its slowest part plus that tail: least when the parts are equal (a
    smaller own part, 28% of two, left this process idle while the helper parsed 72%).
    """
    return 1.0 / max(1, parts)


def split(items: Sequence[T], parts: int, first: float | None = None) -> list[Sequence[T]]:
    """``items`` cut into ``parts`` contiguous pieces, in order: the first ``first`` of them
    (a fraction) in the first piece when given, and the rest in pieces of nearly equal
    length."""
    if first is not None and parts > 1:
        cut = round(len(items) * first)
        return [items[:cut], *split(items[cut:], parts - 1)]
    size, extra = divmod(len(items), parts)
    pieces: list[Sequence[T]] = []
    start = 0
    for number in range(parts):
        end = start + size + (1 if number < extra else 0)
        pieces.append(items[start:end])
        start = end
    return pieces


class Helpers:
    """Forked helpers, each running ``work(part, path)`` for one part: ``path`` is a file
    of its own in a private temporary directory. Use as a context manager: on the way out
    every helper still running is killed. :meth:`remove` deletes the directory."""

    def __init__(self, work: Callable[[Sequence[Any], str], None], parts: Sequence[Sequence[Any]]):
        self.directory = tempfile.mkdtemp(prefix="git-prov-index-")
        self.running: list[tuple[int, str, Sequence[Any]]] = []
        parent = os.getpid()
        for number, part in enumerate(parts):
            path = os.path.join(self.directory, f"part{number}.sqlite")
            try:
                pid = os.fork()
            except OSError:  # no more processes: this one parses the part
                self.running.append((-1, path, part))
                continue
            if pid == 0:  # the helper: never return into the caller's code
                code = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    work(part, path)
                    code = 0
                finally:
                    if os.getppid() != parent:  # the build was killed: nobody will read it
                        shutil.rmtree(self.directory, ignore_errors=True)
                    os._exit(code)
            self.running.append((pid, path, part))

    def results(self) -> Iterator[tuple[Sequence[Any], str | None]]:
        """Each helper's result once it has finished, in order: (part, its file, or None
        when the helper failed and the part is still to be parsed)."""
        while self.running:
            pid, path, part = self.running[0]
            ok = False
            if pid >= 0:
                _, status = os.waitpid(pid, 0)
                ok = os.waitstatus_to_exitcode(status) == 0 and os.path.exists(path)
            self.running.pop(0)
            yield part, path if ok else None

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc: object) -> None:
        for pid, _, _ in self.running:
            if pid < 0:
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        self.running.clear()

    def remove(self) -> None:
        """Delete the helpers' files (once nothing reads them any more)."""
        shutil.rmtree(self.directory, ignore_errors=True)

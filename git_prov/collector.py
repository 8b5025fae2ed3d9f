"""Python's cycle collector paused over work that makes objects by the hundred thousand and
no cycles: capturing a record, a query over many runs, a command's start-up."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the block (or the decorated function), as it was
    afterwards (left off when the caller, or a user's program, had paused it).

    The collector, woken every 700 new objects, walks the young ones each time and the
    whole heap now and then: a query over 100k runs holds millions of objects at once
    (rows, records), a fifth of the time of ``find --json``; a first record of 20k files
    makes the walk's stat data, the hashing jobs and digests, the entries, the stat cache's
    rows, ~9% of its time. They are plain tuples, strings and frozen entries, in no cycle,
    freed by refcounting; what cycles the work may still make (a caught exception's
    traceback) are collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Whether pause_start_up turned the collector off (start_up_done turns it back on).
_START_UP_PAUSED = [False]


def pause_start_up() -> None:
    """The collector off while the ``git-prov`` executable starts (:mod:`git_prov.entry`):
    importing pygit2, click and the command's modules makes ~100k objects that live until
    the process ends (modules, classes, functions), and the collector walked them again
    and again as they came: ~3% of a ``record``'s or ``log``'s instructions (issue 18).
    :func:`start_up_done` turns it back on once the command's own work starts."""
    if gc.isenabled():
        gc.disable()
        _START_UP_PAUSED[0] = True


def start_up_done() -> None:
    """End :func:`pause_start_up`'s pause (no-op when it made none): what start-up made
    is moved out of the collector's sight for good (``gc.freeze``: it lives as long as the
    process, so no later collection need walk it), and the collector is on again."""
    if _START_UP_PAUSED[0]:
        _START_UP_PAUSED[0] = False
        gc.freeze()
        gc.enable()


def left_to_exit() -> None:
    """Everything the command made, left to the process's end (``gc.freeze``): the
    interpreter's last collection as it exits need not walk it (~3% of a ``record``). What
    is in a reference cycle by then is not finalized at exit, which Python never promised
    (its data model: ``__del__`` is not guaranteed for objects alive at exit); files and
    the query index are closed by their ``with`` blocks, not by the collector."""
    gc.freeze()

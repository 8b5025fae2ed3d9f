"""Python's cycle collector paused over work that makes objects by the hundred thousand and
no cycles: capturing a record, a query over many runs."""

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

"""Writing loose objects while a ``git prune`` (``git gc --prune=now``) runs beside us.

libgit2 writes a loose object to a temporary file in ``objects/``, makes the fan-out
directory ``objects/<xx>/`` and renames the file into it. ``git prune`` removes every
fan-out directory it finds empty; when that falls between the two steps, the rename fails
(``OSError: failed to rename lockfile to '…/objects/xx/…': No such file or directory``)
and the object is not written. Nothing is damaged: writing it again makes the directory
again, and the same bytes give the same id. :func:`write_object` does that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Each attempt loses only if a prune empties and removes the directory inside the
# microseconds between libgit2's mkdir and its rename: a few always suffice.
WRITE_ATTEMPTS = 8


def lost_fanout(exc: BaseException) -> bool:
    """Whether ``exc`` is libgit2 failing to rename a new loose object into a fan-out
    directory that a concurrent prune removed."""
    said = str(exc)
    return (
        isinstance(exc, OSError)
        and "failed to rename lockfile" in said
        and "/objects/" in said.replace("\\", "/")
        and "No such file or directory" in said
    )


def write_object(write: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``write(*args, **kwargs)`` (an object write through libgit2), again when a
    concurrent prune removed its fan-out directory under it (see the module docstring)."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write(*args, **kwargs)
        except OSError as exc:
            if attempt == WRITE_ATTEMPTS or not lost_fanout(exc):
                raise
    raise AssertionError("unreachable")

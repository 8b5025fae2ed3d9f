"""Progress reporting for long work (hashing, syncing), decoupled from the terminal.

Library code reports through a :class:`Progress`; the CLI passes one that draws a bar on
stderr when it is a terminal, and library users get :data:`NO_PROGRESS` by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """Receives progress of one long task measured in units (bytes, objects, runs):
    ``unit`` "B" for bytes, else the plural name of what is counted."""

    def start(self, label: str, total: int, unit: str = "B") -> None: ...

    def advance(self, amount: int) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """A progress sink that ignores everything."""

    def start(self, label: str, total: int, unit: str = "B") -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS: Progress = NullProgress()


_ambient: Callable[[], Progress] | None = None


def set_ambient(factory: Callable[[], Progress] | None) -> None:
    """Choose what :func:`ambient` returns: the CLI sets its terminal bar, so that work deep
    in the library with no progress parameter of its own (building the query index on a
    first query) can still show that it is busy. Library users get silence by default."""
    global _ambient
    _ambient = factory


def ambient() -> Progress:
    """A progress sink from the factory :func:`set_ambient` chose (silent by default)."""
    return _ambient() if _ambient is not None else NO_PROGRESS

"""Progress reporting for long work (hashing, syncing), decoupled from the terminal.

Library code reports through a :class:`Progress`; the CLI passes one that draws a bar on
stderr when it is a terminal, and library users get :data:`NO_PROGRESS` by default.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of one long task measured in units (bytes, objects, runs)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """A progress sink that ignores everything."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS: Progress = NullProgress()

"""What the commands share for output: the progress bar, the pager, and the warnings of
ledger lines a query could not read."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from git_prov.terminal import echo

if TYPE_CHECKING:
    from git_prov.cli import State


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only after half a second of work."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.label = ""
        self.total = 0
        self.done = 0
        self.begun = 0.0
        self.drawn = 0.0
        self.unit = "B"

    def start(self, label: str, total: int, unit: str = "B") -> None:
        with self.lock:
            self.label, self.total, self.done, self.unit = label, total, 0, unit
            self.begun = time.monotonic()
            self.drawn = 0.0

    def advance(self, amount: int) -> None:
        with self.lock:
            self.done += amount
            now = time.monotonic()
            if now - self.begun < 0.5 or now - self.drawn < 0.1:
                return
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        import shutil  # (only once a bar is drawn: it loads the compression modules)

        from git_prov.render import human_size

        rate = self.done / max(now - self.begun, 1e-6)
        pct = 100 * self.done / self.total if self.total else 100.0
        width = shutil.get_terminal_size((80, 20)).columns
        if self.unit == "B":
            done, total, speed = (
                human_size(self.done),
                human_size(self.total),
                human_size(int(rate)),
            )
        else:
            done, total = f"{self.done:,}", f"{self.total:,} {self.unit}"
            speed = f"{rate:,.0f} {self.unit}"
        from git_prov.terminal import own

        line = f"git-prov: {self.label} {pct:5.1f}% {done} / {total}  {speed}/s"
        echo(own("\r") + line[: width - 1].ljust(min(width - 1, len(line))), err=True, nl=False)

    def finish(self) -> None:
        from git_prov.terminal import own

        with self.lock:
            if self.drawn:
                echo(own("\r") + own("\x1b[K"), err=True, nl=False)


def _page(state: State, text: str | Iterable[str]) -> None:
    """Show ``text`` (or its pieces, as they are made) through git's pager when stdout is a
    terminal, like git log does; the pager starts with the first piece. Pieces go through
    the one output path (:mod:`git_prov.terminal`): a piece that is not a ``View`` is
    one line."""
    from git_prov.terminal import View, for_terminal, one_line

    pieces = [text] if isinstance(text, str) else text
    pager = ""
    if not state.no_pager and sys.stdout.isatty():
        pager = subprocess.run(
            ["git", "var", "GIT_PAGER"], capture_output=True, text=True, check=False
        ).stdout.strip()
    if not pager or pager == "cat":
        for piece in pieces:
            echo(piece, nl=False)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        proc = subprocess.Popen(pager, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        for piece in pieces:
            echo(piece, nl=False)
        return
    assert proc.stdin is not None
    try:
        for piece in pieces:
            safe = piece if isinstance(piece, View) else one_line(piece)
            proc.stdin.write(for_terminal(safe).encode())
            proc.stdin.flush()
        proc.stdin.close()
    except OSError:  # BrokenPipeError: the pager was quit early; stop making the rest
        with contextlib.suppress(OSError):
            proc.stdin.close()
    proc.wait()


def _report_problems(problems: Sequence[Any]) -> None:
    for p in problems[:5]:
        if not p.line_number:  # a whole note not read (a reader limit, a missing blob)
            echo(
                f"warning: {p.reason} (other runs are shown)"
                if "limit" in p.reason
                else f"warning: the note on {p.commit[:12]}: {p.reason}",
                err=True,
            )
            continue
        echo(
            f"warning: unreadable ledger line {p.line_number} in the note on "
            f"{p.commit[:12]}: {p.reason} (other runs are shown; "
            f"git prov fsck has details)",
            err=True,
        )
    if len(problems) > 5:
        echo(f"warning: … and {len(problems) - 5} more unreadable ledger lines", err=True)

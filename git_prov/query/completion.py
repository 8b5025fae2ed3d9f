"""Run ids for shell completion (``git prov show 1c<TAB>``), read from the query index.

A completion must answer quickly and never fail loudly: outside a repository, or when
the index cannot be had, there is simply nothing to complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from git_prov.errors import ProvError
from git_prov.model.ids import SHORT_RUN
from git_prov.model.record import printable

MAX_COMPLETIONS = 50
# In a run id (20261126T113400.123Z-3f2a9c1d) the short form starts at this offset.
_SHORT_AT = 22


@dataclass(frozen=True)
class RunCompletion:
    """One run a typed prefix may name: the text to complete to and a line about it."""

    value: str
    about: str


def complete_runs(
    incomplete: str, cwd: Path | None = None, limit: int = MAX_COMPLETIONS
) -> list[RunCompletion]:
    """The live runs whose short id (the 8 characters ``git prov log`` shows) or full id
    starts with ``incomplete``, newest first: short ids complete to short ids, full ids to
    full ids. Empty outside a repository or when the ledger cannot be read."""
    from sqlite3 import Error as SqliteError

    from git_prov.query.index import RepoPaths, open_index

    try:
        paths = RepoPaths.discover(cwd)
        with open_index(paths) as index:
            rows = index.db.execute(
                "SELECT run, status, command FROM lines WHERE live = 1"
                " AND (substr(run, ?, ?) = ? OR substr(run, 1, ?) = ?)"
                " ORDER BY run DESC LIMIT ?",
                (
                    _SHORT_AT,
                    len(incomplete),
                    incomplete,
                    len(incomplete),
                    incomplete,
                    limit,
                ),
            ).fetchall()
    except (ProvError, OSError, SqliteError):
        return []
    out = []
    for run, status, command in rows:
        short = run[_SHORT_AT - 1 : _SHORT_AT - 1 + SHORT_RUN]
        value = short if short.startswith(incomplete) else run
        # A line from someone's ledger, shown by zsh and fish: escaped like any record text.
        about = f"{status or '?'} {' '.join(str(command or '').split())}"
        out.append(RunCompletion(value, printable(about[:60])))
    return out

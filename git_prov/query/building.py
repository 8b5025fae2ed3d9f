"""A full build of the query index (:mod:`git_prov.query.index`): every note read into an
emptied ``lines`` table, in parts side by side (:mod:`git_prov.query.parts`), then the
indexes a first query needs; and a first build made aside, in a private file linked in.

A build reads a note's text with :func:`git_prov.query.rows.build_rows` (canonical run
lines by one pattern, anything else as :func:`~git_prov.query.rows.parse_lines` reads it).
Its own part goes straight into the index; a forked helper's part into a file of its own,
copied in after (one writer per SQLite file). Every run row goes in live; the runs with
more than one row are worked out again once all are in.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from git_prov.collector import collector_paused
from git_prov.model.limits import note_too_large
from git_prov.progress import ambient as ambient_progress
from git_prov.query.index import (
    _CACHE_KB,
    _INDEX_SQL,
    _INSERT_LIVE,
    _LINE_INDEXES,
    _MADE_LATER,
    _ROW_COLUMNS,
    _SORT_KB,
    BUSY_TIMEOUT_S,
    INDEX_FILE,
    SCHEMA_VERSION,
    BuildersBusy,
    IndexStats,
    RepoPaths,
    RunIndex,
    _connect,
    _has_file,
    _remove,
)
from git_prov.query.rows import _problem_row, build_rows, prepare
from git_prov.store.gitcli import stream_blobs
from git_prov.store.gitcli.notes import list_notes


def note_rows(
    paths: RepoPaths, notes: Sequence[tuple[str, str]], progress: Any = None, scale: float = 1
) -> Iterator[tuple[Any, ...]]:
    """The index rows of ``notes`` ((commit, note blob) pairs), read as git streams them
    (a note's rows at a time, handed on one by one without a Python frame per row)."""
    return chain.from_iterable(_rows_of_notes(paths, notes, progress, scale))


def _rows_of_notes(
    paths: RepoPaths, notes: Sequence[tuple[str, str]], progress: Any, scale: float
) -> Iterator[list[tuple[Any, ...]]]:
    known: set[str] = set()
    contents = stream_blobs(paths.cwd, [blob for _, blob in notes])
    for number, ((commit, _), (_, data)) in enumerate(zip(notes, contents, strict=True)):
        if progress is not None and number % 256 == 255:
            progress.advance(round(256 * scale))
        if data is None:
            yield [_problem_row(commit, 0, "note blob is missing", "")]
            continue
        skipped = note_too_large(commit, len(data))
        if skipped is not None:  # (model/limits.py: every reader skips it, and says so)
            yield [_problem_row(commit, 0, skipped, "")]
            continue
        yield build_rows(commit, data, known)


@collector_paused()  # (millions of rows, none in a cycle; the helpers fork paused too)
def build(index: RunIndex, tip: str, work: Callable[[Sequence[Any], str], None]) -> None:
    """Read every note of ``tip`` into an emptied index: the notes cut into parts,
    parsed side by side by forked helpers when there are enough of them
    (:mod:`git_prov.query.parts`), and copied in in commit id order."""
    from git_prov.query import parts

    index.stats.mode = "built" if index.stats.mode != "memory" else "memory"
    db = index.db
    for name, _ in _LINE_INDEXES:
        if name != "lines_problems":
            db.execute(f"DROP INDEX IF EXISTS {name}")
    db.execute(_INDEX_SQL["lines_problems"].replace(" INDEX ", " INDEX IF NOT EXISTS "))
    index._made.clear()
    db.execute("DELETE FROM lines")
    db.execute("DELETE FROM notes")
    notes = sorted(list_notes(index.paths, tip)) if tip else []  # commit id order
    count = parts.part_count(len(notes))
    pieces = parts.split(notes, count, parts.first_share(count))
    progress = ambient_progress()
    progress.start("indexing the ledger", len(notes), "notes")
    prepare()  # the patterns compiled once, before the helpers are forked
    # Fork first: the helpers parse while this process parses the first part.
    helpers = _start_helpers(index, pieces[1:], work) if len(pieces) > 1 else None
    if helpers is None:
        pieces = [notes]
    index.stats.parts = len(pieces)
    scale = len(notes) / max(1, len(pieces[0]))  # the others advance as this one does
    own = note_rows(index.paths, pieces[0], progress, scale)
    with helpers or contextlib.nullcontext():
        db.executemany(_INSERT_LIVE, own)
        # (while the helpers finish)
        db.executemany("INSERT INTO notes (commit_id, blob) VALUES (?, ?)", notes)
        done = helpers.results() if helpers else []
        for number, (piece, path) in enumerate(done, start=1):
            if path is None or not _copy_part(index, number, path):
                # the helper failed, or its file cannot be read: parse the part here
                db.executemany(_INSERT_LIVE, note_rows(index.paths, piece))
    # The indexes sorted a few MB at a time (in temporary files, for a build aside: see
    # _connect): at 1M runs a quarter less CPU than sorting in 32 MB runs, 50 MB less.
    db.execute(f"PRAGMA cache_size=-{_SORT_KB}")
    for name, sql in _LINE_INDEXES:
        if name != "lines_problems" and name not in _MADE_LATER:
            db.execute(sql)
    db.execute(f"PRAGMA cache_size=-{_CACHE_KB}")
    # Every run row went in live; a run with more than one row (copies of its record,
    # a tombstone) has its live row worked out again. (Rows went in in note and line
    # order; the run index answers this without reading the table.)
    index._relive(
        {
            run
            for (run,) in db.execute(
                "SELECT run FROM lines WHERE run IS NOT NULL GROUP BY run HAVING count(*) > 1"
            )
        }
    )
    index.stats.notes_read += len(notes)
    index.stats.lines_parsed += db.execute("SELECT count(*) FROM lines").fetchone()[0]
    # Statistics for the planner (a sample: milliseconds at a million runs). Without
    # them SQLite takes the partial index on live runs for any "live = 1" and reads
    # every live row through it, in start order: 10x a plain scan of the table.
    db.execute("PRAGMA analysis_limit = 1000")
    db.execute("ANALYZE")
    progress.finish()


def _start_helpers(
    index: RunIndex,
    pieces: Sequence[Sequence[tuple[str, str]]],
    work: Callable[[Sequence[Any], str], None],
) -> Any:
    """Forked helpers for ``pieces`` (:class:`git_prov.query.parts.Helpers`), or None
    when they cannot start (no temporary directory): this process parses every part."""
    from git_prov.query import parts

    try:
        index._helpers = parts.Helpers(work, pieces)
    except OSError:
        return None
    return index._helpers


def _copy_part(index: RunIndex, number: int, path: str) -> bool:
    """Copy the rows a helper wrote to ``path`` in after the rows so far; False when its
    file cannot be read (nothing was copied)."""
    db, name = index.db, f"part{number}"
    try:
        db.execute("ATTACH DATABASE ? AS ?", (path, name))
        index._attached.append(name)
        db.execute(
            f"INSERT INTO main.lines ({_ROW_COLUMNS}, live)"
            f" SELECT {_ROW_COLUMNS}, live FROM {name}.lines ORDER BY rowid"
        )
    except sqlite3.Error:
        if not db.in_transaction:  # an error that ended the whole transaction
            raise
        return False  # (a failed statement changes nothing)
    return True


_ASIDE = f"{INDEX_FILE}.build-"  # (+ the builder's process id)


def build_aside(paths: RepoPaths, path: Path, reason: str) -> IndexStats | None:
    """When there is no index file at ``path`` yet, build one in a private file beside it
    and link it in (never over a file another process made meanwhile); the build's stats,
    or None when there was a file (or leftovers of one) or the link lost: the caller opens
    ``path`` and brings it up to date as usual.

    No other process reads a private file, so the build writes it with no journal and no
    syncing (a first build in place wrote every page twice: into the WAL, then into the
    file); it is synced once, whole, before it is linked in. Builders of the same
    repository take turns (a lock file beside the index): the second finds the first's
    index. A builder killed midway leaves only its private file, removed by the next one.
    """
    if _has_file(path):
        return None  # (SQLite owns what an earlier file left: build in place)
    with builders_turn(path) as taken:
        if not taken:  # (a read-only directory: opened as before, which says why not)
            return None
        if os.path.lexists(path):
            return None  # another builder's index, complete
        for stale in path.parent.glob(f"{_ASIDE}*"):
            with contextlib.suppress(OSError):
                stale.unlink()  # (a killed builder's: the lock says no builder is running)
        aside = path.with_name(f"{_ASIDE}{os.getpid()}")
        try:
            index = RunIndex(_connect(aside, aside=True), paths)
            try:
                if reason:
                    index.stats.reason = reason
                index.refresh()
                index.db.execute("PRAGMA journal_mode=WAL")  # (how every reader opens it)
            finally:
                index.close()
            with open(aside, "rb") as built:
                os.fsync(built.fileno())
            os.link(aside, path)
        except (OSError, sqlite3.Error):  # (FileExistsError: made by a process that takes
            return None  # no turns) the index at path is opened, or built there, as before
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)
        return index.stats


# How long a command waits for another process's turn at building the index before it
# answers from an index of its own in memory (seconds; GIT_PROV_INDEX_WAIT). A builder
# found stopped (Ctrl-Z, SIGSTOP) is not waited for; the wait is said after _SAY_AFTER_S.
WAIT_ENV = "GIT_PROV_INDEX_WAIT"
WAIT_SECONDS = 60.0
_SAY_AFTER_S = 1.5


@contextlib.contextmanager
def builders_turn(path: Path) -> Iterator[bool]:
    """The builders' turn at the index at ``path``: its lock file (``index.sqlite.lock``)
    held while the block runs. Another builder holding it is waited for, said on stderr
    after _SAY_AFTER_S; BuildersBusy when it is stopped or the wait reaches the bound
    (:func:`~git_prov.query.index.open_index` then answers from memory). Yields False,
    unlocked, where there is no lock: no flock, a lock file that cannot be made or locked
    (a read-only directory)."""
    try:
        from git_prov.store.locking import ledger_lock
    except ImportError:  # (no fcntl)
        yield False
        return
    waiting = _Waiting(path.with_name(f"{INDEX_FILE}.lock"))
    with ledger_lock(waiting.lock, wait=float("inf"), waiting=waiting) as taken:
        if waiting.gave_up:
            raise BuildersBusy(waiting.gave_up)
        yield taken


class _Waiting:
    """Told how long the builders' lock at ``lock`` has been waited for: says so once (and
    which process holds it, when the system says); ends the wait when that process is
    stopped or the bound (GIT_PROV_INDEX_WAIT) is reached, saying why in ``gave_up``."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock
        self.holder: int | None = None
        self.said = False
        self.gave_up = ""
        given = os.environ.get(WAIT_ENV, "").strip()
        try:
            self.bound = float(given) if given else WAIT_SECONDS
        except ValueError:
            self.bound = WAIT_SECONDS
        if not self.bound >= 0:  # (nan, negative)
            self.bound = WAIT_SECONDS

    def __call__(self, elapsed: float) -> bool:
        if elapsed < min(_SAY_AFTER_S, self.bound):
            return True
        from git_prov.store.locking import lock_holder, process_stopped
        from git_prov.terminal import echo

        if not self.said:
            self.said = True
            self.holder = lock_holder(self.lock)
            who = "another git-prov process" if self.holder is None else f"process {self.holder}"
            echo(f"note: waiting for {who} building the query index ({self.lock})", err=True)
        if self.holder is not None and process_stopped(self.holder):
            self.gave_up = f"process {self.holder} holding {self.lock.name} is stopped"
        elif elapsed >= self.bound:
            self.gave_up = f"waited {self.bound:g} s for {self.lock.name} ({WAIT_ENV})"
        else:
            return True
        echo(f"note: {self.gave_up}: the query index is built in memory for this command", err=True)
        return False


def remove_other_schema(path: Path) -> None:
    """Remove the index file at ``path`` (and its WAL) when it is still of another schema
    version, taking turns with builders (:func:`build_aside`'s lock), so that a new index
    another process has just linked in stays. Without a lock the file stays, and the
    caller's second attempt rebuilds it in place, as before."""
    with builders_turn(path) as taken:
        if not taken:
            return
        if not os.path.lexists(path):
            return  # (removed by another process meanwhile; connecting would make a file)
        try:
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return
        if version != SCHEMA_VERSION:
            _remove(path)

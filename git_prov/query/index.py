"""The query index: a local SQLite cache of the ledger, so queries do not re-read every note.

It lives at ``<git common dir>/prov/index.sqlite`` (WAL mode) and is never the truth: it is
rebuilt from ``refs/notes/prov`` whenever in doubt, and deleting it loses nothing. The first
build fills a private file and links it in (:func:`git_prov.query.building.build_aside`).

Contents.

* ``lines`` — one row per entry line of every note: runs (flattened: id, commit, started,
  status, host, env, data manifest ids, command, params and metrics as JSON …),
  attachments, tombstones and unreadable lines (with the reason). ``live`` marks, for
  each run id, the one run row queries use: the record in the note of the smallest commit id
  (then the earliest line: the record :meth:`Ledger.scan` keeps), unless a tombstone
  deleted the run.
* ``notes`` — which note blob was indexed for each annotated commit.
* ``manifests``, ``files``, ``packages`` — the contents of data and environment
  manifests (path, hash, size; package, version), loaded lazily the first time a query
  needs them and then kept: manifests are content-addressed, so they never go stale.
* ``envtags`` — the resolved environment tags (:mod:`git_prov.query.envtags`).
* ``meta`` — the schema version and the tips of ``refs/notes/prov`` and
  ``refs/prov/objects`` the contents reflect.

Freshness. Each query reads the two tips (two small file reads, no git process) and
compares them with ``meta``. When the notes tip moved, the index is updated from the
difference of the two notes trees (``git diff-tree``, which descends only where subtree
ids differ): only changed notes are read, and of a changed note — canonical, sorted lines,
so a change is normally added lines — only the added lines are parsed. A note that lost
lines (a rewritten ledger) is re-read whole. When the old tip can no longer be read, or
the schema changed, the index is rebuilt. When only the objects tip moved, the environment
tags are re-read and manifests that were missing are retried.

Concurrency. Updates run in one ``BEGIN IMMEDIATE`` transaction and re-check the tips
inside it, so concurrent processes queue and the later ones find the work done; readers
never block (WAL). A corrupt file is deleted and rebuilt silently; when the file cannot be
used at all (read-only repository, lock held too long) an in-memory index answers instead.

Reading the ledger goes through the ``git`` binary (``ls-tree``, ``diff-tree``,
``cat-file --batch``) rather than pygit2: a query that finds the index fresh then never
loads pygit2, which is most of the start-up time of a short command.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import Any

from git_prov.collector import collector_paused
from git_prov.model.frozen import FRESH, MutableFields, mutable_fields
from git_prov.model.limits import note_too_large
from git_prov.model.record import LineProblem
from git_prov.query.rows import (
    KIND_ATTACH,
    KIND_PROBLEM,
    KIND_RUN,
    KIND_TOMBSTONE,
    ROW_COLUMNS,
    fast_run,
    note_lines,
    parse_lines,
    record_json_of,
    valid_run_json,
)
from git_prov.store.gitcli import read_blobs
from git_prov.store.gitcli.notes import changed_notes
from git_prov.store.gitcli.paths import RepoPaths, read_ref

# Names queries and tests import from here (they live in the modules above).
__all__ = [
    "INDEX_FILE", "KIND_ATTACH", "KIND_PROBLEM", "KIND_RUN", "KIND_TOMBSTONE", "IndexStats",
    "RepoPaths", "RunIndex", "fast_run", "note_lines", "open_index", "package_key",
    "parse_lines", "read_tag_entries", "record_json_of", "valid_run_json", "with_index",
]  # fmt: skip

NOTES_REF = "refs/notes/prov"  # the same names as git_prov.store.ledger (not imported:
OBJECTS_REF = "refs/prov/objects"  # that module loads pygit2)
INDEX_FILE = "index.sqlite"
# 7: notes over the reader limit (model/limits.py) are problem rows; 8: the metrics'
# summaries of records with histories (``series``); 9: ``lines_started`` (a page of runs
# newest first walks it instead of sorting every run); 10: the planner's statistics
# (``ANALYZE``), so a scan of every live run does not walk ``lines_started`` row by row;
# 11: ``notes.splices``, which lines of a note blob find --json prints from their text
SCHEMA_VERSION = 11
BUSY_TIMEOUT_S = 60.0

STATE_MISSING, STATE_LOADED, STATE_BAD = 0, 1, 2

# Binding None: Python's sqlite3 (3.11–3.13) offers a parameter that is not an int, float,
# str or bytes to the adapter protocol first, which for None raises and clears two
# AttributeErrors (``__adapt__``, ``__conform__``) before binding NULL: 0.6 µs per None,
# and a run row has eight or more — half the cost of inserting it (1M rows: 15 s of CPU).
# An adapter registered for NoneType is found by one dict lookup; ``{}.get(None)`` is None
# (a C call), so the bound value stays NULL. The same for every connection of the process.
_NULLS: dict[object, None] = {}
sqlite3.register_adapter(type(None), _NULLS.get)

_CACHE_KB, _SORT_KB = 32000, 8000  # SQLite's page cache; while a build sorts an index
_MANY_NOTES = 64  # an update of this many notes reads canonical lines the canonical way

# The columns of a parsed row, in order (``live`` is set afterwards): query/rows.py.
_ROW_COLUMNS = ", ".join(ROW_COLUMNS)
_INSERT_ROWS = f"INSERT INTO lines ({_ROW_COLUMNS}) VALUES ({','.join('?' * len(ROW_COLUMNS))})"
# A build's insert: every run row goes in live (``kind`` is the third column); the runs
# with more than one row (a copy, a tombstone) are worked out again once all are in.
_INSERT_LIVE = (
    f"INSERT INTO lines ({_ROW_COLUMNS}, live) VALUES "
    f"({','.join(f'?{n}' for n in range(1, len(ROW_COLUMNS) + 1))}, ?3 = {KIND_RUN})"
)
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE notes (
    commit_id TEXT PRIMARY KEY, blob TEXT NOT NULL, splices TEXT
) WITHOUT ROWID;
CREATE TABLE lines (
    id INTEGER PRIMARY KEY, note TEXT NOT NULL, lineno INTEGER, kind INTEGER NOT NULL,
    run TEXT, commit_id TEXT, started TEXT, duration REAL, status TEXT, exit_code INTEGER,
    host TEXT, user_name TEXT, branch TEXT, env TEXT, inputs TEXT, outputs TEXT,
    snapshot TEXT, command TEXT, params TEXT, metrics TEXT, tags TEXT, series TEXT,
    detail TEXT,
    live INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE manifests (oid TEXT PRIMARY KEY, kind TEXT, state INTEGER) WITHOUT ROWID;
CREATE TABLE files (
    manifest TEXT NOT NULL, path TEXT NOT NULL, hash TEXT, digest TEXT, size INTEGER,
    PRIMARY KEY (manifest, path)
) WITHOUT ROWID;
CREATE INDEX files_path ON files(path);
CREATE TABLE declared (
    manifest TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (manifest, path)
) WITHOUT ROWID;
CREATE INDEX declared_path ON declared(path);
CREATE INDEX files_digest ON files(digest);
CREATE TABLE packages (
    env TEXT NOT NULL, name TEXT NOT NULL, version TEXT, PRIMARY KEY (env, name)
) WITHOUT ROWID;
CREATE TABLE envtags (
    name TEXT PRIMARY KEY, env TEXT, at TEXT, by TEXT, entry TEXT, diverged TEXT
) WITHOUT ROWID;
{{indexes}}
PRAGMA user_version = {SCHEMA_VERSION};
"""
# Secondary indexes of ``lines``: dropped during a full build and made again after it
# (building an index once is much cheaper than maintaining it through 100k inserts) —
# but for ``lines_problems``, kept through the build (it holds only the rare problem
# rows, and making it afterwards would scan the whole table), and those of
# :data:`_MADE_LATER`. An index never changes an answer, only how fast it comes.
_LINE_INDEXES = (
    ("lines_run", "CREATE INDEX lines_run ON lines(run)"),
    ("lines_note", "CREATE INDEX lines_note ON lines(note, lineno)"),
    ("lines_problems", "CREATE INDEX lines_problems ON lines(note) WHERE kind = 3"),
    ("lines_inputs", "CREATE INDEX lines_inputs ON lines(inputs) WHERE inputs IS NOT NULL"),
    ("lines_outputs", "CREATE INDEX lines_outputs ON lines(outputs) WHERE outputs IS NOT NULL"),
    ("lines_started", "CREATE INDEX lines_started ON lines(started, run) WHERE live = 1"),
)
_INDEX_SQL = dict(_LINE_INDEXES)
# Made the first time a query that looks rows up by them runs (:meth:`RunIndex.need`), not
# by a build: a first query pages runs by start time and looks them up by id, and making
# these three took a sixth of a first build's time at 1M runs. The queries that need them
# are updates and reading a note's lines (``note``) and data lookups (``inputs``,
# ``outputs``); one that runs without them (a read-only index file) scans the table.
_MADE_LATER = ("lines_note", "lines_inputs", "lines_outputs")


def _parse_into(paths: RepoPaths, notes: Sequence[tuple[str, str]], path: str) -> None:
    """Parse ``notes`` into a new SQLite file's ``lines`` table, every run row marked live
    (what a forked helper of a build does)."""
    from git_prov.query.building import note_rows

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(f"CREATE TABLE lines ({_ROW_COLUMNS}, live)")
        db.execute("BEGIN")
        db.executemany(_INSERT_LIVE, note_rows(paths, notes))
        db.execute("COMMIT")
    finally:
        db.close()


# ---- the index ------------------------------------------------------------------------------


@mutable_fields
class IndexStats(MutableFields):
    """What bringing the index up to date took (for tests, benchmarks and ``--debug``)."""

    mode: str = "fresh"  # fresh | built | incremental | memory
    reason: str = ""  # why it was (re)built: new, schema, corrupt, unreadable-tip, …
    notes_read: int = 0
    lines_parsed: int = 0
    manifests_loaded: int = 0
    tags_loaded: bool = False
    parts: int = 0  # how many processes parsed the notes in a build (git_prov.query.parts)

    def __init__(
        self,
        mode: str = "fresh",
        reason: str = "",
        notes_read: int = 0,
        lines_parsed: int = 0,
        manifests_loaded: int = 0,
        tags_loaded: bool = False,
        parts: int = 0,
    ) -> None:
        self.mode = mode
        self.reason = reason
        self.notes_read = notes_read
        self.lines_parsed = lines_parsed
        self.manifests_loaded = manifests_loaded
        self.tags_loaded = tags_loaded
        self.parts = parts


@mutable_fields
class _Tips(MutableFields):
    notes: str = ""
    objects: str = ""

    def __init__(self, notes: str = "", objects: str = "") -> None:
        self.notes = notes
        self.objects = objects


@mutable_fields
class RunIndex(MutableFields):
    """An open, up-to-date index. Use :func:`open_index`; close it (or use ``with``)."""

    db: sqlite3.Connection
    paths: RepoPaths
    stats: IndexStats = field(default_factory=IndexStats)
    tips: _Tips = field(default_factory=_Tips)
    _helpers: Any = field(default=None, repr=False)  # parts.Helpers of a build under way
    _attached: list[str] = field(default_factory=list, repr=False)
    _made: set[str] = field(default_factory=set, repr=False)  # (need: indexes known made)

    def __init__(
        self,
        db: sqlite3.Connection,
        paths: RepoPaths,
        stats: IndexStats = FRESH,
        tips: _Tips = FRESH,
        _helpers: Any = None,
        _attached: list[str] = FRESH,
        _made: set[str] = FRESH,
    ) -> None:
        self.db = db
        self.paths = paths
        self.stats = IndexStats() if stats is FRESH else stats
        self.tips = _Tips() if tips is FRESH else tips
        self._helpers = _helpers
        self._attached = [] if _attached is FRESH else _attached
        self._made = set() if _made is FRESH else _made

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    # ---- reading ---------------------------------------------------------------------

    def problems(self) -> list[LineProblem]:
        """The note lines that could not be read."""
        return [
            LineProblem(note, lineno or 0, reason or "", text or "")
            for note, lineno, reason, text in self.db.execute(
                "SELECT note, lineno, detail, command FROM lines INDEXED BY lines_problems"
                " WHERE kind = 3 ORDER BY id"
            )
        ]

    def resolve_run(self, spec: str) -> str:
        """The full id of the live run ``spec`` names — an id, its short form, or a prefix of
        either (at least 4 characters) — as :meth:`Ledger.resolve_run` finds it."""
        from git_prov.errors import NotFound

        spec = spec.strip()
        if self.db.execute("SELECT 1 FROM lines WHERE live = 1 AND run = ?", (spec,)).fetchall():
            return spec
        if len(spec) < 4:
            raise NotFound(f"run id {spec!r} is too short", "give at least 4 characters")
        low, high = spec, spec[:-1] + chr(ord(spec[-1]) + 1)
        matches: list[str] = [
            str(r)
            for (r,) in self.db.execute(
                "SELECT run FROM lines WHERE live = 1 AND ((run >= ? AND run < ?)"
                " OR substr(run, 22, ?) = ?) LIMIT 6",
                (low, high, len(spec), spec),
            )
        ]
        if not matches:
            raise NotFound(f"no run matches {spec!r}", "list runs with `git prov find`")
        if len(matches) > 1:
            raise NotFound(
                f"run id {spec!r} is ambiguous: {', '.join(sorted(matches)[:5])}",
                "give more characters of the id",
            )
        return matches[0]

    def data_paths(self, candidates: Iterable[str]) -> set[str]:
        """Those of ``candidates`` (repo-relative paths) that some run declared as data: a
        recorded file, or a file below a declared directory."""
        self.ensure_data_manifests()
        out = set()
        for path in candidates:
            parts = path.split("/")
            ancestors = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            marks = ",".join("?" * len(ancestors))
            if (
                self.db.execute(
                    f"SELECT 1 FROM declared WHERE path IN ({marks}) LIMIT 1", ancestors
                ).fetchall()
                or self.db.execute("SELECT 1 FROM files WHERE path = ? LIMIT 1", (path,)).fetchall()
            ):
                out.add(path)
        return out

    def run_count(self, at_most: int | None = None) -> int:
        """Live runs in the index; with ``at_most``, counting stops there (a cost bounded by
        it: whether a few runs are most of the ledger)."""
        if at_most is None:
            return int(self.db.execute("SELECT count(*) FROM lines WHERE live = 1").fetchone()[0])
        return int(
            self.db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM lines WHERE live = 1 LIMIT ?)", (at_most,)
            ).fetchone()[0]
        )

    def shown_on(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The commits each run is shown on: the one it ran on first (as ``Ledger.scan``)."""
        out: dict[str, list[str]] = {}
        if not run_ids:
            return out
        with self.selecting(run_ids):
            commits = dict(
                self.db.execute(
                    "SELECT run, commit_id FROM lines WHERE live = 1 AND run IN temp.wanted"
                ).fetchall()
            )
            for run, note in self.db.execute(
                "SELECT DISTINCT run, note FROM lines WHERE kind IN (0, 1)"
                " AND run IN temp.wanted ORDER BY run, note"
            ):
                out.setdefault(run, [commits.get(run, note)])
                if note not in out[run]:
                    out[run].append(note)
        return out

    def record_jsons(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each run as ``render.record_json`` makes it
        (:func:`git_prov.query.located.record_jsons`)."""
        from git_prov.query.located import record_jsons

        return record_jsons(self, run_ids)

    @contextlib.contextmanager
    def selecting(self, run_ids: Sequence[str]) -> Iterator[None]:
        """Within the block, ``temp.wanted`` holds ``run_ids`` (for ``run IN temp.wanted``:
        one join instead of a statement per id)."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (run TEXT PRIMARY KEY)")
        self.db.execute("DELETE FROM temp.wanted")
        self.db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", ((r,) for r in run_ids))
        try:
            yield
        finally:
            self.db.execute("DELETE FROM temp.wanted")

    def env_tags(self) -> dict[str, tuple[str | None, str]]:
        """Tag name → (env id or None when deleted, entry id), as indexed."""
        return {
            name: (env, entry)
            for name, env, entry in self.db.execute("SELECT name, env, entry FROM envtags")
        }

    def remember_splices(self, found: Sequence[tuple[str, str, str]]) -> None:
        """Keep which lines of note blobs find --json prints from their own text, as it
        worked them out (git_prov.query.located, "find --json without decoding"):
        (splices, commit, blob) each, kept for the note of ``commit`` only while it is
        ``blob`` (what a blob's lines are never changes; a note changed meanwhile gets
        none). Only a cache: skipped when another process holds the index for more than a
        moment, or it cannot be written."""
        if not found:
            return
        db = self.db
        db.execute("PRAGMA busy_timeout = 200")
        try:
            with self._write():
                db.executemany(
                    "UPDATE notes SET splices = ? WHERE commit_id = ? AND blob = ?", found
                )
        except sqlite3.OperationalError:  # (locked, read-only, full: next time)
            pass
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def need(self, *names: str) -> None:
        """Make those of the secondary indexes ``names`` (of :data:`_MADE_LATER`) that a
        build left for later. Only an index: when it cannot be made now (a read-only
        file, another process holding the index for long), the query scans instead."""
        wanted = [name for name in names if name not in self._made]
        if not wanted:
            return
        db = self.db
        present = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        missing = [name for name in wanted if name not in present]
        inside = db.in_transaction
        try:
            with contextlib.nullcontext() if inside else self._write():
                for name in missing:
                    db.execute(_INDEX_SQL[name].replace(" INDEX ", " INDEX IF NOT EXISTS "))
                    db.execute("PRAGMA analysis_limit = 1000")
                    db.execute(f"ANALYZE {name}")  # (the planner's statistics, as a build's)
        except sqlite3.OperationalError:  # (read-only, locked: next time)
            if inside and not db.in_transaction:
                # SQLite rolled the caller's transaction back with it (a full disk): its
                # work is gone, and what it does next must not be committed bit by bit.
                raise
            return
        self._made.update(wanted)

    # ---- manifests, loaded on demand ---------------------------------------------------

    def ensure_data_manifests(self) -> None:
        """Load every data manifest live runs name that is not in the index yet."""
        self._ensure(
            "data",
            "SELECT inputs FROM lines WHERE live = 1 AND inputs IS NOT NULL"
            " UNION SELECT outputs FROM lines WHERE live = 1 AND outputs IS NOT NULL"
            " EXCEPT SELECT oid FROM manifests",
        )

    def ensure_env_manifests(self) -> None:
        """Load every environment manifest live runs name that is not in the index yet."""
        self._ensure(
            "env",
            "SELECT env FROM lines WHERE live = 1 AND env IS NOT NULL"
            " EXCEPT SELECT oid FROM manifests",
        )

    def _ensure(self, kind: str, missing_sql: str) -> None:
        if not self.db.execute(missing_sql + " LIMIT 1").fetchall():
            return
        with self._write():
            missing = [oid for (oid,) in self.db.execute(missing_sql)]
            blobs = read_blobs(self.paths.cwd, missing)
            for oid in missing:
                self.db.execute(
                    "INSERT OR REPLACE INTO manifests VALUES (?, ?, ?)",
                    (oid, kind, self._load_manifest(kind, oid, blobs.get(oid))),
                )
            self.stats.manifests_loaded += len(missing)

    def _load_manifest(self, kind: str, oid: str, data: bytes | None) -> int:
        from git_prov.model.manifest import DataManifest, EnvironmentManifest

        if data is None:
            return STATE_MISSING
        try:
            if kind == "data":
                manifest = DataManifest.from_toml(data)
                rows = [
                    (oid, e.path, e.hash, e.digest.lower(), e.size) for e in manifest.entries
                ] + [(oid, p, None, None, None) for p in manifest.missing]
                self.db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)", rows)
                self.db.executemany(
                    "INSERT OR REPLACE INTO declared VALUES (?, ?)",
                    [(oid, path) for path in manifest.paths],
                )
            else:
                env = EnvironmentManifest.from_toml(data)
                self.db.executemany(
                    "INSERT OR REPLACE INTO packages VALUES (?,?,?)",
                    [(oid, package_key(n), str(v)) for n, v in env.packages.items()],
                )
        except ValueError:
            return STATE_BAD
        return STATE_LOADED

    # ---- keeping it fresh ---------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _meta(self) -> _Tips:
        values = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        return _Tips(values.get("notes_tip", ""), values.get("objects_tip", ""))

    def refresh(self, *, force: bool = False) -> IndexStats:
        """Bring the index up to date with the ledger's refs (``force``: rebuild it)."""
        tips = _Tips(read_ref(self.paths, NOTES_REF) or "", read_ref(self.paths, OBJECTS_REF) or "")
        if not force and self._meta() == tips and self._has_meta():
            self.tips = tips
            return self.stats
        try:
            self._refresh(tips, force)
        finally:
            self._release_parts()
        self.tips = tips
        return self.stats

    def _refresh(self, tips: _Tips, force: bool) -> None:
        with self._write():
            indexed = self._meta()
            has_meta = self._has_meta()
            if force or not has_meta:
                self.stats.reason = self.stats.reason or ("forced" if force else "new")
                self._build(tips.notes)
            elif indexed.notes != tips.notes and not (
                indexed.notes and tips.notes and self._update(indexed.notes, tips)
            ):
                self.stats.reason = self.stats.reason or "unreadable-tip"
                self._build(tips.notes)
            if force or not has_meta or indexed.objects != tips.objects:
                self._load_tags(tips.objects)
                self.db.execute("DELETE FROM manifests WHERE state = ?", (STATE_MISSING,))
            self.db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("notes_tip", tips.notes), ("objects_tip", tips.objects), ("complete", "1")],
            )

    def _has_meta(self) -> bool:
        return bool(self.db.execute("SELECT 1 FROM meta WHERE key = 'complete'").fetchall())

    def _build(self, tip: str) -> None:
        """Read every note of ``tip`` into an emptied index (:func:`git_prov.query.
        building.build`; forked helpers run :func:`_parse_into`)."""
        from git_prov.query.building import build

        build(self, tip, partial(_parse_into, self.paths))

    def _release_parts(self) -> None:
        """Detach the helpers' files (possible only outside the transaction) and delete them."""
        for name in self._attached:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute(f"DETACH DATABASE {name}")
        self._attached.clear()
        if self._helpers is not None:
            self._helpers.remove()
            self._helpers = None

    def _update(self, old_tip: str, tips: _Tips) -> bool:
        """Apply the notes that changed between ``old_tip`` and the new tip; False when
        the old tip cannot be read (the caller rebuilds)."""
        changes = changed_notes(self.paths, old_tip, tips.notes)
        if changes is None:
            return False
        self.stats.mode = "incremental" if self.stats.mode != "memory" else "memory"
        if any(old is not None for old, _ in changes.values()):
            self.need("lines_note")  # (a changed note's rows are found by it)
        db = self.db
        blob_ids = [b for pair in changes.values() for b in pair if b is not None]
        blobs = read_blobs(self.paths.cwd, blob_ids)
        affected: set[str] = set()
        new_rows: list[tuple[Any, ...]] = []
        many = len(changes) >= _MANY_NOTES
        for commit, (old_blob, new_blob) in sorted(changes.items()):
            self.stats.notes_read += 1
            new_data = blobs.get(new_blob) if new_blob else None
            old_data = blobs.get(old_blob) if old_blob else None
            if new_blob is None:
                affected |= self._drop_note(commit)
                db.execute("DELETE FROM notes WHERE commit_id = ?", (commit,))
                continue
            if new_data is None or note_too_large(commit, len(new_data)):
                return False  # a note we cannot (or will not) read: start over, not guess
            new_lines = note_lines(new_data)
            numbered: Iterable[tuple[int, str]] = enumerate(new_lines, start=1)
            # (kind = 3 literally: the partial index of problem lines answers it)
            has_problems = db.execute(
                "SELECT 1 FROM lines WHERE note = ? AND kind = 3 LIMIT 1", (commit,)
            ).fetchall()
            if old_data is not None and not has_problems:
                old_lines = note_lines(old_data)
                old_set = set(old_lines)
                if old_set <= set(new_lines):  # only added lines: parse just those
                    numbered = ((n, line) for n, line in numbered if line not in old_set)
                    self._renumber(commit, old_lines, new_lines)
                else:
                    affected |= self._drop_note(commit)
            elif old_blob is not None:  # a note new to the index has no rows to drop
                affected |= self._drop_note(commit)
            rows = parse_lines(commit, numbered, canonical=many)
            new_rows.extend(rows)
            affected |= {row[3] for row in rows if row[3] is not None}
            db.execute(
                "INSERT OR REPLACE INTO notes (commit_id, blob) VALUES (?, ?)", (commit, new_blob)
            )
        self.stats.lines_parsed += len(new_rows)
        db.executemany(_INSERT_ROWS, new_rows)
        self._relive(affected)
        return True

    def _renumber(self, commit: str, old_lines: list[str], new_lines: list[str]) -> None:
        """Move the rows of a note's kept lines to their line numbers in its new text (lines
        added above them pushed them down)."""
        position: dict[str, int] = {}
        for number, line in enumerate(new_lines, start=1):
            position.setdefault(line, number)
        moves = [
            (position[old_lines[lineno - 1]], row)
            for row, lineno in self.db.execute(
                "SELECT id, lineno FROM lines WHERE note = ?", (commit,)
            ).fetchall()
            if 1 <= lineno <= len(old_lines) and position[old_lines[lineno - 1]] != lineno
        ]
        self.db.executemany("UPDATE lines SET lineno = ? WHERE id = ?", moves)

    def _drop_note(self, commit: str) -> set[str]:
        runs = {
            r for (r,) in self.db.execute("SELECT run FROM lines WHERE note = ?", (commit,)) if r
        }
        self.db.execute("DELETE FROM lines WHERE note = ?", (commit,))
        return runs

    def _relive(self, runs: set[str]) -> None:
        """Recompute which row is the live record of each of ``runs``."""
        if not runs:
            return
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS affected (run TEXT PRIMARY KEY)")
        db.execute("DELETE FROM temp.affected")
        db.executemany("INSERT OR IGNORE INTO temp.affected VALUES (?)", ((r,) for r in runs))
        db.execute("UPDATE lines SET live = 0 WHERE live = 1 AND run IN temp.affected")
        db.execute(
            "UPDATE lines SET live = 1 WHERE id IN (SELECT id FROM ("
            "  SELECT id, row_number() OVER (PARTITION BY run ORDER BY note, lineno) AS nth"
            "  FROM lines WHERE kind = 0 AND run IN temp.affected) WHERE nth = 1)"
            " AND run NOT IN (SELECT run FROM lines WHERE kind = 2 AND run IN temp.affected)"
        )
        db.execute("DELETE FROM temp.affected")

    def _load_tags(self, objects_tip: str) -> None:
        from git_prov.query.envtags import resolve_tags

        self.db.execute("DELETE FROM envtags")
        self.stats.tags_loaded = True
        if not objects_tip:
            return
        entries = read_tag_entries(self.paths, objects_tip)
        rows = [
            (t.name, t.env, t.at, t.by, t.entry, json.dumps([e.id for e in t.diverged]))
            for t in resolve_tags(entries).values()
        ]
        self.db.executemany("INSERT INTO envtags VALUES (?,?,?,?,?,?)", rows)


def read_tag_entries(paths: RepoPaths, objects_tip: str) -> list[Any]:
    """Every readable environment tag entry under ``envtag/`` of an objects commit."""
    from git_prov.query.envtags import TAG_DIR, TagEntry

    out = paths.git("ls-tree", "-r", "-z", "--full-tree", objects_tip, "--", TAG_DIR)
    ids: list[str] = []
    for item in out.split(b"\0"):
        meta, _, _ = item.partition(b"\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == b"blob":
            ids.append(parts[2].decode())
    entries = []
    for oid, data in read_blobs(paths.cwd, ids).items():
        with contextlib.suppress(ValueError):
            entries.append(TagEntry.from_toml(oid, data))
    return entries


def package_key(name: str) -> str:
    """A distribution name normalised as PEP 503 does (``Foo_Bar`` → ``foo-bar``)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


# ---- opening --------------------------------------------------------------------------------


def _is_corrupt(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(exc)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")


class _OtherSchema(Exception):
    """An index file of another schema version (made by another version of git-prov)."""


class BuildersBusy(Exception):
    """Another process kept the builders' turn too long, or is stopped holding it
    (query.building.builders_turn): the index is built in memory instead."""


def _connect(
    path: Path | str, *, aside: bool = False, replace_other: bool = False
) -> sqlite3.Connection:
    """A connection to the index at ``path``, its schema made when missing or of another
    version. ``aside``: a private file a first build fills (``building.build_aside``),
    with no journal and no syncing until it is complete. ``replace_other``: a file of another
    schema version raises :class:`_OtherSchema` instead (the caller builds a new one aside;
    rebuilt in place, at 1M runs, its WAL made the process peak at ~510 MB)."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        if aside:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
        elif str(path) != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        if not aside:
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: consistency, not durability
            # (Not for a first build: its indexes are sorted in temporary files, a few MB
            # at a time, rather than whole in memory: less CPU, ~100 MB less at 1M runs.)
            db.execute("PRAGMA temp_store=MEMORY")
        db.execute(f"PRAGMA cache_size=-{_CACHE_KB}")
        # Reading pages in place saves copies on scans, but every mapped page counts in the
        # process's resident memory: 64 MiB keeps a query over 1M runs under 300 MB (0: the
        # same CPU for log and find, +20% for a first remap; 256 MiB: 370-410 MB).
        # (Not while a first build writes its file: all its pages are new, and scanning them
        # for the indexes through the map would add up to the whole 64 MiB to its peak.)
        db.execute(f"PRAGMA mmap_size={0 if aside else 67108864}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            if replace_other and version != 0:
                raise _OtherSchema(version)
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                tables = [
                    n
                    for (n,) in db.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    ).fetchall()
                ]
                for name in tables:
                    db.execute(f"DROP TABLE IF EXISTS {name}")
                indexes = ";\n".join(sql for _, sql in _LINE_INDEXES) + ";"
                for statement in _SCHEMA.replace("{indexes}", indexes).split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("COMMIT")
        db.execute("SELECT 1 FROM lines LIMIT 1").fetchall()
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
    except BaseException:
        db.close()
        raise
    _register_functions(db)
    return db


def _register_functions(db: sqlite3.Connection) -> None:
    from fnmatch import fnmatchcase

    from git_prov.model.values import as_number

    def number(value: Any) -> float | None:
        return as_number(value)

    def glob(pattern: str | None, text: str | None) -> int:
        return int(text is not None and pattern is not None and fnmatchcase(text, pattern))

    db.create_function("prov_number", 1, number, deterministic=True)
    db.create_function("prov_glob", 2, glob, deterministic=True)


def open_index(paths: RepoPaths, *, rebuild: bool = False, memory: bool = False) -> RunIndex:
    """Open the repository's index and bring it up to date.

    A corrupt index file is deleted and rebuilt; when the file cannot be used at all the
    index is built in memory for this process (``stats.mode == "memory"``).
    """
    path = paths.common_dir / "prov" / INDEX_FILE
    reason = ""
    if not memory:
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                built = None
                if not rebuild and not _has_file(path):  # (a first build: made aside)
                    from git_prov.query.building import build_aside

                    built = build_aside(paths, path, reason)
                replace_other = attempt == 0 and not rebuild and built is None
                index = RunIndex(_connect(path, replace_other=replace_other), paths)
                if built is not None:
                    index.stats = built
                if reason:
                    index.stats.reason = reason
                try:
                    index.refresh(force=rebuild)
                except BaseException:
                    index.close()
                    raise
                return index
            except _OtherSchema:
                from git_prov.query.building import remove_other_schema

                try:
                    remove_other_schema(path)  # then built aside, as a first build is
                except BuildersBusy as exc:
                    reason = f"busy: {exc}"
                    break
                continue
            except BuildersBusy as exc:  # (from build_aside: no file is touched)
                reason = f"busy: {exc}"
                break
            except sqlite3.DatabaseError as exc:
                if attempt == 0 and _is_corrupt(exc):
                    _remove(path)
                    reason = "corrupt"
                    continue
                reason = f"unusable: {exc}"
                break
            except OSError as exc:
                reason = f"unusable: {exc.strerror or exc}"
                break
    index = RunIndex(_connect(":memory:"), paths, IndexStats(mode="memory", reason=reason))
    index.refresh(force=True)
    return index


def _has_file(path: Path) -> bool:
    """Whether there is an index file at ``path``, or what SQLite left of one."""
    return os.path.lexists(path) or any(
        os.path.lexists(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal")
    )


def with_index(paths: RepoPaths, use: Callable[[RunIndex], Any]) -> Any:
    """Run ``use(index)`` (with the cycle collector paused); when the index file turns out
    corrupt mid-query, rebuild it and run ``use`` once more."""
    index = open_index(paths)
    try:
        with collector_paused():
            return use(index)
    except sqlite3.DatabaseError as exc:
        if not _is_corrupt(exc) or index.stats.mode == "memory":
            raise
        index.close()
        _remove(paths.common_dir / "prov" / INDEX_FILE)
        index = open_index(paths)
        with collector_paused():
            return use(index)
    finally:
        index.close()

"""The stat cache: a persistent map from a path and its stat data — device, inode, size,
mtime and ctime, the fields git's index trusts — to the digest read last time (and to DVC's
hashes of the bytes, in a second table, when they were asked for).

It is a SQLite database in WAL mode (so concurrent ``git prov run`` processes read without
blocking and write one short transaction each), it is only ever a cache: any problem with
it (locked for too long, unwritable, corrupt) means "hash the file" and never fails a run,
and a corrupt file is deleted and rebuilt. Imported only when files are to be looked up or
hashed (:func:`git_prov.capture.hashing.hash_files`): a re-record of unchanged inputs
needs no SQLite.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from git_prov.capture.digests import FileDigest, HashJob

# Version 1 is the ``files`` table. The ``dvc`` table was added later without a new version:
# git-prov versions that predate it keep using the same cache and simply ignore it.
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 5.0
_LOOKUP_BATCH = 500  # under SQLite's smallest host-parameter limit (999)
_CACHED_HASH = re.compile(r"sha256:[0-9a-f]{64}")  # anything else in a row is damage
# DVC's hashes, and git's blob id (computed alongside for outputs, see capture.dvc).
_CACHED_DVC_HASH = re.compile(r"(?:(md5|md5-dos2unix):[0-9a-f]{32}|(git):[0-9a-f]{40})")
_KEY_COLUMNS = "path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,"
_KEY_COLUMNS += " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL"
_FILES_TABLE = (
    f"CREATE TABLE files ({_KEY_COLUMNS}, hash TEXT NOT NULL,"
    " content_size INTEGER NOT NULL, lfs INTEGER NOT NULL) WITHOUT ROWID"
)
# DVC's hashes of a file's bytes, space-separated: every value computed for the algorithms
# asked for when the file was read (a row answers a job only if it has them all).
_DVC_TABLE = f"CREATE TABLE dvc ({_KEY_COLUMNS}, hashes TEXT NOT NULL) WITHOUT ROWID"


class StatCache:
    """A persistent map from a path and its stat data to the file's digest.

    Every method swallows SQLite problems: a cache that cannot answer answers "miss", and
    one that cannot store forgets. Use :meth:`open`, which returns None when the cache
    cannot be used at all.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = connection

    @classmethod
    def open(cls, path: Path) -> StatCache | None:
        """Open (creating, or re-creating when corrupt) the cache at ``path``."""
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return cls(path, _connect(path))
            except sqlite3.DatabaseError as exc:
                if attempt == 0 and _is_corrupt(exc):
                    _remove_database(path)
                    continue
                return None
            except (OSError, sqlite3.Error):
                return None
        return None

    def lookup(self, jobs: Sequence[HashJob]) -> list[FileDigest | None]:
        """The cached digest of each job whose stat data still matches (and, for a job
        asking for DVC's hashes, whose DVC hashes are cached too), else None."""
        found: list[FileDigest | None] = [None] * len(jobs)
        if self._db is None:
            return found
        encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        keys = [job.path.encode(encoding, errors) for job in jobs]  # (os.fsencode)
        rows: dict[bytes, tuple[Any, ...]] = {}
        try:
            for start in range(0, len(keys), _LOOKUP_BATCH):
                chunk = keys[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    "SELECT f.path, f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns, f.hash,"
                    " f.content_size, f.lfs, d.hashes FROM files f LEFT JOIN dvc d"
                    " ON d.path = f.path AND d.dev = f.dev AND d.ino = f.ino"
                    " AND d.size = f.size AND d.mtime_ns = f.mtime_ns AND d.ctime_ns = f.ctime_ns"
                    f" WHERE f.path IN ({marks})",
                    chunk,
                ):
                    rows[row[0]] = row[1:]
        except sqlite3.Error as exc:
            self._failed(exc)
            return found
        for i, (key, job) in enumerate(zip(keys, jobs, strict=True)):
            row = rows.get(key)
            if row is None:
                continue
            dev, ino, size, mtime_ns, ctime_ns = job.stat
            digest, content_size, lfs, dvc_text = row[5:]
            if not (
                row[:5] == (_i64(dev), _i64(ino), size, mtime_ns, ctime_ns)
                and isinstance(digest, str)
                and _CACHED_HASH.fullmatch(digest)
                and isinstance(content_size, int)
            ):
                continue
            dvc_hashes = _cached_dvc_hashes(dvc_text, job.dvc) if job.dvc else frozenset()
            if dvc_hashes is not None:
                found[i] = FileDigest(digest, content_size, bool(lfs), dvc_hashes)
        return found

    def store(self, entries: Sequence[tuple[HashJob, FileDigest]]) -> None:
        """Remember digests (one short write transaction; skipped if the cache is busy)."""
        if self._db is None:
            return
        rows = []
        dvc_rows = []
        encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        top = 1 << 63  # (_i64, inline: 20k files make 40k calls)
        for job, digest in entries:
            dev, ino, size, mtime_ns, ctime_ns = job.stat
            key = (
                job.path.encode(encoding, errors),  # (os.fsencode, without its checks)
                dev if dev < top else dev - (1 << 64),
                ino if ino < top else ino - (1 << 64),
                size,
                mtime_ns,
                ctime_ns,
            )
            rows.append((*key, digest.hash, digest.size, int(digest.lfs)))
            if digest.dvc:
                dvc_rows.append((*key, " ".join(sorted(digest.dvc))))
        rows.sort()  # in key order: B-tree inserts at the end of a page, not all over it
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)", rows
                )
                if dvc_rows:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO dvc VALUES (?,?,?,?,?,?,?)", dvc_rows
                    )
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # keep the first error (or ^C)
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._failed(exc)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _failed(self, exc: sqlite3.Error) -> None:
        """Stop using the cache for this run; delete it if it is corrupt."""
        self.close()
        if _is_corrupt(exc):
            _remove_database(self._path)


def _cached_dvc_hashes(text: object, algorithms: frozenset[str]) -> frozenset[str] | None:
    """The DVC hashes of ``algorithms`` in a ``dvc`` row's text, or None unless it has all
    of them (a row of the same stat data, or NULL when there is none)."""
    if not isinstance(text, str):
        return None
    kept = set()
    have = set()
    for value in text.split(" "):
        match = _CACHED_DVC_HASH.fullmatch(value)
        if match is None:
            return None
        algorithm = match.group(1) or match.group(2)
        have.add(algorithm)
        if algorithm in algorithms:
            kept.add(value)
    return frozenset(kept) if algorithms <= have else None


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the write
    # lock up front (waiting up to the busy timeout) instead of failing on lock upgrade.
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache needs consistency, not durability
        if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION or not _has_dvc(db):
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                db.execute("DROP TABLE IF EXISTS files")
                db.execute("DROP TABLE IF EXISTS dvc")
                db.execute(_FILES_TABLE)
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            if not _has_dvc(db):
                db.execute(_DVC_TABLE)
            db.execute("COMMIT")
        # Reading the schema touches only the first page; make sure the tables are readable.
        db.execute("SELECT 1 FROM files LIMIT 1").fetchall()
        db.execute("SELECT 1 FROM dvc LIMIT 1").fetchall()
    except BaseException:
        db.close()
        raise
    return db


def _has_dvc(db: sqlite3.Connection) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dvc'"
    return db.execute(query).fetchone() is not None


def _is_corrupt(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")


def _i64(value: int) -> int:
    """Device and inode numbers are unsigned 64-bit; SQLite integers are signed."""
    return value - (1 << 64) if value >= 1 << 63 else value

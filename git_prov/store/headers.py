"""Reading objects header first: type and size without the contents, so a checker never
reads a hostile giant it is about to refuse (``git prov fsck``, readers of fetched data)."""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING

import pygit2

if TYPE_CHECKING:
    from git_prov.store.repo import GitRepo

OBJ_COMMIT = int(pygit2.enums.ObjectType.COMMIT)
OBJ_BLOB = int(pygit2.enums.ObjectType.BLOB)


# How much of pack files libgit2 keeps mapped at once (its default: 8 GiB, in windows of
# 1 GiB). A checker reads the whole ledger once, and every mapped page counts in its
# resident memory (reading every note of 1M runs: 161 MB by default, 64 MB with this
# limit in windows of a quarter of it).
MAPPED_PACK_LIMIT = 32 << 20


def limit_mapped_packs() -> None:
    """Map at most :data:`MAPPED_PACK_LIMIT` of pack files at once in this process (for a
    pass that reads every note once: a check, a merge that gains a whole ledger)."""
    settings = pygit2.settings
    if settings.mwindow_mapped_limit > MAPPED_PACK_LIMIT:
        settings.mwindow_mapped_limit = MAPPED_PACK_LIMIT
        settings.mwindow_size = min(settings.mwindow_size, MAPPED_PACK_LIMIT // 4)


class ObjectHeaders:
    """Object lookups that never read more than a header unless asked. Nothing is
    remembered (a whole-ledger check looks up hundreds of thousands of objects once each;
    callers remember verdicts), and the process maps at most :data:`MAPPED_PACK_LIMIT` of
    pack files at once."""

    def __init__(self, repo: GitRepo):
        self.repo = repo.pygit
        limit_mapped_packs()

    def header(self, oid: str) -> tuple[int, int] | None:
        """(type, size) of an object (types: :data:`OBJ_COMMIT`, :data:`OBJ_BLOB` …), or
        None when it is missing or unreadable."""
        try:
            kind, size = self.repo.odb.read_header(pygit2.Oid(hex=oid))
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return int(kind), int(size)

    def is_commit(self, oid: str) -> bool:
        """Whether ``oid`` is a commit in this repository."""
        found = self.header(oid)
        return found is not None and found[0] == OBJ_COMMIT

    def blob(self, oid: str) -> bytes:
        """The contents of blob ``oid``; ValueError when it is not a blob, KeyError when it
        is missing. (Read raw from the object database: no object made, 40% cheaper.)"""
        kind, data = self.repo.odb.read(pygit2.Oid(hex=oid))
        if kind != OBJ_BLOB:
            raise ValueError("not a blob")
        return bytes(data)

    def blobs(self, oids: Sequence[str]) -> Generator[tuple[str, bytes | None], None, None]:
        """(oid, contents, or None when missing) of each of ``oids`` in order, streamed by
        ``git cat-file --batch``: git inflates them in a process of its own, at about a
        third of the CPU of reading them here. Check headers first: every object is read
        whole. Close the iterator when leaving it early."""
        from git_prov.store.gitcli import stream_blobs

        return stream_blobs(self.repo.path, oids)

    def exists(self, oid: str) -> bool:
        """Whether the object database has ``oid`` (no header read)."""
        return self.repo.odb.exists(pygit2.Oid(hex=oid)) is not False


def git_hash_file(path: str | os.PathLike[str]) -> str:
    """The git blob id of a file's contents (``git hash-object``)."""
    return str(pygit2.hashfile(os.fspath(path)))

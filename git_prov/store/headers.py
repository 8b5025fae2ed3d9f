"""Reading objects header first: type and size without the contents, so a checker never
reads a hostile giant it is about to refuse (``git prov fsck``, readers of fetched data)."""

from __future__ import annotations

import os
import re
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

    def headers(self, oids: Sequence[str]) -> list[tuple[int, int] | None]:
        """:meth:`header` of each of ``oids``, in order. Many ids are answered by one
        ``git cat-file --batch-check`` (git reads headers at a fraction of the cost of
        reading them here, where at most :data:`MAPPED_PACK_LIMIT` of packs are mapped at
        once); every id git does not answer plainly (missing, not a full hex id, git
        failing, a partial clone) is looked up here as :meth:`header` does."""
        if len(oids) < _BATCH_HEADERS or "extensions.partialclone" in self.repo.config:
            return [self.header(oid) for oid in oids]  # (git may fetch what is missing)
        asked = [oid for oid in oids if _FULL_HEX(oid)]
        answers = _batch_headers(self.repo.path, asked)
        found: list[tuple[int, int] | None] = []
        for oid in oids:
            known = answers.get(oid)
            found.append(known if known is not None else self.header(oid))
        return found

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


# Below this many ids a git process costs more than it saves.
_BATCH_HEADERS = 512
_FULL_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?").fullmatch
_TYPES = {
    "commit": OBJ_COMMIT,
    "tree": int(pygit2.enums.ObjectType.TREE),
    "blob": OBJ_BLOB,
    "tag": int(pygit2.enums.ObjectType.TAG),
}


def _batch_headers(path: str, oids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(type, size) of the ``oids`` ``git cat-file --batch-check`` finds (replace refs
    ignored, as pygit2 ignores them and as every git git-prov runs does: gitcli.GIT);
    empty when git fails or answers out of turn."""
    from git_prov.errors import RepositoryProblem
    from git_prov.store.gitcli import object_headers

    try:
        found = object_headers(path, oids)
    except RepositoryProblem:  # (no git to run, git failing, answers out of turn)
        return {}
    return {oid: (_TYPES[kind], size) for oid, (kind, size) in found.items() if kind in _TYPES}


def git_hash_file(path: str | os.PathLike[str]) -> str:
    """The git blob id of a file's contents (``git hash-object``)."""
    return str(pygit2.hashfile(os.fspath(path)))

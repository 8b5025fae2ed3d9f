"""What a file to hash is (:class:`HashJob`, its :class:`StatKey`), what hashing gives
(:class:`FileDigest`) and where kept bytes go while they are hashed (:class:`KeepSink`):
the types :mod:`git_prov.capture.hashing`, the stat cache, keeping and ``get`` share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class StatKey(NamedTuple):
    """The stat data a cached digest is valid for (a tuple: cheap to build and compare)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class HashJob(NamedTuple):
    """A file to hash: where to open it, its name for messages, its stat data, the DVC
    hash algorithms (``md5``, ``md5-dos2unix``) to compute as well, from the same read, and
    whether to keep its bytes (``git prov run --keep``) from that same read."""

    path: str
    name: str
    stat: StatKey
    dvc: frozenset[str] = frozenset()
    keep: bool = False


class KeepWriter(Protocol):
    """Receives a kept file's bytes as they are read; ``finish`` stores them under the hash
    of exactly those bytes, ``abort`` forgets them."""

    def snapshot(self, path: str) -> str | None:
        """A copy-on-write clone of ``path`` (a reflink: instant where the file system has
        them), to be hashed instead of ``path`` and kept as it is, with nothing written;
        None when it cannot make one."""
        ...

    def copy_target(self) -> str | None:
        """The (empty) temporary file :meth:`finish` installs, for the kernel to copy the
        file's bytes into (``copy_file_range``: they never pass through user space); the
        caller then hashes that copy. None when the bytes must come through :meth:`write`."""
        ...

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def finish(self, hash_value: str, size: int) -> None: ...

    def abort(self) -> None: ...


class KeepSink(Protocol):
    """Where kept bytes go (:class:`git_prov.store.kept.KeptStore`)."""

    def has(self, hash_value: str, size: int) -> bool:
        """Whether these bytes are kept already: a cached digest then needs no read."""
        ...

    def open(self, name: str, size_hint: int) -> KeepWriter | None:
        """A writer for one file's bytes, or None when it cannot be kept."""
        ...

    def kind_of(self, hash_value: str) -> str | None:
        """How the bytes of ``hash_value`` are kept, if they are."""
        ...


@dataclass(frozen=True)
class FileDigest:
    """What a file's bytes are.

    For an ordinary file, ``hash`` is ``sha256:<hex>`` of its bytes and ``size`` their
    count. For a git-LFS pointer file (``lfs`` true) they are the object id and size the
    pointer names, which are the SHA-256 and size of the real content.

    ``dvc`` holds DVC's hashes of the bytes (``md5:<hex>``, ``md5-dos2unix:<hex>``) for the
    algorithms the job asked for, and nothing else.
    """

    hash: str
    size: int
    lfs: bool = False
    dvc: frozenset[str] = frozenset()

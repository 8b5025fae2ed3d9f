"""Copying a kept file with the kernel: ``copy_file_range`` from the file into the store's
temporary file, while the hashing code reads that copy (capture/hashing.py,
``_copy_and_hash``).

Writing a second copy of a big file from user space (``write()`` of the buffers just
hashed) costs several times a hash on some machines (a Firecracker VM: 1.3-2.4 s of system
time per 256 MiB), while the kernel copies the same bytes (``copy_file_range``, what ``cp``
does) for ~0.1 s. So a file kept in the LFS store is copied by the kernel into the store's
temporary file, and the SHA-256 is computed by reading that copy: the bytes stored are
exactly the bytes hashed, still in one read pass. A copy of a file that changed while it
was copied could be torn (old and new bytes): the file's stat data (device, inode, size,
mtime, ctime: what git's index and the stat cache trust) must be the same when the copy
starts and once the hash is done, else the copy is discarded and the file is read the
one-pass way (hashing and writing the same buffers), as it is where the kernel cannot copy
it (another file system: ``EXDEV``; ``copy_file_range`` unsupported).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

COPY_CHUNK = 8 << 20  # bytes per copy_file_range call
AVAILABLE = hasattr(os, "copy_file_range")  # Linux (and FreeBSD); not macOS or Windows

# Test seam: called after each chunk the kernel copied (path, bytes copied so far); tests
# change the file from here to see that a changed file is never kept from a torn copy.
on_copied: Callable[[str, int], None] | None = None


class CopyFailed(Exception):
    """The kernel could not copy the file (the caller reads it the one-pass way)."""


class CopyStopped(Exception):
    """The copy was stopped: another file failed or the user interrupted."""


class KernelCopy:
    """``copy_file_range`` from one descriptor to another, COPY_CHUNK bytes a call (no byte
    passes through user space, and the call releases the GIL), either all at once
    (:meth:`all`) or on a thread of its own (:meth:`start`) that tells a reader of the copy
    how far it is (:meth:`wait`). ``stop`` set stops it at the next chunk."""

    def __init__(self, src: int, dst: int, path: str, stop: threading.Event):
        self._src, self._dst, self._path, self._stop = src, dst, path, stop
        self._done = threading.Condition()
        self.copied = 0
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """Copy the next chunk; the bytes copied (0: the end of the file)."""
        try:
            n = os.copy_file_range(self._src, self._dst, COPY_CHUNK)
        except OSError as exc:  # EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EIO, ENOSPC, …
            raise CopyFailed(exc) from exc
        if n and on_copied is not None:
            on_copied(self._path, self.copied + n)
        return n

    def all(self) -> int:
        """Copy the rest of the file here and now; the bytes copied in all."""
        while n := self.step():
            self.copied += n
            if self._stop.is_set():
                raise CopyStopped
        return self.copied

    def start(self) -> None:
        """Copy the rest of the file on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="git-prov-copy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not (self._stop.is_set() or self._closed):
                n = self.step()
                with self._done:
                    self.copied += n
                    self._finished = n == 0
                    self._done.notify_all()
                if n == 0:
                    return
            raise CopyStopped
        except BaseException as exc:  # handed to the reader, which raises it
            with self._done:
                self._error = exc
                self._done.notify_all()

    def wait(self, upto: int) -> None:
        """Return once ``upto`` bytes are copied or the copy is complete; raise what
        stopped the copy before that."""
        with self._done:
            self._done.wait_for(
                lambda: self.copied >= upto or self._finished or self._error is not None
            )
            if self._error is not None and self.copied < upto:
                raise self._error

    def close(self) -> None:
        """Stop copying (at the next chunk) and wait for the thread to be gone."""
        self._closed = True
        if self._thread is not None:
            self._thread.join()

"""Fast SHA-256 hashing of files: parallel across files, read-ahead within a big file, and a
persistent stat cache so that unchanged data is never read twice.

Throughput. A single SHA-256 stream cannot be split across cores, so a big file is read by a
second thread into a small ring of 1 MiB buffers while the calling thread hashes (hashlib and
``os.readv`` both release the GIL); copying from the page cache then overlaps with hashing
instead of adding to it. Many files are spread over a thread pool, small files in batches so
they do not pay one pool round trip each; files under :data:`SMALL_FILE_MAX` are read whole
on the calling thread, where a pool costs more than it saves. A job may also ask for DVC's
MD5 of the bytes (:class:`~git_prov.capture.dvc.DvcDigest`, to check a DVC-tracked copy):
it is computed from the same read, by a third thread for big files, so the two digests
overlap.

The stat cache (:mod:`git_prov.capture.stat_cache`) maps a path and its stat data to the
digest read last time. The jobs and digests are :mod:`git_prov.capture.digests`'s; a git-LFS
pointer is read by :mod:`git_prov.model.lfs_pointer`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from git_prov.capture import kernel_copy
from git_prov.capture.digests import FileDigest, HashJob, KeepSink, KeepWriter, StatKey
from git_prov.capture.racy import RACY_NS
from git_prov.errors import BadPath
from git_prov.model.lfs_pointer import LFS_POINTER_MAX, parse_lfs_pointer
from git_prov.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from concurrent.futures import Future

    from git_prov.capture.dvc import DvcDigest


CHUNK = 1 << 20  # read buffer; large enough that syscalls and GIL hand-offs are noise
READ_AHEAD_MIN = 8 << 20  # files this big get a read-ahead thread
READ_AHEAD_BUFFERS = 3
BATCH_BYTES = 4 << 20  # small files go to the pool in batches of about this many bytes…
BATCH_FILES = 256  # …or this many files, whichever comes first
# Files smaller than this are read whole and hashed on the calling thread, not in the pool:
# 20k × 4 KiB took 2-4× longer through the pool than in a plain loop (2 cores).
SMALL_FILE_MAX = 32 << 10
MAX_DEFAULT_WORKERS = 8

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SMALL_OPEN = os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC


def default_workers() -> int:
    """Hashing threads used when the caller does not say: one per core, at most 8."""
    return max(1, min(_usable_cpus(), MAX_DEFAULT_WORKERS))


def hash_file(path: str | os.PathLike[str]) -> str:
    """Return ``sha256:<hex>`` of the file's bytes (no cache; LFS pointers are not decoded).

    Raises :class:`BadPath` when the file cannot be opened or read.
    """
    fspath = os.fspath(path)
    try:
        size = os.stat(fspath).st_size
    except OSError as exc:
        raise _unreadable(fspath, exc) from None
    hexdigest, _, _, _ = _read_and_hash(
        fspath, fspath, size, bytearray(CHUNK), lambda n: None, threading.Event(), None
    )
    return f"sha256:{hexdigest}"


def hash_files(
    jobs: Sequence[HashJob],
    *,
    cache_path: Path | None = None,
    workers: int | None = None,
    progress: Progress = NO_PROGRESS,
    keeper: KeepSink | None = None,
) -> list[FileDigest]:
    """Digest every file of ``jobs`` (results in the same order), reading only cache misses.

    Jobs marked ``keep`` have their bytes handed to ``keeper`` from the same read that
    hashes them; one whose digest the cache knows is read only if ``keeper`` does not have
    those bytes yet. ``progress`` is told the bytes that will actually be read
    (``start("hashing", total)``) and advanced as they are. Raises :class:`BadPath` for a
    file that cannot be read.
    """
    cache = None
    if cache_path is not None and jobs:
        from git_prov.capture.stat_cache import StatCache

        cache = StatCache.open(cache_path)
    try:
        found: list[FileDigest | None] = (
            cache.lookup(jobs) if cache is not None else [None] * len(jobs)
        )
        if keeper is not None:
            for i, cached in enumerate(found):
                if (
                    cached is not None
                    and jobs[i].keep
                    and not cached.lfs
                    and not keeper.has(cached.hash, cached.size)
                ):
                    found[i] = None  # known, but not kept yet: read it once, keeping it
        # One read per file even when it is reached by several names (hard links, links),
        # computing what any of the names asked for; but not on file systems that report
        # no inode numbers.
        missing = [i for i, digest in enumerate(found) if digest is None]
        groups: list[list[int]] | None = None
        if len({jobs[i].stat for i in missing}) < len(missing):  # (else: one name each)
            todo: dict[StatKey | int, list[int]] = {}
            for i in missing:
                key = jobs[i].stat
                todo.setdefault(key if key.ino else i, []).append(i)
            groups = list(todo.values())
        to_read = (
            [jobs[i] for i in missing]
            if groups is None
            else [
                jobs[same[0]]
                if len(same) == 1
                else jobs[same[0]]._replace(
                    dvc=frozenset().union(*(jobs[i].dvc for i in same)),
                    keep=any(jobs[i].keep for i in same),
                )
                for same in groups
            ]
        )
        progress.start("hashing", sum(job.stat.size for job in to_read))
        # Taken before reading anything: a file whose mtime is not safely older than the
        # moment we started reading it could change again without its stat data changing.
        started_ns = time.time_ns()
        try:
            fresh = _hash_all(to_read, workers or default_workers(), progress, keeper)
        finally:
            progress.finish()
        settled_ns = started_ns - RACY_NS
        cacheable: list[tuple[HashJob, FileDigest]] = []
        if groups is None:
            for i, job, (digest, stable) in zip(missing, to_read, fresh, strict=True):
                found[i] = _only(digest, job.dvc) if digest.dvc else digest
                if stable and job.stat.mtime_ns <= settled_ns:
                    cacheable.append((job, digest))
        else:
            for same, (digest, stable) in zip(groups, fresh, strict=True):
                for i in same:
                    job = jobs[i]
                    found[i] = _only(digest, job.dvc)
                    if stable and job.stat.mtime_ns <= settled_ns:
                        cacheable.append((job, digest))
        if cache is not None and cacheable:
            cache.store(cacheable)
    finally:
        if cache is not None:
            cache.close()
    return [digest for digest in found if digest is not None]


def _only(digest: FileDigest, algorithms: frozenset[str]) -> FileDigest:
    """``digest`` with the DVC hashes of ``algorithms`` only: what a job gets back does not
    depend on what other names of the file, or earlier runs, asked for."""
    if not digest.dvc:
        return digest
    kept = frozenset(h for h in digest.dvc if h.partition(":")[0] in algorithms)
    return digest if kept == digest.dvc else replace(digest, dvc=kept)


# --- hashing ------------------------------------------------------------------------------


class _Cancelled(Exception):
    """Another file failed or the user interrupted: stop reading."""


def _hash_all(
    jobs: Sequence[HashJob], workers: int, progress: Progress, keeper: KeepSink | None = None
) -> list[tuple[FileDigest, bool]]:
    """Hash ``jobs``: (digest, whether the file stayed unchanged while it was read)."""
    results: list[tuple[FileDigest, bool] | None] = [None] * len(jobs)
    small: list[int] = []
    others: list[int] = []
    for i, job in enumerate(jobs):
        (small if _is_small(job) else others).append(i)
    tasks = _plan(jobs, others)
    stop = threading.Event()
    meter = _Meter()

    def report(amount: int) -> None:  # at most one progress call per MiB
        meter.add(amount)
        if meter.pending() >= CHUNK:
            progress.advance(meter.take())

    if workers <= 1 or len(tasks) <= 1:
        buffer = bytearray(CHUNK)
        for task in tasks:
            for i in task:
                results[i] = _digest(jobs[i], buffer, report, stop, keeper)
        _digest_small_files(jobs, small, results, report)
        progress.advance(meter.take())
        return [r for r in results if r is not None]

    local = threading.local()

    def run(task: list[int]) -> None:
        buffer: bytearray | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = bytearray(CHUNK)
        for i in task:
            if stop.is_set():
                raise _Cancelled
            results[i] = _digest(jobs[i], buffer, meter.add, stop, keeper)

    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(
        max_workers=min(workers, len(tasks)), thread_name_prefix="git-prov-hash"
    ) as pool:
        futures: list[Future[None]] = [pool.submit(run, task) for task in tasks]
        try:
            # Small files are read here meanwhile: for them a pool costs more than it saves.
            _digest_small_files(jobs, small, results, report)
            pending: set[Future[None]] = set(futures)
            while pending:
                # Wake up regularly: progress is reported from this thread only, so that
                # Progress implementations need not be thread-safe.
                done, pending_now = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                pending = set(pending_now)
                progress.advance(meter.take())
                for future in done:
                    error = future.exception()
                    if error is not None and not isinstance(error, _Cancelled):
                        raise error
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise
    return [r for r in results if r is not None]


def _plan(jobs: Sequence[HashJob], indices: Sequence[int]) -> list[list[int]]:
    """Group the job ``indices`` into pool tasks: big files alone, small ones batched;
    biggest first, so that the last task to finish is a short one."""
    order = sorted(indices, key=lambda i: jobs[i].stat.size, reverse=True)
    tasks: list[list[int]] = []
    batch: list[int] = []
    batch_bytes = 0
    for i in order:
        size = jobs[i].stat.size
        if size >= BATCH_BYTES:
            tasks.append([i])
            continue
        batch.append(i)
        batch_bytes += size
        if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            tasks.append(batch)
            batch, batch_bytes = [], 0
    if batch:
        tasks.append(batch)
    return tasks


def _is_small(job: HashJob) -> bool:
    """A file read and hashed in one go on the calling thread (:func:`_digest_small_files`)."""
    return job.stat.size < SMALL_FILE_MAX and not job.dvc and not job.keep


def _digest_small_files(
    jobs: Sequence[HashJob],
    indices: Sequence[int],
    results: list[tuple[FileDigest, bool] | None],
    report: Callable[[int], None],
) -> None:
    """:func:`_digest` of each small file, without DVC's hashes or keeping: one ``read``
    of the whole file, hashed at once. A file is read on to its end only when, after that
    read, it is not the size the read found (it grew, or the read was short)."""
    if not indices:
        report(0)
        return
    import hashlib  # (imported when first used: get's kernel copy loads this module, not it)

    sha256, is_regular, read, fstat = hashlib.sha256, stat.S_ISREG, os.read, os.fstat
    unreported = 0
    for i in indices:
        job = jobs[i]
        try:
            # O_NONBLOCK: should a FIFO have taken the file's place, opening it must not hang.
            fd = os.open(job.path, _SMALL_OPEN)
        except OSError as exc:
            raise _unreadable(job.name, exc) from None
        try:
            try:
                if not is_regular(fstat(fd).st_mode):
                    shown = job.name if job.name.isprintable() else repr(job.name)
                    raise BadPath(
                        f"{shown}: not a regular file", "declare the files the command reads"
                    )
                want = job.stat.size + 1
                data = read(fd, want)
                st = fstat(fd)
                if len(data) == want or st.st_size != len(data):
                    more = [data]
                    while chunk := read(fd, CHUNK):
                        more.append(chunk)
                    data = b"".join(more) if len(more) > 1 else data
                    st = fstat(fd)
            except OSError as exc:
                raise _unreadable(job.name, exc) from None
        finally:
            os.close(fd)
        size = len(data)
        # (StatKey.of(st), as a plain tuple: it compares equal)
        after = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        stable = after == job.stat and size == job.stat.size
        pointer = parse_lfs_pointer(data) if size < LFS_POINTER_MAX else None
        if pointer is not None:
            digest = FileDigest(f"sha256:{pointer[0]}", pointer[1], lfs=True)
        else:
            digest = FileDigest(f"sha256:{sha256(data).hexdigest()}", size)
        results[i] = digest, stable
        unreported += size
        if unreported >= CHUNK:  # (the progress meter takes a lock: not once per file)
            report(unreported)
            unreported = 0
    report(unreported)


class _Meter:
    """Bytes read by worker threads, handed to the main thread's progress in deltas."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read = 0
        self._reported = 0

    def add(self, amount: int) -> None:
        with self._lock:
            self._read += amount

    def pending(self) -> int:
        return self._read - self._reported

    def take(self) -> int:
        with self._lock:
            delta = self._read - self._reported
            self._reported = self._read
        return delta


def _dvc_digest(job: HashJob) -> DvcDigest | None:
    """The MD5 a DVC-tracked file is checked against (DVC's module is loaded only then:
    `get` reads this module for the stat cache's types)."""
    if not job.dvc:
        return None
    from git_prov.capture.dvc import DvcDigest

    return DvcDigest(job.dvc, job.stat.size)


def _digest(
    job: HashJob,
    buffer: bytearray,
    report: Callable[[int], None],
    stop: threading.Event,
    keeper: KeepSink | None = None,
) -> tuple[FileDigest, bool]:
    dvc = _dvc_digest(job)
    writer = keeper.open(job.name, job.stat.size) if keeper is not None and job.keep else None
    try:
        clone = writer.snapshot(job.path) if writer is not None else None
        if clone is not None:
            # The clone is what is hashed and kept: one read, nothing copied.
            hexdigest, size, head, _ = _read_and_hash(
                clone, job.name, job.stat.size, buffer, report, stop, dvc
            )
            try:
                after = StatKey.of(os.stat(job.path))
            except OSError as exc:
                raise _unreadable(job.name, exc) from None
        else:
            copied = None
            target = writer.copy_target() if writer is not None and kernel_copy.AVAILABLE else None
            if target is not None:
                # The kernel copies the file into the store, and the copy is what is hashed.
                copied = _copy_and_hash(job, target, buffer, report, stop, dvc)
                if copied is None:  # no kernel copy here, or the file changed during it
                    assert writer is not None and keeper is not None
                    writer.abort()
                    writer = keeper.open(job.name, job.stat.size)
                    dvc = _dvc_digest(job)
            if copied is not None:
                hexdigest, size, head, after = copied
            else:  # one read pass, hashing and handing the same bytes to the writer
                hexdigest, size, head, after = _read_and_hash(
                    job.path, job.name, job.stat.size, buffer, report, stop, dvc, writer
                )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    stable = after == job.stat and size == job.stat.size
    dvc_hashes = dvc.values() if dvc is not None else frozenset()
    pointer = parse_lfs_pointer(head) if head is not None else None
    if pointer is not None:
        if writer is not None:
            writer.abort()  # a pointer file: its content is in git-LFS already
        return FileDigest(f"sha256:{pointer[0]}", pointer[1], lfs=True, dvc=dvc_hashes), stable
    if writer is not None:
        # The bytes kept are the bytes hashed, even if the file changed while it was read.
        writer.finish(f"sha256:{hexdigest}", size)
    return FileDigest(f"sha256:{hexdigest}", size, dvc=dvc_hashes), stable


def _read_and_hash(
    path: str,
    name: str,
    size_hint: int,
    buffer: bytearray,
    report: Callable[[int], None],
    stop: threading.Event,
    dvc: DvcDigest | None,
    writer: KeepWriter | None = None,
) -> tuple[str, int, bytes | None, StatKey]:
    """(sha256 hex, bytes read, the whole content if under 1 KiB, stat after reading);
    ``dvc`` and ``writer``, when given, are fed the same bytes."""
    fd, _ = _open_regular(path, name)
    try:
        try:
            if size_hint >= READ_AHEAD_MIN and _usable_cpus() > 1:
                hexdigest, size = _hash_read_ahead(fd, report, stop, dvc, writer)
                head = None
            else:
                hexdigest, size, head = _hash_sequential(fd, buffer, report, stop, dvc, writer)
            after = StatKey.of(os.fstat(fd))
        except OSError as exc:
            raise _unreadable(name, exc) from None
    finally:
        os.close(fd)
    return hexdigest, size, head, after


def _open_regular(path: str, name: str) -> tuple[int, StatKey]:
    """A read-only descriptor of the regular file ``path`` and its stat data when opened
    (BadPath when it cannot be read or is not a regular file)."""
    try:
        # O_NONBLOCK: should a FIFO have taken the file's place, opening it must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(name, exc) from None
    try:
        try:
            st = os.fstat(fd)
        except OSError as exc:
            raise _unreadable(name, exc) from None
        if not stat.S_ISREG(st.st_mode):
            shown = name if name.isprintable() else repr(name)
            raise BadPath(f"{shown}: not a regular file", "declare the files the command reads")
    except BaseException:
        os.close(fd)
        raise
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # advice only; some file systems refuse it
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return fd, StatKey.of(st)


def _copy_and_hash(
    job: HashJob,
    target: str,
    buffer: bytearray,
    report: Callable[[int], None],
    stop: threading.Event,
    dvc: DvcDigest | None,
) -> tuple[str, int, bytes | None, StatKey] | None:
    """Copy ``job``'s file into ``target`` with the kernel and hash the copy: (sha256 hex,
    size, the whole content if under 1 KiB, stat data) as :func:`_read_and_hash` gives
    them. None when the kernel cannot copy the file or its stat data changed between the
    start of the copy and the end of the hash: ``target`` then holds bytes not to keep
    (the caller reads the file the one-pass way instead; see capture/kernel_copy.py).

    A big file is copied by a thread of its own while this one hashes the part already
    copied (a reader thread in between, as for any big file): copying overlaps hashing.
    """
    fd, before = _open_regular(job.path, job.name)
    try:
        try:
            out = os.open(target, os.O_WRONLY | _O_CLOEXEC)
        except OSError:
            return None
        try:
            back = os.open(target, os.O_RDONLY | _O_CLOEXEC)
        except OSError:
            os.close(out)
            return None
        copier = kernel_copy.KernelCopy(fd, out, job.path, stop)
        try:
            head: bytes | None = None
            if before.size >= READ_AHEAD_MIN and _usable_cpus() > 1:
                copier.copied = copier.step()  # (where the kernel cannot copy, it fails here)
                copier.start()
                hexdigest, size = _hash_read_ahead(back, report, stop, dvc, ready=copier.wait)
            else:
                copier.all()
                hexdigest, size, head = _hash_sequential(back, buffer, report, stop, dvc)
            after = StatKey.of(os.fstat(fd))
        except kernel_copy.CopyFailed:
            return None
        except kernel_copy.CopyStopped:
            raise _Cancelled from None
        except OSError as exc:  # reading the copy back
            raise _unreadable(job.name, exc) from None
        finally:
            copier.close()  # (before the descriptors it copies between are closed)
            os.close(back)
            os.close(out)
    finally:
        os.close(fd)
    if after != before or size != before.size:
        return None
    return hexdigest, size, head, after


def _hash_sequential(
    fd: int,
    buffer: bytearray,
    report: Callable[[int], None],
    stop: threading.Event,
    dvc: DvcDigest | None,
    writer: KeepWriter | None = None,
) -> tuple[str, int, bytes | None]:
    import hashlib

    digest = hashlib.sha256()
    view = memoryview(buffer)
    total = 0
    head: bytes | None = None
    while True:
        n = _fill(fd, view)
        if total == 0 and n < LFS_POINTER_MAX:
            head = bytes(view[:n])  # n < CHUNK: this is the whole file
        if n:
            digest.update(view[:n])
            if dvc is not None:
                dvc.update(buffer if n == len(buffer) else view[:n])
            if writer is not None:
                writer.write(view[:n])
            report(n)
            total += n
        if n < len(view):
            return digest.hexdigest(), total, head
        if stop.is_set():
            raise _Cancelled


def _hash_read_ahead(
    fd: int,
    report: Callable[[int], None],
    stop: threading.Event,
    dvc: DvcDigest | None,
    writer: KeepWriter | None = None,
    ready: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Hash while a second thread reads the next buffers: reading overlaps hashing. With
    ``dvc``, a third thread feeds it each buffer SHA-256 is done with: MD5 overlaps too.
    With ``writer``, the same third thread hands it each buffer once hashed (the kept bytes
    are the hashed bytes): writing the copy overlaps hashing too. With ``ready``, the file
    is still being written (a kernel copy): the reader calls ``ready(end)`` before reading
    up to offset ``end``, which returns once those bytes are there (or the file is
    complete)."""
    import hashlib
    import queue

    following = dvc is not None or writer is not None
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
    for _ in range(READ_AHEAD_BUFFERS + 2 * following):
        free.put(bytearray(CHUNK))

    def read_ahead() -> None:
        offset = 0
        try:
            while (buffer := free.get()) is not None:
                if ready is not None:
                    ready(offset + CHUNK)
                n = _fill(fd, memoryview(buffer))
                offset += n
                full.put((buffer, n))
                if n < CHUNK:
                    return
        except BaseException as exc:  # handed to the hashing thread, which raises it
            full.put(exc)

    handed: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failed: list[BaseException] = []

    def follow() -> None:  # DVC's hashes and the kept copy, one buffer behind SHA-256
        while (item := handed.get()) is not None:
            buffer, n = item
            if not failed:
                try:
                    view = buffer if n == len(buffer) else memoryview(buffer)[:n]
                    if dvc is not None:
                        dvc.update(view)
                    if writer is not None:
                        writer.write(view)
                except BaseException as exc:  # handed to the hashing thread, which raises it
                    failed.append(exc)
            free.put(buffer)

    reader = threading.Thread(target=read_ahead, name="git-prov-read-ahead", daemon=True)
    reader.start()
    follower: threading.Thread | None = None
    if following:
        follower = threading.Thread(target=follow, name="git-prov-follow", daemon=True)
        follower.start()
    digest = hashlib.sha256()
    total = 0
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buffer, n = item
            if n:
                digest.update(memoryview(buffer)[:n])
                report(n)
                total += n
            if follower is not None:
                handed.put((buffer, n))
            if n < CHUNK:
                break
            if stop.is_set():
                raise _Cancelled
            if follower is None:
                free.put(buffer)
    finally:
        free.put(None)  # the reader stops at its next buffer; it must be gone before close()
        if follower is not None:
            handed.put(None)
            follower.join()
        reader.join()
    if failed:
        raise failed[0]
    return digest.hexdigest(), total


@functools.cache
def _usable_cpus() -> int:
    """CPUs this process may run on: read-ahead only pays with a second one."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _fill(fd: int, view: memoryview) -> int:
    """Read until ``view`` is full or the file ends; the count read (short only at EOF)."""
    filled = 0
    size = len(view)
    while filled < size:
        n = os.readv(fd, [view[filled:]])
        if n == 0:
            break
        filled += n
    return filled


def _unreadable(name: str, exc: OSError) -> BadPath:
    shown = name if name.isprintable() else repr(name)
    if isinstance(exc, PermissionError):
        return BadPath(
            f"{shown}: permission denied",
            "make the file readable, or leave it out of the declared data",
        )
    if isinstance(exc, FileNotFoundError):
        return BadPath(
            f"{shown}: disappeared while it was being hashed",
            "record the run again once the data stops changing",
        )
    return BadPath(f"{shown}: cannot be read ({exc.strerror or exc})")

"""The local git-LFS store and the ``git lfs`` program: bytes kept by content, moved by LFS.

A git-LFS object id is the SHA-256 of the content — the hash git-prov's data manifests
already use — and the local store's layout is part of the LFS specification
(``<git common dir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>``), so git-prov writes kept
files there itself and leaves the network to ``git lfs``: ``git lfs push --object-id``
uploads named objects, ``git lfs fetch`` downloads them. Every git host that serves LFS
(GitHub, GitLab, Gitea, Bitbucket; a ``file://`` or path remote through git-lfs's
standalone-file agent) then holds them; git-prov runs no server of its own.

How a file gets into the store (docs/integrations.md, "Kept bytes and git-LFS"): a reflink
(``FICLONE``: copy-on-write, instant on btrfs/XFS) where the file system can make one,
else a copy the kernel makes (``copy_file_range``), either read back and hashed; where
the kernel cannot copy (another file system), a copy hashed while it is written. Each
must hash to the object id the caller recorded, or nothing is stored. (``--keep`` hashes
the kernel's copy while it is being made: capture/hashing.py.) A hard link is used only
for a file that has no write bit: a hard link shares the inode, so an in-place write to
the user's file (``open(path, "w")`` truncates the same inode) would change the stored
object too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from git_prov.errors import (
    EXIT_BAD_PATH,
    EXIT_NOT_FOUND,
    EXIT_REMOTE,
    EXIT_REPOSITORY,
    ProvError,
    RepositoryProblem,
)
from git_prov.model.lfs_pointer import LFS_SPEC
from git_prov.store.gitcli import NO_GIT, run_git

_OID = re.compile(r"[0-9a-f]{64}")
_FICLONE = 0x40049409  # <linux/fs.h>: _IOW(0x94, 9, int)
_CHUNK = 8 << 20
PUSH_BATCH = 500  # object ids per `git lfs push` (65 bytes each: far below ARG_MAX)
INSTALL_HINT = (
    "install git-lfs (Debian/Ubuntu: `apt install git-lfs`, macOS: `brew install git-lfs`, "
    "others: https://git-lfs.com) and run `git lfs install` once"
)


class LfsError(ProvError):
    """git-LFS cannot do what was asked: not installed, no LFS endpoint on the remote,
    objects missing there, refused credentials, or a file that changed while it was kept.

    ``missing`` names the object ids that could not be had (from the remote, or from the
    local store for an upload), so a caller can say which files they are.
    """

    exit_code = EXIT_REMOTE

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        exit_code: int | None = None,
        missing: Sequence[str] = (),
    ):
        super().__init__(message, hint, exit_code=exit_code)
        self.missing = tuple(missing)


def _check_oid(oid: str) -> str:
    # An oid may come from a manifest anyone wrote, and it becomes a path: nothing but 64
    # lowercase hex digits passes (no "..", no "/").
    if not isinstance(oid, str) or _OID.fullmatch(oid) is None:
        raise LfsError(
            f"not a git-LFS object id: {oid!r:.80}",  # (repr: no control characters)
            "an object id is the SHA-256 of the content: 64 lowercase hex digits",
            exit_code=EXIT_BAD_PATH,
        )
    return oid


def lfs_object_path(common_dir: Path, oid: str) -> Path:
    """Where the LFS store keeps object ``oid``: ``<common>/lfs/objects/aa/bb/<oid>``.

    The layout of the LFS specification and of ``git lfs``'s own store, so each finds
    what the other stored. ``oid`` must be 64 lowercase hex digits (LfsError otherwise).
    """
    _check_oid(oid)
    return common_dir / "lfs" / "objects" / oid[0:2] / oid[2:4] / oid


def has_lfs_object(common_dir: Path, oid: str, size: int) -> bool:
    """Whether the local store holds object ``oid`` with ``size`` bytes.

    Like ``git lfs``, this trusts the store and checks the size only: objects are written
    once, verified before they are renamed into place, and never changed.
    """
    if not isinstance(oid, str) or _OID.fullmatch(oid) is None:
        return False  # (no store holds what is not an object id)
    try:
        st = lfs_object_path(common_dir, oid).stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


def lfs_pointer(oid: str, size: int) -> bytes:
    """The pointer file that stands for object ``oid`` of ``size`` bytes in a git tree:
    the three lines of the LFS specification."""
    _check_oid(oid)
    if size < 0:
        raise ValueError(f"a size cannot be negative: {size}")
    return f"version {LFS_SPEC}\noid sha256:{oid}\nsize {size}\n".encode()


# ---- into the local store --------------------------------------------------------------------

OBJECT_MODE = 0o444  # objects never change: read-only, so that nothing edits one in place


class LfsObjectWriter:
    """A new object of the local LFS store: the one place git-prov makes an object file.

    Its bytes go to a private temporary file under ``<common>/lfs/tmp`` — a reflink of a
    source (:meth:`reflink`, copy-on-write, where the file system can), a hard link of a
    read-only source (:meth:`link`), a copy the kernel makes (:meth:`kernel_copy`, or
    ``copy_file_range`` into :attr:`path` by the caller), or written as they are read and
    hashed (:meth:`write`) — and :meth:`install` renames it into place under the object id the
    caller computed from exactly those bytes. :meth:`discard` (or an exception in a
    ``with`` block) leaves nothing behind.
    """

    def __init__(self, common_dir: Path):
        self.common_dir = common_dir
        tmp_dir = common_dir / "lfs" / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        import tempfile  # (here: `get` loads this module and never writes an object)

        fd, name = tempfile.mkstemp(prefix="git-prov-", suffix=".prov", dir=tmp_dir)
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)
        self._linked = False

    def __enter__(self) -> LfsObjectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    @property
    def file(self) -> BinaryIO:
        """The temporary file, open for writing."""
        assert self._file is not None, "the object was installed or discarded"
        return self._file

    def reflink(self, source_fd: int) -> bool:
        """Make the temporary file a copy-on-write clone of ``source_fd`` (no bytes
        copied); False when the file system cannot."""
        try:
            fcntl.ioctl(self.file.fileno(), _FICLONE, source_fd)
        except OSError:
            return False
        return True

    def link(self, source: Path, opened: os.stat_result) -> bool:
        """Make the temporary file another name of ``source`` if it is still the inode
        that was opened (a rename in between must not link another file); False when
        hard links are not possible (another file system), leaving a fresh empty file."""
        self.file.close()
        self._file = None
        try:
            self.path.unlink()
            os.link(source, self.path)
        except OSError:
            self._reopen()
            return False
        linked = os.stat(self.path)
        if (linked.st_dev, linked.st_ino) == (opened.st_dev, opened.st_ino):
            self._linked = True
            return True
        self.path.unlink()
        self._reopen()
        return False

    def kernel_copy(self, source_fd: int) -> bool:
        """Have the kernel copy ``source_fd`` from its start to its end into the temporary
        file (``copy_file_range``, as ``cp`` does: no byte passes through user space);
        False when it cannot (another file system, not supported), leaving the file empty
        and ``source_fd`` at its start."""
        if not hasattr(os, "copy_file_range"):  # (Linux and FreeBSD have it)
            return False
        out = self.file.fileno()
        try:
            while os.copy_file_range(source_fd, out, _CHUNK):
                pass
        except OSError:
            os.ftruncate(out, 0)
            os.lseek(out, 0, os.SEEK_SET)
            os.lseek(source_fd, 0, os.SEEK_SET)
            return False
        return True

    def _reopen(self) -> None:
        self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed by install

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes (those the caller is hashing)."""
        self.file.write(data)

    def install(self, oid: str, size: int) -> Path | None:
        """Rename the bytes into the store as object ``oid`` (``size`` bytes); the object's
        path, or None when the store already held it (the temporary file is dropped)."""
        target = lfs_object_path(self.common_dir, oid)
        if self._file is not None:
            self._file.close()
            self._file = None
        if has_lfs_object(self.common_dir, oid, size):
            self.discard()
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        if self._linked:
            # The store gets one more name of a read-only inode (its mode is the user's);
            # a concurrent keeper of the same object may have won the race: as good.
            with contextlib.suppress(FileExistsError):
                os.link(self.path, target)
            self.discard()
        else:
            os.chmod(self.path, OBJECT_MODE)
            os.replace(self.path, target)
        return target

    def discard(self) -> None:
        """Forget the bytes (nothing when they were installed)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def store_in_lfs(common_dir: Path, source: Path, oid: str, size: int) -> None:
    """Put the bytes of ``source`` into the local LFS store as object ``oid``.

    Nothing is done when the store already holds the object. Otherwise
    :class:`LfsObjectWriter` takes the bytes — reflinked where the file system can
    (copy-on-write: later writes to ``source`` do not reach the store), hard-linked when
    ``source`` has no write bit (nobody can change it in place), copied by the kernel
    otherwise (or, where it cannot, from user space while hashed) — they are hashed (read
    back, or while copying), and installed only when they hash to ``oid``
    and have ``size`` bytes. A file that changed since its hash was taken raises LfsError
    (exit 5) and leaves nothing behind.
    """
    if has_lfs_object(common_dir, _check_oid(oid), size):
        return
    with LfsObjectWriter(common_dir) as writer:
        try:
            digest, length = _place(source, writer)
        except OSError as exc:
            raise LfsError(
                f"cannot keep {source}: {exc.strerror or exc}",
                "check that the file exists and can be read",
                exit_code=EXIT_BAD_PATH,
            ) from None
        if digest != oid or length != size:
            raise LfsError(
                f"{source} changed while it was being kept: it no longer holds the recorded "
                f"bytes (sha256:{oid}, {size} bytes)",
                "record the run again once nothing writes to the file",
                exit_code=EXIT_BAD_PATH,
            )
        writer.install(oid, size)


def _place(source: Path, writer: LfsObjectWriter) -> tuple[str, int]:
    """Bring ``source``'s bytes into ``writer``; the SHA-256 and length of the bytes it
    now holds."""
    with open(source, "rb", buffering=0) as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if writer.reflink(src.fileno()):
            return _hash_file(writer.path)
        if st.st_mode & 0o222 == 0 and writer.link(source, st):
            return _hash_file(writer.path)
        if writer.kernel_copy(src.fileno()):
            return _hash_file(writer.path)
        return copy_hashing(src, writer.file)


def copy_hashing(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` in one read pass, hashing exactly the bytes written.

    A thread writes while this one hashes (both release the GIL): the copy costs about
    the larger of the two, not their sum.
    """
    import hashlib
    import queue
    import threading

    digest = hashlib.sha256()
    length = 0
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[OSError] = []

    def write() -> None:
        while (chunk := chunks.get()) is not None:
            if not failure:
                try:
                    dst.write(chunk)
                except OSError as exc:
                    failure.append(exc)

    writer = threading.Thread(target=write, name="git-prov-lfs-copy", daemon=True)
    writer.start()
    try:
        while not failure and (chunk := src.read(_CHUNK)):
            chunks.put(chunk)
            digest.update(chunk)
            length += len(chunk)
    finally:
        chunks.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return digest.hexdigest(), length


def _hash_file(path: Path) -> tuple[str, int]:
    import hashlib

    digest = hashlib.sha256()
    length = 0
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
            length += n
    return digest.hexdigest(), length


# ---- the git lfs program ---------------------------------------------------------------------


def lfs_available() -> bool:
    """Whether the ``git lfs`` program can be run."""
    try:
        proc = subprocess.run(
            ["git", "lfs", "version"], stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
    except OSError:
        return False
    return proc.returncode == 0 and proc.stdout.startswith(b"git-lfs/")


def _require_lfs() -> None:
    if not lfs_available():
        raise LfsError("git-lfs is not installed", INSTALL_HINT, exit_code=EXIT_REPOSITORY)


def _git(
    cwd: Path, args: Sequence[str], *, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    # The one git-binary layer runs it; a missing git binary is an LFS error here, since
    # the caller asked for an LFS transfer.
    try:
        return run_git(cwd, args, input=input, env=env, check=False)
    except RepositoryProblem:
        raise LfsError(NO_GIT, exit_code=EXIT_REPOSITORY) from None


def push_lfs_objects(work_tree: Path, remote: str, oids: Sequence[str]) -> None:
    """Upload the named objects from the local LFS store to ``remote``'s LFS endpoint.

    Runs ``git lfs push --object-id <remote> <oid>…``, :data:`PUSH_BATCH` ids per command
    (``--stdin`` would need git-lfs 3; distributions still ship 2.x); the server skips
    objects it has. Raises LfsError for objects missing from the local store
    (``missing``), a remote without an LFS endpoint, refused credentials, an unknown
    remote, and git-lfs not installed.
    """
    wanted = list(dict.fromkeys(_check_oid(oid) for oid in oids))
    if not wanted:
        return
    _require_lfs()
    for start in range(0, len(wanted), PUSH_BATCH):
        batch = wanted[start : start + PUSH_BATCH]
        proc = _git(work_tree, ["lfs", "push", "--object-id", remote, *batch])
        if proc.returncode != 0:
            raise _lfs_problem(
                "uploading git-LFS objects to", remote, proc.stderr, batch, push=True
            )


def fetch_lfs_objects(work_tree: Path, remote: str, objects: Sequence[tuple[str, int]]) -> None:
    """Download the named objects ``(oid, size)`` from ``remote`` into the local LFS store.

    Objects already present are not asked for. git-lfs 3.3 has no "fetch these object ids"
    command, and ``git lfs smudge`` fetches one object per process from the default remote
    and exits 0 when the object is missing; so the pointers of the wanted objects are put
    in a throwaway tree — written to a temporary object directory, never to the
    repository's — and ``git lfs fetch <remote> <commit>`` downloads them in one batch
    (with no include/exclude filters). Afterwards every object must be in the store:
    missing ones raise LfsError naming the remote and the ids (``missing``).
    """
    common_dir = _common_dir(work_tree)
    wanted: dict[str, int] = {}
    for oid, size in objects:
        _check_oid(oid)
        if not has_lfs_object(common_dir, oid, size):
            wanted[oid] = size
    if not wanted:
        return
    _require_lfs()
    objects_dir = _git(work_tree, ["rev-parse", "--path-format=absolute", "--git-path", "objects"])
    (common_dir / "lfs" / "tmp").mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="prov-fetch-", dir=common_dir / "lfs" / "tmp") as tmp:
        env = {
            "GIT_OBJECT_DIRECTORY": tmp,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects_dir.stdout.decode().strip(),
            # commit-tree needs an identity; the commit lives only in the throwaway store.
            "GIT_AUTHOR_NAME": "git-prov",
            "GIT_AUTHOR_EMAIL": "git-prov@localhost",
            "GIT_COMMITTER_NAME": "git-prov",
            "GIT_COMMITTER_EMAIL": "git-prov@localhost",
            "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z",
            "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z",
        }
        commit = _pointer_commit(work_tree, Path(tmp), wanted, env)
        proc = _git(work_tree, ["lfs", "fetch", "-I", "", "-X", "", remote, commit], env=env)
    absent = [oid for oid, size in wanted.items() if not has_lfs_object(common_dir, oid, size)]
    if not absent:  # (a failure that still brought every object is no failure here)
        return
    if proc.returncode == 0:
        raise _missing_on_remote(remote, absent)
    raise _lfs_problem("downloading git-LFS objects from", remote, proc.stderr, absent)


def _common_dir(work_tree: Path) -> Path:
    proc = _git(work_tree, ["rev-parse", "--path-format=absolute", "--git-common-dir"])
    if proc.returncode != 0:
        raise LfsError(
            f"not a git repository: {work_tree}",
            "run this inside a git repository",
            exit_code=EXIT_REPOSITORY,
        )
    return Path(proc.stdout.decode().strip())


def _pointer_commit(work_tree: Path, tmp: Path, wanted: dict[str, int], env: dict[str, str]) -> str:
    """A commit whose tree holds one pointer file per wanted object (named by its oid)."""
    pointers = tmp / "pointers"
    pointers.mkdir()
    for oid, size in wanted.items():
        (pointers / oid).write_bytes(lfs_pointer(oid, size))
    names = list(wanted)
    paths = "".join(f"{pointers / oid}\n" for oid in names).encode()
    blobs = _checked(
        _git(
            work_tree, ["hash-object", "-w", "--no-filters", "--stdin-paths"], input=paths, env=env
        )
    ).split()
    listing = "".join(
        f"100644 blob {blob}\t{oid}\n" for blob, oid in zip(blobs, names, strict=True)
    )
    tree = _checked(_git(work_tree, ["mktree"], input=listing.encode(), env=env)).strip()
    message = b"git-prov: git-LFS objects to fetch\n"
    return _checked(_git(work_tree, ["commit-tree", tree], input=message, env=env)).strip()


def _checked(proc: subprocess.CompletedProcess[bytes]) -> str:
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LfsError(
            f"git failed while preparing a git-LFS download: {detail[-1] if detail else '?'}",
            exit_code=EXIT_REPOSITORY,
        )
    return proc.stdout.decode()


def _missing_on_remote(remote: str, absent: Sequence[str]) -> LfsError:
    return LfsError(
        f"{remote} does not have {len(absent)} git-LFS object(s): {_some(absent)}",
        "they were never uploaded there: `git prov push` in a clone that has them",
        exit_code=EXIT_NOT_FOUND,
        missing=absent,
    )


def _some(oids: Sequence[str]) -> str:
    return ", ".join(oids[:5]) + (f" and {len(oids) - 5} more" if len(oids) > 5 else "")


# What git-lfs 3.3 says (stderr) for each kind of failure, lowercased.
_AUTH = (
    "authentication required",
    "authorization error",
    "401",
    "403",
    "forbidden",
    "unauthorized",
    "credentials",
    "terminal prompts disabled",
)
_NO_ENDPOINT = (
    "repository or object not found",
    "404",
    "git-lfs-authenticate",
    "missing protocol",
    "unsupported protocol",
    "not a git repository",
    "endpoint",
)
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "connection reset",
    "tls handshake",
)
_MISSING_LOCAL = "unable to stat local media path"
_MISSING_REMOTE = ("remote missing object", "object does not exist")
_OID_IN = re.compile(r"[0-9a-f]{64}")


def _lfs_problem(
    action: str, remote: str, stderr: bytes, wanted: Sequence[str], *, push: bool = False
) -> LfsError:
    text = stderr.decode(errors="replace")
    # (Object ids are hex: "…401…" in one must not read as an HTTP status.)
    lowered = _OID_IN.sub("<oid>", text.lower())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
    detail = detail.removeprefix("fatal: ").removeprefix("error: ")
    if "invalid remote name" in lowered:
        return LfsError(
            f"no remote named {remote!r:.80}",
            "`git remote -v` lists the remotes of this repository",
            missing=wanted,
        )
    if push and _MISSING_LOCAL in lowered:
        absent = sorted(
            {
                oid
                for ln in text.splitlines()
                if _MISSING_LOCAL in ln.lower()
                for oid in _OID_IN.findall(ln)
            }
            & set(wanted)
        )
        return LfsError(
            f"the local git-LFS store lacks {len(absent)} object(s) to upload to {remote}: "
            f"{_some(absent)}",
            "they were removed from .git/lfs (git lfs prune?) and cannot be uploaded from here",
            exit_code=EXIT_NOT_FOUND,
            missing=absent,
        )
    if not push and any(word in lowered for word in _MISSING_REMOTE):
        return _missing_on_remote(remote, wanted)
    if any(word in lowered for word in _UNREACHABLE):
        return LfsError(
            f"cannot reach {remote}'s git-LFS server: {detail}",
            "check the network, and the LFS URL `git lfs env` shows",
            missing=wanted,
        )
    if any(word in lowered for word in _AUTH):
        return LfsError(
            f"{action} {remote} was refused: {detail}",
            f"check your credentials for {remote}'s LFS server (`git lfs env` shows its URL)",
            missing=wanted,
        )
    if any(word in lowered for word in _NO_ENDPOINT):
        return LfsError(
            f"{remote} has no git-LFS endpoint that answers: {detail}",
            "the host must serve git-LFS (GitHub, GitLab, Gitea, Bitbucket do), or set "
            f"`git config lfs.url <url>` / `remote.{remote}.lfsurl`; `git lfs env` shows the URL",
            missing=wanted,
        )
    return LfsError(
        f"{action} {remote} failed: {detail or 'git lfs gave no reason'}",
        "`git lfs env` shows the LFS endpoint; `git lfs logs last` the details",
        missing=wanted,
    )

"""Files written into a reproduction's worktree, never outside it: a manifest's path is
validated, its parent directories made without following a link out, and the file created
without following one (a reflink of the source where the file system makes one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from git_prov.errors import BadPath
from git_prov.model.manifest import MODE_EXECUTABLE, safe_relative

_FICLONE = 0x40049409  # Linux ioctl: make the destination a reflink of the source


def inside(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that its parent directory really lies inside ``root``
    (symlinked directories are followed and must stay inside)."""
    target = root / safe_relative(rel)
    check_real(root, target.parent, rel)
    return target


def check_real(root: Path, directory: Path, shown: str) -> None:
    real_root = os.path.realpath(root)
    real = os.path.realpath(directory)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise BadPath(
            f"{shown} leads outside the worktree through a symbolic link",
            "the run's source or manifest is hostile or broken; nothing was written there",
        )


def make_parents(root: Path, rel: str) -> None:
    """Create the directories above ``root/rel`` one at a time, never through a symlink
    that leaves ``root``."""
    parts = PurePosixPath(safe_relative(rel)).parts[:-1]
    for depth in range(1, len(parts) + 1):
        directory = root.joinpath(*parts[:depth])
        check_real(root, directory, rel)
        if not os.path.lexists(directory):
            os.mkdir(directory)
        elif not directory.is_dir():
            raise BadPath(f"{'/'.join(parts[:depth])} in the worktree is not a directory")


def place_file(root: Path, rel: str, source: Path, mode: str) -> Path:
    """Copy ``source`` to ``root/rel`` without ever writing outside ``root``: the path is
    validated, parents are created without following links out, and the file is created
    with ``O_NOFOLLOW | O_EXCL`` (an existing file or link there is removed first — the link
    itself, never its target)."""
    make_parents(root, rel)
    target = inside(root, rel)
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise BadPath(f"{rel} is a directory in the worktree, not a file")
        os.unlink(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    perms = 0o755 if mode == MODE_EXECUTABLE else 0o644
    with open(source, "rb") as reader:
        fd = os.open(target, flags, perms)
        with os.fdopen(fd, "wb") as writer:
            _copy(reader, writer)
    return target


def _copy(reader: BinaryIO, writer: BinaryIO) -> None:
    try:
        import fcntl

        fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
        return
    except (ImportError, OSError):
        pass
    shutil.copyfileobj(reader, writer, 1 << 20)

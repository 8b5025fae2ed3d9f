"""A git-LFS pointer file read: the object id and size it names
(https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md). Pure: the bytes in, the
values out; store/lfs.py writes pointers with the same :data:`LFS_SPEC`."""

from __future__ import annotations

import re

LFS_SPEC = "https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX = 1024  # git-lfs never treats a file this big as a pointer
_LFS_VERSION = f"version {LFS_SPEC}\n".encode()
_LFS_LINE = re.compile(rb"[a-z0-9.-]+ [^\n]*")
_LFS_OID = re.compile(rb"sha256:([0-9a-f]{64})")
_LFS_SIZE = re.compile(rb"(0|[1-9][0-9]{0,18})")


def parse_lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """The (sha256 hex, size) a git-LFS pointer names, or None if ``data`` is not one.

    Follows the pointer spec (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
    at most 1023 bytes, first line the spec version, then ``key value`` lines including
    ``oid sha256:<64 hex>`` and ``size <decimal>``.
    """
    if len(data) >= LFS_POINTER_MAX or not data.startswith(_LFS_VERSION):
        return None
    oid: str | None = None
    size: int | None = None
    for line in data[len(_LFS_VERSION) :].split(b"\n"):
        if not line:
            continue
        if not _LFS_LINE.fullmatch(line):
            return None
        key, _, value = line.partition(b" ")
        if key == b"oid":
            match = _LFS_OID.fullmatch(value)
            if match is None:
                return None
            oid = match.group(1).decode()
        elif key == b"size":
            if _LFS_SIZE.fullmatch(value) is None:
                return None
            size = int(value)
    if oid is None or size is None:
        return None
    return oid, size

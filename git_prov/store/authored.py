"""Which run records were written in this repository, as opposed to fetched.

A run record says who ran it (``user``, ``host``), but anyone can write those fields: a
ledger fetched from a colleague's remote may claim to be yours. What a fetch cannot forge
is a file it never writes: every record this repository's git-prov writes is remembered
here, by the SHA-256 of its canonical JSON, in ``<git common dir>/prov/authored`` (one hex
digest a line, append-only). ``git prov reproduce`` runs such records without asking
(docs/reproduce.md).

The file is local and never pushed. Losing it loses no provenance, only this memory: the
runs recorded before are then treated as anyone else's (reproduce asks before running
them). Writes are best effort for the same reason: a record that cannot be remembered
(a full disk) is still recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

AUTHORED_FILE = "authored"


def record_digest(record_json: str) -> str:
    """The digest a record is remembered by: SHA-256 of its canonical JSON."""
    return hashlib.sha256(record_json.encode("utf-8")).hexdigest()


def remember_authored(prov_dir: Path, record_jsons: Iterable[str]) -> None:
    """Note that these records (canonical JSON) were written here. Best effort."""
    digests = [record_digest(j) for j in record_jsons]
    if not digests:
        return
    data = "".join(d + "\n" for d in digests).encode("ascii")
    with contextlib.suppress(OSError):
        # One O_APPEND write of whole lines: concurrent writers never interleave within a
        # line on a local filesystem.
        fd = os.open(prov_dir / AUTHORED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def was_authored(prov_dir: Path, record_json: str) -> bool:
    """True when this exact record (canonical JSON) was written in this repository."""
    wanted = record_digest(record_json).encode("ascii")
    try:
        with open(prov_dir / AUTHORED_FILE, "rb") as f:
            return any(line.rstrip(b"\n") == wanted for line in f)
    except OSError:
        return False

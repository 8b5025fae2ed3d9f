"""A kept stdout/stderr log's blob: the log's bytes, or — for a run whose log has the bytes of
a log ``git prov gc`` dropped — a header naming the run, then the bytes (docs/format.md,
"Kept logs").

A drop marker names a blob id, and every merge removes a ``log/`` path its marker names; a
new run whose output equals a dropped log would lose its log at the next merge. Its blob
is made its own by a first line ``git-prov log 1 run <run id>``, the way a metric history
holds ``"run"`` in its header (:func:`git_prov.model.history.encode_history`). A log whose
own bytes begin ``git-prov log `` always gets the header too, so a reader that strips the
header of the run reading it never takes a log's own first line for one.
"""

from __future__ import annotations

LOG_MAGIC = b"git-prov log "  # the start of a header line (and of nothing stored bare)
_HEADER = b"git-prov log 1 run %s\n"


def needs_own_blob(data: bytes) -> bool:
    """Whether a log must be stored with its header even when no drop marker names its
    bytes: it begins like one, so stored bare it could be read as having one."""
    return data.startswith(LOG_MAGIC)


def log_blob(data: bytes, run: str) -> bytes:
    """The blob of run ``run``'s log ``data`` with the header naming the run."""
    return _HEADER % run.encode("utf-8", "surrogateescape") + data


def log_bytes(blob: bytes, run: str) -> bytes:
    """The log of run ``run`` stored in ``blob``: without the header when it names that run
    (a blob written before headers existed, or without one, is the log as it is)."""
    header = _HEADER % run.encode("utf-8", "surrogateescape")
    return blob[len(header) :] if blob.startswith(header) else blob


__all__ = ["LOG_MAGIC", "log_blob", "log_bytes", "needs_own_blob"]

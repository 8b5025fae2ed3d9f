"""Which run produced some bytes: the one rule ``lineage``, the report's graph and the
exports share.

A run that recorded an output it left as it found it (``written = false`` in its outputs
manifest) did not produce those bytes and is never credited. Among the runs that did
write them, successful runs are preferred over failed ones; then a run that wrote the same
path; then the order the caller gives (lineage: the latest before the consumer; exports:
the earliest, which generated the content first). The answer is *conclusive* when the
chosen run's record says it wrote the file, or when it is the only run that could have:
a record that does not say (older records, ``git prov record``) competing with others
gives candidates, never a pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
STATUS_OK = "ok"  # as git_prov.model.record.STATUS_OK (kept import-free)


@dataclass(frozen=True)
class Writer(Generic[T]):
    """A run that recorded the bytes as an output: ``run`` is the caller's handle on it."""

    run: T
    status: str
    path: str
    written: bool | None  # the manifest's fact (None: the record does not say)


@dataclass(frozen=True)
class Credit(Generic[T]):
    """The run credited (``best``), the others that wrote the bytes, and whether the
    evidence picks ``best`` (False: ``best`` and ``others`` are all candidates)."""

    best: T
    others: tuple[T, ...]
    conclusive: bool


def credit(writers: Sequence[Writer[T]], path: str | None = None) -> Credit[T] | None:
    """The producer among ``writers`` (in the caller's order of preference) of bytes found
    at ``path``; None when no run wrote them."""
    real = [w for w in writers if w.written is not False]
    if not real:
        return None
    pool = [w for w in real if w.status == STATUS_OK] or real
    same_path = [w for w in pool if w.path == path]
    best = (same_path or pool)[0]
    others = tuple(w.run for w in real if w.run != best.run)
    conclusive = best.written is True or not others
    return Credit(best.run, tuple(dict.fromkeys(others)), conclusive)

"""The one set of reader limits: how much of a ledger any git-prov reader will read.

A ledger may come from anyone who can push to a remote you sync with (docs/security.md),
so every reader — ``find``, ``log``, ``show``, ``report``, ``verify``, ``gc``, ``fsck``,
the query index, the Python API — applies these same limits, checks a size before
reading, and says what it skipped (a ``warning:`` naming the commit, or an ``fsck``
finding) instead of reading it. Documented in docs/format.md ("Reader limits").
"""

from __future__ import annotations

# One commit's note. A run line is about 1 KiB, so 64 MiB holds some 60,000 runs on one
# commit — far beyond any real ledger — while a hostile 1 GiB note is refused unread.
MAX_NOTE_BYTES = 64 << 20
# One line of a note: a record is a few KiB; a megabyte-long line is refused unparsed.
MAX_LINE_BYTES = 1 << 20
# JSON nesting of one line: records nest 3 levels; deeper is refused, not recursed into.
MAX_NESTING = 32
# A data or environment manifest, or a kept log, read from the object store.
MAX_MANIFEST_BYTES = 256 << 20


def note_too_large(commit: str, size: int) -> str | None:
    """Why the note on ``commit`` (``size`` bytes) is not read, or None when it is."""
    if size <= MAX_NOTE_BYTES:
        return None
    return (
        f"the note on {commit[:12]} is {size >> 20} MiB, over the {MAX_NOTE_BYTES >> 20} MiB "
        "reader limit: not read (git prov fsck lists it)"
    )

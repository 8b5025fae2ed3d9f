"""Which paths of a notes tree are notes: git's rule, in one place.

A notes tree names each annotated object by its hex id, whole or split into directories of
two hex digits (git fans a growing tree out to ``ab/cdef…``, then ``ab/cd/ef…``; git-prov
writes ``ab/cdef…``). git (notes.c ``load_subtree``) reads a path as a note exactly when
every directory is two hex digits and the digits of the whole path make an object id;
anything else (``abcd/`` + 36 digits, a name that is not hex, a note of the wrong length)
is a "non-note" that git keeps but never shows. Every reader of git-prov's ledger — the
pygit2 walk (:func:`git_prov.store.notes.iter_notes`), the query index and sync's run
counts (through :mod:`git_prov.store.gitcli.notes` and :mod:`git_prov.sync`) — asks this
module, so all of them see the notes git sees.

No imports: ``git prov sync`` loads this on its start-up path.
"""

from __future__ import annotations

HEX_DIGITS = frozenset("0123456789abcdef")
ID_LENGTHS = (40, 64)  # SHA-1, SHA-256
_LONGEST = max(ID_LENGTHS)


def note_commit(path: str) -> str | None:
    """The object a notes-tree path (``/``-separated, relative to the tree's root) is the
    note of, as lowercase hex; None when git would not read the path as a note.

    One difference from git, on purpose: git also reads hex digits in capitals (a note at
    ``AB/CDEF…`` is the note of ``abcdef…``), but never writes them. Read here, such a
    note could sit beside the lowercase note of the same commit, which git-prov's writers
    would never find; so a path in capitals is a non-note here, as before.
    """
    if len(path) == 41 and path[2] == "/":  # ab/cdef…: the usual path, checked fast
        name = path[:2] + path[3:]
        return name if HEX_DIGITS.issuperset(name) else None
    *dirs, leaf = path.split("/")
    name = "".join(dirs) + leaf
    if (
        len(name) in ID_LENGTHS
        and leaf
        and all(len(d) == 2 for d in dirs)
        and HEX_DIGITS.issuperset(name)
    ):
        return name
    return None


def is_fanout(dir_path: str) -> bool:
    """True when a tree at ``dir_path`` (``ab`` or ``ab/cd`` …) can hold notes: every part
    two hex digits, and shorter than the longest object id. A tree anywhere else is a
    non-note, and its contents are not notes either."""
    parts = dir_path.split("/")
    return (
        len(parts) * 2 < _LONGEST
        and all(len(p) == 2 for p in parts)
        and HEX_DIGITS.issuperset("".join(parts))
    )

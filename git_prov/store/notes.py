"""The notes ref, read and written with git's fan-out layout.

A notes tree names each annotated commit by its hex id, split into 2-hex-digit directories
as it grows (``ab/cdef…``). libgit2 never fans out on its own, so a ledger written only
through pygit2 would be one flat tree rewritten whole on every record. We place new notes
one level deep (``ab/cdef…``: 256 subtrees), which keeps a write to rewriting the root and
one subtree of about N/256 entries, and we update an existing note wherever it lies, so a
tree git wrote (any fan-out, even mixed during git's own transitions) stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import pygit2

from git_prov.model.notepath import HEX_DIGITS, is_fanout, note_commit
from git_prov.store.trees import FILEMODE_BLOB, Change, edit_tree

HEX = HEX_DIGITS


def find_note(
    repo: pygit2.Repository, tree: pygit2.Tree | None, commit_hex: str
) -> tuple[str, pygit2.Oid] | None:
    """Where the note for ``commit_hex`` is in ``tree``: (path, blob id), or None."""
    if tree is None:
        return None
    node: pygit2.Tree = tree
    rest = commit_hex
    prefix = ""
    while True:
        if rest in node:
            entry = node[rest]
            if entry.type_str == "blob":
                return prefix + rest, entry.id
        head = rest[:2]
        if len(rest) <= 2 or head not in node:
            return None
        entry = node[head]
        if entry.type_str != "tree":
            return None
        sub = repo[entry.id]
        assert isinstance(sub, pygit2.Tree)
        node, rest, prefix = sub, rest[2:], f"{prefix}{head}/"


def placement(repo: pygit2.Repository, tree: pygit2.Tree | None, commit_hex: str) -> str:
    """The path for a new note: one level deep, or deeper where git already fanned out."""
    path = commit_hex[:2] + "/" + commit_hex[2:]
    if tree is None or commit_hex[:2] not in tree:
        return path
    entry = tree[commit_hex[:2]]
    if entry.type_str != "tree":
        return path
    sub = repo[entry.id]
    assert isinstance(sub, pygit2.Tree)
    second = commit_hex[2:4]
    if second in sub and sub[second].type_str == "tree":
        return f"{commit_hex[:2]}/{second}/{commit_hex[4:]}"
    return path


def read_note_text(repo: pygit2.Repository, tree: pygit2.Tree | None, commit_hex: str) -> str:
    """The note text on ``commit_hex`` ('' when it has none)."""
    found = find_note(repo, tree, commit_hex)
    if found is None:
        return ""
    blob = repo[found[1]]
    assert isinstance(blob, pygit2.Blob)
    return blob.data.decode("utf-8", errors="replace")


def canonical_note(lines: Iterable[str]) -> str:
    """A note's canonical text: unique non-blank lines, sorted, newline-terminated.

    This is the text git's own ``cat_sort_uniq`` merge produces, and it makes a union
    of notes the same bytes whichever side merged first.
    """
    unique = sorted({line for line in lines if line.strip()})
    return "".join(line + "\n" for line in unique)


def append_lines(
    repo: pygit2.Repository, tree: pygit2.Tree | None, additions: Mapping[str, list[str]]
) -> pygit2.Oid:
    """A new notes tree with ``additions`` merged into the note of each commit.

    Notes are kept in canonical form (see :func:`canonical_note`), so adding a line that
    is already present changes nothing and replaying a write is harmless.
    """
    changes: dict[str, Change] = {}
    for commit_hex, lines in additions.items():
        found = find_note(repo, tree, commit_hex)
        old = read_note_text(repo, tree, commit_hex) if found else ""
        text = canonical_note([*old.splitlines(), *lines])
        if text == old:
            continue
        blob = repo.create_blob(text.encode("utf-8"))
        path = found[0] if found else placement(repo, tree, commit_hex)
        changes[path] = (blob, FILEMODE_BLOB)
    if not changes and tree is not None:
        return tree.id
    return edit_tree(repo, tree, changes)


def set_notes(
    repo: pygit2.Repository, tree: pygit2.Tree | None, texts: Mapping[str, str]
) -> pygit2.Oid:
    """A new notes tree where each commit's note is exactly ``texts[commit]`` ('' removes)."""
    changes: dict[str, Change] = {}
    for commit_hex, text in texts.items():
        found = find_note(repo, tree, commit_hex)
        if not text:
            if found:
                changes[found[0]] = None
            continue
        path = found[0] if found else placement(repo, tree, commit_hex)
        changes[path] = (repo.create_blob(text.encode("utf-8")), FILEMODE_BLOB)
    if not changes and tree is not None:
        return tree.id
    return edit_tree(repo, tree, changes)


def iter_notes(
    repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = ""
) -> Iterator[tuple[str, pygit2.Oid]]:
    """Every (annotated commit hex, note blob id) in a notes tree of any fan-out: the paths
    git reads as notes (:func:`git_prov.model.notepath.note_commit`); git's "non-notes"
    are skipped. ``prefix``: the hex digits of the fan-out directories above ``tree``
    ('' for a notes tree's root)."""
    base = "".join(prefix[i : i + 2] + "/" for i in range(0, len(prefix), 2))
    return _walk_notes(repo, tree, base)


def _walk_notes(
    repo: pygit2.Repository, tree: pygit2.Tree, base: str
) -> Iterator[tuple[str, pygit2.Oid]]:
    for entry in tree:
        path = base + (entry.name or "")
        if entry.type_str == "tree":
            if is_fanout(path):
                sub = repo[entry.id]
                assert isinstance(sub, pygit2.Tree)
                yield from _walk_notes(repo, sub, path + "/")
        elif entry.type_str == "blob" and (commit := note_commit(path)) is not None:
            yield commit, entry.id

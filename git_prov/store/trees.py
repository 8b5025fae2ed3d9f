"""Editing git trees in memory: many path changes applied in one pass, one write per tree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pygit2

FILEMODE_BLOB = pygit2.enums.FileMode.BLOB
FILEMODE_TREE = pygit2.enums.FileMode.TREE

# A change: path -> (object id, filemode) to set, or None to remove.
Change = tuple[pygit2.Oid, int] | None


def edit_tree(
    repo: pygit2.Repository, base: pygit2.Tree | None, changes: Mapping[str, Change]
) -> pygit2.Oid:
    """Write a tree equal to ``base`` with ``changes`` applied; returns the new tree id.

    Paths are ``/``-separated. Intermediate trees are created as needed and trees left
    empty by removals are dropped. Only the trees on changed paths are rewritten.
    """
    here: dict[str, Change] = {}
    below: dict[str, dict[str, Change]] = {}
    for path, change in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head, {})[rest] = change
        else:
            here[head] = change
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for name, sub_changes in below.items():
        sub_base = _subtree(repo, base, name)
        new_oid = edit_tree(repo, sub_base, sub_changes)
        if len(repo[new_oid]) == 0:  # type: ignore[arg-type]
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_oid, FILEMODE_TREE)
    for name, change in here.items():
        if change is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, change[0], change[1])
    return builder.write()


def _subtree(repo: pygit2.Repository, base: pygit2.Tree | None, name: str) -> pygit2.Tree | None:
    if base is None or name not in base:
        return None
    entry = base[name]
    if entry.type_str != "tree":
        return None
    tree = repo[entry.id]
    assert isinstance(tree, pygit2.Tree)
    return tree


def walk_blobs(
    repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = ""
) -> Iterator[tuple[str, pygit2.Oid]]:
    """Every blob below ``tree`` as (path, blob id), depth first."""
    for entry in tree:
        if entry.type_str == "tree":
            sub = repo[entry.id]
            assert isinstance(sub, pygit2.Tree)
            yield from walk_blobs(repo, sub, f"{prefix}{entry.name}/")
        elif entry.type_str == "blob":
            yield f"{prefix}{entry.name}", entry.id


def tree_listing(
    repo: pygit2.Repository, tree: pygit2.Tree | pygit2.Oid | str
) -> list[tuple[str, str, str]]:
    """The entries of a tree (given as a tree or its id): (name, type — ``tree``, ``blob``
    or ``commit`` —, object id hex), in tree order. KeyError when it is not a tree here."""
    if not isinstance(tree, pygit2.Tree):
        found = repo[tree]
        if not isinstance(found, pygit2.Tree):
            raise KeyError(f"{tree} is not a tree")
        tree = found
    return [(e.name or "", e.type_str, str(e.id)) for e in tree]


def has_path(tree: pygit2.Tree, path: str) -> bool:
    """Whether ``tree`` has an entry at ``path`` (the object itself is not read: a 20k-file
    manifest blob is not inflated to learn that it is there)."""
    try:
        tree[path]
    except KeyError:
        return False
    return True


def lookup_path(repo: pygit2.Repository, tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    """The object at ``path`` in ``tree``, or None."""
    try:
        entry = tree[path]
    except KeyError:
        return None
    return repo[entry.id]


def merge_disjoint_trees(
    repo: pygit2.Repository, a: pygit2.Oid, b: pygit2.Oid
) -> pygit2.Oid | None:
    """The tree holding every entry of trees ``a`` and ``b``, whose files are disjoint;
    None when a path is a file (or a submodule) in one and anything else in the other.

    Only the directories both trees have are rewritten: the result is the tree git would
    write for an index holding both trees' entries (trees are canonical)."""
    if a == b:
        return a
    left, right = repo[a], repo[b]
    assert isinstance(left, pygit2.Tree) and isinstance(right, pygit2.Tree)
    builder = repo.TreeBuilder(left)
    for entry in right:
        name = entry.name or ""
        ours = builder.get(name)
        if ours is None:
            builder.insert(name, entry.id, entry.filemode)
            continue
        if ours.filemode != FILEMODE_TREE or entry.filemode != FILEMODE_TREE:
            return None
        merged = merge_disjoint_trees(repo, ours.id, entry.id)
        if merged is None:
            return None
        builder.insert(name, merged, FILEMODE_TREE)
    return builder.write()

"""Named entries in the objects tree (``refs/prov/objects``) beside the manifests: reading a
directory of it, finding objects by id prefix, and adding entries with the ledger's write
discipline (the ledger lock, then compare-and-swap with retries, one commit per change).

Used by environment tags (:mod:`git_prov.query.envtags`), whose entries live at
``envtag/<name>/<entry id>``: content-addressed paths, so the union merge of two clones'
objects trees never meets two different blobs at one path.
"""

from __future__ import annotations

from collections.abc import Mapping

import pygit2

from git_prov.store.ledger import OBJECTS_REF, Ledger
from git_prov.store.locking import ledger_lock
from git_prov.store.loose import write_object
from git_prov.store.trees import FILEMODE_BLOB, Change, edit_tree, lookup_path, walk_blobs


def read_directory(ledger: Ledger, directory: str) -> list[tuple[str, str, bytes]]:
    """Every blob below ``directory`` of the objects tree: (path, blob id, bytes)."""
    tip = ledger.tip(OBJECTS_REF)
    if tip is None:
        return []
    sub = lookup_path(ledger.pygit, tip.tree, directory)
    if not isinstance(sub, pygit2.Tree):
        return []
    out = []
    for path, oid in walk_blobs(ledger.pygit, sub, directory + "/"):
        blob = ledger.pygit[oid]
        assert isinstance(blob, pygit2.Blob)
        out.append((path, str(oid), blob.data))
    return out


def objects_with_prefix(ledger: Ledger, kind: str, prefix: str) -> list[str]:
    """The full ids of stored objects of ``kind`` (``env``, ``data``, …) starting with
    ``prefix`` (at least 2 hex digits)."""
    tip = ledger.tip(OBJECTS_REF)
    if tip is None or len(prefix) < 2:
        return []
    sub = lookup_path(ledger.pygit, tip.tree, f"{kind}/{prefix[:2]}")
    if not isinstance(sub, pygit2.Tree):
        return []
    rest = prefix[2:]
    return sorted(prefix[:2] + (e.name or "") for e in sub if (e.name or "").startswith(rest))


def add_entries(ledger: Ledger, entries: Mapping[str, bytes], message: str) -> dict[str, str]:
    """Store ``entries`` (path → bytes) in the objects tree in one commit; returns path →
    blob id. Paths already holding an entry are left as they are."""
    repo = ledger.pygit
    blobs = {path: write_object(repo.create_blob, data) for path, data in entries.items()}

    def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        tree = tip.tree if tip is not None else None
        missing: dict[str, Change] = {
            path: (oid, FILEMODE_BLOB)
            for path, oid in blobs.items()
            if tree is None or lookup_path(repo, tree, path) is None
        }
        if not missing:
            return None
        tree_id = edit_tree(repo, tree, missing)
        return ledger._commit(tree_id, [tip.id] if tip is not None else [], message)

    with ledger_lock(ledger.repo.prov_dir / "ledger.lock"):
        ledger._cas(OBJECTS_REF, build, message)
    return {path: str(oid) for path, oid in blobs.items()}

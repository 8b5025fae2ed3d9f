"""Union merge of two ledgers: the notes tree and the objects tree.

Both merges walk the two trees side by side and descend only where subtree ids differ, so
merging two 100k-run ledgers that differ by one run reads and writes about two trees per
side, not 100k notes.

Notes. Each annotated commit's merged note is ``canonical_note(lines_a + lines_b)`` — the
same bytes whichever side merges first. A note present on one side only, or with the same
blob on both, is kept as it is. The two sides may file one commit's note at different
fan-out depths (git writes ``abcd…`` flat, we write ``ab/cd…``, git may go to
``ab/cd/ef…``); where they disagree the deeper fan-out wins: a directory that exists on
either side exists in the result and every note below it moves into it. That rule depends
only on the union, so the merge is commutative, associative and idempotent on tree ids.

Objects. Union by path. Paths are content-addressed (same path, same content); should two
different objects ever meet at one path, ours is kept and the path is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import pygit2

from git_prov.model.record import RunRecord, parse_line
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.locking import ledger_lock
from git_prov.store.notes import HEX, canonical_note, iter_notes
from git_prov.store.trees import FILEMODE_BLOB, FILEMODE_TREE

# The JSON of a run record always holds this (canonical JSON: no spaces, sorted keys), so a
# substring test finds the candidate lines before any of them is parsed.
_RUN_MARK = '"kind":"run"'
_OTHER = "\0"  # group key prefix of entries that are not notes (kept by name)


@dataclass(frozen=True)
class _Item:
    """One tree entry during a merge. A note may carry several blob ids when one side
    filed the same commit at two depths; they are united like two sides' notes."""

    is_tree: bool
    ids: tuple[pygit2.Oid, ...]
    mode: int


_Node = dict[str, _Item]


@dataclass
class _Group:
    """The entries of one node under one 2-hex prefix: a subtree and/or flat notes."""

    tree: _Item | None = None
    blobs: dict[str, _Item] = field(default_factory=dict)

    def entries(self, key: str) -> _Node:
        out = dict(self.blobs)
        if self.tree is not None:
            out[key] = self.tree
        return out


class Gained(Mapping[str, list[str]]):
    """Annotated commit → the note lines the union has that one side did not.

    A note only the other side has is gained whole; it is held as its blob id (with how
    many run records it holds, counted as it streamed by) and its lines are read again
    only when asked for, so a merge that brings a million runs holds ids, not lines."""

    def __init__(self, repo: pygit2.Repository | None = None) -> None:
        self._repo = repo
        self._lines: dict[str, list[str]] = {}
        self._whole: dict[str, tuple[pygit2.Oid, ...]] = {}
        self._whole_runs = 0

    def __setitem__(self, commit: str, lines: list[str]) -> None:
        self._whole.pop(commit, None)
        self._lines[commit] = lines

    def add_whole(self, commit: str, ids: tuple[pygit2.Oid, ...], runs: int) -> None:
        """The note ``ids`` of ``commit``, gained whole, holding ``runs`` run records."""
        self._lines.pop(commit, None)
        self._whole[commit] = ids
        self._whole_runs += runs

    def __getitem__(self, commit: str) -> list[str]:
        if commit in self._lines:
            return self._lines[commit]
        ids = self._whole[commit]
        assert self._repo is not None
        return sorted(set(_note_lines(self._repo, ids)))

    def __iter__(self) -> Iterator[str]:
        yield from self._lines
        yield from self._whole

    def __len__(self) -> int:
        return len(self._lines) + len(self._whole)

    def __contains__(self, commit: object) -> bool:
        return commit in self._lines or commit in self._whole

    def runs(self) -> int:
        """Run records among the gained lines (distinct lines per note)."""
        return self._whole_runs + sum(count_run_lines(lines) for lines in self._lines.values())


@dataclass
class NotesMerge:
    """The union of two notes trees, and what each side gained from the other.

    ``gained_ours``/``gained_theirs`` map an annotated commit to the note lines the union
    has that that side did not (collected only when asked for; notes gained whole are
    read on demand: :class:`Gained`).
    """

    tree: pygit2.Oid | None
    gained_ours: Gained = field(default_factory=Gained)
    gained_theirs: Gained = field(default_factory=Gained)
    conflicts: set[str] = field(default_factory=set)
    trees_read: int = 0

    def runs_gained_ours(self) -> int:
        """Run records the union adds to our side."""
        return self.gained_ours.runs()

    def runs_gained_theirs(self) -> int:
        """Run records the union adds to their side."""
        return self.gained_theirs.runs()


@dataclass
class ObjectsMerge:
    """The union of two objects trees; ``conflicts`` lists paths where the two sides held
    different objects (ours was kept)."""

    tree: pygit2.Oid | None
    conflicts: list[str] = field(default_factory=list)
    trees_read: int = 0


def count_run_lines(lines: Iterable[str]) -> int:
    """How many distinct lines of ``lines`` are run records.

    A count for people ("12 runs in all"), so it is read from the canonical JSON's
    ``"kind":"run"`` without parsing each line (parsing 100k records takes seconds).
    """
    return sum(1 for line in set(lines) if _RUN_MARK in line.rpartition("\t")[2])


def _note_lines(repo: pygit2.Repository, ids: Iterable[pygit2.Oid]) -> list[str]:
    out: list[str] = []
    for oid in ids:
        blob = repo[oid]
        assert isinstance(blob, pygit2.Blob)
        out.extend(blob.data.decode("utf-8", errors="replace").splitlines())
    return out


# Every value a key "id" has in a line written without escapes (the run's own id among
# them, and any nested "id"): two lines can hold one run only if they share one.
_ID_VALUES = re.compile(r'"id"\s*:\s*"([^"\\]*)"')


def copies_in(lines: set[str]) -> set[str]:
    """Run ids with several different records among the distinct ``lines`` (one note):
    :func:`run_ids_of`'s answer, parsing only the run lines that could share an id — a
    line with an escape (which could spell its id otherwise) or one naming an id another
    line names — instead of every line."""
    runs = [line for line in lines if _RUN_MARK in line]
    if len(runs) < 2:
        return set()
    named: dict[str, list[str]] = {}
    for line in runs:
        values = set(_ID_VALUES.findall(line)) if "\\" not in line else set()
        if not values:
            suspects: Iterable[str] = runs  # cannot tell: read every run line of the note
            break
        for value in values:
            named.setdefault(value, []).append(line)
    else:
        suspects = {line for group in named.values() if len(group) > 1 for line in group}
    return {run for run, found in run_ids_of(suspects).items() if len(found) > 1}


def run_ids_of(lines: Iterable[str]) -> dict[str, list[str]]:
    """The run-record lines among ``lines``, grouped by run id."""
    out: dict[str, list[str]] = {}
    for line in set(lines):
        if _RUN_MARK not in line:
            continue
        try:
            entry = parse_line(line)
        except ValueError:
            continue
        if isinstance(entry, RunRecord):
            out.setdefault(entry.id, []).append(line)
    return out


class _NotesWalk:
    def __init__(self, repo: pygit2.Repository, *, write: bool, collect: bool):
        self.repo = repo
        self.write = write
        self.collect = collect
        self.result = NotesMerge(None, Gained(repo), Gained(repo))
        if collect:  # notes gained whole are read one by one: map little of the packs
            from git_prov.store.headers import limit_mapped_packs

            limit_mapped_packs()

    # ---- reading --------------------------------------------------------------------

    def load(self, tree_id: pygit2.Oid) -> _Node:
        tree = self.repo[tree_id]
        assert isinstance(tree, pygit2.Tree)
        self.result.trees_read += 1
        return {e.name or "": _Item(e.type_str == "tree", (e.id,), e.filemode) for e in tree}

    def lines(self, ids: Iterable[pygit2.Oid]) -> list[str]:
        return _note_lines(self.repo, ids)

    def notes_below(self, item: _Item, name: str, prefix: str) -> Iterator[tuple[str, _Item]]:
        """Every note of a group taken whole from one side: (commit hex, item)."""
        if item.is_tree:
            tree = self.repo[item.ids[0]]
            assert isinstance(tree, pygit2.Tree)
            for commit, blob_id in iter_notes(self.repo, tree, prefix + name):
                yield commit, _Item(False, (blob_id,), FILEMODE_BLOB)
        else:
            yield prefix + name, item

    # ---- merging --------------------------------------------------------------------

    def merge(self, ours: _Node, theirs: _Node, prefix: str) -> _Node:
        ours_groups = _group(ours, prefix)
        theirs_groups = _group(theirs, prefix)
        out: _Node = {}
        for key in sorted(ours_groups.keys() | theirs_groups.keys()):
            a, b = ours_groups.get(key), theirs_groups.get(key)
            if key.startswith(_OTHER):
                out.update(self.merge_other(key[1:], a, b))
            elif a is None or b is None:
                side = a if a is not None else b
                assert side is not None
                for name, item in side.entries(key).items():
                    if self.collect or len(set(item.ids)) > 1:
                        item = self.one_sided(prefix, name, item, ours_lacks=a is None)
                    out[name] = item
            elif a.entries(key) == b.entries(key) and all(
                len(set(i.ids)) == 1 for i in a.entries(key).values()
            ):
                out.update(a.entries(key))
            elif a.tree is not None or b.tree is not None:
                # At least one side fanned out under ``key``: the deeper fan-out wins, and
                # the other side's flat notes with that prefix move down into it.
                sub = self.merge(self.pushed_down(a, key), self.pushed_down(b, key), prefix + key)
                out[key] = self.subtree(sub)
            else:
                for name in sorted(a.blobs.keys() | b.blobs.keys()):
                    out[name] = self.union_note(prefix, name, a.blobs.get(name), b.blobs.get(name))
        return out

    def pushed_down(self, group: _Group, key: str) -> _Node:
        node = self.load(group.tree.ids[0]) if group.tree is not None else {}
        for name, item in group.blobs.items():
            rest = name[len(key) :]
            if rest in node and not node[rest].is_tree:
                # The same commit filed at two depths on one side: unite the two notes.
                node[rest] = _Item(False, node[rest].ids + item.ids, FILEMODE_BLOB)
            else:
                node[rest] = item
        return node

    def merge_other(self, name: str, a: _Group | None, b: _Group | None) -> _Node:
        # Entries git keeps in notes trees that are not notes: union by name; should the
        # two sides differ, the smaller id wins so that the result does not depend on order.
        items = [g.blobs[name] for g in (a, b) if g is not None]
        return {name: min(items, key=lambda i: (str(i.ids[0]), i.is_tree))}

    def one_sided(self, prefix: str, name: str, item: _Item, *, ours_lacks: bool) -> _Item:
        """An entry only one side has: kept as it is (its notes are gained by the other)."""
        if not item.is_tree and len(set(item.ids)) > 1:
            ids = item.ids
            return self.united(prefix + name, () if ours_lacks else ids, ids if ours_lacks else ())
        if self.collect:
            gained = self.result.gained_ours if ours_lacks else self.result.gained_theirs
            for commit, note in self.notes_below(item, name, prefix):
                lines = set(self.lines(note.ids))  # (one note at a time, not kept)
                gained.add_whole(commit, note.ids, count_run_lines(lines))
                if ours_lacks:  # a note new to us may hold two copies of one run
                    self.result.conflicts |= copies_in(lines)
        return item

    def union_note(self, prefix: str, name: str, a: _Item | None, b: _Item | None) -> _Item:
        if a is None or b is None:
            side = a if a is not None else b
            assert side is not None
            return self.one_sided(prefix, name, side, ours_lacks=a is None)
        return self.united(prefix + name, a.ids, b.ids)

    def united(
        self, commit: str, ours: tuple[pygit2.Oid, ...], theirs: tuple[pygit2.Oid, ...]
    ) -> _Item:
        everything = tuple(dict.fromkeys(ours + theirs))
        if len(everything) == 1 and ours and theirs:
            return _Item(False, everything, FILEMODE_BLOB)
        ours_lines = self.lines(dict.fromkeys(ours))
        theirs_lines = self.lines(dict.fromkeys(theirs))
        text = canonical_note([*ours_lines, *theirs_lines])
        if self.collect:
            union = set(text.splitlines())
            ours_set, theirs_set = set(ours_lines), set(theirs_lines)
            if union - ours_set:
                self.result.gained_ours[commit] = sorted(union - ours_set)
            if union - theirs_set:
                self.result.gained_theirs[commit] = sorted(union - theirs_set)
            self.result.conflicts |= _new_conflicts(union, ours_set, theirs_set)
        if not self.write:
            return _Item(False, (), FILEMODE_BLOB)
        return _Item(False, (self.repo.create_blob(text.encode("utf-8")),), FILEMODE_BLOB)

    def subtree(self, node: _Node) -> _Item:
        if not self.write:
            return _Item(True, (), FILEMODE_TREE)
        return _Item(True, (_write(self.repo, node),), FILEMODE_TREE)


def _new_conflicts(union: set[str], ours: set[str], theirs: set[str]) -> set[str]:
    """Run ids with several different records in the union, where our side had not
    already all of them: a different copy of a run arrived (from theirs)."""
    found = set()
    for run_id, lines in run_ids_of(union).items():
        if len(lines) > 1 and not set(lines) <= ours:
            found.add(run_id)
    return found


def _group(node: _Node, prefix: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for name, item in node.items():
        hexname = bool(name) and set(name) <= HEX
        depth_left = {40 - len(prefix), 64 - len(prefix)}
        if hexname and item.is_tree and len(name) == 2 and len(prefix) < 38:
            groups.setdefault(name, _Group()).tree = item
        elif hexname and not item.is_tree and len(name) in depth_left:
            groups.setdefault(name[:2], _Group()).blobs[name] = item
        else:
            groups[_OTHER + name] = _Group(blobs={name: item})
    return groups


def _write(repo: pygit2.Repository, node: _Node) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    for name, item in node.items():
        builder.insert(name, item.ids[0], item.mode)
    return builder.write()


def merge_notes_trees(
    repo: pygit2.Repository,
    ours: pygit2.Tree | None,
    theirs: pygit2.Tree | None,
    *,
    write: bool = True,
    collect: bool = True,
) -> NotesMerge:
    """The union of two notes trees (see the module docstring for the rules).

    With ``write=False`` nothing is written and ``tree`` is None: a dry run that only
    collects what each side would gain (used to count runs between two states).
    """
    walk = _NotesWalk(repo, write=write, collect=collect)
    if ours is None and theirs is None:
        return walk.result
    if ours is not None and theirs is not None and ours.id == theirs.id:
        walk.result.tree = ours.id if write else None
        return walk.result
    ours_node = walk.load(ours.id) if ours is not None else {}
    theirs_node = walk.load(theirs.id) if theirs is not None else {}
    merged = walk.merge(ours_node, theirs_node, "")
    if write:
        walk.result.tree = _write(repo, merged)
    return walk.result


def runs_between(
    repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None
) -> tuple[int, int]:
    """(run records in ``new`` and not in ``old``, run records in ``old`` and not in
    ``new``), found by walking only the subtrees that differ."""
    walk = merge_notes_trees(repo, old, new, write=False)
    return walk.runs_gained_ours(), walk.runs_gained_theirs()


def count_runs(repo: pygit2.Repository, tree: pygit2.Tree | None) -> int:
    """Run records in a whole notes tree (distinct lines per note). Reads every note."""
    if tree is None:
        return 0
    total = 0
    for _, blob_id in iter_notes(repo, tree):
        blob = repo[blob_id]
        assert isinstance(blob, pygit2.Blob)
        text = blob.data.decode("utf-8", errors="replace")
        if _RUN_MARK in text:
            total += count_run_lines(text.splitlines())
    return total


def merge_objects_trees(
    repo: pygit2.Repository, ours: pygit2.Tree | None, theirs: pygit2.Tree | None
) -> ObjectsMerge:
    """The union by path of two objects trees; ours wins (and is reported) where the two
    hold different objects at one path."""
    result = ObjectsMerge(None)

    def load(tree_id: pygit2.Oid) -> pygit2.Tree:
        tree = repo[tree_id]
        assert isinstance(tree, pygit2.Tree)
        result.trees_read += 1
        return tree

    def walk(a: pygit2.Tree, b: pygit2.Tree, prefix: str) -> pygit2.Oid:
        if a.id == b.id:
            return a.id
        builder = repo.TreeBuilder(a)
        for entry in b:
            name = entry.name or ""
            if name not in a:
                builder.insert(name, entry.id, entry.filemode)
                continue
            mine = a[name]
            if mine.id == entry.id:
                continue
            if mine.type_str == "tree" and entry.type_str == "tree":
                builder.insert(
                    name, walk(load(mine.id), load(entry.id), f"{prefix}{name}/"), FILEMODE_TREE
                )
            else:
                result.conflicts.append(prefix + name)
        return builder.write()

    if ours is None or theirs is None:
        side = ours if ours is not None else theirs
        result.tree = side.id if side is not None else None
        return result
    result.tree = walk(ours, theirs, "")
    return result


# ---- merging a ref -------------------------------------------------------------------------

UP_TO_DATE = "up-to-date"
CREATED = "created"
FAST_FORWARD = "fast-forward"
MERGED = "merged"


@dataclass(frozen=True)
class RefMerge:
    """What merging another ledger commit into a local ledger ref did.

    ``action`` is one of ``up-to-date``, ``created``, ``fast-forward``, ``merged``;
    ``old``/``new`` are the ref's values before and after (hex, or None when absent).
    For the notes ref, ``changed`` lists the annotated commits whose note is not what it
    was (what derived views such as the ``git log`` display must redo), and
    ``runs_added`` counts the run records the ref gained. Both are None when the ref was
    ``created``: every note is new, and listing or counting them means reading them all,
    which is left to callers that need it.
    """

    ref: str
    action: str
    old: str | None
    new: str | None
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    changed: tuple[str, ...] | None = ()
    runs_added: int | None = 0


def merge_commit_into(
    ledger: Ledger, ref: str, theirs: pygit2.Oid | str, *, message: str
) -> RefMerge:
    """Merge ledger commit ``theirs`` into ``ref`` (``refs/notes/prov`` or
    ``refs/prov/objects``): create or fast-forward the ref when one side contains the other,
    else write a merge commit with parents [ours, theirs] and the union tree. The ref is
    updated by compare-and-swap under the ledger lock; a race rebuilds from the new tip.
    """
    if ref not in (NOTES_REF, OBJECTS_REF):
        raise ValueError(f"not a ledger ref: {ref}")
    repo = ledger.pygit
    theirs = pygit2.Oid(hex=theirs) if isinstance(theirs, str) else theirs
    theirs_commit = repo.get(theirs)
    if not isinstance(theirs_commit, pygit2.Commit):
        from git_prov.errors import CorruptLedger

        raise CorruptLedger(
            f"{theirs} (to merge into {ref}) is not a commit",
            "fetch again; if it persists, the remote's ledger is damaged",
        )
    notes = ref == NOTES_REF
    outcome: dict[str, RefMerge] = {}

    def build(tip: pygit2.Commit | None) -> pygit2.Oid | None:
        old = str(tip.id) if tip is not None else None
        if tip is None:
            outcome["r"] = RefMerge(
                ref,
                CREATED,
                None,
                str(theirs),
                changed=None if notes else (),
                runs_added=None if notes else 0,
            )
            return theirs
        if tip.id == theirs or _descends(repo, tip.id, theirs):
            outcome["r"] = RefMerge(ref, UP_TO_DATE, old, old)
            return None
        forward = _descends(repo, theirs, tip.id)
        if forward and not notes:
            outcome["r"] = RefMerge(ref, FAST_FORWARD, old, str(theirs), changed=(), runs_added=0)
            return theirs
        if forward:
            walk = merge_notes_trees(repo, tip.tree, theirs_commit.tree, write=False)
            if not walk.gained_theirs:  # theirs has every line we have: move up to it
                outcome["r"] = RefMerge(
                    ref,
                    FAST_FORWARD,
                    old,
                    str(theirs),
                    tuple(sorted(walk.conflicts)),
                    changed=tuple(sorted(walk.gained_ours)),
                    runs_added=walk.runs_gained_ours(),
                )
                return theirs
            # Theirs descends from ours but lacks lines we have: someone removed or edited
            # a record there (an edited copy of a signed record, say). Moving up to it
            # would drop ours silently; a union merge keeps both and reports the conflict.
        if notes:
            merged = merge_notes_trees(repo, tip.tree, theirs_commit.tree, collect=True)
            assert merged.tree is not None
            tree, conflicts, object_conflicts = merged.tree, merged.conflicts, []
            changed, added = tuple(sorted(merged.gained_ours)), merged.runs_gained_ours()
        else:
            from git_prov.store.drops import without_dropped_logs

            objects = merge_objects_trees(repo, tip.tree, theirs_commit.tree)
            assert objects.tree is not None
            union = repo[objects.tree]
            assert isinstance(union, pygit2.Tree)
            # Logs `git prov gc` dropped on either side stay dropped: union minus drops.
            tree = without_dropped_logs(repo, union)
            conflicts, object_conflicts = set(), objects.conflicts
            changed, added = (), 0
        new = ledger._commit(tree, [tip.id, theirs], message)
        outcome["r"] = RefMerge(
            ref,
            MERGED,
            old,
            str(new),
            tuple(sorted(conflicts)),
            tuple(object_conflicts),
            changed=changed,
            runs_added=added,
        )
        return new

    with ledger_lock(ledger.repo.prov_dir / "ledger.lock"):
        ledger._cas(ref, build, message)
    return outcome["r"]


def _descends(repo: pygit2.Repository, commit: pygit2.Oid, ancestor: pygit2.Oid) -> bool:
    try:
        return bool(repo.descendant_of(commit, ancestor))
    except (pygit2.GitError, KeyError, ValueError):
        # A shallow or incomplete history: we cannot tell, so merge (always safe).
        return False

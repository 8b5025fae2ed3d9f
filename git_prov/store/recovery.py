"""``git prov fsck --repair``: bring a damaged ledger back from what git still holds.

A ledger ref can end up naming an object that is gone: ``git gc --prune=now`` deletes
loose objects no ref names yet, and a writer's new commit is such an object until its
compare-and-swap lands (writers check before and after it, see
:meth:`git_prov.store.ledger.Ledger._cas`, but a prune that is still deleting after
that check wins). Every command then stops with "run git prov fsck --repair".

The ledger is append-only (a line is never edited or removed, see docs/design.md), so
every ledger commit that ever existed holds a subset of the true ledger, and their union
is the best answer. Repair, for ``refs/notes/prov`` and ``refs/prov/objects`` each:

1. **Is it damaged?** Its tip commit, every tree below it and every note blob (for the
   notes) or tree (for the objects) must be readable, and ``git rev-list --objects``
   must walk its history (a commit with a missing ancestor breaks ``git gc`` too).
2. **Sources**: the ref's current target (whatever of it is readable), every commit in
   its reflog, the remotes' tracking copies (``refs/notes/remotes/*/prov``,
   ``refs/prov/remotes/*/objects``), and every git-prov ledger commit left in the object
   store, packed or loose (found by message and tree shape).
3. **Union**: every readable note of every source, line-united as a merge unites them
   (``canonical_note``); for the objects tree, every readable path (minus logs
   ``git prov gc`` dropped).
4. **Write**: a new commit with that tree whose parent is the newest source with an
   intact history (so ``git log`` of the ledger keeps its history; none when there is no
   such source), plus — for the objects ref — the kept commits the parent does not reach.
   The ref is moved by compare-and-swap from the damaged value, under the ledger lock.
5. **Say what was lost**: runs whose recording moved the notes ref (its reflog, the
   messages of ledger commits) but whose record is in no readable source, and the number
   of trees and blobs that could not be read.

Nothing is written unless asked (``git prov fsck --repair``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pygit2

from git_prov.errors import CorruptLedger
from git_prov.model.ids import RUN_ID_RE
from git_prov.store import notes
from git_prov.store.gitcli import git_env
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.locking import ledger_lock
from git_prov.store.merge import run_ids_of
from git_prov.store.repo import GitRepo
from git_prov.store.trees import FILEMODE_BLOB, edit_tree

REPAIRED = "repaired"
INTACT = "intact"
ABSENT = "absent"
EMPTIED = "emptied"  # nothing readable was left: the ref was removed

_OBJECT_DIRS = frozenset({"data", "env", "log", "keep", "drop", "envtag"})
_DISPLAY_MESSAGE = "git-prov: refresh git log display"
_RECORDED = re.compile(r"git-prov: record run (\S+)")
_TRACKING = {NOTES_REF: "refs/notes/remotes/", OBJECTS_REF: "refs/prov/remotes/"}
_TRACKING_NAME = {NOTES_REF: "/prov", OBJECTS_REF: "/objects"}


@dataclass(frozen=True)
class RefRepair:
    """What repair found and did for one ledger ref."""

    ref: str
    state: str  # intact | repaired | emptied | absent
    damage: str = ""  # why it needed repair
    old: str | None = None  # the damaged target
    new: str | None = None  # the restored commit
    parent: str | None = None  # the newest source with an intact history
    sources: int = 0  # ledger commits read
    runs: int = 0  # run records in the restored notes
    brought_back: int = 0  # of them, runs the parent did not have (newer lines re-united)
    lost_runs: tuple[str, ...] = ()  # recorded (said its history), in no readable source
    unreadable: int = 0  # trees and blobs of the sources that could not be read

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "state": self.state,
            "damage": self.damage,
            "old": self.old,
            "new": self.new,
            "parent": self.parent,
            "sources": self.sources,
            "runs": self.runs,
            "brought_back": self.brought_back,
            "lost_runs": list(self.lost_runs),
            "unreadable": self.unreadable,
        }


@dataclass
class RepairReport:
    """Repair of both ledger refs."""

    refs: list[RefRepair] = field(default_factory=list)
    # Tracking copies of remotes' ledgers that named missing objects, deleted so that
    # the next `git prov fetch` brings them again (a fetch trusts a ref it has).
    dropped_copies: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        return any(r.state in (REPAIRED, EMPTIED) for r in self.refs)

    @property
    def lost(self) -> bool:
        return any(r.lost_runs or r.unreadable or r.state == EMPTIED for r in self.refs)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "repaired": self.repaired,
            "lost": self.lost,
            "refs": [r.to_json_dict() for r in self.refs],
            "dropped_copies": list(self.dropped_copies),
        }


# ---- is it damaged? -------------------------------------------------------------------------


def ref_damage(repo: GitRepo, ref: str) -> str | None:
    """Why ``ref`` cannot be used as it is (None when it is intact or absent)."""
    pygit = repo.pygit
    try:
        target = pygit.references[ref].target
    except KeyError:
        return None
    commit = pygit.get(target)
    if commit is None:
        return f"{ref} names {str(target)[:12]}, which is missing"
    if not isinstance(commit, pygit2.Commit):
        return f"{ref} names {str(target)[:12]}, which is not a commit"
    walk = _Walk(pygit, ref == NOTES_REF)
    walk.tree(commit.tree_id, "")
    if walk.unreadable:
        return f"{walk.unreadable} trees or blobs of {ref} ({str(target)[:12]}) are missing"
    if not _history_intact(repo, str(target)):
        return f"the history of {ref} ({str(target)[:12]}) names missing objects"
    return None


def _history_intact(repo: GitRepo, commit: str) -> bool:
    proc = repo.git("rev-list", "--objects", "--quiet", commit, check=False)
    return proc.returncode == 0


class _Walk:
    """A tolerant walk of ledger trees: what is readable, and how much is not. Trees
    shared by several sources are read once."""

    def __init__(self, repo: pygit2.Repository, is_notes: bool):
        self.repo = repo
        self.is_notes = is_notes
        self.seen: set[pygit2.Oid] = set()
        self.unreadable = 0
        self.notes: dict[str, set[pygit2.Oid]] = {}  # annotated commit -> note blobs
        self.paths: dict[str, pygit2.Oid] = {}  # objects tree: path -> blob

    def tree(self, tree_id: pygit2.Oid, prefix: str) -> None:
        if tree_id in self.seen:
            return
        self.seen.add(tree_id)
        tree = self.repo.get(tree_id)
        if not isinstance(tree, pygit2.Tree):
            self.unreadable += 1
            return
        for entry in tree:
            name = entry.name or ""
            path = prefix + name
            if entry.type_str == "tree":
                sep = "" if self.is_notes else "/"
                self.tree(entry.id, path + sep)
            elif entry.type_str == "blob":
                if self.is_notes:
                    if len(path) in (40, 64) and set(path) <= notes.HEX:
                        if not self.repo.odb.exists(entry.id):
                            self.unreadable += 1
                            continue
                        self.notes.setdefault(path, set()).add(entry.id)
                elif path not in self.paths:
                    self.paths[path] = entry.id


# ---- sources --------------------------------------------------------------------------------


def _reflog(repo: GitRepo, ref: str) -> tuple[list[str], list[str]]:
    """Commit ids in ``ref``'s reflog (newest first) and the messages of its entries."""
    path = repo.common_dir / "logs" / ref
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], []
    ids: list[str] = []
    messages: list[str] = []
    for line in reversed(text.splitlines()):
        head, _, message = line.partition("\t")
        parts = head.split(" ")
        if len(parts) >= 2:
            ids += [p for p in parts[1::-1] if len(p) >= 40 and set(p) != {"0"}]
        messages.append(message)
    return ids, messages


def _tracking(repo: GitRepo, ref: str) -> list[str]:
    prefix, suffix = _TRACKING[ref], _TRACKING_NAME[ref]
    out = []
    for name in repo.pygit.references:
        if name.startswith(prefix) and name.endswith(suffix):
            out.append(str(repo.pygit.references[name].target))
    return out


def _ledger_commits_in_store(repo: GitRepo) -> tuple[list[str], list[str]]:
    """Every git-prov ledger commit in the object store: (notes-shaped, objects-shaped)."""
    proc = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectname)"],
        cwd=repo.git_dir,
        env=git_env(),
        capture_output=True,
        check=False,
    )
    notes_like: list[str] = []
    objects_like: list[str] = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        kind, _, oid = line.partition(" ")
        if kind != "commit":
            continue
        commit = repo.pygit.get(oid)
        if not isinstance(commit, pygit2.Commit):
            continue
        message = commit.message
        if not message.startswith("git-prov:") or message.startswith(_DISPLAY_MESSAGE):
            continue
        tree = repo.pygit.get(commit.tree_id)
        if not isinstance(tree, pygit2.Tree) or len(tree) == 0:
            continue
        names = {e.name or "" for e in tree}
        if names & _OBJECT_DIRS:
            objects_like.append(oid)
        elif all(set(n) <= notes.HEX for n in names):
            notes_like.append(oid)
    return notes_like, objects_like


# ---- repair ---------------------------------------------------------------------------------


def repair(repo: GitRepo) -> RepairReport:
    """Repair both ledger refs where they are damaged (see the module docstring).

    Raises CorruptLedger when a ref moved while we repaired it (run it again)."""
    report = RepairReport()
    damage = {ref: ref_damage(repo, ref) for ref in (NOTES_REF, OBJECTS_REF)}
    if not any(damage.values()):
        for ref in (NOTES_REF, OBJECTS_REF):
            present = ref in repo.pygit.references
            report.refs.append(RefRepair(ref, INTACT if present else ABSENT))
        return report
    in_store = _ledger_commits_in_store(repo)
    with ledger_lock(repo.prov_dir / "ledger.lock"):
        for ref, found in zip((NOTES_REF, OBJECTS_REF), in_store, strict=True):
            why = damage[ref]
            if why is None:
                present = ref in repo.pygit.references
                report.refs.append(RefRepair(ref, INTACT if present else ABSENT))
                continue
            report.refs.append(_repair_ref(repo, ref, why, found))
        report.dropped_copies = _drop_broken_copies(repo)
    Ledger(repo).refresh_display()
    return report


def _drop_broken_copies(repo: GitRepo) -> list[str]:
    """Delete tracking copies (``refs/notes/remotes/*/prov``, ``refs/prov/remotes/*/
    objects``) that name a missing commit: they were read as sources already, and while
    one stays, ``git fetch`` believes it has what the remote has and brings nothing."""
    dropped = []
    for name in list(repo.pygit.references):
        if not any(
            name.startswith(_TRACKING[ref]) and name.endswith(_TRACKING_NAME[ref])
            for ref in _TRACKING
        ):
            continue
        reference = repo.pygit.references[name]
        target = repo.pygit.get(reference.target)
        if not isinstance(target, pygit2.Commit) or not repo.pygit.odb.exists(target.tree_id):
            reference.delete()
            dropped.append(name)
    return dropped


def _repair_ref(repo: GitRepo, ref: str, why: str, in_store: list[str]) -> RefRepair:
    pygit = repo.pygit
    is_notes = ref == NOTES_REF
    old = str(pygit.references[ref].target)
    reflog_ids, messages = _reflog(repo, ref)
    sources = list(dict.fromkeys([old, *reflog_ids, *_tracking(repo, ref), *in_store]))
    walk = _Walk(pygit, is_notes)
    readable: list[pygit2.Commit] = []
    for oid in sources:
        commit = pygit.get(oid)
        if not isinstance(commit, pygit2.Commit):
            continue
        readable.append(commit)
        walk.tree(commit.tree_id, "")
    # The newest source whose whole history is readable becomes the parent.
    readable.sort(key=lambda c: (c.commit_time, str(c.id)), reverse=True)
    parent = next((c for c in readable[:50] if _history_intact(repo, str(c.id))), None)
    if is_notes:
        tree, runs, before = _notes_union(pygit, walk, parent)
        recorded = _recorded_runs([*messages, *(c.message for c in readable)])
        lost = tuple(sorted(recorded - runs))
    else:
        tree, runs, before, lost = _objects_union(pygit, walk), set(), set(), ()
    if tree is None:
        _move(repo, ref, old, None)
        return RefRepair(ref, EMPTIED, why, old, None, None, len(readable), 0, 0, lost, 0)
    parents = [parent.id] if parent is not None else []
    if not is_notes:
        parents += _unreached_keeps(repo, pygit, tree, parent)
    ledger = Ledger(repo)
    new = ledger._commit(tree, parents, "git-prov: fsck --repair")
    _move(repo, ref, old, new)
    return RefRepair(
        ref,
        REPAIRED,
        why,
        old,
        str(new),
        str(parent.id) if parent is not None else None,
        len(readable),
        len(runs),
        len(runs - before),
        lost,
        walk.unreadable,
    )


def _notes_union(
    repo: pygit2.Repository, walk: _Walk, parent: pygit2.Commit | None
) -> tuple[pygit2.Oid | None, set[str], set[str]]:
    """The united notes tree, the run ids in it, and the run ids ``parent`` had."""
    texts: dict[str, str] = {}
    runs: set[str] = set()
    for commit_hex, blobs in sorted(walk.notes.items()):
        lines: list[str] = []
        for blob_id in sorted(blobs, key=str):
            blob = repo.get(blob_id)
            if not isinstance(blob, pygit2.Blob):
                walk.unreadable += 1
                continue
            lines += blob.data.decode("utf-8", errors="replace").split("\n")
        text = notes.canonical_note(line.removesuffix("\r") for line in lines)
        if text:
            texts[commit_hex] = text
            runs |= set(run_ids_of(text.splitlines()))
    before: set[str] = set()
    if parent is not None:
        for _, blob_id in notes.iter_notes(repo, parent.tree):
            blob = repo[blob_id]
            assert isinstance(blob, pygit2.Blob)
            before |= set(run_ids_of(blob.data.decode("utf-8", "replace").splitlines()))
    if not texts:
        return None, runs, before
    return notes.set_notes(repo, None, texts), runs, before


def _objects_union(repo: pygit2.Repository, walk: _Walk) -> pygit2.Oid | None:
    from git_prov.store.drops import without_dropped_logs

    present = {p: o for p, o in walk.paths.items() if repo.odb.exists(o)}
    walk.unreadable += len(walk.paths) - len(present)
    if not present:
        return None
    tree_id = edit_tree(repo, None, {p: (o, FILEMODE_BLOB) for p, o in present.items()})
    tree = repo[tree_id]
    assert isinstance(tree, pygit2.Tree)
    return without_dropped_logs(repo, tree)


def _unreached_keeps(
    repo: GitRepo, pygit: pygit2.Repository, tree_id: pygit2.Oid, parent: pygit2.Commit | None
) -> list[pygit2.Oid]:
    """Commits the objects tree keeps (``keep/``) that exist but that ``parent`` does not
    reach: they become parents too, so that git gc keeps them."""
    tree = pygit[tree_id]
    assert isinstance(tree, pygit2.Tree)
    if "keep" not in tree:
        return []
    keep_tree = pygit[tree["keep"].id]
    assert isinstance(keep_tree, pygit2.Tree)
    kept = []
    for fan in keep_tree:
        sub = pygit.get(fan.id)
        if isinstance(sub, pygit2.Tree):
            kept += [(fan.name or "") + (e.name or "") for e in sub]
    existing = [k for k in kept if isinstance(pygit.get(k), pygit2.Commit)]
    if not existing:
        return []
    not_parent = f"^{parent.id}\n" if parent is not None else ""
    feed = "\n".join(existing) + "\n" + not_parent
    proc = repo.git("rev-list", "--stdin", input=feed.encode(), check=False)
    unreached = set(proc.stdout.decode().split())
    chosen = [k for k in existing if k in unreached]

    def whole(commits: list[str]) -> bool:
        # Every object they reach that the parent does not must exist: a parent with a
        # missing tree would make `git gc` fail for the whole repository.
        feed = "\n".join(commits) + "\n" + not_parent
        return (
            repo.git(
                "rev-list", "--objects", "--quiet", "--stdin", input=feed.encode(), check=False
            ).returncode
            == 0
        )

    if chosen and not whole(chosen):
        chosen = [k for k in chosen if whole([k])]
    return [pygit2.Oid(hex=k) for k in chosen]


def _recorded_runs(messages: Iterable[str]) -> set[str]:
    """Run ids that ledger history says were recorded (``git-prov: record run ID``)."""
    out = set()
    for message in messages:
        for match in _RECORDED.finditer(message):
            if RUN_ID_RE.match(match.group(1)):
                out.add(match.group(1))
    return out


def _move(repo: GitRepo, ref: str, old: str, new: pygit2.Oid | None) -> None:
    """Compare-and-swap ``ref`` from ``old`` to ``new`` (None: delete it)."""
    reference = repo.pygit.references[ref]
    if str(reference.target) != old:
        raise CorruptLedger(f"{ref} moved while it was being repaired", "run it again")
    if new is None:
        reference.delete()
    else:
        reference.set_target(new, "git-prov: fsck --repair")


def describe(report: RepairReport) -> list[str]:
    """Lines for people: what was repaired and what could not be brought back."""
    lines: list[str] = []
    for name in report.dropped_copies:
        lines.append(f"{name}: named a missing commit; removed (git prov fetch gets it again)")
    for r in report.refs:
        if r.state == INTACT:
            lines.append(f"{r.ref}: intact")
            continue
        if r.state == ABSENT:
            lines.append(f"{r.ref}: absent (nothing recorded yet)")
            continue
        lines.append(f"{r.ref}: {r.damage}")
        if r.state == EMPTIED:
            lines.append(f"  nothing of it could be read in {r.sources} ledger commits: removed")
        else:
            what = f"{r.runs} runs" if r.ref == NOTES_REF else "the objects tree"
            lines.append(
                f"  restored {what} from {r.sources} ledger commits as {str(r.new)[:12]}"
                + (f" (on {str(r.parent)[:12]}" if r.parent else " (no intact history")
                + (
                    f", {r.brought_back} runs re-united from newer lines)"
                    if r.brought_back
                    else ")"
                )
            )
        if r.unreadable:
            lines.append(f"  lost: {r.unreadable} trees or blobs could not be read")
        if r.lost_runs:
            lines.append(
                f"  lost: {len(r.lost_runs)} recorded runs are in no readable copy: "
                + ", ".join(r.lost_runs[:10])
                + (" …" if len(r.lost_runs) > 10 else "")
                + " (a clone or remote that has them brings them back: git prov fetch)"
            )
    return lines

"""A notes tree read through the ``git`` binary (no pygit2): every note of a notes
commit (:func:`list_notes`), and the notes that differ between two (:func:`changed_notes`;
:class:`DiffAhead`, the difference a notes commit made, asked of git early).
Which paths are notes is git's rule (:func:`git_prov.model.notepath.note_commit`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from git_prov.errors import CorruptLedger
from git_prov.model.notepath import note_commit
from git_prov.store.gitcli import finish_git, run_git, start_git
from git_prov.store.gitcli.paths import RepoPaths

_ZERO_OID = frozenset({"0" * 40, "0" * 64})


def list_notes(paths: RepoPaths, tip: str) -> list[tuple[str, str]]:
    """Every (annotated commit, note blob id) of a notes commit, in tree order. A commit
    (or tree) that is missing is a damaged ledger: CorruptLedger, saying how to repair."""
    proc = run_git(paths.cwd, ["ls-tree", "-r", "-z", "--full-tree", tip], check=False)
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CorruptLedger(
            f"the ledger commit {tip[:12]} cannot be read"
            + (f" ({said[-1].removeprefix('fatal: ')})" if said else ""),
            "run git prov fsck --repair to restore the newest intact ledger",
        )
    out = proc.stdout
    notes: list[tuple[str, str]] = []
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode_type_oid = meta.split()
        if len(mode_type_oid) != 3 or mode_type_oid[1] != b"blob":
            continue
        commit = note_commit(path.decode("ascii", "replace"))
        if commit is not None:
            notes.append((commit, mode_type_oid[2].decode()))
    return notes


def changed_notes(
    paths: RepoPaths, old: str, new: str
) -> dict[str, tuple[str | None, str | None]] | None:
    """Notes that differ between two notes commits: commit → (old blob, new blob), None for
    absent. None when ``old`` cannot be read any more (gc'd): the caller rebuilds."""
    ahead = _ahead.changes(str(paths.cwd), old, new) if _ahead is not None else None
    if ahead is not None:
        return ahead
    proc = run_git(paths.cwd, [*_DIFF, old, new], check=False)
    if proc.returncode != 0:
        return None
    return _changes(proc.stdout)


_DIFF = ("diff-tree", "-r", "-z", "--no-renames", "--no-ext-diff")


def _changes(raw: bytes) -> dict[str, tuple[str | None, str | None]]:
    """The notes a ``git diff-tree -r -z`` output says changed."""
    fields = raw.split(b"\0")
    changes: dict[str, tuple[str | None, str | None]] = {}
    i = 0
    while i + 1 < len(fields):
        meta, path = fields[i].decode("ascii", "replace"), fields[i + 1]
        i += 2
        parts = meta.lstrip(":").split()
        if len(parts) < 5:
            continue
        commit = note_commit(path.decode("ascii", "replace"))
        if commit is None:
            continue
        old_blob = None if parts[2] in _ZERO_OID or parts[0] == "040000" else parts[2]
        new_blob = None if parts[3] in _ZERO_OID or parts[1] == "040000" else parts[3]
        before, after = changes.get(commit, (None, None))
        # A note moved between fan-out levels shows as a deletion and an addition.
        changes[commit] = (before or old_blob, after or new_blob)
    return {c: (o, n) for c, (o, n) in changes.items() if o != n}


class DiffAhead:
    """``git diff-tree`` of the notes commit ``tip`` against its parent, started before
    it is asked for (``git prov get`` starts it when the query index looks older than
    the notes ref, so that the index's catch-up after a record finds the difference
    ready: :func:`ahead`). It answers only for exactly that pair of commits."""

    def __init__(self, cwd: str, tip: str):
        self.cwd = os.path.abspath(cwd)
        self.tip = tip
        self._proc: subprocess.Popen[bytes] | None = start_git(cwd, [*_DIFF, "--format=%P", tip])
        self._answer: tuple[str, bytes] | None = None

    def changes(
        self, cwd: str, old: str, new: str
    ) -> dict[str, tuple[str | None, str | None]] | None:
        """What :func:`changed_notes` says of ``old`` and ``new`` in the repository of
        ``cwd``, when they are this commit's one parent and this commit; else None (the
        caller asks git)."""
        if new != self.tip or not old or os.path.abspath(cwd) != self.cwd:
            return None
        if self._proc is not None:
            done = finish_git(self._proc)
            self._proc = None
            if done.returncode == 0:
                # "<parents>\0", then a newline and the raw difference (none: no parent)
                parents, _, raw = done.stdout.partition(b"\0")
                self._answer = (parents.decode("ascii", "replace"), raw.removeprefix(b"\n"))
        if self._answer is None or self._answer[0] != old:  # (a merge has two parents)
            return None
        return _changes(self._answer[1])

    def close(self) -> None:
        if self._proc is not None:
            finish_git(self._proc)
            self._proc = None


_ahead: DiffAhead | None = None


@contextlib.contextmanager
def ahead(diff: DiffAhead) -> Iterator[DiffAhead]:
    """While inside, :func:`changed_notes` of ``diff``'s commit and its parent is what
    ``diff`` found."""
    global _ahead
    before, _ahead = _ahead, diff
    try:
        yield diff
    finally:
        _ahead = before

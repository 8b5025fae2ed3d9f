"""fsck of the notes on several cores.

Reading every line of a big ledger is Python's work of about 10 µs a line. On a machine
with several cores the notes are cut into contiguous parts (as the first index build does:
:mod:`git_prov.query.parts`); forked helpers read every part but the first, each into a
:class:`Part` of its own, while this process reads the first. Their parts are then taken in,
in order, so that what fsck reports is exactly what one process reading every note in order
reports:

* the findings about notes and lines come in note order;
* a run whose lines are in several parts is checked once, where one process would check
  it (its first line): a later part's checks of that run are dropped;
* when a later part has a run of an earlier part with another text (a conflict, or the
  same record written differently), or any run with several texts in itself that an
  earlier part also has, that part is read again by this process, after the parts before
  it: the exact reading, in order.

A helper that fails for any reason has its part read by this process instead. Small ledgers
(fewer than :data:`~git_prov.query.parts.MIN_NOTES_PER_PART` notes a part) are read by this
process alone; ``GIT_PROV_INDEX_JOBS=N`` sets the number of parts, as for the index.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from git_prov.fsck.findings import Finding, FsckReport
from git_prov.fsck.notes import RunChecks, RunKey, Runs, read_notes, run_key
from git_prov.model.record import Attachment, RunRecord, Tombstone
from git_prov.store.headers import ObjectHeaders


@dataclass
class Part:
    """What a helper found in its notes (see :class:`~git_prov.fsck.notes.Runs` and
    :class:`~git_prov.fsck.notes.RunChecks`)."""

    findings: list[Finding]
    notes: int
    lines: int
    seen: dict[RunKey, int]
    versions: dict[str, list[RunRecord]]
    tombstoned: set[str]
    annotated: dict[str, bool]
    tombstones: list[tuple[Tombstone, str]]
    attachments: list[tuple[Attachment, str]]
    found: list[tuple[tuple[str, int, int, int], Finding]]
    owner: dict[tuple[str, str], tuple[str, int, int, str]]


def read_in_parts(
    runs: Runs,
    objects: ObjectHeaders,
    report: FsckReport,
    checks: RunChecks,
    advance: Callable[[int], None],
) -> bool:
    """Read every note of ``runs.notes`` in parts (as :func:`read_notes` over all of them
    would); False, with nothing read, when one process is to read them all."""
    from git_prov.query import parts

    count = parts.part_count(len(runs.notes)) if not runs.keep_all else 1
    if count < 2:
        return False
    pieces = parts.split(range(len(runs.notes)), count)
    work = partial(_read_part, runs, objects, checks.tree_paths)
    helpers = parts.Helpers(work, pieces[1:])
    try:
        with helpers:
            read_notes(runs, pieces[0], objects, report, checks, lambda n: advance(n * count))
            for piece, path in helpers.results():
                found = _load(path) if path is not None else None
                if found is None or not _take(runs, report, checks, found):
                    read_notes(runs, piece, objects, report, checks, lambda n: None)
    finally:
        helpers.remove()
    return True


def _read_part(
    runs: Runs, objects: ObjectHeaders, tree_paths: set[str], piece: range, path: str
) -> None:
    """A helper's work: read ``piece`` of the notes into a :class:`Part` pickled to
    ``path``."""
    mine = Runs(notes=runs.notes)
    report = FsckReport()
    checks = RunChecks(tree_paths, objects)
    read_notes(mine, piece, objects, report, checks, lambda n: None)
    part = Part(
        report.findings, report.notes, report.lines, mine.seen, mine.versions,
        mine.tombstoned, mine.annotated, mine.tombstones, mine.attachments, checks.found,
        checks.owner,
    )  # fmt: skip
    with open(path + ".tmp", "wb") as out:
        pickle.dump(part, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path + ".tmp", path)


def _load(path: str) -> Part | None:
    """A helper's part, or None when its file cannot be read (a part read again here)."""
    with contextlib.suppress(Exception), open(path, "rb") as data:
        found: Any = pickle.load(data)
        if isinstance(found, Part):
            return found
    return None


def _take(runs: Runs, report: FsckReport, checks: RunChecks, part: Part) -> bool:
    """Add a later part to what the parts before it found, as if this process had read it
    next; False (nothing changed) when only reading it here can say what it holds."""
    earlier = [runs.seen, *runs.taken]
    common: set[RunKey] = set()
    for seen in earlier:
        common |= seen.keys() & part.seen.keys()
    if common and (runs.versions or part.versions):  # runs with several texts: maybe in both
        versioned = {run_key(run_id) for run_id in (*runs.versions, *part.versions)}
        if not common.isdisjoint(versioned):
            return False
    for key in common:
        first = runs.first_of(key)
        assert first is not None
        if first >> 64 != part.seen[key] >> 64:
            return False  # another text of the run: maybe a conflict
    for key in common:
        del part.seen[key]  # (checked where it was first seen)
    report.findings.extend(part.findings)
    report.notes += part.notes
    report.lines += part.lines
    runs.taken.append(part.seen)
    runs.versions.update(part.versions)
    runs.tombstoned |= part.tombstoned
    runs.annotated.update(part.annotated)
    runs.tombstones += part.tombstones
    runs.attachments += part.attachments
    if common:
        checks.found += [item for item in part.found if run_key(item[0][0]) not in common]
    else:
        checks.found += part.found
    for named, owner in part.owner.items():
        known = checks.owner.get(named)
        checks.owner[named] = owner if known is None else min(known, owner)
    return True

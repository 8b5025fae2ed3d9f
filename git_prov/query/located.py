"""Runs found through the query index, as :meth:`Ledger.scan` would give them.

``git prov show RUN``, ``log``, ``diff``, ``check`` and the API name a few runs or a few
commits; reading every note to find them (:meth:`~git_prov.store.ledger.Ledger.scan`)
costs seconds on a ledger of 100k runs. The index knows which note line holds each run's
record and attachments, so only those lines are read back (from the note blobs the index
was built from, through one ``git cat-file --batch``) and parsed with the model's exact
reader. The results equal the scan's: the same record (the live one: see
:mod:`git_prov.query.index`), the same ``shown_on`` (the commit it ran on, then every other
commit whose note holds its record or an attachment of it, in commit id order) and the same
attachments; tests/test_query_located.py checks this against ``Ledger.scan`` on ledgers
made by rewrites, merges, conflicts and deletions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from git_prov.errors import CorruptLedger, NotFound
from git_prov.model.ids import short_run_id
from git_prov.model.record import Attachment, LocatedRun, RunRecord, Tombstone, parse_line
from git_prov.query.index import (
    KIND_ATTACH,
    KIND_RUN,
    KIND_TOMBSTONE,
    RepoPaths,
    RunIndex,
    with_index,
)
from git_prov.query.rows import _scan_json, fast_run, note_lines, record_json_of
from git_prov.store.gitcli import read_blobs

if TYPE_CHECKING:
    from git_prov.model.conflict import RunConflict
    from git_prov.store.repo import GitRepo


R = TypeVar("R")
Copies = tuple[tuple[str, str], ...]  # (note, line) of each different copy of a run
_NOTE_ORDER = itemgetter(3, 4)  # (note, lineno) of a row


def _walk(
    index: RunIndex,
    run_ids: Iterable[str],
    read_run: Callable[[str], R | None],
    commit_of: Callable[[R], str],
    *,
    missing_ok: bool = False,
) -> dict[str, tuple[R, tuple[str, ...], list[Attachment], Copies]]:
    """Each live run among ``run_ids``: its record (its line read by ``read_run``), the
    commits it is shown on, its attachments, and — when the ledger holds different
    records under its id — every distinct copy as (note, line), the live one first. A
    note blob that is missing raises :class:`CorruptLedger`, unless ``missing_ok`` (then
    its runs are left out)."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return {}
    index.need("lines_note")
    select = (
        "SELECT l.run, l.kind, l.live, l.note, l.lineno, n.blob FROM lines l"
        " JOIN notes n ON n.commit_id = l.note WHERE l.kind IN (?, ?)"
    )
    kinds = (KIND_RUN, KIND_ATTACH)
    most = len(wanted) * 4
    if most >= index.run_count(at_most=most + 1):  # most runs: one plain scan, sorted here
        chosen = set(wanted)
        rows = [r for r in index.db.execute(select, kinds) if r[0] in chosen]
        live = {r[0] for r in rows if r[2]}
        rows = sorted((r for r in rows if r[0] in live), key=_NOTE_ORDER)
    else:
        with index.selecting(wanted):
            rows = index.db.execute(
                select + " AND l.run IN temp.wanted"
                " AND l.run IN (SELECT run FROM lines WHERE live = 1 AND run IN temp.wanted)"
                " ORDER BY l.note, l.lineno",
                kinds,
            ).fetchall()
    # A run stored more than once (copied onto a rewritten commit, or in conflict): its
    # other lines are read too, to tell identical copies from different ones.
    stored: dict[str, int] = {}
    for run, kind, *_ in rows:
        if kind == KIND_RUN:
            stored[run] = stored.get(run, 0) + 1
    needed = {
        blob
        for run, kind, live, _, _, blob in rows
        if live or kind == KIND_ATTACH or stored.get(run, 0) > 1
    }
    texts = {
        oid: note_lines(data) for oid, data in read_blobs(index.paths.cwd, sorted(needed)).items()
    }
    records: dict[str, R] = {}
    live_lines: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    attachments: dict[str, list[Attachment]] = {}
    copies: dict[str, dict[str, tuple[str, str]]] = {}  # run → payload → (note, line)
    for run, kind, live, note, lineno, blob in rows:
        shown = notes.setdefault(run, [])
        if not shown or shown[-1] != note:
            shown.append(note)
        lines = texts.get(blob)
        line = lines[lineno - 1] if lines is not None and 1 <= lineno <= len(lines) else None
        if kind == KIND_RUN and line is not None and stored.get(run, 0) > 1:
            payload = line[line.rfind("\t") + 1 :].strip()
            copies.setdefault(run, {}).setdefault(payload, (note, line))
        if not live and kind != KIND_ATTACH:
            continue
        if kind == KIND_ATTACH:
            entry = _entry(line)
            if isinstance(entry, Attachment):
                attachments.setdefault(run, []).append(entry)
                continue
        elif line is not None:
            record = read_run(line)
            if record is not None:
                records[run] = record
                live_lines[run] = line
                continue
        if lines is None and not missing_ok:
            raise CorruptLedger(
                f"the note on {note[:12]} that holds run {run} cannot be read: its blob "
                f"{blob[:12]} is missing",
                "run git prov fsck; fetch the ledger again (git prov fetch) if a clone has it",
            )
    out: dict[str, tuple[R, tuple[str, ...], list[Attachment], Copies]] = {}
    for run in wanted:
        record = records.get(run)
        if record is None:
            continue  # its note changed under us: the caller reports it as not found
        commit = commit_of(record)
        others = [c for c in notes.get(run, ()) if c != commit]
        distinct = copies.get(run, {})
        listed = tuple(distinct.values()) if len(distinct) > 1 else ()
        if listed:  # the live copy first (rows are in note order, as liveness is)
            first = live_lines.get(run)
            listed = tuple(sorted(listed, key=lambda c: c[1] != first))
        out[run] = (record, (commit, *others), attachments.get(run, []), listed)
    return out


def located(index: RunIndex, run_ids: Iterable[str]) -> dict[str, LocatedRun]:
    """The live runs among ``run_ids`` (deleted or unknown ids are left out). A run the
    ledger holds different records for carries its :class:`RunConflict`, and its record
    is the copy :func:`resolve_copies` shows."""
    found = _walk(index, run_ids, _exact_run, lambda record: record.commit)
    out = {}
    for run, (record, shown, attached, copies) in found.items():
        conflict = None
        if copies:
            record, conflict = resolve_copies(index.paths, copies)
            shown = (record.commit, *(c for c in shown if c != record.commit))
        out[run] = LocatedRun(record, shown, tuple(attached), conflict)
    return out


def as_scanned(
    index: RunIndex, run_ids: Iterable[str]
) -> dict[str, tuple[LocatedRun, list[RunRecord]]]:
    """The live runs among ``run_ids`` exactly as :meth:`Ledger.scan` gives them — the live
    record (not the copy a conflict shows), its ``shown_on`` and attachments — with every
    distinct record stored under its id (``scan.conflicts``, or the one record): what
    ``git prov gc`` decides on."""
    found = _walk(index, run_ids, _exact_run, lambda record: record.commit)
    out = {}
    for run, (record, shown, attached, copies) in found.items():
        versions = [record]
        for _, line in copies:
            other = _exact_run(line)
            if other is not None and other not in versions:
                versions.append(other)
        out[run] = (LocatedRun(record, shown, tuple(attached)), versions)
    return out


def conflicted(index: RunIndex, run_ids: Sequence[str]) -> dict[str, LocatedRun]:
    """The runs among ``run_ids`` whose ledger holds different records (each with its
    :class:`RunConflict` and the copy to show). Reads only runs stored more than once."""
    several: list[str] = []
    most = len(run_ids) * 4
    if most >= index.run_count(at_most=most + 1):  # most runs: one pass over the table
        wanted = set(run_ids)
        several = [
            run
            for (run,) in index.db.execute(
                "SELECT run FROM lines WHERE kind = ? GROUP BY run HAVING count(*) > 1",
                (KIND_RUN,),
            )
            if run in wanted
        ]
        run_ids = ()
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        several += [
            run
            for (run,) in index.db.execute(
                f"SELECT run FROM lines WHERE kind = ? AND run IN ({marks})"
                " GROUP BY run HAVING count(*) > 1",
                (KIND_RUN, *chunk),
            )
        ]
    found = located(index, several) if several else {}
    return {run: found[run] for run in several if run in found and found[run].conflict}


def describe_conflicts(paths: RepoPaths, run_ids: Sequence[str]) -> list[str]:
    """One line per run of ``run_ids`` in conflict: how many copies, which one verifies
    and is shown (what ``fetch``/``sync`` warn with when a different copy arrives)."""

    def describe(index: RunIndex) -> list[str]:
        out = []
        for _, run in sorted(conflicted(index, run_ids).items()):
            conflict = run.conflict
            if conflict is None:
                continue
            others = ", ".join(c.verdict for c in conflict.copies[1:])
            if conflict.shown == "verified":
                signer = conflict.copies[0].signer
                how = "the copy that verifies" + (f" (signed by {signer})" if signer else "")
                out.append(
                    f"run {run.record.short_id} now has {len(conflict.copies)} different "
                    f"copies (a conflict); {how} is shown, the other copies are: {others}"
                )
            else:
                out.append(
                    f"run {run.record.short_id} now has {len(conflict.copies)} different "
                    f"copies (a conflict) and none verifies ({others}); the first is shown "
                    f"— compare them with git prov show {run.record.short_id}"
                )
        return out

    return list(with_index(paths, describe))


def resolve_copies(paths: RepoPaths, copies: Copies) -> tuple[RunRecord, RunConflict]:
    """The copy of a run in conflict to show, and the conflict to report: each copy's
    signature is checked (as ``git prov verify`` does, when any copy is signed) and the
    first copy a trusted key signed is shown; when none is, the first (live) copy,
    flagged. Never silent: the caller shows the conflict with the record."""
    from git_prov.model.conflict import choose
    from git_prov.model.record import line_object

    parsed = []
    for note, line in copies:
        record = _exact_run(line)
        if record is not None:
            parsed.append((record, note, line_object(line)))
    if any(data.get("signature") is not None for _, _, data in parsed):
        from git_prov.trust.signing import VerifyOptions, verify_line

        options = VerifyOptions.from_values(_git_config(paths), paths.workdir)
        verdicts = [verify_line(data, options) for _, _, data in parsed]
        return choose(
            [
                (r, note, v.status, v.signer)
                for (r, note, _), v in zip(parsed, verdicts, strict=True)
            ]
        )
    return choose([(r, note, "unsigned", None) for r, note, _ in parsed])


def _git_config(paths: RepoPaths) -> Callable[[str], str | None]:
    import subprocess

    def value(key: str) -> str | None:
        proc = subprocess.run(
            ["git", "config", "--get", key], cwd=paths.cwd, capture_output=True, text=True
        )
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    return value


def record_jsons(index: RunIndex, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each live run among ``run_ids`` as ``render.record_json`` makes it from
    :func:`located` — the stored record plus ``short_id``, ``shown_on`` and
    ``attachments`` — without building record objects: a line the fast reader takes is
    turned into JSON directly (``find --json`` of 100k runs). Runs whose note blob is
    missing are left out."""
    from git_prov.query.whereabouts import newest_commit

    known: set[str] = set()  # ids the fast reader has checked
    found = _walk(
        index,
        run_ids,
        partial(line_json, known=known),
        lambda data: str(data["commit"]),
        missing_ok=True,
    )
    out: dict[str, dict[str, Any]] = {}
    for run, (data, shown, attached, copies) in found.items():
        if copies:
            record, conflict = resolve_copies(index.paths, copies)
            data = record.to_json_dict()
            data["conflict"] = conflict.to_json_dict()
            shown = (record.commit, *(c for c in shown if c != record.commit))
        data["short_id"] = short_run_id(run)
        data["shown_on"] = list(shown)
        if attached:
            data["attachments"] = [a.to_json_dict() for a in attached]
        data["shown_now"] = newest_commit(str(data["commit"]), attached)
        out[run] = data
    return out


def line_json(line: str, known: set[str]) -> dict[str, Any] | None:
    """The record of a run line as ``RunRecord.to_json_dict`` makes it (None when it is
    not one): from the decoded line when the fast reader takes it (``known``: the run ids
    it has checked, shared by the calls of one read)."""
    payload = line[line.rfind("\t") + 1 :].strip()
    try:  # (json.loads without its wrappers: the same value when it ends the payload)
        data, end = _scan_json(payload, 0)
    except (ValueError, StopIteration, RecursionError):
        return None
    if end != len(payload):
        return None
    if fast_run(line, data, known):
        return record_json_of(data)
    entry = _entry(line)
    return entry.to_json_dict() if isinstance(entry, RunRecord) else None


def resolve(index: RunIndex, spec: str) -> LocatedRun:
    """The run ``spec`` names — a full id, a short id or a prefix of either (at least 4
    characters); :class:`NotFound` saying why otherwise, also for a deleted run."""
    try:
        run_id = index.resolve_run(spec)
    except NotFound as missing:
        stone = _deleted(index, spec.strip())
        if stone is not None:
            raise NotFound(
                f"run {stone.run} was removed on {stone.at[:10]}"
                + (f" ({stone.reason})" if stone.reason else ""),
                "removed runs are hidden; `git prov fsck` still checks them",
            ) from None
        raise missing from None
    run = located(index, [run_id]).get(run_id)
    if run is None:
        raise NotFound(f"no run matches {spec!r}", "list runs with `git prov find`")
    return run


def runs_on(index: RunIndex, commits: Sequence[str]) -> dict[str, list[LocatedRun]]:
    """The live runs shown on each of ``commits`` (oldest first); commits without any are
    left out."""
    ids = run_ids_on(index, commits)
    found = located(index, {run for runs in ids.values() for run in runs})
    out: dict[str, list[LocatedRun]] = {}
    for commit, runs in ids.items():
        listed = [found[r] for r in runs if r in found]
        if listed:
            out[commit] = listed
    return out


def run_ids_on(index: RunIndex, commits: Sequence[str]) -> dict[str, list[str]]:
    """The ids of the live runs shown on each of ``commits``, sorted (oldest first);
    commits without any are left out. Reads no note."""
    on: dict[str, set[str]] = {}
    index.need("lines_note")
    for start in range(0, len(commits), 500):
        chunk = commits[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for note, run in index.db.execute(
            f"SELECT DISTINCT note, run FROM lines l WHERE kind IN (?, ?) AND note IN ({marks})"
            " AND EXISTS (SELECT 1 FROM lines m WHERE m.run = l.run AND m.live = 1)",
            (KIND_RUN, KIND_ATTACH, *chunk),
        ):
            on.setdefault(note, set()).add(run)
    return {commit: sorted(on[commit]) for commit in commits if commit in on}


def annotated_among(index: RunIndex, commits: Sequence[str]) -> set[str]:
    """Those of ``commits`` that have a note."""
    out: set[str] = set()
    for start in range(0, len(commits), 500):
        chunk = commits[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            c
            for (c,) in index.db.execute(
                f"SELECT commit_id FROM notes WHERE commit_id IN ({marks})", chunk
            )
        )
    return out


def annotated(index: RunIndex) -> set[str]:
    """The commits that have a note (names only): the only ones worth asking about."""
    return {c for (c,) in index.db.execute("SELECT commit_id FROM notes")}


def _entry(line: str | None) -> RunRecord | Attachment | Tombstone | None:
    if line is None:
        return None
    try:
        return parse_line(line)
    except ValueError:
        return None


def _exact_run(line: str) -> RunRecord | None:
    entry = _entry(line)
    return entry if isinstance(entry, RunRecord) else None


def _deleted(index: RunIndex, spec: str) -> Tombstone | None:
    """The tombstone of the deleted run ``spec`` names, if it names exactly such runs."""
    if len(spec) < 4:
        return None
    low, high = spec, spec[:-1] + chr(ord(spec[-1]) + 1)
    for run, lineno, blob in index.db.execute(
        "SELECT l.run, l.lineno, n.blob FROM lines l JOIN notes n ON n.commit_id = l.note"
        " WHERE l.kind = ? AND ((l.run >= ? AND l.run < ?) OR substr(l.run, 22, ?) = ?)"
        " AND l.run IN (SELECT run FROM lines WHERE kind = ?) ORDER BY l.note, l.lineno LIMIT 1",
        (KIND_TOMBSTONE, low, high, len(spec), spec, KIND_RUN),
    ):
        data = read_blobs(index.paths.cwd, [blob]).get(blob)
        lines = note_lines(data) if data is not None else []
        entry = _entry(lines[lineno - 1] if 1 <= lineno <= len(lines) else None)
        if isinstance(entry, Tombstone) and entry.run == run:
            return entry
    return None


def find_run(repo: GitRepo, spec: str) -> LocatedRun:
    """:func:`resolve` in ``repo``'s index (brought up to date first)."""
    return with_index(RepoPaths.of_repo(repo), lambda index: resolve(index, spec))  # type: ignore[no-any-return]


def runs_on_commit(repo: GitRepo, commit: str) -> list[LocatedRun]:
    """The live runs shown on ``commit``, oldest first, from ``repo``'s index."""
    found = with_index(RepoPaths.of_repo(repo), lambda index: runs_on(index, [commit]))
    return list(found.get(commit, []))

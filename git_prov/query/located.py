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

import contextlib
import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from git_prov.errors import CorruptLedger, NotFound
from git_prov.model.ids import RUN_ID_RE
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
from git_prov.store.gitcli import read_blobs, stream_blobs

if TYPE_CHECKING:
    from git_prov.model.conflict import RunConflict

if TYPE_CHECKING:
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
        partial(_line_json, known=known),
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
        match = RUN_ID_RE.match(run)
        data["short_id"] = match.group(2) if match else run[:8]
        data["shown_on"] = list(shown)
        if attached:
            data["attachments"] = [a.to_json_dict() for a in attached]
        data["shown_now"] = newest_commit(str(data["commit"]), attached)
        out[run] = data
    return out


# What ``find --json`` prints of each run (with :func:`find_members`).
FIND_JSON: Callable[[dict[str, Any]], str] = json.JSONEncoder(sort_keys=True).encode


def find_members(run: str, commit: str, note: str) -> dict[str, Any]:
    """What find adds to the record of a run with one row in the index (its record, on
    ``commit``, in the note of ``note``): its short id, and where it is shown."""
    match = RUN_ID_RE.match(run)
    return {
        "short_id": match.group(2) if match else run[:8],
        "shown_on": [commit] if note == commit else [commit, note],
        "shown_now": commit,
    }


def records_in_order(
    index: RunIndex,
    run_ids: Sequence[str],
    encode: Callable[[dict[str, Any]], str],
    *,
    part: int = 2048,
) -> Iterator[str]:
    """``encode`` of each run's :func:`record_jsons` record, in the order of ``run_ids``
    (runs it cannot read are left out), in about constant memory however many runs: what
    :func:`records_of_rows` gives for their live rows."""
    if not run_ids:
        return
    live: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        select = "SELECT run, id FROM lines WHERE live = 1"
        if len(run_ids) * 4 < index.run_count(at_most=len(run_ids) * 4 + 1):
            stack.enter_context(index.selecting(run_ids))
            select += " AND run IN temp.wanted"
        live = dict(index.db.execute(select))
    rows = [live[run] for run in run_ids if run in live]
    del live
    yield from records_of_rows(index, rows, encode, part=part)


def records_of_rows(
    index: RunIndex,
    rows: Sequence[int],
    encode: Callable[[dict[str, Any]], str],
    *,
    part: int = 2048,
) -> Iterator[str]:
    """``encode`` of the :func:`record_jsons` record of the run of each of ``rows`` (ids
    of live rows of the index, as find gives them), in that order (runs it cannot read
    are left out), in about constant memory however many runs.

    The runs are read in the order their lines sit in the notes, every note blob once
    through one ``git cat-file --batch``, encoded into a temporary file, and read back in
    the order asked for; all are encoded before the first is yielded. A run with one row
    in the index — its record, no attachment, no other copy: nearly every run — is made
    from its line alone (:func:`find_members`); the others go through
    :func:`record_jsons`, a part at a time. With ``encode`` :data:`FIND_JSON`, the lines
    a note's ``splices`` in the index name are not decoded (:func:`_learn_splices`)."""
    for data in _spooled(index, rows, encode, part=part):
        yield data.decode("utf-8", "surrogatepass")


def find_json_of_rows(index: RunIndex, rows: Sequence[int], *, part: int = 2048) -> Iterator[bytes]:
    """:func:`records_of_rows` with :data:`FIND_JSON`, as the bytes find --json prints
    (ASCII: FIND_JSON escapes every other character), never decoded to text."""
    return _spooled(index, rows, FIND_JSON, part=part)


def _spooled(
    index: RunIndex,
    rows: Sequence[int],
    encode: Callable[[dict[str, Any]], str],
    *,
    part: int = 2048,
) -> Iterator[bytes]:
    """:func:`records_of_rows`, each text as UTF-8 (lone surrogates passed through)."""
    if not rows:
        return
    # Positions in ``rows`` by row id, in arrays, not dicts and tuples: 100k runs.
    at_of = array("i", [-1]) * (max(rows) + 1)
    for i, row in enumerate(rows):
        if at_of[row] < 0:
            at_of[row] = i
    found = _single_rows(index, at_of, len(rows))
    splicing = encode is FIND_JSON
    tag = _splices_tag() if splicing else ""
    learned: list[tuple[str, str, str]] = []  # (splices, note, blob) worked out here

    def put_text(at: int, text: str) -> None:
        spool.put(at, text.encode("utf-8", "surrogatepass"))

    with _Spool(len(rows)) as spool:
        known: set[str] = set()  # ids the fast reader has checked
        ats, linenos, which = found.ats, found.linenos, found.which
        k, count = 0, len(ats)
        for number, (blob_id, blob) in enumerate(stream_blobs(index.paths.cwd, found.blobs)):
            note = found.notes[number]
            if len(known) > 4096:
                known.clear()  # (ids checked once more, rather than held for every run)
            kept = found.splices[number] if splicing and blob else None
            if kept is not None and kept.startswith(tag):
                splices = [int(entry) for entry in kept[len(tag) :].split(",")]
                raw = blob.split(b"\n")  # type: ignore[union-attr]
                if len(splices) == len(raw):  # (always: kept for this very blob)
                    k = _put_spliced(spool, found, k, number, raw, splices, note, known)
                    continue
            lines = note_lines(blob) if blob is not None else []
            splices = []
            printed: dict[int, str] = {}  # line number -> FIND_JSON of its run, if made
            if splicing and lines:  # (every line, once)
                splices, printed = _learn_splices(lines, note, known)
                learned.append((tag + ",".join(map(str, splices)), note, blob_id))
            while k < count and which[k] == number:
                at, lineno = ats[k], linenos[k]
                k += 1
                if at in spool or not 1 <= lineno <= len(lines):
                    continue  # (a missing blob: left out, as record_jsons does)
                if lineno in printed:
                    put_text(at, printed[lineno])
                elif (record := _line_json(lines[lineno - 1], known)) is not None:
                    record.update(find_members(str(record["id"]), str(record["commit"]), note))
                    put_text(at, encode(record))
        others, others_runs = found.others, found.others_runs
        for start in range(0, len(others), part):
            chunk = others_runs[start : start + part]
            records = record_jsons(index, chunk)
            for at, run in zip(others[start : start + part], chunk, strict=True):
                if run in records and at not in spool:
                    put_text(at, encode(records[run]))
        index.remember_splices(learned)
        del learned
        yield from spool.texts(at_of[row] for row in rows)


def _put_spliced(
    spool: _Spool,
    found: _Rows,
    k: int,
    number: int,
    raw: list[bytes],
    splices: list[int],
    note: str,
    known: set[str],
) -> int:
    """Spool FIND_JSON of the rows of note blob ``number`` (its lines ``raw``, split at
    ``\\n``; their kept ``splices``), from ``found``'s ``k``-th row on; returns the index
    of the next blob's first row. A line with a splice is printed from its own bytes
    (:func:`_with_members`, :func:`_spaced`, on bytes: the same result for an ASCII
    line, which every line with a splice is); the others are decoded."""
    ats, linenos, which = found.ats, found.linenos, found.which
    count, total = len(ats), len(raw)
    note_b = note.encode()
    texts: list[bytes] = []
    texts_at: list[int] = []
    lines: list[str] | None = None
    while k < count and which[k] == number:
        at, lineno = ats[k], linenos[k]
        k += 1
        if at in spool or not 1 <= lineno <= total:
            continue
        splice = splices[lineno - 1]
        if splice >= 0:
            line = raw[lineno - 1]
            payload = line[line.rfind(b"\t") + 1 :].removesuffix(b"\r")
            id_at = payload.find(b'"id":"') + 6
            id_end = payload.find(b'"', id_at)
            commit_at = payload.find(b'"commit":"') + 10
            commit = payload[commit_at : payload.find(b'"', commit_at)]
            shown = b'"' + commit + b'"' if commit == note_b else b'"%s","%s"' % (commit, note_b)
            texts_at.append(at)
            texts.append(
                b'%s,"short_id":"%s","shown_now":"%s","shown_on":[%s]%s'
                % (payload[:splice], payload[id_end - 8 : id_end], commit, shown, payload[splice:])
            )
            continue
        if lines is None:
            lines = note_lines(b"\n".join(raw))
        record = _line_json(lines[lineno - 1], known)
        if record is not None:
            record.update(find_members(str(record["id"]), str(record["commit"]), note))
            spool.put(at, FIND_JSON(record).encode("utf-8", "surrogatepass"))
    if texts:
        spaced = b"\n".join(texts).replace(b',"', b', "').replace(b'":', b'": ')
        for at, text in zip(texts_at, spaced.split(b"\n"), strict=True):
            spool.put(at, text)
    return k


class _Spool:
    """Texts put by position in any order and read back in position order, in about
    constant memory: each band of positions has a temporary file, read back whole when
    its turn comes (one read a band, not one a text; not mapped: mapped pages would
    count as this process's memory)."""

    BANDS = 64

    def __init__(self, count: int) -> None:
        self.band = max(8192, -(-count // self.BANDS))
        self.offsets = array("q", [-1]) * count
        self.sizes = array("q", [0]) * count
        self.files: list[Any] = [None] * (-(-count // self.band))
        self.ends = [0] * len(self.files)
        self.opened = contextlib.ExitStack()

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.opened.close()

    def __contains__(self, at: int) -> bool:
        return self.offsets[at] >= 0

    def put(self, at: int, data: bytes) -> None:
        band = at // self.band
        file = self.files[band]
        if file is None:
            import tempfile  # (here only: `log` and `show` never load it)

            file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by self.opened)
            self.files[band] = self.opened.enter_context(file)
        self.offsets[at], self.sizes[at] = self.ends[band], len(data)
        self.ends[band] += len(data)
        file.write(data)

    def texts(self, order: Iterable[int]) -> Iterator[bytes]:
        """The text put at each position of ``order`` (rising, but for repeats of one
        seen before), skipping positions with none."""
        offsets, sizes, current, data = self.offsets, self.sizes, -1, b""
        for at in order:
            offset = offsets[at]
            if offset < 0:
                continue
            band = at // self.band
            if band == current:
                yield data[offset : offset + sizes[at]]
                continue
            file = self.files[band]
            if band < current:  # (a position asked for again: read just it)
                yield os.pread(file.fileno(), sizes[at], offset)
                continue
            file.flush()
            data, current = b"", band
            while len(data) < self.ends[band]:  # (one read, but for a short one)
                data += os.pread(file.fileno(), self.ends[band] - len(data), len(data))
            yield data[offset : offset + sizes[at]]


@dataclass
class _Rows:
    """The live rows asked for, in note order: for runs with that one row, their
    positions, line numbers and which of ``blobs`` (the note blobs, each once, with the
    commits of their ``notes`` and what the index keeps of their ``splices``) holds the
    line; the positions of the ``others`` and their run ids."""

    ats: array[int] = field(default_factory=lambda: array("i"))
    linenos: array[int] = field(default_factory=lambda: array("i"))
    which: array[int] = field(default_factory=lambda: array("i"))
    blobs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    splices: list[str | None] = field(default_factory=list)
    others: array[int] = field(default_factory=lambda: array("q"))
    others_runs: list[str] = field(default_factory=list)


def _single_rows(index: RunIndex, at_of: array[int], count: int) -> _Rows:
    """:class:`_Rows` of the rows ``at_of`` gives positions to (by row id; ``count`` of
    them: all of the index's live rows are read when they are most)."""
    db = index.db
    index.need("lines_note")  # (the rows are read in its order)
    # (Any second row of a run — a copy, an attachment — sends it the exact way.)
    select = (
        "SELECT l.id, l.lineno, l.note, CASE WHEN l.run IN (SELECT run FROM lines"
        " WHERE run IS NOT NULL GROUP BY run HAVING count(*) > 1) THEN l.run END"
        " FROM lines l WHERE l.live = 1"
    )
    out = _Rows()
    with contextlib.ExitStack() as stack:
        if count * 4 < index.run_count(at_most=count * 4 + 1):
            db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_rows (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.wanted_rows")
            stack.callback(db.execute, "DELETE FROM temp.wanted_rows")
            db.executemany(
                "INSERT INTO temp.wanted_rows VALUES (?)",
                ((row,) for row, at in enumerate(at_of) if at >= 0),
            )
            select += " AND l.id IN temp.wanted_rows"
        # The notes, read beside the rows in the same (commit id) order.
        notes = db.execute("SELECT commit_id, blob, splices FROM notes ORDER BY commit_id")
        note = blob = ""
        splices: str | None = None
        for row, lineno, row_note, shared in db.execute(select + " ORDER BY l.note, l.lineno"):
            at = at_of[row] if row < len(at_of) else -1
            if at < 0:
                continue
            if shared is not None:
                out.others.append(at)
                out.others_runs.append(shared)
                continue
            if row_note != note:
                while note < row_note:
                    note, blob, splices = next(notes, ("\uffff", "", None))
                if note != row_note:  # (never: every line's note has a row)
                    continue
                out.blobs.append(blob)
                out.notes.append(note)
                out.splices.append(splices)
            out.ats.append(at)
            out.linenos.append(lineno)
            out.which.append(len(out.blobs) - 1)
    return out


# ---- find --json without decoding -----------------------------------------------------------
#
# A note line as git-prov writes it holds its record's JSON with sorted keys, no spaces and
# ASCII only — nearly what find --json prints of it: the same text with find's own members
# put in at one place and a space after each separator. Where that gives exactly
# FIND_JSON's bytes, find prints the line without decoding it. Whether it does is tried
# once per note blob, by making both and comparing (so it holds by construction, for that
# line, that note and those members: all fixed for a blob in the note of a commit), and
# kept in the index beside the blob (``notes.splices``: per line, the offset where the
# members go, or -1).


@cache
def _splices_tag() -> str:
    """What ``notes.splices`` entries start with: a checksum of what find adds and how it
    prints it, so that offsets worked out for other members or another style (an older
    git-prov) are worked out again rather than used."""
    import zlib

    sample = find_members("20260101T000000.000Z-0123abcd", "a" * 40, "b" * 40)
    # ("bytes": offsets worked out before lines with blanks around their JSON were left out)
    return f"{zlib.crc32(b'bytes ' + FIND_JSON(sample).encode()):08x}:"


def _learn_splices(
    lines: Sequence[str], note: str, known: set[str]
) -> tuple[list[int], dict[int, str]]:
    """For each of a note's lines, the offset in its JSON where find's own members go
    when that prints it exactly as :data:`FIND_JSON` does, else -1; and (the work is done)
    FIND_JSON's print of each run line, by line number."""
    splices: list[int] = []
    printed: dict[int, str] = {}
    for lineno, line in enumerate(lines, start=1):
        splice = -1
        record = _line_json(line, known)
        if record is not None:
            run, commit = str(record["id"]), str(record["commit"])
            record.update(find_members(run, commit, note))
            printed[lineno] = FIND_JSON(record)
            after = min((key for key in record if key > "shown_on"), default=None)
            payload = line[line.rfind("\t") + 1 :]
            at = payload.rfind(f',"{after}":') if after is not None else -1
            # (Not when its JSON has blanks around it: spliced lines are read as bytes.)
            at = at if payload == payload.strip() else -1
            if at >= 0 and _spaced(_with_members(line, at, note)) == printed[lineno]:
                splice = at
        splices.append(splice)
    return splices, printed


def _with_members(line: str, splice: int, note: str) -> str:
    """A line's JSON with find's own members put in at ``splice``, in its own style (no
    spaces): the run's short id, its commit as the one it is shown on and now, then the
    note's commit when that is another — the id and the commit read from the text (the
    first ``"id":"`` and ``"commit":"``: where a line is in canonical form, its own)."""
    payload = line[line.rfind("\t") + 1 :].strip()
    id_at = payload.find('"id":"') + 6
    commit_at = payload.find('"commit":"') + 10
    commit = payload[commit_at : payload.find('"', commit_at)]
    short = payload[payload.find('"', id_at) - 8 : payload.find('"', id_at)]
    shown = f'"{commit}"' if commit == note else f'"{commit}","{note}"'
    return (
        f'{payload[:splice]},"short_id":"{short}","shown_now":"{commit}",'
        f'"shown_on":[{shown}]{payload[splice:]}'
    )


def _spaced(text: str) -> str:
    """``text`` with a space after each ``,"`` and ``":`` (FIND_JSON's separators)."""
    return text.replace(',"', ', "').replace('":', '": ')


def _line_json(line: str, known: set[str]) -> dict[str, Any] | None:
    """The record of a run line as ``RunRecord.to_json_dict`` makes it (None when it is
    not one): from the decoded line when the fast reader takes it."""
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

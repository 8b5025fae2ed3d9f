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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import field
from functools import cache, partial
from itertools import accumulate, compress
from operator import itemgetter, ne
from typing import TYPE_CHECKING, Any, TypeVar

from git_prov.errors import CorruptLedger, NotFound
from git_prov.model.frozen import FRESH, MutableFields, mutable_fields
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
    for band in _spooled(index, rows, encode, part=part):
        for data in band.texts():
            yield data.decode("utf-8", "surrogatepass")


def find_json_of_rows(index: RunIndex, rows: Sequence[int], *, part: int = 2048) -> Iterator[bytes]:
    """:func:`records_of_rows` with :data:`FIND_JSON`, as the bytes find --json prints
    (ASCII: FIND_JSON escapes every other character), never decoded to text."""
    for band in _spooled(index, rows, FIND_JSON, part=part):
        yield from band.texts()


def find_json_document(
    index: RunIndex, rows: Sequence[int], *, part: int = 2048
) -> Iterator[bytes]:
    """The document ``find --json`` prints of ``rows``: ``[``, the lines of
    :func:`find_json_of_rows` joined by ``,`` and a newline, ``]`` — in parts of many
    lines each (a band of the spool's at a time), never the whole of it at once."""
    opened = b"[\n"
    for band in _spooled(index, rows, FIND_JSON, part=part):
        if band:
            yield opened + band.joined(b",\n")
            opened = b",\n"
    yield b"[\n]\n" if opened == b"[\n" else b"\n]\n"


def _spooled(
    index: RunIndex,
    rows: Sequence[int],
    encode: Callable[[dict[str, Any]], str],
    *,
    part: int = 2048,
) -> Iterator[_Band]:
    """:func:`records_of_rows`, each text as UTF-8 (lone surrogates passed through), in
    parts (:class:`_Band`) in the order of ``rows``."""
    if not rows:
        return
    # Positions in ``rows`` by row id, in an array, not a dict: 100k runs.
    at_of = array("i", [-1]) * (max(rows) + 1)
    repeated = False  # (a row asked for twice: printed twice, made once)
    for i, row in enumerate(rows):
        if at_of[row] < 0:
            at_of[row] = i
        else:
            repeated = True
    found = _single_rows(index, at_of, len(rows))
    splicing = encode is FIND_JSON
    tag = _splices_tag() if splicing else ""
    learned: list[tuple[str, str, str]] = []  # (splices, note, blob) worked out here

    with _Bands(len(rows)) as spool:
        known: set[str] = set()  # ids the fast reader has checked
        ats, linenos, starts = found.ats, found.linenos, found.starts
        exact, exact_at = spool.exact, spool.exact_at
        for number, (blob_id, blob) in enumerate(stream_blobs(index.paths.cwd, found.blobs)):
            first, last = starts[number], starts[number + 1]
            note = found.notes[number]
            if len(known) > 4096:
                known.clear()  # (ids checked once more, rather than held for every run)
            kept = found.splices[number] if splicing and blob else None
            if blob and kept is not None and kept.startswith(tag):
                splices = list(map(int, kept[len(tag) :].split(",")))
                raw = blob.split(b"\n")
                if len(splices) == len(raw):  # (always: kept for this very blob)
                    rows_at, rows_lineno = ats[first:last], linenos[first:last]
                    _put_spliced(spool, rows_at, rows_lineno, blob, raw, splices, note, known)
                    spool.flush_if_full()
                    continue
            lines = note_lines(blob) if blob is not None else []
            printed: dict[int, str] = {}  # line number -> FIND_JSON of its run, if made
            if splicing and lines:  # (every line, once)
                splices, printed = _learn_splices(lines, note, known)
                learned.append((tag + ",".join(map(str, splices)), note, blob_id))
            for at, lineno in zip(ats[first:last], linenos[first:last], strict=True):
                if not 1 <= lineno <= len(lines):
                    continue  # (a missing blob: left out, as record_jsons does)
                if lineno in printed:
                    text = printed[lineno]
                elif (record := _line_json(lines[lineno - 1], known)) is not None:
                    record.update(find_members(str(record["id"]), str(record["commit"]), note))
                    text = encode(record)
                else:
                    continue
                exact.append(text.encode("utf-8", "surrogatepass"))
                exact_at.append(at)
            spool.flush_if_full()
        others, others_runs = found.others, found.others_runs
        for start in range(0, len(others), part):
            chunk = others_runs[start : start + part]
            records = record_jsons(index, chunk)
            for at, run in zip(others[start : start + part], chunk, strict=True):
                if run in records:
                    exact.append(encode(records[run]).encode("utf-8", "surrogatepass"))
                    exact_at.append(at)
            spool.flush_if_full()
        index.remember_splices(learned)
        del learned
        if not repeated:
            yield from spool.bands()
            return
        yield from _repeated(spool, rows, at_of)


def _repeated(spool: _Bands, rows: Sequence[int], at_of: array[int]) -> Iterator[_Band]:
    """The spool's texts in the order of ``rows``, some of which are asked for again
    (their texts kept meanwhile): at ``at_of[row]``, the position where each was first."""
    again = {at_of[row] for i, row in enumerate(rows) if at_of[row] != i}
    pairs = ((at, text) for band in spool.bands() for at, text in band.placed())
    ahead = next(pairs, None)
    kept: dict[int, bytes] = {}
    out: list[bytes] = []
    for i, row in enumerate(rows):
        at = at_of[row]
        if at == i:
            while ahead is not None and ahead[0] < i:  # (never: every text has its place)
                ahead = next(pairs, None)
            if ahead is None or ahead[0] != i:
                continue  # (none made: left out)
            text = ahead[1]
            ahead = next(pairs, None)
            if i in again:
                kept[i] = text
        elif at in kept:
            text = kept[at]
        else:
            continue
        out.append(text)
        if len(out) >= 1024:
            yield _Band(exact=out)
            out = []
    if out:
        yield _Band(exact=out)


def _put_spliced(
    spool: _Bands,
    ats: array[int],
    linenos: array[int],
    blob: bytes,
    raw: list[bytes],
    splices: list[int],
    note: str,
    known: set[str],
) -> None:
    """Spool FIND_JSON of the rows at ``ats`` with lines ``linenos`` of one note blob
    (``blob``, its lines ``raw``, split at ``\\n``; their kept ``splices``): the lines with a splice
    from their own bytes (:func:`_spliced_texts`, spaced by the spool), the others
    decoded."""
    total = len(raw)
    if blob.find(b"\r") >= 0:
        raw = [line.removesuffix(b"\r") for line in raw]  # (as note_lines reads them)
    note_b = note.encode()
    if linenos and min(linenos) >= 1 and max(linenos) <= total:
        kept = [splices[lineno - 1] for lineno in linenos]
        if min(kept) >= 0:  # (nearly always: every line asked for has its splice)
            spool.spliced += _spliced_texts(raw, zip(linenos, kept, strict=True), note_b)
            spool.spliced_at += ats
            return
    lines: list[str] | None = None
    for at, lineno in zip(ats, linenos, strict=True):
        if not 1 <= lineno <= total:
            continue
        if splices[lineno - 1] >= 0:
            spool.spliced += _spliced_texts(raw, ((lineno, splices[lineno - 1]),), note_b)
            spool.spliced_at.append(at)
            continue
        if lines is None:
            lines = note_lines(b"\n".join(raw))
        record = _line_json(lines[lineno - 1], known)
        if record is not None:
            record.update(find_members(str(record["id"]), str(record["commit"]), note))
            spool.exact.append(FIND_JSON(record).encode("utf-8", "surrogatepass"))
            spool.exact_at.append(at)


def _spliced_texts(
    raw: list[bytes], spliced: Iterable[tuple[int, int]], note: bytes
) -> list[bytes]:
    """:func:`_with_members` of each line of ``spliced`` (line number and splice; lines
    with a splice: ASCII after
    their last tab, no blanks around their JSON, no ``\\r`` at the end), on the bytes of
    the note blob's lines ``raw``; each is FIND_JSON's print of its run once
    :func:`_spaced`. (The same finds as _with_members: in text found in canonical form
    every one of them finds what it looks for, as the check of each kept splice did.)"""
    one = b'"%s"' % note
    out: list[bytes] = []
    put = out.append
    for lineno, splice in spliced:
        line = raw[lineno - 1]
        at = line.rfind(b"\t") + 1
        splice += at
        id_end = line.find(b'"', line.find(b'"id":"', at) + 6)
        commit_at = line.find(b'"commit":"', at) + 10
        commit = line[commit_at : line.find(b'"', commit_at)]
        put(
            b'%s,"short_id":"%s","shown_now":"%s","shown_on":[%s]%s'
            % (
                line[at:splice],
                line[id_end - 8 : id_end],
                commit,
                one if commit == note else b'"%s","%s"' % (commit, note),
                line[splice:],
            )
        )
    return out


@mutable_fields
class _Band(MutableFields):
    """Texts of a band of positions, in position order: those made from a note's bytes
    (``spliced``: printed :func:`_spaced`) and the others (``exact``), each with their
    positions (``spliced_at``, ``exact_at``; none needed when one kind is all)."""

    spliced: list[bytes] = field(default_factory=list)
    spliced_at: array[int] = field(default_factory=lambda: array("i"))
    exact: list[bytes] = field(default_factory=list)
    exact_at: array[int] = field(default_factory=lambda: array("i"))

    def __init__(
        self,
        spliced: list[bytes] = FRESH,
        spliced_at: array[int] = FRESH,
        exact: list[bytes] = FRESH,
        exact_at: array[int] = FRESH,
    ) -> None:
        self.spliced = [] if spliced is FRESH else spliced
        self.spliced_at = array("i") if spliced_at is FRESH else spliced_at
        self.exact = [] if exact is FRESH else exact
        self.exact_at = array("i") if exact_at is FRESH else exact_at

    def __bool__(self) -> bool:
        return bool(self.spliced or self.exact)

    def placed(self) -> Iterator[tuple[int, bytes]]:
        """(position, text as printed) of each, in position order."""
        spliced = (
            (at, _spaced_bytes(text))
            for at, text in zip(self.spliced_at, self.spliced, strict=True)
        )
        if not self.exact:
            yield from spliced
            return
        yield from sorted(
            (*spliced, *zip(self.exact_at, self.exact, strict=True)), key=itemgetter(0)
        )

    def texts(self) -> Iterator[bytes]:
        """Each text as printed, in position order."""
        if not self.spliced:
            yield from self.exact
            return
        for _, text in self.placed():
            yield text

    def joined(self, separator: bytes) -> bytes:
        """The texts as printed joined by ``separator`` (no ``,"`` or ``":`` in it): the
        spliced ones spaced together, not one at a time."""
        if not self.exact:
            return _spaced_bytes(separator.join(self.spliced))
        if not self.spliced:
            return separator.join(self.exact)
        parts: list[bytes] = []
        run: list[bytes] = []  # (spliced texts next to each other)
        rows = sorted(
            (*((at, True, text) for at, text in zip(self.spliced_at, self.spliced, strict=True)),
             *((at, False, text) for at, text in zip(self.exact_at, self.exact, strict=True))),
            key=itemgetter(0),
        )  # fmt: skip
        for _, spliced, text in rows:
            if spliced:
                run.append(text)
                continue
            if run:
                parts.append(_spaced_bytes(separator.join(run)))
                run = []
            parts.append(text)
        if run:
            parts.append(_spaced_bytes(separator.join(run)))
        return separator.join(parts)


class _Bands:
    """Texts put by position in any order and read back in position order, in about
    constant memory. Texts gather in two lists (``spliced``: made from a note's bytes and
    not yet spaced, :func:`_spaced`; ``exact``: as they print) with their positions; every
    ``FLUSH`` texts they are sorted by position and appended to temporary files, one per
    band of positions and kind, each read back whole when its band's turn comes (one read
    a band; not mapped: mapped pages would count as this process's memory) as a
    :class:`_Band`."""

    BANDS = 64  # (at most; each at least MIN_BAND positions)
    MIN_BAND = 2048
    FLUSH = 4096

    def __init__(self, count: int) -> None:
        self.band = max(self.MIN_BAND, -(-count // self.BANDS))
        bands = -(-count // self.band)
        # Of each kind (spliced, exact), for each band: file, positions, text lengths.
        self.files: list[list[Any]] = [[None] * bands, [None] * bands]
        self.positions = [[array("i") for _ in range(bands)] for _ in range(2)]
        self.lengths = [[array("q") for _ in range(bands)] for _ in range(2)]
        self.spliced: list[bytes] = []
        self.spliced_at = array("i")
        self.exact: list[bytes] = []
        self.exact_at = array("i")
        self.opened = contextlib.ExitStack()

    def __enter__(self) -> _Bands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.opened.close()

    def flush_if_full(self) -> None:
        if len(self.spliced) + len(self.exact) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        self._flush(0, self.spliced, self.spliced_at)
        self._flush(1, self.exact, self.exact_at)
        self.spliced.clear()  # (emptied, not replaced: callers hold them)
        del self.spliced_at[:]
        self.exact.clear()
        del self.exact_at[:]

    def _flush(self, kind: int, texts: list[bytes], ats: array[int]) -> None:
        if not texts:
            return
        order = sorted(range(len(ats)), key=ats.__getitem__)
        in_order = [texts[k] for k in order]
        places = [ats[k] for k in order]
        del order
        files, positions, lengths = self.files[kind], self.positions[kind], self.lengths[kind]
        lo, band = 0, self.band
        while lo < len(places):
            number = places[lo] // band
            hi = bisect_left(places, (number + 1) * band, lo)
            file = files[number]
            if file is None:
                import tempfile  # (here only: `log` and `show` never load it)

                file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by self.opened)
                files[number] = self.opened.enter_context(file)
            part = in_order[lo:hi]
            file.write(b"".join(part))
            positions[number].extend(places[lo:hi])
            lengths[number].extend(map(len, part))
            lo = hi

    def bands(self) -> Iterator[_Band]:
        """Each band's texts, in position order (bands with none left out)."""
        self.flush()
        for number in range(len(self.files[0])):
            band = _Band()
            band.spliced_at, band.spliced = self._read(0, number)
            band.exact_at, band.exact = self._read(1, number)
            if band:
                yield band

    def _read(self, kind: int, number: int) -> tuple[array[int], list[bytes]]:
        file = self.files[kind][number]
        if file is None:
            return array("i"), []
        self.files[kind][number] = None
        file.flush()
        size, data = os.fstat(file.fileno()).st_size, b""
        while len(data) < size:  # (one read, but for a short one)
            data += os.pread(file.fileno(), size - len(data), len(data))
        ends = list(accumulate(self.lengths[kind][number]))
        texts = list(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))
        del data, ends
        places = self.positions[kind][number]
        order = sorted(range(len(places)), key=places.__getitem__)
        return array("i", [places[k] for k in order]), [texts[k] for k in order]


@mutable_fields
class _Rows(MutableFields):
    """The live rows asked for, in note order: for runs with that one row, their
    positions and line numbers, the note blobs that hold them (each once, with the commits
    of their ``notes`` and what the index keeps of their ``splices``) and where each
    blob's rows start (``starts``, one more: where the last ends); the positions of the
    ``others`` and their run ids."""

    ats: array[int] = field(default_factory=lambda: array("i"))
    linenos: array[int] = field(default_factory=lambda: array("i"))
    starts: array[int] = field(default_factory=lambda: array("q"))
    blobs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    splices: list[str | None] = field(default_factory=list)
    others: array[int] = field(default_factory=lambda: array("q"))
    others_runs: list[str] = field(default_factory=list)

    def __init__(
        self,
        ats: array[int] = FRESH,
        linenos: array[int] = FRESH,
        starts: array[int] = FRESH,
        blobs: list[str] = FRESH,
        notes: list[str] = FRESH,
        splices: list[str | None] = FRESH,
        others: array[int] = FRESH,
        others_runs: list[str] = FRESH,
    ) -> None:
        self.ats = array("i") if ats is FRESH else ats
        self.linenos = array("i") if linenos is FRESH else linenos
        self.starts = array("q") if starts is FRESH else starts
        self.blobs = [] if blobs is FRESH else blobs
        self.notes = [] if notes is FRESH else notes
        self.splices = [] if splices is FRESH else splices
        self.others = array("q") if others is FRESH else others
        self.others_runs = [] if others_runs is FRESH else others_runs


# A run with any second row — a copy, an attachment — is read the exact way.
_SHARED = "SELECT run FROM lines WHERE run IS NOT NULL GROUP BY run HAVING count(*) > 1"


def _single_rows(index: RunIndex, at_of: array[int], count: int) -> _Rows:
    """:class:`_Rows` of the rows ``at_of`` gives positions to (by row id; ``count`` of
    them: all of the index's live rows are read when they are most). Read a part at a
    time, by columns."""
    db = index.db
    index.need("lines_note")  # (the rows are read in its order)
    # (Every row asked for is live — as find and records_in_order give them — so of all
    # rows, only those ``at_of`` places are taken: the rows and their notes, read from
    # their index alone, not the table's pages, which a scan would map into memory.)
    where = "1"
    out = _Rows()
    size = len(at_of)
    with contextlib.ExitStack() as stack:
        # (A few rows: looked up. Many: every row of the index read, in note order. How
        # many there are, from the largest row id: counting them would read the table.)
        (rows_at_most,) = db.execute("SELECT max(id) FROM lines").fetchone()
        rows_at_most = rows_at_most or 0
        if rows_at_most >= size:  # (a place for every row: looked up without a test)
            at_of = at_of + array("i", [-1]) * (rows_at_most + 1 - size)
        if count * 4 < rows_at_most:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_rows (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.wanted_rows")
            stack.callback(db.execute, "DELETE FROM temp.wanted_rows")
            db.executemany(
                "INSERT INTO temp.wanted_rows VALUES (?)",
                ((row,) for row, at in enumerate(at_of) if at >= 0),
            )
            where = "l.live = 1 AND l.id IN temp.wanted_rows"
        shared: set[int] = set()  # (every row of those runs: only live ones are asked for)
        for row, run, live in db.execute(
            f"SELECT l.id, l.run, l.live FROM lines l WHERE {where} AND l.run IN ({_SHARED})"
            " ORDER BY l.note, l.lineno"
        ):
            shared.add(row)
            at = at_of[row] if row < len(at_of) else -1
            if at >= 0 and live == 1:
                out.others.append(at)
                out.others_runs.append(run)
        # The notes, read beside the rows in the same (commit id) order.
        notes = db.execute("SELECT commit_id, blob, splices FROM notes ORDER BY commit_id")
        note = ""
        rows = db.execute(f"SELECT l.id, l.lineno, l.note FROM lines l WHERE {where}"
                          " ORDER BY l.note, l.lineno")  # fmt: skip
        while part := rows.fetchmany(8192):
            ids, linenos, row_notes = zip(*part, strict=True)
            try:
                ats = list(map(at_of.__getitem__, ids))
            except IndexError:  # (rows added since max(id) was read)
                ats = [at_of[row] if row < len(at_of) else -1 for row in ids]
            if shared or min(ats) < 0:  # (rows not asked for, or read the exact way)
                wanted = [at >= 0 and row not in shared for at, row in zip(ats, ids, strict=True)]
                ats = list(compress(ats, wanted))
                linenos = tuple(compress(linenos, wanted))
                row_notes = tuple(compress(row_notes, wanted))
            base = len(out.ats)
            firsts = compress(range(len(row_notes)), map(ne, row_notes, (note, *row_notes)))
            for k in firsts:  # (each row whose note is not the one before's)
                row_note = row_notes[k]
                while note < row_note:
                    note, blob, splices = next(notes, ("\uffff", _NO_BLOB, None))
                if note != row_note:  # (never: every line's note has a row)
                    note, blob, splices = row_note, _NO_BLOB, None  # (its rows: left out)
                out.starts.append(base + k)
                out.blobs.append(blob)
                out.notes.append(note)
                out.splices.append(splices)
            out.ats.extend(ats)
            out.linenos.extend(linenos)
    out.starts.append(len(out.ats))
    return out


_NO_BLOB = "0" * 40  # (an object git has not: read as missing)


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


def _spaced_bytes(text: bytes) -> bytes:
    """:func:`_spaced` of ASCII text, on its bytes."""
    return text.replace(b',"', b', "').replace(b'":', b'": ')


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

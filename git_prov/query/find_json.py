"""What ``find --json`` and ``find --csv`` print of many runs, streamed.

:func:`records_of_rows` makes each run's :func:`~git_prov.query.located.record_jsons`
record, encoded, for 100k runs in about constant memory: every note blob read once, in the
order its lines sit in the notes, the encoded texts spooled to temporary files in bands of
positions (:class:`_Bands`) and read back in the order asked for. ``find --json``
(:func:`find_json_document`) goes further: a note line as git-prov writes it is nearly
what find prints of it, so where the index kept that line's splice offset it is printed
from its bytes, never decoded. tests/test_query_find_json.py checks every path against
decoding.
"""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import field
from functools import cache
from itertools import accumulate, compress
from operator import itemgetter, ne
from typing import TYPE_CHECKING, Any

from git_prov.model.frozen import FRESH, MutableFields, mutable_fields
from git_prov.model.ids import short_run_id
from git_prov.query.located import line_json, record_jsons
from git_prov.query.rows import note_lines
from git_prov.store.gitcli import stream_blobs

if TYPE_CHECKING:
    from git_prov.query.index import RunIndex


# What ``find --json`` prints of each run (with :func:`find_members`).
FIND_JSON: Callable[[dict[str, Any]], str] = json.JSONEncoder(sort_keys=True).encode


def find_members(run: str, commit: str, note: str) -> dict[str, Any]:
    """What find adds to the record of a run with one row in the index (its record, on
    ``commit``, in the note of ``note``): its short id, and where it is shown."""
    return {
        "short_id": short_run_id(run),
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


def find_json_document(
    index: RunIndex, rows: Sequence[int], *, part: int = 2048
) -> Iterator[bytes]:
    """The document ``find --json`` prints of ``rows``: ``[``, the lines of
    :func:`records_of_rows` with :data:`FIND_JSON` (as bytes: ASCII, FIND_JSON escapes every other
    character, never decoded to text) joined by ``,`` and a newline, ``]`` — in parts of many
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
        exact, exact_at = spool.pending.exact, spool.pending.exact_at
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
                    _put_spliced(
                        spool.pending, rows_at, rows_lineno, blob, raw, splices, note, known
                    )
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
                elif (record := line_json(lines[lineno - 1], known)) is not None:
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
    band: _Band,
    ats: array[int],
    linenos: array[int],
    blob: bytes,
    raw: list[bytes],
    splices: list[int],
    note: str,
    known: set[str],
) -> None:
    """Put in ``band`` (a spool's pending texts) FIND_JSON of the rows at ``ats`` with
    lines ``linenos`` of one note blob (``blob``, its lines ``raw``, split at ``\\n``;
    their kept ``splices``): the lines with a splice from their own bytes
    (:func:`_spliced_texts`, spaced by the spool), the others decoded."""
    total = len(raw)
    if blob.find(b"\r") >= 0:
        raw = [line.removesuffix(b"\r") for line in raw]  # (as note_lines reads them)
    note_b = note.encode()
    if linenos and min(linenos) >= 1 and max(linenos) <= total:
        kept = [splices[lineno - 1] for lineno in linenos]
        if min(kept) >= 0:  # (nearly always: every line asked for has its splice)
            band.spliced += _spliced_texts(raw, zip(linenos, kept, strict=True), note_b)
            band.spliced_at += ats
            return
    lines: list[str] | None = None
    for at, lineno in zip(ats, linenos, strict=True):
        if not 1 <= lineno <= total:
            continue
        if splices[lineno - 1] >= 0:
            band.spliced += _spliced_texts(raw, ((lineno, splices[lineno - 1]),), note_b)
            band.spliced_at.append(at)
            continue
        if lines is None:
            lines = note_lines(b"\n".join(raw))
        record = line_json(lines[lineno - 1], known)
        if record is not None:
            record.update(find_members(str(record["id"]), str(record["commit"]), note))
            band.exact.append(FIND_JSON(record).encode("utf-8", "surrogatepass"))
            band.exact_at.append(at)


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

    def __len__(self) -> int:
        return len(self.spliced) + len(self.exact)

    def kinds(self) -> tuple[tuple[list[bytes], array[int]], tuple[list[bytes], array[int]]]:
        """(texts, positions) of each kind: spliced, then exact."""
        return (self.spliced, self.spliced_at), (self.exact, self.exact_at)

    def clear(self) -> None:
        """Every text and position dropped (the lists emptied, not replaced: callers
        hold them)."""
        for texts, ats in self.kinds():
            texts.clear()
            del ats[:]

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
    constant memory. Texts gather in ``pending``, a :class:`_Band` of each kind
    (``spliced``: made from a note's bytes and not yet spaced, :func:`_spaced`; ``exact``:
    as they print) with their positions, not yet in order; every ``FLUSH`` texts they are
    sorted by position and appended to temporary files, one per band of positions and
    kind, each read back whole when its band's turn comes (one read a band; not mapped:
    mapped pages would count as this process's memory) as a :class:`_Band`."""

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
        self.pending = _Band()
        self.opened = contextlib.ExitStack()

    def __enter__(self) -> _Bands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.opened.close()

    def flush_if_full(self) -> None:
        if len(self.pending) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        for kind, (texts, ats) in enumerate(self.pending.kinds()):
            self._flush(kind, texts, ats)
        self.pending.clear()

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
            band = _Band(*self._read(0, number), *self._read(1, number))
            if band:
                yield band

    def _read(self, kind: int, number: int) -> tuple[list[bytes], array[int]]:
        file = self.files[kind][number]
        if file is None:
            return [], array("i")
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
        return [texts[k] for k in order], array("i", [places[k] for k in order])


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
        record = line_json(line, known)
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

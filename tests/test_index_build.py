"""A first build's note reader (``query/rows.build_rows``): every note reads as
``parse_lines`` reads its lines, and a build with it fills the index's ``lines`` table value
for value and storage class for storage class as a build with ``parse_lines`` does, on an
untrusted ledger (duplicate keys, lone surrogates, huge numbers, NaN, odd whitespace, keys
out of order, wrong types, repeated lines and run ids)."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git
from factories import make_record
from hypothesis import given, settings
from hypothesis import strategies as st
from test_query_index import _canonical_lines, _object_variants, _variants
from test_record_fields import FIELDS, _variant

from git_prov.model.limits import MAX_LINE_BYTES
from git_prov.model.record import Attachment, Tombstone, encode_entry
from git_prov.query import building
from git_prov.query.index import RepoPaths, open_index
from git_prov.query.rows import (
    NULL,
    ROW_COLUMNS,
    _build_match,
    _build_pattern,
    _pattern,
    _possessive,
    _row_match,
    build_rows,
    note_lines,
    parse_lines,
)

NOTE = "c" * 40


def _both_ways(blob: bytes) -> tuple[str, str]:
    """A note's rows as the build reads them (NULL as None) and as parse_lines does, as
    text (where -0.0 is not 0.0)."""
    fast = [tuple(None if v is NULL else v for v in row) for row in build_rows(NOTE, blob)]
    exact = parse_lines(NOTE, enumerate(note_lines(blob), start=1), canonical=True)
    return repr(fast), repr(exact)


def _good(n: int) -> str:
    return encode_entry(make_record("a" * 40, id=f"20260101T000000.000Z-0000{n:04x}"))


def _notes_around(line: str) -> list[str]:
    """Notes holding ``line`` (a payload) among canonical run lines, cut and spaced in the
    ways a hand-edited or merged note may be."""
    entry = f"prov run x ok\t{line}"
    good, other = _good(1), _good(2)
    return [
        f"{entry}\n",
        entry,
        line,
        f"{good}\n{entry}\n{other}\n",
        f"{entry}\n{entry}\n",  # the same entry twice: one row
        f"{good}\n{good}\n",
        f"{entry}\r\n{good}\r\n",
        f"{good}\n\n{entry}\n",
        f"{entry}  \n{good}",
        f"a\tb\t{line}\n{good}\n",
        f"{good}\n\t{line}\n",
        f"{good}\nsummary only\t\n",
    ]


@pytest.mark.parametrize("line", _variants() + _object_variants())
def test_the_build_reads_every_note_as_parse_lines(line: str) -> None:
    for text in _notes_around(line):
        fast, exact = _both_ways(text.encode())
        assert fast == exact, text


def test_the_build_reads_odd_notes_as_parse_lines() -> None:
    record = make_record("a" * 40, env="b" * 40, metrics={"acc": 0.5})
    good = encode_entry(record)
    payload = json.loads(good.rpartition("\t")[2])
    twin = encode_entry(dataclasses.replace(record, metrics={"acc": 0.7}))
    texts = [
        "",
        "\n",
        f"{good}\n{twin}\n",  # two records of one run: both rows
        f"{good}\n{encode_entry(Tombstone(record.id, '2026-03-01T00:00:00Z'))}\n",
        f"{good}\n{encode_entry(Attachment(record.id, 'b' * 40, 'a' * 40, 'amend', 'x'))}\n",
        good.replace("\t", "\tx\t"),
        good.replace('"v":1}', '"v":2}'),
        good.replace('"v":1}', '"v":99999}'),
        good.replace('"duration":', '"duration":-0,"x":'),
        good.replace('"exit_code":0', '"exit_code":-0'),
        good.replace('"exit_code":0', '"exit_code":' + "9" * 18),
        good.replace('"exit_code":0', '"exit_code":' + "9" * 19),
        good.replace('"exit_code":0', '"exit_code":-' + "9" * 18),
        good.replace('"exit_code":0', '"exit_code":null'),
        good.replace('"duration":12.277', '"duration":15'),
        good.replace('"duration":12.277', '"duration":-0.0'),
        good.replace('"duration":12.277', '"duration":1e3'),
        good.replace('"duration":12.277', '"duration":' + "1" * 19),
        good.replace('"duration":12.277', '"duration":' + "1" * 40 + ".5"),
        good.replace('"duration":12.277', '"duration":NaN'),
        good.replace('"duration":12.277', '"duration":Infinity'),
        good.replace('"acc":0.5', '"acc":NaN'),
        good.replace('"acc":0.5', '"acc":-Infinity'),
        good.replace('"acc":0.5', '"acc":' + "7" * 400),
        good.replace('"command":"', '"command":"\\ud800'),
        good.replace('"command":"', '"command":"\\u0041'),
        good.replace('"command":"', '"command":"\u00e9\u2028'),
        good.replace('{"', '{"id":"20260101T000000.000Z-0000ffff","', 1),  # a duplicate key
        good.replace('{"', '{ "', 1),
        good.replace(",", ", "),
        good + " ",
        good.replace('"v":1}', '"v":1}\t'),
        "prov run\t" + json.dumps(payload),  # keys out of order, spaces
        *(
            "prov run\t" + json.dumps({**payload, **change}, sort_keys=True, separators=(",", ":"))
            for change in ({"status": 5}, {"signal": 2**63}, {"signal": 9}, {"signal": -(2**63)})
        ),
        "x" * (MAX_LINE_BYTES + 1),
        good.replace('"command":"', '"command":"' + "y" * MAX_LINE_BYTES),
    ]
    for text in texts:
        for note in (text, f"{good}\n{text}\n", f"{text}\n{_good(3)}"):
            fast, exact = _both_ways(note.encode())
            assert fast == exact, note[:300]
    fast, exact = _both_ways(good.encode() + b"\n\xff\xfe" + good.encode()[5:])  # not UTF-8
    assert fast == exact


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_the_build_reads_every_field(field: dataclasses.Field[Any]) -> None:
    """(docs/design.md, "Adding a field to a run record")"""
    _, line = _variant(field)
    fast, exact = _both_ways(f"{line}\n{_good(1)}\n".encode())
    assert fast == exact
    taken = build_rows(NOTE, f"{line}\n{_good(1)}\n".encode())
    assert len(taken) == 2 and taken[0][-1] is NULL  # (read by the build's own pattern)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_canonical_lines(), min_size=1, max_size=4), repeat=st.booleans())
def test_the_build_reads_canonical_notes_as_parse_lines(lines: list[str], repeat: bool) -> None:
    entries = [f"prov run x\t{line}" for line in lines] + [_good(7)]
    if repeat:
        entries.append(entries[0])
    fast, exact = _both_ways("\n".join(entries).encode())
    assert fast == exact


@pytest.mark.parametrize("line", _variants() + _object_variants())
def test_the_possessive_patterns_match_as_the_backtracking_ones(line: str) -> None:
    """The canonical row pattern and the build's never give back what a quantifier took:
    on every variant, cut anywhere or with a character changed, they match exactly what
    the same patterns with ordinary quantifiers match."""
    from git_prov.query.rows import _ROW_MEMBERS

    pairs = [
        (_row_match(), re.compile(_pattern(frozenset(_ROW_MEMBERS))).fullmatch),
        (_build_match(), re.compile(_build_pattern()).fullmatch),
    ]
    assert _possessive(_build_pattern()) != _build_pattern()
    texts = [line, line + "}", line[:-1]]
    texts += [line[:cut] + line[cut + 1 :] for cut in range(0, len(line), 7)]
    texts += [f"{line[:cut]}x{line[cut:]}" for cut in range(0, len(line), 11)]
    texts += [f"{line[:cut]}\n{line[cut:]}" for cut in range(0, len(line), 13)]
    for text in texts:
        for possessive, plain in pairs:
            found, expected = possessive(text, 0, len(text)), plain(text, 0, len(text))
            assert (found is None) == (expected is None), text
            if found is not None and expected is not None:
                assert found.groups() == expected.groups()


def _table(repo: Path) -> list[tuple[Any, ...]]:
    """Every row of a fresh build's ``lines``, each value with its storage class."""
    (repo / ".git" / "prov" / "index.sqlite").unlink(missing_ok=True)
    columns = ", ".join(f"{c}, typeof({c})" for c in ("id", *ROW_COLUMNS, "live"))
    with open_index(RepoPaths.discover(repo)) as index:
        assert index.stats.mode == "built"
        rows = index.db.execute(f"SELECT {columns} FROM lines ORDER BY id").fetchall()
        return [tuple(map(repr, row)) for row in rows]  # (where -0.0 is not 0.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helpers fork on Linux only")
def test_a_build_fills_the_table_as_one_reading_every_line_with_parse_lines(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An untrusted ledger, built with the build's reader and with parse_lines, in one
    process and in parts: the same ``lines`` table, row ids and storage classes included."""
    lines = _variants() + _object_variants()
    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(8)]
    for number, commit in enumerate(commits):
        mine = lines[number::8]
        entries = [_good(number), *(f"prov run x ok\t{line}" for line in mine)]
        if number % 2:  # a note of canonical lines only (taken whole by the build's reader)
            entries = [_good(number), _good(100 + number), encode_entry(make_record(commit))]
        if number == 3:
            entries.append(entries[0])
        text = "\n".join(entries) + "\n"
        git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", commit, input=text)
    scratch_dir = repo.parent / "tmp"
    scratch_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_dir))

    def exactly(note: str, blob: bytes, known: set[str] | None = None) -> list[Any]:
        return parse_lines(note, enumerate(note_lines(blob), start=1), known, canonical=True)

    tables = []
    for jobs in ("1", "3"):
        monkeypatch.setenv("GIT_PROV_INDEX_JOBS", jobs)
        tables.append(_table(repo))
        with monkeypatch.context() as patch:
            patch.setattr(building, "build_rows", exactly)
            tables.append(_table(repo))
    assert tables[0] == tables[1] == tables[2] == tables[3]
    assert len(tables[0]) > 100 and {row[2 * len(ROW_COLUMNS) + 2] for row in tables[0]} == {
        "0", "1"}  # fmt: skip
    assert {row[2 * 7 + 1] for row in tables[0]} == {"'real'", "'null'"}  # (duration)

"""`find --json` prints lines it may from their own text, byte for byte what decoding gives.

A note line in git-prov's canonical form is printed by splicing find's own members into its
text (git_prov/query/located.py, "find --json without decoding"); which lines may be is
worked out once per note blob and kept in the index (``notes.splices``). These tests write
a ledger of odd, hostile and old-style lines by hand and check that the spliced output is
the decoded-and-re-encoded one (the first run, which decodes every line, and the
``record_jsons`` path), that `--csv` is the table of the same records, and that what the
index keeps follows a note's blob.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov
from factories import make_record

from git_prov.model.record import Attachment, Tombstone, encode_entry
from git_prov.query import find_json
from git_prov.query.find import FindQuery, found_ids, found_rows
from git_prov.query.find_json import FIND_JSON
from git_prov.query.index import RepoPaths, open_index
from git_prov.query.render import runs_csv
from git_prov.query.rows import note_lines

CANONICAL = {"sort_keys": True, "separators": (",", ":")}


def _id(n: int) -> str:
    return f"202601{n // 24 + 1:02d}T{n % 24:02d}0000.000Z-{n:08x}"


def _line(data: dict[str, Any], dumps: Any = None) -> str:
    """A note line with ``data`` as its JSON (canonical unless ``dumps`` says otherwise)."""
    text = dumps(data) if dumps else json.dumps(data, **CANONICAL)
    return f"prov run {data.get('id', '?')[-8:]} hand-made\t{text}"


def _lines(commit: str, other: str) -> list[str]:
    """Run lines on ``commit``: canonical ones, and ones whose text must not be printed as
    it is (or only when find checks it exactly)."""
    base = make_record(commit, id=_id(0)).to_json_dict()
    odd: list[dict[str, Any]] = [
        {},  # canonical
        {"command": "ends with a comma,", "argv": [":starts", "with a colon", '","']},
        {"tags": ["a,", ":b", "c"], "message": ':"quoted":', "branch": "x,y:z"},
        {"command": 'say "hi" \\ back', "host": "tab\there", "user": "new\nline"},
        {"command": "caf\u00e9 \u2028 \U0001f600", "host": "\x7f"},
        {"params": {"started": "1", "signal": 2, "commit": "c", "id": "i", "short_id": 3}},
        {"metrics": {"shown_on": 1.0, "shown_now": -0.0, "a,": 1, ":b": 2}},
        {"params": {"lr": 0.30000000000000004, "big": 10**30, "neg": -1e-07, "t": True}},
        {"series": {"params": {"last": 0.5, "n": 3}, "acc": {"max": 1, "goal": "max"}}},
        {"signal": 9, "exit_code": -9, "status": "killed"},
        {"snapshot": "b" * 40, "signature": "-----BEGIN, SIGNATURE-----"},
        {"cwd": "sub/dir", "origin": "record", "omitted": ["x"]},
        {"argv": None, "env": "e" * 40},  # an old record: no argv
    ]
    out = []
    for n, changes in enumerate(odd, start=1):
        out.append(_line({**base, **changes, "id": _id(n)}))
    # Lines in other spellings of the same kind of record: decoded, never printed as is.
    texts = {
        "spaces": lambda d: json.dumps(d, sort_keys=True),
        "unsorted": lambda d: json.dumps(dict(reversed(d.items())), separators=(",", ":")),
        "raw utf-8": lambda d: json.dumps(d, ensure_ascii=False, **CANONICAL),
    }
    for n, (_, dumps) in enumerate(texts.items(), start=len(odd) + 1):
        out.append(_line({**base, "id": _id(n), "command": "caf\u00e9"}, dumps))
    respelled = [
        ('"duration":12.277', '"duration":12'),  # an integer duration (read as 12.0)
        ('"duration":12.277', '"duration":1.2277E1'),
        ('"acc":0.93', '"acc":0.930'),
        ('"acc":0.93', '"acc":-0'),
        ('"acc":0.93', '"acc":NaN'),
        ('"acc":0.93', '"acc":1e400'),
        ('"lr":0.1', '"lr":' + "7" * 5000),  # past Python's digits limit: left out
        ('"metrics":{"acc":0.93}', '"metrics":{"z":1,"acc":0.93}'),
        ('"metrics":{"acc":0.93}', '"metrics":{"acc":1,"acc":0.93}'),
        ('"exit_code":0', '"exit_code":-0'),
        ('"exit_code":0', '"exit_code":null'),
        ('"metrics":{"acc":0.93}', '"metrics":{}'),
        ('"argv":["python","train.py","--lr","0.1"]', '"argv":[]'),
        ('"command":', '"cwd":".","command":'),
        ('"commit":', '"origin":"run","commit":'),
        ('"status":"ok"', '"status":"ok","tool":""'),
        ('"v":1', '"v":1.0'),
    ]
    start = len(odd) + len(texts) + 1
    for n, (old, new) in enumerate(respelled, start=start):
        line = _line({**base, "id": _id(n)})
        assert old in line, old
        out.append(line.replace(old, new))
    # A record on ``other`` kept in this commit's note (shown on both).
    out.append(encode_entry(make_record(other, id=_id(start + len(respelled)))))
    out.append("this line is not a record")
    return out


@pytest.fixture
def ledger(repo: Path) -> tuple[Path, list[str]]:
    """Hand-written notes on three commits: odd lines, a copy in conflict, an attached run
    and a deleted one. Returns the repository and the commits."""
    c1 = git(repo, "rev-parse", "HEAD")
    c2 = commit_file(repo, "a.txt", "a\n")
    c3 = commit_file(repo, "b.txt", "b\n")
    lines = _lines(c1, c3)
    attached = make_record(c2, id=_id(90))
    doomed = make_record(c2, id=_id(91))
    conflicted = make_record(c2, id=_id(92))
    lines2 = [encode_entry(r) for r in (attached, doomed, conflicted)]
    lines3 = [
        encode_entry(Attachment(attached.id, c3, c2, "amend", "2026-11-27T00:00:00.000Z")),
        encode_entry(Tombstone(doomed.id, "2026-11-27T00:00:00.000Z")),
        encode_entry(make_record(c2, id=_id(92), command="another copy")),
        encode_entry(make_record(c3, id=_id(93))),
    ]
    for commit, note in ((c1, lines), (c2, lines2), (c3, lines3)):
        git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", commit, input="\n".join(note))
    return repo, [c1, c2, c3]


def _expected(repo: Path) -> tuple[str, list[dict[str, Any]]]:
    """find --json as the records decoded and encoded again give it (record_jsons)."""
    with open_index(RepoPaths.discover(repo)) as index:
        ids = found_ids(index, FindQuery(sort="-started"))
        records = index.record_jsons(ids)
    ordered = [records[run] for run in ids if run in records]
    body = ",\n".join(FIND_JSON(r) for r in ordered)
    return ("[\n" + body + "\n]\n" if ordered else "[\n]\n"), ordered


def _splices(repo: Path) -> dict[str, str | None]:
    with sqlite3.connect(repo / ".git" / "prov" / "index.sqlite") as db:
        return dict(db.execute("SELECT commit_id, splices FROM notes"))


def test_spliced_output_is_the_decoded_one(ledger: tuple[Path, list[str]]) -> None:
    repo, (c1, c2, c3) = ledger
    first = prov(repo, "find", "--json").stdout  # decodes every line, and keeps what it may
    kept = _splices(repo)
    assert kept[c1] and kept[c3] and kept[c2] is None, kept  # (c2: no run of one row)
    splices = [int(s) for s in (kept[c1] or "").partition(":")[2].split(",")]
    blob = git(repo, "notes", "--ref=prov", "list", c1)
    lines = note_lines(
        subprocess.run(
            ["git", "cat-file", "blob", blob], cwd=repo, capture_output=True, check=True
        ).stdout
    )
    # The canonical line is printed from its text; the others mostly are not.
    printed = {
        json.loads(line.split("\t", 1)[1])["id"]
        for s, line in zip(splices, lines, strict=True)
        if s >= 0
    }
    assert _id(1) in printed and _id(9) in printed  # (canonical; a metric named "params")
    assert not printed & {_id(2), _id(3)}  # (strings that end in "," or start with ":")
    second = prov(repo, "find", "--json").stdout  # prints those from their text
    expected, records = _expected(repo)
    assert first == second == expected
    assert len(records) > 30 and any(r.get("attachments") for r in records)
    assert any(len(r["shown_on"]) == 2 for r in records)  # (the record in another's note)
    assert _id(91) not in expected  # (deleted)
    # A page and a filter: the same records, through the same kept splices.
    page = json.loads(prov(repo, "find", "--json", "-n", "3", "--sort", "started").stdout)
    assert page == sorted(records, key=lambda r: (r["started"], r["id"]))[:3]


def test_kept_splices_follow_the_note_blob(ledger: tuple[Path, list[str]]) -> None:
    repo, (c1, c2, _) = ledger
    prov(repo, "find", "--json")
    before = _splices(repo)
    # A run added to c2's note: a new blob, whose splices are worked out again.
    note = git(repo, "notes", "--ref=prov", "show", c2)
    added = encode_entry(make_record(c2, id=_id(95), command="added later"))
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", c2, input=note + "\n" + added)
    prov(repo, "find", "-n", "1")  # (the index brought up to date: c2's splices forgotten)
    assert _splices(repo)[c2] is None and _splices(repo)[c1] == before[c1]
    out = prov(repo, "find", "--json").stdout
    assert out == _expected(repo)[0] and "added later" in out
    assert _splices(repo)[c2] is not None
    # What is kept is only used for the blob it was worked out for: a wrong entry for a
    # blob that is no longer the note's is never read.
    tag, _, entries = (before[c1] or "").partition(":")
    wrong = tag + ":" + ",".join(["5"] * len(entries.split(",")))
    with sqlite3.connect(repo / ".git" / "prov" / "index.sqlite") as db:
        db.execute("UPDATE notes SET splices = ? WHERE commit_id = ?", (wrong, c1))
    assert prov(repo, "find", "--json").stdout != _expected(repo)[0]  # (read: it is the cache)
    git(repo, "notes", "--ref=prov", "append", "-m", "another line that is not a record", c1)
    assert prov(repo, "find", "--json").stdout == _expected(repo)[0]


def test_spool_bands_and_repeats(
    ledger: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool in bands of two positions, flushed every three texts: spliced and decoded
    lines side by side in one band, a band of each kind alone, and rows asked for twice
    give what decoding gives, in the order asked."""
    repo, _ = ledger
    expected, records = _expected(repo)
    prov(repo, "find", "--json")  # (the splices kept: lines printed from their bytes)
    monkeypatch.setattr(find_json._Bands, "MIN_BAND", 2)
    monkeypatch.setattr(find_json._Bands, "FLUSH", 3)
    monkeypatch.setattr(find_json._Bands, "BANDS", 10**6)
    with open_index(RepoPaths.discover(repo)) as index:
        rows = found_rows(index, FindQuery(sort="-started"))
        assert b"".join(find_json.find_json_document(index, rows)).decode() == expected
        twice = [*rows, rows[0], *rows[3:6], rows[-1]]
        again = [*records, records[0], *records[3:6], records[-1]]
        printed = list(find_json.records_of_rows(index, twice, FIND_JSON))
        assert printed == [FIND_JSON(r) for r in again]
        assert list(find_json.find_json_document(index, [])) == [b"[\n]\n"]


def test_csv_is_the_table_of_the_same_records(ledger: tuple[Path, list[str]]) -> None:
    repo, _ = ledger
    prov(repo, "find", "--json")
    out = prov(repo, "find", "--csv").stdout
    _, records = _expected(repo)
    assert out == runs_csv(records).replace("\r\n", "\n")  # (stdout read as text)
    rows = list(csv.reader(io.StringIO(out)))
    assert len(rows) == len(records) + 1 and "params.big" in rows[0]


def test_lines_printed_from_their_bytes(repo: Path) -> None:
    """Lines with a kept splice are printed from the note's bytes (never decoded): the
    same output for a line ending in CRLF, text before the tab that is not ASCII or not
    UTF-8, and blanks around the JSON (those never get a splice)."""
    c1 = git(repo, "rev-parse", "HEAD")
    c2 = commit_file(repo, "a.txt", "a\n")
    lines = [_line(make_record(c1, id=_id(n)).to_json_dict()).encode() for n in range(8)]
    lines[1] += b"\r"  # (CRLF: git and git-prov split at \n only)
    lines[2] = lines[2].replace(b"hand-made", "caf\u00e9 \u2028".encode())
    lines[3] = lines[3].replace(b"hand-made", b"\xff\xfe not utf-8")
    lines[4] = lines[4].replace(b"\t", b"\t ") + b" "
    lines[5] += b"\x1f"  # (a blank to str.strip, not to bytes.strip)
    lines[6] += "\u00a0".encode()
    lines[7] = _line(make_record(c2, id=_id(7)).to_json_dict()).encode()  # (shown on both)
    note = b"\n".join(lines) + b"\r\n"
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            input=note,
            cwd=repo,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    git(repo, "notes", "--ref=prov", "add", "-f", "-C", blob, c1)
    first = prov(repo, "find", "--json").stdout  # (decodes every line; keeps the splices)
    second = prov(repo, "find", "--json").stdout  # (prints the spliced lines' bytes)
    expected, records = _expected(repo)
    assert first == second == expected and len(records) == 8
    assert {len(r["shown_on"]) for r in records} == {1, 2}
    kept = [int(s) for s in (_splices(repo)[c1] or "").partition(":")[2].split(",")]
    assert [s >= 0 for s in kept] == [True] * 4 + [False] * 3 + [True, False]

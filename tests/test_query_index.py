"""The query index: fresh, incremental and full updates, corruption, concurrency, and its
fast note reader agreeing with the model's exact one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov
from factories import make_record
from hypothesis import given, settings
from hypothesis import strategies as st

from git_prov.model.record import RunRecord, Tombstone, encode_entry, parse_line, parse_note
from git_prov.query import index as index_module
from git_prov.query.index import (
    INDEX_FILE,
    SCHEMA_VERSION,
    RepoPaths,
    open_index,
    parse_lines,
    record_json_of,
    valid_run_json,
)
from git_prov.query.rows import (
    NOTE_ID_GROUP,
    NOTE_OBJECT_GROUPS,
    note_run_match,
    note_run_pattern,
    run_objects,
)
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo


def index_of(repo: Path) -> tuple[int, object, list[str]]:
    """(live runs, stats, run ids newest first) after bringing the index up to date."""
    with open_index(RepoPaths.discover(repo)) as index:
        ids = [r for (r,) in index.db.execute(
            "SELECT run FROM lines WHERE live = 1 ORDER BY started DESC, run DESC")]  # fmt: skip
        return index.run_count(), index.stats, ids


def write(repo: Path, *records: object) -> None:
    ledger = Ledger(open_repo(repo))
    ledger.write([(r.commit, r) for r in records])  # type: ignore[attr-defined]


def test_built_then_fresh_then_incremental(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    other = commit_file(repo, "a.txt", "a\n")
    write(repo, *(make_record(head, started=f"2026-01-0{i}T00:00:00.000Z") for i in (1, 2, 3)))
    write(repo, make_record(other, started="2026-01-04T00:00:00.000Z"))
    count, stats, _ = index_of(repo)
    assert (count, stats.mode, stats.reason, stats.lines_parsed) == (4, "built", "new", 4)  # type: ignore[attr-defined]

    count, stats, _ = index_of(repo)
    assert (count, stats.mode, stats.notes_read) == (4, "fresh", 0)  # type: ignore[attr-defined]

    # A new run on a commit whose note already has three lines: one note re-read, and of
    # it only the added line parsed.
    newest = make_record(head, started="2026-01-05T00:00:00.000Z")
    write(repo, newest)
    count, stats, ids = index_of(repo)
    assert stats.mode == "incremental"  # type: ignore[attr-defined]
    assert (stats.notes_read, stats.lines_parsed) == (1, 1)  # type: ignore[attr-defined]
    assert count == 5 and ids[0] == newest.id


def test_stale_index_is_updated_before_a_cli_query(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    write(repo, make_record(head, metrics={"acc": 0.5}))
    assert prov(repo, "find", "--format", "{metrics[acc]}").stdout == "0.5\n"
    write(repo, make_record(head, metrics={"acc": 0.7}, started="2027-01-01T00:00:00.000Z"))
    assert prov(repo, "find", "--format", "{metrics[acc]}").stdout == "0.7\n0.5\n"


def test_removed_lines_and_rewritten_notes_ref(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    first = make_record(head, started="2026-01-01T00:00:00.000Z")
    write(repo, first)
    before = git(repo, "rev-parse", NOTES_REF)
    second = make_record(head, started="2026-01-02T00:00:00.000Z")
    write(repo, second)
    assert index_of(repo)[0] == 2
    git(repo, "update-ref", NOTES_REF, before)  # someone rewound the ledger
    count, stats, ids = index_of(repo)
    assert count == 1 and ids == [first.id]
    assert stats.mode == "incremental"  # type: ignore[attr-defined]
    # A tip whose history is gone (an unrelated commit) still gives the right answer.
    tree = git(repo, "rev-parse", f"{before}^{{tree}}")
    orphan = git(repo, "commit-tree", tree, "-m", "rewritten")
    git(repo, "update-ref", NOTES_REF, orphan)
    assert index_of(repo)[2] == [first.id]


def test_tombstones_conflicts_and_unreadable_lines(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    gone, kept = make_record(head), make_record(head, started="2026-02-01T00:00:00.000Z")
    write(repo, gone, kept)
    assert index_of(repo)[0] == 2
    Ledger(open_repo(repo)).write([(head, Tombstone(gone.id, "2026-03-01T00:00:00Z"))])
    _, stats, ids = index_of(repo)
    assert ids == [kept.id] and stats.mode == "incremental"  # type: ignore[attr-defined]
    # A hand-written line that cannot be read is reported, the others still listed.
    note = Ledger(open_repo(repo)).note_text(head) + '{"v": 1, "kind": "run"}\n'
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", head, input=note)
    shown = prov(repo, "find", "--format", "{short_id}")
    assert shown.stdout.split() == [kept.short_id]
    assert "unreadable ledger line 4" in shown.stderr and "is missing" in shown.stderr


def test_corrupt_index_is_rebuilt_silently(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    record = make_record(head)
    write(repo, record)
    index_of(repo)
    path = repo / ".git" / "prov" / INDEX_FILE
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    count, stats, _ = index_of(repo)
    assert count == 1 and stats.reason == "corrupt"  # type: ignore[attr-defined]
    path.write_bytes(path.read_bytes()[:100] + b"\0" * 5000)  # a damaged page this time
    done = prov(repo, "find", "--format", "{short_id}")
    assert done.stdout.split() == [record.short_id] and done.stderr == ""


def test_a_first_build_is_made_aside_and_linked_in(repo: Path) -> None:
    """With no index file, the build fills a private file and links it in: what is left is
    the index in WAL mode, complete, and no private file (a killed builder's is removed)."""
    head = git(repo, "rev-parse", "HEAD")
    record = make_record(head)
    write(repo, record)
    prov_dir = repo / ".git" / "prov"
    prov_dir.mkdir(exist_ok=True)
    stale = prov_dir / f"{INDEX_FILE}.build-99999999"
    stale.write_bytes(b"left by a killed build")
    count, stats, ids = index_of(repo)
    assert (count, ids, stats.mode, stats.reason) == (1, [record.id], "built", "new")  # type: ignore[attr-defined]
    left = sorted(p.name for p in prov_dir.iterdir() if p.name.startswith(INDEX_FILE))
    assert left == [INDEX_FILE, f"{INDEX_FILE}.lock"]
    import sqlite3

    with sqlite3.connect(prov_dir / INDEX_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone() == ("1",)
    assert index_of(repo)[1].mode == "fresh"  # type: ignore[attr-defined]


def test_a_build_leaves_the_lookup_indexes_to_the_queries_that_need_them(repo: Path) -> None:
    """A build makes the indexes a first query uses (runs by id, by start time, problem
    lines); the one by note is made by the first update of a changed note, those by data
    manifest by the first data query. The answers are the same either way."""
    import sqlite3

    head = git(repo, "rev-parse", "HEAD")
    first = make_record(head, started="2026-01-01T00:00:00.000Z")
    write(repo, first)
    path = repo / ".git" / "prov" / INDEX_FILE

    def made() -> set[str]:
        with sqlite3.connect(path) as db:
            found = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return {name for (name,) in found if name.startswith("lines_")}

    assert index_of(repo)[1].mode == "built"  # type: ignore[attr-defined]
    assert made() == {"lines_run", "lines_started", "lines_problems"}
    second = make_record(head, started="2026-01-02T00:00:00.000Z")
    write(repo, second)
    count, stats, ids = index_of(repo)
    assert (count, ids, stats.mode) == (2, [second.id, first.id], "incremental")  # type: ignore[attr-defined]
    assert made() == {"lines_run", "lines_started", "lines_problems", "lines_note"}
    assert prov(repo, "find", "--data", "nowhere").stdout == ""
    assert made() == {name for name, _ in index_module._LINE_INDEXES}


def test_a_build_over_an_existing_file_is_made_in_place(repo: Path) -> None:
    """An index file already there (here one another process has just created, empty) is
    built in place, never replaced: its readers keep reading the file they opened."""
    import sqlite3

    head = git(repo, "rev-parse", "HEAD")
    write(repo, make_record(head))
    path = repo / ".git" / "prov" / INDEX_FILE
    path.parent.mkdir(exist_ok=True)
    sqlite3.connect(path).close()
    inode = path.stat().st_ino
    count, stats, _ = index_of(repo)
    assert (count, stats.mode, path.stat().st_ino) == (1, "built", inode)  # type: ignore[attr-defined]
    assert not list(path.parent.glob(f"{INDEX_FILE}.build-*"))


def test_an_unusable_index_file_falls_back_to_memory(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    write(repo, make_record(head))
    path = repo / ".git" / "prov" / INDEX_FILE
    path.parent.mkdir(exist_ok=True)
    path.mkdir()  # not a file: cannot be opened, cannot be deleted as a file
    count, stats, _ = index_of(repo)
    assert count == 1 and stats.mode == "memory"  # type: ignore[attr-defined]


def test_concurrent_processes_agree(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    write(
        repo, *(make_record(head, started=f"2026-01-{d:02d}T00:00:00.000Z") for d in range(1, 21))
    )
    code = (
        "import json, sys; from git_prov.query.index import RepoPaths, open_index\n"
        "i = open_index(RepoPaths.discover(sys.argv[1]))\n"
        "print(json.dumps([i.run_count(), i.stats.mode]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(repo)], stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    answers = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [a[0] for a in answers] == [20, 20, 20]
    assert sorted(a[1] for a in answers).count("built") >= 1  # the others found it done


def test_notes_written_by_plain_git_are_indexed(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    record = make_record(head)
    git(repo, "notes", "--ref=prov", "add", "-m", encode_entry(record), head)
    assert index_of(repo)[2] == [record.id]


# ---- the fast reader against the exact one ------------------------------------------------


def _variants() -> list[str]:
    base = make_record("a" * 40, env="b" * 40, tags=("x",), argv=("p",), message="m")
    data = base.to_json_dict()
    out = [json.dumps(data), encode_entry(base)]
    bad_values: dict[str, list[object]] = {
        "id": [None, 5, "nope", base.id + "\n"],
        "commit": [None, "xyz", "A" * 40, ["a"], "a" * 40 + "\n"],
        "env": [None, 7, "zz", ["b" * 40]],
        "command": [None, 3],
        "status": [None, False],
        "duration": [None, "1", True, 3, float("nan"), float("inf"), 10**400, 2**70],
        "exit_code": [None, 1.5, True, "0", 2**63, -(2**63) - 1, 2**63 - 1],
        "signal": [None, 9, "9", False, 2**64],
        "argv": [None, [], ["a", 1], "a"],
        "params": [None, {}, {"a": [1]}, {"a": None}, {"a": {"b": 1}}, []],
        "metrics": [{"a": True}, {"a": "x"}, {"a": 1.5e300}],
        "tags": [None, [], [1], "x"],
        "cwd": ["", ".", None, 1],
        "origin": ["", "run", "record", None, 0],
        "v": [None, 2, True, "1", 1.0],
        "kind": ["other", None, 5],
        "branch": [None, 1, ""],
        "signature": [None, 5, "-----BEGIN PGP SIGNATURE-----"],
        "deep": [[[[1]]], json.loads("[" * 40 + "]" * 40), {"a": {"b": None}}],
    }
    canonical = {"sort_keys": True, "separators": (",", ":")}  # as git-prov writes lines
    for key, values in bad_values.items():
        for value in values:
            changed = dict(data)
            changed[key] = value
            out += [json.dumps(changed), json.dumps(changed, **canonical)]
        without = {k: v for k, v in data.items() if k != key}
        out += [json.dumps(without), json.dumps(without, **canonical)]
    numbers = ["1", "-0", "1.0", "1e5", "1E-5", "-2.5e+3", "1" + "0" * 30, "1e999", "-1e999"]
    for text in numbers:  # numbers as JSON writes them, where the regular expression reads them
        for key in ("duration", "exit_code", "signal"):
            line = json.dumps({**data, key: 7}, **canonical)
            out.append(line.replace(f'"{key}":7', f'"{key}":{text}'))
        line = json.dumps({**data, "metrics": {"m": 7}}, **canonical)
        out.append(line.replace('"m":7', f'"m":{text}'))
    out.append(json.dumps({**data, "v": 1}, **canonical).replace('"v":1}', '"v":01}'))
    out.append(json.dumps({**data, "command": "caf\u00e9"}, **canonical, ensure_ascii=False))
    out.append(json.dumps({**data, "argv": None, "env": None}, **canonical))
    # Members the index cuts out of the line's text instead of re-encoding them.
    tricky = [
        {"params": {"a": "}"}, "metrics": {"b": 'x"}', "c": "\\"}},
        {"params": {"}": 1, "d": "]"}, "tags": ["a]b", 'c"]', "\\]"]},
        {'w"metrics': {"a": 1}, "metrics": {"z": 2}},
        {"zz": {"metrics": 5}, "metrics": {"m": 1}},
        {"params": {"a": 1}, "tags": ["x"], "omitted": ["q]"]},
    ]
    for extra in tricky:
        record = {**data, **extra}
        out += [json.dumps(record), json.dumps(record, separators=(",", ":"), sort_keys=True)]
    out += ["not json", "{", "[1, 2]", '{"v": 1}', "", "  ", "summary only\t"]
    out += ["prov run x \u2028 \x1c y\t" + json.dumps(data), "[" * 5000 + "]" * 5000]
    return out


@pytest.mark.parametrize("line", _variants())
def test_fast_reader_agrees_with_parse_line(line: str) -> None:
    parsed = parse_note(line, "c" * 40)  # the ledger's own reading of a note
    rows = parse_lines("c" * 40, [(1, line)])
    assert parse_lines("c" * 40, [(1, line)], canonical=True) == rows  # and the regex
    if parsed.problems:
        assert [r[2] for r in rows] == [3]  # a problem row, with the same reason
        assert rows[0][-1] == parsed.problems[0].reason
    elif not parsed.entries:
        assert rows == []  # blank lines and unknown kinds are skipped
    else:
        [exact] = parsed.entries
        assert isinstance(exact, RunRecord)
        [row] = rows
        assert row[3] == exact.id and row[7] == exact.status and row[16] == exact.command
        params, metrics, tags = (json.loads(v) if v else None for v in row[17:20])
        assert params == (exact.params or None) and metrics == (exact.metrics or None)
        assert tags == (list(exact.tags) or None)
        payload = line.rpartition("\t")[2]
        assert record_json_of(json.loads(payload)) == exact.to_json_dict()
        if not exact.extra:
            assert valid_run_json(json.loads(payload))  # the fast path took it


def _object_variants() -> list[str]:
    """Run lines naming every kind of object fsck checks, well and badly formed."""
    base = make_record("a" * 40, env="b" * 40).to_json_dict()
    out = []
    for key in ("snapshot", "inputs", "outputs", "env", "stdout", "stderr", "history"):
        for value in ("c" * 40, "d" * 64, "e" * 41, "C" * 40, None, 5, "f" * 40 + "\n"):
            data = {**base, key: value}
            out += [json.dumps(data), json.dumps(data, sort_keys=True, separators=(",", ":"))]
    return out


@pytest.mark.parametrize("line", _variants() + _object_variants())
def test_fscks_fast_reader_agrees_with_parse_line(line: str) -> None:
    """fsck reads run lines the fast ways (run_objects) and everything else exactly: a line
    it takes is a run the exact reader accepts, with the same id and objects."""
    found = run_objects(line)
    try:
        exact = parse_line(line)
    except ValueError:
        exact = None
    if found is None:  # left to the exact reader: fine, whatever it says
        assert not (isinstance(exact, RunRecord) and not exact.extra and _canonical(line))
        return
    assert isinstance(exact, RunRecord)
    assert tuple(found) == (
        exact.id, exact.commit, exact.snapshot, exact.inputs, exact.outputs, exact.env,
        exact.stdout, exact.stderr, exact.history,
    )  # fmt: skip


def _note_reading(line: str) -> tuple[str | None, ...] | None:
    """What fsck's note reader takes of ``line`` inside a note (summary, tab, ``line``, more
    lines after it): the id and objects, or None (left to the other readers)."""
    text = f"prov run x ok\t{line}\nnext line\n"
    found = note_run_match()(text, 0)
    if found is None:
        return None
    assert found.end() == text.index("\n")  # one whole line
    assert note_run_match()(f"summary\t{line}", 0) is not None  # the last line of a note
    return found.group(NOTE_ID_GROUP, *NOTE_OBJECT_GROUPS)


@pytest.mark.parametrize("line", _variants() + _object_variants())
def test_fscks_note_reader_agrees_with_parse_line(line: str) -> None:
    """fsck reads canonical run lines straight out of a note's text: a line it takes is a
    run the exact reader accepts, with the same id and objects, and canonical lines of
    plain runs are taken."""
    found = _note_reading(line)
    for other in (f"prov run x ok\t{line}\r", f"a\tb\t{line}", f"x\t {line}"):
        assert note_run_match()(other, 0) is None  # left to the other readers
    try:
        exact = parse_line(f"prov run x ok\t{line}")
    except ValueError:
        exact = None
    if found is None:
        return
    assert isinstance(exact, RunRecord) and not exact.extra
    assert found == (
        exact.id, exact.commit, exact.snapshot, exact.inputs, exact.outputs, exact.env,
        exact.stdout, exact.stderr, exact.history,
    )  # fmt: skip


@pytest.mark.parametrize("line", _variants() + _object_variants())
def test_fscks_possessive_pattern_matches_as_the_backtracking_one(line: str) -> None:
    """fsck's note pattern never gives back what a quantifier took: on every variant, cut
    anywhere, with more after it or a second tab, it matches exactly where and what the
    same pattern with ordinary quantifiers matches."""
    plain = re.compile(note_run_pattern()).match
    possessive = note_run_match()
    texts = [f"prov run x ok\t{line}\nnext line\n", f"a\tb\t{line}", f"x\t{line}\r\n"]
    texts += [f"s\t{line[:cut]}\n{line[cut:]}" for cut in range(0, len(line), 5)]
    texts += [f"s\t{line[:cut]}x{line[cut:]}" for cut in range(0, len(line), 11)]
    for text in texts:
        found, expected = possessive(text, 0), plain(text, 0)
        assert (found is None) == (expected is None), text
        if found is not None and expected is not None:
            assert found.span() == expected.span() and found.groups() == expected.groups()


def test_fscks_note_reader_takes_what_git_prov_writes() -> None:
    record = make_record("a" * 40, env="b" * 40, stdout="c" * 40, history="d" * 64)
    line = encode_entry(record)
    assert _note_reading(line.rpartition("\t")[2]) == (
        record.id, "a" * 40, None, None, None, "b" * 40, "c" * 40, None, "d" * 64,
    )  # fmt: skip
    assert note_run_match()(line, 0) is not None


def _canonical(line: str) -> bool:
    """A line as git-prov writes it, with no escapes in its strings (the pattern's lines)."""
    payload = line.rpartition("\t")[2]
    return "\\" not in payload and payload == json.dumps(
        json.loads(payload), sort_keys=True, separators=(",", ":")
    )


def test_a_first_build_reports_progress_through_the_ambient_reporter(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first query on a big ledger takes seconds: the CLI's progress bar (set as the
    ambient reporter) hears about the build; nothing is reported once the index is fresh."""
    from git_prov import progress

    heard: list[tuple[str, object]] = []

    class Recorder:
        def start(self, label: str, total: int, unit: str = "B") -> None:
            heard.append(("start", (label, total, unit)))

        def advance(self, amount: int) -> None:
            heard.append(("advance", amount))

        def finish(self) -> None:
            heard.append(("finish", None))

    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "1")  # this process reads every note
    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(300)]
    Ledger(open_repo(repo)).write([(c, make_record(c)) for c in commits])
    progress.set_ambient(Recorder)
    try:
        assert index_of(repo)[0] == 300
        assert heard[0] == ("start", ("indexing the ledger", 300, "notes"))
        assert ("advance", 256) in heard and heard[-1] == ("finish", None)
        heard.clear()
        index_of(repo)  # fresh: no work, no report
        assert heard == []
    finally:
        progress.set_ambient(None)


def test_the_parts_are_equal_and_every_note_is_in_one_part() -> None:
    """A build's own part is as large as a helper's (what follows the parsing waits for
    every part, so the slowest part sets the time); the parts still cover every note
    once, in order."""
    from git_prov.query import parts

    assert parts.first_share(1) == 1.0
    assert parts.first_share(2) == 0.5 and parts.first_share(8) == 0.125
    notes = list(range(1000))
    for count in (2, 3, 8):
        pieces = parts.split(notes, count, parts.first_share(count))
        assert len(pieces) == count and [n for p in pieces for n in p] == notes
        assert len(pieces[0]) == round(1000 * parts.first_share(count))
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
    assert parts.split(notes, 4) == [notes[:250], notes[250:500], notes[500:750], notes[750:]]


def _rows(repo: Path) -> tuple[object, list[tuple[object, ...]]]:
    """A fresh build's stats, and every row of ``lines`` but its id, in (note, line) order."""
    (repo / ".git" / "prov" / "index.sqlite").unlink(missing_ok=True)
    with open_index(RepoPaths.discover(repo)) as index:
        rows = index.db.execute("SELECT * FROM lines ORDER BY note, lineno").fetchall()
        return index.stats, [row[1:] for row in rows]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helpers fork on Linux only")
def test_a_build_in_parts_equals_a_build_in_one_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big first build is cut into parts that forked helpers parse side by side. The
    index must come out row for row as one process makes it, including which record is live
    when a run's records or its tombstone sit in different parts."""
    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(12)]
    first, last = commits[0], commits[-1]
    records = [make_record(c, started=f"2026-01-{i + 1:02d}T00:00:00.000Z")
               for i, c in enumerate(commits)]  # fmt: skip
    twin = make_record(last, id=records[0].id, metrics={"acc": 0.1})  # a conflict across parts
    doomed = records[1]
    ledger = Ledger(open_repo(repo))
    ledger.write([(r.commit, r) for r in records] + [(last, twin)])
    ledger.write([(commits[-2], Tombstone(doomed.id, "2026-03-01T00:00:00Z"))])
    broken = ledger.note_text(commits[6]) + "not an entry\n"
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", commits[6], input=broken)

    # The build's scratch directories go to a temporary directory of this test's own, so
    # that tests running beside it (pytest -n) cannot make or remove any there.
    scratch_dir = repo.parent / "tmp"
    scratch_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_dir))
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "1")
    alone_stats, alone = _rows(repo)
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "4")
    parts_stats, in_parts = _rows(repo)
    assert (alone_stats.parts, parts_stats.parts) == (1, 4)  # type: ignore[attr-defined]
    assert in_parts == alone
    live = {row[3]: row[0] for row in alone if row[-1] == 1}  # run -> note of its live row
    assert live[records[0].id] == min(first, last) and doomed.id not in live
    assert [row[2] for row in alone].count(3) == 1  # the unreadable line, once
    assert list(scratch_dir.iterdir()) == []  # its scratch directories removed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helpers fork on Linux only")
def test_a_part_whose_helper_fails_is_parsed_by_the_build_itself(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that dies (killed, out of memory, a bug) costs time, never rows."""
    from git_prov.query import index as index_module

    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(6)]
    Ledger(open_repo(repo)).write([(c, make_record(c)) for c in commits])
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "1")
    _, alone = _rows(repo)

    def dies(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(index_module, "_parse_into", dies)
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "3")
    stats, rows = _rows(repo)
    assert stats.parts == 3 and rows == alone  # type: ignore[attr-defined]
    assert len(alone) == 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="helpers fork on Linux only")
def test_a_build_whose_helpers_cannot_start_or_wrote_garbage_still_has_every_row(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No temporary directory for the helpers' files (a full or unwritable TMPDIR), or a
    file a helper left unreadable: the build parses those notes itself."""
    from git_prov.query import index as index_module

    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(6)]
    Ledger(open_repo(repo)).write([(c, make_record(c)) for c in commits])
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "1")
    _, alone = _rows(repo)
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", "3")

    not_a_directory = tmp_path / "tmp-is-a-file"
    not_a_directory.write_text("")
    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(not_a_directory))
        stats, rows = _rows(repo)
    assert stats.parts == 1 and rows == alone  # type: ignore[attr-defined]

    def garbage(paths: object, notes: object, path: str) -> None:
        Path(path).write_bytes(b"not a database" * 100)

    monkeypatch.setattr(index_module, "_parse_into", garbage)
    stats, rows = _rows(repo)
    assert stats.parts == 3 and rows == alone  # type: ignore[attr-defined]


def test_numbers_past_any_float_or_64_bits_are_named_not_a_traceback(repo: Path) -> None:
    """Hand-edited numbers JSON allows but no float or SQLite integer holds: a duration of
    10**400 seconds and an exit code of 2**64 make their lines unreadable (reported, as any
    other), and a metric of 10**400 compares as infinity."""
    head = git(repo, "rev-parse", "HEAD")
    huge = make_record(head, metrics={"acc": 1})
    Ledger(open_repo(repo)).write([(head, huge)])
    text = Ledger(open_repo(repo)).note_text(head).replace('"acc":1', '"acc":1' + "0" * 400)
    base = json.loads(encode_entry(make_record(head)).rpartition("\t")[2])
    long_run = {**base, "id": "20260101T000000.000Z-0000aaaa", "duration": 10**400}
    odd_exit = {**base, "id": "20260101T000000.000Z-0000bbbb", "exit_code": 2**64}
    text += json.dumps(long_run) + "\n" + json.dumps(odd_exit) + "\n"
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", head, input=text)

    shown = prov(repo, "find", "--where", "acc>1e308", "--sort", "-acc", "--format", "{id}")
    assert shown.stdout.split() == [huge.id]
    assert "duration is not a finite number" in shown.stderr
    assert "exit_code is out of range" in shown.stderr
    assert prov(repo, "show", huge.short_id).returncode == 0


# Run objects near what git-prov writes: every member of the model, mostly with values of
# the right type and sometimes with wrong ones, strings with quotes, escapes and control
# characters, numbers past 64 bits and past any float; sometimes a missing or unknown
# member, sometimes a character or two changed in the line.
def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from([good] * 5 + [bad]).flatmap(lambda chosen: chosen)


_ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
_TEXT = _mostly(
    _ASCII,
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
    | st.sampled_from(['q"', "b\\", "\x00", "\x1f", "\x7f", "é", "\u2028"]),
)
_OID_TEXT = _mostly(
    st.sampled_from(["a" * 40, "0123456789" * 4, "b" * 64]),
    st.sampled_from(["A" * 40, "a" * 39, "a" * 41, "z" * 40, ""]),
)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_BIG = st.sampled_from([10**400, -(10**30), 2**63, -(2**63) - 1, 2**63 - 1, -(2**63)])
_NUMBER = _mostly(
    _FLOAT | st.integers(-1000, 1000),
    _BIG | st.floats() | st.integers(-(2**70), 2**70),
)
_SCALAR = _mostly(_TEXT | _NUMBER | st.booleans(), st.none() | st.lists(st.integers(), max_size=1))
_MEMBER = {
    "id": _mostly(
        st.just("20260101T000000.000Z-0000abcd"),
        st.sampled_from(["20260101T000000.000Z-0000ABCD", "2026-x", "٢" * 8, ""]),
    ),
    "commit": _OID_TEXT,
    "command": _TEXT,
    "started": _TEXT,
    "ended": _TEXT,
    "status": _TEXT,
    "duration": _NUMBER,
    "exit_code": _mostly(st.integers(-300, 300) | st.none(), _NUMBER),
    "signal": _mostly(st.integers(1, 64) | st.none(), _NUMBER),
    "params": st.dictionaries(_ASCII, _SCALAR, max_size=3),
    "metrics": st.dictionaries(_TEXT, _SCALAR, max_size=3),
    "tags": _mostly(st.lists(_TEXT, max_size=2), st.lists(_SCALAR, max_size=2)),
    "argv": st.lists(_TEXT, max_size=2) | st.none(),
    "env": _OID_TEXT | st.none(),
    "inputs": _OID_TEXT | st.none(),
    "host": _TEXT | st.none(),
    "user": _TEXT | st.none(),
    "branch": _TEXT | st.none(),
    "kind": _mostly(st.just("run"), st.sampled_from(["attach", "Run", ""])),
    "v": _mostly(st.just(1), st.sampled_from([0, 2, True, 1.0])),
}
_REQUIRED = ("id", "commit", "command", "started", "ended", "status", "kind", "v")
_RARELY = st.sampled_from([False] * 5 + [True])


@st.composite
def _canonical_lines(draw: st.DrawFn) -> str:
    keys = set(_REQUIRED) | draw(st.sets(st.sampled_from(sorted(set(_MEMBER) - set(_REQUIRED)))))
    if draw(_RARELY):
        keys.discard(draw(st.sampled_from(_REQUIRED)))
    data = {k: draw(_MEMBER[k]) for k in keys}
    if draw(_RARELY):
        data["extra"] = draw(_SCALAR)
    line = json.dumps(data, sort_keys=True, separators=(",", ":"))
    if draw(_RARELY):
        at = draw(st.integers(0, len(line)))
        change = ["", '"', "\\", ",", ":", "{", "}", "]", "0", "a", " ", "e", "-", ".", "null"]
        line = line[:at] + draw(st.sampled_from(change)) + line[at + 1 :]
    return line


@settings(max_examples=1500, deadline=None)
@given(line=_canonical_lines())
def test_the_canonical_reader_agrees_with_the_other_two(line: str) -> None:
    """The regular expression reads a canonical line as the fast and the exact reader do,
    and passes every other line on to them (so it can only ever accept)."""
    parsed = parse_note(line, "c" * 40)
    rows = parse_lines("c" * 40, [(1, line)])
    assert parse_lines("c" * 40, [(1, line)], canonical=True) == rows
    assert len(rows) == len(parsed.entries) + len(parsed.problems)
    found = _note_reading(line)  # and fsck's note reader
    if found is not None:
        [exact] = parsed.entries
        assert isinstance(exact, RunRecord) and not exact.extra
        assert found == (
            exact.id, exact.commit, exact.snapshot, exact.inputs, exact.outputs, exact.env,
            exact.stdout, exact.stderr, exact.history,
        )  # fmt: skip


def test_an_index_of_another_schema_version_is_replaced_by_one_built_aside(repo: Path) -> None:
    """An index file made by another version of git-prov is removed and a new one built
    aside and linked in, as a first build is (rebuilt in place, its WAL held every page:
    ~510 MB at 1M runs); the answers are those of a first build."""
    import sqlite3

    head = git(repo, "rev-parse", "HEAD")
    record = make_record(head)
    write(repo, record)
    path = repo / ".git" / "prov" / INDEX_FILE
    assert index_of(repo)[1].mode == "built"  # type: ignore[attr-defined]
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 8")
    old_inode = path.stat().st_ino
    count, stats, ids = index_of(repo)
    assert (count, ids, stats.mode, stats.reason) == (1, [record.id], "built", "new")  # type: ignore[attr-defined]
    assert path.stat().st_ino != old_inode
    left = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(INDEX_FILE))
    assert left == [INDEX_FILE, f"{INDEX_FILE}.lock"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert index_of(repo)[1].mode == "fresh"  # type: ignore[attr-defined]

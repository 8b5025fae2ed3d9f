"""Ledgers fetched from someone else: huge objects, deeply nested or invalid documents,
unsafe paths, terminal escapes, records naming missing objects. Every reader answers with a
clear message and bounded memory; the note-line parser never fails on anything."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import prov
from factories import make_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_prov.model.manifest import MAX_MANIFEST_BYTES
from git_prov.model.record import (
    MAX_LINE_BYTES,
    RunRecord,
    encode_entry,
    parse_line,
    parse_note,
    printable,
)
from git_prov.store.ledger import KIND_DATA, KIND_ENV, Ledger
from git_prov.store.repo import open_repo

ESCAPE = "\x1b]0;pwned\x07\x1b[2J"
MISSING = "0123456789abcdef0123456789abcdef01234567"


def _ledger(path: Path) -> tuple[Ledger, str]:
    repo = open_repo(path)
    return Ledger(repo), str(repo.head_commit().id)


def _peak_mib(path: Path, *args: str) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in MiB) of one git prov process, measured alone."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "git_prov", *args],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    code, kib = proc.stdout.split()
    return int(code), proc.stderr, int(kib) // 1024


def _write_huge_blob(git_dir: Path, size: int) -> str:
    """A loose blob of ``size`` zero bytes, written in streaming fashion (never in memory)."""
    header = f"blob {size}\0".encode()
    chunk = bytes(1 << 20)
    sha = hashlib.sha1(header)
    for _ in range(size // len(chunk)):
        sha.update(chunk)
    sha.update(bytes(size % len(chunk)))
    oid = sha.hexdigest()
    target = git_dir / "objects" / oid[:2] / oid[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    packer = zlib.compressobj(1)
    with target.open("wb") as f:
        f.write(packer.compress(header))
        for _ in range(size // len(chunk)):
            f.write(packer.compress(chunk))
        f.write(packer.compress(bytes(size % len(chunk))))
        f.write(packer.flush())
    return oid


# ---- size ---------------------------------------------------------------------------------


@pytest.fixture
def huge_manifest(repo: Path) -> str:
    ledger, head = _ledger(repo)
    oid = _write_huge_blob(repo / ".git", MAX_MANIFEST_BYTES + (44 << 20))  # 300 MiB
    record = make_record(head, inputs=oid, command="huge")
    ledger.write([(head, record)], objects={KIND_DATA: [oid]}, keep=[head])
    return record.short_id


@pytest.mark.slow
def test_fsck_refuses_a_300_mib_manifest_by_its_size(repo: Path, huge_manifest: str) -> None:
    code, _, peak = _peak_mib(repo, "fsck")
    assert code == 1
    assert peak < 150, f"fsck used {peak} MiB"
    doc = json.loads(prov(repo, "fsck", "--json", check=False).stdout)
    assert [f["code"] for f in doc["findings"]] == ["object-too-large"]


@pytest.mark.slow
def test_show_refuses_a_300_mib_manifest_before_reading_it(repo: Path, huge_manifest: str) -> None:
    code, err, peak = _peak_mib(repo, "show", huge_manifest)
    assert code == 9 and "limit" in err and "Traceback" not in err
    assert peak < 150, f"show used {peak} MiB"


# ---- nesting and invalid documents --------------------------------------------------------


def test_deeply_nested_or_invalid_manifests_give_clear_errors(repo: Path) -> None:
    ledger, head = _ledger(repo)
    deep = ledger.store_object(b'prov = 1\nkind = "data"\nx = ' + b"[" * 50_000 + b"]" * 50_000)
    invalid = ledger.store_object(b'prov = 1\nkind = "environment"\n[python\n')
    newer = ledger.store_object(b'prov = 99\nkind = "data"\n')
    runs = [
        make_record(head, inputs=deep),
        make_record(head, env=invalid),
        make_record(head, outputs=newer),
    ]
    ledger.write(
        [(head, r) for r in runs],
        objects={KIND_DATA: [deep, newer], KIND_ENV: [invalid]},
        keep=[head],
    )
    for run in runs:
        for args in (("show", run.short_id), ("show", "--json", run.short_id)):
            proc = prov(repo, *args, check=False)
            assert proc.returncode == 9, proc.stderr
            assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    doc = json.loads(prov(repo, "fsck", "--json", check=False).stdout)
    assert [f["code"] for f in doc["findings"]] == ["bad-manifest"] * 3
    assert prov(repo, "log").returncode == 0


def test_a_hostile_note_line_costs_only_itself(repo: Path) -> None:
    ledger, head = _ledger(repo)
    good = make_record(head, command="the good run")
    ledger.write([(head, good)], keep=[head])
    note = ledger.note_text(head)
    hostile = [
        '{"v":1,"kind":"run","x":' + "[" * 100_000 + "]" * 100_000 + "}",  # RecursionError
        '{"v":1,"kind":"run","x":' + "[" * 100 + "]" * 100 + "}",  # deep enough to hurt
        "summary\t{" + '"a":"' + "x" * (MAX_LINE_BYTES + 10) + '"}',  # megabytes in one line
        '{"v":1,"kind":"run","duration":1e999}',  # an infinite duration
        "prov run \u2028 split? \x85\t" + encode_entry(make_record(head)).split("\t")[1],
    ]
    text = note + "\n".join(hostile) + "\n"
    subprocess.run(
        ["git", "notes", "--ref=prov", "add", "-f", "-F", "-", head],
        cwd=repo,
        input=text.encode(),
        check=True,
    )
    for args in (("log",), ("log", "--json"), ("show", good.short_id), ("find",)):
        proc = prov(repo, *args, check=False)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "the good run" in prov(repo, "log").stdout
    doc = json.loads(prov(repo, "fsck", "--json", check=False).stdout)
    bad = [(f["code"], f["line"]) for f in doc["findings"] if f["severity"] == "error"]
    assert bad == [("bad-line", n) for n in (2, 3, 4, 5)]  # the U+2028 line is one good line


# ---- paths and terminal escapes -----------------------------------------------------------


@pytest.fixture
def escaping_run(repo: Path) -> RunRecord:
    ledger, head = _ledger(repo)
    manifest = ledger.store_object(
        b'prov = 1\nkind = "data"\npaths = ["../../etc/passwd", "/etc/passwd"]\n'
        b'file = [{path = "evil\\u001b]0;pwned\\u0007", size = 1, hash = "sha256:00"}, '
        b'{path = "two\\nlines", size = 1, hash = "sha256:00"}]\n'
    )
    record = make_record(
        head,
        command=f"python train.py {ESCAPE}",
        message=f"hello {ESCAPE}",
        tags=(ESCAPE,),
        status=f"ok{ESCAPE}",
        metrics={f"acc{ESCAPE}": 0.5},
        inputs=manifest,
    )
    ledger.write([(head, record)], objects={KIND_DATA: [manifest]}, keep=[head])
    return record


def test_checks_never_print_terminal_escapes(repo: Path, escaping_run: RunRecord) -> None:
    for args in (("fsck",), ("verify",), ("gc", "--keep-last", "0", "--dry-run")):
        proc = prov(repo, *args, check=False)
        assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout, args
        assert "Traceback" not in proc.stderr
    doc = json.loads(prov(repo, "show", "--json", escaping_run.short_id).stdout)
    assert doc["command"].endswith(ESCAPE)  # JSON keeps the data, escaped by JSON itself
    findings = json.loads(prov(repo, "fsck", "--json", check=False).stdout)["findings"]
    assert sorted(f["path"] for f in findings if f["code"] == "unsafe-path") == sorted(
        ["../../etc/passwd", "/etc/passwd", "evil\x1b]0;pwned\x07", "two\nlines"]
    )


def test_log_and_show_print_control_characters_escaped(repo: Path, escaping_run: RunRecord) -> None:
    for args in (("log",), ("log", "--oneline"), ("log", "--all-commits")):
        out = prov(repo, *args).stdout
        assert "\x1b" not in out and "\x07" not in out, args
    out = prov(repo, "show", "--all-files", escaping_run.short_id).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert printable(ESCAPE) in out
    assert "two\\nlines" in out


def test_printable_escapes_what_terminals_interpret() -> None:
    assert printable("a\x1b[31mb\x07\r\n\t\x9b\u202e\u2028") == (
        "a\\x1b[31mb\\x07\\r\\n\\t\\x9b\\u202e\\u2028"
    )
    assert printable("plain ünïcode ✓") == "plain ünïcode ✓"


# ---- records naming what is not there -----------------------------------------------------


def test_records_naming_missing_objects_get_clear_answers(repo: Path) -> None:
    ledger, head = _ledger(repo)
    record = make_record(head, env=MISSING, inputs=MISSING, stdout=MISSING, snapshot=MISSING)
    ledger.write([(head, record)], keep=[head])
    for args in (("show", record.short_id), ("show", "--json", record.short_id)):
        proc = prov(repo, *args, check=False)
        assert proc.returncode == 6 and "is not in this repository" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = prov(repo, "show", "--log", "stdout", record.short_id, check=False)
    assert proc.returncode == 6
    assert prov(repo, "log").returncode == 0
    doc = json.loads(prov(repo, "fsck", "--json", check=False).stdout)
    assert sorted(f["code"] for f in doc["findings"] if f["severity"] == "error") == [
        "missing-object",
        "missing-object",
        "missing-object",
        "missing-snapshot",
    ]


# ---- the parser, fuzzed ----------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_fields = st.sampled_from(
    ["v", "kind", "id", "commit", "command", "started", "ended", "duration", "exit_code",
     "status", "argv", "params", "metrics", "tags", "signature", "run", "at", "original",
     "how", "signal", "snapshot", "inputs", "env"]
)  # fmt: skip
_entries = st.dictionaries(_fields, _json, max_size=12).map(
    lambda d: {**d, "v": d.get("v", 1), "kind": d.get("kind", "run")}
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), _entries.map(lambda d: json.dumps(d))))
def test_parse_line_raises_nothing_but_value_error(line: str) -> None:
    with contextlib.suppress(ValueError):
        parse_line(line)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=80), _entries.map(json.dumps)), max_size=6))
def test_parse_note_never_raises_and_keeps_good_lines(lines: list[str]) -> None:
    good = encode_entry(make_record("a" * 40))
    parsed = parse_note("\n".join([*lines, good]))
    assert any(isinstance(e, RunRecord) and e.command.startswith("python") for e in parsed.entries)
    for entry in parsed.entries:  # what was parsed can be written back
        encode_entry(entry)


@pytest.mark.parametrize("key", ["id", "commit", "snapshot", "env", "inputs", "stdout"])
def test_an_id_with_a_trailing_newline_is_not_an_id(key: str) -> None:
    """``$`` also matches before a final newline: ids are checked to the end of the text, so
    a hand-made ``"<40 hex>\\n"`` never passes for an object id (it would become a second
    line of a ``git cat-file --batch`` request)."""
    from git_prov.query.rows import parse_lines

    data = make_record("a" * 40, env="b" * 40, snapshot="c" * 40).to_json_dict()
    data[key] = data[key] + "\n" if data.get(key) else "d" * 40 + "\n"
    line = json.dumps(data, sort_keys=True, separators=(",", ":"))
    with pytest.raises(ValueError):
        parse_line(line)
    assert [row[2] for row in parse_lines("e" * 40, [(1, line)])] == [3]  # the index: a problem

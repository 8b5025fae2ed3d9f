"""fsck of a big ledger reads its notes in parts, in forked helpers (git_prov/fsck/parts.py):
what it reports must be exactly what one process reading every note in order reports —
whichever parts the runs, their copies, conflicts, tombstones and bad objects fall in."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git
from factories import make_record

from git_prov.fsck import fsck
from git_prov.fsck import parts as fsck_parts
from git_prov.model.record import Tombstone, encode_entry
from git_prov.store.ledger import KIND_DATA, Ledger
from git_prov.store.repo import open_repo

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="helpers fork on Linux only"
)
MISSING = "0123456789abcdef0123456789abcdef01234567"


def _hostile_ledger(repo: Path) -> None:
    """Twelve notes holding, across what become different parts: a conflict, a copy, the
    same record written another way, a missing manifest and log named by runs in several
    notes, a broken manifest, a tombstone of a run of another note and of an unknown run,
    an unreadable line and a line of a newer format."""
    commits = [commit_file(repo, f"f{i}.txt", "x\n") for i in range(12)]
    ledger = Ledger(open_repo(repo))
    broken = ledger.store_object(b'prov = 1\nkind = "data"\nfile = [[[[[\n')
    # Run ids fall as commit ids rise: the first run naming a bad object (in run id order,
    # as findings are reported) is in the last part.
    rank = {c: i for i, c in enumerate(sorted(commits, reverse=True))}
    records = [
        make_record(c, id=f"20260101T0000{rank[c]:02d}.000Z-{rank[c]:08x}", env=broken)
        for c in commits
    ]
    lost = [make_record(c, inputs=MISSING, stdout=MISSING) for c in commits[::3]]
    twin = make_record(commits[-1], id=records[0].id, metrics={"acc": 0.1})  # a conflict
    entries: list[tuple[str, Any]] = [(r.commit, r) for r in records + lost]
    entries += [(commits[-1], twin), (commits[5], records[2]), (commits[10], lost[1])]  # copies
    entries += [(commits[-3], Tombstone(records[4].id, "2026-03-01T00:00:00Z"))]
    entries += [(commits[7], Tombstone(make_record(commits[0]).id, "2026-03-01T00:00:00Z"))]
    ledger.write(entries, objects={KIND_DATA: [broken]}, keep=commits[::2])
    # the same record as another text (a summary of its own) on another commit
    other = "another summary\t" + encode_entry(records[3]).rpartition("\t")[2]
    for at, extra in ((commits[9], other), (commits[6], "not an entry"), (commits[1], '{"v":9}')):
        text = ledger.note_text(at) + extra + "\n"
        git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", at, input=text)


def _report(repo: Path, jobs: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("GIT_PROV_INDEX_JOBS", str(jobs))
    report = fsck(open_repo(repo))
    return {**report.to_json_dict(), "text": [f.text() for f in report.findings]}


@pytest.fixture
def scratch(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The helpers' scratch directories go to a directory of this test's own."""
    path = repo.parent / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def test_fsck_in_parts_reports_what_one_process_reports(
    repo: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_ledger(repo)
    taken: list[bool] = []
    take = fsck_parts._take

    def counted(*args: Any) -> bool:
        taken.append(take(*args))
        return taken[-1]

    monkeypatch.setattr(fsck_parts, "_take", counted)
    alone = _report(repo, 1, monkeypatch)
    assert taken == []  # one process read every note
    codes = {f["code"] for f in alone["findings"]}
    assert {"conflict", "missing-object", "bad-manifest", "bad-line", "newer-format"} <= codes
    assert "tombstone-unknown-run" in codes
    for jobs in (2, 3, 4, 6, 12):
        assert _report(repo, jobs, monkeypatch) == alone, f"{jobs} parts"
    assert True in taken and False in taken  # parts taken in, and parts read again here
    assert list(scratch.iterdir()) == []  # the helpers' files removed


def test_a_part_whose_helper_fails_is_read_by_fsck_itself(
    repo: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that dies (killed, out of memory, a bug) costs time, never findings."""
    _hostile_ledger(repo)
    alone = _report(repo, 1, monkeypatch)

    def dies(*args: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(fsck_parts, "_read_part", dies)
    assert _report(repo, 4, monkeypatch) == alone
    assert list(scratch.iterdir()) == []

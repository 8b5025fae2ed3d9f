"""The ledger on real repositories: fan-out notes plain git reads, compare-and-swap writes,
union of runs, tolerance of damaged notes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pygit2
from conftest import commit_file, git
from factories import make_record

from git_prov.store import notes
from git_prov.store.ledger import KIND_DATA, NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo


def _commits(repo: Path, n: int) -> list[str]:
    return [commit_file(repo, f"f{i}.txt", str(i)) for i in range(n)]


def test_notes_are_fanned_out_and_plain_git_reads_them(repo: Path) -> None:
    commits = _commits(repo, 12)
    ledger = Ledger(open_repo(repo))
    records = [make_record(c) for c in commits]
    ledger.write([(r.commit, r) for r in records])
    tip = ledger.tip(NOTES_REF)
    assert tip is not None
    names = {e.name for e in tip.tree}
    assert all(len(n) == 2 for n in names), names  # one level of 2-hex fan-out
    for record in records:
        shown = git(repo, "notes", "--ref=prov", "show", record.commit)
        assert record.id in shown
    listed = git(repo, "notes", "--ref=prov", "list").splitlines()
    assert len(listed) == 12
    assert record.short_id in git(repo, "log", "-1", "--notes=prov", records[-1].commit)


def test_notes_git_wrote_flat_are_read_and_extended_in_place(repo: Path) -> None:
    c = git(repo, "rev-parse", "HEAD")
    first = make_record(c)
    from git_prov.model.record import encode_entry

    git(repo, "notes", "--ref=prov", "add", "-m", encode_entry(first), c)
    ledger = Ledger(open_repo(repo))
    second = make_record(c)
    ledger.write([(c, second)])
    ids = sorted(run.id for run in ledger.runs_on(c))
    assert ids == sorted([first.id, second.id])
    # Still one note for the commit, readable by git, with both lines.
    assert len(git(repo, "notes", "--ref=prov", "list").splitlines()) == 1
    note = git(repo, "notes", "--ref=prov", "show", c)
    assert first.id in note and second.id in note


def test_deeper_fanout_written_by_git_is_respected(repo: Path) -> None:
    c = git(repo, "rev-parse", "HEAD")
    pg = pygit2.Repository(str(repo))
    blob = pg.create_blob(b"x\n")
    path = f"{c[:2]}/{c[2:4]}/{c[4:]}"
    from git_prov.store.trees import FILEMODE_BLOB, edit_tree

    tree = edit_tree(pg, None, {path: (blob, FILEMODE_BLOB)})
    sig = pygit2.Signature("t", "t@example.com")
    commit = pg.create_commit(None, sig, sig, "n", tree, [])
    pg.references.create(NOTES_REF, commit)
    assert notes.find_note(pg, pg[tree], c) == (path, blob)  # type: ignore[arg-type]
    ledger = Ledger(open_repo(repo))
    ledger.write([(c, make_record(c))])
    tip = ledger.tip(NOTES_REF)
    assert tip is not None
    found = notes.find_note(pg, tip.tree, c)
    assert found is not None and found[0] == path
    assert "x" in git(repo, "notes", "--ref=prov", "show", c).splitlines()


def test_write_is_compare_and_swap_against_plain_git_writers(repo: Path) -> None:
    commits = _commits(repo, 3)
    ledger = Ledger(open_repo(repo))
    ledger.write([(commits[0], make_record(commits[0]))])
    # Another program moves the notes ref between our read and our write.
    original_build = notes.append_lines

    def racing_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not racing_append.done:  # type: ignore[attr-defined]
            racing_append.done = True  # type: ignore[attr-defined]
            git(repo, "notes", "--ref=prov", "add", "-m", "from plain git", commits[2])
        return original_build(*args, **kwargs)

    racing_append.done = False  # type: ignore[attr-defined]
    notes.append_lines = racing_append  # type: ignore[assignment]
    try:
        ledger.write([(commits[1], make_record(commits[1]))])
    finally:
        notes.append_lines = original_build  # type: ignore[assignment]
    assert git(repo, "notes", "--ref=prov", "show", commits[2]) == "from plain git"
    assert len(ledger.runs_on(commits[1])) == 1
    assert len(ledger.runs_on(commits[0])) == 1


# One writer process: waits for the start signal, then writes its runs one write at a
# time, each with a blob of its own in refs/prov/objects, as `git prov run` does.
_WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from factories import make_record
from git_prov.store.ledger import KIND_LOG, Ledger
from git_prov.store.repo import open_repo

repo_path, go, name, commits = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
repo = open_repo(repo_path)
while not os.path.exists(go):
    time.sleep(0.0005)
for i, commit in enumerate(commits):
    ledger = Ledger(open_repo(repo_path))
    record = make_record(commit, command=f"writer {name} run {i}")
    blob = ledger.store_object(f"log of {record.id}\\n".encode())
    ledger.write([(commit, record)], objects={KIND_LOG: [blob]}, keep=[commit])
    print(record.id, blob, flush=True)
"""


def test_concurrent_writer_processes_lose_nothing(repo: Path, tmp_path: Path) -> None:
    """Several OS processes write runs at once. Without the ledger lock *and* the
    compare-and-swap ref updates this loses runs and objects (each writer would move the
    refs to a commit built on a tip another writer has moved since); with either, none."""
    commits = _commits(repo, 4)
    go = tmp_path / "go"
    tests_dir = str(Path(__file__).parent)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, tests_dir, str(repo), str(go), str(n), *commits * 3],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    time.sleep(0.5)  # let every writer start up and wait for the signal
    go.touch()
    written: dict[str, str] = {}
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        written.update(line.split() for line in out.splitlines())  # type: ignore[misc]
    assert len(written) == 6 * 12
    ledger = Ledger(open_repo(repo))
    found = {run.id for c in commits for run in ledger.runs_on(c)}
    assert found == set(written), f"{len(set(written) - found)} of {len(written)} runs lost"
    kept = set(git(repo, "rev-list", "--objects", OBJECTS_REF).split())
    assert set(written.values()) <= kept, "objects of recorded runs are not kept"
    assert git(repo, "fsck", "--no-dangling") == ""


def test_objects_and_kept_commits_are_reachable_after_gc(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    ledger = Ledger(open_repo(repo))
    blob = ledger.store_object(b"prov = 1\nkind = 'data'\n")
    git(repo, "checkout", "-q", "-b", "side")
    doomed = commit_file(repo, "x.txt", "x", "will be dropped")
    ledger.write([(doomed, make_record(doomed))], objects={KIND_DATA: [blob]}, keep=[doomed])
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-D", "side")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "cat-file", "-t", doomed) == "commit"
    assert git(repo, "cat-file", "-t", blob) == "blob"
    assert Ledger(open_repo(repo)).is_kept(doomed)
    assert git(repo, "merge-base", "--is-ancestor", doomed, OBJECTS_REF, check=False) == ""
    assert head


def test_scan_reports_damage_and_keeps_the_rest(repo: Path) -> None:
    commits = _commits(repo, 2)
    ledger = Ledger(open_repo(repo))
    good = [make_record(c) for c in commits]
    ledger.write([(r.commit, r) for r in good])
    # Hand-edit one note: append garbage, as a person with `git notes edit` might.
    old = git(repo, "notes", "--ref=prov", "show", commits[0])
    git(repo, "notes", "--ref=prov", "add", "-f", "-m", old + "\nthis is not a record", commits[0])
    scan = Ledger(open_repo(repo)).scan()
    assert set(scan.runs) == {r.id for r in good}
    assert len(scan.problems) == 1 and scan.problems[0].commit == commits[0]


def test_same_id_with_different_content_is_a_conflict_both_kept(repo: Path) -> None:
    c = git(repo, "rev-parse", "HEAD")
    a = make_record(c)
    b = make_record(c, id=a.id, exit_code=1, status="failed")
    Ledger(open_repo(repo)).write([(c, a), (c, b)])
    scan = Ledger(open_repo(repo)).scan()
    assert sorted(scan.conflicts[a.id], key=repr) == sorted([a, b], key=repr)


def test_git_cat_sort_uniq_merge_keeps_every_record(repo: Path, tmp_path: Path) -> None:
    c = git(repo, "rev-parse", "HEAD")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    a, b = make_record(c), make_record(c)
    Ledger(open_repo(repo)).write([(c, a)])
    Ledger(open_repo(clone)).write([(c, b)])
    git(repo, "fetch", "-q", str(clone), f"{NOTES_REF}:refs/notes/theirs")
    git(repo, "notes", "--ref=prov", "merge", "-q", "-s", "cat_sort_uniq", "refs/notes/theirs")
    assert {r.id for r in Ledger(open_repo(repo)).runs_on(c)} == {a.id, b.id}


def test_a_tree_of_unrelated_object_at_ledger_ref_is_a_clear_error(repo: Path) -> None:
    import pytest

    from git_prov.errors import CorruptLedger

    blob = git(repo, "hash-object", "-w", "--stdin", input="x")
    subprocess.run(["git", "update-ref", NOTES_REF, blob], cwd=repo, check=True)
    with pytest.raises(CorruptLedger, match="does not point at a commit"):
        Ledger(open_repo(repo)).scan()
    assert OBJECTS_REF

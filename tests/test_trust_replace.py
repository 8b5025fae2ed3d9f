"""A local ``refs/replace/*`` ref never changes what git-prov reads: every reader (``log``,
``find``, ``show``, ``fsck``, the query index) reads the objects the ledger's ids name, as
pygit2 (which knows no replace refs) does, and fsck's size checks are of what it reads
(docs/security.md, "Replace refs")."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import commit_file, git, prov
from factories import write_runs

NOTES = "refs/notes/prov"


def _ids(found: list[dict[str, object]]) -> set[str]:
    return {str(run["id"]) for run in found}


def _replace_note(repo: Path, fake: str) -> str:
    """Replace the note blob on HEAD by a blob of ``fake``; the real note's text."""
    real = git(repo, "notes", f"--ref={NOTES}", "list", "HEAD")
    text = git(repo, "cat-file", "blob", real) + "\n"
    other = git(repo, "hash-object", "-w", "--stdin", input=fake)
    git(repo, "replace", real, other)
    assert git(repo, "notes", f"--ref={NOTES}", "show", "HEAD") == fake.rstrip("\n")  # (git's view)
    return text


def test_a_replaced_note_is_read_as_itself(repo: Path) -> None:
    """The note on HEAD replaced by one whose runs ran evil.py with acc=0.11: log, find,
    show (the query index built after the replacement) report the real runs."""
    runs = write_runs(repo, 2)
    real = git(repo, "cat-file", "blob", git(repo, "notes", f"--ref={NOTES}", "list", "HEAD"))
    _replace_note(repo, real.replace("train.py", "evil.py").replace("0.93", "0.11") + "\n")
    logged = [r for c in json.loads(prov(repo, "log", "--json").stdout) for r in c["runs"]]
    assert _ids(logged) == {r.id for r in runs}
    assert {r["command"] for r in logged} == {"python train.py --lr 0.1"}
    found = json.loads(prov(repo, "find", "--where", "acc>0.9", "--json").stdout)
    assert _ids(found) == {r.id for r in runs}
    shown = json.loads(prov(repo, "show", runs[0].id, "--json").stdout)
    assert shown["command"] == "python train.py --lr 0.1" and shown["metrics"] == {"acc": 0.93}
    assert "evil" not in prov(repo, "log").stdout + prov(repo, "show", runs[1].id).stdout


def test_fsck_checks_the_note_it_reads(repo: Path) -> None:
    """The note replaced by one with a line over the reader limit (1 MiB): fsck's size
    checks and its reading are of the same, real, note — a consistent ledger."""
    write_runs(repo, 1)
    real = git(repo, "cat-file", "blob", git(repo, "notes", f"--ref={NOTES}", "list", "HEAD"))
    _replace_note(repo, real + "x" * (1 << 20) + "\n")
    checked = prov(repo, "fsck", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 lines, 1 runs" in checked.stderr and "ledger is consistent" in checked.stderr


def test_a_replaced_commit_is_read_as_itself(repo: Path) -> None:
    """HEAD replaced by a root commit with another subject (a graft cutting its history):
    log walks and shows the real commits, with their runs; find over a range too."""
    first = commit_file(repo, "a.txt", "a\n", "real first")
    older = write_runs(repo, 1, first)
    head = commit_file(repo, "b.txt", "b\n", "real second")
    newer = write_runs(repo, 1, head)
    fake = git(repo, "commit-tree", "-m", "fake subject", f"{head}^{{tree}}")
    git(repo, "replace", head, fake)
    assert git(repo, "log", "--format=%s") == "fake subject"  # (git's view)
    logged = json.loads(prov(repo, "log", "--json").stdout)
    assert [(c["commit"], c["subject"]) for c in logged] == [
        (head, "real second"),
        (first, "real first"),
    ]
    assert _ids([r for c in logged for r in c["runs"]]) == {older[0].id, newer[0].id}
    found = json.loads(prov(repo, "find", f"{first}~1..main", "--json").stdout)
    assert _ids(found) == {older[0].id, newer[0].id}
    assert "fake subject" not in prov(repo, "log").stdout

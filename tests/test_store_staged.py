"""Writes that change many notes (git_prov.store.staged): built a part at a time, each part
held by a private ref, and still one compare-and-swap of the notes ref — the same tree and
the same one commit an unstaged write makes, nothing lost to a concurrent writer or prune,
nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest
from conftest import commit_file, git
from factories import make_record

from git_prov.model.record import Entry, Tombstone, encode_entry
from git_prov.store import ledger as ledger_module
from git_prov.store import notes
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo
from git_prov.store.staged import STAGING_PREFIX, staging_ref


def _ledger(repo: Path, n: int = 7) -> tuple[Ledger, list[str]]:
    commits = [commit_file(repo, f"f{i}.txt", str(i)) for i in range(n)]
    ledger = Ledger(open_repo(repo))
    ledger.write([(c, make_record(c)) for c in commits])
    return ledger, commits


def _stones(commits: list[str]) -> list[tuple[str, Entry]]:
    out: list[tuple[str, Entry]] = []
    for i, c in enumerate(commits):
        run = f"20260101T00000{i}.000Z-0000000{i}"
        stone = Tombstone(run=run, at="2026-12-01T00:00:00.000Z", reason="gc: test")
        out.extend([(c, stone), (commits[0], stone)])  # (a run shown on two commits)
    return out


def _staging_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", STAGING_PREFIX).split()


def test_a_staged_write_makes_the_tree_and_commit_an_unstaged_one_makes(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, commits = _ledger(repo)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(repo, "push", "-q", str(other), f"{NOTES_REF}:{NOTES_REF}")
    unstaged = Ledger(open_repo(other))
    unstaged.write(_stones(commits), message="git-prov: gc removes 7 runs")
    monkeypatch.setattr(ledger_module, "STAGE_NOTES", 2)  # 7 notes: 4 parts
    before = git(repo, "rev-parse", NOTES_REF)
    ledger.write(_stones(commits), message="git-prov: gc removes 7 runs")
    tree = git(repo, "rev-parse", f"{NOTES_REF}^{{tree}}")
    assert tree == git(other, "rev-parse", f"{NOTES_REF}^{{tree}}")
    # One commit on the tip it was built from, as an unstaged write makes.
    assert git(repo, "rev-list", "--parents", "-1", NOTES_REF).split()[1:] == [before]
    assert git(repo, "log", "-1", "--format=%s", NOTES_REF) == "git-prov: gc removes 7 runs"
    assert _staging_refs(repo) == []
    git(repo, "fsck", "--no-dangling")


def _interrupting(
    monkeypatch: pytest.MonkeyPatch, at_call: int, action: Callable[[], None]
) -> list[int]:
    """Run ``action`` before the ``at_call``-th part is merged (counting from 1)."""
    calls = [0]
    real = notes.append_lines

    def append_lines(repo: pygit2.Repository, tree: object, additions: object) -> pygit2.Oid:
        calls[0] += 1
        if calls[0] == at_call:
            action()
        return real(repo, tree, additions)  # type: ignore[arg-type]

    monkeypatch.setattr(notes, "append_lines", append_lines)
    monkeypatch.setattr(ledger_module, "STAGE_NOTES", 2)
    return calls


def test_a_writer_moving_the_notes_ref_mid_write_loses_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, commits = _ledger(repo)
    theirs = make_record(commits[3])

    def plain_git_writes() -> None:  # a writer that does not take the ledger lock
        git(repo, "notes", "--ref=prov", "append", "-m", encode_entry(theirs), commits[3])

    calls = _interrupting(monkeypatch, 2, plain_git_writes)
    ledger.write(_stones(commits))
    assert calls[0] > 4  # (the tree was built again on the new tip)
    for c in commits:
        assert "tombstone" in git(repo, "notes", "--ref=prov", "show", c)
    first = git(repo, "notes", "--ref=prov", "show", commits[0])
    assert all(f"20260101T00000{i}.000Z" in first for i in range(7))
    assert theirs.id in git(repo, "notes", "--ref=prov", "show", commits[3])
    assert _staging_refs(repo) == []


def test_a_prune_between_parts_deletes_nothing_the_write_needs(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, commits = _ledger(repo)

    def prune() -> None:
        git(repo, "gc", "-q", "--prune=now")

    _interrupting(monkeypatch, 3, prune)  # after two parts were staged
    ledger.write(_stones(commits))
    git(repo, "fsck", "--no-dangling")
    for c in commits:
        assert "tombstone" in git(repo, "notes", "--ref=prov", "show", c)
    assert _staging_refs(repo) == []


def test_a_write_failing_mid_way_leaves_the_notes_ref_and_no_private_ref(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, commits = _ledger(repo)
    before = git(repo, "rev-parse", NOTES_REF)

    def fail() -> None:
        assert len(_staging_refs(repo)) == 1  # (the first part is held)
        raise RuntimeError("killed")

    _interrupting(monkeypatch, 3, fail)
    with pytest.raises(RuntimeError):
        ledger.write(_stones(commits))
    assert git(repo, "rev-parse", NOTES_REF) == before
    assert _staging_refs(repo) == []


def test_a_private_ref_left_by_a_dead_writer_is_deleted_and_a_live_ones_kept(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, commits = _ledger(repo)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    head = git(repo, "rev-parse", "HEAD")
    dead, elsewhere = staging_ref(int(gone)), staging_ref(int(gone), "another-host")
    for name in (dead, elsewhere):
        git(repo, "update-ref", name, head)
    monkeypatch.setattr(ledger_module, "STAGE_NOTES", 2)
    ledger.write(_stones(commits))
    assert _staging_refs(repo) == [elsewhere]  # (another host's writer may be alive)


def test_the_display_refreshed_in_parts_is_the_one_refreshed_at_once(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "config", "--add", "notes.displayRef", ledger_module.DISPLAY_REF)
    ledger, commits = _ledger(repo)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(repo, "push", "-q", str(other), f"{NOTES_REF}:{NOTES_REF}")
    git(other, "config", "--add", "notes.displayRef", ledger_module.DISPLAY_REF)
    Ledger(open_repo(other)).refresh_display()
    monkeypatch.setattr(ledger_module, "_DISPLAY_PART", 2)
    git(repo, "update-ref", "-d", ledger_module.DISPLAY_REF)
    ledger.refresh_display()
    tree = git(repo, "rev-parse", f"{ledger_module.DISPLAY_REF}^{{tree}}")
    assert tree == git(other, "rev-parse", f"{ledger_module.DISPLAY_REF}^{{tree}}")
    assert git(repo, "rev-list", "--count", ledger_module.DISPLAY_REF) == "1"
    assert len(git(repo, "log", "-1", "--format=%N", commits[4]).strip().splitlines()) == 1
    assert _staging_refs(repo) == []


@pytest.mark.parametrize("pid", ["99999999999999999999", "\u00b2"])
def test_a_private_ref_whose_pid_no_process_can_have_is_no_traceback(
    repo: Path, monkeypatch: pytest.MonkeyPatch, pid: str
) -> None:
    """A ref under refs/prov-staging/ made by hand, with a "pid" past any process id's
    range or of digits that are not ASCII, is not this host's writer's: the write goes on
    (a traceback of int() or os.kill before, which stopped every staged write, and gc)."""
    ledger, commits = _ledger(repo)
    odd = f"{STAGING_PREFIX}{pid}-{staging_ref(0).rpartition('0-')[2]}"
    git(repo, "update-ref", odd, git(repo, "rev-parse", "HEAD"))
    monkeypatch.setattr(ledger_module, "STAGE_NOTES", 2)
    ledger.write(_stones(commits))
    for c in commits:
        assert "tombstone" in git(repo, "notes", "--ref=prov", "show", c)


@pytest.mark.parametrize("pid", ["99999999999999999999", "\u00b2"])
def test_a_gc_pid_file_naming_no_possible_process_is_no_traceback(repo: Path, pid: str) -> None:
    """Every write looks at git's gc.pid (a gc running may prune what the write just
    made): a pid there past any process id's range, or of digits that are not ASCII, is
    no gc of this host running, not a traceback of int() or os.kill."""
    import socket

    ledger, commits = _ledger(repo, 2)
    (repo / ".git" / "gc.pid").write_text(f"{pid} {socket.gethostname()}")
    before = git(repo, "rev-parse", NOTES_REF)
    record = make_record(commits[0], started="2026-02-01T00:00:00.000Z")
    ledger.write([(commits[0], record)])
    # One commit, the record once: the swap is not taken for a lost race and made again.
    assert git(repo, "rev-list", "--count", f"{before}..{NOTES_REF}") == "1"
    assert git(repo, "notes", "--ref=prov", "show", commits[0]).count(record.id) == 1

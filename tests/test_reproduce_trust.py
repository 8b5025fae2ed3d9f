"""`git prov reproduce` asks before running someone else's recorded command (issue 16.3),
and its dry run names what would block the rerun — consent, and a source git would refuse
to check out."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, prov

PY = sys.executable


def _record_marker_run(repo: Path, marker: Path) -> str:
    """Record a run whose command creates ``marker``; remove the marker afterwards."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    prov(repo, "run", "--", PY, "-c", code)
    marker.unlink()
    runs = json.loads(prov(repo, "find", "--json").stdout)
    return str(max(runs, key=lambda r: r["id"])["id"])


def _forget_authorship(repo: Path) -> None:
    """Make this repository's runs look like anyone else's: the record's user and host
    still say they are ours, which must not be enough."""
    (repo / ".git" / "prov" / "authored").unlink()


@pytest.fixture
def foreign(tmp_path: Path, repo: Path) -> tuple[Path, str, Path]:
    """A run recorded in another clone, pushed, and fetched into ``repo``."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    marker = tmp_path / "marker"
    run_id = _record_marker_run(other, marker)
    prov(other, "push", "origin")
    prov(repo, "fetch", "origin")
    return repo, run_id, marker


def test_own_run_reproduces_without_asking(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run_id = _record_marker_run(repo, marker)
    proc = prov(repo, "reproduce", "--json", run_id, check=False)
    doc = json.loads(proc.stdout)
    assert doc["trust"]["consent"] == "own" and doc["trust"]["trusted"], proc.stderr
    assert marker.exists()


def test_fetched_run_is_refused_without_a_terminal_then_runs_with_yes(
    foreign: tuple[Path, str, Path],
) -> None:
    repo, run_id, marker = foreign
    refs = git(repo, "for-each-ref")
    proc = prov(repo, "reproduce", run_id, check=False)
    assert proc.returncode == 10, proc.stderr
    assert proc.stderr.startswith("error: run ") and "--yes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not marker.exists()  # nothing ran
    assert git(repo, "for-each-ref") == refs  # nothing recorded
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # nothing checked out

    proc = prov(repo, "reproduce", "--json", "--yes", run_id, check=False)
    assert proc.returncode in (0, 1), proc.stderr  # (a run with nothing to compare differs)
    doc = json.loads(proc.stdout)
    assert doc["trust"]["consent"] == "yes" and doc["rerun"] is not None
    assert marker.exists()


def test_config_trusts_every_record(foreign: tuple[Path, str, Path]) -> None:
    repo, run_id, marker = foreign
    git(repo, "config", "prov.reproduceTrust", "all")
    proc = prov(repo, "reproduce", "--json", run_id, check=False)
    assert json.loads(proc.stdout)["trust"]["consent"] == "config", proc.stderr
    assert marker.exists()
    git(repo, "config", "prov.reproduceTrust", "maybe")
    proc = prov(repo, "reproduce", run_id, check=False)
    assert proc.returncode == 2 and "prov.reproduceTrust" in proc.stderr


def test_user_and_host_of_a_record_are_not_enough(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run_id = _record_marker_run(repo, marker)
    _forget_authorship(repo)  # the record still names our user and host
    proc = prov(repo, "reproduce", run_id, check=False)
    assert proc.returncode == 10, proc.stderr
    assert not marker.exists()


def test_dry_run_names_the_missing_consent(foreign: tuple[Path, str, Path]) -> None:
    repo, run_id, marker = foreign
    proc = prov(repo, "reproduce", "--dry-run", "--json", run_id, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["verdict"] == "blocked"
    assert doc["trust"] == {
        "trusted": False,
        "consent": "refused",
        "reason": doc["trust"]["reason"],
        "claimed_by": doc["trust"]["claimed_by"],
    }
    assert any("not yours" in b for b in doc["blockers"])
    proc = prov(repo, "reproduce", "--dry-run", "--yes", "--json", run_id, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["verdict"] == "ready"
    assert not marker.exists()


def _on_pty(repo: Path, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run ``git prov ARGS`` with a pseudo-terminal as stdin, stdout and stderr; answer
    the question with ``answer`` once it is asked. Returns (exit status, all output)."""
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [PY, "-m", "git_prov", *args],
        cwd=repo,
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    seen = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            if not ready:
                raise AssertionError(f"no output for 120 s; so far: {seen!r}")
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"Run it?" in seen:
                os.write(main, answer)
                answered = True
    finally:
        os.close(main)
        status = proc.wait(timeout=120)
    return status, seen.decode("utf-8", "replace")


def test_terminal_prompt_shows_the_command_and_respects_the_answer(
    foreign: tuple[Path, str, Path],
) -> None:
    repo, run_id, marker = foreign
    status, out = _on_pty(repo, ["reproduce", run_id], b"n\n")
    assert "Run it?" in out and str(marker) in out  # the command is shown
    assert "not known to be yours" in out
    assert status == 10 and "you declined" in out
    assert not marker.exists()
    status, out = _on_pty(repo, ["reproduce", run_id], b"y\n")
    assert "Run it?" in out
    assert status in (0, 1), out
    assert marker.exists()


def test_dry_run_reports_a_snapshot_git_cannot_check_out(repo: Path, tmp_path: Path) -> None:
    from git_prov.model.record import with_fields
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    marker = tmp_path / "marker"
    run_id = _record_marker_run(repo, marker)
    # A hostile snapshot: its tree holds .git/config, which git refuses to check out.
    blob = git(repo, "hash-object", "-w", "--stdin", input="[core]\n")
    sub = git(repo, "mktree", input=f"100644 blob {blob}\tconfig\n")
    readme = git(repo, "rev-parse", "HEAD:README.md")
    tree = git(repo, "mktree", input=f"100644 blob {readme}\tREADME.md\n040000 tree {sub}\t.git\n")
    snapshot = git(repo, "commit-tree", tree, "-p", "HEAD", "-m", "snapshot")
    ledger = Ledger(open_repo(repo))
    original = ledger.resolve_run(run_id).record
    from git_prov.model.ids import new_run_id

    record = with_fields(original, id=new_run_id(), snapshot=snapshot)
    ledger.write([(record.commit, record)], keep=[snapshot])

    proc = prov(repo, "reproduce", "--dry-run", "--json", record.id, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["verdict"] == "blocked", proc.stderr
    assert any("cannot be checked out" in b and ".git/config" in b for b in doc["blockers"])
    # The real run refuses with the same reason, before checking anything out.
    proc = prov(repo, "reproduce", record.id, check=False)
    assert proc.returncode == 5 and "cannot be checked out" in proc.stderr
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert not marker.exists()

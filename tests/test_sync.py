"""Sharing provenance over real remotes: a bare repository over file paths and served by
``git daemon`` over git://, many clones, concurrent syncs, hostile remotes, shallow clones,
plain ``git fetch``/``git push`` after ``configure_remote``, the pre-push hook, the common
path that loads no pygit2, and what follows a merge (the ``git log`` display, remap)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from factories import write_runs

from git_prov import sync
from git_prov.errors import EXIT_REMOTE, RemoteProblem
from git_prov.hooks_install import hook_template, install_hook, render_hook
from git_prov.model.record import RunRecord
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo

REPO_ROOT = Path(__file__).resolve().parents[1]


# ---- helpers ---------------------------------------------------------------------------------


def _bare(path: Path) -> Path:
    git(path.parent, "init", "-q", "--bare", path.name)
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote holding one commit on main, and no provenance."""
    served = tmp_path / "served"
    served.mkdir()
    bare = _bare(served / "project.git")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q")
    commit_file(seed, "README.md", "# project\n", "initial commit")
    git(seed, "push", "-q", str(bare), "main")
    return bare


def _clone(url: str | Path, dest: Path, *args: str) -> Path:
    git(dest.parent, "clone", "-q", *args, str(url), str(dest))
    return dest


def _tree(path: Path, ref: str) -> str:
    return git(path, "rev-parse", "--verify", "-q", f"{ref}^{{tree}}", check=False)


def _state(path: Path) -> tuple[str, str]:
    return _tree(path, NOTES_REF), _tree(path, OBJECTS_REF)


def _run_ids(path: Path) -> set[str]:
    return set(Ledger(open_repo(path)).scan().runs)


def _cli(
    path: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return prov(path, *args, check=False, input=input, env=env)


def _log(path: Path, *revisions: str) -> list[dict[str, object]]:
    """``git prov log --json``, without the branch decorations that differ per clone."""
    done = _cli(path, "log", "--json", *revisions)
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, object]] = json.loads(done.stdout)
    for entry in entries:
        entry.pop("refs", None)
    return entries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon(remote: Path) -> Iterator[str]:
    """``git daemon`` serving the remote's directory; yields the remote's git:// URL."""
    if (
        subprocess.run(["git", "daemon", "--help"], capture_output=True, check=False).returncode
        not in (0, 129)
        and not (Path(git(remote, "--exec-path")) / "git-daemon").exists()
    ):
        pytest.skip("git daemon is not installed")
    base = remote.parent
    log = base / "daemon.log"
    for _ in range(5):
        # A free port can be taken again before git daemon binds it (tests run in parallel
        # workers): only our daemon saying it listens counts, and a taken port is retried.
        port = _free_port()
        log.write_bytes(b"")
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--verbose",
                    "--enable=receive-pack",
                    "--export-all",
                    "--informative-errors",
                    f"--base-path={base}",
                    "--reuseaddr",
                    "--listen=127.0.0.1",
                    f"--port={port}",
                    str(base),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 10
        while b"Ready to rumble" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        pytest.fail(f"git daemon did not start: {log.read_text(errors='replace')[-500:]}")
    try:
        if b"Ready to rumble" not in log.read_bytes():
            pytest.fail("git daemon did not start")
        yield f"git://127.0.0.1:{port}/{remote.name}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- fetch, push, sync -----------------------------------------------------------------------


def test_first_push_to_a_remote_without_provenance(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    records = write_runs(a, 3)
    fetched = sync.fetch(open_repo(a))
    assert (fetched.had_provenance, fetched.runs_added, fetched.runs_total) == (False, 0, 3)
    pushed = sync.push(open_repo(a))
    assert (pushed.had_provenance, pushed.runs_pushed, pushed.attempts) == (False, 3, 1)
    assert _state(remote) == _state(a)
    assert git(remote, "notes", "--ref=prov", "show", records[0].commit).count("\n") == 2
    again = sync.push(open_repo(a))
    assert again.up_to_date and again.runs_pushed == 0 and again.had_provenance
    # The tracking copies now say what the remote holds; nothing else was written.
    assert git(a, "rev-parse", "refs/notes/remotes/origin/prov") == git(a, "rev-parse", NOTES_REF)
    assert git(a, "config", "--get", "remote.origin.push", check=False) == ""


def test_plain_clone_then_git_prov_fetch_shows_all_runs(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    first = write_runs(a, 2)
    second = write_runs(a, 1, commit_file(a, "train.py", "print(1)\n"))
    git(a, "push", "-q", "origin", "main")
    assert _cli(a, "push").returncode == 0
    b = _clone(remote, tmp_path / "b")
    assert git(b, "for-each-ref", "refs/notes", "refs/prov") == ""  # clones skip them
    done = _cli(b, "fetch")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fetched 3 new runs from origin (3 in all)"
    assert _run_ids(b) == {r.id for r in first + second}
    log_a, log_b = _log(a), _log(b)
    assert log_a == log_b and sum(len(e["runs"]) for e in log_b) == 3  # type: ignore[arg-type]
    assert _cli(b, "fetch").stdout.strip() == "already up to date with origin (3 runs)"


def test_two_clones_on_the_same_and_different_commits_converge(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    ra = write_runs(a, 2)
    rb = write_runs(b, 2)  # the same commit as a's
    rb += write_runs(b, 1, commit_file(b, "b.txt", "b"))  # and one only b has
    git(b, "push", "-q", "origin", "main")
    ra += write_runs(a, 1, commit_file(a, "a.txt", "a"))
    first = sync.sync(open_repo(a))
    second = sync.sync(open_repo(b))
    third = sync.sync(open_repo(a))
    assert (first.runs_pushed, second.runs_fetched, second.runs_pushed) == (3, 3, 3)
    assert third.runs_fetched == 3 and third.runs_total == 6
    assert _state(a) == _state(b) == _state(remote)
    assert _run_ids(a) == {r.id for r in ra + rb}
    # Every run's commit travelled with the objects ref, even one no branch here holds.
    for r in rb:
        assert git(a, "cat-file", "-t", r.commit) == "commit"
    tips = (git(a, "rev-parse", "HEAD"), git(b, "rev-parse", "HEAD"))
    log_a, log_b = (_log(path, *tips) for path in (a, b))
    assert log_a == log_b and sum(len(entry["runs"]) for entry in log_a) == 6


def test_eight_clones_syncing_concurrently_over_git_daemon(
    daemon: str, remote: Path, tmp_path: Path
) -> None:
    clones = [_clone(daemon, tmp_path / f"c{i}") for i in range(8)]
    expected: set[str] = set()
    for i, clone in enumerate(clones):
        expected |= {r.id for r in write_runs(clone, 2)}
        if i % 3 == 0:  # some runs on commits only that clone has
            expected |= {r.id for r in write_runs(clone, 1, commit_file(clone, f"{i}", "x"))}
    order = list(clones)
    random.Random(11).shuffle(order)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "git_prov", "sync", "--json"],
            cwd=c,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in order
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out)["attempts"] >= 1
    for clone in clones:  # one more round: everyone picks up what landed after them
        done = _cli(clone, "sync")
        assert done.returncode == 0, done.stderr
    states = {_state(c) for c in clones}
    assert states == {_state(remote)}
    assert _run_ids(clones[0]) == expected
    assert _run_ids(clones[-1]) == expected


def test_a_declining_pre_receive_hook_is_a_clear_error_after_bounded_retries(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'provenance is not welcome here' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 1)
    monkeypatch.setattr(sync.time, "sleep", lambda _: None)
    with pytest.raises(RemoteProblem, match="hook declined") as caught:
        sync.push(open_repo(a), attempts=50)
    assert caught.value.exit_code == EXIT_REMOTE
    done = _cli(a, "sync", "--attempts", "50")
    assert done.returncode == EXIT_REMOTE
    assert done.stderr.startswith("error: origin refused the provenance refs")


def test_retries_are_bounded_when_the_rejection_is_a_race(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    write_runs(a, 1)
    monkeypatch.setattr(sync.time, "sleep", lambda _: None)
    original = sync._push_once
    beat_us = {"left": 1}

    def someone_pushes_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if args[0].workdir == a.resolve() and beat_us["left"]:
            beat_us["left"] -= 1
            write_runs(b, 1)  # another clone pushes just before us
            sync.push(open_repo(b))
        return original(*args, **kwargs)

    monkeypatch.setattr(sync, "_push_once", someone_pushes_first)
    result = sync.push(open_repo(a), attempts=3)
    assert (result.attempts, result.runs_fetched, result.runs_pushed) == (2, 1, 1)
    assert _state(a) == _state(remote)
    beat_us["left"] = 99  # now someone always wins: we give up after the bound
    write_runs(a, 1)
    with pytest.raises(RemoteProblem, match=r"3 attempts in .* s were all rejected") as caught:
        sync.push(open_repo(a), attempts=3)
    assert beat_us["left"] == 96
    assert "the --attempts 3 bound; others kept pushing to it first" in str(caught.value)
    # Without --attempts, the time bound stops it, and says so.
    with pytest.raises(RemoteProblem) as caught:
        sync.push(open_repo(a), timeout=0.5)
    said = str(caught.value)
    assert "(fetch first) at the 0.5 s bound; others kept pushing to it first" in said
    assert "--timeout SECONDS" in said and "prov.syncTimeout" in said
    assert said.startswith(f"could not push provenance to origin: {96 - beat_us['left']} attempts")


def test_a_missing_remote_exits_8(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 1)
    done = _cli(a, "sync", "nosuch")
    assert done.returncode == EXIT_REMOTE
    assert done.stderr.startswith("error: no remote named 'nosuch'")
    git(a, "remote", "add", "gone", str(tmp_path / "does-not-exist.git"))
    for command in ("fetch", "push", "sync"):
        done = _cli(a, command, "gone")
        assert done.returncode == EXIT_REMOTE, done.stderr
        assert "error: gone is not a git repository" in done.stderr
        assert done.stdout == ""
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    git(lonely, "init", "-q")
    commit_file(lonely, "x", "x")
    done = _cli(lonely, "sync")
    assert done.returncode == EXIT_REMOTE and "git remote add origin URL" in done.stderr


def test_default_remote_is_the_upstream_then_origin_then_the_only_one(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    repo = open_repo(a)
    assert sync.resolve_remote(repo) == "origin"
    git(a, "remote", "rename", "origin", "upstream")
    assert sync.resolve_remote(open_repo(a)) == "upstream"  # the branch's upstream
    git(a, "remote", "add", "mirror", str(remote))
    git(a, "branch", "--unset-upstream")
    with pytest.raises(RemoteProblem, match="several remotes"):
        sync.resolve_remote(open_repo(a))
    git(a, "remote", "remove", "mirror")
    assert sync.resolve_remote(open_repo(a)) == "upstream"  # the only one


def test_a_force_rewritten_remote_is_warned_about_and_local_runs_are_kept(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    mine = write_runs(a, 2)
    sync.sync(open_repo(a))
    sync.fetch(open_repo(b))
    # Someone replaces the remote's ledger with an unrelated history.
    c = _clone(remote, tmp_path / "c")
    theirs = write_runs(c, 1)
    git(c, "push", "-q", "-f", "origin", f"{NOTES_REF}:{NOTES_REF}", f"{OBJECTS_REF}:{OBJECTS_REF}")
    later = write_runs(b, 1)
    done = _cli(b, "fetch")
    assert done.returncode == 0, done.stderr
    assert "warning: origin rewrote its refs/notes/prov" in done.stderr
    assert "no local run was dropped" in done.stderr
    assert _run_ids(b) == {r.id for r in mine + theirs + later}
    result = sync.sync(open_repo(b))
    assert result.runs_pushed == 3  # the remote gets the runs it lost back
    assert _state(b) == _state(remote)


def test_a_remote_that_lost_its_ledger_refs(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 2)
    sync.sync(open_repo(a))
    git(remote, "update-ref", "-d", NOTES_REF)
    fetched = sync.fetch(open_repo(a))
    assert fetched.had_provenance  # the objects ref is still there
    assert (
        git(a, "rev-parse", "-q", "--verify", "refs/notes/remotes/origin/prov", check=False) == ""
    )
    assert fetched.runs_total == 2
    assert sync.push(open_repo(a)).runs_pushed == 2


# ---- shallow clones --------------------------------------------------------------------------


def test_a_shallow_clone_records_and_syncs(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    for i in range(3):
        write_runs(a, 1, commit_file(a, f"f{i}", str(i)))
    git(a, "push", "-q", "origin", "main")
    sync.sync(open_repo(a))
    shallow = _clone(f"file://{remote}", tmp_path / "shallow", "--depth", "1")
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"
    mine = write_runs(shallow, 1)
    result = sync.sync(open_repo(shallow))
    assert result.runs_fetched == 3 and result.runs_pushed == 1
    assert _state(shallow) == _state(remote)
    assert len(_run_ids(shallow)) == 4 and mine[0].id in _run_ids(shallow)
    # Pushing to a remote that lacks the history the runs name: git refuses; say why.
    other = _bare(tmp_path / "other.git")
    git(shallow, "commit", "-q", "--allow-empty", "-m", "local work")
    write_runs(shallow, 1)
    git(shallow, "remote", "add", "other", str(other))
    with pytest.raises(RemoteProblem) as caught:
        sync.push(open_repo(shallow), "other")
    assert "shallow" in caught.value.message
    assert caught.value.hint is not None and "git fetch --unshallow" in caught.value.hint


# ---- plain git: configure_remote and the pre-push hook ----------------------------------------


def test_configure_remote_makes_plain_git_fetch_fill_the_tracking_refs(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    lines = sync.configure_remote(open_repo(b), "origin")
    assert "now also fetches provenance" in lines[0]
    assert "already" in sync.configure_remote(open_repo(b), "origin")[0]
    specs = git(b, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert specs == ["+refs/heads/*:refs/remotes/origin/*", *sync.fetch_refspecs("origin")]
    git(b, "fetch", "-q")  # the remote has no provenance yet: plain fetch still works
    runs = write_runs(a, 2)
    sync.push(open_repo(a))
    git(b, "fetch", "-q")
    assert git(b, "rev-parse", "refs/notes/remotes/origin/prov") == git(a, "rev-parse", NOTES_REF)
    assert git(b, "rev-parse", "-q", "--verify", NOTES_REF, check=False) == ""
    assert sync.merge_tracking(open_repo(b), "origin")[0] == 2
    assert sync.merge_tracking(open_repo(b), "origin") == (0, (), ())
    assert _run_ids(b) == {r.id for r in runs}
    # remote.origin.push stays unset; a plain git push still pushes just the branch.
    assert git(b, "config", "--get", "remote.origin.push", check=False) == ""
    mine = write_runs(b, 1)
    commit_file(b, "x", "x")
    out = subprocess.run(
        ["git", "push", "--porcelain", "origin"], cwd=b, capture_output=True, text=True, check=True
    ).stdout
    assert "refs/heads/main:refs/heads/main" in out and "refs/notes" not in out
    assert mine[0].id not in git(remote, "notes", "--ref=prov", "list")


def test_hook_script_matches_the_shipped_one() -> None:
    shipped = REPO_ROOT / "hooks" / "pre-push"
    assert shipped.read_text() == hook_template("pre-push")
    assert shipped.stat().st_mode & stat.S_IXUSR
    assert "GIT_PROV_PYTHON=''" in shipped.read_text()


def test_pre_push_hook_makes_plain_git_push_carry_provenance(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    lines = sync.configure_remote(open_repo(a), "origin", push_hook=True)
    assert any("now also pushes provenance" in line for line in lines)
    hook = a / ".git" / "hooks" / "pre-push"
    assert hook.read_text() == render_hook("pre-push")  # this interpreter, not PATH
    runs = write_runs(a, 2, commit_file(a, "x", "x"))
    git(a, "push", "-q", "origin", "main")
    assert _state(remote) == _state(a)
    assert {r.id for r in runs} <= _run_ids(remote)
    assert git(remote, "rev-parse", "main") == git(a, "rev-parse", "main")
    # Installing again changes nothing.
    again = sync.configure_remote(open_repo(a), "origin", push_hook=True)
    assert any("pre-push hook: already installed" in line for line in again)
    assert not any("now also pushes" in line for line in again)
    assert not (a / ".git" / "hooks" / "pre-push.legacy").exists()


def test_pre_push_hook_chains_an_existing_hook_which_can_still_block(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    log = tmp_path / "legacy.log"
    hooks = a / ".git" / "hooks"
    (hooks / "pre-push").write_text(
        "#!/bin/sh\n"
        f'echo "args: $*" >> {log}\n'
        f"cat >> {log}\n"
        "[ -e block ] && { echo 'blocked by legacy' >&2; exit 3; }\n"
        "exit 0\n"
    )
    (hooks / "pre-push").chmod(0o755)
    lines = install_hook(open_repo(a), "pre-push")
    assert any(
        "kept your pre-push hook as pre-push.legacy; it still runs first" in ln for ln in lines
    )
    assert (hooks / "pre-push.legacy").exists()
    write_runs(a, 1, commit_file(a, "x", "x"))
    head = git(a, "rev-parse", "HEAD")
    git(a, "push", "-q", "origin", "main")
    text = log.read_text()
    assert text.count("args: ") == 1  # once: our own provenance push runs no hooks
    assert f"args: origin {remote}" in text
    assert f"refs/heads/main {head} refs/heads/main" in text
    assert _state(remote) == _state(a)
    # The legacy hook can still block a push, and then no provenance goes either.
    (a / "block").write_text("")
    write_runs(a, 1, commit_file(a, "y", "y"))
    blocked = subprocess.run(
        ["git", "push", "origin", "main"], cwd=a, capture_output=True, text=True, check=False
    )
    assert blocked.returncode != 0 and "blocked by legacy" in blocked.stderr
    assert git(remote, "rev-parse", "main") == head
    assert _state(remote) != _state(a)


def test_pre_push_hook_never_blocks_and_does_not_recurse(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    install_hook(open_repo(a), "pre-push")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do\n"
        "  case $ref in refs/notes/*|refs/prov/*) exit 1;; esac\ndone\n"
    )
    hook.chmod(0o755)
    write_runs(a, 1, commit_file(a, "x", "x"))
    done = subprocess.run(
        ["git", "push", "origin", "main"], cwd=a, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "warning: provenance was not pushed to origin" in done.stderr
    assert git(remote, "rev-parse", "main") == git(a, "rev-parse", "main")
    # Under the guard (our own git push), the hook does nothing.
    guarded = sync.hook_pre_push(
        open_repo(a), "origin", str(remote), ["refs/heads/main 1 refs/heads/main 2"]
    )
    assert guarded.pushed is None and guarded.skipped is None
    os.environ[sync.HOOK_GUARD_ENV] = "1"
    try:
        skipped = sync.hook_pre_push(open_repo(a), "origin", str(remote), ["a b c d"])
    finally:
        del os.environ[sync.HOOK_GUARD_ENV]
    assert skipped.skipped == "inside a git-prov push"


def test_hook_honours_core_hooks_path(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    shared = tmp_path / "shared-hooks"
    git(a, "config", "core.hooksPath", str(shared))
    lines = install_hook(open_repo(a), "pre-push")
    assert (shared / "pre-push").read_text() == render_hook("pre-push")
    assert lines[-1].startswith("hint: core.hooksPath is set")
    assert not (a / ".git" / "hooks" / "pre-push").exists()


# ---- end to end through the CLI --------------------------------------------------------------


def test_end_to_end_record_sync_and_log_through_the_cli(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    ran = _cli(a, "run", "-q", "--", "true")
    if ran.returncode != 0:  # capture modules still being written: record instead
        ran = _cli(a, "record", "--command", "python train.py", "--duration", "2")
    assert ran.returncode == 0, ran.stderr
    assert _cli(b, "record", "--command", "make eval", "--exit-code", "1").returncode == 0
    first = _cli(a, "sync", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["runs_pushed"] == 1
    second = _cli(b, "sync")
    assert second.stdout.strip() == "synced with origin: 1 run fetched, 1 run pushed (2 in all)"
    third = _cli(a, "sync")
    assert third.stdout.strip() == "synced with origin: 1 run fetched, 0 runs pushed (2 in all)"
    assert _cli(a, "push").stdout.strip() == "origin already has all 2 runs"
    assert _state(a) == _state(b) == _state(remote)
    log_a, log_b = _log(a), _log(b)
    assert log_a == log_b and len(log_a[0]["runs"]) == 2  # type: ignore[arg-type]
    shutil.rmtree(b)


def test_sync_with_a_new_run_costs_one_push_and_no_fetch(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 2)
    sync.sync(open_repo(a))
    write_runs(a, 1)
    fetches = []
    original = sync._fetch_tracking

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        fetches.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(sync, "_fetch_tracking", counting)
    result = sync.sync(open_repo(a))
    assert (result.runs_pushed, result.attempts, result.runs_total, fetches) == (1, 1, 3, [])
    # Nothing new here: fetch, and no push at all.
    result = sync.sync(open_repo(a))
    assert (result.runs_pushed, result.attempts, fetches) == (0, 0, [1])
    assert _state(a) == _state(remote)


def test_init_remote_and_push_hook_from_the_cli(tmp_path: Path) -> None:
    from conftest import prov

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    commit_file(work, "a.txt", "a")
    out = prov(work, "init", "--remote", "origin", "--push-hook").stdout
    assert "pre-push" in out
    fetch_specs = git(work, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert any("refs/notes/remotes/origin/prov" in s for s in fetch_specs)
    assert git(work, "config", "--get", "remote.origin.push", check=False) == ""
    prov(work, "record", "--command", "train")
    git(work, "push", "-q", "origin", "HEAD:main")
    assert git(remote, "for-each-ref", "--format=%(refname)", "refs/notes/prov") == (
        "refs/notes/prov"
    )


# ---- the common path loads no pygit2 (nor click: see test_cli_fastpath.py) ----------------------


def _cli_imports(path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with ``-X importtime``; returns the process and the modules it loaded."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "git_prov", *args],
        cwd=path,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    done.stderr = "\n".join(ln for ln in done.stderr.splitlines() if "import time:" not in ln)
    return done, modules


def test_push_sync_and_fetch_without_a_merge_load_no_pygit2(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    write_runs(a, 2)
    assert _cli(a, "sync").returncode == 0  # the first push (and the first count)
    write_runs(a, 1)
    done, modules = _cli_imports(a, "sync")
    assert done.stdout.strip() == "synced with origin: 0 runs fetched, 1 run pushed (3 in all)"
    assert not {m for m in modules if m.startswith("pygit2")}, done.stderr
    assert "git_prov.store.ledger" not in modules
    write_runs(a, 2)
    done, modules = _cli_imports(a, "push")
    assert done.stdout.strip() == "pushed 2 runs to origin (5 in all)"
    assert "pygit2" not in modules
    for command, said in (
        ("sync", "already in sync with origin (5 runs)"),
        ("push", "origin already has all 5 runs"),
        ("fetch", "already up to date with origin (5 runs)"),
    ):
        done, modules = _cli_imports(a, command)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == said
        assert "pygit2" not in modules, command
        assert "click" not in modules, command  # git_prov.entry's quick path
    assert _state(a) == _state(remote)
    # A merge is what needs pygit2: b has runs of its own and has never fetched.
    write_runs(b, 1)
    done, modules = _cli_imports(b, "sync")
    assert done.stdout.strip() == "synced with origin: 5 runs fetched, 1 run pushed (6 in all)"
    assert "pygit2" in modules
    assert _state(b) == _state(remote)


def test_runs_pushed_are_counted_from_what_the_remote_held_not_a_stale_tracking_copy(
    remote: Path, tmp_path: Path
) -> None:
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 1)
    sync.sync(open_repo(a))
    write_runs(a, 2)
    # A plain push moves the remote without touching our tracking copy.
    git(a, "push", "-q", "origin", f"{OBJECTS_REF}:{OBJECTS_REF}", f"{NOTES_REF}:{NOTES_REF}")
    write_runs(a, 1)
    result = sync.push(open_repo(a))
    assert (result.runs_pushed, result.runs_total, result.attempts) == (1, 4, 1)
    tracking = git(a, "rev-parse", "refs/notes/remotes/origin/prov")
    assert tracking == git(a, "rev-parse", NOTES_REF) == git(remote, "rev-parse", NOTES_REF)


def test_run_totals_survive_a_lost_count_cache(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    write_runs(a, 3)
    sync.sync(open_repo(a))
    (open_repo(a).prov_dir / sync.RUN_COUNT_CACHE).unlink()
    write_runs(a, 1)
    result = sync.sync(a)  # a path: the git binary only
    assert (result.runs_pushed, result.runs_total) == (1, 4)
    assert sync.run_total(a) == 4


def test_sync_keeps_the_store_names_it_does_not_import() -> None:
    from git_prov import rewrite
    from git_prov.store import ledger, merge

    assert (sync.NOTES_REF, sync.OBJECTS_REF) == (ledger.NOTES_REF, ledger.OBJECTS_REF)
    assert sync.DISPLAY_REF == ledger.DISPLAY_REF
    assert merge._RUN_MARK == sync.RUN_MARK
    assert sync.ALIVE_REFS == rewrite.REACHABLE_REFS


# ---- after a merge: the git log display and remap -----------------------------------------------


def test_fetched_runs_show_in_plain_git_log_after_init(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    assert _cli(b, "init").returncode == 0
    [first] = write_runs(a, 1)
    sync.sync(open_repo(a))
    done = _cli(b, "fetch")
    assert done.returncode == 0, done.stderr
    shown = git(b, "log", "-1")
    assert "Notes (prov-log):" in shown and first.short_id in shown
    # Runs merged in while a push is retried show up too.
    [second] = write_runs(a, 1)
    sync.sync(open_repo(a))
    [mine] = write_runs(b, 1)
    result = sync.sync(b)
    assert (result.runs_fetched, result.runs_pushed, result.attempts) == (1, 1, 2)
    shown = git(b, "log", "-1")
    assert all(r.short_id in shown for r in (first, second, mine))


def _squash_merged_elsewhere(remote: Path, tmp_path: Path) -> tuple[list[RunRecord], str]:
    """Runs recorded on a feature branch, pushed with provenance; then the hosting service
    squash-merges the branch and deletes it. Returns the runs and the squash commit."""
    mine = _clone(remote, tmp_path / "mine")
    git(mine, "checkout", "-q", "-b", "feature")
    runs = []
    for n in range(3):
        runs += write_runs(mine, 1, commit_file(mine, "model.py", f"depth = {n}\n", f"step {n}"))
    git(mine, "push", "-q", "origin", "feature")
    sync.push(open_repo(mine))
    host = _clone(remote, tmp_path / "host")
    git(host, "merge", "-q", "--squash", "origin/feature")
    git(host, "commit", "-q", "-m", "Feature (#1)")
    git(host, "push", "-q", "origin", "main", ":feature")
    return runs, git(host, "rev-parse", "HEAD")


def test_git_prov_fetch_attaches_runs_squash_merged_on_the_remote(
    remote: Path, tmp_path: Path
) -> None:
    runs, squash = _squash_merged_elsewhere(remote, tmp_path)
    other = _clone(remote, tmp_path / "other")
    done = _cli(other, "fetch")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "fetched 3 new runs from origin (3 in all)"
    assert (
        lines[1]
        == "attached 3 arrived runs to the commits their code was copied to (git prov remap):"
    )
    assert f"now also on {squash[:7]} (squash of 3 commits)" in lines[2]
    for run in runs:
        assert squash in Ledger(open_repo(other)).scan().runs[run.id].shown_on
    assert [r["id"] for r in _log(other, "HEAD")[0]["runs"]] == sorted(r.id for r in runs)  # type: ignore[index]
    # The attachments are ours to share: the next sync pushes them.
    assert sync.sync(open_repo(other)).attempts == 1
    assert _state(other) == _state(remote)


def test_remap_runs_only_when_an_arrived_run_may_be_orphaned(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from git_prov import rewrite

    calls = []
    original = rewrite.remap

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(rewrite, "remap", counting)
    a = _clone(remote, tmp_path / "a")
    b = _clone(remote, tmp_path / "b")
    write_runs(a, 2)  # on main, which b reaches: remap would have nothing to do
    sync.sync(open_repo(a))
    assert sync.fetch(open_repo(b)).runs_added == 2 and calls == []
    git(a, "checkout", "-q", "-b", "experiment")
    write_runs(a, 1, commit_file(a, "e.txt", "e"))  # a branch b has not fetched
    sync.sync(open_repo(a))
    assert sync.fetch(open_repo(b)).runs_added == 1 and calls == [1]


def test_sync_remaps_and_pushes_the_attachments_unless_told_not_to(
    remote: Path, tmp_path: Path
) -> None:
    runs, squash = _squash_merged_elsewhere(remote, tmp_path)
    quiet = _clone(remote, tmp_path / "quiet")
    done = _cli(quiet, "sync", "--no-remap", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["remapped"] == []
    assert squash not in Ledger(open_repo(quiet)).scan().runs[runs[0].id].shown_on
    other = _clone(remote, tmp_path / "other")
    result = sync.sync(other)
    assert result.runs_fetched == 3 and {m.run for m in result.remapped} == {r.id for r in runs}
    assert {m.commit for m in result.remapped} == {squash}
    assert _state(other) == _state(remote)  # the attachments went to the remote too
    # ... where a plain fetch elsewhere brings them without remapping anything.
    assert sync.fetch(open_repo(quiet)).remapped == ()
    assert squash in Ledger(open_repo(quiet)).scan().runs[runs[0].id].shown_on


# ---- the hook without an interpreter -----------------------------------------------------------


def test_pre_push_hook_without_git_prov_warns_once_and_pushes(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    hook = a / ".git" / "hooks" / "pre-push"
    hook.write_text(render_hook("pre-push", python="/nonexistent/python3"))
    hook.chmod(0o755)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    commit_file(a, "x", "x")
    quiet = subprocess.run(
        ["git", "push", "origin", "main"], cwd=a, capture_output=True, text=True, env=env
    )
    assert quiet.returncode == 0 and "git-prov" not in quiet.stderr  # no ledger: nothing to do
    write_runs(a, 1, commit_file(a, "y", "y"))
    done = subprocess.run(
        ["git", "push", "origin", "main"], cwd=a, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0
    [warning] = [ln for ln in done.stderr.splitlines() if "git-prov" in ln]
    assert warning.startswith("warning: git-prov: git-prov is not installed")
    assert git(remote, "rev-parse", "main") == git(a, "rev-parse", "main")

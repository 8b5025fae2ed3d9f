"""Sharing under load and against odd servers, over real transports (smart HTTP through
``git http-backend``, bare repositories by path): many writers syncing after every record,
servers that hide the ledger refs from fetch, and what sync says about rewritten ledgers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov
from factories import write_runs
from lfs_server import LfsServer

from git_prov.errors import EXIT_REMOTE
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo

TESTS = Path(__file__).resolve().parent

# One writer: record a run, then `git prov sync`, ROUNDS times; prints each sync's exit
# status, attempts and stderr as JSON lines.
WRITER = """
import json, subprocess, sys
from pathlib import Path
from factories import write_runs
for _ in range(int(sys.argv[1])):
    ran = write_runs(Path.cwd(), 1)[0].id
    done = subprocess.run([sys.executable, "-m", "git_prov", "sync", "--json"],
                          capture_output=True, text=True)
    attempts = json.loads(done.stdout)["attempts"] if done.returncode == 0 else None
    print(json.dumps({"run": ran, "code": done.returncode, "attempts": attempts,
                      "stderr": done.stderr}), flush=True)
"""


def _seeded(server: LfsServer, tmp_path: Path, name: str = "org/repo") -> tuple[str, Path]:
    """A repository on ``server`` holding one commit on main: (its URL, its directory)."""
    url = server.create_repo(name)
    bare = server.root / "git" / f"{name}.git"
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_file(seed, "README.md", "# project\n", "initial commit")
    git(seed, "push", "-q", url, "main")
    return url, bare


def _clone(url: str | Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(url), str(dest))
    return dest


def _run_ids(path: Path) -> set[str]:
    return set(Ledger(open_repo(path)).scan().runs)


# ---- contention ------------------------------------------------------------------------------


@pytest.mark.slow
def test_eight_writers_syncing_after_every_record_over_http_all_succeed(
    http_server: LfsServer, tmp_path: Path
) -> None:
    """Eight CI jobs, each syncing after each of its records against one smart-HTTP
    remote: every sync exits 0 (rejections by the others' pushes — "fetch first", a
    server-side "cannot lock ref", git's bare "atomic push failed … status: 5" — are
    retried), and every run arrives."""
    url, bare = _seeded(http_server, tmp_path)
    clones = [_clone(url, tmp_path / f"c{i}") for i in range(8)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "2"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone in clones
    ]
    syncs = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        syncs.extend(json.loads(line) for line in out.splitlines())
    assert len(syncs) == 16
    failed = [s["stderr"] for s in syncs if s["code"] != 0]
    assert not failed, failed
    assert max(s["attempts"] for s in syncs) > 1  # there was contention to survive
    # Each sync pushed its own run: the remote holds all of them, and so does a new clone.
    late = _clone(url, tmp_path / "late")
    prov(late, "fetch")
    assert _run_ids(late) == {s["run"] for s in syncs}
    assert git(bare, "rev-parse", NOTES_REF) == git(late, "rev-parse", NOTES_REF)
    assert git(bare, "rev-parse", OBJECTS_REF)


def test_a_push_git_refuses_before_sending_over_http_is_a_race_to_retry(
    http_server: LfsServer, tmp_path: Path
) -> None:
    """Over smart HTTP, git reports only the ref that failed an --atomic push it refused
    itself (and "atomic push failed for ref refs/notes/prov. status: 5" on stderr): that
    is "fetch first", someone pushed before us — not a transport failure."""
    url, _ = _seeded(http_server, tmp_path)
    a, b = _clone(url, tmp_path / "a"), _clone(url, tmp_path / "b")
    write_runs(a, 1)
    prov(a, "push")
    prov(b, "fetch")
    # a's new run is on the same commit: only the notes move there; b's are on a new
    # commit, so its objects ref would fast-forward and its notes cannot.
    write_runs(a, 1)
    prov(a, "push")
    write_runs(b, 2, commit_file(b, "new", "new"))
    done = prov(b, "push", "--json")  # git refuses b's notes (fetch first): retried
    pushed = json.loads(done.stdout)
    assert (pushed["attempts"], pushed["runs_fetched"], pushed["runs_pushed"]) == (2, 1, 2)


# ---- servers that hide the ledger refs -------------------------------------------------------


def _bare_remote(tmp_path: Path, name: str = "hidden.git") -> Path:
    """A bare repository by path, holding one commit on main."""
    bare = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", "-b", "main", name)
    seed = tmp_path / f"seed-{name}"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_file(seed, "README.md", "# project\n", "initial commit")
    git(seed, "push", "-q", str(bare), "main")
    return bare


def _ledger_refs(bare: Path) -> str:
    return git(bare, "for-each-ref", "--format=%(refname)", "refs/notes", "refs/prov")


def _check_hidden_from_fetch(url: str, bare: Path, tmp_path: Path) -> None:
    """uploadpack.hideRefs: the push is taken, but the notes never come back."""
    a, b = _clone(url, tmp_path / "a"), _clone(url, tmp_path / "b")
    write_runs(a, 1)
    write_runs(b, 1)
    done = prov(a, "sync", check=False)  # the first push creates the notes there: checked
    assert done.returncode == EXIT_REMOTE, done.stderr
    assert done.stderr.startswith(
        "error: origin holds refs/notes/prov but never lets it be fetched"
    ), done.stderr
    assert "uploadpack.hideRefs" in done.stderr and "administrators" in done.stderr
    assert _ledger_refs(bare) == f"{NOTES_REF}\n{OBJECTS_REF}"
    for command in ("fetch", "sync", "push"):  # another clone: told at once, never a loop
        done = prov(b, command, "--json", check=False)
        assert done.returncode == EXIT_REMOTE, (command, done.stderr)
        assert "never lets it be fetched" in done.stderr, (command, done.stderr)
        assert "others" not in done.stderr and done.stdout == ""


def _check_refused_hidden(url: str, bare: Path, tmp_path: Path) -> None:
    """transfer.hideRefs: the notes are refused, and the objects ref git's receive-pack
    applied anyway is put back (deleted: the remote had none)."""
    a = _clone(url, tmp_path / "a2")
    write_runs(a, 1)
    done = prov(a, "sync", check=False)
    assert done.returncode == EXIT_REMOTE, done.stderr
    assert done.stderr.startswith(
        "error: origin refuses pushes to refs/notes/prov: its configuration hides that ref"
    ), done.stderr
    assert "(refs/prov/objects) was put back" in done.stderr
    assert _ledger_refs(bare) == ""  # nothing of the ledger stays there
    assert git(a, "for-each-ref", "refs/prov/remotes", "refs/notes/remotes") == ""


def test_a_server_hiding_the_notes_from_fetch_is_named_at_once(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path)
    git(bare, "config", "uploadpack.hideRefs", "refs/notes")
    _check_hidden_from_fetch(str(bare), bare, tmp_path)


def test_a_server_hiding_the_notes_from_push_keeps_none_of_the_ledger(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path)
    git(bare, "config", "transfer.hideRefs", "refs/notes")
    _check_refused_hidden(str(bare), bare, tmp_path)
    # Where the remote had the objects ref before, it is put back to what it held.
    git(bare, "config", "--unset", "transfer.hideRefs")
    a = tmp_path / "a2"
    git(a, "push", "-q", str(bare), "refs/prov/objects")
    before = git(bare, "rev-parse", OBJECTS_REF)
    write_runs(a, 1, commit_file(a, "more", "more"))
    git(bare, "config", "transfer.hideRefs", "refs/notes")
    done = prov(a, "push", check=False)
    assert done.returncode == EXIT_REMOTE and "was put back" in done.stderr
    assert git(bare, "rev-parse", OBJECTS_REF) == before
    # A server that will not have it put back: what stays there, and how to remove it.
    hook = bare / "hooks" / "update"
    hook.write_text('#!/bin/sh\ngit merge-base --is-ancestor "$2" "$3"\n')  # no rewinds
    hook.chmod(0o755)
    done = prov(a, "push", check=False)
    assert done.returncode == EXIT_REMOTE
    assert (
        "it kept refs/prov/objects (manifests, logs, snapshot and source commits" in done.stderr
    ), done.stderr
    assert "`git push origin :refs/prov/objects`" in done.stderr
    assert git(bare, "rev-parse", OBJECTS_REF) == git(a, "rev-parse", OBJECTS_REF)


def test_hidden_ledger_refs_over_smart_http(http_server: LfsServer, tmp_path: Path) -> None:
    url, bare = _seeded(http_server, tmp_path, "org/fetch-hidden")
    git(bare, "config", "uploadpack.hideRefs", "refs/notes")
    _check_hidden_from_fetch(url, bare, tmp_path)
    (tmp_path / "other").mkdir()
    url, bare = _seeded(http_server, tmp_path / "other", "org/push-hidden")
    git(bare, "config", "transfer.hideRefs", "refs/notes")
    _check_refused_hidden(url, bare, tmp_path)


# ---- whose runs a count counts, and who rewrote what -------------------------------------------


def test_after_the_remote_was_rewound_fetch_counts_each_side(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path, "rewound.git")
    a = _clone(bare, tmp_path / "a")
    write_runs(a, 3)
    prov(a, "sync")
    three = git(bare, "rev-parse", NOTES_REF), git(bare, "rev-parse", OBJECTS_REF)
    write_runs(a, 5)
    prov(a, "sync")
    git(bare, "update-ref", NOTES_REF, three[0])  # someone force-pushes an old ledger
    git(bare, "update-ref", OBJECTS_REF, three[1])
    done = prov(a, "fetch")
    assert done.stdout == "nothing new from origin: origin holds 3 runs, this repository 8\n"
    assert "warning: origin rewrote its refs/notes/prov (a force-push)" in done.stderr
    assert json.loads(prov(a, "fetch", "--json").stdout)["remote_total"] == 3
    done = prov(a, "sync")
    assert done.stdout.startswith("synced with origin: 0 runs fetched, 5 runs pushed (8 in all")
    assert prov(a, "fetch").stdout == "already up to date with origin (8 runs)\n"


FILTER_REPO = Path(sys.executable).with_name("git-filter-repo")


@pytest.mark.skipif(not FILTER_REPO.exists(), reason="git-filter-repo is not installed")
def test_a_local_filter_repo_is_not_blamed_on_the_remote(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path, "filtered.git")
    a = _clone(bare, tmp_path / "a")
    commit_file(a, "secret.txt", "hunter2")
    write_runs(a, 2)
    prov(a, "sync")
    subprocess.run(
        [str(FILTER_REPO), "--force", "--invert-paths", "--path", "secret.txt"],
        cwd=a,
        check=True,
        capture_output=True,
    )
    if not git(a, "remote"):  # (filter-repo removes origin, so that nothing is pushed by mistake)
        git(a, "remote", "add", "origin", str(bare))
    done = prov(a, "sync")
    assert "origin rewrote" not in done.stderr
    assert (
        "warning: this repository's copy of origin's refs/prov/objects was rewritten here "
        "(git filter-repo rewrites every ref); origin's own was not" in done.stderr
    ), done.stderr


# ---- git's conventions -----------------------------------------------------------------------


def test_log_takes_git_logs_ways_of_saying_how_many(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path, "log.git")
    a = _clone(bare, tmp_path / "a")
    write_runs(a, 1)
    write_runs(a, 1, commit_file(a, "more", "more"))
    one = json.loads(prov(a, "log", "--json", "-n", "1").stdout)
    assert len(one) == 1
    for spelling in (["-1"], ["-n1"], ["--max-count=1"], ["--max-count", "1"]):
        assert json.loads(prov(a, "log", "--json", *spelling).stdout) == one, spelling
    assert len(json.loads(prov(a, "-C", str(a), "log", "-2", "--json").stdout)) == 2
    done = prov(a, "log", "-0", check=False)  # as click says of -n 0
    assert done.returncode == 2 and "0" in done.stderr


def test_push_fetch_and_sync_take_a_path_or_url_as_git_does(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path, "by-path.git")
    a = tmp_path / "a"
    git(tmp_path, "init", "-q", "-b", "main", "a")  # no remote configured at all
    commit_file(a, "x", "x")
    write_runs(a, 2)
    sub = a / "sub"
    sub.mkdir()
    done = prov(sub, "push", "../../by-path.git")  # relative to where it is typed
    assert done.stdout == f"pushed 2 runs to {bare}, which had no provenance before (2 in all)\n"
    assert git(bare, "rev-parse", NOTES_REF) == git(a, "rev-parse", NOTES_REF)
    b = _clone(bare, tmp_path / "b")
    write_runs(b, 1)
    assert prov(b, "sync", f"file://{bare}").returncode == 0
    assert prov(a, "fetch", str(bare)).stdout.startswith(f"fetched 1 new run from {bare}")
    assert len(_run_ids(a)) == 3
    tracked = git(a, "for-each-ref", "--format=%(refname)", "refs/notes/remotes")
    assert tracked.startswith("refs/notes/remotes/url-") and tracked.endswith("/prov")
    done = prov(a, "push", "no-such-place", check=False)
    assert done.returncode == EXIT_REMOTE
    assert done.stderr.startswith("error: no remote named 'no-such-place', nor a repository")
    assert "`git remote add NAME no-such-place`" in done.stderr


def test_local_only_refs_do_not_come_back_through_the_fetch_refspecs(tmp_path: Path) -> None:
    bare = _bare_remote(tmp_path, "old.git")
    a = _clone(bare, tmp_path / "a")
    write_runs(a, 1)
    prov(a, "sync")
    git(a, "update-ref", "refs/notes/prov-log", NOTES_REF)  # the git log display
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", "mirror.git")
    git(a, "push", "-q", "--mirror", str(mirror))  # carries every ref, local-only ones too
    assert git(mirror, "for-each-ref", "--format=%(refname)", "refs/notes/prov-log")
    b = _clone(mirror, tmp_path / "b")
    prov(b, "init", "--remote", "origin")
    git(b, "fetch", "-q", "origin")
    fetched = git(b, "for-each-ref", "--format=%(refname)", "refs/notes/remotes", "refs/prov")
    assert fetched.split() == ["refs/notes/remotes/origin/prov", "refs/prov/remotes/origin/objects"]

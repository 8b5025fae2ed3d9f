"""The quick path of the ``git-prov`` executable (git_prov/entry.py): ``push``, ``fetch``,
``sync`` and ``hook pre-push`` run without importing click, and print exactly what the
click commands print — same bytes on stdout and stderr, same exit code — from the same
repositories; every other command line still goes through click.

Each comparison runs the real executable twice from one saved state of a small world (a
bare remote and its clones), restored in between: once as it is, once with
``GIT_PROV_NO_QUICK=1``, which sends everything through click. Which path ran is read off
``PYTHONPROFILEIMPORTTIME`` (python's own list of the modules a process imported)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import click
import pytest
from conftest import commit_file, git, missing
from factories import write_runs

from git_prov import entry
from git_prov.errors import EXIT_REMOTE, EXIT_REPOSITORY, RemoteProblem
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF

IMPORT_LINE = "import time:"


class Ran(NamedTuple):
    """One run of the executable: what it said, and the modules it imported."""

    returncode: int
    stdout: str
    stderr: str
    modules: frozenset[str]

    @property
    def said(self) -> tuple[int, str, str]:
        return self.returncode, self.stdout, self.stderr


def _cli(
    cwd: Path,
    *args: str,
    quick: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> Ran:
    full_env = {**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"}
    full_env.pop(entry.NO_QUICK_ENV, None)
    if not quick:
        full_env[entry.NO_QUICK_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "git_prov", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        env=full_env,
        check=False,
    )
    return _ran(done.returncode, done.stdout, done.stderr)


def _ran(returncode: int, stdout: str, stderr: str) -> Ran:
    """Split python's import-time lines (whole lines on stderr) from what we printed."""
    lines = stderr.splitlines(keepends=True)
    modules = frozenset(
        ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith(IMPORT_LINE) and "|" in ln
    )
    said = "".join(ln for ln in lines if not ln.startswith(IMPORT_LINE))
    return Ran(returncode, stdout, said, modules)


def _went_quick(ran: Ran) -> bool:
    assert "git_prov.entry" in ran.modules, ran  # (the import list was read)
    return "click" not in ran.modules and "git_prov.cli" not in ran.modules


def _save(world: Path, label: str = "saved") -> Path:
    saved = world.with_name(f"{world.name}-{label}")
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(world, saved, symlinks=True)
    return saved


def _restore(world: Path, saved: Path) -> None:
    shutil.rmtree(world)
    shutil.copytree(saved, world, symlinks=True)


def _both(
    world: Path,
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> tuple[Ran, Ran]:
    """Run ``git prov ARGS`` as it is and through click, from the same state of ``world``
    (left as the click run left it)."""
    saved = _save(world, "before")
    quick = _cli(cwd, *args, env=env, input=input)
    _restore(world, saved)
    slow = _cli(cwd, *args, quick=False, env=env, input=input)
    shutil.rmtree(saved)
    assert not _went_quick(slow)
    return quick, slow


def _same(world: Path, cwd: Path, *args: str, input: str | None = None) -> Ran:
    """:func:`_both` for a command line the quick path runs: it did, and said the same."""
    quick, slow = _both(world, cwd, *args, input=input)
    assert _went_quick(quick), args
    assert quick.said == slow.said, args
    return quick


# ---- a world: a bare remote and clones ---------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """``world/remote.git`` (one commit on main, no provenance) and clones ``a`` and ``b``."""
    root = tmp_path / "world"
    root.mkdir()
    git(root, "init", "-q", "--bare", "remote.git")
    seed = root / "seed"
    seed.mkdir()
    git(seed, "init", "-q")
    commit_file(seed, "README.md", "# project\n", "initial commit")
    git(seed, "push", "-q", str(root / "remote.git"), "main")
    for name in ("a", "b"):
        git(root, "clone", "-q", str(root / "remote.git"), name)
    return root


# ---- the same output through both paths ----------------------------------------------------------


def test_push_fetch_and_sync_say_the_same_without_click(world: Path) -> None:
    a, b = world / "a", world / "b"
    assert _same(world, a, "push").stdout == "no provenance recorded here yet: nothing to push\n"
    write_runs(a, 2)
    said = _same(world, a, "push").stdout
    assert said == "pushed 2 runs to origin, which had no provenance before (2 in all)\n"
    assert _same(world, a, "push", "origin").stdout == "origin already has all 2 runs\n"
    assert _same(world, a, "sync").stdout == "already in sync with origin (2 runs)\n"
    write_runs(a, 1)
    said = _same(world, a, "sync").stdout
    assert said == "synced with origin: 0 runs fetched, 1 run pushed (3 in all)\n"
    assert _same(world, b, "fetch").stdout == "fetched 3 new runs from origin (3 in all)\n"
    assert _same(world, b, "fetch", "--no-remap").stdout == (
        "already up to date with origin (3 runs)\n"
    )
    # Runs on both sides: a merge (pygit2), then a push, with the attempts spelt both ways.
    write_runs(a, 1)
    _same(world, a, "push", "--attempts=2")
    write_runs(b, 1, commit_file(b, "b.txt", "b"))
    said = _same(world, b, "sync", "--attempts", "3", "--no-remap", "origin").stdout
    assert said == "synced with origin: 1 run fetched, 1 run pushed (5 in all, 2 attempts)\n"
    # Global options before the command, and every command's --json.
    write_runs(a, 1)
    doc = _same(world, world, "--no-pager", "--color", "never", "-C", "a", "sync", "--json")
    assert json.loads(doc.stdout)["runs_pushed"] == 1
    for args in (["push", "--json"], ["fetch", "--json"], ["sync", "--json", "origin"]):
        assert '"remote": "origin"' in _same(world, b, *args).stdout
    assert _same(world, a, "--debug", "--color=always", f"-C{a}", "push").returncode == 0


def test_errors_say_the_same_without_click(world: Path, tmp_path: Path) -> None:
    a = world / "a"
    write_runs(a, 1)
    missing = _same(world, a, "sync", "nosuch")
    assert missing.returncode == EXIT_REMOTE and missing.stdout == ""
    assert missing.stderr.startswith("error: no remote named 'nosuch' (remotes here: origin)")
    git(a, "remote", "add", "gone", str(world / "does-not-exist.git"))
    for command in ("fetch", "push", "sync"):
        gone = _same(world, a, command, "gone")
        assert gone.returncode == EXIT_REMOTE and "error: gone is not a git repository" in (
            gone.stderr
        )
    lonely = world / "lonely"
    lonely.mkdir()
    git(lonely, "init", "-q")
    commit_file(lonely, "x", "x")
    assert _same(world, lonely, "push").returncode == EXIT_REMOTE
    nowhere = world / "not-a-repository"
    nowhere.mkdir()
    assert _same(world, nowhere, "fetch").returncode == EXIT_REPOSITORY
    # A server-side hook that always says no: bounded retries, then one clear error.
    hook = world / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'provenance is not welcome here' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = _same(world, a, "push", "--attempts", "2")
    assert refused.returncode == EXIT_REMOTE
    assert refused.stderr.startswith("error: origin refused the provenance refs")


def test_warnings_say_the_same_without_click(world: Path) -> None:
    a, b = world / "a", world / "b"
    write_runs(a, 2)
    _cli(a, "sync")
    _cli(b, "fetch")
    # Someone replaces the remote's ledger with an unrelated history.
    c = world / "c"
    git(world, "clone", "-q", str(world / "remote.git"), "c")
    write_runs(c, 1)
    git(c, "push", "-q", "-f", "origin", f"{NOTES_REF}:{NOTES_REF}", f"{OBJECTS_REF}:{OBJECTS_REF}")
    write_runs(b, 1)
    saved = _save(world)
    for args in (["fetch"], ["sync", "--json"]):
        _restore(world, saved)
        said = _same(world, b, *args)
        assert said.returncode == 0
        assert "warning: origin rewrote its refs/notes/prov" in said.stderr


def test_the_pre_push_hook_says_the_same_without_click(world: Path) -> None:
    a = world / "a"
    write_runs(a, 1, commit_file(a, "x", "x"))
    head = git(a, "rev-parse", "HEAD")
    update = f"refs/heads/main {head} refs/heads/main {'0' * 40}\n"
    url = str(world / "remote.git")
    pushed = _same(world, a, "hook", "pre-push", "origin", url, input=update)
    assert (pushed.returncode, pushed.stdout) == (0, "")
    assert pushed.stderr == "git-prov: pushed 1 run to origin\n"
    assert _same(world, a, "hook", "pre-push", "origin", input=update).stderr == ""
    # A push to a URL rather than a remote carries no provenance, and says nothing.
    assert _same(world, a, "hook", "pre-push", url, url, input=update).said == (0, "", "")
    git(a, "remote", "set-url", "origin", str(world / "nowhere.git"))
    write_runs(a, 1)
    failed = _same(world, a, "hook", "pre-push", "origin", input=update)
    assert failed.returncode == 0  # never blocks the push
    assert failed.stderr.startswith("warning: provenance was not pushed to origin")


def _squash_merged_elsewhere(world: Path) -> str:
    """Runs recorded on a feature branch of ``a`` and pushed; then the hosting service
    squash-merges the branch and deletes it. Returns the squash commit."""
    a = world / "a"
    git(a, "checkout", "-q", "-b", "feature")
    for n in range(2):
        write_runs(a, 1, commit_file(a, "model.py", f"depth = {n}\n", f"step {n}"))
    git(a, "push", "-q", "origin", "feature")
    _cli(a, "push")
    host = world / "host"
    git(world, "clone", "-q", str(world / "remote.git"), "host")
    git(host, "merge", "-q", "--squash", "origin/feature")
    git(host, "commit", "-q", "-m", "Feature (#1)")
    git(host, "push", "-q", "origin", "main", ":feature")
    return git(host, "rev-parse", "HEAD")


def _on_a_terminal(cwd: Path, *args: str, quick: bool) -> Ran:
    """The executable with its stdout on a pseudo-terminal (stderr piped)."""
    pty = pytest.importorskip("pty")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    env.pop(entry.NO_QUICK_ENV, None)
    if not quick:
        env[entry.NO_QUICK_ENV] = "1"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "git_prov", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, err = proc.communicate()
    os.close(leader)
    return _ran(proc.returncode, out.decode(), err.decode())


def test_remapped_runs_are_coloured_alike_on_a_terminal_and_plain_elsewhere(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    squash = _squash_merged_elsewhere(world)
    b = world / "b"
    git(b, "pull", "-q", "--ff-only")  # b has the squash commit, not the runs
    saved = _save(world)
    runs = []
    for quick in (True, False):
        _restore(world, saved)
        runs.append(_on_a_terminal(b, "fetch", quick=quick))
    assert _went_quick(runs[0]) and not _went_quick(runs[1])
    assert runs[0].said == runs[1].said
    assert f"\x1b[33m{squash[:7]}\x1b[0m (squash of 2 commits)" in runs[0].stdout
    assert "\x1b[32m" in runs[0].stdout
    # Piped, even --color always prints no colour codes (click.echo drops them).
    _restore(world, saved)
    said = _same(world, b, "--color", "always", "fetch").stdout
    assert f"now also on {squash[:7]} (squash of 2 commits)" in said and "\x1b" not in said


# ---- anything else goes to click ---------------------------------------------------------------


UNUSUAL = [
    [],
    ["--version"],
    ["--help"],
    ["sync", "--help"],
    ["hook", "pre-push", "-h"],
    ["sync", "--bogus"],
    ["sync", "origin", "extra"],
    ["sync", "--", "origin"],
    ["sync", "--json", "--json"],
    ["sync", "--json=yes"],
    ["push", "--attempts", "0"],
    ["push", "--attempts=x"],
    ["push", "--attempts"],
    ["push", "--no-remap"],
    ["fetch", "--attempts", "3"],
    ["--color=sometimes", "sync"],
    ["-C", "missing", "sync"],
    ["-C", "README.md", "sync"],
    ["-C"],
    ["--no-pager", "log", "--oneline"],
    ["syncc"],
    ["hook", "pre-push"],
    ["hook", "post-rewrite", "amend"],
]


def test_anything_else_goes_to_click_unchanged(world: Path) -> None:
    a = world / "a"
    write_runs(a, 1)
    for args in UNUSUAL:
        quick, slow = _both(world, a, *args)
        assert not _went_quick(quick), args
        assert quick.said == slow.said, args


def test_odd_settings_go_to_click(world: Path) -> None:
    a = world / "a"
    for env in ({"GIT_PROV_DEBUG": "maybe"}, {"_GIT_PROV_COMPLETE": "bash_complete"}):
        quick, slow = _both(world, a, "sync", env=env)
        assert not _went_quick(quick) and quick.said == slow.said
    # Output that click would re-encode (an ASCII stdout) is left to click as well.
    quick, slow = _both(world, a, "sync", env={"PYTHONIOENCODING": "ascii"})
    assert not _went_quick(quick) and quick.said == slow.said
    write_runs(a, 1)
    assert _went_quick(_cli(a, "sync", env={"GIT_PROV_DEBUG": "1"}))


def test_the_quick_parser_knows_the_options_click_declares() -> None:
    import git_prov.cli.sync  # noqa: F401  (registers the commands)
    from git_prov.cli import cli

    def options(command: click.Command) -> set[str]:
        return {o for p in command.params if isinstance(p, click.Option) for o in p.opts}

    def arguments(command: click.Command) -> list[tuple[str | None, bool]]:
        return [(p.name, p.required) for p in command.params if isinstance(p, click.Argument)]

    for name, accepted in entry.QUICK_OPTIONS.items():
        command = cli.commands[name]
        assert options(command) == accepted, name
        assert arguments(command) == [("remote", False)], name
        for p in command.params:
            if p.name in ("attempts", "timeout"):  # the quick parser takes only 1, 2, …
                assert isinstance(p.type, click.IntRange) and p.type.min == 1
    hook = cli.commands["hook"]
    assert isinstance(hook, click.Group)
    pre_push = hook.commands["pre-push"]
    assert options(pre_push) == set()
    assert arguments(pre_push) == [("remote", True), ("url", False)]
    assert options(cli) == {*entry.GLOBAL_FLAGS, "-C", "--color", "--version"}
    [color] = [p for p in cli.params if p.name == "color"]
    assert isinstance(color.type, click.Choice) and tuple(color.type.choices) == entry.COLORS


def test_the_quick_get_knows_the_options_click_declares() -> None:
    """A get option click drops or renames must not be taken by the quick path (entry.py's
    own list of get's options is held to what git_prov/cli/data.py declares)."""
    import git_prov.cli.data  # noqa: F401  (registers the command)
    from git_prov.cli import cli

    get = cli.commands["get"]
    declared = {o for p in get.params if isinstance(p, click.Option) for o in p.opts}
    quick = {*entry.GET_FLAGS, *entry.GET_VALUES}
    assert declared - {"-o"} == quick
    [output] = [p for p in get.params if p.name == "output"]
    assert set(output.opts) == {"-o", "--output"}
    assert [(p.name, p.nargs) for p in get.params if isinstance(p, click.Argument)] == [
        ("spec", 1),
        ("paths", -1),
    ]


def test_the_one_style_and_echo_print_what_click_would(capsys: pytest.CaptureFixture[str]) -> None:
    from git_prov import terminal

    for fg in ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"):
        for bold in (None, True, False):
            ours = terminal.for_terminal(terminal.style("x", fg=fg, bold=bold))
            assert ours == click.style("x", fg=fg, bold=bold)
    text = terminal.style("run", fg="green") + " — → " + terminal.style("on", bold=True)
    for err in (False, True):
        entry.echo(text, err=err)
        terminal.echo(text, err=err)
    out, err_text = capsys.readouterr()
    assert out == err_text == "run — → on\n" * 2  # codes dropped off a terminal, as click does


def test_failures_map_to_exit_codes_in_one_place(capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    cases = [
        (RemoteProblem("no remote", "add one"), EXIT_REMOTE, "error: no remote — add one"),
        (KeyboardInterrupt(), 130, "\ninterrupted"),
        (ValueError("boom"), 3, "error: internal error: ValueError: boom — please report it"),
    ]
    for exc, code, message in cases:
        said.clear()
        assert entry.report_failure(exc, debug=False, say=said.append) == code
        assert said[0].startswith(message)
    try:
        raise ValueError("traced")
    except ValueError as exc:
        entry.report_failure(exc, debug=True, say=said.append)
    assert "Traceback" in capsys.readouterr().err


# ---- the installed executable, through git -----------------------------------------------------


def test_git_prov_on_path_syncs_without_click(world: Path) -> None:
    scripts = Path(sys.executable).parent
    if shutil.which("git-prov", path=str(scripts)) is None:
        pytest.skip(missing("the git-prov executable next to this interpreter"))
    a = world / "a"
    write_runs(a, 2)
    env = {
        **os.environ,
        "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    done = subprocess.run(
        ["git", "prov", "sync"], cwd=a, capture_output=True, text=True, env=env, check=False
    )
    ran = _ran(done.returncode, done.stdout, done.stderr)
    assert ran.said == (0, "synced with origin: 0 runs fetched, 2 runs pushed (2 in all)\n", "")
    assert _went_quick(ran), "reinstall git-prov: its executable predates git_prov.entry"

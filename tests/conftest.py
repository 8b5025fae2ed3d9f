"""Hermetic test setup: every test runs with its own HOME, no system or global git config,
a fixed identity and fixed dates, and builds real repositories with real git."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

# The `lfs_server` fixture: a real git-LFS server (giftless) on 127.0.0.1.
pytest_plugins = ("lfs_server",)

# A test that needs a tool skips, with a reason saying what "is not installed" (or
# pytest.importorskip's "could not import …"), on a developer's machine. Under CI=true
# (.ci/run sets it) that skip is a failure: CI installs every tool the tests need, so a
# missing one is a broken CI set-up, never a silently green run.
_MISSING_TOOL = re.compile(r"\b(?:is|are) not installed\b|could not import")


def missing(what: str) -> str:
    """The skip reason for a test that needs ``what`` (a tool or a package)."""
    return f"{what} is not installed"


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Under CI=true, a skip because a tool is missing fails the test (see above)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and _under_ci()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if _MISSING_TOOL.search(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true, and this test skipped because a tool it needs is missing: {reason}\n"
            "CI must install every tool the tests need (.ci/run, docs/ci.md)"
        )


@pytest.fixture(autouse=True)
def hermetic_seal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Isolate tests from the developer's home, git config and identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Ada Tester")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
    monkeypatch.setenv("GIT_PAGER", "cat")
    monkeypatch.setenv("PAGER", "cat")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    monkeypatch.delenv("GIT_INDEX_FILE", raising=False)
    monkeypatch.delenv("GIT_PROV_DEBUG", raising=False)
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Ada Tester\n"
        '\temail = ada@example.com\n[protocol "file"]\n\tallow = always\n'
    )
    yield


def git(cwd: Path | str, *args: str, check: bool = True, input: str | None = None) -> str:
    """Run the real git CLI and return its stdout (stripped of the final newline)."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, check=False, capture_output=True, text=True, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.rstrip("\n")


def commit_file(repo: Path, name: str, content: str, message: str | None = None) -> str:
    """Write a file, commit it, and return the new commit id."""
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(repo, "add", "--", name)
    git(repo, "commit", "-q", "-m", message or f"change {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit (README.md) on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    commit_file(path, "README.md", "# experiment\n", "initial commit")
    return path


@pytest.fixture
def empty_repo(tmp_path: Path) -> Path:
    """A repository with no commits yet."""
    path = tmp_path / "empty"
    path.mkdir()
    git(path, "init", "-q")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"


os.environ.setdefault("GIT_PROV_TESTING", "1")


def prov(
    cwd: Path | str,
    *args: str,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``git prov`` CLI (as ``python -m git_prov``) in a subprocess."""
    import sys

    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "git_prov", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,  # never the test's stdin
        env=full_env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git prov {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def runs_json(repo: Path, *revs: str) -> list[dict[str, object]]:
    """Every run `git prov log --json` lists for ``revs`` (default HEAD), newest commit first."""
    import json

    doc = json.loads(prov(repo, "log", "--json", *revs).stdout)
    return [run for commit in doc for run in commit["runs"]]


def signals_as_from_a_terminal() -> None:
    """A ``preexec_fn``: SIGINT, SIGTERM and SIGHUP at their defaults, as a command started
    from a terminal has them, whatever this process inherited (under ``nohup`` or ``cmd &``
    from a script, SIGINT is ignored, and an ignored signal stays ignored across exec)."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)

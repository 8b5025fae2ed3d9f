"""Installing git-prov's git hooks: thin shell trampolines that call back into git prov.

The scripts are package data (``git_prov/templates/hook-<name>``, the same text as the
repository's top-level ``hooks/<name>``; a test keeps the two equal). Installing one puts it
where git looks for hooks (``git rev-parse --git-path hooks``, which honours
``core.hooksPath`` and worktrees) with the interpreter that installed it filled in, so the
hook works even when ``git-prov`` is not on PATH. A foreign hook already there is kept as
``<name>.legacy`` and chained by the trampoline (before ours for ``pre-push``, so that it
can still stop a push; after ours otherwise); uninstalling puts it back.

Only the git binary is used: any repository with ``git()``, ``workdir`` and ``git_dir``
will do (a ``GitRepo``, or the pygit2-free ``SyncRepo`` of :mod:`git_prov.sync`).
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Protocol

from git_prov.errors import RepositoryProblem, UsageProblem

TEMPLATE_PREFIX = "hook-"
PYTHON_LINE = "GIT_PROV_PYTHON=''"
LEGACY_SUFFIX = ".legacy"
# Hooks whose chained legacy hook runs before ours: a pre-push hook decides whether the
# push happens at all, and provenance must not leave when it says no.
LEGACY_RUNS_FIRST = frozenset({"pre-push"})


class HookRepo(Protocol):
    """What installing a hook needs of a repository (``GitRepo`` and ``SyncRepo`` fit)."""

    @property
    def workdir(self) -> Path | None: ...

    @property
    def git_dir(self) -> Path: ...

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]: ...


def available_hooks() -> list[str]:
    """The names of the hooks git-prov ships (``post-rewrite``, …)."""
    folder = resources.files("git_prov") / "templates"
    return sorted(
        entry.name.removeprefix(TEMPLATE_PREFIX)
        for entry in folder.iterdir()
        if entry.name.startswith(TEMPLATE_PREFIX)
    )


def hook_template(name: str) -> str:
    """The shipped text of hook ``name`` (what ``hooks/<name>`` holds)."""
    if name not in available_hooks():
        raise UsageProblem(
            f"git-prov has no {name} hook", f"choose one of: {', '.join(available_hooks())}"
        )
    return (resources.files("git_prov") / "templates" / f"{TEMPLATE_PREFIX}{name}").read_text()


def render_hook(name: str, python: str | None = None) -> str:
    """The hook as installed: the template with the installing interpreter filled in."""
    text = hook_template(name)
    interpreter = python if python is not None else sys.executable
    if interpreter and PYTHON_LINE in text:
        text = text.replace(PYTHON_LINE, f"GIT_PROV_PYTHON={shlex.quote(interpreter)}", 1)
    return text


def hook_marker(name: str) -> str:
    """A line every git-prov hook of this name starts its description with."""
    return f"# git-prov {name} hook"


def hooks_dir(repo: HookRepo) -> Path:
    """Where git runs hooks from for this repository (``core.hooksPath`` honoured)."""
    proc = repo.git("rev-parse", "--git-path", "hooks")
    path = Path(proc.stdout.decode().strip())
    if not path.is_absolute():
        path = (repo.workdir or repo.git_dir) / path
    return path


def is_ours(path: Path, name: str) -> bool:
    """True when ``path`` is a git-prov ``name`` hook (any version)."""
    try:
        return hook_marker(name) in path.read_text(errors="replace")
    except OSError:
        return False


def install_hook(repo: HookRepo, name: str) -> list[str]:
    """Install hook ``name``; returns one line per step (and a ``hint:`` when
    ``core.hooksPath`` is set). Idempotent; an older git-prov version of the hook is
    replaced; a foreign hook is moved to ``<name>.legacy`` and still runs (first, for
    ``pre-push``)."""
    text = render_hook(name)
    folder = hooks_dir(repo)
    folder.mkdir(parents=True, exist_ok=True)
    hook, legacy = folder / name, folder / f"{name}{LEGACY_SUFFIX}"
    done: list[str] = []
    if hook.exists() or hook.is_symlink():
        if is_ours(hook, name):
            if (
                not hook.is_symlink()
                and hook.read_text(errors="replace") == text
                and os.access(hook, os.X_OK)
            ):
                return [f"{name} hook: already installed ({hook})", *_hooks_path_hint(repo)]
            done.append(f"{name} hook: updated ({hook})")
        else:
            if legacy.exists() or legacy.is_symlink():
                raise RepositoryProblem(
                    f"both {hook} and {legacy} exist",
                    f"merge them into one {name} hook by hand, then run this again",
                )
            hook.rename(legacy)
            order = "first" if name in LEGACY_RUNS_FIRST else "after ours"
            done.append(f"kept your {name} hook as {legacy.name}; it still runs {order}")
    _write_executable(hook, text)
    if not done:
        done.append(f"{name} hook: installed ({hook})")
    return done + _hooks_path_hint(repo)


def uninstall_hook(repo: HookRepo, name: str) -> list[str]:
    """Remove git-prov's hook ``name`` and put back the one it chained, if any."""
    hook_template(name)  # an unknown name is a usage error
    folder = hooks_dir(repo)
    hook, legacy = folder / name, folder / f"{name}{LEGACY_SUFFIX}"
    if (hook.exists() or hook.is_symlink()) and not is_ours(hook, name):
        return [f"{name} hook: {hook} is not git-prov's; left as it is"]
    done: list[str] = []
    if hook.exists():
        hook.unlink()
        done.append(f"{name} hook: removed ({hook})")
    else:
        done.append(f"{name} hook: not installed")
    if legacy.exists() or legacy.is_symlink():
        legacy.rename(hook)
        done.append(f"restored your previous {name} hook from {legacy.name}")
    return done


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.git-prov.{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(path)


def _hooks_path_hint(repo: HookRepo) -> list[str]:
    proc = repo.git("config", "--get", "core.hooksPath", check=False)
    configured = proc.stdout.decode().strip()
    if not configured:
        return []
    return [
        f"hint: core.hooksPath is set ({configured}): the hook went there, so every "
        "repository using that directory runs it"
    ]

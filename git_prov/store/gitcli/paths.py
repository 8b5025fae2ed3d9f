"""Where a repository is, found through the ``git`` binary without opening it through
pygit2 (:class:`RepoPaths`), and a ref read from its files (:func:`read_ref`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from git_prov.errors import RepositoryProblem
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.model.ids import HEX_OID_RE
from git_prov.store.gitcli import NO_GIT, PROV_DIR, git_env, refuse_reftable, run_git

# What RepoPaths.discover asks git: the common dir, and where the working directory is.
DISCOVER = ("rev-parse", "--path-format=absolute", "--git-common-dir", "--is-inside-work-tree",
            "--show-prefix")  # fmt: skip
# The tips that keep commits alive (what the orphan hint is keyed by: git_prov.query.hints).
ALIVE_TIPS = ("rev-parse", "--branches", "--tags", "--remotes", "HEAD")


@frozen_fields
class RepoPaths(Fields):
    """Where a repository is, found without opening it through pygit2.

    ``prefix`` is the current directory relative to the working tree root ('' at the
    root and in a bare repository); ``cwd`` is where git commands run.
    """

    common_dir: Path
    workdir: Path | None
    prefix: str
    cwd: Path

    def __init__(self, common_dir: Path, workdir: Path | None, prefix: str, cwd: Path) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "common_dir", common_dir)
        set_(self, "workdir", workdir)
        set_(self, "prefix", prefix)
        set_(self, "cwd", cwd)

    @classmethod
    def discover(cls, cwd: Path | None = None) -> RepoPaths:
        """The repository containing ``cwd`` (default: the current directory)."""
        here = Path(os.path.abspath(cwd or os.getcwd()))
        return cls.from_rev_parse(here, run_git(here, DISCOVER, check=False))

    @classmethod
    def discover_with_tips(cls, cwd: Path | None = None) -> tuple[RepoPaths, str | None]:
        """:meth:`discover`, and what ``git`` :data:`ALIVE_TIPS` prints there, from one git
        process (``log`` asks both). The tips are None when that cannot be told apart for
        sure (git failed, e.g. an unborn HEAD, or odd paths): the caller asks on its own."""
        return cls.discovering_with_tips(cwd)()

    @classmethod
    def discovering_with_tips(
        cls, cwd: Path | None = None
    ) -> Callable[[], tuple[RepoPaths, str | None]]:
        """:meth:`discover_with_tips` with its git started now: call what it returns for
        the answer, having done other work meanwhile (``log`` loads its modules)."""
        here = Path(os.path.abspath(cwd or os.getcwd()))
        try:
            started = subprocess.Popen(
                ["git", *DISCOVER, *ALIVE_TIPS[1:]],
                cwd=here,
                env=git_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise RepositoryProblem(NO_GIT) from None

        def answer() -> tuple[RepoPaths, str | None]:
            out, err = started.communicate()
            done = subprocess.CompletedProcess(started.args, started.returncode, out, err)
            return cls._with_tips(here, cwd, done)

        return answer

    @classmethod
    def _with_tips(
        cls, here: Path, cwd: Path | None, proc: subprocess.CompletedProcess[bytes]
    ) -> tuple[RepoPaths, str | None]:
        if proc.returncode != 0:
            return cls.discover(cwd), None
        paths = cls.from_rev_parse(here, proc)
        lines = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
        tips = [line for line in lines[3:] if line]
        # DISCOVER prints three lines; a newline inside a path would shift them.
        sure = "\n" not in str(here) and len(lines) >= 4 and lines[1] in ("true", "false")
        if not sure or not all(t == "HEAD" or HEX_OID_RE.match(t) for t in tips):
            return paths, None
        return paths, "".join(f"{t}\n" for t in tips)

    @classmethod
    def from_rev_parse(cls, here: Path, proc: subprocess.CompletedProcess[bytes]) -> RepoPaths:
        """The repository containing ``here``, from what ``git`` :data:`DISCOVER` said there
        (a caller may start it early and do other work meanwhile)."""
        lines = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
        if proc.returncode != 0 or len(lines) < 2:
            raise RepositoryProblem(
                f"not a git repository (or any parent up to the root): {here}",
                "run git prov inside a git repository, or create one with `git init`",
            )
        common = Path(lines[0])
        inside = lines[1] == "true"
        prefix = lines[2] if inside and len(lines) > 2 else ""
        workdir = None
        if inside:
            depth = len([p for p in prefix.split("/") if p])
            workdir = Path(os.path.normpath(os.path.join(here, *([".."] * depth))))
        refuse_reftable(common)
        return cls(common, workdir, prefix, here)

    @classmethod
    def of_repo(cls, repo: Any) -> RepoPaths:
        """The paths of an open :class:`~git_prov.store.repo.GitRepo`."""
        workdir = repo.workdir
        here = Path(os.path.abspath(os.getcwd()))
        prefix = ""
        if workdir is not None:
            with contextlib.suppress(ValueError):
                rel = here.relative_to(workdir).as_posix()
                prefix = "" if rel == "." else rel + "/"
        return cls(Path(repo.common_dir), workdir, prefix, Path(workdir or repo.git_dir))

    @property
    def prov_dir(self) -> Path:
        """Local caches: ``<git common dir>/prov`` (created if needed)."""
        path = self.common_dir / PROV_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def git(self, *args: str, input: bytes | None = None) -> bytes:
        """Run ``git args…`` here and return its stdout; RepositoryProblem on failure."""
        return run_git(self.cwd, args, input=input).stdout


def read_ref(paths: RepoPaths, name: str) -> str | None:
    """The object id a ref points at, or None — read from the ref files (no git process).

    Loose refs win over ``packed-refs`` as in git; anything unusual (a symbolic ref) is
    asked of git itself.
    """
    common = paths.common_dir
    try:
        text = (common / name).read_bytes().decode("ascii", "replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        text = None
    except OSError:
        text = ""
    if text is not None:
        if HEX_OID_RE.match(text):
            return text
        return _ref_from_git(paths, name)
    try:
        packed = (common / "packed-refs").read_bytes()
    except FileNotFoundError:
        return None
    needle = b" " + name.encode() + b"\n"
    at = packed.find(needle)
    while at != -1:
        start = packed.rfind(b"\n", 0, at) + 1
        oid = packed[start:at].decode("ascii", "replace")
        if HEX_OID_RE.match(oid):
            return oid
        at = packed.find(needle, at + 1)
    if not packed.endswith(b"\n") and packed.endswith(needle[:-1]):
        return _ref_from_git(paths, name)
    return None


def _ref_from_git(paths: RepoPaths, name: str) -> str | None:
    proc = run_git(paths.cwd, ["rev-parse", "--verify", "-q", name + "^{commit}"], check=False)
    value = proc.stdout.decode().strip()
    return value if proc.returncode == 0 and HEX_OID_RE.match(value) else None

"""The repository as sharing sees it, through the git binary: where it is, its configuration
and the ledger refs (:class:`SyncRepo`, :func:`read_refs`), and ancestry tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from git_prov.errors import (
    CorruptLedger,
    RepositoryProblem,
)
from git_prov.store.gitcli import (
    PROV_DIR,
    finish_git,
    prov_dir,
    refuse_reftable,
    run_git,
    start_git,
)

if TYPE_CHECKING:
    from pathlib import Path

    from git_prov.store.repo import GitRepo

# The same names as git_prov.store.ledger (not imported: that module loads pygit2).
NOTES_REF = "refs/notes/prov"
OBJECTS_REF = "refs/prov/objects"
DISPLAY_REF = "refs/notes/prov-log"  # local only: the `git log` display


# Set in the environment of every git we start; the pre-push hook does nothing under it.
HOOK_GUARD_ENV = "GIT_PROV_IN_PUSH"


_CONFIG_KEYS = (
    r"^(remote\..+\.(url|pushurl)|branch\..+\.remote|prov\.synctimeout|notes\.displayref)$"
)
# LC_ALL=C: we read git's messages. The guard keeps our pre-push hook out of our pushes.
_GIT_ENV = {"LC_ALL": "C", "LANGUAGE": "C", HOOK_GUARD_ENV: "1"}
_REF_FORMAT = "--format=%(objectname) %(objecttype) %(tree) %(refname)"
# What an operation reads first: the ledger refs and every remote's tracking copies.
_LEDGER_PATTERNS = (NOTES_REF, OBJECTS_REF, "refs/notes/remotes/", "refs/prov/remotes/")
_WHERE = (
    "rev-parse",
    "--path-format=absolute",
    "--git-dir",
    "--git-common-dir",
    "--show-toplevel",
    "--symbolic-full-name",
    "HEAD",
)


class SyncRepo:
    """A repository as sharing sees it: the ``git`` binary for refs, transport and
    counting, and a pygit2 :class:`~git_prov.store.repo.GitRepo` opened only when a merge
    needs one (:meth:`full`).

    Open one with :meth:`open` from a path, or wrap an open ``GitRepo``. Every function of
    this module takes either (or a path).
    """

    # (Plain classes, not dataclasses, for what every start-up defines: it is cheaper. The
    # paths are kept as strings, and made Paths only when asked for: pathlib is not needed
    # on the common path, and importing it costs a sync's start-up ~5 ms.)
    def __init__(
        self,
        git_dir: StrPath,
        common_dir: StrPath,
        workdir: StrPath | None,
        branch: str | None,
        *,
        full: GitRepo | None = None,
        config: dict[str, list[str]] | None = None,
    ):
        self._git_dir = os.fspath(git_dir)
        self._common_dir = os.fspath(common_dir)
        self._workdir = os.fspath(workdir) if workdir is not None else None
        self._cwd = self._workdir or self._git_dir  # where git runs
        self.branch = branch  # the checked-out branch's short name; None when detached
        self._full = full
        self._config = config
        # (old tree, new tree) → (runs gained, runs lost), as counted in this session
        self._diffs: dict[tuple[str, str], tuple[int, int] | None] = {}
        # notes tree → the objects it holds notes of, as a whole count listed them
        self._annotated: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"SyncRepo({self._cwd})"

    @property
    def git_dir(self) -> Path:
        """The git directory (``.git``, or a worktree's)."""
        from pathlib import Path

        return Path(self._git_dir)

    @property
    def common_dir(self) -> Path:
        """The git directory worktrees share (``git rev-parse --git-common-dir``)."""
        from pathlib import Path

        return Path(self._common_dir)

    @property
    def workdir(self) -> Path | None:
        """The working tree's top directory; None in a bare repository."""
        from pathlib import Path

        return Path(self._workdir) if self._workdir is not None else None

    @classmethod
    def open(cls, target: RepoLike) -> SyncRepo:
        """A SyncRepo for ``target``: a path inside a repository, a ``GitRepo`` or a
        SyncRepo (returned as it is). Repositories the quick look cannot read (bare, no
        commit yet, not a repository) are opened through pygit2, which says clearly what
        is wrong with them; a reftable repository is refused
        (:func:`~git_prov.store.gitcli.refuse_reftable`)."""
        return cls._open(target)[0]

    @classmethod
    def _open(cls, target: RepoLike) -> tuple[SyncRepo, dict[str, Tip] | None]:
        """:meth:`open`, and, from a path, the refs of :data:`_LEDGER_PATTERNS` as they are
        now: where the repository is, its remotes and its ledger refs are asked at once
        (three git processes side by side), since every operation starts with all three."""
        if isinstance(target, SyncRepo):
            return target, None
        if not isinstance(target, str | os.PathLike):
            return cls._wrap(target), None
        path = os.fspath(target)
        jobs = [
            start_git(path, _WHERE),
            start_git(path, ("config", "-z", "--get-regexp", _CONFIG_KEYS)),
            start_git(path, ("for-each-ref", _REF_FORMAT, *_LEDGER_PATTERNS), env=_GIT_ENV),
        ]
        where, config, refs = (finish_git(job) for job in jobs)
        lines = where.stdout.decode(errors="replace").splitlines()
        if where.returncode != 0 or len(lines) != 4:
            return cls._wrap(_open_full(path)), None
        head = lines[3]
        repo = cls(
            git_dir=os.path.realpath(lines[0]),
            common_dir=os.path.realpath(lines[1]),
            workdir=os.path.realpath(lines[2]),
            branch=head.removeprefix("refs/heads/") if head.startswith("refs/heads/") else None,
            config=_parse_config(config.stdout),
        )
        refuse_reftable(repo._common_dir)
        return repo, _parse_refs(refs.stdout, None) if refs.returncode == 0 else None

    @classmethod
    def _wrap(cls, repo: GitRepo) -> SyncRepo:
        return cls(repo.git_dir, repo.common_dir, repo.workdir, repo.branch_name(), full=repo)

    @property
    def prov_dir(self) -> Path:
        """Local caches: ``<git common dir>/prov``."""
        return prov_dir(self.common_dir)

    def _cache_file(self, name: str) -> str:
        """``<git common dir>/prov/<name>`` (:attr:`prov_dir`, without pathlib)."""
        folder = os.path.join(self._common_dir, PROV_DIR)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the git binary on this repository (RepositoryProblem on failure if
        ``check``), as ``GitRepo.git`` does."""
        return run_git(self._cwd, args, input=input, check=check, env=env)

    def full(self) -> GitRepo:
        """The pygit2-backed repository (opened on first use)."""
        if self._full is None:
            self._full = _open_full(self._git_dir)
        return self._full

    def config(self) -> dict[str, list[str]]:
        """The configuration sharing needs (remote URLs, branch upstreams), read once."""
        if self._config is None:
            proc = self.git("config", "-z", "--get-regexp", _CONFIG_KEYS, check=False)
            self._config = _parse_config(proc.stdout)
        return self._config


def _parse_config(output: bytes) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for item in output.decode(errors="replace").split("\0"):
        key, _, value = item.partition("\n")
        if key:
            values.setdefault(key, []).append(value)
    return values


# What every function here takes: a path inside a repository, or an open repository.
RepoLike: TypeAlias = "SyncRepo | GitRepo | str | os.PathLike[str]"
StrPath: TypeAlias = "str | os.PathLike[str]"


def _open_full(path: str) -> GitRepo:
    from git_prov.store.repo import open_repo

    return open_repo(path)


def _git(
    repo: SyncRepo, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return repo.git(*args, input=input, check=False, env=_GIT_ENV)


class Tip(NamedTuple):
    """Where a ref points: a commit and its tree (None when the ref names no commit)."""

    commit: str
    tree: str | None


def read_refs(repo: SyncRepo, names: Iterable[str]) -> dict[str, Tip]:
    """The refs of ``names`` that exist, in one ``git for-each-ref``."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}  # (no pattern at all would list every ref)
    proc = _git(repo, "for-each-ref", _REF_FORMAT, *wanted)
    if proc.returncode != 0:
        raise RepositoryProblem(
            "cannot read the ledger refs: "
            + (proc.stderr.decode(errors="replace").strip() or "git for-each-ref failed")
        )
    return _parse_refs(proc.stdout, wanted)


def _parse_refs(output: bytes, wanted: Sequence[str] | None) -> dict[str, Tip]:
    found: dict[str, Tip] = {}
    for line in output.decode().splitlines():
        parts = line.split(" ")
        if len(parts) == 4 and (wanted is None or parts[3] in wanted):
            found[parts[3]] = Tip(parts[0], parts[2] if parts[1] == "commit" else None)
    return found


def _refs_of(
    repo: SyncRepo, names: Iterable[str], opened: Mapping[str, Tip] | None
) -> dict[str, Tip]:
    """``names`` from the refs read while opening (:meth:`SyncRepo._open`), else read now."""
    if opened is None:
        return read_refs(repo, names)
    return {name: opened[name] for name in names if name in opened}


def _ledger_tip(refs: Mapping[str, Tip], ref: str) -> Tip | None:
    """A local ledger ref from ``refs``; a clear error when it names no commit."""
    tip = refs.get(ref)
    if tip is not None and tip.tree is None:
        raise CorruptLedger(
            f"{ref} does not point at a commit", f"inspect it with `git show {ref}`"
        )
    return tip


def _descends(repo: SyncRepo, commit: str, ancestor: str) -> bool:
    """True when ``ancestor`` is reachable from ``commit`` (False when git cannot tell)."""
    return _git(repo, "merge-base", "--is-ancestor", ancestor, commit).returncode == 0


def _contains(repo: SyncRepo, ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """True when every commit reachable from ``theirs`` is reachable from ``ours``: one
    ``rev-list`` for both ledger refs (their histories never share a commit: kept commits
    are run commits, never ledger commits)."""
    if not theirs:
        return True
    if not ours:
        return False
    proc = _git(repo, "rev-list", "-n", "1", *theirs, "--not", *ours, "--")
    return proc.returncode == 0 and not proc.stdout.strip()

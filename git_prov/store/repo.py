"""Opening a repository, and the two ways we talk to git: pygit2 for local objects and refs,
the ``git`` binary for whatever needs git's own semantics (status, rev-list, transport)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

import pygit2

from git_prov.errors import CorruptLedger, RepositoryProblem
from git_prov.model.frozen import MutableFields, mutable_fields
from git_prov.model.ids import is_hex_oid
from git_prov.store.gitcli import prov_dir, refuse_reftable, run_git
from git_prov.store.loose import write_object
from git_prov.store.trees import tree_listing

# The object types callers outside store/ name in annotations (they never call pygit2).
Commit = pygit2.Commit
Oid = pygit2.Oid
Tree = pygit2.Tree
Repository = pygit2.Repository
# What pygit2 raises for a damaged repository (beside KeyError and ValueError).
GitError = pygit2.GitError


class ObjectVanished(CorruptLedger):
    """An object just written, or one it names, is not in the repository (deleted before
    any ref named it by a concurrent ``git gc --prune=now``, or a damaged repository)."""


def vanished(exc: BaseException) -> ObjectVanished | None:
    """``exc`` (from pygit2 building or reading objects) as an :class:`ObjectVanished`,
    when it says an object is missing; None for anything else."""
    import re

    said = str(exc)
    if not (isinstance(exc, KeyError) or "not found" in said or "invalid object" in said):
        return None
    found = re.search(r"[0-9a-f]{40,64}", said)
    what = f"git object {found.group(0)[:12]}" if found else "a git object"
    return ObjectVanished(
        f"{what} is missing (deleted while git prov used it by a concurrent git gc "
        "--prune=now, or a damaged repository)",
        "run it again; if it persists, run git fsck and git prov fsck",
    )


FALLBACK_NAME = "git-prov"
FALLBACK_EMAIL = "git-prov@localhost"


@mutable_fields
class GitRepo(MutableFields):
    """An open repository: the pygit2 handle plus the paths git-prov needs."""

    pygit: pygit2.Repository
    git_dir: Path
    common_dir: Path
    workdir: Path | None
    _signature: pygit2.Signature | None = field(default=None, repr=False)

    def __init__(
        self,
        pygit: pygit2.Repository,
        git_dir: Path,
        common_dir: Path,
        workdir: Path | None,
        _signature: pygit2.Signature | None = None,
    ) -> None:
        self.pygit = pygit
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.workdir = workdir
        self._signature = _signature

    @property
    def root(self) -> Path:
        """The working tree root; raises for a bare repository."""
        if self.workdir is None:
            raise RepositoryProblem(
                f"{self.git_dir} is a bare repository",
                "run this inside a working tree (a clone), not in a bare repository",
            )
        return self.workdir

    @property
    def prov_dir(self) -> Path:
        """Local, rebuildable caches and locks: ``<git common dir>/prov``."""
        return prov_dir(self.common_dir)

    def reopened(self) -> GitRepo:
        """This repository through a new libgit2 handle: none of the objects and pack files
        this one has cached (a concurrent prune may have deleted them since)."""
        try:
            pygit = pygit2.Repository(self.pygit.path)
        except pygit2.GitError as exc:
            raise RepositoryProblem(
                f"cannot open the repository at {self.git_dir}: {exc}"
            ) from None
        return GitRepo(pygit, self.git_dir, self.common_dir, self.workdir, self._signature)

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the git binary on this repository and return the finished process."""
        return run_git(cwd or self.workdir or self.git_dir, args, input=input, check=check, env=env)

    def signature(self) -> pygit2.Signature:
        """Who writes ledger commits: the user's git identity, or a neutral fallback."""
        if self._signature is None:
            name = os.environ.get("GIT_COMMITTER_NAME") or _config(self.pygit, "user.name")
            email = os.environ.get("GIT_COMMITTER_EMAIL") or _config(self.pygit, "user.email")
            self._signature = pygit2.Signature(name or FALLBACK_NAME, email or FALLBACK_EMAIL)
        return self._signature

    @property
    def head_is_unborn(self) -> bool:
        """Whether HEAD names a branch with no commit yet (a fresh ``git init``)."""
        return bool(self.pygit.head_is_unborn)

    def head_commit(self) -> pygit2.Commit:
        """The commit HEAD points at; a clear error when there is none yet."""
        try:
            if self.pygit.head_is_unborn:
                raise RepositoryProblem(
                    "this repository has no commits yet",
                    "commit your code first (git add … && git commit), then record runs",
                )
            target = self.pygit.head.peel(pygit2.Commit)
        except pygit2.GitError as exc:
            raise RepositoryProblem(f"cannot read HEAD: {exc}") from None
        return target

    def resolve_commit(self, spec: str) -> str | None:
        """The full id of the commit ``spec`` (a revision) names, or None."""
        try:
            commit = self.pygit.revparse_single(spec).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            return None
        return str(commit.id)

    def has_object(self, oid: str) -> bool:
        """Whether the object ``oid`` is in this repository (False for a malformed id). A
        full id is looked up without reading the object (a 20k-entry manifest is not
        inflated to learn that it is there)."""
        try:
            if is_hex_oid(oid):
                return bool(self.pygit.odb.exists(oid))
            return self.pygit.get(oid) is not None
        except (ValueError, pygit2.GitError):
            return False

    def blob_data(self, oid: str) -> bytes | None:
        """The contents of blob ``oid``; None when this repository has no such blob (or
        the id is malformed)."""
        try:
            obj = self.pygit.get(oid)
        except (ValueError, pygit2.GitError):
            return None
        return obj.data if isinstance(obj, pygit2.Blob) else None

    def commit_parents(self, commit_hex: str) -> list[str] | None:
        """The parent ids of commit ``commit_hex``; None when it is not a commit here."""
        commit = self.pygit.get(commit_hex)
        if not isinstance(commit, pygit2.Commit):
            return None
        return [str(p) for p in commit.parent_ids]

    def tree_listing(self, tree: pygit2.Tree | pygit2.Oid | str) -> list[tuple[str, str, str]]:
        """The entries of a tree (given as a tree or its id): (name, type — ``tree``,
        ``blob`` or ``commit`` —, object id hex), in tree order. KeyError when it is not a
        tree here."""
        return tree_listing(self.pygit, tree)

    def config_value(self, key: str) -> str | None:
        """A git configuration value (every scope, as git reads it), or None when unset,
        empty or unreadable."""
        try:
            value = self.pygit.config[key]
        except (KeyError, pygit2.GitError, ValueError):
            return None
        return str(value) if value else None

    def config_flag(self, key: str) -> bool:
        """A boolean git configuration value; False when unset or not a boolean."""
        try:
            return bool(self.pygit.config.get_bool(key))
        except (KeyError, pygit2.GitError, ValueError):
            return False

    def commit_dated_like(self, tree_hex: str, parent: pygit2.Commit, message: str) -> str:
        """A new commit of tree ``tree_hex`` on ``parent``, by :meth:`signature` but with the
        parent's committer date as both dates: the same tree on the same parent always
        makes the same commit (a dirty tree's snapshot is stored once). Its id."""
        sig = self.signature()
        fixed = pygit2.Signature(
            sig.name, sig.email, parent.committer.time, parent.committer.offset
        )
        try:
            oid = write_object(
                self.pygit.create_commit,
                None,
                fixed,
                fixed,
                message,
                pygit2.Oid(hex=tree_hex),
                [parent.id],
            )
        except (KeyError, pygit2.GitError) as exc:
            raise vanished(exc) or exc from None
        return str(oid)

    def merge_disjoint_trees(self, a_hex: str, b_hex: str) -> str | None:
        """One tree holding the files of trees ``a_hex`` and ``b_hex`` (disjoint sets of
        files); None when a path is a file in one and a directory in the other."""
        from git_prov.store.trees import merge_disjoint_trees

        try:
            merged = write_object(
                merge_disjoint_trees, self.pygit, pygit2.Oid(hex=a_hex), pygit2.Oid(hex=b_hex)
            )
        except (KeyError, pygit2.GitError) as exc:
            raise vanished(exc) or exc from None
        return None if merged is None else str(merged)

    def branch_name(self) -> str | None:
        """The checked-out branch's short name, or None on a detached HEAD."""
        if self.pygit.head_is_detached or self.pygit.head_is_unborn:
            return None
        return self.pygit.head.shorthand


def _config(repo: pygit2.Repository, key: str) -> str | None:
    try:
        value = repo.config[key]
    except (KeyError, pygit2.GitError):
        return None
    return str(value) if value else None


def open_repo(path: Path | str | None = None) -> GitRepo:
    """Find and open the repository containing ``path`` (default: the current directory)."""
    start = Path(path) if path is not None else Path.cwd()
    env_git_dir = os.environ.get("GIT_DIR")
    if env_git_dir and path is None:
        found: str | None = env_git_dir
    else:
        try:
            found = pygit2.discover_repository(str(start))
        except pygit2.GitError as exc:
            raise RepositoryProblem(f"cannot open a repository at {start}: {exc}") from None
    if not found:
        raise RepositoryProblem(
            f"not a git repository (or any parent up to the root): {start}",
            "run git prov inside a git repository, or create one with `git init`",
        )
    refuse_reftable(_common_dir(Path(found)))
    try:
        repo = pygit2.Repository(found)
    except pygit2.GitError as exc:
        raise RepositoryProblem(f"cannot open the repository at {found}: {exc}") from None
    git_dir = Path(repo.path).resolve()
    common = _common_dir(git_dir)
    workdir = Path(repo.workdir).resolve() if repo.workdir else None
    return GitRepo(pygit=repo, git_dir=git_dir, common_dir=common, workdir=workdir)


def _common_dir(git_dir: Path) -> Path:
    commondir_file = git_dir / "commondir"
    if commondir_file.is_file():
        target = Path(commondir_file.read_text().strip())
        return (git_dir / target).resolve() if not target.is_absolute() else target.resolve()
    return git_dir

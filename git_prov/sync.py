"""Sharing provenance with remotes: fetch, push, sync, and the opt-in for plain git.

Transport is always the ``git`` binary (it honours credential helpers, and its push status
is what the server said). The refs that travel:

* ``refs/prov/objects`` (manifests, logs, kept commits) and ``refs/notes/prov`` (the runs),
  pushed objects first, in one atomic push, never forced;
* fetched only into tracking copies, ``refs/prov/remotes/<remote>/objects`` and
  ``refs/notes/remotes/<remote>/prov``, then union-merged into the local ledger
  (:mod:`git_prov.store.merge`). Nothing is ever fetched straight into a ledger ref.

Every rejected push (someone pushed first, a lost ref lock, a stale old value, a declining
hook) is answered by fetch + merge + retry with fully jittered backoff, until the push lands or
a time bound (:func:`sync_timeout`, 60 s by default) is reached.
After a merge brings runs, the ``git log`` display is refreshed for the commits whose notes
changed, and (``fetch``/``sync``) :func:`git_prov.rewrite.remap` attaches arrived runs
whose commits were rewritten elsewhere (a hosting service's squash merge).

Start-up matters here: ``git prov sync`` rides on a ``git fetch``/``git push`` that take
tens of milliseconds, and importing pygit2 alone costs more. So this module reads and
moves refs, pushes, fetches and counts runs with the git binary (:class:`SyncRepo`), and
loads pygit2 (through :mod:`git_prov.store`) only when a merge is needed. The common cases
need none: a push git accepts as a fast-forward proves the remote held nothing we lack,
and a fetch that brings nothing we do not already contain has nothing to merge.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from git_prov.errors import (
    CorruptLedger,
    ProvError,
    RemoteProblem,
    RepositoryProblem,
    UsageProblem,
)
from git_prov.model.notepath import note_commit
from git_prov.store.gitcli import (
    PROV_DIR,
    finish_git,
    is_url_remote,
    prov_dir,
    refuse_reftable,
    remote_key,
    run_git,
    start_git,
    stream_blobs,
)

if TYPE_CHECKING:
    from pathlib import Path

    from git_prov.rewrite import RemapMatch
    from git_prov.store.repo import GitRepo

# The same names as git_prov.store.ledger (not imported: that module loads pygit2).
NOTES_REF = "refs/notes/prov"
OBJECTS_REF = "refs/prov/objects"
DISPLAY_REF = "refs/notes/prov-log"  # local only: the `git log` display
# A rejected push is retried until it lands or DEFAULT_TIMEOUT seconds have passed (git config
# prov.syncTimeout, --timeout), and at most --attempts times when that is given.
DEFAULT_TIMEOUT = 60.0
TIMEOUT_KEY = "prov.synctimeout"  # (git config --get-regexp prints keys in lower case)
FETCH_ATTEMPTS = 4
BACKOFF_BASE = 0.05  # seconds; doubled per attempt, capped, fully jittered
BACKOFF_CAP = 2.0
# Set in the environment of every git we start; the pre-push hook does nothing under it.
HOOK_GUARD_ENV = "GIT_PROV_IN_PUSH"
MERGE_MESSAGE = "git-prov: merge provenance from {remote}"
RUN_COUNT_CACHE = "run-counts"
RUN_COUNT_KEPT = 4  # trees whose run count is remembered
# The JSON of a run record always holds this (canonical JSON: no spaces, sorted keys); the
# same test as git_prov.store.merge.count_run_lines, which a test keeps in step.
RUN_MARK = '"kind":"run"'
_CONFIG_KEYS = r"^(remote\..+\.(url|pushurl)|branch\..+\.remote|prov\.synctimeout)$"
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


def tracking_refs(remote: str) -> dict[str, str]:
    """Local ledger ref → the tracking ref holding ``remote``'s copy of it (a URL's go
    under a name made from it: :func:`~git_prov.store.gitcli.remote_key`)."""
    key = remote_key(remote)
    return {
        OBJECTS_REF: f"refs/prov/remotes/{key}/objects",
        NOTES_REF: f"refs/notes/remotes/{key}/prov",
    }


def fetch_refspecs(remote: str) -> list[str]:
    """The ``remote.<r>.fetch`` refspecs that make a plain ``git fetch`` bring provenance.

    They are globs (``prov*``) on purpose: git fails a whole fetch when an exact configured
    refspec names a ref the remote lacks, and a remote without provenance is normal. The
    glob would also match the local-only ``git log`` display ref (``refs/notes/prov-log``)
    on a remote that a ``git push --mirror`` gave it: a negative refspec (git ≥ 2.29)
    leaves it out.
    """
    return [
        f"+{OBJECTS_REF}*:refs/prov/remotes/{remote}/objects*",
        f"+{NOTES_REF}*:refs/notes/remotes/{remote}/prov*",
        f"^{DISPLAY_REF}",
    ]


# ---- the repository, through the git binary ---------------------------------------------------


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


# ---- results ---------------------------------------------------------------------------------
# Named tuples, not dataclasses: importing dataclasses (it loads inspect) and building four
# would add ~14 ms to the start-up of every sync.


class FetchResult(NamedTuple):
    """What ``fetch`` did: runs new to the local ledger, and what to warn about.

    ``rewritten`` names the remote's ledger refs that were force-rewritten since the last
    fetch (they were still union-merged: no local run is dropped); ``rewritten_here``
    those whose tracking copy was rewritten in this repository instead (git filter-repo
    rewrites every ref), so that the remote's, which did not change, no longer descends
    from it. ``remote_total`` counts the runs the remote's notes hold. ``remapped`` lists the
    arrived runs that :func:`git_prov.rewrite.remap` attached to the commits their code
    was copied to; ``remap_problem`` says why that step failed (the fetch itself did not).
    """

    remote: str
    had_provenance: bool
    runs_added: int
    runs_total: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    remapped: tuple[RemapMatch, ...] = ()
    remap_problem: str | None = None
    rewritten_here: tuple[str, ...] = ()
    remote_total: int = 0


class PushResult(NamedTuple):
    """What ``push`` did. ``runs_fetched`` counts runs merged in while retrying."""

    remote: str
    had_provenance: bool
    runs_pushed: int
    runs_total: int
    attempts: int
    up_to_date: bool
    runs_fetched: int = 0
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    # git-LFS objects of the pushed commits (snapshots): sent, and not in the local store
    lfs_uploaded: int = 0
    lfs_missing: tuple[str, ...] = ()
    rewritten_here: tuple[str, ...] = ()


class SyncResult(NamedTuple):
    """What ``sync`` (fetch + merge + push, retried) did; ``remapped`` as for fetch."""

    remote: str
    had_provenance: bool
    runs_fetched: int
    runs_pushed: int
    runs_total: int
    attempts: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    remapped: tuple[RemapMatch, ...] = ()
    remap_problem: str | None = None
    lfs_uploaded: int = 0
    lfs_missing: tuple[str, ...] = ()
    rewritten_here: tuple[str, ...] = ()


class HookResult(NamedTuple):
    """What the pre-push hook did: pushed (``pushed``), skipped (``skipped`` says why), or
    failed without blocking the user's push (``warning``)."""

    pushed: PushResult | None = None
    skipped: str | None = None
    warning: str | None = None


# ---- remotes ---------------------------------------------------------------------------------


def remote_names(repo: RepoLike) -> list[str]:
    """The configured remotes (those with a URL, as git and libgit2 list them)."""
    names: list[str] = []
    for key in SyncRepo.open(repo).config():
        if key.startswith("remote.") and key.endswith((".url", ".pushurl")):
            names.append(key[len("remote.") :].rpartition(".")[0])
    return [name for name in dict.fromkeys(names) if name]


def resolve_remote(repo: RepoLike, remote: str | None = None) -> str:
    """The remote to use: the one named, else the current branch's upstream remote, else
    ``origin``, else the only remote. A clear RemoteProblem when there is none.

    As git does, a URL or the path of a repository may stand for a remote: it comes back
    as the URL, or the path made absolute (from the current directory)."""
    sync_repo = SyncRepo.open(repo)
    names = remote_names(sync_repo)
    if remote is not None:
        if remote in names:
            return remote
        if is_url_remote(remote):
            return remote
        looks_like_path = "/" in remote or remote in (".", "..") or remote.endswith(".git")
        if looks_like_path and os.path.isdir(remote):
            return os.path.abspath(remote)
        known = f" (remotes here: {', '.join(names)})" if names else ""
        raise RemoteProblem(
            f"no remote named {remote!r}{known}, nor a repository at that path",
            f"give a remote's name, URL or path, or add it with `git remote add NAME {remote}`",
        )
    if sync_repo.branch:
        upstream = sync_repo.config().get(f"branch.{sync_repo.branch}.remote", [])
        if upstream and upstream[-1] in names:
            return upstream[-1]
    if "origin" in names:
        return "origin"
    if len(names) == 1:
        return names[0]
    if not names:
        raise RemoteProblem(
            "this repository has no remote to share provenance with",
            "add one with `git remote add origin URL`",
        )
    raise RemoteProblem(
        f"several remotes ({', '.join(names)}) and none is the upstream or origin",
        "name one, e.g. `git prov sync REMOTE`",
    )


_UNREACHABLE = (
    "could not resolve host",
    "connection refused",
    "unable to connect",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "unable to access",
    "could not connect",
)
_NO_REPOSITORY = (
    "does not appear to be a git repository",
    "repository not found",
    "not found",
    "no such repository",
    "not exported",
    "no such file",
)
_DENIED = (
    "permission denied",
    "authentication failed",
    "access denied",
    "returned error: 403",
    "returned error: 401",
    "could not read username",
    "terminal prompts disabled",
    "unauthorized",
)


def _transport_problem(action: str, remote: str, stderr: bytes) -> RemoteProblem:
    """A RemoteProblem for a git fetch/push that failed before any ref was considered."""
    text = stderr.decode(errors="replace").strip()
    lowered = text.lower()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    detail = next(
        (ln for ln in lines if ln.lower().startswith(("fatal", "error"))),
        lines[-1] if lines else "no message",
    )
    detail = detail.removeprefix("fatal: ").removeprefix("error: ")
    if "shallow" in lowered:
        return _shallow_problem(remote, detail)
    if any(word in lowered for word in _DENIED):
        return RemoteProblem(
            f"{action} {remote} was refused: {detail}",
            "check that you have access to it and that your credentials "
            "work (try `git fetch " + remote + "`)",
        )
    if any(word in lowered for word in _UNREACHABLE):
        return RemoteProblem(
            f"cannot reach {remote}: {detail}",
            f"check the network and the URL (`git remote get-url {remote}`)",
        )
    if any(word in lowered for word in _NO_REPOSITORY):
        return RemoteProblem(
            f"{remote} is not a git repository that can be reached: {detail}",
            f"check the URL: `git remote get-url {remote}`",
        )
    return RemoteProblem(
        f"{action} {remote} failed: {detail}", f"check that plain `git fetch {remote}` works"
    )


def _shallow_problem(remote: str, detail: str) -> RemoteProblem:
    return RemoteProblem(
        f"{remote} refused provenance from this shallow clone: {detail}",
        "the commits your runs name are not all here; run `git fetch --unshallow`, then sync again",
    )


# ---- fetch -----------------------------------------------------------------------------------


class _Fetched(NamedTuple):
    had: bool  # the remote has provenance
    rewritten: list[str]  # ledger refs the remote force-rewrote
    rewritten_here: list[str]  # ledger refs whose tracking copy was rewritten here
    refs: dict[str, Tip]  # the local ledger refs and their tracking copies afterwards


def _fetch_tracking(
    repo: SyncRepo, remote: str, opened: Mapping[str, Tip] | None = None
) -> _Fetched:
    """Fetch the remote's ledger refs into their tracking refs, in one round trip when the
    remote has provenance."""
    tracking = tracking_refs(remote)
    before = _refs_of(repo, tracking.values(), opened)
    base = ["fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", remote]
    specs = [f"+{src}:{dst}" for src, dst in tracking.items()]
    proc = _git_fetch(repo, base, specs)
    if proc.returncode != 0:
        if b"couldn't find remote ref" not in proc.stderr:
            raise _transport_problem("fetching provenance from", remote, proc.stderr)
        # The remote lacks one or both refs (no provenance yet, or a partial push), or
        # hides them from fetch.
        present = _remote_ledger_refs(repo, remote)
        _refuse_hidden_refs(repo, remote, present, before)
        for src, dst in tracking.items():
            if src not in present and dst in before:
                # A copy of a ref the remote no longer has: forget it (ours stays intact).
                _git(repo, "update-ref", "-d", dst, before[dst].commit)
        specs = [f"+{src}:{dst}" for src, dst in tracking.items() if src in present]
        if specs:
            proc = _git_fetch(repo, base, specs)
            if proc.returncode != 0:
                raise _transport_problem("fetching provenance from", remote, proc.stderr)
    after = read_refs(repo, [*tracking, *tracking.values()])
    rewritten: list[str] = []
    here: list[str] = []
    moved = {
        src: (old.commit, new.commit)
        for src, dst in tracking.items()
        if (old := before.get(dst)) is not None
        and (new := after.get(dst)) is not None
        and old.commit != new.commit
    }
    # One rev-list answers "did both only move forward?" (the two refs' histories share no
    # commit, so an old tip reachable from either new one is reachable from its own).
    if moved and not _contains(
        repo, [n for _, n in moved.values()], [o for o, _ in moved.values()]
    ):
        for src, (old_commit, new_commit) in moved.items():
            if not _descends(repo, new_commit, old_commit):
                dst = tracking[src]
                (here if _filter_repo_made(repo, dst, old_commit) else rewritten).append(src)
    return _Fetched(any(dst in after for dst in tracking.values()), rewritten, here, after)


def _filter_repo_made(repo: SyncRepo, ref: str, commit: str) -> bool:
    """Whether git filter-repo, run in this repository, set ``ref`` to ``commit`` (its
    ``filter-repo/ref-map``: a header, then ``old new ref`` per line)."""
    try:
        with open(os.path.join(repo._common_dir, "filter-repo", "ref-map")) as file:
            lines = file.read().splitlines()
    except OSError:
        return False
    return any(
        len(parts) == 3 and parts[1] == commit and parts[2] == ref and parts[0] != commit
        for parts in (line.split() for line in lines[1:])
    )


_LOCAL_LOCK = ("cannot lock ref", "unable to update local ref", "could not be updated")


def _git_fetch(
    repo: SyncRepo, base: list[str], specs: list[str]
) -> subprocess.CompletedProcess[bytes]:
    # Two fetches of one clone at once (two syncs, a plain `git fetch`) can collide on the
    # tracking refs' locks: that is a local race, so try again rather than fail.
    for attempt in range(FETCH_ATTEMPTS):
        proc = _git(repo, *base, *specs)
        err = proc.stderr.decode(errors="replace").lower()
        if proc.returncode == 0 or not any(word in err for word in _LOCAL_LOCK):
            return proc
        time.sleep(_backoff(attempt + 1))
    return proc


def _refuse_hidden_refs(
    repo: SyncRepo, remote: str, present: set[str], before: Mapping[str, Tip]
) -> None:
    """Raise when ``remote`` holds a ledger ref that its fetch side does not list
    (``present``): a server whose upload-pack hides it. Asked only when there is reason
    to (the other ledger ref is there, or we had a copy of this one), with a dry-run push,
    which sends nothing."""
    commit = None
    for src, dst in tracking_refs(remote).items():
        if src in present or not (present or dst in before):
            continue
        if commit is None:  # any commit of ours: the dry run only names it
            commit = _git(repo, "rev-parse", "--verify", "-q", "HEAD").stdout.decode().strip()
        if commit and _receive_pack_has(repo, remote, src, commit):
            raise _hidden_from_fetch(remote, src)


def _fetchable(repo: SyncRepo, remote: str, ref: str) -> bool:
    """Whether ``remote``'s fetch side lists ``ref`` (after a push created it there)."""
    proc = _git(repo, "ls-remote", remote, ref)
    return proc.returncode != 0 or bool(proc.stdout.strip())  # (cannot tell: say yes)


def _remote_ledger_refs(repo: SyncRepo, remote: str) -> set[str]:
    proc = _git(repo, "ls-remote", remote, OBJECTS_REF, NOTES_REF)
    if proc.returncode != 0:
        raise _transport_problem("listing the refs of", remote, proc.stderr)
    names = {line.split("\t", 1)[1] for line in proc.stdout.decode().splitlines() if "\t" in line}
    return names & {OBJECTS_REF, NOTES_REF}


class _Merged:
    """What merging tracking refs did, summed over the refs (and over push retries)."""

    def __init__(self) -> None:
        self.merged = False  # a ledger ref moved
        self.runs_added = 0
        self.conflicts: set[str] = set()
        self.object_conflicts: set[str] = set()
        self.changed: set[str] | None = set()  # commits whose note changed; None: all


def merge_tracking(repo: RepoLike, remote: str) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Merge the remote's tracking refs (filled by ``git prov fetch`` or, once
    :func:`configure_remote` ran, by a plain ``git fetch``) into the local ledger.

    Objects first, then notes. Cheap when nothing changed (a ref lookup and an ancestry
    test, without loading pygit2). Returns (runs added, run ids in conflict, object paths
    in conflict).
    """
    merged = _merge_tracking(SyncRepo.open(repo), remote)
    return (
        merged.runs_added,
        tuple(sorted(merged.conflicts)),
        tuple(sorted(merged.object_conflicts)),
    )


def _merge_tracking(repo: SyncRepo, remote: str, refs: Mapping[str, Tip] | None = None) -> _Merged:
    """Merge ``remote``'s tracking refs into ours (``refs``: the four refs, if just read)."""
    out = _Merged()
    tracking = tracking_refs(remote)
    if refs is None:
        refs = read_refs(repo, [*tracking, *tracking.values()])
    todo = []
    for local, copy in tracking.items():  # objects first, then notes
        theirs, ours = refs.get(copy), _ledger_tip(refs, local)
        if theirs is not None and (ours is None or ours.commit != theirs.commit):
            todo.append((local, theirs, ours))
    ours_tips = [ours.commit for _, _, ours in todo if ours is not None]
    if not todo or (
        len(ours_tips) == len(todo)
        and _contains(repo, ours_tips, [theirs.commit for _, theirs, _ in todo])
    ):
        return out  # every remote commit is already in ours (we are ahead, or equal)
    # A real merge: this is where pygit2 is needed.
    from git_prov.store import merge
    from git_prov.store.ledger import Ledger

    ledger = Ledger(repo.full())
    message = MERGE_MESSAGE.format(remote=remote)
    for local, theirs, _ in todo:
        result = merge.merge_commit_into(ledger, local, theirs.commit, message=message)
        out.conflicts.update(result.conflicts)
        out.object_conflicts.update(result.object_conflicts)
        out.merged = out.merged or result.action != merge.UP_TO_DATE
        if local != NOTES_REF or result.action == merge.UP_TO_DATE:
            continue
        if result.changed is None or out.changed is None:
            out.changed = None
        else:
            out.changed.update(result.changed)
        if result.runs_added is not None:
            out.runs_added += result.runs_added
        else:  # created: every run is theirs
            out.runs_added += run_total(repo, theirs.tree)
    if out.changed is None or out.changed:
        # The `git log` display is derived from the notes: redo the lines that changed.
        ledger.refresh_display(sorted(out.changed) if out.changed is not None else None)
    return out


def fetch(repo: RepoLike, remote: str | None = None, *, remap: bool = True) -> FetchResult:
    """Fetch ``remote``'s provenance into tracking refs and union-merge it into the local
    ledger. A remote without provenance is not an error (``had_provenance`` is False).

    When runs arrived and ``remap``, orphaned runs are matched to the commits their code
    was copied to (:func:`git_prov.rewrite.remap`): a squash merge made on a hosting
    service shows up with the runs of the branch it squashed.
    """
    sync_repo, opened = SyncRepo._open(repo)
    name = resolve_remote(sync_repo, remote)
    return _fetch(sync_repo, name, remap=remap, opened=opened)


def _fetch(
    sync_repo: SyncRepo, name: str, *, remap: bool, opened: Mapping[str, Tip] | None = None
) -> FetchResult:
    had, rewritten, here, refs = _fetch_tracking(sync_repo, name, opened)
    merged = _merge_tracking(sync_repo, name, refs)
    before = refs.get(NOTES_REF)
    remapped, problem = (
        _remap_arrived(sync_repo, merged.runs_added, before) if remap else ((), None)
    )
    notes = None if merged.merged or remapped else _ledger_tip(refs, NOTES_REF)
    return FetchResult(
        remote=name,
        had_provenance=had,
        runs_added=merged.runs_added,
        runs_total=run_total(sync_repo, notes.tree if notes else None),
        conflicts=tuple(sorted(merged.conflicts)),
        object_conflicts=tuple(sorted(merged.object_conflicts)),
        rewritten=tuple(rewritten),
        remapped=remapped,
        remap_problem=problem,
        rewritten_here=tuple(here),
        remote_total=_remote_total(sync_repo, refs, tracking_refs(name)[NOTES_REF]),
    )


def _remote_total(repo: SyncRepo, refs: Mapping[str, Tip], copy: str) -> int:
    """The runs in the remote's notes, as its tracking copy ``copy`` holds them."""
    theirs, ours = refs.get(copy), refs.get(NOTES_REF)
    if theirs is None or theirs.tree is None:
        return 0
    return run_total(repo, theirs.tree, hint=ours.tree if ours else None)


def _remap_arrived(
    repo: SyncRepo, runs_added: int, before: Tip | None
) -> tuple[tuple[RemapMatch, ...], str | None]:
    """Remap after runs arrived (the notes ref was at ``before``): (attachments written,
    why it failed or None).

    :func:`git_prov.rewrite.remap` reads the whole ledger, so it runs only when an arrived
    run can be an orphan: when a note changed on a commit that this repository has and
    that no branch, remote-tracking branch, tag or HEAD reaches.
    """
    if not runs_added or not _arrived_on_unreachable(repo, before):
        return (), None
    from git_prov.rewrite import remap

    try:
        return remap(repo.full()).matched, None
    except ProvError as exc:
        return (), str(exc)


# What keeps a commit alive for remap (git_prov.rewrite.REACHABLE_REFS, and HEAD).
ALIVE_REFS = ("--branches", "--tags", "--remotes")


def _arrived_on_unreachable(repo: SyncRepo, before: Tip | None) -> bool:
    """True when the notes ref, since ``before``, changed the note of a commit this
    repository has and cannot reach from :data:`ALIVE_REFS` or HEAD."""
    now = read_refs(repo, [NOTES_REF]).get(NOTES_REF)
    if now is None or now.tree is None or (before is not None and before.tree == now.tree):
        return False
    if before is not None and before.tree is not None:
        proc = _git(repo, "diff-tree", "-r", "-z", "--name-only", before.tree, now.tree, "--")
    else:
        proc = _git(repo, "ls-tree", "-r", "-z", "--name-only", now.tree)
    if proc.returncode != 0:
        return True  # cannot tell: let remap look
    commits = {c for p in proc.stdout.decode().split("\0") if (c := note_commit(p))}
    if not commits:
        return False
    proc = _git(
        repo,
        "rev-list",
        "-n",
        "1",
        "--ignore-missing",  # commits this repository lacks are not orphans, merely elsewhere
        "--stdin",
        "--not",
        *ALIVE_REFS,
        "HEAD",
        input="".join(f"{c}\n" for c in sorted(commits)).encode(),
    )
    return proc.returncode != 0 or bool(proc.stdout.strip())


# ---- push ------------------------------------------------------------------------------------

_RACE = (
    "fetch first",
    "non-fast-forward",
    "cannot lock",
    "incorrect old value",
    "failed to update ref",
    "stale info",
    "failed to lock",
    "atomic push failed",
    "remote failed to report status",
    "unable to update local ref",
    "reference already exists",
    "already exists",
    "failed to write",
)
# git's reasons for refusing a ref update before sending it (enum ref_status in git's
# remote.h), as "atomic push failed for ref R. status: N" reports them: all mean "the remote
# moved; fetch, merge and push again".
_RACE_STATUSES = {
    2: "non-fast-forward",
    3: "already exists",
    5: "fetch first",
    6: "needs force",
    7: "stale info",
    9: "remote ref updated since checkout",
}
_ATOMIC_FAILED = re.compile(r"atomic push failed for ref \S+\. status: (?P<status>\d+)")
_REJECTED = re.compile(r"^\[(?:remote )?rejected\] \((?P<why>.*)\)$")
_STATUS_LINE = re.compile(
    r"^(?P<flag>[ +\-*!=])\t(?P<src>[^\t]*):(?P<dst>[^\t]*)\t"
    r"(?P<summary>.*)$"
)
_FAST_FORWARD = re.compile(r"^(?P<old>[0-9a-f]{4,})\.\.(?P<new>[0-9a-f]{4,})$")


class _PushOutcome(NamedTuple):
    ok: bool
    new_on_remote: bool = False  # the notes ref did not exist there before
    up_to_date: bool = False
    reason: str = ""  # why it was rejected
    race: bool = False
    atomic_unsupported: bool = False
    remote_old: Mapping[str, str] | None = None  # ref → abbreviated old id (fast-forwards)
    # refs a refused push moved anyway (git's receive-pack applies the refs of an --atomic
    # push that it does not hide when it refuses a hidden one)
    applied: tuple[str, ...] = ()
    hidden: str | None = None  # a ref the remote refused because it hides it


def _push_once(
    repo: SyncRepo,
    remote: str,
    tips: dict[str, str],
    atomic: bool,
    meanwhile: Callable[[], object] | None = None,
) -> _PushOutcome:
    """One ``git push`` of ``tips``; ``meanwhile`` runs while git talks to the remote.

    The tracking refs are named as fetch refspecs of the remote for this one command, so
    git itself sets them to what the remote accepted — as it keeps ``refs/remotes/``
    current on a push — with no second git process after it.
    """
    copies = tracking_refs(remote)
    args = [
        *(arg for ref in tips for arg in ("-c", f"remote.{remote}.fetch=+{ref}:{copies[ref]}")),
        "push",
        "--porcelain",
        "--no-verify",
        "--no-follow-tags",
        "--recurse-submodules=no",
    ]
    if atomic:
        args.append("--atomic")
    # Objects first: a note must never reach the remote before what it names.
    specs = [f"{tips[ref]}:{ref}" for ref in (OBJECTS_REF, NOTES_REF) if ref in tips]
    job = start_git(repo._cwd, (*args, remote, *specs), env=_GIT_ENV)
    if meanwhile is not None:
        meanwhile()
    proc = finish_git(job)
    err = proc.stderr.decode(errors="replace")
    if atomic and "does not support --atomic" in err:
        return _PushOutcome(False, atomic_unsupported=True)
    statuses: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        match = _STATUS_LINE.match(line)
        if match and match["dst"] in tips:
            statuses[match["dst"]] = (match["flag"], match["summary"])
    if set(statuses) != set(tips) and not any(flag == "!" for flag, _ in statuses.values()):
        # git said nothing about our refs: either it refused the update itself before
        # sending anything ("atomic push failed for ref …. status: N", which is all some
        # transports print), or it failed before (connection, access, …).
        refused = _ATOMIC_FAILED.search(err)
        if refused is not None and int(refused["status"]) in _RACE_STATUSES:
            return _PushOutcome(False, reason=_RACE_STATUSES[int(refused["status"])], race=True)
        if "shallow" in err.lower():
            raise _shallow_problem(remote, err.strip().splitlines()[-1])
        raise _transport_problem("pushing provenance to", remote, proc.stderr)
    for ref in tips:
        # Over smart HTTP git reports only the ref that failed an --atomic push; the
        # others failed with it.
        statuses.setdefault(ref, ("!", "[rejected] (atomic push failed)"))
    rejected = [(ref, summary) for ref, (flag, summary) in statuses.items() if flag == "!"]
    remote_old = {}
    for ref, (flag, summary) in statuses.items():
        if flag == " " and (match := _FAST_FORWARD.match(summary.strip())):
            remote_old[ref] = match["old"]
    if not rejected and proc.returncode == 0:
        notes = statuses.get(NOTES_REF)
        return _PushOutcome(
            True,
            new_on_remote=notes is not None and notes[0] == "*",
            up_to_date=all(flag == "=" for flag, _ in statuses.values()),
            remote_old=remote_old,
        )
    if not rejected:
        # Every ref looked fine but git failed anyway: do not trust it, retry.
        return _PushOutcome(
            False,
            reason=err.strip().splitlines()[-1]
            if err.strip()
            else f"git push exited {proc.returncode}",
            race=True,
        )
    # With --atomic the innocent refs say "atomic push failed": report the real reason.
    real = [s for _, s in rejected if "atomic push failed" not in s] or [rejected[0][1]]
    reason = real[0].strip()
    if (said := _REJECTED.match(reason)) is not None:
        reason = said["why"]  # "[rejected] (fetch first)" → "fetch first"
    if "shallow" in reason.lower():
        raise _shallow_problem(remote, reason)
    hidden = next((ref for ref, summary in rejected if _HIDDEN_REF in summary), None)
    if hidden is not None:
        applied = tuple(ref for ref, (flag, _) in statuses.items() if flag in " *+")
        return _PushOutcome(
            False, reason=reason, hidden=hidden, applied=applied, remote_old=remote_old
        )
    return _PushOutcome(False, reason=reason, race=any(word in reason.lower() for word in _RACE))


# What git's receive-pack says of a push to a ref its receive.hideRefs/transfer.hideRefs hide.
_HIDDEN_REF = "deny updating a hidden ref"


def _refused_hidden(
    repo: SyncRepo, remote: str, outcome: _PushOutcome, tips: Mapping[str, str]
) -> RemoteProblem:
    """The error for a push refused because the remote hides ``outcome.hidden``, after
    putting back what the refused push moved anyway (git's receive-pack applies the refs
    of an ``--atomic`` push it does not hide): each such ref is reset, compare-and-swap
    against what we pushed, to what it held before."""
    left = []
    for ref in outcome.applied:
        abbreviated = (outcome.remote_old or {}).get(ref)
        old = None
        if abbreviated is not None:
            proc = _git(repo, "rev-parse", "--verify", "-q", f"{abbreviated}^{{commit}}")
            old = proc.stdout.decode().strip() or None
            if old is None:
                left.append(ref)
                continue
        undo = _git(
            repo,
            "push",
            "--porcelain",
            "--no-verify",
            f"--force-with-lease={ref}:{tips[ref]}",
            remote,
            f"{old}:{ref}" if old else f":{ref}",
        )
        copy = tracking_refs(remote)[ref]
        if undo.returncode != 0:
            left.append(ref)
        elif old is not None:
            _git(repo, "update-ref", copy, old)
        else:
            _git(repo, "update-ref", "-d", copy)
    what = (
        f"it kept {', '.join(left)} (manifests, logs, snapshot and source commits, without "
        f"the runs) and refused to have it put back — remove it with `git push {remote} "
        + " ".join(f":{ref}" for ref in left)
        + "` or ask its administrators to; "
        if left
        else (
            f"what that refused push moved anyway ({', '.join(outcome.applied)}) was put "
            "back; the objects it sent stay unreachable in the server's object store until "
            "its `git gc` prunes them; "
            if outcome.applied
            else ""
        )
    )
    return RemoteProblem(
        f"{remote} refuses pushes to {outcome.hidden}: its configuration hides that ref "
        f"(receive.hideRefs or transfer.hideRefs, git says {_HIDDEN_REF!r}); "
        + what
        + "your runs stay here",
        f"ask the server's administrators to stop hiding {NOTES_REF} and refs/prov/ "
        "(the hideRefs entry that covers refs/notes or refs/prov), then run "
        f"`git prov sync {remote}` again",
    )


def _hidden_from_fetch(remote: str, ref: str) -> RemoteProblem:
    return RemoteProblem(
        f"{remote} holds {ref} but never lets it be fetched (the server hides it from "
        "git-upload-pack: uploadpack.hideRefs or transfer.hideRefs covers it), so runs "
        "pushed there cannot be shared",
        f"ask the server's administrators to stop hiding {ref} from fetch (the hideRefs "
        "entry that covers refs/notes or refs/prov); your runs stay here",
    )


def _receive_pack_has(repo: SyncRepo, remote: str, ref: str, commit: str) -> bool | None:
    """Whether ``remote``'s git-receive-pack advertises ``ref`` (which its upload-pack may
    hide): a ``git push --dry-run`` of ``commit`` there, which sends nothing. None when it
    cannot tell (no push access, …)."""
    proc = _git(repo, "push", "--dry-run", "--porcelain", "--no-verify", remote, f"{commit}:{ref}")
    for line in proc.stdout.decode(errors="replace").splitlines():
        match = _STATUS_LINE.match(line)
        if match and match["dst"] == ref:
            return match["flag"] != "*"
    return None


def _backoff(attempt: int) -> float:
    import random  # only a retry needs it

    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def _push_with_retries(
    repo: SyncRepo,
    remote: str,
    attempts: int | None,
    sleep: Callable[[float], None] = time.sleep,
    refs: Mapping[str, Tip] | None = None,
    timeout: float | None = None,
) -> PushResult:
    """Push, and answer each rejection with fetch + merge + push again, until the push
    lands, ``attempts`` pushes were made (None: no such bound) or ``timeout`` seconds
    have passed (None: :func:`sync_timeout`).

    Only a rejection loads pygit2 (for the merge): a push git accepts as a fast-forward
    proves the remote held nothing we lack; git moves the tracking refs to what it pushed
    (:func:`_push_once`), and the runs pushed are counted from the notes that changed.
    """
    started = time.monotonic()
    bound = sync_timeout(repo) if timeout is None else timeout
    tracking = tracking_refs(remote)
    names = _push_refs(remote)
    state = dict(refs) if refs is not None else read_refs(repo, names)
    fetched = _Merged()
    rewritten: set[str] = set()
    rewritten_here: set[str] = set()
    atomic = True
    refused_unchanged: str | None = None  # a refusal after which the remote did not move
    reason = ""
    had = tracking[NOTES_REF] in state
    lfs_sent: set[str] = set()
    lfs_missing: set[str] = set()
    attempt = 0
    while True:
        attempt += 1
        local = {ref: tip for ref in (OBJECTS_REF, NOTES_REF) if (tip := _ledger_tip(state, ref))}
        if not local:
            return PushResult(remote, had, 0, 0, attempt, True, fetched.runs_added)
        tips = {ref: tip.commit for ref, tip in local.items()}
        known, notes = state.get(tracking[NOTES_REF]), local.get(NOTES_REF)
        # LFS objects before the commits that name them, as git-lfs's pre-push hook does.
        _upload_lfs(repo, remote, tips, state.get(tracking[OBJECTS_REF]), lfs_sent, lfs_missing)

        outcome = _push_once(
            repo,
            remote,
            tips,
            atomic,
            # (Counting while git pushes pays when the push lands: on the first attempt.
            # Under contention a retry is often refused, and counting is done on success.)
            meanwhile=functools.partial(_count_ahead, repo, known, notes) if attempt == 1 else None,
        )
        if outcome.atomic_unsupported:
            atomic = False
            outcome = _push_once(repo, remote, tips, atomic)
        if outcome.hidden is not None:
            raise _refused_hidden(repo, remote, outcome, tips)
        if outcome.ok and outcome.new_on_remote and not _fetchable(repo, remote, NOTES_REF):
            raise _hidden_from_fetch(remote, NOTES_REF)
        if outcome.ok:
            pushed, base = 0, None
            if notes is not None and not outcome.up_to_date:
                base = _remote_before(known, outcome)
                pushed = _runs_pushed(repo, base, notes.tree)
            return PushResult(
                remote=remote,
                had_provenance=had and not outcome.new_on_remote,
                runs_pushed=pushed,
                runs_total=run_total(repo, notes.tree if notes else None, hint=base),
                attempts=attempt,
                up_to_date=outcome.up_to_date,
                runs_fetched=fetched.runs_added,
                conflicts=tuple(sorted(fetched.conflicts)),
                object_conflicts=tuple(sorted(fetched.object_conflicts)),
                rewritten=tuple(sorted(rewritten)),
                lfs_uploaded=len(lfs_sent),
                lfs_missing=tuple(sorted(lfs_missing)),
                rewritten_here=tuple(sorted(rewritten_here)),
            )
        reason = outcome.reason
        if not outcome.race and refused_unchanged == reason:
            # Refused twice for the same reason with nothing new on the remote: a hook or
            # a rule says no, and asking again will not change its mind.
            raise RemoteProblem(
                f"{remote} refused the provenance refs: {reason}",
                f"a server-side hook or rule rejects pushes to {NOTES_REF} or "
                f"{OBJECTS_REF}; ask its administrators to allow them",
            )
        delay = _backoff(attempt)
        if attempt == attempts or time.monotonic() - started + delay >= bound:
            break
        sleep(delay)
        remote_state = tuple(state.get(t) for t in tracking.values())
        had_now, forced, forced_here, after = _fetch_tracking(repo, remote, state)
        had = had or had_now
        rewritten.update(forced)
        rewritten_here.update(forced_here)
        merged = _merge_tracking(repo, remote, after)
        fetched.runs_added += merged.runs_added
        fetched.conflicts |= merged.conflicts
        fetched.object_conflicts |= merged.object_conflicts
        state = read_refs(repo, names)
        unchanged = remote_state == tuple(state.get(t) for t in tracking.values())
        refused_unchanged = reason if unchanged and not outcome.race else None
    elapsed = time.monotonic() - started
    spent = f"{attempt} attempts in {elapsed:.1f} s"
    if attempt == attempts:
        bound_hit = f"the --attempts {attempts} bound"
        more = "give more --attempts (or none: the time bound alone)"
    else:
        bound_hit = f"the {bound:g} s bound"
        more = "allow more time with --timeout SECONDS or `git config prov.syncTimeout SECONDS`"
    raise RemoteProblem(
        f"could not push provenance to {remote}: {spent} were all rejected, the last "
        f"({reason}) at {bound_hit}; "
        + (
            "others kept pushing to it first — nothing is lost, your runs stay here"
            if outcome.race
            else "the remote kept changing while refusing our push"
        ),
        f"run `git prov sync {remote}` again, or {more}",
    )


def sync_timeout(repo: RepoLike) -> float:
    """How long a push keeps retrying rejections, in seconds: ``git config
    prov.syncTimeout`` when it is a positive number, else :data:`DEFAULT_TIMEOUT`."""
    values = SyncRepo.open(repo).config().get(TIMEOUT_KEY, [])
    if values:
        try:
            value = float(values[-1])
        except ValueError:
            value = 0.0
        if value > 0 and value == value:  # (not NaN)
            return value
        raise UsageProblem(
            f"git config prov.syncTimeout is {values[-1]!r}, not a number of seconds",
            "set it to a positive number, e.g. `git config prov.syncTimeout 120`",
        )
    return DEFAULT_TIMEOUT


def _upload_lfs(
    repo: SyncRepo,
    remote: str,
    tips: Mapping[str, str],
    known: Tip | None,
    sent: set[str],
    missing: set[str],
) -> None:
    """Upload the git-LFS objects of the commits the objects ref is about to carry to
    ``remote`` (:mod:`git_prov.sync_lfs`); adds to ``sent`` and ``missing``."""
    new = tips.get(OBJECTS_REF)
    if new is None or (known is not None and known.commit == new):
        return
    from git_prov.sync_lfs import upload_lfs_objects_for_push

    done = upload_lfs_objects_for_push(
        repo._cwd, repo._common_dir, remote, new, [known.commit] if known else []
    )
    sent.update(done.uploaded)
    missing.update(done.missing)


def _count_ahead(repo: SyncRepo, known: Tip | None, notes: Tip | None) -> None:
    """Count the runs a push sends while git sends them: usually the remote held what our
    tracking copy says (git's report of the push confirms that base, or names another)."""
    if known is not None and known.tree and notes is not None and notes.tree:
        _runs_between(repo, known.tree, notes.tree)


def _remote_before(known: Tip | None, outcome: _PushOutcome) -> str | None:
    """What the remote's notes ref held before our push (a tree or commit-ish), or None
    when it had none or we cannot tell. git's own report of the old value wins over our
    tracking copy, which may be stale."""
    if outcome.new_on_remote:
        return None
    said = (outcome.remote_old or {}).get(NOTES_REF)
    if known is not None and (said is None or known.commit.startswith(said)):
        return known.tree
    return said


def _runs_pushed(repo: SyncRepo, base: str | None, tree: str | None) -> int:
    if tree is None:
        return 0
    if base is not None:
        diff = _runs_between(repo, base, tree)
        if diff is not None:
            return diff[0]
    return run_total(repo, tree)  # the remote had none (or we cannot tell what it had)


def push(
    repo: RepoLike,
    remote: str | None = None,
    *,
    attempts: int | None = None,
    timeout: float | None = None,
) -> PushResult:
    """Push the local ledger to ``remote`` (objects first, atomically, never forced).
    A rejected push is answered by fetch + merge + retry with jittered backoff, for at
    most ``timeout`` seconds (default :func:`sync_timeout`) and, when given, at most
    ``attempts`` pushes."""
    sync_repo, opened = SyncRepo._open(repo)
    name = resolve_remote(sync_repo, remote)
    refs = _refs_of(sync_repo, _push_refs(name), opened)
    return _push_with_retries(sync_repo, name, attempts, refs=refs, timeout=timeout)


def _push_refs(remote: str) -> list[str]:
    """The refs a push reads: the ledger refs and ``remote``'s tracking copies."""
    return [OBJECTS_REF, NOTES_REF, *tracking_refs(remote).values()]


def sync(
    repo: RepoLike,
    remote: str | None = None,
    *,
    attempts: int | None = None,
    timeout: float | None = None,
    remap: bool = True,
) -> SyncResult:
    """Bring the local ledger and ``remote``'s to the same union of runs.

    When there is something to push, the push goes first: git accepts it only as a
    fast-forward, which proves the remote holds nothing we lack, so the common case costs
    one round trip (and no pygit2). A rejection (or nothing new to push) means fetch +
    merge first, then push what the merge made. ``attempts`` and ``timeout`` bound the
    retries as for :func:`push`. When runs
    arrived and ``remap``, they are remapped as by :func:`fetch`, and the attachments that
    writes are pushed as well.
    """
    sync_repo, opened = SyncRepo._open(repo)
    name = resolve_remote(sync_repo, remote)
    tracking = tracking_refs(name)
    names = _push_refs(name)
    refs = _refs_of(sync_repo, names, opened)
    notes_before = refs.get(NOTES_REF)
    local = {ref: refs.get(ref) for ref in tracking}
    known = {ref: refs.get(dst) for ref, dst in tracking.items()}
    fetched: FetchResult | None = None
    if None in local.values() or None in known.values() or local == known:
        fetched = _fetch(sync_repo, name, remap=False, opened=refs)
        refs = read_refs(sync_repo, names)
        if all(refs.get(ref) == refs.get(dst) for ref, dst in tracking.items()):
            result = SyncResult(
                remote=name,
                had_provenance=fetched.had_provenance,
                runs_fetched=fetched.runs_added,
                runs_pushed=0,
                runs_total=fetched.runs_total,
                attempts=0,
                conflicts=fetched.conflicts,
                object_conflicts=fetched.object_conflicts,
                rewritten=fetched.rewritten,
                rewritten_here=fetched.rewritten_here,
            )
            if remap:
                return _remap_and_push(sync_repo, result, attempts, timeout, notes_before)
            return result
    pushed = _push_with_retries(sync_repo, name, attempts, refs=refs, timeout=timeout)
    before = fetched or FetchResult(name, pushed.had_provenance, 0, 0)
    result = SyncResult(
        remote=name,
        had_provenance=before.had_provenance if fetched else pushed.had_provenance,
        runs_fetched=before.runs_added + pushed.runs_fetched,
        runs_pushed=pushed.runs_pushed,
        runs_total=pushed.runs_total,
        attempts=pushed.attempts,
        conflicts=tuple(sorted({*before.conflicts, *pushed.conflicts})),
        object_conflicts=tuple(sorted({*before.object_conflicts, *pushed.object_conflicts})),
        rewritten=tuple(sorted({*before.rewritten, *pushed.rewritten})),
        rewritten_here=tuple(sorted({*before.rewritten_here, *pushed.rewritten_here})),
        lfs_uploaded=pushed.lfs_uploaded,
        lfs_missing=pushed.lfs_missing,
    )
    return _remap_and_push(sync_repo, result, attempts, timeout, notes_before) if remap else result


def _remap_and_push(
    repo: SyncRepo,
    result: SyncResult,
    attempts: int | None,
    timeout: float | None,
    before: Tip | None,
) -> SyncResult:
    """Remap the runs a sync brought; push the attachments that wrote, so the remote and
    we still hold the same ledger."""
    remapped, problem = _remap_arrived(repo, result.runs_fetched, before)
    if not remapped:
        return result._replace(remap_problem=problem)
    again = _push_with_retries(repo, result.remote, attempts, timeout=timeout)
    return result._replace(
        runs_fetched=result.runs_fetched + again.runs_fetched,
        runs_pushed=result.runs_pushed + again.runs_pushed,
        runs_total=again.runs_total,
        attempts=result.attempts + again.attempts,
        conflicts=tuple(sorted({*result.conflicts, *again.conflicts})),
        object_conflicts=tuple(sorted({*result.object_conflicts, *again.object_conflicts})),
        rewritten=tuple(sorted({*result.rewritten, *again.rewritten})),
        rewritten_here=tuple(sorted({*result.rewritten_here, *again.rewritten_here})),
        remapped=remapped,
        remap_problem=problem,
        lfs_uploaded=result.lfs_uploaded + again.lfs_uploaded,
        lfs_missing=tuple(sorted({*result.lfs_missing, *again.lfs_missing})),
    )


# ---- counting runs -----------------------------------------------------------------------------


def run_total(repo: RepoLike, tree: str | None = None, *, hint: str | None = None) -> int:
    """Run records in the ledger: in notes tree ``tree`` (hex id; default: the local
    notes ref's).

    Counting reads every note, so the last few answers are kept in
    ``<git common dir>/prov/run-counts`` by tree id, and a new tree is counted as a known
    one (``hint`` first, when known) plus the notes that differ — a ``git diff-tree`` and
    the changed notes' text, whatever the ledger's size.
    """
    sync_repo = SyncRepo.open(repo)
    if tree is None:
        tip = _ledger_tip(read_refs(sync_repo, [NOTES_REF]), NOTES_REF)
        tree = tip.tree if tip is not None else None
    if tree is None:
        return 0
    path = sync_repo._cache_file(RUN_COUNT_CACHE)
    cached: dict[str, int] = {}
    try:
        with open(path) as file:
            text = file.read()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            cached.setdefault(key, int(value))
    except (OSError, ValueError):
        cached = {}
    if tree in cached:
        return cached[tree]
    total = None
    # Bases whose difference is already known (the push just counted it) go first.
    bases = sorted(cached, key=lambda k: (k != hint, (k, tree) not in sync_repo._diffs))
    for base in bases:
        diff = _runs_between(sync_repo, base, tree)
        if diff is not None:
            total = cached[base] + diff[0] - diff[1]
            break
    if total is None:
        total = _count_all(sync_repo, tree)
    lines = [f"{tree} {total}", *[f"{k} {c}" for k, c in cached.items()][: RUN_COUNT_KEPT - 1]]
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "w") as file:
            file.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache
    return total


def _run_lines(texts: Iterable[bytes]) -> set[str]:
    """The distinct run-record lines of some note texts (see :data:`RUN_MARK`)."""
    found = set()
    for text in texts:
        for line in text.decode("utf-8", errors="replace").splitlines():
            if RUN_MARK in line.rpartition("\t")[2]:
                found.add(line)
    return found


def _runs_between(repo: SyncRepo, old: str, new: str) -> tuple[int, int] | None:
    """(run records in notes tree ``new`` and not in ``old``, and the reverse), from the
    notes that differ; None when git cannot compare them (an object was pruned)."""
    key = (old, new)
    if key not in repo._diffs:
        repo._diffs[key] = _diff_runs(repo, old, new)
    return repo._diffs[key]


def _diff_runs(repo: SyncRepo, old: str, new: str) -> tuple[int, int] | None:
    proc = _git(repo, "diff-tree", "-r", "-z", "--no-renames", old, new, "--")
    if proc.returncode != 0:
        return None
    fields = proc.stdout.split(b"\0")
    sides: dict[str, tuple[list[str], list[str]]] = {}
    zero = {"0" * 40, "0" * 64}
    for meta, raw_path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode().lstrip(":").split(" ")
        commit = note_commit(raw_path.decode(errors="replace"))
        if len(parts) < 5 or commit is None:
            continue
        before, after = sides.setdefault(commit, ([], []))
        if parts[2] not in zero:
            before.append(parts[2])
        if parts[3] not in zero:
            after.append(parts[3])
    pairs = list(sides.values())
    gained = lost = 0
    for (before, after), blobs in zip(
        pairs, _grouped_blobs(repo, [[*b, *a] for b, a in pairs]), strict=True
    ):
        old_lines = _run_lines(blobs.get(oid, b"") for oid in before)
        new_lines = _run_lines(blobs.get(oid, b"") for oid in after)
        gained += len(new_lines - old_lines)
        lost += len(old_lines - new_lines)
    return gained, lost


def _grouped_blobs(repo: SyncRepo, groups: Sequence[Sequence[str]]) -> Iterator[dict[str, bytes]]:
    """The blobs of each group of ids (the notes of one commit), one group at a time from
    one ``git cat-file --batch``: memory holds one note, not the ledger (missing blobs are
    left out)."""
    stream = stream_blobs(repo._cwd, [oid for group in groups for oid in group])
    for group in groups:
        got: dict[str, bytes] = {}
        for oid, data in itertools.islice(stream, len(group)):
            if data is not None:
                got[oid] = data
        yield got
    for _ in stream:  # (none left: ends git and checks it read them all)
        pass


def _count_all(repo: SyncRepo, tree: str) -> int:
    """Run records in a whole notes tree (reads every note once)."""
    proc = _git(repo, "ls-tree", "-r", "-z", tree)
    if proc.returncode != 0:
        raise CorruptLedger(
            f"cannot read notes tree {tree[:12]}: "
            + (proc.stderr.decode(errors="replace").strip() or "git ls-tree failed"),
            "run git prov fsck",
        )
    notes: dict[str, list[str]] = {}
    for entry in proc.stdout.split(b"\0"):
        info, _, raw_path = entry.partition(b"\t")
        parts = info.decode().split(" ")
        commit = note_commit(raw_path.decode(errors="replace"))
        if len(parts) == 3 and parts[1] == "blob" and commit is not None:
            notes.setdefault(commit, []).append(parts[2])
    groups = list(notes.values())
    return sum(len(_run_lines(blobs.values())) for blobs in _grouped_blobs(repo, groups))


# ---- configuring a remote and the pre-push hook ------------------------------------------------


def configure_remote(
    repo: RepoLike, remote: str | None, *, fetch: bool = True, push_hook: bool = False
) -> list[str]:
    """Make plain git carry provenance for ``remote``; returns one line per step.

    ``fetch``: add the :func:`fetch_refspecs` to ``remote.<r>.fetch`` (only those absent),
    so a plain ``git fetch`` fills the tracking refs. ``push_hook``: install the pre-push
    hook (:func:`git_prov.hooks_install.install_hook`), so a plain ``git push`` also
    pushes provenance. ``remote.<r>.push`` is never set: it would change what a plain
    ``git push`` pushes.
    """
    sync_repo = SyncRepo.open(repo)
    name = resolve_remote(sync_repo, remote)
    if is_url_remote(name):
        raise RemoteProblem(
            f"{name} is not a named remote: plain git fetch keeps refspecs per remote name",
            f"add it with `git remote add NAME {name}`, then `git prov init --remote NAME`",
        )
    done: list[str] = []
    if fetch:
        proc = _git(sync_repo, "config", "--get-all", f"remote.{name}.fetch")
        present = set(proc.stdout.decode().split())
        added = []
        for spec in fetch_refspecs(name):
            if spec not in present:
                sync_repo.git("config", "--add", f"remote.{name}.fetch", spec)
                added.append(spec)
        if added:
            done.append(
                f"git fetch {name}: now also fetches provenance into "
                f"refs/notes/remotes/{name}/prov and refs/prov/remotes/{name}/objects "
                "(git prov merges it on fetch/sync)"
            )
        else:
            done.append(f"git fetch {name}: already fetches provenance")
    if push_hook:
        from git_prov.hooks_install import install_hook

        installed = install_hook(sync_repo, "pre-push")
        if not any("already installed" in line for line in installed):
            done.append(
                f"git push: now also pushes provenance ({OBJECTS_REF}, {NOTES_REF}) to the "
                "remote it pushes to"
            )
        done.extend(installed)
    return done


def parse_pre_push_input(lines: Iterable[str]) -> list[tuple[str, str, str, str]]:
    """git's pre-push input: (local ref, local id, remote ref, remote id) per line."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4:
            out.append((parts[0], parts[1], parts[2], parts[3]))
    return out


def hook_pre_push(
    repo: RepoLike,
    remote_name: str,
    url: str,
    stdin_lines: Sequence[str],
    *,
    attempts: int | None = None,
) -> HookResult:
    """The pre-push hook: push provenance to the remote the user is pushing to.

    Never blocks the user's push: a failure comes back as ``warning``.
    """
    if os.environ.get(HOOK_GUARD_ENV):
        return HookResult(skipped="inside a git-prov push")
    updates = parse_pre_push_input(stdin_lines)
    if not updates:
        return HookResult(skipped="nothing is being pushed")
    if any(remote_ref in (NOTES_REF, OBJECTS_REF) for _, _, remote_ref, _ in updates):
        return HookResult(skipped="this push already carries provenance")
    try:
        sync_repo, opened = SyncRepo._open(repo)
        if remote_name not in remote_names(sync_repo):
            return HookResult(skipped=f"provenance is pushed only to named remotes, not to {url}")
        refs = _refs_of(sync_repo, _push_refs(remote_name), opened)
        if NOTES_REF not in refs and OBJECTS_REF not in refs:
            return HookResult(skipped="no provenance recorded yet")
        return HookResult(pushed=_push_with_retries(sync_repo, remote_name, attempts, refs=refs))
    except ProvError as exc:
        return HookResult(warning=f"provenance was not pushed to {remote_name}: {exc}")

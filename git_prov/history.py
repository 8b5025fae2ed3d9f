"""``git prov log``: commits in a revision range, each with the runs recorded on it."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from git_prov.errors import RepositoryProblem, UsageProblem
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.model.record import LocatedRun
from git_prov.query import located
from git_prov.query.index import RunIndex
from git_prov.store.gitcli import run_git, start_git

if TYPE_CHECKING:
    from git_prov.store.gitcli.paths import RepoPaths
    from git_prov.store.repo import GitRepo

T = TypeVar("T")


@frozen_fields
class CommitRuns(Fields):
    """One commit of the log and the runs shown on it (oldest first)."""

    commit: str
    subject: str
    author: str
    date: str
    refs: str
    runs: tuple[LocatedRun, ...]
    earlier: int = 0  # older runs on it that were not loaded (see ``newest`` in log())

    def __init__(
        self,
        commit: str,
        subject: str,
        author: str,
        date: str,
        refs: str,
        runs: tuple[LocatedRun, ...],
        earlier: int = 0,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "commit", commit)
        set_(self, "subject", subject)
        set_(self, "author", author)
        set_(self, "date", date)
        set_(self, "refs", refs)
        set_(self, "runs", runs)
        set_(self, "earlier", earlier)


def log(
    index: RunIndex,
    revisions: Sequence[str] = (),
    paths: Sequence[str] = (),
    *,
    all_commits: bool = False,
    max_count: int | None = None,
    newest: int | None = None,
    started: subprocess.Popen[bytes] | None = None,
) -> Iterator[CommitRuns]:
    """Commits of ``git log REVISIONS -- PATHS`` (default HEAD) with their runs, found in
    ``index`` (open and fresh: :func:`~git_prov.query.index.open_index`).

    Only commits with runs are listed unless ``all_commits``; ``max_count`` limits the
    commits listed; ``newest`` loads only the newest N runs of each commit (the others are
    counted in ``earlier``). Only the note lines of the runs listed are read, a batch of
    commits at a time, so that a long history starts showing at once. Bad revisions raise
    before the first commit is yielded. ``started``: its git, from :func:`start_log`.
    """
    listed = 0
    batch = 50 if max_count is None else min(max_count, 1000)
    # git's output is read as git walks: a page of a long history costs that page, and
    # git is stopped once it is shown (``git log`` of 100k commits: seconds).
    with contextlib.closing(_commits(index, revisions, paths, started)) as commits:
        for chunk in _batches(commits, batch):
            noted = located.annotated_among(index, [c[0] for c in chunk])
            if not all_commits:
                chunk = [c for c in chunk if c[0] in noted]
            every = located.run_ids_on(index, [c[0] for c in chunk if c[0] in noted])
            ids = every if newest is None else {c: r[-newest:] for c, r in every.items()}
            found = located.located(index, [run for runs in ids.values() for run in runs])
            for commit, subject, author, date, refs in chunk:
                runs = tuple(found[r] for r in ids.get(commit, ()) if r in found)
                if not runs and not all_commits:
                    continue
                earlier = len(every.get(commit, ())) - len(ids.get(commit, ()))
                yield CommitRuns(commit, subject, author, date, refs, runs, earlier)
                listed += 1
                if max_count is not None and listed >= max_count:
                    return


def _batches(items: Iterator[T], size: int, most: int = 1000) -> Iterator[list[T]]:
    """``items`` in lists of ``size``, then twice as many each time up to ``most`` (a
    page of runs sparse in a long history takes a few batches, not one per commit)."""
    while batch := list(itertools.islice(items, size)):
        yield batch
        size = min(size * 2, max(size, most))


def run_ids_in(index: RunIndex, revisions: Sequence[str]) -> list[str]:
    """The ids of the live runs shown on the commits ``git log REVISIONS`` lists, sorted;
    from the index alone (no note is read)."""
    annotated = located.annotated(index)
    commits = [c[0] for c in _commits(index, revisions, ()) if c[0] in annotated]
    ids = located.run_ids_on(index, commits)
    return sorted({run for runs in ids.values() for run in runs})


def _refused(rev: str) -> bool:
    return rev.startswith("-") and rev not in ("--all", "--branches", "--tags", "--remotes")


def _log_args(revisions: Sequence[str], paths: Sequence[str]) -> list[str]:
    # (Through the git binary, from the top of the working tree: `log` loads no pygit2.)
    args = ["log", "-z", "--format=%H%x00%s%x00%an%x00%aI%x00%D", *(revisions or ["HEAD"])]
    return [*args, "--", *paths]


# A page of the log (-n N, N up to this) needs the first few commits git lists: git is let
# write only a page ahead of what is read (the pipe's capacity cut to 4 KiB, ~45 commits),
# so it stops walking soon after the page is read, where a full pipe (64 KiB) let it walk
# and format ~750 commits first (`log -n 20` at 10k runs: all 1,000, 42M instructions of
# git, a seventh of the command's). Reading is the same either way.
FEW = 100
_PAGE_PIPE = 4096


def start_log(
    where: RepoPaths,
    revisions: Sequence[str],
    paths: Sequence[str],
    max_count: int | None = None,
) -> subprocess.Popen[bytes] | None:
    """The ``git log`` that :func:`log` reads, started early (it walks while the index is
    opened); None when a revision is refused (:func:`log` says so in its turn). Give it to
    :func:`log` as ``started``, with an index opened on ``where``; :func:`stop_log` if not.
    ``max_count``: the commits :func:`log` will list at most (:data:`FEW`)."""
    if any(_refused(rev) for rev in revisions):
        return None
    proc = start_git(where.workdir or where.cwd, _log_args(revisions, paths))
    if max_count is not None and max_count <= FEW and proc.stdout is not None:
        _shrink_pipe(proc.stdout.fileno())
    return proc


def _shrink_pipe(fd: int) -> None:
    """The pipe ``fd`` holds at most :data:`_PAGE_PIPE` bytes (Linux; elsewhere, or when
    git wrote more already, it stays as it was)."""
    import fcntl

    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setting is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setting, _PAGE_PIPE)


def stop_log(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a :func:`start_log` git that :func:`log` did not finish (no-op if it did)."""
    if proc is not None and proc.returncode is None:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.communicate()


def _commits(
    index: RunIndex,
    revisions: Sequence[str],
    paths: Sequence[str],
    started: subprocess.Popen[bytes] | None = None,
) -> Generator[tuple[str, str, str, str, str], None, None]:
    """(id, subject, author, date, refs) of each commit ``git log`` lists, newest first,
    as git finds them (close the generator to stop git early). Bad revisions raise before
    the first commit."""
    for rev in revisions:
        if _refused(rev):
            raise UsageProblem(
                f"unsupported revision option {rev!r}",
                "give revisions or ranges such as main~10..main or --all",
            )
    where = index.paths.workdir or index.paths.cwd
    args = _log_args(revisions, paths)
    if started is not None and started.args == ["git", *args]:
        proc = started  # (started by start_log in the same place, beside the index opening)
    else:
        if started is not None:
            _stop(started)
        proc = start_git(where, args)
    assert proc.stdout is not None
    given = 0
    try:
        fields = _fields(proc.stdout)
        while group := list(itertools.islice(fields, 5)):
            if len(group) < 5:
                break  # (the empty field after the last NUL)
            commit, subject, author, date, refs = (f.lstrip("\n") for f in group)
            if commit:
                given += 1
                yield commit, subject, author, date, refs
        stderr = proc.communicate()[1]
    finally:
        if proc.returncode is None:  # stopped early: git need not walk any further
            _stop(proc)
    if proc.returncode != 0:
        if given:
            detail = stderr.decode(errors="replace").strip()
            raise RepositoryProblem(f"git log failed after {given} commits: {detail}")
        if not revisions and _unborn(where):
            return
        from git_prov.store.gitcli import bad_revision

        raise bad_revision(where, revisions, stderr)


def _fields(stream: IO[bytes]) -> Iterator[str]:
    """The NUL-separated fields of ``stream``, decoded, as they arrive."""
    rest, fd = b"", stream.fileno()
    while chunk := os.read(fd, 1 << 16):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        for part in parts:
            yield part.decode("utf-8", errors="replace")
    yield rest.decode("utf-8", errors="replace")


def _unborn(where: Path) -> bool:
    """Whether HEAD names no commit yet (a new repository)."""
    proc = run_git(where, ["rev-parse", "--verify", "-q", "HEAD"], check=False)
    return proc.returncode != 0


def resolve_commit(repo: GitRepo, spec: str) -> str | None:
    """The full id of the commit ``spec`` names, or None."""
    return repo.resolve_commit(spec)

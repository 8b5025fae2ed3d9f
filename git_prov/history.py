"""``git prov log``: commits in a revision range, each with the runs recorded on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from git_prov.errors import UsageProblem
from git_prov.model.record import LocatedRun
from git_prov.query import located
from git_prov.query.index import RunIndex
from git_prov.store.gitcli import run_git

if TYPE_CHECKING:
    from git_prov.store.repo import GitRepo


@dataclass(frozen=True)
class CommitRuns:
    """One commit of the log and the runs shown on it (oldest first)."""

    commit: str
    subject: str
    author: str
    date: str
    refs: str
    runs: tuple[LocatedRun, ...]
    earlier: int = 0  # older runs on it that were not loaded (see ``newest`` in log())


def log(
    index: RunIndex,
    revisions: Sequence[str] = (),
    paths: Sequence[str] = (),
    *,
    all_commits: bool = False,
    max_count: int | None = None,
    newest: int | None = None,
) -> Iterator[CommitRuns]:
    """Commits of ``git log REVISIONS -- PATHS`` (default HEAD) with their runs, found in
    ``index`` (open and fresh: :func:`~git_prov.query.index.open_index`).

    Only commits with runs are listed unless ``all_commits``; ``max_count`` limits the
    commits listed; ``newest`` loads only the newest N runs of each commit (the others are
    counted in ``earlier``). Only the note lines of the runs listed are read, a batch of
    commits at a time, so that a long history starts showing at once. Bad revisions raise
    before the first commit is yielded.
    """
    commits = _commits(index, revisions, paths)
    annotated = located.annotated(index) if commits else set()
    if not all_commits:
        commits = [c for c in commits if c[0] in annotated]
    listed = 0
    batch = 50 if max_count is None else min(max(max_count, 50), 1000)
    for start in range(0, len(commits), batch):
        chunk = commits[start : start + batch]
        every = located.run_ids_on(index, [c[0] for c in chunk if c[0] in annotated])
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


def run_ids_in(index: RunIndex, revisions: Sequence[str]) -> list[str]:
    """The ids of the live runs shown on the commits ``git log REVISIONS`` lists, sorted;
    from the index alone (no note is read)."""
    annotated = located.annotated(index)
    commits = [c[0] for c in _commits(index, revisions, ()) if c[0] in annotated]
    ids = located.run_ids_on(index, commits)
    return sorted({run for runs in ids.values() for run in runs})


def _commits(
    index: RunIndex, revisions: Sequence[str], paths: Sequence[str]
) -> list[tuple[str, str, str, str, str]]:
    """(id, subject, author, date, refs) of each commit ``git log`` lists, newest first."""
    for rev in revisions:
        if rev.startswith("-") and rev not in ("--all", "--branches", "--tags", "--remotes"):
            raise UsageProblem(
                f"unsupported revision option {rev!r}",
                "give revisions or ranges such as main~10..main or --all",
            )
    # (Through the git binary, from the top of the working tree: `log` loads no pygit2.)
    where = index.paths.workdir or index.paths.cwd
    args = ["log", "-z", "--format=%H%x00%s%x00%an%x00%aI%x00%D", *(revisions or ["HEAD"])]
    if paths:
        args += ["--", *paths]
    else:
        args.append("--")
    proc = run_git(where, args, check=False)
    if proc.returncode != 0:
        if not revisions and _unborn(where):
            return []
        from git_prov.store.gitcli import bad_revision

        raise bad_revision(where, revisions, proc.stderr)
    fields = proc.stdout.decode("utf-8", errors="replace").split("\0")
    commits = []
    for i in range(0, len(fields) - 4, 5):
        commit, subject, author, date, refs = (f.lstrip("\n") for f in fields[i : i + 5])
        if commit:
            commits.append((commit, subject, author, date, refs))
    return commits


def _unborn(where: Path) -> bool:
    """Whether HEAD names no commit yet (a new repository)."""
    proc = run_git(where, ["rev-parse", "--verify", "-q", "HEAD"], check=False)
    return proc.returncode != 0


def resolve_commit(repo: GitRepo, spec: str) -> str | None:
    """The full id of the commit ``spec`` names, or None."""
    return repo.resolve_commit(spec)

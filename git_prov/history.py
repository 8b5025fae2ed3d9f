"""``git prov log``: commits in a revision range, each with the runs recorded on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pygit2

from git_prov.errors import UsageProblem
from git_prov.store import notes
from git_prov.store.ledger import NOTES_REF, Ledger, LedgerScan, LocatedRun
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


def annotated_commits(ledger: Ledger) -> set[str]:
    """The commits that carry a prov note (names only: no note is read)."""
    tip = ledger.tip(NOTES_REF)
    if tip is None:
        return set()
    return {c for c, _ in notes.iter_notes(ledger.pygit, tip.tree)}


def log(
    repo: GitRepo,
    revisions: Sequence[str] = (),
    paths: Sequence[str] = (),
    *,
    all_commits: bool = False,
    max_count: int | None = None,
    scan: LedgerScan | None = None,
) -> list[CommitRuns]:
    """Commits of ``git log REVISIONS -- PATHS`` (default HEAD) with their runs.

    Only commits with runs are listed unless ``all_commits``; ``max_count`` limits the
    commits listed.
    """
    for rev in revisions:
        if rev.startswith("-") and rev not in ("--all", "--branches", "--tags", "--remotes"):
            raise UsageProblem(
                f"unsupported revision option {rev!r}",
                "give revisions or ranges such as main~10..main or --all",
            )
    ledger = Ledger(repo)
    if repo.pygit.head_is_unborn and not revisions:
        return []
    scan = scan or ledger.scan()
    with_runs = set(scan.by_commit)
    args = ["log", "-z", "--format=%H%x00%s%x00%an%x00%aI%x00%D", *(revisions or ["HEAD"])]
    if paths:
        args += ["--", *paths]
    else:
        args.append("--")
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageProblem(
            f"bad revision range: {detail[-1] if detail else ' '.join(revisions)}",
            "see `git help revisions`",
        )
    fields = proc.stdout.decode("utf-8", errors="replace").split("\0")
    out: list[CommitRuns] = []
    for i in range(0, len(fields) - 4, 5):
        commit, subject, author, date, refs = (f.lstrip("\n") for f in fields[i : i + 5])
        if not commit:
            continue
        runs = ledger.runs_on(commit, scan) if commit in with_runs else []
        if not runs and not all_commits:
            continue
        out.append(CommitRuns(commit, subject, author, date, refs, tuple(runs)))
        if max_count is not None and len(out) >= max_count:
            break
    return out


def resolve_commit(repo: GitRepo, spec: str) -> str | None:
    """The full id of the commit ``spec`` names, or None."""
    try:
        obj = repo.pygit.revparse_single(spec)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None
    return str(commit.id)

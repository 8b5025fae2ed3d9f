"""Orphaned runs: live runs none of whose commits a branch, remote-tracking branch, tag or
HEAD reaches (``git prov``'s own refs do not count). A merged-and-deleted remote branch keeps
its runs "alive" until ``git fetch --prune``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from git_prov.store.gitcli import object_headers
from git_prov.store.ledger import Ledger, LedgerScan, LocatedRun
from git_prov.store.repo import GitRepo

# What counts as "alive": a run is orphaned when none of the commits it is shown on is
# reachable from these refs (nor from HEAD). Remote-tracking branches count, so a run on a
# teammate's pushed branch is not an orphan; `git fetch --prune` lets deleted ones go.
REACHABLE_REFS = ("--branches", "--tags", "--remotes")


@dataclass(frozen=True)
class CommitInfo:
    """What :func:`remap` needs of one commit."""

    parents: tuple[str, ...]
    tree: str
    date: int  # the earlier of author and committer date (seconds)


@dataclass
class Orphans:
    """What one look at the ledger and the history found (:func:`scan_orphans`)."""

    runs: list[LocatedRun]
    reachable_runs: list[LocatedRun]  # live runs with at least one reachable commit
    missing: list[str]  # runs none of whose commits is in this repository
    unreachable: dict[str, CommitInfo]  # every commit reachable from orphans but not alive
    present: set[str]  # the commits runs are shown on that this repository has


def find_orphans(repo: GitRepo, scan: LedgerScan | None = None) -> list[LocatedRun]:
    """Live runs whose commit and every commit they are shown on are in this repository but
    not reachable from a branch, remote-tracking branch, tag or HEAD (oldest first).

    One ``git rev-list`` answers for all runs at once. Runs naming commits this repository
    does not have are not orphans (their history is elsewhere).
    """
    return scan_orphans(repo, scan or Ledger(repo).scan()).runs


def scan_orphans(repo: GitRepo, scan: LedgerScan) -> Orphans:
    """The orphans of ``scan`` with what remap needs besides: the unreachable history
    under them, the runs still reachable, and the runs whose commits are all missing."""
    live = scan.live_runs()
    shown = sorted({c for run in live for c in run.shown_on})
    present = existing_commits(repo, shown)
    unreachable = unreachable_from(repo, [c for c in shown if c in present])
    orphans: list[LocatedRun] = []
    reachable: list[LocatedRun] = []
    missing: list[str] = []
    for run in live:
        mine = [c for c in run.shown_on if c in present]
        if not mine:
            missing.append(run.id)
        elif all(c in unreachable for c in mine):
            orphans.append(run)
        else:
            reachable.append(run)
    return Orphans(orphans, reachable, missing, unreachable, present)


def index_orphans(repo: GitRepo, ledger: Ledger) -> tuple[Orphans, int] | None:
    """:func:`scan_orphans` (without ``reachable_runs``) answered from the query index,
    and how many of the runs whose commits are all missing were kept here (a purge):
    only the orphans' records are read, so memory and time follow the shown commits and
    the orphans, not the ledger. None when an orphan has different records under its id
    (a conflict): the caller reads the whole ledger then, as before."""
    from git_prov.query.index import KIND_RUN, RepoPaths, open_index
    from git_prov.query.located import located

    with open_index(RepoPaths.of_repo(repo)) as index:
        db = index.db
        shown = [
            str(c)
            for (c,) in db.execute(
                "SELECT commit_id FROM lines WHERE live = 1 AND kind = ?"
                " UNION SELECT l.note FROM lines l WHERE l.kind IN (0, 1) AND EXISTS"
                " (SELECT 1 FROM lines v WHERE v.run = l.run AND v.live = 1)",
                (KIND_RUN,),
            )
        ]
        present = existing_commits(repo, sorted(shown))
        unreachable = unreachable_from(repo, [c for c in sorted(shown) if c in present])
        for table, commits in (("present", present), ("alive", present - unreachable.keys())):
            db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (c TEXT PRIMARY KEY)")
            db.execute(f"DELETE FROM temp.{table}")
            db.executemany(f"INSERT INTO temp.{table} VALUES (?)", ((c,) for c in commits))
        # Runs none of whose commits is alive: orphans (some present) and missing (none).
        rows = db.execute(
            "SELECT v.run, v.commit_id, v.commit_id IN temp.present OR EXISTS (SELECT 1"
            " FROM lines l WHERE l.run = v.run AND l.kind IN (0, 1) AND l.note IN temp.present)"
            " FROM lines v WHERE v.live = 1 AND v.kind = ? AND v.commit_id NOT IN temp.alive"
            " AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.run = v.run AND l.kind IN (0, 1)"
            " AND l.note IN temp.alive) ORDER BY v.run",
            (KIND_RUN,),
        ).fetchall()
        orphan_ids = [str(run) for run, _, has_present in rows if has_present]
        missing = [(str(run), str(commit)) for run, commit, has_present in rows if not has_present]
        found = located(index, orphan_ids)
    if any(run.conflict is not None for run in found.values()) or len(found) != len(orphan_ids):
        return None
    purged = sum(1 for _, commit in missing if ledger.is_kept(commit))
    orphans = Orphans(
        [found[r] for r in orphan_ids], [], [r for r, _ in missing], unreachable, present
    )
    return orphans, purged


def existing_commits(repo: GitRepo, oids: Sequence[str]) -> set[str]:
    """Those of ``oids`` that are commits in this repository (one ``cat-file`` call)."""
    found = object_headers(repo.workdir or repo.git_dir, oids)
    return {oid for oid, (kind, _) in found.items() if kind == "commit"}


def alive_refs(repo: GitRepo) -> list[str]:
    """``rev-list`` arguments naming what keeps a commit alive: branches, remote-tracking
    branches, tags and HEAD."""
    refs = list(REACHABLE_REFS)
    head = repo.git("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if head.returncode == 0:
        refs.append(head.stdout.decode().strip())
    return refs


def unreachable_from(repo: GitRepo, commits: Sequence[str]) -> dict[str, CommitInfo]:
    """Every commit reachable from ``commits`` but not from an alive ref, with its parents."""
    if not commits:
        return {}
    proc = repo.git(
        "rev-list",
        "--stdin",
        "--format=%P%x09%T%x09%at%x09%ct",
        "--not",
        *alive_refs(repo),
        input=lines(commits),
    )
    return parse_formatted(proc.stdout.decode())


def parse_formatted(text: str) -> dict[str, CommitInfo]:
    """``git rev-list --format=%P%x09%T%x09%at%x09%ct`` output as commit → info."""
    out: dict[str, CommitInfo] = {}
    rows = text.splitlines()
    for header, body in zip(rows[::2], rows[1::2], strict=False):
        commit = header.removeprefix("commit ").strip()
        parents, tree, author, committer = body.split("\t")
        out[commit] = CommitInfo(
            tuple(parents.split()), tree, min(int(author or 0), int(committer or 0))
        )
    return out


def lines(items: Iterable[str]) -> bytes:
    """``items`` as the newline-terminated stdin git's ``--stdin`` options read."""
    return "".join(f"{item}\n" for item in items).encode()

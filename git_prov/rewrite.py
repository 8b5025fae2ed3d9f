"""Runs follow their code through history rewrites.

A record always names the commit the run ran on, and that commit stays in the repository
(``refs/prov/objects`` keeps it, so ``git gc`` never prunes it). When history is rewritten,
the run is *also shown* on the new commit by an :class:`~git_prov.model.record.Attachment`
line in the new commit's note (``how`` says why; ``original`` is always the commit the run
ran on, however many rewrites lie between). Two ways find the new commit:

* :func:`follow_rewrite` / :func:`remap_rewritten` — git says which commit became which:
  the ``post-rewrite`` hook (``git commit --amend``, ``git rebase``) feeds git's old → new
  map. Idempotent (git may report a mapping twice). An ``amend`` fired by a fixup/squash
  step inside a rebase is skipped: the rebase's own event maps originals to final commits.
* :func:`remap` — git said nothing: a cherry-pick, a hosting service's squash or rebase
  merge, a rebase without the hook. It matches *orphaned* runs to reachable commits.

Decisions:

* **Orphaned** (:func:`find_orphans`): no commit the run is shown on is reachable from a
  local or remote-tracking branch, a tag or HEAD (``git prov``'s own refs do not count).
  A merged-and-deleted remote branch keeps its runs "alive" until ``git fetch --prune``.
* **Candidates**: commits of ``git rev-list REV-RANGE``; by default every commit reachable
  as above whose committer date is no older than the oldest orphan's author or committer
  date less :data:`CLOCK_SLACK_SECONDS` (copies are made after their originals).
* **Matching**, in order, per run: (1) a commit it is shown on has the same
  ``git patch-id --stable`` as exactly one candidate — ``patch-id``; (2) the combined diff
  ``git diff-tree -p first^ last`` of a line of orphaned commits ending at a commit it is
  shown on has one candidate's patch-id — ``squash of N commits`` (the line starts at the
  fork point from live history, or just below one of the nearest
  :data:`MAX_SQUASH_STARTS` orphaned run commits; a squash is found when a run was recorded
  on the last squashed commit, or on a commit that ends one of those lines); (3) a commit
  it is shown on has the same tree as exactly one candidate — ``same tree``: the code is
  byte-for-byte the code that ran, whatever the history. Several candidates at the first
  step that finds any make the run *ambiguous*: reported, never attached. No fuzzy
  matching: a rebase whose conflict was resolved by hand changes the patch-id and the tree,
  so its run is reported *unmatched* (the hook, when installed, still follows it).
* **Cherry-picks** leave the original reachable, so its runs are not orphaned and remap
  leaves them alone. ``include_reachable`` with a REV-RANGE (``git prov remap
  --include-reachable release``) also shows reachable runs on their copies in that range,
  by patch-id only. Once the original's branch is deleted, a plain remap finds the copy.

Patch-ids are cached per commit under ``<git common dir>/prov/patch-id/<ab>/<rest>`` — the
layout and values of :func:`git_prov.capture.source.patch_id` (an empty file means "no
patch-id": a merge or an empty change) — and per combined range under
``prov/patch-id-range/<ab>/<rest of start>-<end>``. A watermark
(``prov/remap-state.json``: a hash of every ref and the options) makes a repeated
:func:`remap` with no ref changed return the previous result without any work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from git_prov.capture.source import patch_id_pipeline
from git_prov.errors import UsageProblem
from git_prov.model.ids import is_hex_oid
from git_prov.model.record import Attachment, Entry, RunRecord
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger, LedgerScan, LocatedRun
from git_prov.store.repo import GitRepo

HOW_AMEND = "amend"
HOW_REBASE = "rebase"
HOW_PATCH_ID = "patch-id"
HOW_SAME_TREE = "same tree"
REWRITE_KINDS = (HOW_AMEND, HOW_REBASE)

# What counts as "alive": a run is orphaned when none of the commits it is shown on is
# reachable from these refs (nor from HEAD). Remote-tracking branches count, so a run on a
# teammate's pushed branch is not an orphan; `git fetch --prune` lets deleted ones go.
REACHABLE_REFS = ("--branches", "--tags", "--remotes")
# Copies are made after their originals. Candidates older than the oldest orphan (author or
# committer date, whichever is earlier) minus this slack for clock skew are not examined.
CLOCK_SLACK_SECONDS = 2 * 24 * 3600
# For a squash ending at an orphaned commit E, the ranges tried start at the fork point of
# E's orphaned line and just below each of the nearest orphaned run commits under E.
MAX_SQUASH_STARTS = 16
PATCH_ID_CACHE = "patch-id"
RANGE_CACHE = "patch-id-range"
WATERMARK_FILE = "remap-state.json"
# Bump when matching rules change, so an old watermark does not hide new matches.
MATCHER_VERSION = 1
CACHE_WRITE_THREADS = 4
CACHE_WRITE_THREADS_FROM = 256

K = TypeVar("K")


def how_squash(commits: int) -> str:
    """The ``how`` of an attachment found as a squash of ``commits`` commits."""
    return f"squash of {commits} commits"


# ---- the post-rewrite hook ---------------------------------------------------------------------


def parse_rewrite_lines(lines: Iterable[str]) -> list[tuple[str, str]]:
    """git's post-rewrite input (``old new [extra]`` per line) as (old, new) pairs.

    Lines that do not start with two object ids are skipped.
    """
    pairs: list[tuple[str, str]] = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and is_hex_oid(parts[0]) and is_hex_oid(parts[1]):
            pairs.append((parts[0], parts[1]))
    return pairs


def follow_rewrite(repo: GitRepo, kind: str, lines: Iterable[str]) -> list[Attachment]:
    """The post-rewrite hook: ``kind`` is git's first argument (``amend``, ``rebase``),
    ``lines`` its input. Returns the attachments written.

    An ``amend`` while a rebase is in progress (a fixup/squash step, or an amend at an
    ``edit`` stop) is skipped: the ``rebase`` event at the end maps every original to its
    final commit, so the intermediate commits, which nothing will keep, get no attachments.
    """
    if kind == HOW_AMEND and rebase_in_progress(repo):
        return []
    return remap_rewritten(repo, parse_rewrite_lines(lines), kind)


def rebase_in_progress(repo: GitRepo) -> bool:
    """True while ``git rebase`` (merge or apply backend) is under way in this worktree."""
    if (repo.git_dir / "rebase-merge").is_dir():
        return True
    apply = repo.git_dir / "rebase-apply"
    return apply.is_dir() and not (apply / "applying").exists()  # "applying": git am


def remap_rewritten(
    repo: GitRepo, mapping: Iterable[tuple[str, str]], how: str, *, at: str | None = None
) -> list[Attachment]:
    """Show the runs of each rewritten ``old`` commit on its ``new`` commit as well.

    ``mapping`` is git's old → new map (several olds may map to one new: a squash);
    ``how`` says what rewrote it (``amend``, ``rebase``). Runs shown on ``old`` through an
    attachment follow too, and their new attachment names the commit the run ran on.
    Idempotent: a run already shown on ``new`` (by its record, an attachment, or git's own
    notes copying) gets nothing new, so a hook that fires twice writes nothing twice.
    Everything is written in one ledger commit; the originals stay kept. Returns the
    attachments written.
    """
    pairs = list(dict.fromkeys((old, new) for old, new in mapping if old != new))
    ledger = Ledger(repo)
    if not pairs or ledger.tip(NOTES_REF) is None:
        return []
    stamp = at or now_iso()
    # run id → original commit, for what each commit shows (the ledger plus this batch, so a
    # chain old → mid → new inside one batch carries through).
    shown: dict[str, dict[str, str]] = {}

    def shown_on(commit: str) -> dict[str, str]:
        if commit not in shown:
            entries, _problems = ledger.entries_on(commit)
            shown[commit] = _runs_in(entries)
        return shown[commit]

    written: list[Attachment] = []
    for old, new in pairs:
        carried = shown_on(old)
        if not carried:
            continue
        target = shown_on(new)
        for run_id, original in sorted(carried.items()):
            if run_id in target or original == new:
                continue
            target[run_id] = original
            written.append(Attachment(run_id, new, original, how, stamp))
    if written:
        ledger.write(
            [(a.commit, a) for a in written],
            keep=_present(repo, {a.original for a in written}),
            message=f"git-prov: {len(written)} run(s) follow {how}",
        )
    return written


def _present(repo: GitRepo, commits: Iterable[str]) -> list[str]:
    """The commits this repository has (a kept commit must exist to be a parent)."""
    return sorted(c for c in commits if c in repo.pygit)


def _runs_in(entries: Iterable[Entry]) -> dict[str, str]:
    runs: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, RunRecord):
            runs.setdefault(entry.id, entry.commit)
        elif isinstance(entry, Attachment):
            runs.setdefault(entry.run, entry.original)
    return runs


def now_iso() -> str:
    """The current UTC time as ledger entries write it."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


# ---- orphans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitInfo:
    """What :func:`remap` needs of one commit."""

    parents: tuple[str, ...]
    tree: str
    date: int  # the earlier of author and committer date (seconds)


@dataclass
class _Orphans:
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
    return _find_orphans(repo, scan or Ledger(repo).scan()).runs


def _find_orphans(repo: GitRepo, scan: LedgerScan) -> _Orphans:
    live = scan.live_runs()
    shown = sorted({c for run in live for c in run.shown_on})
    present = _existing_commits(repo, shown)
    unreachable = _unreachable_from(repo, [c for c in shown if c in present])
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
    return _Orphans(orphans, reachable, missing, unreachable, present)


def _existing_commits(repo: GitRepo, oids: Sequence[str]) -> set[str]:
    if not oids:
        return set()
    out = repo.git(
        "cat-file", "--batch-check=%(objectname) %(objecttype)", input=_lines(oids)
    ).stdout.decode()
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            found.add(parts[0])
    return found


def _alive_refs(repo: GitRepo) -> list[str]:
    refs = list(REACHABLE_REFS)
    head = repo.git("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if head.returncode == 0:
        refs.append(head.stdout.decode().strip())
    return refs


def _unreachable_from(repo: GitRepo, commits: Sequence[str]) -> dict[str, CommitInfo]:
    """Every commit reachable from ``commits`` but not from an alive ref, with its parents."""
    if not commits:
        return {}
    proc = repo.git(
        "rev-list",
        "--stdin",
        "--format=%P%x09%T%x09%at%x09%ct",
        "--not",
        *_alive_refs(repo),
        input=_lines(commits),
    )
    return _parse_formatted(proc.stdout.decode())


def _parse_formatted(text: str) -> dict[str, CommitInfo]:
    out: dict[str, CommitInfo] = {}
    lines = text.splitlines()
    for header, body in zip(lines[::2], lines[1::2], strict=False):
        commit = header.removeprefix("commit ").strip()
        parents, tree, author, committer = body.split("\t")
        out[commit] = CommitInfo(
            tuple(parents.split()), tree, min(int(author or 0), int(committer or 0))
        )
    return out


# ---- patch-ids ---------------------------------------------------------------------------------


def patch_ids(repo: GitRepo, commits: Iterable[str]) -> dict[str, str | None]:
    """``git patch-id --stable`` of each commit against its first parent (None for merges
    and empty changes), from the per-commit cache; the missing ones are computed in one
    ``git diff-tree --stdin -p --no-renames --full-index --root | git patch-id --stable``
    pipeline and cached.

    Same values and cache as :func:`git_prov.capture.source.patch_id`, which computes one
    commit at a time. Every commit given must exist in the repository.
    """
    wanted = list(dict.fromkeys(commits))
    cache = repo.prov_dir / PATCH_ID_CACHE
    known = _read_cached(cache, {c: f"{c[:2]}/{c[2:]}" for c in wanted})
    todo = [c for c in wanted if c not in known]
    if todo:
        computed = patch_id_pipeline(repo, _lines(todo))
        for commit in todo:
            known[commit] = computed.get(commit)
        _write_cached(cache, [(f"{c[:2]}/{c[2:]}", known[c]) for c in todo])
    return known


def _range_patch_ids(
    repo: GitRepo, ranges: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    """Patch-ids of the combined diffs ``git diff-tree -p start end`` (cached per range).

    Each batch gives ``diff-tree --stdin`` lines ``END START`` (END diffed against START as
    if START were its parent); patch-id labels each result with END, so one batch holds
    each end once.
    """
    cache = repo.prov_dir / RANGE_CACHE
    names = {span: f"{span[0][:2]}/{span[0][2:]}-{span[1]}" for span in dict.fromkeys(ranges)}
    known = _read_cached(cache, names)
    todo = [span for span in names if span not in known]
    while todo:
        batch: dict[str, str] = {}
        later: list[tuple[str, str]] = []
        for start, end in todo:
            if end in batch:
                later.append((start, end))
            else:
                batch[end] = start
        computed = patch_id_pipeline(
            repo, _lines(f"{end} {start}" for end, start in batch.items()), fake_parents=True
        )
        for end, start in batch.items():
            known[(start, end)] = computed.get(end)
        _write_cached(cache, [(names[(s, e)], known[(s, e)]) for e, s in batch.items()])
        todo = later
    return known


def _read_cached(folder: Path, names: Mapping[K, str]) -> dict[K, str | None]:
    """The cached values of ``names`` (key → path under ``folder``) that are present
    (an empty file is a cached None)."""
    root = str(folder)
    found: dict[K, str | None] = {}
    for key, name in names.items():
        try:
            with open(f"{root}/{name}", encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, ValueError):
            continue
        found[key] = text or None
    return found


def _write_cached(folder: Path, items: Sequence[tuple[str, str | None]]) -> None:
    """Write cache entries (path under ``folder``, value), each atomically (temp + rename).

    Creating thousands of small files is bound by file-system latency, not CPU, so large
    batches are written by a few threads.
    """
    root = str(folder)
    for sub in {name.rpartition("/")[0] for name, _ in items}:
        with contextlib.suppress(OSError):
            os.makedirs(f"{root}/{sub}", exist_ok=True)
    suffix = f".{os.getpid()}.tmp"

    def write(chunk: Sequence[tuple[str, str | None]]) -> None:
        for name, value in chunk:
            path = f"{root}/{name}"
            with contextlib.suppress(OSError):
                fd = os.open(path + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, (value or "").encode())
                finally:
                    os.close(fd)
                os.replace(path + suffix, path)

    if len(items) < CACHE_WRITE_THREADS_FROM:
        write(items)
        return
    with ThreadPoolExecutor(max_workers=CACHE_WRITE_THREADS) as pool:
        list(pool.map(write, [items[i::CACHE_WRITE_THREADS] for i in range(CACHE_WRITE_THREADS)]))


def _lines(items: Iterable[str]) -> bytes:
    return "".join(f"{item}\n" for item in items).encode()


# ---- remap -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemapMatch:
    """An orphaned run and the reachable commit it is now also shown on."""

    run: str
    original: str  # the commit the run ran on
    commit: str  # the reachable commit it was attached to
    how: str  # patch-id, squash of N commits, same tree
    via: str  # the (unreachable) commit whose change matched: the original or a copy of it


@dataclass(frozen=True)
class RemapAmbiguity:
    """A run that matches several reachable commits equally well: not attached."""

    run: str
    original: str
    candidates: tuple[str, ...]
    how: str


@dataclass(frozen=True)
class RemapUnmatched:
    """An orphaned run no reachable commit matches (its code is still kept)."""

    run: str
    original: str
    shown_on: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RemapReport:
    """What :func:`remap` found and did."""

    matched: tuple[RemapMatch, ...] = ()
    ambiguous: tuple[RemapAmbiguity, ...] = ()
    unmatched: tuple[RemapUnmatched, ...] = ()
    orphans: int = 0  # runs examined (orphans, plus reachable ones with include_reachable)
    candidates: int = 0  # reachable commits examined
    missing: int = 0  # runs whose commits are not in this repository
    dry_run: bool = False
    written: bool = False  # attachments were written (one ledger commit)
    up_to_date: bool = False  # nothing changed since the last remap: no work was done

    def to_json_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def remap(
    repo: GitRepo,
    revisions: Sequence[str] | None = None,
    dry_run: bool = False,
    *,
    include_reachable: bool = False,
) -> RemapReport:
    """Attach orphaned runs to the reachable commits their code was copied to.

    Candidates are the commits of ``git rev-list REVISIONS`` (default: every commit
    reachable from a branch, remote-tracking branch, tag or HEAD, newer than the oldest
    orphan less two days). A run matches a candidate when, in this order:

    1. a commit it is shown on has the candidate's ``git patch-id --stable`` (``patch-id``);
    2. the combined diff of a line of its orphaned commits — from the fork point, or from
       just below another orphaned run commit, up to a commit it is shown on — has the
       candidate's patch-id (``squash of N commits``);
    3. a commit it is shown on has the candidate's tree: the exact same code
       (``same tree``).

    Several candidates for one run make it *ambiguous*: reported, not attached. No match
    is *unmatched*: reported. ``include_reachable`` (needs ``revisions``) also matches runs
    whose commits are still reachable elsewhere — e.g. to show runs on cherry-picked
    copies — by patch-id only. All attachments go into one ledger commit, unless
    ``dry_run``. When no ref changed since the last remap, nothing is recomputed and the
    previous ambiguous and unmatched runs are returned with ``up_to_date``.
    """
    revisions = list(revisions or [])
    _check_revisions(revisions)
    if include_reachable and not revisions:
        raise UsageProblem(
            "--include-reachable needs a REV-RANGE",
            "name where copies are, e.g. git prov remap --include-reachable release",
        )
    settings = {"v": MATCHER_VERSION, "revisions": revisions, "reachable": include_reachable}
    before = _ref_state(repo)
    key = _state_key(before, settings)
    cached = _read_watermark(repo, key)
    if cached is not None:
        return replace(cached, dry_run=dry_run)
    ledger = Ledger(repo)
    report = _compute(repo, ledger, revisions, include_reachable, dry_run)
    if dry_run:
        return report
    if report.matched:
        stamp = now_iso()
        ledger.write(
            [
                (m.commit, Attachment(m.run, m.commit, m.original, m.how, stamp))
                for m in report.matched
            ],
            keep=_present(repo, {m.original for m in report.matched}),
            message=f"git-prov: remap {len(report.matched)} run(s)",
        )
        report = replace(report, written=True)
        after = _ref_state(repo)
        if not _only_our_write(repo, before, after):
            return report  # someone else changed refs meanwhile: no watermark, recompute
        key = _state_key(after, settings)
    _write_watermark(repo, key, report)
    return report


def _check_revisions(revisions: Sequence[str]) -> None:
    for rev in revisions:
        # Not --all: it would offer git-prov's own kept commits as candidates.
        if rev.startswith("-") and rev not in REACHABLE_REFS:
            raise UsageProblem(
                f"unsupported revision option {rev!r}",
                "give revisions or ranges such as main, main~20..main or --branches",
            )


@dataclass
class _Matches:
    """Per run: candidate → (how, via) for unique matches; ambiguous candidate lists."""

    unique: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    ambiguous: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)


def _compute(
    repo: GitRepo, ledger: Ledger, revisions: list[str], include_reachable: bool, dry_run: bool
) -> RemapReport:
    scan = ledger.scan()
    found = _find_orphans(repo, scan)
    examined = list(found.runs)
    if include_reachable:
        examined += found.reachable_runs
    if not examined:
        return RemapReport(missing=len(found.missing), dry_run=dry_run)
    orphan_commits = {c for run in found.runs for c in run.shown_on if c in found.unreachable}
    if revisions or not orphan_commits:
        candidate_args = list(revisions)
    else:
        oldest = min(found.unreachable[c].date for c in orphan_commits)
        candidate_args = [f"--max-age={max(oldest - CLOCK_SLACK_SECONDS, 0)}", *_alive_refs(repo)]
    proc = repo.git("rev-list", "--format=%T", *candidate_args, "--", check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageProblem(
            f"bad revision range: {detail[-1] if detail else ' '.join(revisions)}",
            "see `git help revisions`",
        )
    lines = proc.stdout.decode().splitlines()
    cand_tree = {
        h.removeprefix("commit "): t for h, t in zip(lines[::2], lines[1::2], strict=False)
    }
    # Runs shown on a candidate are not remapped (include_reachable: they are where asked).
    examined = [r for r in examined if not any(c in cand_tree for c in r.shown_on)]
    if not examined:
        return RemapReport(
            orphans=0, candidates=len(cand_tree), missing=len(found.missing), dry_run=dry_run
        )
    present = found.present
    ids = patch_ids(
        repo, [*sorted({c for r in examined for c in r.shown_on if c in present}), *cand_tree]
    )
    by_patch: dict[str, list[str]] = {}
    for commit in cand_tree:
        pid = ids.get(commit)
        if pid:
            by_patch.setdefault(pid, []).append(commit)

    matches = _Matches()
    for run in examined:
        _match_by_key(
            matches,
            run,
            ((c, ids.get(c)) for c in run.shown_on if c in present),
            by_patch,
            HOW_PATCH_ID,
        )
    # Squash and same-tree matching are for true orphans that patch-ids left undecided.
    examined_ids = {r.id for r in examined}
    orphan_ids = {r.id for r in found.runs}
    pending = [
        r
        for r in found.runs
        if r.id in examined_ids and r.id not in matches.unique and r.id not in matches.ambiguous
    ]
    if pending:
        _match_squashes(repo, matches, pending, found, by_patch)
    pending = [r for r in pending if r.id not in matches.unique and r.id not in matches.ambiguous]
    if pending:
        by_tree: dict[str, list[str]] = {}
        for commit, tree in cand_tree.items():
            by_tree.setdefault(tree, []).append(commit)
        for run in pending:
            pairs = ((c, found.unreachable[c].tree) for c in run.shown_on if c in present)
            _match_by_key(matches, run, pairs, by_tree, HOW_SAME_TREE)

    matched: list[RemapMatch] = []
    ambiguous: list[RemapAmbiguity] = []
    unmatched: list[RemapUnmatched] = []
    for run in examined:
        record = run.record
        if run.id in matches.unique:
            for commit, (how, via) in sorted(matches.unique[run.id].items()):
                matched.append(RemapMatch(run.id, record.commit, commit, how, via))
        elif run.id in matches.ambiguous:
            candidates, how = matches.ambiguous[run.id]
            ambiguous.append(RemapAmbiguity(run.id, record.commit, candidates, how))
        elif run.id in orphan_ids:
            unmatched.append(
                RemapUnmatched(run.id, record.commit, run.shown_on, _why_unmatched(run, ids))
            )
    return RemapReport(
        matched=tuple(matched),
        ambiguous=tuple(ambiguous),
        unmatched=tuple(unmatched),
        orphans=len(examined),
        candidates=len(cand_tree),
        missing=len(found.missing),
        dry_run=dry_run,
    )


def _why_unmatched(run: LocatedRun, ids: Mapping[str, str | None]) -> str:
    if not any(ids.get(c) for c in run.shown_on):
        return "a merge or an empty change: no patch-id, and no reachable commit has its tree"
    return "no reachable commit has the same change, combined change (squash) or tree"


def _match_by_key(
    matches: _Matches,
    run: LocatedRun,
    keyed: Iterable[tuple[str, str | None]],
    index: Mapping[str, list[str]],
    how: str,
) -> None:
    """Record the unique matches of a run's commits (commit, key) in ``index``."""
    for via, key in keyed:
        if not key:
            continue
        found = [c for c in index.get(key, ()) if c not in run.shown_on]
        if len(found) == 1:
            matches.unique.setdefault(run.id, {}).setdefault(found[0], (how, via))
        elif len(found) > 1 and run.id not in matches.ambiguous:
            matches.ambiguous[run.id] = (tuple(sorted(found)), how)
    if run.id in matches.unique:
        matches.ambiguous.pop(run.id, None)


def _match_squashes(
    repo: GitRepo,
    matches: _Matches,
    runs: list[LocatedRun],
    found: _Orphans,
    by_patch: Mapping[str, list[str]],
) -> None:
    """Squash detection: one candidate whose diff is the combined diff of a line of
    orphaned commits ending at a commit an unmatched run is shown on."""
    graph = found.unreachable
    run_commits = {c for run in found.runs for c in run.shown_on if c in graph}
    ends = sorted({c for run in runs for c in run.shown_on if c in graph})
    # (start, end) → run commits it covers and its length in commits
    ranges: dict[tuple[str, str], tuple[list[str], int]] = {}
    for end in ends:
        line: list[str] = []  # end and its orphaned first-parent ancestors, newest first
        node: str | None = end
        while node is not None and node in graph:
            line.append(node)
            parents = graph[node].parents
            node = parents[0] if parents else None
        fork = node  # the first alive ancestor, or None at a root
        covered: list[str] = []
        starts = 0
        for depth, commit in enumerate(line):
            if commit not in run_commits:
                continue
            covered.append(commit)
            parents = graph[commit].parents
            if depth > 0 and parents and starts < MAX_SQUASH_STARTS:
                ranges.setdefault((parents[0], end), (list(covered), depth + 1))
                starts += 1
        if fork is not None and len(line) > 1:
            ranges[(fork, end)] = (covered, len(line))
    if not ranges:
        return
    combined = _range_patch_ids(repo, list(ranges))
    per_commit: dict[str, dict[str, int]] = {}
    for span, (covered, length) in ranges.items():
        pid = combined.get(span)
        candidates = by_patch.get(pid, []) if pid else []
        if len(candidates) != 1:
            continue
        for commit in covered:
            best = per_commit.setdefault(commit, {})
            best[candidates[0]] = max(best.get(candidates[0], 0), length)
    for run in runs:
        options: dict[str, tuple[int, str]] = {}
        for commit in run.shown_on:
            for candidate, length in per_commit.get(commit, {}).items():
                if candidate not in options or options[candidate][0] < length:
                    options[candidate] = (length, commit)
        if len(options) == 1:
            [(candidate, (length, via))] = options.items()
            matches.unique[run.id] = {candidate: (how_squash(length), via)}
            matches.ambiguous.pop(run.id, None)
        elif len(options) > 1:
            matches.ambiguous[run.id] = (tuple(sorted(options)), "squash")


# ---- watermark -----------------------------------------------------------------------------------


def _ref_state(repo: GitRepo) -> dict[str, str]:
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)").stdout.decode()
    state = {}
    for line in out.splitlines():
        oid, _, name = line.partition(" ")
        state[name] = oid
    head = repo.git("rev-parse", "-q", "--verify", "HEAD", check=False)
    state["HEAD"] = head.stdout.decode().strip()
    return state


def _state_key(state: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    text = json.dumps({"refs": sorted(state.items()), "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _only_our_write(repo: GitRepo, before: Mapping[str, str], after: Mapping[str, str]) -> bool:
    """True when the refs changed only by one new commit on each ledger ref."""
    for name in set(before) | set(after):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name not in (NOTES_REF, OBJECTS_REF) or new is None:
            return False
        parents = repo.git("rev-parse", f"{new}^@", check=False).stdout.decode().split()
        if old is not None and (not parents or parents[0] != old):
            return False
    return True


def _read_watermark(repo: GitRepo, key: str) -> RemapReport | None:
    """The report left by the last remap if it ran on exactly this state, else None."""
    try:
        data = json.loads((repo.prov_dir / WATERMARK_FILE).read_text())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return RemapReport(
            ambiguous=tuple(
                RemapAmbiguity(**{**a, "candidates": tuple(a["candidates"])})
                for a in data["ambiguous"]
            ),
            unmatched=tuple(
                RemapUnmatched(**{**u, "shown_on": tuple(u["shown_on"])}) for u in data["unmatched"]
            ),
            orphans=len(data["ambiguous"]) + len(data["unmatched"]),
            candidates=int(data["candidates"]),
            missing=int(data["missing"]),
            up_to_date=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # only a cache: recompute


def _write_watermark(repo: GitRepo, key: str, report: RemapReport) -> None:
    data = {
        "key": key,
        "ambiguous": [asdict(a) for a in report.ambiguous],
        "unmatched": [asdict(u) for u in report.unmatched],
        "candidates": report.candidates,
        "missing": report.missing,
    }
    path = repo.prov_dir / WATERMARK_FILE
    with contextlib.suppress(OSError):
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)

"""``git prov remap``: orphaned runs found again on the commits their code was copied to when
git said nothing (a cherry-pick, a hosting service's squash or rebase merge, a rebase
without the hook). The rules are in :func:`remap` and in :mod:`git_prov.rewrite`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from git_prov.errors import UsageProblem
from git_prov.model.record import Attachment
from git_prov.rewrite.evidence import (
    CommitFacts,
    copy_missing,
    is_empty_change,
    read_facts,
    squash_evidence,
)
from git_prov.rewrite.hook import now_iso, present
from git_prov.rewrite.orphans import (
    REACHABLE_REFS,
    CommitInfo,
    Orphans,
    alive_refs,
    index_orphans,
    parse_formatted,
    scan_orphans,
)
from git_prov.rewrite.patchids import patch_ids, range_patch_ids
from git_prov.rewrite.report import (
    RemapAmbiguity,
    RemapCandidate,
    RemapMatch,
    RemapReport,
    RemapUnmatched,
)
from git_prov.rewrite.watermark import (
    only_our_write,
    read_watermark,
    ref_state,
    state_key,
    write_watermark,
)
from git_prov.store.ledger import Ledger, LocatedRun
from git_prov.store.repo import GitRepo

HOW_PATCH_ID = "patch-id"
HOW_SAME_TREE = "same tree"
HOW_EMPTY = "copy of an empty commit"
# Copies are made after their originals. Candidates older than the oldest orphan (author or
# committer date, whichever is earlier) minus this slack for clock skew are not examined.
CLOCK_SLACK_SECONDS = 2 * 24 * 3600
# For a squash ending at an orphaned commit E, the ranges tried start at the fork point of
# E's orphaned line, at the live parents of merges in it (a host's "update branch"), and
# just below each of the nearest orphaned run commits under E.
MAX_SQUASH_STARTS = 16
# Bump when matching rules change, so an old watermark does not hide new matches.
MATCHER_VERSION = 2


def how_squash(commits: int) -> str:
    """The ``how`` of an attachment found as a squash of ``commits`` commits."""
    return f"squash of {commits} commits"


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
    orphan less two days). A run is attached to a candidate only with evidence that the
    candidate is a copy of a commit it is shown on, tried in this order:

    1. the same ``git patch-id --stable`` *and* the same author, author date and message
       (a rebase, a cherry-pick, a rebase merge) — ``patch-id``; for an empty change, the
       same author, author date and message and empty too — ``copy of an empty commit``;
    2. the combined change of a line of its orphaned commits (from the fork point, from a
       merge of live history into the line, or from just below another orphaned run
       commit, up to a commit it is shown on) has the candidate's patch-id, *and* the
       candidate has the tree of the line's last commit or a message naming every squashed
       commit — ``squash of N commits``;
    3. a commit it is shown on has the candidate's tree: the exact same code
       (``same tree``).

    Several candidates with evidence make a run *ambiguous*: reported, not attached. A
    candidate with the same change but no evidence is *unconfirmed*: listed with what it
    lacks, never attached. No match is *unmatched*. ``include_reachable`` (needs
    ``revisions``) also matches runs whose commits are still reachable elsewhere — e.g. to
    show runs on cherry-picked copies — by step 1 only. All attachments go into one ledger
    commit, unless ``dry_run``. When no ref changed since the last remap (or the last dry
    run that found nothing to attach), nothing is recomputed and the previous unattached
    runs are returned with ``up_to_date``.
    """
    revisions = list(revisions or [])
    _check_revisions(revisions)
    if include_reachable and not revisions:
        raise UsageProblem(
            "--include-reachable needs a REV-RANGE",
            "name where copies are, e.g. git prov remap --include-reachable release",
        )
    from git_prov.rewrite.filter_repo import HOW_FILTER_REPO, commit_map_state, follow_filter_repo

    settings = {
        "v": MATCHER_VERSION,
        "revisions": revisions,
        "reachable": include_reachable,
        "filter_repo": commit_map_state(repo),
    }
    before = ref_state(repo)
    key = state_key(before, settings)
    cached = read_watermark(repo, key)
    if cached is not None:
        return replace(cached, dry_run=dry_run)
    # git filter-repo said exactly which commit became which: follow that first.
    followed = tuple(
        RemapMatch(a.run, a.original, a.commit, HOW_FILTER_REPO, a.original)
        for a in follow_filter_repo(repo, write=not dry_run)
    )
    if followed and not dry_run:
        before = ref_state(repo)
    ledger = Ledger(repo)
    report = _compute(repo, ledger, revisions, include_reachable, dry_run)
    if followed:
        done = {m.run for m in followed}
        report = replace(
            report,
            matched=followed + report.matched,
            written=not dry_run,
            missing=max(report.missing - len(done), 0) if dry_run else report.missing,
            purged=max(report.purged - len(done), 0) if dry_run else report.purged,
        )
    if dry_run:
        if not report.matched:
            # Nothing to attach: the real remap would find the same and leave this watermark,
            # so a dry run repeated on the same refs costs nothing either.
            write_watermark(repo, key, report)
        return report
    if any(m.how != HOW_FILTER_REPO for m in report.matched):
        stamp = now_iso()
        fresh = [m for m in report.matched if m.how != HOW_FILTER_REPO]
        ledger.write(
            [(m.commit, Attachment(m.run, m.commit, m.original, m.how, stamp)) for m in fresh],
            keep=present(repo, {m.original for m in fresh}),
            message=f"git-prov: remap {len(fresh)} run(s)",
        )
        report = replace(report, written=True)
        after = ref_state(repo)
        if not only_our_write(repo, before, after):
            return report  # someone else changed refs meanwhile: no watermark, recompute
        key = state_key(after, settings)
    elif followed:
        key = state_key(ref_state(repo), settings)
    write_watermark(repo, key, report)
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
    """Per run: candidate → (how, via) with evidence; ambiguous candidate lists; and
    candidate → RemapCandidate without evidence."""

    unique: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    ambiguous: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    weak: dict[str, dict[str, RemapCandidate]] = field(default_factory=dict)

    def decided(self, run: str) -> bool:
        return run in self.unique or run in self.ambiguous

    def add(self, run: LocatedRun, found: Mapping[str, tuple[str, str]], how: str) -> None:
        """Candidates with evidence for ``run`` from one step: one is a match, several
        are ambiguous (unless an earlier step already matched)."""
        if len(found) == 1:
            self.unique.setdefault(run.id, {}).update(found)
            self.ambiguous.pop(run.id, None)
        elif len(found) > 1 and run.id not in self.unique and run.id not in self.ambiguous:
            self.ambiguous[run.id] = (tuple(sorted(found)), how)

    def add_weak(self, run: LocatedRun, candidate: RemapCandidate) -> None:
        self.weak.setdefault(run.id, {}).setdefault(candidate.commit, candidate)


@dataclass
class _Context:
    """What one remap knows: the orphans, the candidates, patch-ids and commit facts."""

    repo: GitRepo
    found: Orphans
    candidates: dict[str, CommitInfo]
    ids: dict[str, str | None]
    facts: dict[str, CommitFacts] = field(default_factory=dict)

    def need(self, commits: Iterable[str]) -> None:
        """Read the facts of ``commits`` not read yet (one ``cat-file`` call)."""
        todo = [c for c in dict.fromkeys(commits) if c not in self.facts]
        if todo:
            self.facts.update(read_facts(self.repo, todo))


def _compute(
    repo: GitRepo, ledger: Ledger, revisions: list[str], include_reachable: bool, dry_run: bool
) -> RemapReport:
    # Without include_reachable only the orphans' records are needed: the query index names
    # them (index_orphans), unless one is in conflict; then every note is read, as ever.
    quick = None if include_reachable else index_orphans(repo, ledger)
    if quick is not None:
        found, purged = quick
    else:
        scan = ledger.scan()
        found = scan_orphans(repo, scan)
        # Runs whose commit we kept but no longer have: a purge (git filter-repo) removed it.
        purged = sum(1 for run in found.missing if ledger.is_kept(scan.runs[run].record.commit))
    examined = list(found.runs)
    if include_reachable:
        examined += found.reachable_runs
    if not examined:
        return RemapReport(missing=len(found.missing), purged=purged, dry_run=dry_run)
    orphan_commits = {c for run in found.runs for c in run.shown_on if c in found.unreachable}
    if revisions or not orphan_commits:
        candidate_args = list(revisions)
    else:
        oldest = min(found.unreachable[c].date for c in orphan_commits)
        candidate_args = [f"--max-age={max(oldest - CLOCK_SLACK_SECONDS, 0)}", *alive_refs(repo)]
    proc = repo.git(
        "rev-list", "--format=%P%x09%T%x09%at%x09%ct", *candidate_args, "--", check=False
    )
    if proc.returncode != 0:
        from git_prov.store.gitcli import bad_revision

        raise bad_revision(repo.workdir or repo.git_dir, revisions, proc.stderr)
    candidates = parse_formatted(proc.stdout.decode())
    # Runs shown on a candidate are not remapped (include_reachable: they are where asked).
    examined = [r for r in examined if not any(c in candidates for c in r.shown_on)]
    if not examined:
        return RemapReport(
            orphans=0,
            candidates=len(candidates),
            missing=len(found.missing),
            purged=purged,
            dry_run=dry_run,
        )
    present_commits = found.present
    ids = patch_ids(
        repo,
        [*sorted({c for r in examined for c in r.shown_on if c in present_commits}), *candidates],
    )
    ctx = _Context(repo, found, candidates, ids)
    matches = _Matches()
    _match_copies(ctx, matches, examined)
    # Squash and same-tree matching are for true orphans that copies left undecided.
    examined_ids = {r.id for r in examined}
    pending = [r for r in found.runs if r.id in examined_ids and not matches.decided(r.id)]
    if pending:
        _match_squashes(ctx, matches, pending)
    pending = [r for r in pending if not matches.decided(r.id)]
    if pending:
        _match_trees(ctx, matches, pending)
    return replace(_report(ctx, matches, examined, dry_run), purged=purged)


def _shown(ctx: _Context, run: LocatedRun) -> list[str]:
    return [c for c in run.shown_on if c in ctx.found.present]


def _match_copies(ctx: _Context, matches: _Matches, runs: Sequence[LocatedRun]) -> None:
    """Step 1: candidates with the same patch-id (or, for an empty change, empty too) that
    kept the author, author date and message."""
    by_patch: dict[str, list[str]] = {}
    for commit in ctx.candidates:
        pid = ctx.ids.get(commit)
        if pid:
            by_patch.setdefault(pid, []).append(commit)
    # (run, via, candidates) to judge; facts are read once for all of them.
    todo: list[tuple[LocatedRun, str, list[str], str]] = []
    no_patch = [c for r in runs for c in _shown(ctx, r) if not ctx.ids.get(c)]
    empty_candidates: list[str] = []
    if no_patch:
        ctx.need(no_patch)
        ctx.need(p for c in no_patch if c in ctx.facts for p in ctx.facts[c].parents[:1])
        maybe = [
            c for c, info in ctx.candidates.items() if not ctx.ids.get(c) and len(info.parents) == 1
        ]
        ctx.need([*maybe, *(ctx.candidates[c].parents[0] for c in maybe)])
        empty_candidates = [c for c in maybe if is_empty_change(c, ctx.facts)]
    for run in runs:
        for via in _shown(ctx, run):
            pid = ctx.ids.get(via)
            if pid:
                found = [c for c in by_patch.get(pid, ()) if c not in run.shown_on]
                todo.append((run, via, found, HOW_PATCH_ID))
            elif is_empty_change(via, ctx.facts):
                found = [c for c in empty_candidates if c not in run.shown_on]
                todo.append((run, via, found, HOW_EMPTY))
    ctx.need(c for _, via, found, _ in todo if found for c in (via, *found))
    for run, via, found, how in todo:
        proven: dict[str, tuple[str, str]] = {}
        for candidate in found:
            missing = copy_missing(via, ctx.facts, candidate)
            if not missing:
                proven[candidate] = (how, via)
            elif how == HOW_PATCH_ID:  # an empty commit with other facts is no candidate
                matches.add_weak(
                    run,
                    RemapCandidate(
                        run.id, run.record.commit, candidate, how, via, ", ".join(missing)
                    ),
                )
        matches.add(run, proven, how)


def _squash_lines(
    graph: Mapping[str, CommitInfo], run_commits: set[str], ends: Iterable[str]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """Ranges (start, end) a squash of orphaned history may have combined, with the commits
    it squashed (newest first)."""
    ranges: dict[tuple[str, str], tuple[str, ...]] = {}
    for end in ends:
        line: list[str] = []  # end and its orphaned first-parent ancestors, newest first
        merged_from: list[str] = []  # live parents of merges in the line, newest first
        node: str | None = end
        while node is not None and node in graph:
            line.append(node)
            parents = graph[node].parents
            merged_from.extend(p for p in parents[1:] if p not in graph)
            node = parents[0] if parents else None
        fork = node  # the first alive ancestor, or None at a root
        whole = _orphaned_ancestors(graph, end)
        starts = 0
        for depth, commit in enumerate(line):
            if commit not in run_commits:
                continue
            parents = graph[commit].parents
            if depth > 0 and parents and starts < MAX_SQUASH_STARTS:
                ranges.setdefault((parents[0], end), tuple(line[: depth + 1]))
                starts += 1
        for start in merged_from[:MAX_SQUASH_STARTS]:
            ranges.setdefault((start, end), whole)
        if fork is not None and len(whole) > 1:
            ranges[(fork, end)] = whole
    return ranges


def _orphaned_ancestors(graph: Mapping[str, CommitInfo], end: str) -> tuple[str, ...]:
    """``end`` and every orphaned commit under it (any parent), newest first."""
    seen: dict[str, None] = {}
    stack = [end]
    while stack:
        node = stack.pop()
        if node in seen or node not in graph:
            continue
        seen[node] = None
        stack.extend(reversed(graph[node].parents))
    return tuple(seen)


def _match_squashes(ctx: _Context, matches: _Matches, runs: list[LocatedRun]) -> None:
    """Step 2: one candidate whose change is the combined change of a line of orphaned
    commits ending at a commit an undecided run is shown on, with a squash's evidence."""
    graph = ctx.found.unreachable
    run_commits = {c for run in ctx.found.runs for c in run.shown_on if c in graph}
    ends = sorted({c for run in runs for c in run.shown_on if c in graph})
    ranges = _squash_lines(graph, run_commits, ends)
    if not ranges:
        return
    combined = range_patch_ids(ctx.repo, list(ranges))
    by_patch: dict[str, list[str]] = {}
    wanted = {pid for pid in combined.values() if pid}
    for commit in ctx.candidates:
        pid = ctx.ids.get(commit)
        if pid in wanted:
            by_patch.setdefault(pid, []).append(commit)
    hits = {span: by_patch.get(pid or "", []) for span, pid in combined.items()}
    ctx.need(
        c
        for span, found in hits.items()
        if found
        for c in (*found, *ranges[span], *(p for s in ranges[span] for p in graph[s].parents))
    )
    # run commit → candidate → (commits squashed, proven)
    per_commit: dict[str, dict[str, tuple[int, bool]]] = {}
    for span, found in hits.items():
        squashed = ranges[span]
        proven = [c for c in found if squash_evidence(span[1], squashed, ctx.facts, c)]
        for candidate in found:
            ok = candidate in proven
            for commit in squashed:
                if commit not in run_commits:
                    continue
                best = per_commit.setdefault(commit, {})
                length, was = best.get(candidate, (0, False))
                if (ok, len(squashed)) > (was, length):
                    best[candidate] = (len(squashed), ok)
    for run in runs:
        options: dict[str, tuple[int, str]] = {}
        weak: dict[str, tuple[int, str]] = {}
        for commit in run.shown_on:
            for candidate, (length, ok) in per_commit.get(commit, {}).items():
                into = options if ok else weak
                if candidate not in into or into[candidate][0] < length:
                    into[candidate] = (length, commit)
        proven_options = {c: (how_squash(n), via) for c, (n, via) in options.items()}
        matches.add(run, proven_options, "squash")
        for candidate, (length, via) in weak.items():
            if candidate in options:
                continue
            matches.add_weak(
                run,
                RemapCandidate(
                    run.id,
                    run.record.commit,
                    candidate,
                    how_squash(length),
                    via,
                    "tree, message",
                ),
            )


def _match_trees(ctx: _Context, matches: _Matches, runs: list[LocatedRun]) -> None:
    """Step 3: a candidate with exactly the tree of a commit the run is shown on."""
    by_tree: dict[str, list[str]] = {}
    for commit, candidate in ctx.candidates.items():
        by_tree.setdefault(candidate.tree, []).append(commit)
    for run in runs:
        for via in _shown(ctx, run):
            info = ctx.found.unreachable.get(via)
            if info is None:
                continue
            found = [c for c in by_tree.get(info.tree, ()) if c not in run.shown_on]
            pid = ctx.ids.get(via)
            if len(found) > 1 and pid:
                # Same code in several commits: the one that also made the same change
                # (a squash of this one commit, say) is the copy; an empty commit or a
                # revert that arrives at the same tree is not.
                same_change = [c for c in found if ctx.ids.get(c) == pid]
                found = same_change if len(same_change) == 1 else found
            matches.add(run, {c: (HOW_SAME_TREE, via) for c in found}, HOW_SAME_TREE)


def _report(
    ctx: _Context, matches: _Matches, examined: Sequence[LocatedRun], dry_run: bool
) -> RemapReport:
    orphan_ids = {r.id for r in ctx.found.runs}
    matched: list[RemapMatch] = []
    ambiguous: list[RemapAmbiguity] = []
    unconfirmed: list[RemapCandidate] = []
    unmatched: list[RemapUnmatched] = []
    for run in examined:
        record = run.record
        if run.id in matches.unique:
            for commit, (how, via) in sorted(matches.unique[run.id].items()):
                matched.append(RemapMatch(run.id, record.commit, commit, how, via))
        elif run.id in matches.ambiguous:
            candidates, how = matches.ambiguous[run.id]
            ambiguous.append(RemapAmbiguity(run.id, record.commit, candidates, how))
        elif run.id in matches.weak:
            unconfirmed.extend(c for _, c in sorted(matches.weak[run.id].items()))
        elif run.id in orphan_ids:
            unmatched.append(
                RemapUnmatched(run.id, record.commit, run.shown_on, _why_unmatched(run, ctx.ids))
            )
    return RemapReport(
        matched=tuple(matched),
        ambiguous=tuple(ambiguous),
        unconfirmed=tuple(unconfirmed),
        unmatched=tuple(unmatched),
        orphans=len(examined),
        candidates=len(ctx.candidates),
        missing=len(ctx.found.missing),
        dry_run=dry_run,
    )


def _why_unmatched(run: LocatedRun, ids: Mapping[str, str | None]) -> str:
    if not any(ids.get(c) for c in run.shown_on):
        return "a merge or an empty change: no patch-id, and no reachable commit has its tree"
    return "no reachable commit has the same change, combined change (squash) or tree"

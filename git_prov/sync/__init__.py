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
tens of milliseconds, and importing pygit2 alone costs more. So this package reads and
moves refs, pushes, fetches and counts runs with the git binary (:class:`SyncRepo`), and
loads pygit2 (through :mod:`git_prov.store`) only when a merge is needed. The common cases
need none: a push git accepts as a fast-forward proves the remote held nothing we lack,
and a fetch that brings nothing we do not already contain has nothing to merge.

This module holds the operations and their retries; each step lives in its own module:
:mod:`~git_prov.sync.repo` (the repository and its refs), :mod:`~git_prov.sync.remotes`,
:mod:`~git_prov.sync.races`, :mod:`~git_prov.sync.fetching`, :mod:`~git_prov.sync.merging`,
:mod:`~git_prov.sync.pushing`, :mod:`~git_prov.sync.counts` and
:mod:`~git_prov.sync.results`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from git_prov.errors import ProvError, RemoteProblem
from git_prov.sync.counts import RUN_COUNT_CACHE, RUN_MARK, run_total
from git_prov.sync.counts import _count_all as _count_all
from git_prov.sync.counts import _runs_between as _runs_between
from git_prov.sync.fetching import _fetch_tracking, _fetchable
from git_prov.sync.merging import (
    ALIVE_REFS,
    MERGE_MESSAGE,
    _merge_tracking,
    _Merged,
    _remap_arrived,
    merge_tracking,
)
from git_prov.sync.pushing import (
    _count_ahead,
    _push_once,
    _push_refs,
    _refused_hidden,
    _remote_before,
    _runs_pushed,
    _upload_lfs,
)
from git_prov.sync.races import DEFAULT_TIMEOUT, _backoff, sync_timeout
from git_prov.sync.remotes import (
    _hidden_from_fetch,
    configure_remote,
    fetch_refspecs,
    remote_names,
    resolve_remote,
    tracking_refs,
)
from git_prov.sync.repo import (
    DISPLAY_REF,
    HOOK_GUARD_ENV,
    NOTES_REF,
    OBJECTS_REF,
    RepoLike,
    SyncRepo,
    Tip,
    _ledger_tip,
    _refs_of,
    read_refs,
)
from git_prov.sync.results import FetchResult, HookResult, PushResult, SyncResult

__all__ = [
    "ALIVE_REFS",
    "DEFAULT_TIMEOUT",
    "DISPLAY_REF",
    "HOOK_GUARD_ENV",
    "MERGE_MESSAGE",
    "NOTES_REF",
    "OBJECTS_REF",
    "RUN_COUNT_CACHE",
    "RUN_MARK",
    "FetchResult",
    "HookResult",
    "PushResult",
    "RepoLike",
    "SyncRepo",
    "SyncResult",
    "Tip",
    "configure_remote",
    "fetch",
    "fetch_refspecs",
    "hook_pre_push",
    "merge_tracking",
    "parse_pre_push_input",
    "push",
    "read_refs",
    "remote_names",
    "resolve_remote",
    "run_total",
    "sync",
    "sync_timeout",
    "tracking_refs",
]


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

"""Sharing provenance with remotes: fetch, push, sync, and the opt-in for plain git.

Transport is always the ``git`` binary (it honours credential helpers, and its push status
is what the server said); local objects and refs are pygit2. The refs that travel:

* ``refs/prov/objects`` (manifests, logs, kept commits) and ``refs/notes/prov`` (the runs),
  pushed objects first, in one atomic push, never forced;
* fetched only into tracking copies, ``refs/prov/remotes/<remote>/objects`` and
  ``refs/notes/remotes/<remote>/prov``, then union-merged into the local ledger
  (:mod:`git_prov.store.merge`). Nothing is ever fetched straight into a ledger ref.

Every rejected push (someone pushed first, a lost ref lock, a stale old value, a declining
hook) is answered by fetch + merge + retry, a bounded number of times with jittered backoff.
"""

from __future__ import annotations

import os
import random
import re
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from git_prov.errors import ProvError, RemoteProblem, RepositoryProblem
from git_prov.store import merge
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import GitRepo

DEFAULT_ATTEMPTS = 12
FETCH_ATTEMPTS = 4
BACKOFF_BASE = 0.05  # seconds; doubled per attempt, capped, fully jittered
BACKOFF_CAP = 1.5
# Set in the environment of every git we start; the pre-push hook does nothing under it.
HOOK_GUARD_ENV = "GIT_PROV_IN_PUSH"
HOOK_MARKER = "# git-prov pre-push hook"
MERGE_MESSAGE = "git-prov: merge provenance from {remote}"
RUN_COUNT_CACHE = "run-counts"

# The pre-push trampoline (also shipped as hooks/pre-push; a test keeps the two equal).
PRE_PUSH_HOOK = """\
#!/bin/sh
# git-prov pre-push hook: a plain `git push` also pushes provenance
# (refs/prov/objects and refs/notes/prov) to the same remote.
# Installed by `git prov init --remote REMOTE --push-hook`; delete this file to stop.
# A pre-push hook that was here before is kept as pre-push.legacy and runs first, with the
# same arguments and input; if it fails, the push stops, as it did before.
here=$(dirname -- "$0")
refs=$(cat)
if [ -x "$here/pre-push.legacy" ]; then
    if [ -n "$refs" ]; then printf '%s\\n' "$refs"; fi | "$here/pre-push.legacy" "$@" || exit $?
fi
[ -n "$GIT_PROV_IN_PUSH" ] && exit 0
if command -v git-prov >/dev/null 2>&1; then
    if [ -n "$refs" ]; then printf '%s\\n' "$refs"; fi | git prov hook pre-push "$@"
else
    echo "warning: git-prov is not on PATH: provenance was not pushed" >&2
fi
exit 0
"""


def tracking_refs(remote: str) -> dict[str, str]:
    """Local ledger ref → the tracking ref holding ``remote``'s copy of it."""
    return {
        OBJECTS_REF: f"refs/prov/remotes/{remote}/objects",
        NOTES_REF: f"refs/notes/remotes/{remote}/prov",
    }


def fetch_refspecs(remote: str) -> list[str]:
    """The ``remote.<r>.fetch`` refspecs that make a plain ``git fetch`` bring provenance.

    They are globs (``prov*``) on purpose: git fails a whole fetch when an exact configured
    refspec names a ref the remote lacks, and a remote without provenance is normal.
    """
    return [
        f"+{OBJECTS_REF}*:refs/prov/remotes/{remote}/objects*",
        f"+{NOTES_REF}*:refs/notes/remotes/{remote}/prov*",
    ]


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did: runs new to the local ledger, and what to warn about.

    ``rewritten`` names the remote's ledger refs that were force-rewritten since the last
    fetch (they were still union-merged: no local run is dropped).
    """

    remote: str
    had_provenance: bool
    runs_added: int
    runs_total: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushResult:
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


@dataclass(frozen=True)
class SyncResult:
    """What ``sync`` (fetch + merge + push, retried) did."""

    remote: str
    had_provenance: bool
    runs_fetched: int
    runs_pushed: int
    runs_total: int
    attempts: int
    conflicts: tuple[str, ...] = ()
    object_conflicts: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookResult:
    """What the pre-push hook did: pushed (``pushed``), skipped (``skipped`` says why), or
    failed without blocking the user's push (``warning``)."""

    pushed: PushResult | None = None
    skipped: str | None = None
    warning: str | None = None


# ---- remotes ---------------------------------------------------------------------------------


def _config(repo: GitRepo, key: str) -> str | None:
    try:
        value = repo.pygit.config[key]
    except (KeyError, pygit2.GitError):
        return None
    return str(value) if value is not None else None


def remote_names(repo: GitRepo) -> list[str]:
    """The configured remotes."""
    return [name for name in repo.pygit.remotes.names() if name]


def resolve_remote(repo: GitRepo, remote: str | None = None) -> str:
    """The remote to use: the one named, else the current branch's upstream remote, else
    ``origin``, else the only remote. A clear RemoteProblem when there is none."""
    names = remote_names(repo)
    if remote is not None:
        if remote in names:
            return remote
        known = f" (remotes here: {', '.join(names)})" if names else ""
        raise RemoteProblem(
            f"no remote named {remote!r}{known}", f"add it with `git remote add {remote} URL`"
        )
    branch = repo.branch_name()
    if branch:
        upstream = _config(repo, f"branch.{branch}.remote")
        if upstream and upstream in names:
            return upstream
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


def _git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[bytes]:
    # LC_ALL=C: we read git's messages. The guard keeps our pre-push hook out of our pushes.
    return repo.git(*args, check=False, env={"LC_ALL": "C", "LANGUAGE": "C", HOOK_GUARD_ENV: "1"})


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


def _ref_value(repo: GitRepo, ref: str) -> pygit2.Oid | None:
    try:
        return pygit2.Oid(hex=str(repo.pygit.references[ref].target))
    except (KeyError, pygit2.GitError):
        return None


def _tree_of(repo: GitRepo, oid: pygit2.Oid | None) -> pygit2.Tree | None:
    if oid is None:
        return None
    obj = repo.pygit.get(oid)
    return obj.tree if isinstance(obj, pygit2.Commit) else None


def _fetch_tracking(repo: GitRepo, remote: str) -> tuple[bool, list[str]]:
    """Fetch the remote's ledger refs into their tracking refs, in one round trip when the
    remote has provenance. Returns (whether it has any, refs that were force-rewritten)."""
    tracking = tracking_refs(remote)
    before = {ref: _ref_value(repo, ref) for ref in tracking.values()}
    base = ["fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", remote]
    specs = [f"+{src}:{dst}" for src, dst in tracking.items()]
    proc = _git_fetch(repo, base, specs)
    if proc.returncode != 0:
        if b"couldn't find remote ref" not in proc.stderr:
            raise _transport_problem("fetching provenance from", remote, proc.stderr)
        # The remote lacks one or both refs (no provenance yet, or a partial push).
        present = _remote_ledger_refs(repo, remote)
        for src, dst in tracking.items():
            if src not in present and before[dst] is not None:
                # A copy of a ref the remote no longer has: forget it (ours stays intact).
                repo.pygit.references.delete(dst)
        specs = [f"+{src}:{dst}" for src, dst in tracking.items() if src in present]
        if specs:
            proc = _git_fetch(repo, base, specs)
            if proc.returncode != 0:
                raise _transport_problem("fetching provenance from", remote, proc.stderr)
    rewritten = []
    has_any = False
    for src, dst in tracking.items():
        old, new = before[dst], _ref_value(repo, dst)
        has_any = has_any or new is not None
        if old is not None and new is not None and old != new and not _descends(repo, new, old):
            rewritten.append(src)
    return has_any, rewritten


_LOCAL_LOCK = ("cannot lock ref", "unable to update local ref", "could not be updated")


def _git_fetch(
    repo: GitRepo, base: list[str], specs: list[str]
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


def _remote_ledger_refs(repo: GitRepo, remote: str) -> set[str]:
    proc = _git(repo, "ls-remote", remote, OBJECTS_REF, NOTES_REF)
    if proc.returncode != 0:
        raise _transport_problem("listing the refs of", remote, proc.stderr)
    names = {line.split("\t", 1)[1] for line in proc.stdout.decode().splitlines() if "\t" in line}
    return names & {OBJECTS_REF, NOTES_REF}


def _descends(repo: GitRepo, commit: pygit2.Oid, ancestor: pygit2.Oid) -> bool:
    try:
        return bool(repo.pygit.descendant_of(commit, ancestor))
    except (pygit2.GitError, KeyError, ValueError):
        return False


@dataclass
class _Merged:
    runs_added: int = 0
    conflicts: set[str] = field(default_factory=set)
    object_conflicts: set[str] = field(default_factory=set)


def merge_tracking(repo: GitRepo, remote: str) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Merge the remote's tracking refs (filled by ``git prov fetch`` or, once
    :func:`configure_remote` ran, by a plain ``git fetch``) into the local ledger.

    Objects first, then notes. Cheap when nothing changed (a ref lookup and an ancestry
    test). Returns (runs added, run ids in conflict, object paths in conflict).
    """
    merged = _merge_tracking(repo, remote)
    return (
        merged.runs_added,
        tuple(sorted(merged.conflicts)),
        tuple(sorted(merged.object_conflicts)),
    )


def _merge_tracking(repo: GitRepo, remote: str) -> _Merged:
    ledger = Ledger(repo)
    out = _Merged()
    message = MERGE_MESSAGE.format(remote=remote)
    for local, tracking in tracking_refs(remote).items():  # objects first, then notes
        theirs = _ref_value(repo, tracking)
        if theirs is None:
            continue
        ours = _ref_value(repo, local)
        if ours is not None and (ours == theirs or _descends(repo, ours, theirs)):
            continue
        result = merge.merge_commit_into(ledger, local, theirs, message=message)
        out.conflicts.update(result.conflicts)
        out.object_conflicts.update(result.object_conflicts)
        if local == NOTES_REF and result.action != merge.UP_TO_DATE and result.new:
            new_tree = _tree_of(repo, pygit2.Oid(hex=result.new))
            if result.old is None:
                out.runs_added += run_total(repo, new_tree)
            else:
                old_tree = _tree_of(repo, pygit2.Oid(hex=result.old))
                out.runs_added += merge.runs_between(repo.pygit, old_tree, new_tree)[0]
    return out


def merge_all_tracking(repo: GitRepo) -> int:
    """:func:`merge_tracking` for every remote; returns the runs added. For readers that
    want what a plain ``git fetch`` brought (after :func:`configure_remote`) to show up."""
    added = 0
    for name in remote_names(repo):
        if any(_ref_value(repo, ref) is not None for ref in tracking_refs(name).values()):
            added += _merge_tracking(repo, name).runs_added
    return added


def fetch(repo: GitRepo, remote: str | None = None) -> FetchResult:
    """Fetch ``remote``'s provenance into tracking refs and union-merge it into the local
    ledger. A remote without provenance is not an error (``had_provenance`` is False)."""
    name = resolve_remote(repo, remote)
    had, rewritten = _fetch_tracking(repo, name)
    merged = _merge_tracking(repo, name)
    return FetchResult(
        remote=name,
        had_provenance=had,
        runs_added=merged.runs_added,
        runs_total=run_total(repo),
        conflicts=tuple(sorted(merged.conflicts)),
        object_conflicts=tuple(sorted(merged.object_conflicts)),
        rewritten=tuple(rewritten),
    )


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
_STATUS_LINE = re.compile(
    r"^(?P<flag>[ +\-*!=])\t(?P<src>[^\t]*):(?P<dst>[^\t]*)\t"
    r"(?P<summary>.*)$"
)


@dataclass(frozen=True)
class _PushOutcome:
    ok: bool
    new_on_remote: bool = False  # the notes ref did not exist there before
    up_to_date: bool = False
    reason: str = ""  # why it was rejected
    race: bool = False
    atomic_unsupported: bool = False


def _push_once(
    repo: GitRepo, remote: str, tips: dict[str, pygit2.Oid], atomic: bool
) -> _PushOutcome:
    args = ["push", "--porcelain", "--no-verify", "--no-follow-tags", "--recurse-submodules=no"]
    if atomic:
        args.append("--atomic")
    # Objects first: a note must never reach the remote before what it names.
    specs = [f"{tips[ref]}:{ref}" for ref in (OBJECTS_REF, NOTES_REF) if ref in tips]
    proc = _git(repo, *args, remote, *specs)
    err = proc.stderr.decode(errors="replace")
    if atomic and "does not support --atomic" in err:
        return _PushOutcome(False, atomic_unsupported=True)
    statuses: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        match = _STATUS_LINE.match(line)
        if match and match["dst"] in tips:
            statuses[match["dst"]] = (match["flag"], match["summary"])
    if set(statuses) != set(tips):
        # git said nothing about our refs: it failed before (connection, access, …).
        if "shallow" in err.lower():
            raise _shallow_problem(remote, err.strip().splitlines()[-1])
        raise _transport_problem("pushing provenance to", remote, proc.stderr)
    rejected = [(ref, summary) for ref, (flag, summary) in statuses.items() if flag == "!"]
    if not rejected and proc.returncode == 0:
        notes = statuses.get(NOTES_REF)
        return _PushOutcome(
            True,
            new_on_remote=notes is not None and notes[0] == "*",
            up_to_date=all(flag == "=" for flag, _ in statuses.values()),
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
    reason = real[0]
    if "shallow" in reason.lower():
        raise _shallow_problem(remote, reason)
    return _PushOutcome(False, reason=reason, race=any(word in reason.lower() for word in _RACE))


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def _push_with_retries(
    repo: GitRepo, remote: str, attempts: int, sleep: Callable[[float], None] = time.sleep
) -> PushResult:
    tracking = tracking_refs(remote)
    fetched = _Merged()
    rewritten: set[str] = set()
    atomic = True
    refused_unchanged: str | None = None  # a refusal after which the remote did not move
    reason = ""
    had = _ref_value(repo, tracking[NOTES_REF]) is not None
    for attempt in range(1, max(1, attempts) + 1):
        tips = {
            ref: oid
            for ref in (OBJECTS_REF, NOTES_REF)
            if (oid := _ref_value(repo, ref)) is not None
        }
        if not tips:
            return PushResult(remote, had, 0, 0, attempt, True, fetched.runs_added)
        remote_before = _ref_value(repo, tracking[NOTES_REF])
        outcome = _push_once(repo, remote, tips, atomic)
        if outcome.atomic_unsupported:
            atomic = False
            outcome = _push_once(repo, remote, tips, atomic)
        if outcome.ok:
            pushed = 0
            if NOTES_REF in tips and not outcome.up_to_date:
                before_tree = None if outcome.new_on_remote else _tree_of(repo, remote_before)
                local_tree = _tree_of(repo, tips[NOTES_REF])
                pushed = (
                    run_total(repo, local_tree)
                    if before_tree is None
                    else merge.runs_between(repo.pygit, before_tree, local_tree)[0]
                )
            for ref, oid in tips.items():
                _set_tracking(repo, tracking[ref], oid)
            return PushResult(
                remote=remote,
                had_provenance=had and not outcome.new_on_remote,
                runs_pushed=pushed,
                runs_total=run_total(repo),
                attempts=attempt,
                up_to_date=outcome.up_to_date,
                runs_fetched=fetched.runs_added,
                conflicts=tuple(sorted(fetched.conflicts)),
                object_conflicts=tuple(sorted(fetched.object_conflicts)),
                rewritten=tuple(sorted(rewritten)),
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
        if attempt == attempts:
            break
        sleep(_backoff(attempt))
        remote_state = tuple(_ref_value(repo, t) for t in tracking.values())
        had_now, forced = _fetch_tracking(repo, remote)
        had = had or had_now
        rewritten.update(forced)
        merged = _merge_tracking(repo, remote)
        fetched.runs_added += merged.runs_added
        fetched.conflicts |= merged.conflicts
        fetched.object_conflicts |= merged.object_conflicts
        unchanged = remote_state == tuple(_ref_value(repo, t) for t in tracking.values())
        refused_unchanged = reason if unchanged and not outcome.race else None
    raise RemoteProblem(
        f"could not push provenance to {remote}: still rejected after {attempts} attempts "
        f"({reason})",
        "others may be pushing at the same moment: run `git prov sync` again, or give "
        "more --attempts",
    )


def _set_tracking(repo: GitRepo, ref: str, oid: pygit2.Oid) -> None:
    # Tracking refs are our copies of what the remote holds; only we write them (and git
    # fetch). Move one only forward, so a concurrent fetch's newer value is kept.
    current = _ref_value(repo, ref)
    if current == oid or (current is not None and _descends(repo, current, oid)):
        return
    try:
        if current is None:
            repo.pygit.create_reference_direct(ref, oid, False)
        else:
            repo.pygit.references[ref].set_target(oid, "git-prov: pushed")
    except (pygit2.GitError, pygit2.AlreadyExistsError, ValueError):
        pass  # someone else updated it first: theirs is at least as fresh


def push(
    repo: GitRepo, remote: str | None = None, *, attempts: int = DEFAULT_ATTEMPTS
) -> PushResult:
    """Push the local ledger to ``remote`` (objects first, atomically, never forced).
    A rejected push is answered by fetch + merge + retry, at most ``attempts`` times."""
    name = resolve_remote(repo, remote)
    return _push_with_retries(repo, name, attempts)


def sync(
    repo: GitRepo, remote: str | None = None, *, attempts: int = DEFAULT_ATTEMPTS
) -> SyncResult:
    """Bring the local ledger and ``remote``'s to the same union of runs.

    When there is something to push, the push goes first: git accepts it only as a
    fast-forward, which proves the remote holds nothing we lack, so the common case costs
    one round trip. A rejection (or nothing new to push) means fetch + merge first, then
    push what the merge made. ``attempts`` bounds the pushes.
    """
    name = resolve_remote(repo, remote)
    tracking = tracking_refs(name)
    local = {ref: _ref_value(repo, ref) for ref in tracking}
    known = {ref: _ref_value(repo, dst) for ref, dst in tracking.items()}
    fetched: FetchResult | None = None
    if None in local.values() or None in known.values() or local == known:
        fetched = fetch(repo, name)
        after = {ref: _ref_value(repo, ref) for ref in tracking}
        if after == {ref: _ref_value(repo, dst) for ref, dst in tracking.items()}:
            return SyncResult(
                remote=name,
                had_provenance=fetched.had_provenance,
                runs_fetched=fetched.runs_added,
                runs_pushed=0,
                runs_total=fetched.runs_total,
                attempts=0,
                conflicts=fetched.conflicts,
                object_conflicts=fetched.object_conflicts,
                rewritten=fetched.rewritten,
            )
    pushed = _push_with_retries(repo, name, attempts)
    before = fetched or FetchResult(name, pushed.had_provenance, 0, 0)
    return SyncResult(
        remote=name,
        had_provenance=before.had_provenance if fetched else pushed.had_provenance,
        runs_fetched=before.runs_added + pushed.runs_fetched,
        runs_pushed=pushed.runs_pushed,
        runs_total=pushed.runs_total,
        attempts=pushed.attempts,
        conflicts=tuple(sorted({*before.conflicts, *pushed.conflicts})),
        object_conflicts=tuple(sorted({*before.object_conflicts, *pushed.object_conflicts})),
        rewritten=tuple(sorted({*before.rewritten, *pushed.rewritten})),
    )


# ---- counting runs -----------------------------------------------------------------------------


def run_total(repo: GitRepo, tree: pygit2.Tree | None = None) -> int:
    """Run records in the ledger (default: the local notes ref).

    Counting reads every note, so the last few answers are cached in
    ``<git dir>/prov/run-counts`` by tree id; a new tree is counted as a cached one plus
    the difference, which walks only the subtrees that differ.
    """
    if tree is None:
        tree = _tree_of(repo, _ref_value(repo, NOTES_REF))
    if tree is None:
        return 0
    path = repo.prov_dir / RUN_COUNT_CACHE
    cached: list[tuple[str, int]] = []
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            cached.append((key, int(value)))
    except (OSError, ValueError):
        cached = []
    key = str(tree.id)
    for known, count in cached:
        if known == key:
            return count
    total = None
    for known, count in cached:
        base = repo.pygit.get(known)
        if isinstance(base, pygit2.Tree):
            gained, lost = merge.runs_between(repo.pygit, base, tree)
            total = count + gained - lost
            break
    if total is None:
        total = merge.count_runs(repo.pygit, tree)
    lines = [f"{key} {total}", *[f"{k} {c}" for k, c in cached if k != key][:3]]
    tmp = path.with_name(f"{RUN_COUNT_CACHE}.{os.getpid()}")
    try:
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    except OSError:
        pass  # only a cache
    return total


# ---- configuring a remote and the pre-push hook ------------------------------------------------


def configure_remote(
    repo: GitRepo, remote: str | None, *, fetch: bool = True, push_hook: bool = False
) -> list[str]:
    """Make plain git carry provenance for ``remote``; returns one line per step.

    ``fetch``: add the :func:`fetch_refspecs` to ``remote.<r>.fetch`` (only those absent),
    so a plain ``git fetch`` fills the tracking refs. ``push_hook``: install the pre-push
    hook, so a plain ``git push`` also pushes provenance. ``remote.<r>.push`` is never set:
    it would change what a plain ``git push`` pushes.
    """
    name = resolve_remote(repo, remote)
    done: list[str] = []
    if fetch:
        proc = _git(repo, "config", "--get-all", f"remote.{name}.fetch")
        present = set(proc.stdout.decode().split())
        added = []
        for spec in fetch_refspecs(name):
            if spec not in present:
                repo.git("config", "--add", f"remote.{name}.fetch", spec)
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
        done.extend(install_pre_push_hook(repo))
    return done


def _hooks_dir(repo: GitRepo) -> Path:
    # --git-path honours core.hooksPath and worktrees.
    proc = repo.git("rev-parse", "--git-path", "hooks")
    path = Path(proc.stdout.decode().strip())
    if not path.is_absolute():
        path = (repo.workdir or repo.git_dir) / path
    return path


def install_pre_push_hook(repo: GitRepo) -> list[str]:
    """Install the pre-push trampoline; a foreign pre-push hook is kept as
    ``pre-push.legacy`` and still runs first. Returns one line per step (and a ``hint:``
    when ``core.hooksPath`` is set)."""
    hooks = _hooks_dir(repo)
    hooks.mkdir(parents=True, exist_ok=True)
    hook, legacy = hooks / "pre-push", hooks / "pre-push.legacy"
    done: list[str] = []
    if hook.exists() or hook.is_symlink():
        try:
            current = hook.read_text(errors="replace")
        except OSError:
            current = ""
        if HOOK_MARKER in current:
            if current == PRE_PUSH_HOOK:
                done.append(f"git push: already pushes provenance ({hook})")
                return done + _hooks_path_hint(repo)
        else:
            if legacy.exists() or legacy.is_symlink():
                raise RepositoryProblem(
                    f"both {hook} and {legacy} exist",
                    "merge them into one pre-push hook by hand, then run this again",
                )
            hook.rename(legacy)
            done.append(f"kept your pre-push hook as {legacy.name}; it still runs first")
    tmp = hooks / f".pre-push.git-prov.{os.getpid()}"
    tmp.write_text(PRE_PUSH_HOOK)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(hook)
    done.append(f"git push: now also pushes provenance (pre-push hook {hook})")
    return done + _hooks_path_hint(repo)


def _hooks_path_hint(repo: GitRepo) -> list[str]:
    configured = _config(repo, "core.hooksPath")
    if not configured:
        return []
    return [
        f"hint: core.hooksPath is set ({configured}): the hook went there, so it "
        "applies to every repository that uses that directory"
    ]


def parse_pre_push_input(lines: Iterable[str]) -> list[tuple[str, str, str, str]]:
    """git's pre-push input: (local ref, local id, remote ref, remote id) per line."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4:
            out.append((parts[0], parts[1], parts[2], parts[3]))
    return out


def hook_pre_push(
    repo: GitRepo,
    remote_name: str,
    url: str,
    stdin_lines: Sequence[str],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
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
    if remote_name not in remote_names(repo):
        return HookResult(skipped=f"provenance is pushed only to named remotes, not to {url}")
    if _ref_value(repo, NOTES_REF) is None and _ref_value(repo, OBJECTS_REF) is None:
        return HookResult(skipped="no provenance recorded yet")
    try:
        return HookResult(pushed=push(repo, remote_name, attempts=attempts))
    except ProvError as exc:
        return HookResult(warning=f"provenance was not pushed to {remote_name}: {exc}")

"""One ``git push`` of the ledger refs and what git said of it (landed, a race, refused by a
rule or a hidden ref), undoing what a refused atomic push moved anyway, the LFS objects of
pushed snapshots, and the runs a push sent."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from git_prov.errors import (
    RemoteProblem,
)
from git_prov.store.gitcli import (
    finish_git,
    start_git,
)
from git_prov.sync.counts import _runs_between, run_total
from git_prov.sync.races import _RACE, _RACE_STATUSES
from git_prov.sync.remotes import _shallow_problem, _transport_problem, tracking_refs
from git_prov.sync.repo import _GIT_ENV, NOTES_REF, OBJECTS_REF, SyncRepo, Tip, _git

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


def _upload_lfs(
    repo: SyncRepo,
    remote: str,
    tips: Mapping[str, str],
    known: Tip | None,
    sent: set[str],
    missing: set[str],
) -> None:
    """Upload the git-LFS objects of the commits the objects ref is about to carry to
    ``remote`` (:mod:`git_prov.sync.lfs`); adds to ``sent`` and ``missing``."""
    new = tips.get(OBJECTS_REF)
    if new is None or (known is not None and known.commit == new):
        return
    from git_prov.sync.lfs import upload_lfs_objects_for_push

    done = upload_lfs_objects_for_push(
        repo._cwd, repo._common_dir, remote, new, [known.commit] if known else []
    )
    sent.update(done.uploaded)
    missing.update(done.missing)


def _count_ahead(repo: SyncRepo, known: Tip | None, notes: Tip | None) -> None:
    """Count the runs a push sends while git sends them: usually the remote held what our
    tracking copy says (git's report of the push confirms that base, or names another).
    Without a copy (a first push there) the total is counted: what the push sends when the
    remote had none, and the "in all" of any push (:func:`run_total` caches it)."""
    if notes is None or not notes.tree:
        return
    if known is not None and known.tree:
        _runs_between(repo, known.tree, notes.tree)
    else:
        run_total(repo, notes.tree)


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


def _push_refs(remote: str) -> list[str]:
    """The refs a push reads: the ledger refs and ``remote``'s tracking copies."""
    return [OBJECTS_REF, NOTES_REF, *tracking_refs(remote).values()]


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

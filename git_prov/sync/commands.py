"""The bodies of ``git prov push``, ``fetch``, ``sync`` and ``hook pre-push``, without click:
call :mod:`git_prov.sync`, then say what happened.

Two front ends run them: the click commands of :mod:`git_prov.cli.sync` (which parse, then
call one of these), and the quick path of :mod:`git_prov.entry`, which runs them straight
from ``argv`` so that a sync, riding on a git fetch/push of tens of milliseconds, does not
also pay for importing click. Output goes through the ``echo`` and ``style`` each front end
passes (:func:`git_prov.terminal.echo` and :func:`git_prov.terminal.style`, or plain
text), so both print the same bytes; nothing here imports click.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from git_prov import sync

if TYPE_CHECKING:
    from git_prov.sync import FetchResult, PushResult, SyncResult

HERE = "."  # the repository around the working directory (after -C)
MAX_LISTED = 10

Style = Callable[..., str]  # (text, fg=…, bold=…) → text, coloured or not


class Echo(Protocol):
    """Prints one line, on stdout or (``err``) stderr: :func:`git_prov.terminal.echo`."""

    def __call__(self, text: str, /, *, err: bool = False) -> None: ...


def fetch_command(
    remote: str | None,
    *,
    no_remap: bool,
    as_json: bool,
    echo: Echo,
    style: Style,
    data: bool = False,
) -> int:
    """``git prov fetch``: fetch ``remote``'s provenance and merge it (with ``data``, its
    kept data too); exit status."""
    result = sync.fetch(HERE, remote, remap=not no_remap)
    moved = _data(remote, push=False, fetch=True) if data else []
    if as_json:
        echo(to_json(result, moved))
    elif not result.had_provenance:
        echo(
            f"{result.remote} has no provenance yet (push yours with git prov push {result.remote})"
        )
    elif result.remote_total != result.runs_total:
        # Counts name whose runs they count: the remote may hold fewer (it was rewound,
        # or has not had ours yet).
        fetched = (
            f"fetched {_runs(result.runs_added, 'new')} from {result.remote}"
            if result.runs_added
            else f"nothing new from {result.remote}"
        )
        echo(
            f"{fetched}: {result.remote} holds {_runs(result.remote_total)}, "
            f"this repository {result.runs_total}"
        )
    elif result.runs_added:
        echo(
            f"fetched {_runs(result.runs_added, 'new')} from {result.remote} "
            f"({result.runs_total} in all)"
        )
    else:
        echo(f"already up to date with {result.remote} ({_runs(result.runs_total)})")
    if not as_json:
        _remapped(result, echo, style)
        _data_lines(moved, echo)
    _warn(result, echo)
    return 0


def push_command(
    remote: str | None,
    *,
    attempts: int | None,
    as_json: bool,
    echo: Echo,
    data: bool = False,
    timeout: int | None = None,
) -> int:
    """``git prov push``: push provenance to ``remote`` (with ``data``, kept data first);
    exit status."""
    moved = _data(remote, push=True, fetch=False) if data else []
    result = sync.push(HERE, remote, attempts=attempts, timeout=timeout)
    if as_json:
        echo(to_json(result, moved))
    elif result.up_to_date and not result.runs_total:
        echo("no provenance recorded here yet: nothing to push")
    elif result.up_to_date:
        echo(f"{result.remote} already has all {_runs(result.runs_total)}")
    else:
        fresh = "" if result.had_provenance else ", which had no provenance before"
        echo(
            f"pushed {_runs(result.runs_pushed)} to {result.remote}{fresh} "
            f"({result.runs_total} in all)"
        )
    if not as_json and result.runs_fetched:
        echo(
            f"fetched {_runs(result.runs_fetched, 'new')} from {result.remote} on the way", err=True
        )
    if not as_json:
        _data_lines(moved, echo)
    _warn(result, echo)
    return 0


def sync_command(
    remote: str | None,
    *,
    attempts: int | None,
    no_remap: bool,
    as_json: bool,
    echo: Echo,
    style: Style,
    data: bool = False,
    timeout: int | None = None,
) -> int:
    """``git prov sync``: fetch, merge and push provenance (with ``data``, kept data too);
    exit status."""
    result = sync.sync(HERE, remote, attempts=attempts, timeout=timeout, remap=not no_remap)
    moved = _data(remote, push=True, fetch=True) if data else []
    if as_json:
        echo(to_json(result, moved))
    else:
        tries = f", {result.attempts} attempts" if result.attempts > 1 else ""
        if result.runs_fetched or result.runs_pushed:
            echo(
                f"synced with {result.remote}: {_runs(result.runs_fetched)} fetched, "
                f"{_runs(result.runs_pushed)} pushed ({result.runs_total} in all{tries})"
            )
        else:
            echo(f"already in sync with {result.remote} ({_runs(result.runs_total)})")
        _remapped(result, echo, style)
        _data_lines(moved, echo)
    _warn(result, echo)
    return 0


def _data(remote: str | None, *, push: bool, fetch: bool) -> list[Any]:
    """``--data``: move kept data (git_prov.kept_sync); metadata-only sync never loads it."""
    from git_prov.kept_sync import with_data

    return with_data(None, remote, push=push, fetch=fetch)


def _data_lines(moved: Sequence[Any], echo: Echo) -> None:
    if not moved:
        return  # (without --data: kept data, which loads pygit2, is never imported)
    from git_prov.kept_sync import data_summary

    for result in moved:
        echo(data_summary(result))


def pre_push_command(remote: str, url: str, *, echo: Echo) -> int:
    """``git prov hook pre-push REMOTE [URL]``, with git's update lines on stdin: push
    provenance too. Never blocks the push (always 0)."""
    lines = sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
    result = sync.hook_pre_push(HERE, remote, url or remote, lines)
    if result.warning:
        echo(
            f"warning: {result.warning} (your push goes on; retry with git prov sync {remote})",
            err=True,
        )
    elif result.pushed is not None and not result.pushed.up_to_date:
        echo(f"git-prov: pushed {_runs(result.pushed.runs_pushed)} to {remote}", err=True)
    return 0


def to_json(result: FetchResult | PushResult | SyncResult, data: Sequence[Any] = ()) -> str:
    """The ``--json`` document of a result: its fields, sorted, indented (with ``--data``,
    a ``data`` list of what moving kept data did). (A :class:`~git_prov.terminal.View`:
    JSON escapes every control character in its strings, so each of its lines is one
    line.)"""
    import json

    from git_prov.terminal import View

    doc = _plain(result)
    if data:
        doc["data"] = [d.to_json() for d in data]
    return View(json.dumps(doc, indent=2, sort_keys=True))


def _plain(value: Any) -> Any:
    """JSON-ready data: results (named tuples) and the dataclasses in them become dicts."""
    if hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses  # (only remapped runs hold dataclasses: rewrite loaded it)

        return dataclasses.asdict(value)
    return value


def _runs(n: int, adjective: str = "") -> str:
    words = f"{adjective} run" if adjective else "run"
    return f"{n} {words}" if n == 1 else f"{n} {words}s"


def _warn(result: FetchResult | PushResult | SyncResult, echo: Echo) -> None:
    """Warnings every command shares: rewritten remote history, conflicting records."""
    remote = result.remote
    for ref in result.rewritten_here:
        echo(
            f"warning: this repository's copy of {remote}'s {ref} was rewritten here "
            f"(git filter-repo rewrites every ref); {remote}'s own was not, and it was "
            "merged with yours — no local run was dropped",
            err=True,
        )
    for ref in result.rewritten:
        echo(
            f"warning: {remote} rewrote its {ref} (a force-push); it was merged with "
            "yours and no local run was dropped — git prov sync puts them back there",
            err=True,
        )
    conflicts = result.conflicts
    if conflicts:
        # Rare, so worth the index: say per run which copy verifies and is shown.
        from git_prov.query.located import describe_conflicts
        from git_prov.store.gitcli.paths import RepoPaths

        described = describe_conflicts(RepoPaths.discover(), conflicts[:MAX_LISTED])
        for line in described:
            echo(f"warning: {line}", err=True)
        if len(conflicts) > len(described):
            listed = ", ".join(conflicts[:3]) + (" …" if len(conflicts) > 3 else "")
            echo(
                f"warning: {len(conflicts)} run id(s) now have different records ({listed}); "
                "all are kept — inspect them with git prov show",
                err=True,
            )
    for path in result.object_conflicts[:5]:
        echo(f"warning: {remote} holds a different object at {path}; ours was kept", err=True)
    lfs_missing = getattr(result, "lfs_missing", ())
    if lfs_missing:
        listed = ", ".join(oid[:12] for oid in lfs_missing[:3])
        echo(
            f"warning: {len(lfs_missing)} git-LFS object(s) named by the pushed snapshots are "
            f"not in this clone's LFS store and were not uploaded to {remote} ({listed}"
            f"{' …' if len(lfs_missing) > 3 else ''}); those files will not check out elsewhere",
            err=True,
        )
    problem = getattr(result, "remap_problem", None)
    if problem:
        echo(f"warning: arrived runs were not remapped: {problem} (try git prov remap)", err=True)


def _remapped(result: FetchResult | SyncResult, echo: Echo, style: Style) -> None:
    """The arrived runs remap attached to the commits their code was copied to."""
    matches = result.remapped
    if not matches:
        return
    from git_prov.model.ids import short_run_id

    runs = len({m.run for m in matches})
    echo(
        f"attached {_runs(runs, 'arrived')} to the commits their code was copied to "
        "(git prov remap):"
    )
    for m in matches[:MAX_LISTED]:
        echo(
            "  "
            + style(short_run_id(m.run), fg="green")
            + f"  ran on {m.original[:7]} → now also on "
            + style(m.commit[:7], fg="yellow")
            + f" ({m.how})"
        )
    if len(matches) > MAX_LISTED:
        echo(f"  … and {len(matches) - MAX_LISTED} more (--json lists all)")

"""``git prov push``, ``fetch`` and ``sync`` (registered on the main group), and the hidden
``git prov hook pre-push`` that the pre-push trampoline calls.

These commands hand the library a path, not an open repository: :mod:`git_prov.sync` reads
it with the git binary and loads pygit2 only when a merge is needed, so a sync with
nothing to merge costs the git it runs plus start-up."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click

from git_prov.cli import CONTEXT, State, cli

_REMOTE = click.argument("remote", required=False)
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
_NO_REMAP = click.option(
    "--no-remap",
    is_flag=True,
    help="Do not attach arrived runs to the commits their code was copied to (git prov remap).",
)
HERE = "."  # the repository around the working directory (after -C)
MAX_LISTED = 10


def _runs(n: int, adjective: str = "") -> str:
    words = f"{adjective} run" if adjective else "run"
    return f"{n} {words}" if n == 1 else f"{n} {words}s"


def _emit_json(result: Any) -> None:
    click.echo(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))


def _warn(remote: str, result: Any) -> None:
    """Warnings every command shares: rewritten remote history, conflicting records."""
    for ref in getattr(result, "rewritten", ()):
        click.echo(
            f"warning: {remote} rewrote its {ref} (a force-push); it was merged with "
            "yours and no local run was dropped — git prov sync puts them back there",
            err=True,
        )
    conflicts = getattr(result, "conflicts", ())
    if conflicts:
        listed = ", ".join(conflicts[:3]) + (" …" if len(conflicts) > 3 else "")
        click.echo(
            f"warning: {len(conflicts)} run id(s) now have two different records "
            f"({listed}); both are kept — inspect them with git prov show",
            err=True,
        )
    for path in getattr(result, "object_conflicts", ())[:5]:
        click.echo(f"warning: {remote} holds a different object at {path}; ours was kept", err=True)
    problem = getattr(result, "remap_problem", None)
    if problem:
        click.echo(
            f"warning: arrived runs were not remapped: {problem} (try git prov remap)", err=True
        )


def _remapped(state: State, result: Any) -> None:
    """The arrived runs remap attached to the commits their code was copied to."""
    from git_prov.model.ids import short_run_id

    matches = getattr(result, "remapped", ())
    if not matches:
        return
    runs = len({m.run for m in matches})
    click.echo(
        f"attached {_runs(runs, 'arrived')} to the commits their code was copied to "
        "(git prov remap):"
    )
    for m in matches[:MAX_LISTED]:
        click.echo(
            "  "
            + state.style(short_run_id(m.run), fg="green")
            + f"  ran on {m.original[:7]} → now also on "
            + state.style(m.commit[:7], fg="yellow")
            + f" ({m.how})"
        )
    if len(matches) > MAX_LISTED:
        click.echo(f"  … and {len(matches) - MAX_LISTED} more (--json lists all)")


@cli.command(context_settings=CONTEXT)
@_REMOTE
@_NO_REMAP
@_JSON
@click.pass_obj
def fetch(state: State, remote: str | None, no_remap: bool, as_json: bool) -> int:
    """Fetch provenance from REMOTE and merge it into yours.

    REMOTE defaults to the current branch's upstream remote, else origin. Runs are united,
    never replaced: nothing recorded here is lost. Arrived runs whose commits were
    rewritten elsewhere (a squash merge on a hosting service) are attached to the commits
    their code was copied to, as git prov remap does.
    """
    from git_prov import sync

    result = sync.fetch(HERE, remote, remap=not no_remap)
    if as_json:
        _emit_json(result)
    elif not result.had_provenance:
        click.echo(
            f"{result.remote} has no provenance yet (push yours with git prov push {result.remote})"
        )
    elif result.runs_added:
        click.echo(
            f"fetched {_runs(result.runs_added, 'new')} from {result.remote} "
            f"({result.runs_total} in all)"
        )
    else:
        click.echo(f"already up to date with {result.remote} ({_runs(result.runs_total)})")
    if not as_json:
        _remapped(state, result)
    _warn(result.remote, result)
    return 0


@cli.command(context_settings=CONTEXT)
@_REMOTE
@click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Give up after N rejected pushes (default: 12).",
)
@_JSON
@click.pass_obj
def push(state: State, remote: str | None, attempts: int | None, as_json: bool) -> int:
    """Push your provenance to REMOTE.

    If others pushed first, their runs are fetched and merged, then the push is retried.
    Never forced.
    """
    from git_prov import sync

    result = sync.push(HERE, remote, attempts=attempts or sync.DEFAULT_ATTEMPTS)
    if as_json:
        _emit_json(result)
    elif result.up_to_date and not result.runs_total:
        click.echo("no provenance recorded here yet: nothing to push")
    elif result.up_to_date:
        click.echo(f"{result.remote} already has all {_runs(result.runs_total)}")
    else:
        fresh = "" if result.had_provenance else ", which had no provenance before"
        click.echo(
            f"pushed {_runs(result.runs_pushed)} to {result.remote}{fresh} "
            f"({result.runs_total} in all)"
        )
    if not as_json and result.runs_fetched:
        click.echo(
            f"fetched {_runs(result.runs_fetched, 'new')} from {result.remote} on the way", err=True
        )
    _warn(result.remote, result)
    return 0


@cli.command(name="sync", context_settings=CONTEXT)
@_REMOTE
@click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Give up after N rejected pushes (default: 12).",
)
@_NO_REMAP
@_JSON
@click.pass_obj
def sync_command(
    state: State, remote: str | None, attempts: int | None, no_remap: bool, as_json: bool
) -> int:
    """Fetch, merge and push provenance: afterwards REMOTE and you hold the same runs.

    Arrived runs are remapped as by git prov fetch (not with --no-remap).
    """
    from git_prov import sync

    result = sync.sync(HERE, remote, attempts=attempts or sync.DEFAULT_ATTEMPTS, remap=not no_remap)
    if as_json:
        _emit_json(result)
    else:
        tries = f", {result.attempts} attempts" if result.attempts > 1 else ""
        if result.runs_fetched or result.runs_pushed:
            click.echo(
                f"synced with {result.remote}: {_runs(result.runs_fetched)} fetched, "
                f"{_runs(result.runs_pushed)} pushed ({result.runs_total} in all{tries})"
            )
        else:
            click.echo(f"already in sync with {result.remote} ({_runs(result.runs_total)})")
        _remapped(state, result)
    _warn(result.remote, result)
    return 0


@cli.group(hidden=True, context_settings=CONTEXT)
def hook() -> None:
    """Entry points of the git hooks git prov installs."""


@hook.command(name="pre-push", context_settings=CONTEXT)
@click.argument("remote")
@click.argument("url", required=False, default="")
@click.pass_obj
def pre_push(state: State, remote: str, url: str) -> int:
    """Called by the pre-push hook: push provenance too. Never blocks the push."""
    from git_prov import sync

    lines = sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
    result = sync.hook_pre_push(HERE, remote, url or remote, lines)
    if result.warning:
        click.echo(
            f"warning: {result.warning} (your push goes on; retry with git prov sync {remote})",
            err=True,
        )
    elif result.pushed is not None and not result.pushed.up_to_date:
        click.echo(f"git-prov: pushed {_runs(result.pushed.runs_pushed)} to {remote}", err=True)
    return 0

"""``git prov push``, ``fetch`` and ``sync`` (registered on the main group), and the hidden
``git prov hook pre-push`` that the pre-push trampoline calls: their options, for click.
What they do and print is :mod:`git_prov.sync.commands`, which :mod:`git_prov.entry` also
runs without click when the command line is a plain one; keep the options here and its
parser in step (a test compares them).

These commands hand the library a path, not an open repository: :mod:`git_prov.sync` reads
it with the git binary and loads pygit2 only when a merge is needed, so a sync with
nothing to merge costs the git it runs plus start-up."""

from __future__ import annotations

import click

from git_prov.cli import CONTEXT, State, cli
from git_prov.terminal import echo

_REMOTE = click.argument("remote", required=False)
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
_ATTEMPTS = click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Give up after N rejected pushes (default: no such bound; --timeout bounds them).",
)
_TIMEOUT = click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Stop retrying rejected pushes after SECONDS "
    "(default: git config prov.syncTimeout, else 60).",
)
_DATA = click.option(
    "--data",
    is_flag=True,
    help="Also move kept data (refs/prov/data, and its git-LFS objects); "
    "git prov get fetches what it needs without it.",
)
_NO_REMAP = click.option(
    "--no-remap",
    is_flag=True,
    help="Do not attach arrived runs to the commits their code was copied to (git prov remap).",
)


@cli.command(context_settings=CONTEXT)
@_REMOTE
@_NO_REMAP
@_DATA
@_JSON
@click.pass_obj
def fetch(state: State, remote: str | None, no_remap: bool, data: bool, as_json: bool) -> int:
    """Fetch provenance from REMOTE and merge it into yours.

    REMOTE defaults to the current branch's upstream remote, else origin. Runs are united,
    never replaced: nothing recorded here is lost. Arrived runs whose commits were
    rewritten elsewhere (a squash merge on a hosting service) are attached to the commits
    their code was copied to, as git prov remap does.
    """
    from git_prov.sync.commands import fetch_command

    return fetch_command(
        remote, no_remap=no_remap, as_json=as_json, echo=echo, style=state.style, data=data
    )


@cli.command(context_settings=CONTEXT)
@_REMOTE
@_ATTEMPTS
@_TIMEOUT
@_DATA
@_JSON
@click.pass_obj
def push(
    state: State,
    remote: str | None,
    attempts: int | None,
    timeout: int | None,
    data: bool,
    as_json: bool,
) -> int:
    """Push your provenance to REMOTE.

    If others pushed first, their runs are fetched and merged, then the push is retried
    with random backoff until it lands or --timeout runs out. Never forced.
    """
    from git_prov.sync.commands import push_command

    return push_command(
        remote, attempts=attempts, timeout=timeout, as_json=as_json, echo=echo, data=data
    )


@cli.command(name="sync", context_settings=CONTEXT)
@_REMOTE
@_ATTEMPTS
@_TIMEOUT
@_NO_REMAP
@_DATA
@_JSON
@click.pass_obj
def sync_command(
    state: State,
    remote: str | None,
    attempts: int | None,
    timeout: int | None,
    no_remap: bool,
    data: bool,
    as_json: bool,
) -> int:
    """Fetch, merge and push provenance: afterwards REMOTE and you hold the same runs.

    Arrived runs are remapped as by git prov fetch (not with --no-remap).
    """
    from git_prov.sync.commands import sync_command as run_sync

    return run_sync(
        remote,
        attempts=attempts,
        timeout=timeout,
        no_remap=no_remap,
        as_json=as_json,
        echo=echo,
        style=state.style,
        data=data,
    )


@cli.group(hidden=True, context_settings=CONTEXT)
def hook() -> None:
    """Entry points of the git hooks git prov installs."""


@hook.command(name="pre-push", context_settings=CONTEXT)
@click.argument("remote")
@click.argument("url", required=False, default="")
@click.pass_obj
def pre_push(state: State, remote: str, url: str) -> int:
    """Called by the pre-push hook: push provenance too. Never blocks the push."""
    from git_prov.sync.commands import pre_push_command

    return pre_push_command(remote, url, echo=echo)

"""``git prov get``: the kept bytes of a run's data, written back."""

from __future__ import annotations

from pathlib import Path

import click

from git_prov.cli import CONTEXT, State, _open, cli, complete_run
from git_prov.terminal import echo


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="RUN", shell_complete=complete_run)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Write the files below DIR (default: the working tree).",
)
@click.option("--force", is_flag=True, help="Overwrite files that differ from the recorded bytes.")
@click.option("--inputs", "side", flag_value="inputs", help="Only the run's inputs.")
@click.option("--outputs", "side", flag_value="outputs", help="Only the run's outputs.")
@click.option("--remote", metavar="REMOTE", help="Where to fetch kept data that is not here.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.pass_obj
def get(
    state: State,
    spec: str,
    paths: tuple[str, ...],
    output: str | None,
    force: bool,
    side: str | None,
    remote: str | None,
    as_json: bool,
) -> int:
    """Write the recorded bytes of a run's data files.

    Without PATH, every file whose bytes were kept (git prov run --keep …) or are held by
    git or git-LFS; with PATH (manifest paths, repo-relative; a directory means the files
    below it), those files, which must be obtainable (DVC and git-annex files too, from
    their local store). Each file is verified against its recorded hash before it takes
    its place. Kept data that is not here is fetched from the remote (REMOTE, else the
    upstream or origin).

    A file that already has the recorded bytes is left alone; one that differs is
    refused (exit 5) unless --force. Exit 6 when a file's bytes were not kept, were
    dropped by git prov gc, or are neither here nor on the remote.

    \b
    Examples:
      git prov get 3f2a9c1e                     every kept file, into the working tree
      git prov get 3f2a9c1e model.pt -o /tmp/r  one file, elsewhere
    """
    from git_prov.kept_data import GetOptions, get_files
    from git_prov.kept_get import get_here, say_result

    options = GetOptions(
        paths=paths,
        output=Path(output) if output is not None else None,
        force=force,
        side=side,
        remote=remote,
    )
    # Bytes kept here are copied without loading pygit2; anything else (and every error
    # about the repository itself) takes the full path.
    result = get_here(spec, options)
    if result is None:
        result = get_files(_open(), spec, options)
    return say_result(result, as_json=as_json, echo=echo, style=state.style)

"""``git prov export`` (PROV-JSON, RO-Crate, MLflow, CSV) and ``git prov completion``
(shell completion scripts), registered on the main group.

Completion uses click's mechanism: the shell calls ``git-prov`` with
``_GIT_PROV_COMPLETE=<shell>_complete`` and the words typed so far. The scripts printed
here add what makes ``git prov <TAB>`` work through git's own completion: a ``_git_prov``
function for bash (git's completion calls ``_git_<command>`` when one is defined) and
``_git-prov`` plus a ``user-commands`` style for zsh; fish's git completion already hands
``git prov …`` to the completions of ``git-prov``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from git_prov.cli import CONTEXT, State, _open, cli, complete_run
from git_prov.terminal import echo

SHELLS = ("bash", "zsh", "fish")
PROG = "git-prov"
COMPLETE_VAR = "_GIT_PROV_COMPLETE"

_BASH_GIT = r"""
# `git prov <TAB>`: git's completion calls _git_prov for the `prov` subcommand.
_git_prov() {
    local i=1
    while [[ $i -lt $cword && ${words[i]} != prov ]]; do i=$((i + 1)); done
    local response completion type value
    response=$(env COMP_WORDS="git-prov ${words[*]:i+1}" COMP_CWORD=$((cword - i)) \
        _GIT_PROV_COMPLETE=bash_complete git-prov 2>/dev/null)
    local IFS=$'\n'
    COMPREPLY=()
    for completion in $response; do
        IFS=',' read -r type value <<< "$completion"
        case $type in
            dir) COMPREPLY=(); compopt -o dirnames 2>/dev/null; return 0 ;;
            file) COMPREPLY=(); compopt -o default 2>/dev/null; return 0 ;;
            plain) COMPREPLY+=("$value") ;;
        esac
    done
    return 0
}
"""

_ZSH_GIT = r"""
# `git prov <TAB>`: zsh's git completion calls _git-prov with words starting at `prov`.
_git-prov() {
    words[1]=git-prov
    _git_prov_completion "$@"
}
zstyle ':completion:*:*:git:*' user-commands prov:'record experiment runs with their provenance'
"""


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN|COMMIT]...", shell_complete=complete_run)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["prov-json", "ro-crate", "mlflow", "csv"]),
    required=True,
    help="What to write.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Where: a file (prov-json, csv; default stdout) or a directory "
    "(ro-crate: git-prov-crate, mlflow: mlruns).",
)
@click.option("--all", "all_runs", is_flag=True, help="Export every run in the ledger.")
@click.option(
    "--experiment",
    metavar="NAME",
    help="MLflow experiment to put the runs in (default: the repository's name).",
)
@click.option(
    "--license",
    "license_id",
    metavar="ID",
    help="RO-Crate license: an SPDX id (CC-BY-4.0) or a URL (default: not specified).",
)
@click.option(
    "--publisher",
    metavar="URL",
    help="RO-Crate publisher: the publishing organisation's URL, e.g. its ROR id "
    "(default: not specified).",
)
@click.pass_obj
def export(
    state: State,
    runs: tuple[str, ...],
    fmt: str,
    output: Path | None,
    all_runs: bool,
    experiment: str | None,
    license_id: str | None,
    publisher: str | None,
) -> int:
    """Export runs for other tools: W3C PROV-JSON, a Workflow Run RO-Crate, an MLflow
    file store (mlruns/) or a CSV table.

    RUN is a run id, short id or unique prefix; COMMIT exports every run on it.

    \b
    Examples:
      git prov export --all -f csv -o runs.csv
      git prov export 3f2a9c1d -f prov-json > run.prov.json
      git prov export HEAD -f ro-crate -o crate --license CC-BY-4.0
      git prov export --all -f mlflow && mlflow ui --backend-store-uri ./mlruns
    """
    from git_prov.export import export as export_runs

    result = export_runs(
        _open(),
        runs,
        fmt,
        output,
        all_runs=all_runs,
        experiment=experiment,
        license=license_id,
        publisher=publisher,
    )
    for note in result.notes:
        echo(f"warning: {note}", err=True)
    if result.text is not None:
        from git_prov.terminal import csv_view, isatty

        on_terminal = fmt == "csv" and isatty(sys.stdout)
        echo(csv_view(result.text) if on_terminal else result.text, nl=False, data=True)
        return 0
    noun = "run" if result.runs == 1 else "runs"
    echo(f"exported {result.runs} {noun} as {fmt} to {result.path}", err=True)
    return 0


@cli.command(context_settings=CONTEXT)
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    It completes both `git-prov …` and `git prov …` (through git's own completion).

    \b
    Install (see docs/integrations.md):
      bash:  eval "$(git prov completion bash)"     in ~/.bashrc
      zsh:   eval "$(git prov completion zsh)"      in ~/.zshrc, after compinit
      fish:  git prov completion fish > ~/.config/fish/completions/git-prov.fish
    """
    echo(completion_script(shell), nl=False, data=True)
    return 0


def completion_script(shell: str) -> str:
    """The completion script for ``shell``: click's, for the ``git-prov`` command, plus
    the glue for ``git prov`` described in the module doc."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:
        raise click.UsageError(f"no completion for {shell}")
    source = completer(cli, {}, PROG, COMPLETE_VAR).source()
    if shell == "bash":
        return source + _BASH_GIT
    if shell == "zsh":
        return source + _ZSH_GIT
    return source

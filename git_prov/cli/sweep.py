"""``git prov sweep``: run and record a grid of params (parse, call
:func:`git_prov.sweep.run_sweep`, render a summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, cli
from git_prov.cli.output import _page
from git_prov.cli.recording import _options, _say_record_warnings, run
from git_prov.errors import EXIT_FINDING, EXIT_INTERRUPTED
from git_prov.terminal import echo

# `run`'s options a sweep takes as they are (one definition): every cell declares them.
_FROM_RUN = (
    "inputs", "outputs", "metrics", "metrics_file", "tags", "message", "python", "keep",
    "sign", "capture_logs",
)  # fmt: skip


@cli.command(
    name="sweep",
    context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "-p",
    "--param",
    "grid",
    multiple=True,
    metavar="NAME=V1,V2,…",
    help="A param and the values to sweep (repeatable: the grid of all combinations).",
)
@click.option(
    "--params-file",
    "sets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A list of param sets: JSON list of objects, TOML [[runs]] tables, or CSV with a "
    "header row (crossed with the -p grid when both are given).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Run N cells at once.",
)
@click.option("--fail-fast", is_flag=True, help="Start no further cell once one has failed.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary table.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def sweep_command(
    state: State,
    /,
    grid: tuple[str, ...],
    sets_file: Path | None,
    jobs: int,
    fail_fast: bool,
    quiet: bool,
    command: tuple[str, ...],
    **declared: Any,
) -> int:
    """Run COMMAND once per combination of params, each a recorded run.

    {NAME} in the command is the cell's value of param NAME, as written ({{ and }} are
    literal braces; any other {…} is an error, found before anything runs). The command
    runs without a shell. Each cell is recorded as `git prov run` records it, with its
    values as params and the tag sweep:ID (one ID per sweep). {NAME} works in -i, -o and
    --metrics-file paths too, so each cell can have its own files. A failed cell does not
    stop the others unless --fail-fast. At the end, a summary table (as git prov compare).

    Exits 0 when every cell ran and ended ok, 1 when any failed or could not start,
    130 when interrupted.

    \b
    Examples:
      git prov sweep -p lr=0.1,0.01 -p depth=3,5 -- python train.py --lr {lr} --depth {depth}
      git prov sweep --params-file sets.csv -j 2 --metrics-file out/{n}/m.json -- python t.py {n}
    """
    from git_prov import sweep
    from git_prov.query import comparison
    from git_prov.query.render import compare_text

    grid_values = sweep.parse_grid(grid)
    sets = sweep.read_param_sets(sets_file) if sets_file is not None else []
    cells = sweep.plan(command, grid_values, sets)
    repo = _open()
    options = _options(
        declared["inputs"],
        declared["outputs"],
        (),
        (),
        declared["metrics"],
        declared["metrics_file"],
        declared["tags"],
        declared["message"],
        declared["python"],
        declared["capture_logs"],
        declared["sign"],
        declared["keep"],
    )
    sweep_id = sweep.new_sweep_id()
    total = len(cells)
    if not quiet:
        echo(f"git-prov: sweep {sweep_id}: {total} cell{'s' * (total != 1)}", err=True)

    def started(cell: Any) -> None:
        if not quiet:
            echo(
                f"git-prov: cell {cell.index}/{total} ({cell.label()}): {' '.join(cell.argv)}",
                err=True,
            )

    said: set[str] = set()  # the dirty tree's reasons, said once for the whole sweep

    def done(res: Any) -> None:
        if res.record is not None:
            _say_record_warnings(repo, res.record, said)
        if quiet:
            return
        if res.record is not None:
            echo(
                f"git-prov: cell {res.cell.index}/{total} recorded run {res.record.short_id} "
                f"— {res.record.status} (exit status {res.exit_status})",
                err=True,
            )
        else:
            echo(f"git-prov: cell {res.cell.index}/{total} not run: {res.error}", err=True)

    result = sweep.run_sweep(
        repo.root,
        cells,
        options,
        sweep_id=sweep_id,
        jobs=jobs,
        fail_fast=fail_fast,
        on_start=started,
        on_done=done,
    )
    records = [r.record for r in result.results if r.record is not None]
    if records:
        table = comparison.compare_runs([comparison.from_record(r) for r in records])
        _page(state, compare_text(table, style=state.style))
    for res in result.results:
        if res.record is None:
            echo(f"cell {res.cell.index} ({res.cell.label()}): not run — {res.error}")
    failed = len(result.failed)
    echo(
        f"sweep {sweep_id}: {len(records)} of {total} recorded, "
        f"{total - failed} ok, {failed} failed or not run; "
        f"git prov compare --tag {result.tag}",
        err=True,
    )
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FINDING if failed else 0


sweep_command.params[-1:-1] = [p for p in run.params if p.name in _FROM_RUN]

"""``git prov metrics``: metric histories of runs (registered on the main group)."""

from __future__ import annotations

import json

import click

from git_prov.cli import CONTEXT, State, _open, cli
from git_prov.errors import UsageProblem
from git_prov.terminal import csv_view, echo, view


@cli.command(name="metrics", context_settings=CONTEXT)
@click.argument("arguments", nargs=-1, metavar="RUN... [KEY...]")
@click.option("--table", "as_table", is_flag=True, help="Every point: one row per step.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="Every point as CSV: run,metric,step,time,value."
)
@click.option("--json", "as_json", is_flag=True, help="Every point and the summaries as JSON.")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Print points as a running run logs them, until its record is written (one RUN).",
)
@click.pass_obj
def metrics_command(
    state: State,
    arguments: tuple[str, ...],
    as_table: bool,
    as_csv: bool,
    as_json: bool,
    follow: bool,
) -> int:
    """Show the metric histories of runs: every value logged, with its step and time.

    RUN is a run id, short id or prefix — of a recorded run, or of one still running (its
    points so far). KEY limits the output to those metrics. By default each metric is one
    line: a sparkline of its values, the number of points, last, min, max and the best
    value with its step (when what is best is known: docs/format.md).

    \b
    Examples:
      git prov metrics 3f2a9c1d                 one line per metric
      git prov metrics 3f2a 8b1c loss --csv     every loss point of two runs
      git prov metrics 3f2a --follow            like tail -f, while it runs
    """
    from git_prov.query import histories

    if sum((as_table, as_csv, as_json, follow)) > 1:
        raise UsageProblem("--table, --csv, --json and --follow do not go together")
    specs, keys = histories.split_arguments(arguments)
    if not specs:
        raise UsageProblem(
            "no run given" + (f" ({arguments[0]!r} is not a run id)" if arguments else ""),
            "name runs by id, short id or a prefix of 4+ characters: git prov metrics RUN [KEY...]",
        )
    repo = _open()
    if follow:
        if len(specs) != 1:
            raise UsageProblem("--follow follows one run", "name one RUN")
        for run, seen in histories.follow(repo, specs[0], keys):
            if not seen:
                echo(f"run {run.short_id}  {run.command}")
            for line in histories.new_point_lines(run, seen):
                echo(line)
        return 0
    runs = [histories.load_histories(repo, spec, keys) for spec in specs]
    if as_json:
        echo(json.dumps(histories.to_json(runs), indent=2, sort_keys=True), data=True)
        return 0
    if as_csv:
        echo(csv_view(histories.to_csv(runs)), nl=False, data=True)
        return 0
    lines: list[str] = []
    for run in runs:
        if as_table:
            lines.append(f"run {run.short_id}  {run.command}")
            lines.extend(histories.table_lines(run) if run.histories else ["  no metric history"])
        else:
            lines.extend(histories.summary_lines(run))
    if keys and not any(run.histories for run in runs):
        raise UsageProblem(
            f"no run given has a history of {', '.join(keys)}",
            "`git prov metrics RUN` lists the metrics it has",
        )
    echo(view(lines))
    return 0

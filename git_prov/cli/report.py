"""``git prov report``: write one self-contained HTML page about the runs. Parse, call
:func:`git_prov.report.build_report`, write."""

from __future__ import annotations

from pathlib import Path

import click

from git_prov.cli import CONTEXT, State, _open, cli
from git_prov.errors import UsageProblem
from git_prov.terminal import echo


@cli.command(name="report", context_settings=CONTEXT)
@click.argument("revisions", nargs=-1)
@click.option(
    "-o",
    "--output",
    default="prov-report.html",
    show_default=True,
    metavar="FILE",
    help="Where to write the page ('-' for standard output).",
)
@click.option("--title", metavar="TEXT", help="The page title (default: the repository name).")
@click.option(
    "--max-runs",
    type=click.IntRange(min=0),
    default=1000,  # git_prov.report.MAX_TABLE_RUNS (not imported: start-up stays lean)
    show_default=True,
    metavar="N",
    help="Rows of the runs table and run details (newest first); 0: every run (over 5000"
    " runs the default page reads only the newest 5000; 0 reads all, and says what it costs).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the report on 127.0.0.1 instead, rebuilt at every reload (^C stops).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port for --serve (0: a free one)."
)
@click.pass_obj
def report_command(
    state: State,
    revisions: tuple[str, ...],
    output: str,
    title: str | None,
    max_runs: int,
    serve: bool,
    port: int,
) -> int:
    """Write an HTML report of the runs: a sortable, filterable table, run details, a
    lineage graph, metric trends, mismatches and anomalies.

    The page is one file with no network access (CSS and scripts inline), readable
    without JavaScript: open it from disk or keep it as a CI artifact. REVISIONS limit it
    to runs shown on those commits (as for git log); default: every run.

    \b
    Examples:
      git prov report                      every run, into prov-report.html
      git prov report main~50..main -o runs.html
    """
    from git_prov.report import build_report, full_read_cost, write_report
    from git_prov.report.html import render

    repo = _open()
    if max_runs == 0 and not revisions:
        cost = full_read_cost(repo)
        if cost is not None:
            echo(f"note: {cost}", err=True)
    if serve:
        from git_prov.report import make_server

        try:
            server = make_server(repo, revisions, port=port, title=title, max_runs=max_runs or None)
        except OSError as exc:
            raise UsageProblem(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        host, bound = server.server_address[:2]
        echo(f"serving the report at http://{host}:{bound}/ (^C to stop)", err=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
        return 0
    report = build_report(repo, revisions, title=title, max_runs=max_runs or None)
    if output == "-":
        echo(render(report), nl=False, data=True)
        return 0
    path = Path(output)
    if path.is_dir():
        raise UsageProblem(f"{output} is a directory", "give a file name, e.g. -o report.html")
    try:
        size = write_report(report, path)
    except OSError as exc:
        raise UsageProblem(f"cannot write {output}: {exc.strerror}") from None
    echo(
        f"wrote {output}: {len(report.runs)} of {report.total_runs} runs, {size / 1000:.0f} kB "
        f"({len(report.mismatches)} mismatches, {len(report.anomalies)} anomalies)",
        err=True,
    )
    echo(str(path))
    return 0

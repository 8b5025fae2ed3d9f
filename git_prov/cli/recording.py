"""``git prov run`` and ``git prov record``: their shared options, and what both say once
a run is recorded (``sweep`` says it too, for each cell)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, _progress, cli
from git_prov.collector import collector_paused
from git_prov.errors import EXIT_INTERRUPTED, UsageProblem
from git_prov.terminal import echo


def _record_options(func: Any) -> Any:
    options = [
        click.option(
            "-i",
            "--input",
            "inputs",
            multiple=True,
            metavar="PATH",
            help="A file or directory the run reads (repeatable).",
        ),
        click.option(
            "-o",
            "--output",
            "outputs",
            multiple=True,
            metavar="PATH",
            help="A file or directory the run writes (repeatable).",
        ),
        click.option(
            "-p",
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="A parameter of the run (repeatable).",
        ),
        click.option(
            "--params-file",
            multiple=True,
            metavar="FILE",
            help="JSON/TOML/YAML file of parameters, read before the run.",
        ),
        click.option(
            "--metric",
            "metrics",
            multiple=True,
            metavar="KEY=VALUE",
            help="A metric of the run (repeatable).",
        ),
        click.option(
            "--metrics-file",
            multiple=True,
            metavar="FILE",
            help="Metrics read after the run: a JSON/TOML/YAML file of values, or a "
            "history: JSON lines (.jsonl), CSV/TSV with a step column, a DVCLive "
            "directory, TensorBoard event files.",
        ),
        click.option(
            "--goal",
            "goals",
            multiple=True,
            metavar="KEY=min|max",
            help="What is best for a metric's history (default: by its name, e.g. loss "
            "min, acc max; others none).",
        ),
        click.option(
            "-t",
            "--tag",
            "tags",
            multiple=True,
            metavar="TAG",
            help="A label for the run (repeatable).",
        ),
        click.option("-m", "--message", metavar="TEXT", help="A note about the run."),
        click.option(
            "--python",
            metavar="PATH",
            help="The interpreter whose packages to record (default: the one the command uses).",
        ),
        click.option(
            "-k",
            "--keep",
            "keep",
            multiple=True,
            metavar="WHAT",
            help="Keep the bytes of data, not only their hash: inputs, outputs, all, a "
            "declared PATH, or none (ignore .gitprov.toml's [keep]); repeatable. "
            "`git prov get RUN` gives them back.",
        ),
        click.option(
            "--sign/--no-sign",
            "sign",
            default=None,
            help="Sign the record with your git signing key (default: git config prov.sign).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(
    inputs: Sequence[str],
    outputs: Sequence[str],
    params: Sequence[str],
    params_file: Sequence[str],
    metrics: Sequence[str],
    metrics_file: Sequence[str],
    tags: Sequence[str],
    message: str | None,
    python: str | None,
    capture_logs: bool | None = None,
    sign: bool | None = None,
    keep: Sequence[str] = (),
    goals: Sequence[str] = (),
) -> Any:
    from git_prov.model.values import parse_assignment
    from git_prov.recording import RunOptions

    def pairs(items: Sequence[str], what: str) -> dict[str, Any]:
        out = {}
        for item in items:
            try:
                key, value = parse_assignment(item, what)
            except ValueError as exc:
                raise UsageProblem(str(exc), f"write it as --{what} name=value") from None
            out[key] = value
        return out

    return RunOptions(
        inputs=inputs,
        outputs=outputs,
        params=pairs(params, "param"),
        metrics=pairs(metrics, "metric"),
        params_files=params_file,
        metrics_files=metrics_file,
        tags=tags,
        message=message,
        python=python,
        capture_logs=capture_logs,
        sign=sign,
        keep=keep,
        goals=_goals(goals),
    )


def _goals(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, goal = item.rpartition("=")
        if not sep or not key or goal not in ("min", "max"):
            raise UsageProblem(f"--goal {item!r} is not KEY=min or KEY=max")
        out[key] = goal
    return out


@cli.command(
    context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_interspersed_args": False}
)
@_record_options
@click.option(
    "--log/--no-log",
    "capture_logs",
    default=None,
    help="Keep stdout/stderr with the record (default: on, see .gitprov.toml).",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print the recorded run's id.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(
    state: State,
    command: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    params: tuple[str, ...],
    params_file: tuple[str, ...],
    metrics: tuple[str, ...],
    metrics_file: tuple[str, ...],
    tags: tuple[str, ...],
    message: str | None,
    python: str | None,
    capture_logs: bool | None,
    quiet: bool,
    sign: bool | None,
    keep: tuple[str, ...],
    goals: tuple[str, ...],
) -> int:
    """Run COMMAND and record it with its code, data and environment.

    Put the command after --. Its input, output and exit status are its own; git prov
    exits with the command's status (128+N when a signal killed it). An argument naming
    a param given with -p as {NAME} gets its value as typed, so it is written once
    ({{ and }} are literal braces there; other arguments are left as they are).

    \b
    Example:
      git prov run -i data/train.csv -o model.pt -p lr=0.01 -- python train.py --lr {lr}
    """
    from git_prov import recording

    repo = _open()
    options = _options(
        inputs,
        outputs,
        params,
        params_file,
        metrics,
        metrics_file,
        tags,
        message,
        python,
        capture_logs,
        sign,
        keep,
        goals,
    )
    if params and any("{" in arg for arg in command):
        from git_prov.sweep import substitute_run_argv

        # -p lr=0.1 -- python t.py --lr {lr}: the value as typed, written once.
        typed = {k.strip(): v for k, _, v in (p.partition("=") for p in params)}
        command = tuple(substitute_run_argv(command, typed))
    outcome = recording.run(repo, command, options, progress=_progress())
    _say_recorded(repo, outcome.record, quiet=quiet)
    if outcome.interrupted and outcome.exit_status == 0:
        return EXIT_INTERRUPTED
    return outcome.exit_status


@cli.command(context_settings={**CONTEXT, "allow_interspersed_args": False})
@_record_options
@click.option(
    "-c",
    "--command",
    "command_text",
    metavar="TEXT",
    help="The command that ran, as a shell would show it.",
)
@click.option("--exit-code", type=int, default=0, show_default=True, help="How the command ended.")
@click.option(
    "--started", metavar="TIME", help="When it started (ISO 8601; default: now minus --duration)."
)
@click.option("--duration", type=float, metavar="SECONDS", help="How long it took.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored record as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the recorded run's id.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@collector_paused()  # (its modules load, pygit2 too; its work is paused in recording too)
def record(
    state: State,
    argv: tuple[str, ...],
    command_text: str | None,
    quiet: bool,
    exit_code: int,
    started: str | None,
    duration: float | None,
    as_json: bool,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    params: tuple[str, ...],
    params_file: tuple[str, ...],
    metrics: tuple[str, ...],
    metrics_file: tuple[str, ...],
    tags: tuple[str, ...],
    message: str | None,
    python: str | None,
    sign: bool | None,
    keep: tuple[str, ...],
    goals: tuple[str, ...],
) -> int:
    """Record a run that happened outside git prov.

    Name the command with --command TEXT or after --. The code recorded is the current
    HEAD (and working tree, if dirty); inputs and outputs are hashed as they are now.

    \b
    Example:
      git prov record -i data -o results.csv --exit-code 0 --duration 3600 \\
          -- sbatch train.sh
    """
    import shlex

    from git_prov import recording

    if command_text and argv:
        raise UsageProblem("give the command either with --command or after --, not both")
    text = command_text or (shlex.join(argv) if argv else None)
    if not text:
        raise UsageProblem("no command given", "use --command 'TEXT' or put it after --")
    start_time = None
    if started:
        try:
            start_time = datetime.fromisoformat(started.replace("Z", "+00:00"))
        except ValueError:
            raise UsageProblem(f"--started {started!r} is not an ISO 8601 time") from None
        if start_time.tzinfo is None:
            start_time = start_time.astimezone()
    repo = _open()
    options = _options(
        inputs,
        outputs,
        params,
        params_file,
        metrics,
        metrics_file,
        tags,
        message,
        python,
        sign=sign,
        keep=keep,
        goals=goals,
    )
    rec = recording.record(
        repo, text, exit_code, options, started=start_time, duration=duration, progress=_progress()
    )
    _say_recorded(repo, rec, quiet=quiet)
    if as_json:
        echo(json.dumps(rec.to_json_dict(), indent=2, sort_keys=True), data=True)
    return 0


def _say_recorded(repo: Any, record: Any, *, quiet: bool) -> None:
    """What ``run`` and ``record`` both say on stderr once a run is recorded, in one form:
    its warnings and hints (always), then ``git-prov: recorded run SHORT — STATUS,
    DURATION, on COMMIT`` (unless ``quiet``). The prefix tells it apart from the output of
    the command ``run`` ran; the short id is what ``show``, ``diff`` and the hints take."""
    from git_prov.model.record import format_duration

    _say_record_warnings(repo, record)
    if not quiet:
        dirty = " (dirty tree, snapshot kept)" if record.dirty else ""
        echo(
            f"git-prov: recorded run {record.short_id} — {record.status}, "
            f"{format_duration(record.duration)}, on {record.commit[:7]}{dirty}",
            err=True,
        )


def _say_record_warnings(repo: Any, record: Any, said: set[str] | None = None) -> None:
    """The problems met while recording a run that still got recorded, one per line; why
    its tree was dirty and what its snapshot left out for size (only when it was; each
    reason once per ``said``, for the many runs of a sweep); and the secret files its
    snapshot left out, on one line."""
    from git_prov.model.record import printable
    from git_prov.record_hints import dirty_hints, dirty_reasons, record_warnings, secrets_left_out

    for text in record_warnings(record):
        echo(f"warning: run {record.short_id}: {printable(text)}", err=True)
    if record.snapshot or record.omitted:
        for text in dirty_hints(dirty_reasons(repo, record)):
            if said is None or text not in said:
                echo(f"note: run {record.short_id}: {printable(text)}", err=True)
            if said is not None:
                said.add(text)
    if left_out := secrets_left_out(record):
        echo(
            f"note: run {record.short_id}: secret files left out of the snapshot: "
            f"{printable(', '.join(left_out))} (.gitprov.toml [run] secret_files decides)",
            err=True,
        )

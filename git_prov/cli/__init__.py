"""The ``git prov`` command line: parse, call one library function, render.

This package and :mod:`git_prov.entry` (the executable, which runs push, fetch and sync
itself without click) are the only modules that print or exit. Errors become ``error: …`` on
stderr and the exit code of their :class:`~git_prov.errors.ProvError`
(:func:`git_prov.entry.report_failure`); see docs/cli.md for the table.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from git_prov import __version__
from git_prov.entry import COMPLETE_ENV, debug_wanted, report_failure
from git_prov.errors import EXIT_INTERRUPTED, NotFound, UsageProblem
from git_prov.terminal import echo

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PATHSPEC_COMMANDS = ("log",)


class State:
    """Options of the top-level ``git prov`` group shared with every command."""

    def __init__(self, color: bool, debug: bool, no_pager: bool):
        self.color = color
        self.debug = debug
        self.no_pager = no_pager

    def style(self, text: str, **kwargs: Any) -> str:
        """``text`` in git-prov's colours when they are on (codes marked as our own, so
        the one output path, :mod:`git_prov.terminal`, lets them through)."""
        from git_prov import terminal

        return terminal.style(text, **kwargs) if self.color else text


# Commands that live in their own modules, and the modules that define them. A module is
# imported only when one of its commands runs (or help lists them all), so `git prov sync`
# does not pay for importing the query, report or trust commands. `hook` gathers
# subcommands from two modules.
LAZY_COMMANDS: dict[str, tuple[str, ...]] = {
    "find": ("query",),
    "runs": ("query",),
    "env": ("query",),
    "diff": ("query",),
    "check": ("query",),
    "lineage": ("query",),
    "compare": ("query",),
    "sweep": ("sweep",),
    "report": ("report",),
    "reproduce": ("reproduce",),
    "remap": ("rewrite",),
    "hooks": ("rewrite",),
    "push": ("sync",),
    "fetch": ("sync",),
    "sync": ("sync",),
    "hook": ("sync", "rewrite"),
    "verify": ("trust",),
    "gc": ("trust",),
    "fsck": ("trust",),
    "export": ("ecosystem",),
    "get": ("data",),
    "completion": ("ecosystem",),
    "metrics": ("metrics",),
}


class LazyGroup(click.Group):
    """A group whose command modules are imported on first use (click's lazy loading)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib

        for module in LAZY_COMMANDS.get(cmd_name, ()):
            importlib.import_module(f"git_prov.cli.{module}")  # registers on `cli`
        return super().get_command(ctx, cmd_name)


def complete_run(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a RUN argument: the run ids starting with what was typed
    (:mod:`git_prov.query.completion`), in the directory ``-C DIR`` names if given."""
    from click.shell_completion import CompletionItem

    from git_prov.query.completion import complete_runs

    root = ctx.find_root()
    directory = root.params.get("directory")
    cwd = Path(directory) if isinstance(directory, str) else None
    return [CompletionItem(c.value, help=c.about) for c in complete_runs(incomplete, cwd)]


def _open(directory: Path | None = None) -> Any:
    from git_prov.store.repo import open_repo

    return open_repo(directory)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.option(
    "-C",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Run as if git prov was started in DIR.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output.",
)
@click.option("--no-pager", is_flag=True, help="Do not pipe long output into a pager.")
@click.option(
    "--debug",
    is_flag=True,
    envvar="GIT_PROV_DEBUG",
    help="Show tracebacks of internal errors (also GIT_PROV_DEBUG=1).",
)
@click.version_option(__version__, "--version", prog_name="git-prov")
@click.pass_context
def cli(ctx: click.Context, directory: str | None, color: str, no_pager: bool, debug: bool) -> None:
    """Provenance for experiment runs, inside git.

    Record every run with the exact code, data and environment it used; the records are
    git notes and objects that travel with push and fetch.

    \b
    Start with:
      git prov init                      prepare this repository (optional)
      git prov run -i data -o model -- python train.py
      git prov log                       runs next to your commits
      git prov show RUN                  everything about one run
      git prov demo                      a guided example in a throw-away repository
    """
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise UsageProblem(f"cannot change to {directory}: {exc.strerror}") from None
    use_color = color == "always" or (
        color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    ctx.obj = State(use_color, debug, no_pager)
    from git_prov import progress

    progress.set_ambient(_progress)  # e.g. building the query index on a first query


# ---- run and record ----------------------------------------------------------------------


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


# ---- reading -----------------------------------------------------------------------------


@cli.command(name="log", context_settings=CONTEXT)
@click.argument("revisions", nargs=-1)
@click.option("--path", "paths", multiple=True, hidden=True)
@click.option("--oneline", is_flag=True, help="One line per run.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option(
    "--all-runs", is_flag=True, help=f"Show every run of a commit (default: the last {5})."
)
@click.option("--all-commits", is_flag=True, help="List commits without runs too.")
@click.option(
    "-n",
    "--max-count",
    type=click.IntRange(min=1),
    metavar="N",
    help="Show at most N commits (-N too, as in git log).",
)
@click.pass_obj
def log_command(
    state: State,
    revisions: tuple[str, ...],
    paths: tuple[str, ...],
    oneline: bool,
    as_json: bool,
    all_runs: bool,
    all_commits: bool,
    max_count: int | None,
) -> int:
    """Show commits with the runs recorded on them, newest first.

    REVISIONS and -- PATH… work as for git log (default: HEAD).

    \b
    Examples:
      git prov log                       runs on the current branch
      git prov log main~20..main         runs in a range
      git prov log --all -- train.py     runs on commits touching train.py
    """
    from git_prov import history, render
    from git_prov.query.index import RepoPaths, open_index

    with open_index(RepoPaths.discover()) as index:
        _report_problems(index.problems())
        commits = history.log(
            index,
            revisions,
            paths,
            all_commits=all_commits,
            max_count=max_count,
            newest=None if as_json or all_runs or oneline else render.MAX_RUNS_PER_COMMIT,
        )
        if as_json:
            echo(json.dumps(render.log_json(commits), indent=2, sort_keys=True), data=True)
            return 0
        chunks = render.log_chunks(commits, style=state.style, all_runs=all_runs, oneline=oneline)
        first = next(chunks, "")
        where = index.paths
        if not first:
            echo(_no_runs_message(where, revisions), err=True)
        else:
            _page(state, itertools.chain([first], chunks))
        if hint := orphan_hint(where, index):
            echo(f"hint: {hint}", err=True)
    return 0


def orphan_hint(paths: Any, index: Any) -> str | None:
    """``log``'s and ``find``'s word about runs on commits no branch reaches (cached:
    :mod:`git_prov.query.hints`), or None when there are none."""
    from git_prov.query.hints import orphaned_run_count, rewrite_hook_installed

    count = orphaned_run_count(paths, index.db, index.tips.notes)
    if not count:
        return None
    runs = "1 run is" if count == 1 else f"{count} runs are"
    todo = "`git prov remap` finds the commits their code is in now and attaches them there"
    if not rewrite_hook_installed(paths):
        todo += "; `git prov init` installs the hook that carries runs through amend and rebase"
    return f"{runs} on commits no branch reaches (after an amend or rebase?) — {todo}"


def _no_runs_message(paths: Any, revisions: Sequence[str]) -> str:
    """What ``log`` says when it lists no run: in a repository with no ledger of its own
    but remotes, that a clone does not bring provenance and how to get it (no network:
    :func:`git_prov.query.hints.unfetched_remotes`)."""
    from git_prov.query.hints import unfetched_remotes

    empty = "no runs recorded in this range yet (record one with: git prov run -- CMD)"
    found = unfetched_remotes(paths)
    if found is None or not found.remotes:
        return empty
    if found.tracked:
        names = " ".join(found.tracked)
        return (
            f"no runs recorded here yet, but provenance fetched from {names} is not merged "
            f"— run `git prov fetch {found.tracked[0]}`"
        )
    remote = "origin" if "origin" in found.remotes else found.remotes[0]
    return (
        "no runs recorded here yet — a clone does not bring provenance: run "
        f"`git prov fetch {remote}` to get {remote}'s, if it has any "
        f"(`git prov init --remote {remote}` makes plain `git fetch` bring it)"
    )


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="RUN|COMMIT", default="HEAD", shell_complete=complete_run)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option("--env", "full_env", is_flag=True, help="List every package and variable.")
@click.option("--all-files", is_flag=True, help="List every data file.")
@click.option(
    "--log",
    "log_stream",
    type=click.Choice(["stdout", "stderr"]),
    help="Print the kept stdout or stderr of the run instead.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="With --log: the kept bytes as they are, even on a terminal (escape codes and all).",
)
@click.pass_obj
def show(
    state: State,
    spec: str,
    as_json: bool,
    full_env: bool,
    all_files: bool,
    log_stream: str | None,
    raw: bool,
) -> int:
    """Show everything about a run, or about every run on a commit.

    RUN is a run id, its short form (the 8 characters in git prov log) or a unique
    prefix; COMMIT is any git revision (default: HEAD).

    A log printed with --log on a terminal shows control characters escaped (\x1b):
    logs may come from someone else's ledger. Into a pipe or file, and with --raw, it is
    written byte for byte.
    """
    from git_prov import history, render
    from git_prov.query import located
    from git_prov.query.index import RepoPaths, RunIndex, with_index
    from git_prov.store.ledger import Ledger, LocatedRun

    repo = _open()
    ledger = Ledger(repo)

    def find(index: RunIndex) -> list[LocatedRun]:
        try:
            return [located.resolve(index, spec)]
        except NotFound as not_a_run:
            commit = history.resolve_commit(repo, spec)
            if commit is None and spec == "HEAD" and repo.head_is_unborn:
                repo.head_commit()  # raises: "this repository has no commits yet — …"
            if commit is None:
                raise not_a_run from None
            runs = located.runs_on(index, [commit]).get(commit)
            if not runs:
                raise NotFound(
                    f"no runs recorded on {spec} ({commit[:12]})",
                    "see which commits have runs with `git prov log`",
                ) from None
            return runs

    def find_and_warn(index: RunIndex) -> tuple[list[LocatedRun], dict[str, list[LocatedRun]]]:
        _report_problems(index.problems())  # (also before "not found": it may be why)
        found = find(index)
        if log_stream:
            return found, {}
        from git_prov.query.whereabouts import reproductions

        return found, {r.id: reproductions(index, r) for r in found}

    runs, reproduced = with_index(RepoPaths.of_repo(repo), find_and_warn)
    if log_stream:
        oid = getattr(runs[-1].record, log_stream)
        if oid is None:
            raise NotFound(f"run {runs[-1].record.short_id} kept no {log_stream}")
        from git_prov.store.drops import is_dropped

        if is_dropped(ledger, oid):
            raise NotFound(f"the {log_stream} of run {runs[-1].record.short_id} was dropped by gc")
        data = ledger.read_object(oid, f"{log_stream} log")
        from git_prov import terminal

        if raw and terminal.isatty(sys.stdout):
            echo(
                "warning: --raw sends the log's control sequences to your terminal as they "
                "are; use it only for a log you trust",
                err=True,
            )
        terminal.echo_bytes(data, raw=raw)
        return 0
    if raw:
        raise UsageProblem("--raw goes with --log stdout|stderr")
    from git_prov.cli.rewrite import whereabouts_json, whereabouts_rows

    if as_json:
        docs = [
            {
                **render.show_json(ledger, r),
                **whereabouts_json(repo, r),
                "reproduced_by": [x.id for x in reproduced.get(r.id, [])],
            }
            for r in runs
        ]
        echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, sort_keys=True), data=True)
        return 0
    from git_prov.terminal import View, views

    text = views(
        (
            render.show_text(
                ledger,
                r,
                style=state.style,
                all_files=all_files,
                full_env=full_env,
                where=whereabouts_rows(repo, r, reproduced.get(r.id, [])),
            )
            for r in runs
        ),
        View("\n"),  # a blank line between runs
    )
    _page(state, text)
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
    from git_prov.recording import dirty_hints, dirty_reasons, record_warnings, secrets_left_out

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


def _report_problems(problems: Sequence[Any]) -> None:
    for p in problems[:5]:
        if not p.line_number:  # a whole note not read (a reader limit, a missing blob)
            echo(
                f"warning: {p.reason} (other runs are shown)"
                if "limit" in p.reason
                else f"warning: the note on {p.commit[:12]}: {p.reason}",
                err=True,
            )
            continue
        echo(
            f"warning: unreadable ledger line {p.line_number} in the note on "
            f"{p.commit[:12]}: {p.reason} (other runs are shown; "
            f"git prov fsck has details)",
            err=True,
        )
    if len(problems) > 5:
        echo(f"warning: … and {len(problems) - 5} more unreadable ledger lines", err=True)


# ---- setup and demo ------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.option(
    "--no-display", is_flag=True, help="Do not make plain `git log` show runs (notes.displayRef)."
)
@click.option(
    "--remote",
    metavar="REMOTE",
    help="Make plain `git fetch REMOTE` bring provenance into tracking refs too.",
)
@click.option(
    "--push-hook",
    is_flag=True,
    help="Make plain `git push` carry provenance too (installs a pre-push hook).",
)
@click.option(
    "--no-hooks",
    is_flag=True,
    help="Do not install the post-rewrite hook that carries runs through amend and rebase.",
)
@click.option(
    "--print-template", is_flag=True, help="Print the documented .gitprov.toml template and exit."
)
@click.option(
    "--template",
    "template_name",
    metavar="NAME",
    help="Also set the repository up for a kind of project: .gitignore entries, "
    ".gitprov.toml, an example and a CI workflow (`--template list` lists them).",
)
@click.pass_obj
def init(
    state: State,
    no_display: bool,
    remote: str | None,
    push_hook: bool,
    no_hooks: bool,
    print_template: bool,
    template_name: str | None,
) -> int:
    """Prepare this repository for git prov (optional; safe to run again).

    Writes a documented .gitprov.toml (commit it to share defaults), makes plain
    `git log` show each commit's runs, and installs a post-rewrite hook so runs follow
    their commits through amend and rebase (an existing hook is kept and chained).
    Every other command also works without init.

    With --template NAME it first writes a project template's files; an existing file
    is never overwritten (it is kept and named; .gitignore gets the missing lines).

    \b
    Examples:
      git prov init --template list      the templates there are
      git prov init --template python    a Python training project
    """
    from git_prov import config, initialize

    if print_template:
        echo(config.template_text(), nl=False, data=True)
        return 0
    template = None
    if template_name is not None:
        from git_prov import project_templates

        if template_name == "list":
            for t in project_templates.TEMPLATES:
                echo(f"{t.name:<10} {t.summary}")
            return 0
        template = project_templates.find_template(template_name)
    repo = _open()
    if template is not None:
        for line in project_templates.apply_template(repo.root, template.name):
            echo(f"template {template.name}: {line}")
    for line in initialize.init(repo, display=not no_display, hooks=not no_hooks):
        echo(line)
    if remote is not None or push_hook:
        from git_prov import sync

        for line in sync.configure_remote(repo, remote, push_hook=push_hook):
            echo(line)
    if template is not None:
        echo("next, try:")
        for step in template.next_steps:
            echo(f"  {step}")
    return 0


@cli.command(context_settings=CONTEXT)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build the demo repository here (default: a new temporary directory).",
)
@click.pass_obj
def demo(state: State, directory: Path | None) -> int:
    """Record a tiny three-stage experiment in a throw-away repository and show it."""
    from git_prov import demo as demo_module

    def say(text: str) -> None:
        from git_prov.terminal import adopt, view

        # The demo's commands are git prov itself, on a repository it just made: their
        # colours are ours; anything else in their output is escaped as usual.
        if text.startswith("$"):
            echo(state.style(text, fg="magenta", bold=True))
        else:
            echo(view(adopt(text).split("\n")), nl=False)
        sys.stdout.flush()

    demo_module.run_demo(directory, say=say, color=state.color)
    return 0


# ---- plumbing ------------------------------------------------------------------------------


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only after half a second of work."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.label = ""
        self.total = 0
        self.done = 0
        self.begun = 0.0
        self.drawn = 0.0
        self.unit = "B"

    def start(self, label: str, total: int, unit: str = "B") -> None:
        with self.lock:
            self.label, self.total, self.done, self.unit = label, total, 0, unit
            self.begun = time.monotonic()
            self.drawn = 0.0

    def advance(self, amount: int) -> None:
        with self.lock:
            self.done += amount
            now = time.monotonic()
            if now - self.begun < 0.5 or now - self.drawn < 0.1:
                return
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        import shutil  # (only once a bar is drawn: it loads the compression modules)

        from git_prov.render import human_size

        rate = self.done / max(now - self.begun, 1e-6)
        pct = 100 * self.done / self.total if self.total else 100.0
        width = shutil.get_terminal_size((80, 20)).columns
        if self.unit == "B":
            done, total, speed = (
                human_size(self.done),
                human_size(self.total),
                human_size(int(rate)),
            )
        else:
            done, total = f"{self.done:,}", f"{self.total:,} {self.unit}"
            speed = f"{rate:,.0f} {self.unit}"
        from git_prov.terminal import own

        line = f"git-prov: {self.label} {pct:5.1f}% {done} / {total}  {speed}/s"
        echo(own("\r") + line[: width - 1].ljust(min(width - 1, len(line))), err=True, nl=False)

    def finish(self) -> None:
        from git_prov.terminal import own

        with self.lock:
            if self.drawn:
                echo(own("\r") + own("\x1b[K"), err=True, nl=False)


def _progress() -> Any:
    from git_prov.progress import NO_PROGRESS

    return TerminalProgress() if sys.stderr.isatty() else NO_PROGRESS


def _page(state: State, text: str | Iterable[str]) -> None:
    """Show ``text`` (or its pieces, as they are made) through git's pager when stdout is a
    terminal, like git log does; the pager starts with the first piece. Pieces go through
    the one output path (:mod:`git_prov.terminal`): a piece that is not a ``View`` is
    one line."""
    from git_prov.terminal import View, for_terminal, one_line

    pieces = [text] if isinstance(text, str) else text
    pager = ""
    if not state.no_pager and sys.stdout.isatty():
        pager = subprocess.run(
            ["git", "var", "GIT_PAGER"], capture_output=True, text=True, check=False
        ).stdout.strip()
    if not pager or pager == "cat":
        for piece in pieces:
            echo(piece, nl=False)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        proc = subprocess.Popen(pager, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        for piece in pieces:
            echo(piece, nl=False)
        return
    assert proc.stdin is not None
    try:
        for piece in pieces:
            safe = piece if isinstance(piece, View) else one_line(piece)
            proc.stdin.write(for_terminal(safe).encode())
            proc.stdin.flush()
        proc.stdin.close()
    except OSError:  # BrokenPipeError: the pager was quit early; stop making the rest
        with contextlib.suppress(OSError):
            proc.stdin.close()
    proc.wait()


def _rewrite_pathspec(args: list[str]) -> list[str]:
    """``git prov log A..B -- p q`` → ``log A..B --path p --path q`` (click drops ``--``)."""
    command_at = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if command_at is None or args[command_at] not in PATHSPEC_COMMANDS or "--" not in args:
        return args
    cut = args.index("--", command_at)
    paths = args[cut + 1 :]
    return args[:cut] + [f"--path={p}" for p in paths]


def _rewrite_count(args: list[str]) -> list[str]:
    """``git prov log -3`` → ``log --max-count=3``, as git log reads ``-<n>`` (click cannot
    declare it). Only before a ``--``: after it come paths."""
    at = 0
    while at < len(args) and args[at].startswith("-"):
        at += 2 if args[at] in ("-C", "--color") else 1  # (global options taking a value)
    if at >= len(args) or args[at] != "log":
        return args
    out = args[: at + 1]
    for i, arg in enumerate(args[at + 1 :], at + 1):
        if arg == "--":
            return out + args[i:]
        digits = arg[1:]
        out.append(
            f"--max-count={digits}"
            if arg.startswith("-") and digits.isascii() and digits.isdigit()
            else arg
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``git prov`` through click (:mod:`git_prov.entry`, the executable, sends it every
    command line it does not run itself)."""
    args = _rewrite_pathspec(_rewrite_count(list(sys.argv[1:] if argv is None else argv)))
    debug = debug_wanted(args)
    try:
        code = cli.main(
            args=args,
            prog_name="git prov",
            standalone_mode=False,
            complete_var=COMPLETE_ENV,
        )
    except click.exceptions.Abort:
        echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `git prov` alone: the help, as asked for
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _say_error(f"error: {_one_line_usage(exc)}")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, Exception) as exc:
        sys.exit(report_failure(exc, debug=debug, say=_say_error))
    sys.exit(code if isinstance(code, int) else 0)


def _say_error(text: str) -> None:
    echo(text, err=True)


def _one_line_usage(exc: click.ClickException) -> str:
    """A click error in the one form every error has, ``what — what to do`` (docs/cli.md):
    click's own text without its Usage block, and for a mistyped command or option the
    nearest names (difflib, as git's "did you mean"), else where the help is."""
    import difflib

    from git_prov.model.record import printable

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "git prov"
    suggest = isinstance(exc, click.exceptions.NoSuchOption) or exc.message.startswith(
        "No such command"
    )
    # click's text on one line, without its own "(Did you mean …?)": said below, once.
    what = " ".join((exc.message if suggest else exc.format_message()).split()).rstrip(".")
    what = what[:1].lower() + what[1:]
    if not isinstance(exc, click.UsageError):
        return printable(what)
    todo = f"see '{path} --help'"
    names: list[str] = []
    if isinstance(exc, click.exceptions.NoSuchOption):
        names = list(exc.possibilities or ())
    elif suggest:
        # (click before 8.4 suggests nothing, and from 8.4 it misses the lazy commands.)
        typed = what.partition("'")[2].rpartition("'")[0]
        group = ctx.command if ctx is not None else cli
        known = group.list_commands(ctx) if isinstance(group, click.Group) and ctx else []
        names = [f"{path} {n}" for n in difflib.get_close_matches(typed, known, n=3)]
        todo = f"'{path} --help' lists the commands"
    if names:
        todo = f"did you mean {' or '.join(repr(n) for n in names)}? ({todo})"
    return printable(f"{what} — {todo}")

"""The ``git prov`` command line: parse, call one library function, render.

This package and :mod:`git_prov.entry` (the executable, which runs push, fetch and sync
itself without click) are the only modules that print or exit. Errors become ``error: …`` on
stderr and the exit code of their :class:`~git_prov.errors.ProvError`
(:func:`git_prov.entry.report_failure`); see docs/cli.md for the table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from git_prov import __version__
from git_prov.entry import COMPLETE_ENV, debug_wanted, report_failure
from git_prov.errors import EXIT_INTERRUPTED, UsageProblem
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


# Every command lives in a module of its own area, named here. A module is imported only
# when one of its commands runs (or help lists them all), so `git prov record` does not pay
# for defining `log` or the query, report or trust commands. `hook` gathers subcommands
# from two modules.
LAZY_COMMANDS: dict[str, tuple[str, ...]] = {
    "run": ("recording",),
    "record": ("recording",),
    "log": ("history",),
    "show": ("history",),
    "init": ("initialize",),
    "demo": ("initialize",),
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


class Command(click.Command):
    """click's command, parsing a short option (``-n 20``) without the error click builds
    and drops first: it tries every ``-x`` as a long option, and its "no such option"
    error imports difflib to suggest the nearest long names (~3M instructions, a
    percent of ``log -n 20``), then goes on to the short options."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        long_options = getattr(parser, "_long_opt", None)
        prefixes = getattr(parser, "_opt_prefixes", None)
        match_long = getattr(parser, "_match_long_opt", None)
        if not (isinstance(long_options, dict) and isinstance(prefixes, set) and match_long):
            return parser  # (another click: its own way, the same result)

        def matched(option: str, *rest: Any) -> Any:
            # What click does with the error here: drops it for the short options when the
            # argument does not begin with a long prefix ("--"); option[:2] is its start.
            if option not in long_options and option[:2] not in prefixes:
                raise click.NoSuchOption(option, ctx=ctx)
            return match_long(option, *rest)

        setattr(parser, "_match_long_opt", matched)  # noqa: B010 (click's parser, this call)
        return parser


class LazyGroup(click.Group):
    """A group whose command modules are imported on first use (click's lazy loading)."""

    command_class = Command

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
    from git_prov.collector import start_up_done

    start_up_done()  # (the command's module is loaded: its own work starts)

    progress.set_ambient(_progress)  # e.g. building the query index on a first query


def _progress() -> Any:
    """A progress bar on stderr when it is a terminal (:mod:`git_prov.cli.output`), else none."""
    from git_prov.progress import NO_PROGRESS

    if not sys.stderr.isatty():
        return NO_PROGRESS
    from git_prov.cli.output import TerminalProgress

    return TerminalProgress()


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

"""The ``git-prov`` executable (``git prov …``, ``python -m git_prov``).

``git prov push``, ``fetch`` and ``sync`` ride on a git fetch or push of a few tens of
milliseconds, and the pre-push hook runs ``git prov hook pre-push`` on every ``git push``:
for them start-up is most of the cost, and importing click and the command line built on it
costs more than their own work. So a command line of one of these with its options in their
plain forms runs here, without click (:mod:`git_prov.sync.commands`). So does ``git prov
get`` when every file it writes was kept here (:func:`git_prov.kept_get.quick_get`): for a
large file its cost is the kernel's copy plus start-up. Anything else — help, a typo, an
option spelt another way, every other command, a get that needs more — goes to
:func:`git_prov.cli.main`, which stays the one real parser, so its errors and help are
unchanged. Both paths print the same bytes and exit with the same codes; errors are told
by :func:`report_failure`, which both use.

Set ``GIT_PROV_NO_QUICK=1`` to send every command line through click.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # (errors is imported only when one is reported: start-up)
    from git_prov.errors import ProvError

# The commands run without click, with the options each takes: the same as
# git_prov/cli/sync.py declares (a test holds the two equal). Only --attempts and --timeout
# take a value: a whole number, 1 or more.
QUICK_OPTIONS = {
    "fetch": frozenset({"--no-remap", "--json", "--data"}),
    "push": frozenset({"--attempts", "--timeout", "--json", "--data"}),
    "sync": frozenset({"--attempts", "--timeout", "--no-remap", "--json", "--data"}),
}
VALUE_OPTIONS = frozenset({"--attempts", "--timeout"})
# `get` runs here too when the bytes it writes are all kept here (git_prov.kept_get), with
# these options (as git_prov/cli/data.py declares them; -o is --output).
GET_FLAGS = frozenset({"--force", "--inputs", "--outputs", "--json"})
GET_VALUES = frozenset({"--output", "--remote"})
GLOBAL_FLAGS = frozenset({"--no-pager", "--debug"})  # no effect on these commands
COLORS = ("auto", "always", "never")
# GIT_PROV_DEBUG values click reads as a boolean in every version (it rejects others).
DEBUG_VALUES = frozenset({"", "0", "1", "true", "false", "yes", "no", "on", "off"})
NO_QUICK_ENV = "GIT_PROV_NO_QUICK"
COMPLETE_ENV = "_GIT_PROV_COMPLETE"  # shell completion: click's job


# (Plain classes: a NamedTuple compiles each annotation and generates its methods in every
# process, a millisecond of every start-up.)
class QuickCall:
    """A command line the quick path runs."""

    __slots__ = ("arguments", "attempts", "color", "command", "directory", "flags", "timeout")

    def __init__(
        self,
        command: str,  # fetch, push, sync or pre-push
        arguments: tuple[str, ...],  # REMOTE (and URL, for pre-push)
        flags: frozenset[str],  # --json, --no-remap
        attempts: int | None,
        directory: str | None,  # -C DIR
        color: str,  # --color
        timeout: int | None = None,
    ) -> None:
        self.command, self.arguments, self.flags = command, arguments, flags
        self.attempts, self.directory, self.color = attempts, directory, color
        self.timeout = timeout


class GetCall:
    """A ``git prov get`` command line the quick path tries (:mod:`git_prov.kept_get`)."""

    __slots__ = ("color", "directory", "flags", "output", "paths", "remote", "spec")

    def __init__(
        self,
        spec: str,  # RUN
        paths: tuple[str, ...],
        output: str | None,  # -o/--output DIR
        flags: frozenset[str],  # --force, --inputs or --outputs, --json
        remote: str | None,
        directory: str | None,  # -C DIR
        color: str,
    ) -> None:
        self.spec, self.paths, self.output, self.flags = spec, paths, output, flags
        self.remote, self.directory, self.color = remote, directory, color


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``git prov ARGV…`` (default: ``sys.argv[1:]``) and exit with its status."""
    from git_prov import collector

    collector.pause_start_up()  # (until the command's own work starts: start_up_done)
    try:
        _run(list(sys.argv[1:] if argv is None else argv))
    finally:
        collector.left_to_exit()


def _run(args: list[str]) -> None:
    call = parse_quick(args)
    if call is not None and _enter(call.directory):
        sys.exit(run_quick(call, debug=debug_wanted(args)))
    get = parse_get(args) if "get" in args else None
    if get is not None:
        code = run_get(get, debug=debug_wanted(args))
        if code is not None:
            sys.exit(code)
    from git_prov.cli import main as click_main

    click_main(args)


def parse_quick(args: Sequence[str]) -> QuickCall | None:
    """``args`` as the quick path runs them, or None when click should parse them: any
    other command, help, an unknown or repeated option, an option value click might read
    differently, a shell-completion request, or output streams click would re-encode."""
    args = list(args)
    start = _global_options(args)
    if start is None:
        return None
    directory, color, at = start
    if args[at : at + 2] == ["hook", "pre-push"]:
        arguments = args[at + 2 :]
        if not 1 <= len(arguments) <= 2 or any(a.startswith("-") for a in arguments):
            return None
        return QuickCall("pre-push", tuple(arguments), frozenset(), None, directory, color)
    if at == len(args) or args[at] not in QUICK_OPTIONS:
        return None
    command, accepted = args[at], QUICK_OPTIONS[args[at]]
    positional: list[str] = []
    given: set[str] = set()
    values: dict[str, int] = {}
    rest = args[at + 1 :]
    while rest:
        arg, rest = rest[0], rest[1:]
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        name, equals, value = arg.partition("=")
        if name not in accepted or name in given:
            return None  # unknown to the command, or given twice: click's call
        given.add(name)
        if name in VALUE_OPTIONS:
            if not equals:
                if not rest:
                    return None
                value, rest = rest[0], rest[1:]
            if not (value.isascii() and value.isdigit() and int(value) >= 1):
                return None
            values[name] = int(value)
        elif equals:
            return None  # a flag takes no value
    if len(positional) > 1:
        return None
    flags = frozenset(given - VALUE_OPTIONS)
    return QuickCall(
        command,
        tuple(positional),
        flags,
        values.get("--attempts"),
        directory,
        color,
        values.get("--timeout"),
    )


def _global_options(args: Sequence[str]) -> tuple[str | None, str, int] | None:
    """``-C DIR`` and ``--color`` before the command, and where the command is; None when
    click should parse the command line (see :func:`parse_quick`)."""
    if os.environ.get(NO_QUICK_ENV) or os.environ.get(COMPLETE_ENV) is not None:
        return None
    debug = os.environ.get("GIT_PROV_DEBUG")
    if debug is not None and debug.strip().lower() not in DEBUG_VALUES:
        return None  # click says it is not a boolean
    if not (_plain_stream(sys.stdout) and _plain_stream(sys.stderr)):
        return None
    directory, color, at = None, "auto", 0
    while at < len(args) and args[at].startswith("-"):
        arg, at = args[at], at + 1
        if arg in GLOBAL_FLAGS:
            continue
        if arg in ("-C", "--color"):
            if at == len(args):
                return None
            name, value, at = arg, args[at], at + 1
        elif arg.startswith("--color="):
            name, value = "--color", arg.partition("=")[2]
        elif arg.startswith("-C"):
            name, value = "-C", arg[2:]
        else:
            return None
        if name == "--color" and value in COLORS:
            color = value
        elif name == "-C" and value and not value.startswith("-") and os.path.isdir(value):
            directory = value
        else:
            return None  # (click says what is wrong with it)
    return directory, color, at


def parse_get(args: Sequence[str]) -> GetCall | None:
    """A ``git prov get`` command line in plain forms (each option at most once, values
    that cannot be read as options, at least RUN), else None: click parses it."""
    start = _global_options(args)
    if start is None:
        return None
    directory, color, at = start
    if args[at : at + 1] != ["get"]:
        return None
    positional: list[str] = []
    flags: set[str] = set()
    values: dict[str, str] = {}
    rest = list(args[at + 1 :])
    while rest:
        arg, rest = rest[0], rest[1:]
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        name, equals, value = arg.partition("=")
        if arg == "-o":
            name = "--output"
        if name in GET_FLAGS and not equals and name not in flags:
            flags.add(name)
        elif name in GET_VALUES and name not in values and (equals or arg == name or arg == "-o"):
            if not equals:
                if not rest:
                    return None
                value, rest = rest[0], rest[1:]
            if not value or value.startswith("-"):
                return None
            values[name] = value
        else:
            return None  # unknown, repeated, -oDIR, a flag with a value: click's call
    if not positional or {"--inputs", "--outputs"} <= flags:
        return None
    return GetCall(
        positional[0],
        tuple(positional[1:]),
        values.get("--output"),
        frozenset(flags),
        values.get("--remote"),
        directory,
        color,
    )


def run_get(call: GetCall, *, debug: bool) -> int | None:
    """Run a ``get`` the quick path can (from its ``-C DIR``); its exit status, or None
    when it stepped aside — having written and printed nothing, and back in the directory
    it started from — for click to run it."""
    try:
        home = os.getcwd()
    except OSError:
        return None
    if not _enter(call.directory):
        return None
    try:
        from pathlib import Path

        from git_prov.collector import start_up_done
        from git_prov.kept_get import GetOptions, quick_get

        start_up_done()

        sides = [s for s in ("inputs", "outputs") if f"--{s}" in call.flags]
        options = GetOptions(
            paths=call.paths,
            output=Path(call.output) if call.output is not None else None,
            force="--force" in call.flags,
            side=sides[0] if sides else None,
            remote=call.remote,
        )
        code = quick_get(call.spec, options, as_json="--json" in call.flags, color=call.color)
    except (KeyboardInterrupt, Exception) as exc:
        return report_failure(exc, debug=debug, say=_say_error)
    if code is None:
        try:
            os.chdir(home)  # (click goes to -C DIR itself)
        except OSError as exc:
            return report_failure(exc, debug=debug, say=_say_error)
    return code


def run_quick(call: QuickCall, *, debug: bool) -> int:
    """Run a parsed command line (from its ``-C DIR``, where :func:`main` went); returns
    the exit status."""
    try:
        from git_prov.sync import commands

        remote = call.arguments[0] if call.arguments else None
        as_json, no_remap = "--json" in call.flags, "--no-remap" in call.flags
        data = "--data" in call.flags
        # As the click group decides (State.style); echo drops the codes off a terminal.
        colored = call.color == "always" or (
            call.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        )
        from git_prov.collector import start_up_done
        from git_prov.terminal import plain
        from git_prov.terminal import style as ansi_style

        start_up_done()
        style = ansi_style if colored else plain
        if call.command == "fetch":
            return commands.fetch_command(
                remote, no_remap=no_remap, as_json=as_json, echo=echo, style=style, data=data
            )
        if call.command == "push":
            return commands.push_command(
                remote,
                attempts=call.attempts,
                timeout=call.timeout,
                as_json=as_json,
                echo=echo,
                data=data,
            )
        if call.command == "sync":
            return commands.sync_command(
                remote,
                attempts=call.attempts,
                timeout=call.timeout,
                no_remap=no_remap,
                as_json=as_json,
                echo=echo,
                style=style,
                data=data,
            )
        url = call.arguments[1] if len(call.arguments) > 1 else ""
        return commands.pre_push_command(call.arguments[0], url, echo=echo)
    except (KeyboardInterrupt, Exception) as exc:
        return report_failure(exc, debug=debug, say=_say_error)


def debug_wanted(args: Sequence[str]) -> bool:
    """Whether an internal error shows its traceback: ``--debug`` or ``GIT_PROV_DEBUG``."""
    return os.environ.get("GIT_PROV_DEBUG", "") not in ("", "0") or "--debug" in args


def report_failure(exc: BaseException, *, debug: bool, say: Callable[[str], None]) -> int:
    """Tell why a command failed, through ``say`` (a line on stderr); returns the exit
    status (docs/cli.md): a :class:`~git_prov.errors.ProvError`'s own, 130 for ^C, 0 when
    the reader of our output left, 3 for anything else (an internal error)."""
    from git_prov.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ProvError

    if isinstance(exc, KeyboardInterrupt | EOFError):  # (click reads EOF as ^C, too)
        from git_prov.terminal import View

        say(View("\ninterrupted"))
        return EXIT_INTERRUPTED
    from git_prov.model.record import printable

    # An error is one line, and its text may quote a ledger (a tombstone's reason, a
    # path): its control characters and newlines are shown escaped.
    if isinstance(exc, ProvError):
        say(f"error: {printable(str(exc))}")
        return exc.exit_code
    from git_prov.errors import storage_problem

    storage = storage_problem(exc)
    if storage is not None:  # a full disk or a read-only .git is no bug of ours
        say(f"error: {storage}")
        return storage.exit_code
    missing = _missing_object(exc)
    if missing is not None:
        say(f"error: {missing}")
        return missing.exit_code
    if isinstance(exc, BrokenPipeError):
        # `git prov log | head`: the reader left; that is not our failure.
        sys.stderr.close()
        return 0
    if debug:
        import traceback

        traceback.print_exception(exc)
    say(
        f"error: internal error: {type(exc).__name__}: {printable(str(exc))} — please report it "
        f"(rerun with GIT_PROV_DEBUG=1 for the traceback)"
    )
    return EXIT_INTERNAL


def _missing_object(exc: BaseException) -> ProvError | None:
    """A git object that vanished while we used it (pygit2's "object not found", "invalid
    object specified"): a concurrent ``git gc --prune=now`` or a damaged repository, not
    a bug of ours (exit 9)."""
    import re

    from git_prov.errors import CorruptLedger

    said = str(exc)
    found = re.search(r"(?:no match for id \(|invalid object specified - )([0-9a-f]{7,64})", said)
    if type(exc).__name__ not in ("GitError", "NotFoundError", "KeyError") or found is None:
        return None
    return CorruptLedger(
        f"git object {found.group(1)[:12]} is missing (deleted while git prov used it by a "
        "concurrent git gc --prune=now, or a damaged repository)",
        "run it again; if it persists, run git fsck and git prov fsck",
    )


# ---- output: the one path to a terminal (git_prov.terminal) ------------------------------


def echo(text: str, *, err: bool = False) -> None:
    """A line on stdout (or stderr) through :func:`git_prov.terminal.echo`."""
    from git_prov.terminal import echo as terminal_echo

    terminal_echo(text, err=err)


def _say_error(text: str) -> None:
    echo(text, err=True)


def _plain_stream(stream: TextIO | None) -> bool:
    """True for a text stream click writes to as it is (it re-encodes ASCII ones)."""
    import codecs

    encoding = getattr(stream, "encoding", None)
    try:
        return encoding is not None and codecs.lookup(encoding).name != "ascii"
    except LookupError:
        return False


def _enter(directory: str | None) -> bool:
    """Change to ``-C DIR``; False when that fails (click then says why)."""
    if directory:
        try:
            os.chdir(directory)
        except OSError:
            return False
    return True

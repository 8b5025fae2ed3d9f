#!/usr/bin/env python3
"""Generate the man page ``docs/git-prov.1`` from the click commands' own help.

    python docs/make_man.py            # rewrite docs/git-prov.1
    python docs/make_man.py --check    # exit 1 if docs/git-prov.1 is out of date

``git help prov`` runs ``man git-prov``; ``pip install`` puts the page in
``<prefix>/share/man/man1``, where ``man`` finds it for any ``<prefix>/bin`` on PATH.
The page is deterministic (no dates): the same commands give the same bytes, so a test
can compare the committed page with a fresh rendering.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

PAGE = Path(__file__).with_name("git-prov.1")


def render() -> str:
    """The whole man page as roff text."""
    from git_prov import __version__
    from git_prov.cli import cli

    root = click.Context(cli, info_name="git prov", **cli.context_settings)
    out = [
        '.TH "GIT\\-PROV" "1" "" "git\\-prov ' + _escape(__version__) + '" "Git Manual"',
        ".SH NAME",
        "git\\-prov \\- " + _escape(_first_line(cli)),
        ".SH SYNOPSIS",
        ".B git prov",
        _escape(_usage(root)),
        ".SH DESCRIPTION",
        *_paragraphs(_help(cli), skip_first=True),
        ".SH OPTIONS",
        *_options(root),
        ".SH COMMANDS",
    ]
    for ctx in _commands(root):
        out.append(".SS " + _quote(_usage_line(ctx)))
        out.extend(_paragraphs(_help(ctx.command)))
        options = _options(ctx)
        if options:
            out.append(".PP")
            out.append("Options:")
            out.extend(options)
    out += [
        ".SH EXIT STATUS",
        ".PP",
        "0 on success (for \\fBrun\\fR, the command's own status); 1 when a check found "
        "something; 2 usage errors; 3 internal errors; 4\\(en9 repository, path, not "
        "found, conflict, remote and corrupt\\-ledger problems; 127 when \\fBrun\\fR cannot "
        "start the command; 130 when interrupted. See docs/cli.md.",
        ".SH FILES",
        ".TP",
        ".I .gitprov.toml",
        "Shared settings of a repository (\\fBgit prov init \\-\\-print\\-template\\fR).",
        ".TP",
        ".I $(git rev\\-parse \\-\\-git\\-common\\-dir)/prov/",
        "Local caches; always rebuildable.",
        ".SH SEE ALSO",
        ".BR git (1),",
        ".BR git\\-notes (1).",
        "The documentation in docs/ of the git\\-prov sources: format.md, cli.md, api.md,",
        "integrations.md, ci.md.",
    ]
    return "\n".join(out) + "\n"


def _commands(parent: click.Context) -> list[click.Context]:
    """Contexts of every visible command below ``parent``, depth first, sorted by name."""
    group = parent.command
    if not isinstance(group, click.Group):
        return []
    found = []
    for name in sorted(group.list_commands(parent)):
        command = group.get_command(parent, name)
        if command is None or command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
        found.append(ctx)
        found.extend(_commands(ctx))
    return found


def _help(command: click.Command) -> str:
    return inspect.cleandoc(command.help or command.short_help or "")


def _first_line(command: click.Command) -> str:
    return _help(command).split("\n\n")[0].replace("\n", " ").strip().rstrip(".")


def _usage(ctx: click.Context) -> str:
    pieces = ctx.command.collect_usage_pieces(ctx)
    return " ".join(pieces)


def _usage_line(ctx: click.Context) -> str:
    return f"{ctx.command_path} {_usage(ctx)}".strip()


def _paragraphs(text: str, *, skip_first: bool = False) -> list[str]:
    """Click help text as roff: ``\\b`` paragraphs verbatim, the others filled."""
    out = []
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if skip_first:
        paragraphs = paragraphs[1:]
    for paragraph in paragraphs:
        lines = paragraph.split("\n")
        if lines[0].strip() == "\b":
            out += [".PP", ".nf", *(_escape(line) for line in lines[1:]), ".fi"]
        else:
            out += [".PP", _escape(" ".join(line.strip() for line in lines))]
    return out


def _options(ctx: click.Context) -> list[str]:
    out = []
    for param in ctx.command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue  # arguments are in the usage line
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        out += [".TP", "\\fB" + _escape(names) + "\\fR", _escape(text)]
    return out


def _escape(text: str) -> str:
    """Text safe in roff: backslashes, minus signs, and lines starting with . or '."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _quote(text: str) -> str:
    return '"' + _escape(text).replace('"', "\\(dq") + '"'


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is out of date: run python docs/make_man.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``git prov init`` and ``git prov demo``: preparing a repository, and a guided example in
a throw-away one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from git_prov.cli import CONTEXT, State, _open, cli
from git_prov.terminal import echo


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

"""``git prov log`` and ``git prov show``: the runs next to their commits, and everything
about one run."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from git_prov.cli import CONTEXT, State, _open, cli, complete_run
from git_prov.cli.output import _page, _report_problems
from git_prov.collector import collector_paused
from git_prov.errors import NotFound, UsageProblem
from git_prov.terminal import echo

if TYPE_CHECKING:  # (both are loaded by the log command itself: start-up)
    import subprocess

    from git_prov.query.index import RepoPaths


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
@collector_paused()  # (a query: its modules load, then rows and records, in no cycle)
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
    from git_prov.store.gitcli.paths import RepoPaths

    answer = RepoPaths.discovering_with_tips()  # (the hint's question asked beside)
    from git_prov import history  # (loads as git answers)

    found, alive = answer()
    started = history.start_log(found, revisions, paths, max_count)  # (walks as the index opens)
    try:
        return _log(state, found, alive, started, revisions, paths, oneline, as_json, all_runs,
                    all_commits, max_count)  # fmt: skip
    finally:
        history.stop_log(started)


def _log(
    state: State,
    found: RepoPaths,
    alive: str | None,
    started: subprocess.Popen[bytes] | None,
    revisions: tuple[str, ...],
    paths: tuple[str, ...],
    oneline: bool,
    as_json: bool,
    all_runs: bool,
    all_commits: bool,
    max_count: int | None,
) -> int:
    from git_prov import history, render
    from git_prov.query.index import open_index

    with open_index(found) as index:
        _report_problems(index.problems())
        commits = history.log(
            index,
            revisions,
            paths,
            all_commits=all_commits,
            max_count=max_count,
            newest=None if as_json or all_runs or oneline else render.MAX_RUNS_PER_COMMIT,
            started=started,
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
        if hint := orphan_hint(where, index, alive):
            echo(f"hint: {hint}", err=True)
    return 0


def orphan_hint(paths: Any, index: Any, alive: str | None = None) -> str | None:
    """``log``'s and ``find``'s word about runs on commits no branch reaches (cached:
    :mod:`git_prov.query.hints`), or None when there are none. ``alive``: the tips, if
    already asked (:meth:`~git_prov.store.gitcli.paths.RepoPaths.discover_with_tips`)."""
    from git_prov.query.hints import orphaned_run_count, rewrite_hook_installed

    count = orphaned_run_count(paths, index.db, index.tips.notes, alive)
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
        from git_prov.model.logs import log_bytes

        data = log_bytes(ledger.read_object(oid, f"{log_stream} log"), runs[-1].record.id)
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

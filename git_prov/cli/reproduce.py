"""``git prov reproduce`` (registered on the main group). Parse, call
:func:`git_prov.reproduce.reproduce`, render."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, _progress, cli, complete_run
from git_prov.model.record import printable
from git_prov.terminal import echo, view


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="RUN", shell_complete=complete_run)
@click.option(
    "--worktree",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Check the source out here (default: .git/prov/reproduce/<short id>).",
)
@click.option(
    "-n", "--dry-run", is_flag=True, help="Only say what would be done and what blocks it."
)
@click.option("--allow-drift", is_flag=True, help="Run even when inputs are missing or changed.")
@click.option(
    "--rtol", type=float, default=1e-9, show_default=True, help="Relative metric tolerance."
)
@click.option(
    "--atol", type=float, default=0.0, show_default=True, help="Absolute metric tolerance."
)
@click.option(
    "--keep-worktree", is_flag=True, help="Keep the worktree (and its outputs) afterwards."
)
@click.option(
    "--metrics-file",
    "metrics_files",
    multiple=True,
    metavar="FILE",
    help="Repo-relative file the rerun's metrics are read from (outputs holding them are found).",
)
@click.option(
    "--write-requirements",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the recorded packages as a pip requirements file (name==version).",
)
@click.option("--no-env", is_flag=True, help="Do not compare environments.")
@click.option(
    "-y",
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Run the recorded command even when the run is not yours (no question asked).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON for scripts (the command's output goes to stderr).",
)
@click.pass_obj
def reproduce(
    state: State,
    spec: str,
    worktree: Path | None,
    dry_run: bool,
    allow_drift: bool,
    rtol: float,
    atol: float,
    keep_worktree: bool,
    metrics_files: tuple[str, ...],
    write_requirements: Path | None,
    no_env: bool,
    assume_yes: bool,
    as_json: bool,
) -> int:
    """Rerun RUN from its exact source in a separate worktree and compare the results.

    Inputs are verified by hash first (missing or changed ones refuse the rerun, exit 5,
    unless --allow-drift). The rerun is recorded as a new run that `reproduces` RUN.

    A run not recorded in this repository and not signed by a key you trust is someone
    else's command: it is shown and you are asked first; without a terminal it is refused
    (exit 10) unless --yes (or `git config prov.reproduceTrust all`).

    \b
    Exit status: 0 reproduced (outputs identical, or outputs differ but every recorded
    metric is within --rtol/--atol); 1 not reproduced (with --dry-run: something would
    block it); 5 inputs missing or changed; 6 run or source not found; 10 not run:
    someone else's command, not trusted.
    """
    from git_prov.reproduce import ReproduceOptions
    from git_prov.reproduce import reproduce as reproduce_run

    repo = _open()
    options = ReproduceOptions(
        worktree=worktree,
        dry_run=dry_run,
        allow_drift=allow_drift,
        rtol=rtol,
        atol=atol,
        keep_worktree=keep_worktree,
        metrics_files=metrics_files,
        write_requirements=write_requirements,
        environment=not no_env,
        assume_yes=assume_yes,
    )
    # With --json, stdout carries only the answer: the command's output goes to stderr.
    result = reproduce_run(
        repo,
        spec,
        options,
        progress=_progress(),
        stdout=sys.stderr.buffer if as_json else None,
        ask=_ask_on_terminal if _on_terminal() else None,
    )
    if as_json:
        echo(json.dumps(result.to_json(), indent=2, sort_keys=True), data=True)
    else:
        echo(render_text(result, state), nl=False)
    if result.verdict == "refused":
        echo(
            f"error: {result.blockers[0]}"
            + (f" (and {len(result.blockers) - 1} more)" if len(result.blockers) > 1 else "")
            + " — restore the recorded data, or rerun with --allow-drift",
            err=True,
        )
    return int(result.exit_code)


def _on_terminal() -> bool:
    """Someone is there to answer: stdin and stderr (where the question goes) are a
    terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask_on_terminal(question: str) -> bool:
    return click.confirm(question, default=False, err=True)


def render_text(result: Any, state: State) -> str:
    """The human report of a reproduction."""
    run = result.original
    lines = [
        f"reproduce run {run.short_id} ({run.id})",
        f"  source   {result.source[:12]}" + (" (snapshot of a dirty tree)" if run.dirty else ""),
        f"  command  {' '.join(result.command)}",
        f"  cwd      {result.cwd}",
    ]
    if result.inputs:
        lines.append("inputs")
        for check in result.inputs:
            where = f" (from {check.found_in})" if check.found_in else ""
            lines.append(f"  {check.status:<12} {check.path}{where}")
            if check.status == "changed":
                lines.append(f"               recorded {check.recorded_hash}")
                lines.append(f"               found    {check.found_hash}")
    if result.environment is not None:
        env = result.environment
        if env.same:
            lines.append("environment: same as recorded")
        else:
            lines.append("environment differs from the recorded one")
            for p in env.packages:
                lines.append(f"  package {p.name}: {p.change} {p.old or '-'} → {p.new or '-'}")
            for f in env.facts:
                lines.append(f"  {f.section}.{f.key}: {f.old!r} → {f.new!r}")
    trust = result.trust
    if trust is not None:
        how = {
            "own": "recorded in this repository",
            "signed": trust["reason"],
            "yes": "not yours; trusted with --yes",
            "config": "not yours; trusted by prov.reproduceTrust=all",
            "asked": "not yours; you said yes",
            "would-ask": "not yours; you will be asked before it runs",
            "refused": "not yours; it would not run without a terminal to ask (--yes)",
        }.get(trust["consent"], trust["consent"])
        lines.append(f"  trust    {printable(how)}")
    for text in result.notes:
        lines.append(f"note: {text}")
    if result.requirements:
        lines.append(f"wrote requirements to {result.requirements}")
    if result.drift and result.verdict not in ("refused", "blocked"):
        lines.append("ran despite input drift (--allow-drift):")
        lines += [f"  {d}" for d in result.drift]
    if result.dry_run:
        if result.blockers:
            lines.append("would NOT run:")
            lines += [f"  {b}" for b in result.blockers]
        else:
            lines.append("dry run: nothing blocks the rerun (nothing was written)")
        return view(lines)
    if result.rerun is not None:
        lines.append(
            f"rerun recorded as {result.rerun.short_id} ({result.rerun.status}, "
            f"exit {result.rerun_exit_status})"
        )
    if result.outputs is not None:
        same = result.outputs.same
        lines.append("outputs: byte-identical" if same else "outputs differ:")
        for change in result.outputs.changes:
            lines.append(
                f"  {change.change:<10} {change.path}  {change.old_size}→{change.new_size} bytes"
                f"  {change.old_hash} → {change.new_hash}"
            )
    for m in result.metrics:
        if m.within is None:
            lines.append(f"  metric {m.name}: {m.old!r} — not produced by the rerun (unchecked)")
            continue
        mark = "within" if m.within else "OUTSIDE"
        lines.append(f"  metric {m.name}: {m.old!r} → {m.new!r} ({mark} tolerance)")
    if result.worktree and result.worktree_kept:
        lines.append(f"worktree kept at {result.worktree}")
    verdicts = {
        "identical": "REPRODUCED: outputs byte-identical",
        "within-tolerance": "REPRODUCED within tolerance: outputs differ, metrics agree "
        f"(rtol={result.rtol:g}, atol={result.atol:g})",
        "differs": "NOT REPRODUCED",
        "refused": "REFUSED: inputs differ from the recorded ones; nothing ran",
    }
    verdict = verdicts.get(result.verdict, result.verdict)
    colour = "green" if result.exit_code == 0 else "red"
    lines.append(state.style(verdict, fg=colour, bold=True))
    return view(lines)

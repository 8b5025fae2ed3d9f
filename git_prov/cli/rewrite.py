"""``git prov remap``, ``git prov hooks install|uninstall`` and the hidden
``git prov hook post-rewrite`` the post-rewrite trampoline calls (registered on the main
group)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, cli

# The hidden `hook` group is defined with the pre-push entry point; ours joins it.
from git_prov.cli.sync import hook as hook_group
from git_prov.terminal import echo, view

DEFAULT_HOOKS = ("post-rewrite",)
MAX_LISTED = 20


@cli.command(context_settings=CONTEXT)
@click.argument("revisions", nargs=-1, metavar="[REV-RANGE]...")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would be attached; write nothing.")
@click.option(
    "--include-reachable",
    is_flag=True,
    help="Also match runs whose commits are still reachable (needs REV-RANGE), e.g. to "
    "show runs on cherry-picked copies.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.pass_obj
def remap(
    state: State,
    revisions: tuple[str, ...],
    dry_run: bool,
    include_reachable: bool,
    as_json: bool,
) -> int:
    """Show orphaned runs on the commits their code was copied to.

    A run is orphaned when no branch, remote-tracking branch, tag or HEAD reaches the
    commit it ran on (nor any commit it is shown on): after a squash or rebase merge on a
    hosting service, a cherry-pick, or a rebase without the post-rewrite hook. Each is
    matched to a reachable commit (default: every one; or those of REV-RANGE) with the
    same change (git patch-id), the same combined change (a squash), or the same tree.
    A match needs evidence that the commit is a copy: a rebased or cherry-picked copy
    keeps the author, author date and message; a squash has the branch tip's tree or
    names the squashed commits in its message. The same change without that evidence
    (someone made the same edit) is listed as not attached. Ambiguous and unmatched runs
    are listed, never attached. Runs keep naming the commit they ran on, which stays in
    the repository.

    \b
    Examples:
      git prov remap                       after a squash merge was fetched
      git prov remap --dry-run main        only look at main
      git prov remap --include-reachable release   show runs on cherry-picked copies
    """
    from git_prov.rewrite import remap as remap_runs

    report = remap_runs(_open(), revisions, dry_run, include_reachable=include_reachable)
    if as_json:
        echo(json.dumps(report.to_json_dict(), indent=2, sort_keys=True), data=True)
        return 0
    echo(_report_text(state, report), nl=False)
    return 0


def _report_text(state: State, report: Any) -> str:
    from git_prov.model.ids import short_run_id

    def short(oid: str) -> str:
        return oid[:7]

    lines: list[str] = []
    if report.up_to_date:
        lines.append("nothing changed since the last remap")
    elif not report.orphans and not report.matched:
        lines.append("no orphaned runs: every run is on a reachable commit")
    verb = "would attach" if report.dry_run else "attached"
    if report.matched:
        runs = len({m.run for m in report.matched})
        lines.append(f"{verb} {runs} run{'s' if runs != 1 else ''}:")
        for m in report.matched[:MAX_LISTED]:
            lines.append(
                "  "
                + state.style(short_run_id(m.run), fg="green")
                + f"  ran on {short(m.original)} → now also on "
                + state.style(short(m.commit), fg="yellow")
                + f" ({m.how})"
            )
        if len(report.matched) > MAX_LISTED:
            lines.append(f"  … and {len(report.matched) - MAX_LISTED} more (--json lists all)")
    if report.ambiguous:
        lines.append(f"ambiguous, not attached ({len(report.ambiguous)}):")
        for a in report.ambiguous[:MAX_LISTED]:
            lines.append(
                f"  {short_run_id(a.run)}  ran on {short(a.original)}: {a.how} matches "
                + ", ".join(short(c) for c in a.candidates)
            )
        if len(report.ambiguous) > MAX_LISTED:
            lines.append(f"  … and {len(report.ambiguous) - MAX_LISTED} more (--json lists all)")
    if report.unconfirmed:
        runs = len({c.run for c in report.unconfirmed})
        lines.append(
            f"not attached, the same change but no evidence of a copy ({runs} "
            f"run{'s' if runs != 1 else ''}):"
        )
        for c in report.unconfirmed[:MAX_LISTED]:
            lines.append(
                f"  {short_run_id(c.run)}  ran on {short(c.original)}: {c.how} matches "
                f"{short(c.commit)}, but its {c.missing} "
                + ("differ" if "," in c.missing else "differs")
            )
        if len(report.unconfirmed) > MAX_LISTED:
            lines.append(f"  … and {len(report.unconfirmed) - MAX_LISTED} more (--json lists all)")
    if report.unmatched:
        lines.append(f"unmatched, code kept ({len(report.unmatched)}):")
        for u in report.unmatched[:MAX_LISTED]:
            lines.append(f"  {short_run_id(u.run)}  ran on {short(u.original)}: {u.reason}")
        if len(report.unmatched) > MAX_LISTED:
            lines.append(f"  … and {len(report.unmatched) - MAX_LISTED} more (--json lists all)")
    if report.purged:
        lines.append(
            f"{report.purged} run(s) ran on code that no longer exists here: their commits "
            "were kept but are gone (a history purge such as git filter-repo; git prov fsck "
            "lists them)"
        )
    if report.missing > report.purged:
        lines.append(
            f"{report.missing - report.purged} run(s) name commits this repository does not "
            "have (git prov fetch brings them)"
        )
    return view(lines)


def whereabouts_rows(repo: Any, run: Any, reproduced: Sequence[Any] = ()) -> list[tuple[str, str]]:
    """``git prov show`` rows saying where a run's code is now, when that is not simply
    the commits it is shown on: gone from the repository, or orphaned (with the commits
    remap lists for it but does not attach); and the runs that reproduce it."""
    from git_prov.rewrite import whereabouts

    where = whereabouts(repo, run)
    rows: list[tuple[str, str]] = []
    for other in reproduced:
        r = other.record
        rows.append(
            (
                "Reproduced",
                f"{r.short_id} {r.status} {r.started[:16].replace('T', ' ')} "
                f"(git prov show {r.short_id})",
            )
        )
    if run.record.commit in where.gone:
        from git_prov.rewrite.filter_repo import rewritten_to

        new = rewritten_to(repo.git_dir, run.record.commit)
        why = (
            f"git filter-repo rewrote it to {new[:12]}"
            + ("" if new in run.shown_on else "; git prov remap shows the run there")
            if new
            else "a history rewrite such as git filter-repo purged it, or it was never fetched"
        )
        rows.append(
            (
                "Code",
                f"gone: {run.record.commit[:12]} is not in this repository ({why}); the "
                "record stands, the exact code it ran on no longer exists here",
            )
        )
    elif where.gone:
        rows.append(("Code", "not in this repository: " + ", ".join(c[:12] for c in where.gone)))
    if where.orphaned:
        rows.append(
            (
                "Reachable",
                "no: no branch, tag or HEAD reaches the commits it is shown on "
                "(git prov remap finds copies)",
            )
        )
    for c in where.unconfirmed:
        verb = "differ" if "," in c.missing else "differs"
        rows.append(
            (
                "Candidate",
                f"{c.commit} has the same change ({c.how} of {c.via[:7]}), but its "
                f"{c.missing} {verb}: not a proven copy, not attached",
            )
        )
    return rows


def whereabouts_json(repo: Any, run: Any) -> dict[str, Any]:
    """The ``git prov show --json`` keys of :func:`whereabouts_rows`: ``code_gone``
    (commits of the run this repository lacks), ``orphaned`` and ``candidates``."""
    from dataclasses import asdict

    from git_prov.rewrite import whereabouts

    where = whereabouts(repo, run)
    return {
        "code_gone": list(where.gone),
        "orphaned": where.orphaned,
        "candidates": [asdict(c) for c in where.unconfirmed],
    }


@hook_group.command(name="post-rewrite", context_settings=CONTEXT)
@click.argument("kind", metavar="amend|rebase", default="rebase")
@click.pass_obj
def post_rewrite(state: State, kind: str) -> int:
    """Called by the post-rewrite hook with git's "old new" lines on stdin.

    Never fails the user's amend or rebase: any problem is one warning line, exit 0.
    """
    try:
        from git_prov.rewrite import follow_rewrite

        lines = sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
        if not lines:
            return 0
        attached = follow_rewrite(_open(), kind, lines)
        if attached:
            runs = len({a.run for a in attached})
            commits = len({a.commit for a in attached})
            echo(
                f"git-prov: {runs} run{'s' if runs != 1 else ''} now also shown on "
                f"{commits} rewritten commit{'s' if commits != 1 else ''} ({kind})",
                err=True,
            )
    except Exception as exc:
        if state.debug or os.environ.get("GIT_PROV_DEBUG", "") not in ("", "0"):
            import traceback

            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        echo(
            f"warning: git-prov: runs did not follow this {kind}: {message} "
            "(git prov remap can do it later)",
            err=True,
        )
    return 0


@cli.group(context_settings=CONTEXT)
def hooks() -> None:
    """Install or remove the git hooks git prov uses.

    \b
    post-rewrite   after git commit --amend and git rebase, runs follow their commits
    pre-push       a plain git push also pushes provenance (git prov init --push-hook)
    """


def _hook_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return names or DEFAULT_HOOKS


@hooks.command(name="install", context_settings=CONTEXT)
@click.argument("names", nargs=-1, metavar="[HOOK]...")
def hooks_install(names: tuple[str, ...]) -> int:
    """Install HOOK (default: post-rewrite). A hook already there keeps running
    (it is kept as HOOK.legacy and called by ours). Safe to run again."""
    from git_prov.hooks_install import install_hook

    repo = _open()
    for name in _hook_names(names):
        for line in install_hook(repo, name):
            echo(line)
    return 0


@hooks.command(name="uninstall", context_settings=CONTEXT)
@click.argument("names", nargs=-1, metavar="[HOOK]...")
def hooks_uninstall(names: tuple[str, ...]) -> int:
    """Remove HOOK (default: post-rewrite) and restore the hook it chained, if any."""
    from git_prov.hooks_install import uninstall_hook

    repo = _open()
    for name in _hook_names(names):
        for line in uninstall_hook(repo, name):
            echo(line)
    return 0

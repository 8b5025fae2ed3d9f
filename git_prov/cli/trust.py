"""``git prov verify``, ``gc`` and ``fsck`` (registered on the main group): can the ledger be
trusted, what may be removed from it, and is it whole."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, cli, complete_run
from git_prov.errors import EXIT_FINDING, UsageProblem
from git_prov.terminal import echo

_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
STATUS_COLOR = {
    "good": "green",
    "bad": "red",
    "unknown-key": "yellow",
    "unsigned": None,
    "error": "red",
}


# ---- verify ---------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN]...", shell_complete=complete_run)
@_JSON
@click.option(
    "--strict",
    is_flag=True,
    help="Also exit 1 when a run is unsigned, signed by an unknown key, or cannot be checked.",
)
@click.pass_obj
def verify(state: State, runs: tuple[str, ...], as_json: bool, strict: bool) -> int:
    """Check the signatures of runs (default: every run) and say who signed what.

    Each stored record is reported as good (signed by a key you trust), bad (the record
    does not match its signature: it was changed after signing), unknown-key (signed by a
    key that is not in your GnuPG keyring or gpg.ssh.allowedSignersFile), unsigned, or
    error (the signature could not be checked). Exits 1 when any record is bad.

    \b
    Sign records with `git prov run --sign` (or `git config prov.sign true`), using
    your git signing setup (gpg.format, user.signingKey), like signed commits.
    """
    from git_prov.model.ids import short_run_id
    from git_prov.model.record import printable
    from git_prov.trust.signing import BAD, GOOD, VERDICTS, verify_runs

    skipped: list[str] = []
    verdicts = verify_runs(_open(), runs, skipped=skipped)
    for reason in skipped:  # (the reader limits: docs/format.md)
        echo(f"warning: {reason}", err=True)
    counts = {status: sum(1 for v in verdicts if v.status == status) for status in VERDICTS}
    failed = counts[BAD] > 0 or (strict and any(v.status != GOOD for v in verdicts))
    if as_json:
        doc = {"ok": not failed, "counts": counts, "runs": [v.to_json_dict() for v in verdicts]}
        echo(json.dumps(doc, indent=2, sort_keys=True), data=True)
        return EXIT_FINDING if failed else 0
    for v in verdicts:
        who = ""
        if v.signer:
            who = f"signed by {printable(v.signer)}"
        if v.key:
            who += f" ({printable(v.key)})" if who else f"key {printable(v.key)}"
        parts = [
            state.style(f"{v.status:<11}", fg=STATUS_COLOR.get(v.status)),
            short_run_id(v.run),
            v.commit[:7],
            v.format or "-",
        ]
        if who:
            parts.append(who)
        if v.detail:
            parts.append(state.style(f"— {printable(v.detail)}", dim=True))
        echo("  ".join(parts))
    if not verdicts:
        echo("no runs to verify", err=True)
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    if summary:
        echo(f"{len(verdicts)} records: {summary}", err=True)
    return EXIT_FINDING if failed else 0


# ---- gc -------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN]...", shell_complete=complete_run)
@click.option(
    "--older-than",
    metavar="AGE",
    help="Only runs started more than AGE ago (30d, 12h, 1w2d, 2 days ago) or before a date.",
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep the newest N runs of every commit (the others may go).",
)
@click.option("--keep-tagged", is_flag=True, help="Never remove runs that have a tag.")
@click.option("--failed-only", is_flag=True, help="Only failed or killed runs.")
@click.option(
    "--logs-only",
    is_flag=True,
    help="Keep the runs; drop only their kept stdout/stderr logs.",
)
@click.option(
    "--data-only",
    is_flag=True,
    help="Keep the runs; drop only the bytes they kept (--keep), leaving the hashes. "
    "--keep-last N keeps each path's bytes of its newest N runs.",
)
@click.option("-n", "--dry-run", is_flag=True, help="List what would go; change nothing.")
@click.option("-f", "--force", is_flag=True, help="Really remove (required unless --dry-run).")
@_JSON
@click.pass_obj
def gc(
    state: State,
    runs: tuple[str, ...],
    older_than: str | None,
    keep_last: int | None,
    keep_tagged: bool,
    failed_only: bool,
    logs_only: bool,
    data_only: bool,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> int:
    """Remove runs, or only their logs, by retention rules.

    A run goes when it matches every rule given: RUN ids, --older-than, --failed-only,
    and --keep-last (all but the newest N runs of its commit); --keep-tagged protects
    tagged runs. Removal writes tombstones, which sync carries to every clone: removed
    runs disappear everywhere after the next sync. The logs, kept bytes and metric
    histories of removed runs go too, unless a remaining run names them; dropped ones are
    marked so that sync does not bring them back. The ledger's git history is not rewritten: see
    docs/security.md.

    gc also removes the live directories (.git/prov/live/RUN) of runs whose recording
    process was killed, when that is provable on this host; those of another host sharing
    the .git are left and named.

    Destructive: needs --force (or a yes at the prompt on a terminal) unless --dry-run.
    Without rules, gc only drops again the logs and metric histories that a merge brought
    back and removes the
    live directories of killed recorders.

    \b
    Examples:
      git prov gc --older-than 90d --keep-tagged --dry-run
      git prov gc --failed-only --older-than 30d --force
      git prov gc --logs-only --older-than 14d --force
      git prov gc --keep-last 3 --force
      git prov gc --data-only --older-than 30d --keep-last 2 --force
    """
    from git_prov.live import remove_live, stale_live_runs
    from git_prov.retention import RetentionRules, parse_age, plan_gc
    from git_prov.retention import gc as run_gc
    from git_prov.store.ledger import Ledger

    repo = _open()
    if not dry_run:  # (private refs of killed writers, e.g. snapshots held: store/pins.py)
        from git_prov.store.pins import clear_dead_holds

        clear_dead_holds(repo)
    stale, unsure = stale_live_runs(repo.prov_dir)
    memos, indexes = _unused_memos(repo.prov_dir)
    ledger = Ledger(repo)
    # gc asks the query index and streams the notes (git_prov.retention); --data-only
    # reads only the records that name data manifests, and those manifests.
    rules = RetentionRules(
        runs=_resolve_runs(repo, runs),
        older_than=parse_age(older_than) if older_than else None,
        keep_last=keep_last,
        keep_tagged=keep_tagged,
        failed_only=failed_only,
    )
    if logs_only and data_only:
        raise UsageProblem("--logs-only and --data-only exclude each other", "choose one")
    plan = plan_gc(ledger, rules, logs_only=logs_only, data_only=data_only)
    redrop_data = plan.data is not None and bool(plan.data.redrop)
    if (
        not rules.selects()
        and not plan.redrop
        and not plan.history_redrop
        and not redrop_data
        and not stale
        and not memos
        and not indexes
    ):
        if unsure:
            for line in _live_lines(state, [], unsure, dry_run=dry_run):
                echo(line, err=True)
        raise UsageProblem(
            "say which runs to remove",
            "give RUN ids, --older-than, --failed-only or --keep-last (see git prov gc --help)",
        )
    # Dropping again the logs a merge brought back repeats a decision already made.
    ledger_changes = plan.runs or plan.logs or (plan.data and plan.data.digests)
    if not dry_run and (ledger_changes or stale) and not force:
        what = _what(plan) if ledger_changes else _live_what(stale)
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageProblem(
                f"gc would remove {what}; it changes every clone after the next sync"
                if ledger_changes
                else f"gc would remove {what}",
                "look first with --dry-run, then run it again with --force",
            )
        for line in _plan_lines(state, plan, dry_run=True):
            echo(line, err=True)
        for line in _live_lines(state, stale, [], dry_run=True):
            echo(line, err=True)
        if not click.confirm(f"Remove {what}?", default=False, err=True):
            echo("nothing removed", err=True)
            return 0
    result = run_gc(
        repo, rules, logs_only=logs_only, dry_run=dry_run, data_only=data_only, plan=plan
    )
    plan = result.plan
    removed = stale if dry_run else [(r, why) for r, why in stale if remove_live(r)]
    memos_removed = len(memos) if dry_run else _remove_memos(memos)
    indexes_removed = len(indexes) if dry_run else _remove_indexes(repo.prov_dir)
    if as_json:
        doc = plan.to_json_dict()
        doc.update(
            dry_run=dry_run,
            tombstones=result.tombstones,
            dropped=result.dropped,
            dropped_data=result.dropped_data,
            dropped_histories=result.dropped_histories,
        )
        if stale or unsure:  # (only then: the document stays the same for every other gc)
            doc["live_removed"] = [{"id": r.id, "why": why} for r, why in removed]
            doc["live_left"] = [{"id": r.id, "why": why} for r, why in unsure]
        if memos_removed:  # (likewise)
            doc["memos_removed"] = memos_removed
        if indexes_removed:
            doc["memo_indexes_removed"] = indexes_removed
        _echo_json(doc)
        return 0
    for line in _plan_lines(state, plan, dry_run=dry_run):
        echo(line)
    for line in _live_lines(state, removed, unsure, dry_run=dry_run):
        echo(line)
    if removed or unsure:
        verb = "would remove" if dry_run else "removed"
        echo(f"{verb} {_live_what(removed)}; left {len(unsure)}", err=True)
    if memos_removed:
        verb = "would remove" if dry_run else "removed"
        what = "entry" if memos_removed == 1 else "entries"
        echo(f"{verb} {memos_removed} unused data-memo {what} (a cache)", err=True)
    if indexes_removed:
        verb = "would remove" if dry_run else "removed"
        what = "file" if indexes_removed == 1 else "files"
        echo(f"{verb} {indexes_removed} data-index {what} no memo names (a cache)", err=True)
    if plan.empty:
        if not removed and not memos_removed and not indexes_removed:
            echo("nothing to remove", err=True)
    elif dry_run:
        echo(f"dry run: would remove {_what(plan)} (nothing changed)", err=True)
    else:
        echo(f"removed {_what(plan)}; `git prov sync` carries the removal to the remote", err=True)
    return 0


def _echo_json(doc: dict[str, Any]) -> None:
    """``doc`` printed as ``json.dumps(doc, indent=2, sort_keys=True)`` prints it, the same
    bytes, written 64 KiB at a time: a plan of 100,000 runs is never one string."""
    parts: list[str] = []
    size = 0
    for piece in json.JSONEncoder(indent=2, sort_keys=True).iterencode(doc):
        parts.append(piece)
        size += len(piece)
        if size >= 1 << 16:
            echo("".join(parts), nl=False, data=True)
            parts, size = [], 0
    echo("".join(parts), data=True)


def _unused_memos(prov_dir: Any) -> tuple[list[Any], list[Any]]:
    """The data memos gc removes, and the other files indexes (capture/data_memo.py)."""
    import time

    from git_prov.capture.data_memo import orphaned_indexes, unused_memos

    now = time.time()
    memos = unused_memos(prov_dir, now)
    return memos, orphaned_indexes(prov_dir, now, memos)


def _remove_memos(paths: list[Any]) -> int:
    from git_prov.capture.data_memo import remove_memos

    return remove_memos(paths)


def _remove_indexes(prov_dir: Any) -> int:
    import time

    from git_prov.capture.data_memo import remove_orphaned_indexes

    return remove_orphaned_indexes(prov_dir, time.time())


def _resolve_runs(repo: Any, specs: tuple[str, ...]) -> tuple[str, ...]:
    """The full ids of the runs ``specs`` name, through the query index (the answers
    ``Ledger.resolve_run`` gives from a scan: git_prov.query.located)."""
    if not specs:
        return ()
    from git_prov.query.index import with_index
    from git_prov.query.located import resolve
    from git_prov.store.gitcli.paths import RepoPaths

    def ids(index: Any) -> tuple[str, ...]:
        return tuple(resolve(index, spec).id for spec in specs)

    return with_index(RepoPaths.of_repo(repo), ids)  # type: ignore[no-any-return]


def _what(plan: Any) -> str:
    from git_prov.render import human_size

    logs = f"{len(plan.logs)} logs ({human_size(plan.log_bytes)})"
    data = plan.data
    kept = f"the kept bytes of {len(data.digests)} files ({human_size(data.size)})" if data else ""
    if plan.data_only:
        return kept if data and data.digests else "no kept data"
    if data and data.digests:
        logs = f"{logs} and {kept}" if plan.logs else kept
    if plan.logs_only:
        return logs if plan.logs else "no logs"
    runs = f"{len(plan.runs)} run{'s' if len(plan.runs) != 1 else ''}"
    if plan.histories:
        n = len(plan.histories)
        runs += f" (and {n} metric histor{'ies' if n != 1 else 'y'})"
    return f"{runs} and {logs}" if plan.logs or (data and data.digests) else runs


def _live_what(runs: list[Any]) -> str:
    n = len(runs)
    return f"{n} live director{'ies' if n != 1 else 'y'} of killed recorders"


def _live_lines(state: State, removed: list[Any], unsure: list[Any], *, dry_run: bool) -> list[str]:
    """A line per live directory gc removes (its recorder is gone) or leaves (cannot tell)."""
    from git_prov.model.ids import short_run_id
    from git_prov.model.record import printable, shorten

    verb = "would remove" if dry_run else "removed"
    lines = []
    for run, why in removed:
        lines.append(
            f"{verb} live directory of {state.style(short_run_id(run.id), fg='yellow')}  "
            f"{printable(run.started[:16].replace('T', ' '))}  "
            f"{printable(shorten(run.command, 50))}  ({printable(why)})"
        )
    for run, why in unsure:
        lines.append(
            f"left live directory of {state.style(short_run_id(run.id), fg='yellow')}: "
            f"{printable(why)}; cannot tell from here whether it still runs "
            f"(remove {printable(str(run.directory))} by hand once it does not)"
        )
    return lines


def _plan_lines(state: State, plan: Any, *, dry_run: bool) -> list[str]:
    from git_prov.model.record import printable, shorten

    verb = "drop logs of" if plan.logs_only else "remove"
    if plan.data_only:
        verb = "drop kept data of"
    if dry_run:
        verb = "would " + verb
    lines = []
    for r in plan.runs:
        lines.append(
            f"{verb} {state.style(r.short_id, fg='yellow')}  {r.started[:16].replace('T', ' ')}"
            f"  {printable(r.status):<6}  {r.commit[:7]}  {printable(shorten(r.command, 60))}"
        )
    if plan.redrop:
        lines.append(f"{'would drop' if dry_run else 'dropped'} again {len(plan.redrop)} logs")
    if plan.history_redrop:
        lines.append(
            f"{'would drop' if dry_run else 'dropped'} again {len(plan.history_redrop)} "
            "metric histories"
        )
    if plan.data is not None and plan.data.redrop:
        lines.append(
            f"{'would drop' if dry_run else 'dropped'} again the kept bytes of "
            f"{len(plan.data.redrop)} files"
        )
    return lines


# ---- fsck -----------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.option(
    "--data",
    is_flag=True,
    help="Also re-hash the recorded data files still in the working tree (drift is reported).",
)
@_JSON
@click.option("-q", "--quiet", is_flag=True, help="Print only problems (no warnings or info).")
@click.option(
    "--repair",
    is_flag=True,
    help="Restore a damaged ledger ref (one naming missing objects) from every intact copy "
    "git still holds, then check. Writes; say what was lost.",
)
@click.pass_obj
def fsck(state: State, data: bool, as_json: bool, quiet: bool, repair: bool) -> int:
    """Check that the ledger is whole and that everything it names can be read.

    Every note line parses, no run id has two different records, every commit,
    snapshot, manifest and log a run names exists and is kept, manifests parse and name
    only safe paths, the objects tree is content-addressed. Exits 0 when the ledger is
    consistent, 1 when problems were found, 9 when its refs cannot be read (then
    `git prov fsck --repair` restores the newest intact ledger and re-unites every
    readable newer line; it exits 1 when recorded runs could not be brought back).
    """
    from git_prov import fsck as checks

    repo = _open()
    repaired = None
    if repair:
        from git_prov.store import recovery as mending

        repaired = mending.repair(repo)
        if not as_json:
            for line in mending.describe(repaired):
                echo(line, err=True)
    report = checks.fsck(repo, data=data)
    lost = repaired is not None and any(r.lost_runs for r in repaired.refs)
    status = 0 if report.ok and not lost else EXIT_FINDING
    if as_json:
        doc = report.to_json_dict()
        if repaired is not None:
            doc["repair"] = repaired.to_json_dict()
        echo(json.dumps(doc, indent=2, sort_keys=True), data=True)
        return status
    color = {checks.ERROR: "red", checks.WARNING: "yellow", checks.INFO: None}
    for finding in report.findings:
        if quiet and finding.severity != checks.ERROR:
            continue
        head, _, rest = finding.text().partition(": ")
        echo(state.style(head + ":", fg=color[finding.severity]) + " " + rest)
    echo(checks.summary(report), err=True)
    return status

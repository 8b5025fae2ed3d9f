"""Text and JSON views of runs for people and scripts. Functions here return strings or
JSON-ready data; only ``cli.py`` prints them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from git_prov.history import CommitRuns
from git_prov.model.ids import short_oid
from git_prov.model.record import (
    STATUS_OK,
    LocatedRun,
    RunRecord,
    format_duration,
    printable,
    shorten,
)
from git_prov.model.values import format_assignments, format_scalar
from git_prov.terminal import View, one_line, view

if TYPE_CHECKING:  # (types only: `log` and `find` load no pygit2, nor the manifests' TOML)
    from git_prov.model.manifest import DataManifest, EnvironmentManifest
    from git_prov.store.ledger import Ledger

Style = Callable[..., str]
MAX_RUNS_PER_COMMIT = 5
MAX_FILES_SHOWN = 20
STATUS_MARK = {"ok": "✓", "failed": "✗", "killed": "⚡"}


def plain(text: str, **_: Any) -> str:
    """The no-colour style."""
    return text


def human_size(size: int) -> str:
    """1.2 MB style sizes (decimal units, like ls -h --si)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def when(iso: str) -> str:
    """2026-11-26T11:34:00.123Z -> 2026-11-26 11:34"""
    return iso[:16].replace("T", " ")


def run_line(run: LocatedRun, style: Style = plain, shown_on: str | None = None) -> str:
    """One line for a run in ``git prov log``."""
    r = run.record
    mark = STATUS_MARK.get(r.status, "?")
    color = "green" if r.status == STATUS_OK else "red"
    status = printable(r.status if r.status == STATUS_OK else f"{r.status}({_exit(r)})")
    parts = [
        style(f"{mark} {r.short_id}", fg=color),
        when(r.started),
        f"{format_duration(r.duration):>6}",
        style(f"{status:<6}", fg=color),
        shorten(r.command, 60),
    ]
    if r.metrics:
        parts.append(style(shorten(format_assignments(sorted(r.metrics.items())), 60), fg="cyan"))
    ids = []
    if r.inputs:
        ids.append(f"in:{short_oid(r.inputs)[:7]}")
    if r.outputs:
        ids.append(f"out:{short_oid(r.outputs)[:7]}")
    if r.env:
        ids.append(f"env:{short_oid(r.env)[:7]}")
    if r.dirty:
        ids.append(style("dirty", fg="yellow"))
    if run.conflict is not None:
        n = len(run.conflict.copies)
        why = "verified one shown" if run.conflict.shown == "verified" else "none verifies"
        ids.append(style(f"conflict: {n} copies, {why}", fg="red"))
    if shown_on is not None and r.commit != shown_on:
        how = next((a.how for a in run.attachments if a.commit == shown_on), None)
        where = f"ran on {short_oid(r.commit)[:7]}" + (f", {how}" if how else "")
        ids.append(style(where, fg="yellow"))
    if ids:
        parts.append(style(" ".join(ids), dim=True))
    return one_line("  ".join(parts))


def _exit(r: RunRecord) -> str:
    if r.signal is not None:
        return f"signal {r.signal}"
    return str(r.exit_code)


def log_chunks(
    entries: Iterable[CommitRuns],
    *,
    style: Style = plain,
    all_runs: bool = False,
    oneline: bool = False,
) -> Iterator[str]:
    """The ``git prov log`` view, one commit at a time (for a pager that starts at once)."""
    for number, entry in enumerate(entries):
        lines: list[str] = []
        if oneline:
            for run in entry.runs:
                r = run.record
                lines.append(
                    f"{style(r.short_id, fg='green' if r.status == STATUS_OK else 'red')} "
                    f"{style(entry.commit[:7], fg='yellow')} {printable(r.status)} "
                    f"{format_duration(r.duration)} {shorten(r.command, 60)}"
                    + (
                        f" {printable(format_assignments(sorted(r.metrics.items())))}"
                        if r.metrics
                        else ""
                    )
                    + (style(" [conflict]", fg="red") if run.conflict is not None else "")
                )
            if lines:
                yield view(lines)
            continue
        refs = f" ({printable(entry.refs)})" if entry.refs else ""
        lines.append(style(f"commit {entry.commit}", fg="yellow") + style(refs, fg="cyan"))
        lines.append(f"    {printable(entry.subject)}")
        runs = list(entry.runs)
        if not runs:
            lines.append(style("    (no runs)", dim=True))
        shown = runs if all_runs else runs[-MAX_RUNS_PER_COMMIT:]
        earlier = len(runs) - len(shown) + entry.earlier
        if earlier:
            lines.append(style(f"    … {earlier} earlier runs (--all-runs)", dim=True))
        for run in shown:
            lines.append("    " + run_line(run, style, entry.commit))
        yield view(["", *lines] if number else lines)


def record_json(run: LocatedRun) -> dict[str, Any]:
    """A run as JSON for ``--json`` output: the stored record plus where it is shown."""
    data = run.record.to_json_dict()
    data["short_id"] = run.record.short_id
    data["shown_on"] = list(run.shown_on)
    if run.attachments:
        data["attachments"] = [a.to_json_dict() for a in run.attachments]
    from git_prov.query.whereabouts import newest_commit

    data["shown_now"] = newest_commit(run.record.commit, run.attachments)
    if run.conflict is not None:
        data["conflict"] = run.conflict.to_json_dict()
    return data


def log_json(entries: Iterable[CommitRuns]) -> list[dict[str, Any]]:
    """The ``git prov log --json`` document."""
    return [
        {
            "commit": e.commit,
            "subject": e.subject,
            "author": e.author,
            "date": e.date,
            "refs": e.refs,
            "runs": [record_json(r) for r in e.runs],
        }
        for e in entries
    ]


def manifest_json(manifest: DataManifest, available: Any = None) -> dict[str, Any]:
    """A data manifest as JSON; with ``available`` (a :class:`git_prov.kept_data.
    Availability`), each file says whether and where its bytes can be had."""
    files = [e.to_dict() for e in manifest.entries]
    if available is not None:
        for doc, entry in zip(files, manifest.entries, strict=True):
            doc["available"] = available.describe(entry)
    return {"paths": list(manifest.paths), "missing": list(manifest.missing), "files": files}


def env_json(env: EnvironmentManifest) -> dict[str, Any]:
    return {
        "python": dict(env.python),
        "packages": dict(env.packages),
        "lockfiles": dict(env.lockfiles),
        "system": dict(env.system),
        "cpu": dict(env.cpu),
        "memory": dict(env.memory),
        "gpus": [dict(g) for g in env.gpus],
        "accelerator": dict(env.accelerator),
        "container": dict(env.container),
        "variables": dict(env.variables),
    }


def show_json(ledger: Ledger, run: LocatedRun) -> dict[str, Any]:
    """``git prov show --json``: the record with its manifests loaded."""
    r = run.record
    data = record_json(run)
    available = _availability(ledger) if r.inputs or r.outputs else None
    if r.inputs:
        data["inputs_manifest"] = manifest_json(ledger.data_manifest(r.inputs), available)
    if r.outputs:
        data["outputs_manifest"] = manifest_json(ledger.data_manifest(r.outputs), available)
    if r.env:
        data["environment"] = env_json(ledger.env_manifest(r.env))
    return data


def show_text(
    ledger: Ledger,
    run: LocatedRun,
    *,
    style: Style = plain,
    all_files: bool = False,
    full_env: bool = False,
    where: Sequence[tuple[str, str]] = (),
) -> View:
    """``git prov show``: everything about one run, for people. ``where`` are extra
    (label, text) rows after the commits it is shown on (where its code is now)."""
    r = run.record
    color = "green" if r.status == STATUS_OK else "red"
    out = [style(f"run {r.id}", fg="yellow", bold=True)]

    def row(label: str, value: str, **look: Any) -> None:
        # Ledger text is untrusted: escape control characters before styling it.
        text = printable(value)
        out.append(f"{label + ':':<13}{style(text, **look) if look else text}")

    if run.conflict is not None:
        # Never shown as if it were the only copy: say so first, and how the others differ.
        look = "yellow" if run.conflict.shown == "verified" else "red"
        row("Conflict", run.conflict.summary(), fg=look, bold=True)
        for difference in run.conflict.differences():
            out.append(f"{'':13}{style(printable(difference), fg=look)}")
    row("Status", f"{r.status} (exit {_exit(r)})", fg=color)
    row("Command", r.command)
    if r.cwd != ".":
        row("Directory", r.cwd)
    row("Commit", f"{r.commit}" + (f" ({r.branch})" if r.branch else ""))
    if r.snapshot:
        row("Source", f"dirty working tree, snapshot {r.snapshot}", fg="yellow")
        out.append(f"{'':13}(git checkout {r.snapshot[:12]} shows the exact code that ran)")
    else:
        row("Source", "clean (the commit is the exact code)")
    if r.omitted:
        row("Left out", ", ".join(r.omitted) + " (untracked, too large to snapshot)")
    secrets = r.extra.get("omitted_secrets")
    if isinstance(secrets, list) and secrets:
        left_out = ", ".join(str(p) for p in secrets)
        row("Left out", left_out + " (untracked secret files, not snapshotted)")
    for commit in run.shown_on:
        if commit != r.commit:
            how = next((a.how for a in run.attachments if a.commit == commit), "notes rewrite")
            row("Also on", f"{commit} ({how})")
    for label, text in where:
        row(label, text, fg="yellow")
    row(
        "Started",
        f"{r.started.replace('T', ' ').replace('Z', ' UTC')}   "
        f"duration {format_duration(r.duration)}",
    )
    if r.host or r.user:
        row("Host", f"{r.host or '?'}" + (f" ({r.user})" if r.user else ""))
    if r.tags:
        row("Tags", ", ".join(r.tags))
    if r.message:
        row("Message", r.message)
    if r.reproduces:
        row("Reproduces", r.reproduces)
    if r.params:
        row("Params", format_assignments(sorted(r.params.items())))
    if r.metrics:
        row("Metrics", format_assignments(sorted(r.metrics.items())), fg="cyan")
    if r.history:
        from git_prov.store.drops import is_history_dropped

        if is_history_dropped(ledger, r.history):
            summaries = _histories_text(r.series, hint="") + "; " if r.series else ""
            row("Histories", summaries + "history dropped by git prov gc")
        elif r.series:
            row("Histories", _histories_text(r.series))
    elif r.series:
        row("Histories", _histories_text(r.series))
    # Problems met while recording it (the run key ``warnings``, docs/format.md).
    for warning in r.warnings:
        row("Warning", warning, fg="yellow")
    available = _availability(ledger) if r.inputs or r.outputs else None
    for label, oid in (("Inputs", r.inputs), ("Outputs", r.outputs)):
        if oid:
            manifest = ledger.data_manifest(oid)
            out.extend(_manifest_lines(label, oid, manifest, style, all_files, available))
    if r.env:
        env = ledger.env_manifest(r.env)
        row("Environment", f"env {short_oid(r.env)} — {env.summary()}")
        out.extend(_env_lines(env, full_env))
    from git_prov.store.drops import dropped_logs

    dropped = dropped_logs(ledger) if (r.stdout or r.stderr) else set()
    for name in ("stdout", "stderr"):
        oid = getattr(r, name)
        if oid in dropped:
            row(name.capitalize(), "dropped by git prov gc")
        elif oid:
            size = ledger.object_size(oid, f"{name} log")
            row(
                name.capitalize(),
                f"{human_size(size)} kept (git prov show --log {name} {r.short_id})",
            )
    return view(out)


def _histories_text(
    series: Mapping[str, Mapping[str, Any]], hint: str = " (git prov metrics RUN)"
) -> str:
    """``loss 1000 points, min 0.02, best at step 812; …`` (git prov metrics RUN: all)."""
    parts = []
    for name, summary in sorted(series.items()):
        text = f"{name} {summary.get('n', '?')} points"
        if "min" in summary:
            text += f", min {format_scalar(summary['min'])}, max {format_scalar(summary['max'])}"
        if "best_step" in summary:
            text += f", best at step {format_scalar(summary['best_step'])}"
        parts.append(text)
    return "; ".join(parts) + hint


def _availability(ledger: Ledger) -> Any:
    from git_prov.kept_data import Availability

    return Availability(ledger.repo)


def _manifest_lines(
    label: str,
    oid: str,
    manifest: DataManifest,
    style: Style,
    all_files: bool,
    available: Any = None,
) -> list[str]:
    n = len(manifest.entries)
    lines = [
        f"{label + ':':<13}data {short_oid(oid)} — {n} file{'s' if n != 1 else ''}, "
        f"{human_size(manifest.total_size)}"
    ]
    entries = manifest.entries if all_files else manifest.entries[:MAX_FILES_SHOWN]
    width = min(max((len(e.path) for e in entries), default=0), 60)
    for e in entries:
        lines.append(
            f"    {printable(e.path):<{width}}  {human_size(e.size):>9}  "
            f"{e.algorithm}:{e.digest[:12]}"
            + style(
                f"  ({e.hash_origin}"
                + "".join(f"; {fact}" for fact in e.recorded_facts)
                + (f"; {available.describe(e)}" if available is not None else "")
                + ")",
                dim=True,
            )
        )
    if len(entries) < n:
        lines.append(style(f"    … {n - len(entries)} more files (--all-files)", dim=True))
    for path in manifest.missing:
        lines.append(style(f"    {printable(path)}  (missing)", fg="red"))
    return lines


def _env_lines(env: EnvironmentManifest, full: bool) -> list[str]:
    lines = []
    py = env.python
    if py:
        lines.append(f"    python      {py.get('executable', '?')} ({py.get('version', '?')})")
    if env.system:
        lines.append(
            f"    system      {env.system.get('distro') or env.system.get('os', '')} "
            f"{env.system.get('release', '')} {env.system.get('machine', '')}".rstrip()
        )
    if env.cpu:
        lines.append(f"    cpu         {env.cpu.get('model', '?')} × {env.cpu.get('count', '?')}")
    total, limit = env.memory.get("total_bytes"), env.memory.get("cgroup_limit_bytes")
    if isinstance(total, int) or isinstance(limit, int):
        memory = human_size(total) if isinstance(total, int) else "?"
        if isinstance(limit, int):
            memory += f" (cgroup limit {human_size(limit)})"
        lines.append(f"    memory      {memory}")
    for gpu in env.gpus:
        lines.append(f"    gpu         {gpu.get('name', '?')} (driver {gpu.get('driver', '?')})")
    if env.container.get("kind"):
        lines.append(f"    container   {env.container['kind']}")
    if env.lockfiles:
        for path, digest in sorted(env.lockfiles.items()):
            lines.append(f"    lockfile    {path} {digest[:19]}")
    if full:
        for name, version in sorted(env.packages.items()):
            lines.append(f"    package     {name}=={version}")
        for name, value in sorted(env.variables.items()):
            lines.append(f"    variable    {name}={value}")
    elif env.packages:
        lines.append(f"    packages    {len(env.packages)} (--env lists them)")
    return [printable(line) for line in lines]

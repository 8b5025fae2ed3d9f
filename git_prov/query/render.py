"""Text, CSV and template views of query results. Functions here return strings or
JSON-ready data; only the CLI prints them."""

from __future__ import annotations

import csv
import io
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from git_prov.model.record import format_duration, shorten
from git_prov.model.values import format_assignments, format_scalar, spreadsheet_safe
from git_prov.terminal import View, view

Style = Callable[..., str]
MAX_METRIC_COLUMNS = 4
MAX_PARAM_COLUMNS = 4  # params that vary among the runs find lists (the others: a note)
PARAM_WIDTH = 24  # a param value longer than this is cut in tables (… ), never in --csv/--json


def plain(text: str, **_: Any) -> str:
    """The no-colour style."""
    return text


def when(iso: str) -> str:
    """2026-11-26T11:34:00.123Z -> 2026-11-26 11:34"""
    return iso[:16].replace("T", " ")


def key_metrics(metrics: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> list[str]:
    """The metric names worth a column: those named in ``first`` (a sort key, a --where),
    then the most common ones, at most :data:`MAX_METRIC_COLUMNS`."""
    counts: Counter[str] = Counter()
    for values in metrics:
        counts.update(values.keys())
    names = [n for n in dict.fromkeys(first) if n in counts]
    for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(names) >= MAX_METRIC_COLUMNS:
            break
        if name not in names:
            names.append(name)
    return names[:MAX_METRIC_COLUMNS]


TABLE_FIELDS = (
    "id", "started", "status", "duration", "commit", "command", "params_json", "metrics_json",
)  # fmt: skip


def varying_params(params: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> list[str]:
    """The names of the params that differ among runs (a different value, or missing in
    some): those named in ``first`` (a --where, the sort key) first, then by name."""
    from git_prov.query.comparison import split_params

    if len(params) < 2:
        return []
    _, varying = split_params(params)
    return [n for n in dict.fromkeys(first) if n in varying] + [
        n for n in varying if n not in first
    ]


def runs_table(
    runs: Sequence[Any],
    *,
    style: Style = plain,
    first: Sequence[str] = (),
    now: Mapping[str, str] | None = None,
) -> View:
    """The aligned table ``git prov find`` prints: id, start, status, duration, commit,
    command and the key metrics (needs :data:`TABLE_FIELDS` of each run). ``now`` maps
    run ids to the commit each is shown on now (after a rewrite): COMMIT shows that, and
    a RAN ON column the commit it ran on, when any differ."""
    now = now or {}
    metric_values = [run.metrics for run in runs]
    metrics = key_metrics(metric_values, first)
    param_values = [run.params for run in runs]
    first_params = [n.removeprefix("params.") for n in first]
    varying = varying_params(param_values, first_params)
    params, hidden = varying[:MAX_PARAM_COLUMNS], varying[MAX_PARAM_COLUMNS:]
    moved = any(now.get(run.id, run.commit) != run.commit for run in runs)
    where = ["COMMIT", "RAN ON"] if moved else ["COMMIT"]
    header = ["ID", "STARTED", "STATUS", "DURATION", *where, "COMMAND", *params, *metrics]
    rows = []
    for run, values, given in zip(runs, metric_values, param_values, strict=True):
        started = run.started
        shown = now.get(run.id, run.commit)
        ran = [run.commit[:7] if shown != run.commit else ""] if moved else []
        rows.append(
            [
                run.short_id,
                f"{started[:10]} {started[11:16]}",
                run.status,
                format_duration(run.duration),
                shown[:7],
                *ran,
                shorten(run.command, 48),
                *[_param_cell(given, p) for p in params],
                *[format_scalar(values[m]) if m in values else "" for m in metrics],
            ]
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    widths = [max([len(h), *map(len, c)]) for h, c in zip(header, columns, strict=True)]
    right = {3} | set(range(5 + len(where), len(header)))  # numbers align right
    ok = style("ok".ljust(widths[2]), fg="green")

    def line(cells: Sequence[str], head: bool = False) -> str:
        out = []
        for i, cell in enumerate(cells):
            text = cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            if not head and i == 2:
                text = ok if cell == "ok" else style(text, fg="red")
            elif not head and i == 0:
                text = style(text, fg="yellow")
            out.append(text)
        joined = "  ".join(out).rstrip()
        return style(joined, bold=True) if head else joined

    lines = [line(header, True), *(line(r) for r in rows)]
    if hidden:
        lines.append(
            style(
                f"{len(hidden)} more varying param{'s' if len(hidden) > 1 else ''} not shown: "
                f"{shorten(', '.join(hidden), 60)} (git prov compare or --csv shows them)",
                dim=True,
            )
        )
    return view(lines)


def _param_cell(params: Mapping[str, Any], name: str) -> str:
    return shorten(format_scalar(params[name]), PARAM_WIDTH) if name in params else ""


CSV_FIELDS = (
    "id", "short_id", "started", "ended", "duration", "status", "exit_code", "commit",
    "snapshot", "branch", "host", "user", "command", "tags", "message", "env", "inputs",
    "outputs",
)  # fmt: skip


def runs_csv(
    records: Sequence[Mapping[str, Any]],
    *,
    columns: tuple[list[str], list[str]] | None = None,
    header: bool = True,
) -> str:
    """CSV of records: fixed columns, then ``params.<name>`` and ``metrics.<name>``. A text
    cell a spreadsheet would run as a formula gets a leading ``'`` (as in
    :mod:`git_prov.export.csv_table`). ``columns`` (:func:`csv_columns` of every record)
    and ``header`` let a long table be written a part at a time."""
    params, metrics = columns if columns is not None else csv_columns(records)
    out = io.StringIO()
    # RFC 4180 line ends, as export -f csv: with "\n" alone the csv module would leave a
    # cell holding a bare CR unquoted, and readers would split the row there.
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(
            [*CSV_FIELDS, *(f"params.{p}" for p in params), *(f"metrics.{m}" for m in metrics)]
        )
    for r in records:
        row = []
        for name in CSV_FIELDS:
            value = r.get(name)
            if name == "tags":
                value = ";".join(value or ())
            row.append("" if value is None else _csv_value(value))
        row += [_csv_value((r.get("params") or {}).get(p, "")) for p in params]
        row += [_csv_value((r.get("metrics") or {}).get(m, "")) for m in metrics]
        writer.writerow(row)
    return out.getvalue()


def csv_columns(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The params and metrics names of :func:`runs_csv`'s columns, sorted."""
    params: set[str] = set()
    metrics: set[str] = set()
    for r in records:
        params.update(r.get("params") or ())
        metrics.update(r.get("metrics") or ())
    return sorted(params), sorted(metrics)


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return spreadsheet_safe(str(value))


class _Blank(dict[str, Any]):
    """A mapping whose missing keys format as ''."""

    def __missing__(self, key: str) -> str:
        return ""


def template_fields(template: str) -> set[str]:
    """The top-level names a ``str.format`` template uses (``{metrics[acc]}`` → metrics);
    raises ValueError for a malformed template."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        head = name.split(".", 1)[0].split("[", 1)[0]
        names.add(head)
    return names


def format_run(template: str, data: Mapping[str, Any]) -> str:
    """``template.format_map`` over a run's fields; unknown fields format as ''."""
    values = _Blank({k: _Blank(v) if isinstance(v, dict) else v for k, v in data.items()})
    return template.format_map(values)


# Fields --format can take from the index alone, without reading the records back.
INDEX_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": lambda r: r.id,
    "short_id": lambda r: r.short_id,
    "commit": lambda r: r.commit,
    "short_commit": lambda r: r.commit[:7],
    "started": lambda r: r.started,
    "date": lambda r: when(r.started),
    "duration": lambda r: r.duration,
    "duration_text": lambda r: format_duration(r.duration),
    "status": lambda r: r.status,
    "exit_code": lambda r: "" if r.exit_code is None else r.exit_code,
    "command": lambda r: r.command,
    "host": lambda r: r.host or "",
    "user": lambda r: r.user or "",
    "branch": lambda r: r.branch or "",
    "env": lambda r: r.env or "",
    "inputs": lambda r: r.inputs or "",
    "outputs": lambda r: r.outputs or "",
    "snapshot": lambda r: r.snapshot or "",
    "params": lambda r: _Blank(r.params),
    "metrics": lambda r: _Blank(r.metrics),
    "tags": lambda r: ",".join(r.tags),
}


# The FoundRun field each of INDEX_FIELDS reads.
INDEX_FIELD_COLUMNS = {
    "short_id": "id",
    "short_commit": "commit",
    "date": "started",
    "duration_text": "duration",
    "params": "params_json",
    "metrics": "metrics_json",
    "tags": "tags_json",
    **{name: name for name in ("id", "commit", "started", "duration", "status", "exit_code",
                               "command", "host", "user", "branch", "env", "inputs",
                               "outputs", "snapshot")},
}  # fmt: skip


def format_found(template: str, runs: Sequence[Any], names: set[str]) -> list[str]:
    """``--format`` lines for index rows; ``names`` must be among :data:`INDEX_FIELDS`."""
    getters = [(n, INDEX_FIELDS[n]) for n in names]
    return [template.format_map(_Blank({n: get(run) for n, get in getters})) for run in runs]


def run_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The names ``--format`` offers: the record's own, plus ``short_id``, ``short_commit``,
    ``date`` and ``duration_text``."""
    out = dict(data)
    out.setdefault("short_id", str(data.get("id", ""))[-8:])
    out["short_commit"] = str(data.get("commit", ""))[:7]
    out["date"] = when(str(data.get("started", "")))
    out["duration_text"] = format_duration(float(data.get("duration") or 0.0))
    out.setdefault("params", {})
    out.setdefault("metrics", {})
    out["tags"] = ",".join(data.get("tags") or ())
    return out


def env_text(env_id: str, manifest: Any, tags: Sequence[str], *, style: Style = plain) -> View:
    """``git prov env show``: every section of an environment manifest."""
    head = style(f"environment {env_id}", fg="yellow", bold=True)
    out = [head + (f"  ({', '.join(tags)})" if tags else "")]
    summary = manifest.summary()
    if summary:
        out.append(summary)
    sections = ("python", "system", "cpu", "memory", "accelerator", "container")
    for name in sections:
        values = getattr(manifest, name)
        if values:
            out.append("")
            out.append(style(f"[{name}]", bold=True))
            out.extend(f"  {k} = {_plain_value(v)}" for k, v in sorted(values.items()))
    for i, gpu in enumerate(manifest.gpus):
        out.append("")
        out.append(style(f"[gpu {i}]", bold=True))
        out.extend(f"  {k} = {_plain_value(v)}" for k, v in sorted(gpu.items()))
    for name, label in (("lockfiles", "lockfiles"), ("variables", "variables")):
        values = getattr(manifest, name)
        if values:
            out.append("")
            out.append(style(f"[{label}]", bold=True))
            out.extend(f"  {k} = {v}" for k, v in sorted(values.items()))
    if manifest.packages:
        out.append("")
        out.append(style(f"[packages] ({len(manifest.packages)})", bold=True))
        out.extend(f"  {k}=={v}" for k, v in sorted(manifest.packages.items()))
    return view(out)


def _plain_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain_value(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return ", ".join(_plain_value(v) for v in value)
    return format_scalar(value)


# ---- diff and check ---------------------------------------------------------------------------


def _size(size: int | None) -> str:
    from git_prov.render import human_size

    return "?" if size is None or size < 0 else human_size(size)


def _hash(value: str | None) -> str:
    if not value:
        return "?"
    algorithm, _, digest = value.partition(":")
    return f"{algorithm}:{digest[:12]}"


_MARK = {"added": "+", "removed": "-", "changed": "~", "unverified": "?", "same": "="}


def data_lines(diff: Any, *, style: Style = plain, indent: str = "  ") -> list[str]:
    """One line per file added, removed or changed in a :class:`DataDiff`."""
    colours = {"added": "green", "removed": "red", "changed": "yellow", "unverified": "cyan"}
    width = min(max((len(c.path) for c in diff.changes), default=0), 60)
    out = []
    for c in diff.changes:
        mark = style(_MARK.get(c.change, "?"), fg=colours.get(c.change))
        if c.change == "added":
            detail = f"{_size(c.new_size):>9}  {_hash(c.new_hash)}"
        elif c.change == "removed":
            detail = f"{_size(c.old_size):>9}  {_hash(c.old_hash)}"
        else:
            detail = (
                f"{_size(c.old_size)} → {_size(c.new_size)}  "
                f"{_hash(c.old_hash)} → {_hash(c.new_hash)}"
            )
            if c.change == "unverified":
                detail += "  (hashed differently; same size)"
        out.append(f"{indent}{mark} {c.path:<{width}}  {detail}")
    for path in getattr(diff, "new_missing", ()):
        if path not in getattr(diff, "old_missing", ()):
            out.append(f"{indent}" + style(f"! {path}  (missing)", fg="red"))
    return out


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _value(value: Any) -> str:
    return "—" if value is None else format_scalar(value)


def env_lines(diff: Any, *, style: Style = plain, indent: str = "  ") -> list[str]:
    """Packages and facts that changed in an :class:`EnvDiff`."""
    out = []
    colours = {"added": "green", "removed": "red", "upgraded": "cyan", "downgraded": "yellow"}
    for p in diff.packages:
        colour = colours.get(p.change)
        if p.change == "added":
            out.append(f"{indent}" + style(f"+ {p.name} {p.new}", fg=colour))
        elif p.change == "removed":
            out.append(f"{indent}" + style(f"- {p.name} {p.old}", fg=colour))
        else:
            out.append(f"{indent}" + style(f"~ {p.name} {p.old} → {p.new} ({p.change})", fg=colour))
    for f in diff.facts:
        out.append(f"{indent}~ {f.section}.{f.key}: {_value(f.old)} → {_value(f.new)}")
    return out


def _delta(change: Any) -> str:
    if change.delta is None:
        return ""
    text = f"  {change.delta:+.6g}"
    if change.relative is not None:
        text += f" ({change.relative:+.1%})"
    return text


def diff_text(diff: Any, *, style: Style = plain) -> View:
    """``git prov diff``: two runs side by side, one section per kind of change."""
    a, b = diff.a, diff.b
    out = [
        style(f"diff run {a.short_id} → run {b.short_id}", fg="yellow", bold=True),
        f"  {a.started[:16].replace('T', ' ')}  {shorten(a.command, 70)}",
        f"  {b.started[:16].replace('T', ' ')}  {shorten(b.command, 70)}",
    ]

    def section(title: str, summary: str) -> None:
        out.append("")
        out.append(style(f"{title:<13}", bold=True) + summary)

    if diff.run:
        section("Run", "")
        for c in diff.run:
            text = f"  {c.name:<10} {_value(c.old)} → {_value(c.new)}"
            if c.name == "duration":
                text = (
                    f"  {'duration':<10} {format_duration(c.old or 0)} → "
                    f"{format_duration(c.new or 0)}"
                )
            out.append(text)
    source = diff.source
    label = f"{source.old[:10]} → {source.new[:10]}"
    if source.error:
        section("Source", style(source.error, fg="red"))
    elif source.same:
        section("Source", f"same code ({label})")
    else:
        n = len(source.files)
        section("Source", f"{label}: {n} file{'s' if n != 1 else ''} changed")
        out.extend("  " + _stat_line(line, style) for line in source.stat.rstrip("\n").split("\n"))
        if source.patch:
            out.append("")
            out.extend(_patch_line(line, style) for line in source.patch.rstrip("\n").split("\n"))
    for data in (diff.inputs, diff.outputs):
        title = data.role.capitalize()
        if data.old_manifest is None and data.new_manifest is None:
            section(title, "none recorded")
        elif data.same:
            section(title, f"same ({_files(data.unchanged)})")
        else:
            section(title, f"{len(data.changes)} changed, {data.unchanged} same")
            out.extend(data_lines(data, style=style))
    env = diff.environment
    if env.same:
        section("Environment", f"same (env {(env.old_id or '—')[:10]})")
    else:
        section("Environment", f"env {(env.old_id or '—')[:10]} → {(env.new_id or '—')[:10]}")
        out.extend(env_lines(env, style=style))
    if diff.params:
        section("Params", "")
        for c in diff.params:
            out.append(f"  {_MARK.get(c.change, '~')} {c.name}: {_value(c.old)} → {_value(c.new)}")
    else:
        section("Params", "same")
    if diff.metrics:
        section("Metrics", "")
        width = max(len(c.name) for c in diff.metrics)
        for c in diff.metrics:
            line = f"  {c.name:<{width}}  {_value(c.old)} → {_value(c.new)}{_delta(c)}"
            if c.change == "same":
                line = f"  {c.name:<{width}}  {_value(c.new)}  (same)"
            elif c.change in ("added", "removed"):
                line += f"  ({c.change})"
            out.append(style(line, fg="cyan") if c.change == "changed" else line)
    return view(out)


_STAT_GRAPH = re.compile(r"^(.* \| +\d+ )(\+*)(-*)$")


def _stat_line(line: str, style: Style) -> str:
    """A ``--stat`` line with its +/- graph coloured as git colours it. (git is asked for
    no colour: its codes could not be told from escape codes in the files it shows.)"""
    match = _STAT_GRAPH.match(line)
    if match is None:
        return line
    head, plus, minus = match.groups()
    return (
        head + (style(plus, fg="green") if plus else "") + (style(minus, fg="red") if minus else "")
    )


def _patch_line(line: str, style: Style) -> str:
    """A line of a patch coloured as ``git diff`` colours it."""
    if line.startswith(("diff --git ", "index ", "--- ", "+++ ", "new file", "deleted file")):
        return style(line, bold=True)
    if line.startswith("@@"):
        return style(line, fg="cyan")
    if line.startswith("+"):
        return style(line, fg="green")
    if line.startswith("-"):
        return style(line, fg="red")
    return line


def check_text(result: Any, *, style: Style = plain) -> View:
    """``git prov check``: per category, same or what drifted."""
    run = result.run
    out = [
        style(f"check run {run.short_id}", fg="yellow", bold=True)
        + f"  {run.started[:16].replace('T', ' ')}  {shorten(run.command, 60)}"
    ]
    ok = style("no drift", fg="green")
    drifted: list[str] = []
    if result.code is not None:
        code = result.code
        where = f"HEAD {code.head[:10]}" + (" + working tree changes" if code.dirty else "")
        if code.diff.error:
            out.append(f"{'code':<13}" + style(code.diff.error, fg="red"))
            drifted.append("code")
        elif code.same:
            out.append(f"{'code':<13}{ok} ({where})")
        else:
            drifted.append("code")
            n = len(code.diff.files)
            out.append(
                f"{'code':<13}"
                + style(f"changed: {n} file{'s' if n != 1 else ''}", fg="red")
                + f" (run: {code.recorded[:10]}, now: {where})"
            )
            out.extend("  " + line for line in code.diff.stat.rstrip("\n").splitlines())
        if code.data_files:
            n = len(code.data_files)
            out.append(
                style(
                    f"  ({n} file{'s' if n != 1 else ''} that runs declared as data also "
                    f"differ{'s' if n == 1 else ''}; not counted as code)",
                    dim=True,
                )
            )
    if result.inputs is not None:
        data = result.inputs
        if data.same:
            out.append(f"{'inputs':<13}{ok} ({_files(data.unchanged)})")
        else:
            drifted.append("inputs")
            total = len(data.changes) + data.unchanged
            changed = style(f"changed: {len(data.changes)} of {_files(total)}", fg="red")
            out.append(f"{'inputs':<13}{changed}")
            out.extend(data_lines(data, style=style))
    if result.environment is not None:
        env = result.environment
        if env.same:
            out.append(f"{'environment':<13}{ok} (env {(env.old_id or '')[:10]})")
        else:
            drifted.append("environment")
            out.append(
                f"{'environment':<13}"
                + style("changed", fg="red")
                + f" (env {(env.old_id or '')[:10]} → now {(env.new_id or '')[:10]})"
            )
            out.extend(env_lines(env, style=style))
    for note in result.notes:
        out.append(style(f"note: {note}", dim=True))
    if drifted:
        out.append(style(f"drift: {', '.join(drifted)}", fg="red", bold=True))
    else:
        out.append(style("nothing drifted", fg="green", bold=True))
    return view(out)


# ---- compare ------------------------------------------------------------------------------------

BEST_MARK = "*"


def _direction_text(way: str | None, why: str | None) -> str:
    side = "lower" if way == "min" else "higher"
    return f"{side}, {'as asked' if why == 'option' else 'by its name'}"


def compare_text(comparison: Any, *, style: Style = plain) -> View:
    """The table ``git prov compare`` prints: constant params once above it, then a row
    per run with the params that differ and every metric, the best value of each metric
    marked with ``*`` (and how best was decided said below the table)."""
    runs = comparison.runs
    lines = []
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    if comparison.constant:
        shown = format_assignments(
            (k, shorten(format_scalar(v), PARAM_WIDTH)) for k, v in comparison.constant.items()
        )
        lines.append(f"{count}; the same in all: {shown}")
    else:
        lines.append(f"{count}; no param has one value in all")
    params, metrics = list(comparison.varying), list(comparison.metrics)
    header = ["ID", "COMMIT", "STARTED", "STATUS", *params, *metrics]
    rows = []
    for run in runs:
        cells = [run.short_id, run.commit[:7], when(run.started), run.status]
        cells += [_param_cell(run.params, p) for p in params]
        for m in metrics:
            value = format_scalar(run.metrics[m]) if m in run.metrics else ""
            mark = BEST_MARK if comparison.is_best(run.id, m) else " "
            cells.append(f"{value}{mark}" if value else "")
        rows.append(cells)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    numeric = set(range(4, len(header)))

    def cell(i: int, text: str, head: bool) -> str:
        if head and i >= 4 + len(params):
            text = text + " "  # over the value, not over its mark column
        padded = text.rjust(widths[i]) if i in numeric else text.ljust(widths[i])
        if head:
            return padded
        if i == 0:
            return style(padded, fg="yellow")
        if i == 3 and text != "ok":
            return style(padded, fg="red")
        if text.endswith(BEST_MARK):
            return style(padded, fg="green", bold=True)
        return padded

    lines.append(
        style("  ".join(cell(i, h, True) for i, h in enumerate(header)).rstrip(), bold=True)
    )
    lines += ["  ".join(cell(i, c, False) for i, c in enumerate(r)).rstrip() for r in rows]
    decided = [
        f"{m} {_direction_text(*comparison.direction[m])}"
        for m in metrics
        if comparison.direction[m][0] is not None
    ]
    if decided:
        lines.append(f"{BEST_MARK} best among runs that ended ok: " + "; ".join(decided))
    undecided = comparison.undecided
    if undecided:
        names = ", ".join(undecided)
        lines.append(
            style(
                f"no best marked for {shorten(names, 60)}: the name does not say which way is "
                f"better (--maximize NAME or --minimize NAME)",
                dim=True,
            )
        )
    return view(lines)


def compare_csv(comparison: Any) -> str:
    """``git prov compare --csv``: id, commit, started, status, ``params.<name>`` for the
    params that differ, ``metrics.<name>``, and ``best``: the metrics this run is best in
    (``;``-separated)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    params, metrics = comparison.varying, comparison.metrics
    writer.writerow(
        [
            "id", "short_id", "commit", "started", "status",
            *(f"params.{p}" for p in params), *(f"metrics.{m}" for m in metrics), "best",
        ]
    )  # fmt: skip
    for run in comparison.runs:
        row = [run.id, run.short_id, run.commit, run.started, run.status]
        row += [run.params.get(p, "") for p in params]
        row += [run.metrics.get(m, "") for m in metrics]
        row.append(";".join(m for m in metrics if comparison.is_best(run.id, m)))
        writer.writerow([_csv_value(c) for c in row])
    return out.getvalue()

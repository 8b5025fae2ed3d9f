"""``git prov metrics``: the metric histories of runs, recorded or still going.

A run spec names a recorded run (its history blob, docs/format.md "Metric histories") or
a run being recorded now (its live directory, git_prov/live.py). Rendering lives here too:
a summary line with a sparkline per metric, a table of every point, CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from git_prov.errors import NotFound
from git_prov.live import LiveRun, live_runs, read_live
from git_prov.model.history import Series, goal_for, summarize
from git_prov.model.ids import short_run_id
from git_prov.model.values import Scalar, format_scalar, spreadsheet_safe, to_json_safe
from git_prov.store.repo import GitRepo

SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 32
_RUN_SPEC = re.compile(r"^(?:[0-9a-f]{4,}|[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(?:-[0-9a-f]{0,8})?)\Z")


@dataclass(frozen=True)
class RunHistories:
    """One run's histories (all of them, or the keys asked for) and its summaries."""

    id: str
    command: str
    live: bool  # still being recorded: the points so far
    histories: dict[str, Series]
    summaries: Mapping[str, Mapping[str, Scalar]]
    gone: bool = False  # live, but the process recording it is gone (killed): no record
    dropped: bool = False  # recorded, but `git prov gc` dropped its history blob

    @property
    def short_id(self) -> str:
        return short_run_id(self.id)


def looks_like_run(spec: str) -> bool:
    """Whether a ``metrics`` argument is meant as a run id (else it is a metric name)."""
    return bool(_RUN_SPEC.match(spec))


def split_arguments(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """``RUN… [KEY…]``: the leading arguments that look like run ids, then the keys."""
    runs: list[str] = []
    for at, argument in enumerate(arguments):
        if not looks_like_run(argument):
            return runs, list(arguments[at:])
        runs.append(argument)
    return runs, []


def find_live(repo: GitRepo, spec: str) -> LiveRun | None:
    """The run being recorded that ``spec`` names (id, short id or a prefix of either)."""
    matches = [
        r for r in live_runs(repo.prov_dir) if r.id.startswith(spec) or r.id[-8:].startswith(spec)
    ]
    if len(matches) > 1:
        listed = ", ".join(r.id for r in matches[:5])
        raise NotFound(f"run id {spec!r} is ambiguous: {listed}", "give more characters of the id")
    return matches[0] if matches else None


def load_histories(repo: GitRepo, spec: str, keys: Sequence[str] = ()) -> RunHistories:
    """The histories of the run ``spec`` names: a run being recorded (its points so far)
    or a recorded one. ``keys``: only these metrics."""
    from git_prov.query.located import find_run
    from git_prov.store.ledger import Ledger

    live = find_live(repo, spec)
    if live is not None:
        histories = _only(read_live(live), keys)
        return RunHistories(
            live.id,
            live.command,
            True,
            histories,
            {k: summarize(s, goal_for(k)) for k, s in histories.items()},
            gone=not live.alive,
        )
    try:
        located = find_run(repo, spec)
    except NotFound:
        # The run may have been recorded between our look at live/ and now.
        located = find_run(repo, spec)
    record = located.record
    ledger = Ledger(repo)
    if record.history:
        from git_prov.store.drops import is_history_dropped

        if is_history_dropped(ledger, record.history):
            return RunHistories(
                record.id, record.command, False, {}, dict(record.series), dropped=True
            )
    histories = ledger.metric_history(record.history) if record.history else {}
    return RunHistories(
        record.id, record.command, False, _only(histories, keys), dict(record.series)
    )


def _only(histories: dict[str, Series], keys: Sequence[str]) -> dict[str, Series]:
    if not keys:
        return dict(sorted(histories.items()))
    return {k: histories[k] for k in keys if k in histories}


# ---- rendering ---------------------------------------------------------------------------------


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """Values as a line of block characters: at most ``width``, each the mean of its share
    of the points (NaN left out; a share of only NaN is a space)."""
    n = len(values)
    if not n:
        return ""
    buckets: list[float] = []
    size = max(1, math.ceil(n / width))
    for start in range(0, n, size):
        chunk = [v for v in values[start : start + size] if v == v and not math.isinf(v)]
        buckets.append(sum(chunk) / len(chunk) if chunk else math.nan)
    finite = [b for b in buckets if b == b]
    if not finite:
        return " " * len(buckets)
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for b in buckets:
        if b != b:
            out.append(" ")
        elif span == 0:
            out.append(SPARKS[len(SPARKS) // 2])
        else:
            out.append(SPARKS[min(len(SPARKS) - 1, int((b - low) / span * len(SPARKS)))])
    return "".join(out)


def summary_lines(run: RunHistories) -> list[str]:
    """A header for the run, then one line per metric: sparkline, n, last, min, max, best."""
    state = " (running: the points so far)" if run.live else ""
    if run.gone:
        state = " (not recorded: the process recording it is gone; the points it flushed)"
    lines = [f"run {run.short_id}  {run.command}{state}"]
    if run.dropped:
        lines.append("  metric history dropped by git prov gc (its last values: git prov show)")
        return lines
    if not run.histories:
        lines.append("  no metric history")
        return lines
    width = max(len(k) for k in run.histories)
    for key, series in run.histories.items():
        summary = run.summaries.get(key) or summarize(series, goal_for(key))
        parts = [f"n={summary.get('n', len(series))}"]
        for name in ("last", "min", "max"):
            if name in summary:
                parts.append(f"{name}={format_scalar(summary[name])}")
        if "best" in summary:
            parts.append(
                f"best({summary.get('goal')})={format_scalar(summary['best'])}"
                f"@{format_scalar(summary.get('best_step', ''))}"
            )
        lines.append(f"  {key:<{width}}  {sparkline(series.values)}  {' '.join(parts)}")
    return lines


def _when(seconds: float) -> str:
    if seconds != seconds:
        return ""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _step(step: float) -> int | float:
    return int(step) if isinstance(step, int) or step.is_integer() else step


def points(run: RunHistories) -> Iterator[tuple[str, int | float, float, float]]:
    """Every point: (metric, step, time, value), metric by metric."""
    for key, series in run.histories.items():
        for step, when, value in zip(series.steps, series.times, series.values, strict=True):
            yield key, _step(step), when, value


def table_lines(run: RunHistories) -> list[str]:
    """Every point of the run as a table: one row per step, one column per metric (a
    step logged twice for a metric shows its last value)."""
    keys = list(run.histories)
    rows: dict[int | float, dict[str, float]] = {}
    for key, step, _, value in points(run):
        rows.setdefault(step, {})[key] = value
    header = ["step", *keys]
    body = [
        [format_scalar(step), *(format_scalar(row[k]) if k in row else "" for k in keys)]
        for step, row in sorted(rows.items())
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *body]
    ]


def to_csv(runs: Sequence[RunHistories]) -> str:
    """Every point of every run: ``run,metric,step,time,value`` (time in UTC ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "metric", "step", "time", "value"])
    for run in runs:
        for key, step, when, value in points(run):
            writer.writerow([run.id, spreadsheet_safe(key), step, _when(when), repr(value)])
    return out.getvalue()


def to_json(runs: Sequence[RunHistories]) -> list[dict[str, Any]]:
    """``[{"id", "command", "live", "gone", "metrics": {KEY: {"summary", "steps", "times",
    "values"}}}]`` — non-finite numbers as the strings nan, inf, -inf."""
    out = []
    for run in runs:
        metrics = {}
        for key, series in run.histories.items():
            metrics[key] = {
                "summary": dict(run.summaries.get(key) or summarize(series, goal_for(key))),
                "steps": [_step(s) for s in series.steps],
                "times": list(series.times),
                "values": list(series.values),
            }
        doc: dict[str, Any] = {
            "id": run.id, "command": run.command, "live": run.live, "gone": run.gone,
            "metrics": metrics,
        }  # fmt: skip
        if run.dropped:
            doc["history_dropped"] = True
        out.append(doc)
    return [to_json_safe(doc) for doc in out]


# ---- following a run ----------------------------------------------------------------------------


def follow(
    repo: GitRepo, spec: str, keys: Sequence[str], interval: float = 0.5
) -> Iterator[tuple[RunHistories, dict[str, int]]]:
    """Yield the run's histories each time they grow, with how many points of each metric
    were yielded before (as ``tail -f``): until its record is written, or the process
    recording it is gone. A recorded run is yielded once."""
    import time

    seen: dict[str, int] = {}
    while True:
        live = find_live(repo, spec)
        if live is None:
            run = load_histories(repo, spec, keys)
            if any(len(s) > seen.get(k, 0) for k, s in run.histories.items()):
                yield run, dict(seen)
            return
        histories = _only(read_live(live), keys)
        if any(len(s) > seen.get(k, 0) for k, s in histories.items()):
            run = RunHistories(live.id, live.command, True, histories, {})
            yield run, dict(seen)
            seen = {k: len(s) for k, s in histories.items()}
        if not live.alive:
            return
        time.sleep(interval)


def new_point_lines(run: RunHistories, seen: Mapping[str, int]) -> list[str]:
    """The points added since ``seen`` (per metric), one line each, in time order."""
    fresh: list[tuple[float, str]] = []
    for key, series in run.histories.items():
        for at in range(seen.get(key, 0), len(series)):
            when = series.times[at]
            fresh.append(
                (
                    when if when == when else 0.0,
                    f"{_when(when) or '-':24}  {key}  step {format_scalar(_step(series.steps[at]))}"
                    f"  {format_scalar(series.values[at])}",
                )
            )
    fresh.sort(key=lambda item: item[0])
    return [line for _, line in fresh]


def live_directory(repo: GitRepo) -> Path:
    from git_prov.live import live_root

    return live_root(repo.prov_dir)

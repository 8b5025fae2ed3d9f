"""The report's training curves: per metric, the histories of several runs, overlaid.

Recorded runs give their history blob (docs/format.md, "Metric histories"); runs still
going give their live directory (git_prov/live.py), so ``git prov report --serve`` shows a
running training's partial curve on every reload. Curves are thinned to at most
:data:`MAX_CURVE_POINTS` points (each bucket keeps its lowest and highest value, so spikes
stay visible); the numbers in ``git prov metrics`` are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from git_prov.errors import ProvError
from git_prov.model.history import Series
from git_prov.store.ledger import Ledger
from git_prov.store.repo import GitRepo

MAX_CURVE_RUNS = 40  # runs with histories offered (the newest)
MAX_CURVE_METRICS = 12  # metrics charted (the most common)
MAX_CURVE_POINTS = 400  # points drawn per run and metric
CHECKED_RUNS = 6  # curves shown before anyone chooses (the newest runs)


@dataclass(frozen=True)
class Curve:
    """One run's points of one metric, thinned: steps and values (finite only)."""

    steps: tuple[float, ...]
    values: tuple[float, ...]
    total: int  # points logged, before thinning


@dataclass(frozen=True)
class CurveRun:
    """A run that has histories: recorded, or still going (``live``)."""

    id: str
    command: str
    started: str
    live: bool
    curves: dict[str, Curve]


@dataclass
class Curves:
    """What the report's curves section shows: runs newest first, metrics charted."""

    runs: list[CurveRun] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The data of the section (``/curves.json`` of ``report --serve``)."""
        return {
            "metrics": self.metrics,
            "runs": [
                {
                    "id": run.id,
                    "command": run.command,
                    "started": run.started,
                    "live": run.live,
                    "metrics": {
                        k: {"steps": list(c.steps), "values": list(c.values), "points": c.total}
                        for k, c in run.curves.items()
                    },
                }
                for run in self.runs
            ],
        }


def thin(series: Series, limit: int = MAX_CURVE_POINTS) -> Curve:
    """At most ``limit`` finite points of a series, in order: all of them when few, else
    per bucket of consecutive points the lowest and the highest value. Without NaN or
    infinities (the usual case) the buckets are read with C-level ``min``/``max`` over
    array slices: a million points take milliseconds."""
    steps, values = series.steps, series.values
    n = len(values)
    if n > limit and math.isfinite(sum(values)):
        size = math.ceil(n / (limit // 2))
        kept_steps: list[float] = []
        kept_values: list[float] = []
        for start in range(0, n, size):
            chunk = values[start : start + size]
            low, high = chunk.index(min(chunk)), chunk.index(max(chunk))
            for at in sorted({low, high}):
                kept_steps.append(steps[start + at])
                kept_values.append(chunk[at])
        return Curve(tuple(kept_steps), tuple(kept_values), n)
    pairs = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    if len(pairs) > limit:
        size = math.ceil(len(pairs) / (limit // 2))
        kept: list[tuple[float, float]] = []
        for start in range(0, len(pairs), size):
            bucket = pairs[start : start + size]
            low = min(range(len(bucket)), key=lambda i: bucket[i][1])
            high = max(range(len(bucket)), key=lambda i: bucket[i][1])
            kept.extend(bucket[i] for i in sorted({low, high}))
        pairs = kept
    return Curve(tuple(s for s, _ in pairs), tuple(v for _, v in pairs), n)


def _curve_run(
    run_id: str, command: str, started: str, live: bool, histories: dict[str, Series]
) -> CurveRun:
    curves = {k: thin(s) for k, s in sorted(histories.items())}
    return CurveRun(run_id, command, started, live, {k: c for k, c in curves.items() if c.steps})


def collect_curves(
    repo: GitRepo, ledger: Ledger, records: Iterable[Any], *, live: bool = True
) -> Curves:
    """The curves of the newest runs with histories among ``records`` (RunRecords, newest
    first) and, with ``live``, of runs being recorded now."""
    from git_prov.store.drops import is_history_dropped

    out = Curves()
    if live:
        from git_prov.live import live_runs, read_live

        for running in reversed(live_runs(repo.prov_dir)):
            if running.alive and len(out.runs) < MAX_CURVE_RUNS:
                histories = read_live(running)
                if histories:
                    out.runs.append(
                        _curve_run(running.id, running.command, running.started, True, histories)
                    )
    for record in records:
        if len(out.runs) >= MAX_CURVE_RUNS:
            break
        if not record.history:
            continue
        if is_history_dropped(ledger, record.history):
            out.problems.append(f"run {record.id}: metric history dropped by git prov gc")
            continue
        try:
            histories = ledger.metric_history(record.history)
        except ProvError as exc:
            out.problems.append(f"run {record.id}: {exc.message}")
            continue
        out.runs.append(_curve_run(record.id, record.command, record.started, False, histories))
    counts: dict[str, int] = {}
    for run in out.runs:
        for key in run.curves:
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    out.metrics = ranked[:MAX_CURVE_METRICS]
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``..``high`` (about ``count`` of them)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9 and len(ticks) < 50:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def extent(values: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """The smallest and largest of several sequences (None when all are empty)."""
    found = [v for seq in values for v in seq]
    if not found:
        return None
    return min(found), max(found)

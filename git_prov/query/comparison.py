"""``git prov compare``: N runs side by side — the params that differ between them (those
every run shares are summarised once), their metrics, and the best value of each metric.
The two-run ``git prov diff`` (source, data, environment) is :mod:`git_prov.query.compare`;
both judge "the same value" with its :func:`~git_prov.query.compare.values_equal`.

Which value is best is never guessed silently. A metric is minimised or maximised when
the user says so (``--minimize NAME`` / ``--maximize NAME``), or when one of the words of
its name is in :data:`LOWER_IS_BETTER` or :data:`HIGHER_IS_BETTER` (``val_loss``: lower;
``top1_acc``: higher). Otherwise no best is marked, and the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from git_prov.errors import UsageProblem
from git_prov.model.history import MAXIMIZE_WORDS, MINIMIZE_WORDS, goal_for
from git_prov.model.values import Scalar, as_number
from git_prov.query.compare import values_equal

MINIMIZE, MAXIMIZE = "min", "max"
BY_NAME, BY_OPTION = "name", "option"

# Words of a metric name that say which way is better: one rule with the summaries of
# metric histories (model/history.py). A name with words from both sets gets no best.
LOWER_IS_BETTER = MINIMIZE_WORDS
HIGHER_IS_BETTER = MAXIMIZE_WORDS


def direction_by_name(name: str) -> str | None:
    """MINIMIZE or MAXIMIZE when the words of ``name`` say so unambiguously, else None
    ("top1_acc" → {"top1", "acc"}; "accuracy@5" → {"accuracy", "5"})."""
    return goal_for(name)


def directions(
    metrics: Iterable[str], maximize: Sequence[str] = (), minimize: Sequence[str] = ()
) -> dict[str, tuple[str | None, str | None]]:
    """For each metric: (MINIMIZE/MAXIMIZE/None, BY_OPTION/BY_NAME/None)."""
    both = set(maximize) & set(minimize)
    if both:
        raise UsageProblem(
            f"{', '.join(sorted(both))} is both --maximize and --minimize", "choose one"
        )
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in metrics:
        if name in maximize:
            out[name] = (MAXIMIZE, BY_OPTION)
        elif name in minimize:
            out[name] = (MINIMIZE, BY_OPTION)
        else:
            way = direction_by_name(name)
            out[name] = (way, BY_NAME if way else None)
    return out


@dataclass(frozen=True)
class ComparedRun:
    """One run of a comparison: the facts the table shows."""

    id: str
    short_id: str
    commit: str
    started: str
    status: str
    command: str
    params: Mapping[str, Scalar]
    metrics: Mapping[str, Scalar]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """Runs side by side. ``constant`` holds the params every run has with one value;
    ``varying`` the others (different values, or missing in some run). ``best`` maps each
    metric to the ids of the runs holding its best value (ties: all of them), among runs
    that ended ok; a metric with no known direction is absent from ``best``."""

    runs: tuple[ComparedRun, ...]
    constant: Mapping[str, Scalar]
    varying: tuple[str, ...]
    metrics: tuple[str, ...]
    direction: Mapping[str, tuple[str | None, str | None]]
    best: Mapping[str, tuple[str, ...]]

    @property
    def undecided(self) -> tuple[str, ...]:
        """Metrics no best is marked for: their direction is not known."""
        return tuple(m for m in self.metrics if self.direction[m][0] is None)

    def is_best(self, run_id: str, metric: str) -> bool:
        return run_id in self.best.get(metric, ())

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (docs/cli.md, ``compare --json``)."""
        from git_prov.model.values import to_json_safe

        return {
            "runs": [
                {
                    "id": r.id,
                    "short_id": r.short_id,
                    "commit": r.commit,
                    "started": r.started,
                    "status": r.status,
                    "command": r.command,
                    "params": to_json_safe(dict(r.params)),
                    "metrics": to_json_safe(dict(r.metrics)),
                    "tags": list(r.tags),
                    "best": [m for m in self.metrics if self.is_best(r.id, m)],
                }
                for r in self.runs
            ],
            "constant_params": to_json_safe(dict(self.constant)),
            "varying_params": list(self.varying),
            "metrics": {
                m: {
                    "best": self.direction[m][0],
                    "decided_by": self.direction[m][1],
                    "best_runs": list(self.best.get(m, ())),
                }
                for m in self.metrics
            },
        }


def split_params(
    params: Sequence[Mapping[str, Scalar]],
) -> tuple[dict[str, Scalar], list[str]]:
    """(params with one value in every run, sorted names of the others). With fewer
    than two runs nothing varies."""
    names = sorted({k for p in params for k in p})
    constant: dict[str, Scalar] = {}
    varying = []
    for name in names:
        first = params[0].get(name)
        if all(name in p and values_equal(p[name], first) for p in params):
            constant[name] = params[0][name]
        else:
            varying.append(name)
    return constant, varying


def _finite(value: Any) -> float | None:
    if isinstance(value, bool):
        return None  # true/false is no score
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


def compare_runs(
    runs: Sequence[ComparedRun],
    *,
    maximize: Sequence[str] = (),
    minimize: Sequence[str] = (),
) -> Comparison:
    """Compare ``runs`` (in the order given)."""
    constant, varying = split_params([r.params for r in runs])
    metric_names = sorted({k for r in runs for k in r.metrics})
    unknown = [m for m in (*maximize, *minimize) if m not in metric_names]
    if unknown and runs:
        raise UsageProblem(
            f"no compared run has a metric {unknown[0]!r}",
            f"metrics here: {', '.join(metric_names) or '(none)'}",
        )
    direction = directions(metric_names, maximize, minimize)
    best: dict[str, tuple[str, ...]] = {}
    for name in metric_names:
        way = direction[name][0]
        if way is None:
            continue
        scored = [
            (value, r.id)
            for r in runs
            if r.status == "ok" and (value := _finite(r.metrics.get(name))) is not None
        ]
        if not scored:
            continue
        top = (min if way == MINIMIZE else max)(v for v, _ in scored)
        best[name] = tuple(run_id for v, run_id in scored if v == top)
    return Comparison(tuple(runs), constant, tuple(varying), tuple(metric_names), direction, best)


def from_record(record: Any) -> ComparedRun:
    """A :class:`~git_prov.model.record.RunRecord`, or a
    :class:`~git_prov.query.find.FoundRun` (an index row), as a compared run."""
    return ComparedRun(
        id=record.id,
        short_id=record.short_id,
        commit=record.commit,
        started=record.started,
        status=record.status,
        command=record.command,
        params=dict(record.params),
        metrics=dict(record.metrics),
        tags=tuple(record.tags),
    )


# An index row has the same fields (as properties), so one builder serves both.
from_found = from_record

"""Metric histories: every value a run logged, with its step and time, as packed columns.

A run's histories are stored once, as one blob (``metrics/<ab>/<rest>`` under
``refs/prov/objects``, named by the record's ``history`` key), and summarised in the
record (``series``: last, min, max, best and the step of the best per metric) so that
queries never read the blob. The exact bytes are in docs/format.md ("Metric histories").

Blob layout::

    git-prov history 1\\n
    {"series":[{"key":"loss","n":3,"step":"i8"},…]}\\n      (canonical JSON, keys sorted)
    then, for each series in that order: n steps (int64, or float64 when "step" is "f8"),
    n times (float64, seconds since the Unix epoch), n values (float64), little-endian.

Series are sorted by key; points keep the order they were logged in (steps may repeat or
go back: a resumed training logs them so). The same points always give the same bytes,
so the blob is stored once however many runs log them.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from git_prov.model.values import Scalar, canonical_json

MAGIC = b"git-prov history 1\n"
HISTORY_VERSION = 1
# How "best" is decided (docs/format.md), here and by `git prov compare`: the goal of a
# metric is what the run said (``goal=``/``--goal``), else a word of its name (split at
# anything not a letter or digit, lower-cased) from one of these lists; a name matching
# neither, or both, has no goal and no "best".
MINIMIZE_WORDS = frozenset(
    (
        "loss", "error", "err", "mse", "mae", "rmse", "mape", "nll", "perplexity", "ppl",
        "wer", "cer", "regret", "latency", "cost",
    )
)  # fmt: skip
MAXIMIZE_WORDS = frozenset(
    (
        "acc", "accuracy", "f1", "auc", "auroc", "precision", "recall", "r2", "bleu",
        "rouge", "iou", "map", "dice", "reward", "top1", "top5",
    )
)  # fmt: skip
GOALS = ("min", "max")
SUMMARY_FIELDS = ("n", "last", "last_step", "min", "max", "best", "best_step")
_WORD = re.compile(r"[a-z0-9]+")
_LITTLE = sys.byteorder == "little"
_STEP_TYPES = {"i8": "q", "f8": "d"}


@dataclass
class Series:
    """The points of one metric: three columns of equal length (steps, times, values).
    ``steps`` is an ``array('q')`` (integer steps) or an ``array('d')``."""

    steps: array[Any] = field(default_factory=lambda: array("d"))
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        return len(self.values)

    def extend(self, other: Series) -> None:
        """Append ``other``'s points after these."""
        if self.steps.typecode != other.steps.typecode:
            self.steps = array("d", self.steps)
            self.steps.extend(array("d", other.steps))
        else:
            self.steps.extend(other.steps)
        self.times.extend(other.times)
        self.values.extend(other.values)

    def append(self, step: float, time: float, value: float) -> None:
        self.steps.append(step)
        self.times.append(time)
        self.values.append(value)


def goal_for(name: str, explicit: Mapping[str, str] | None = None) -> str | None:
    """``min``, ``max`` or None (no best): what is better for metric ``name``."""
    if explicit and name in explicit:
        return explicit[name]
    words = set(_WORD.findall(name.lower()))
    low, high = bool(words & MINIMIZE_WORDS), bool(words & MAXIMIZE_WORDS)
    if low == high:
        return None
    return "min" if low else "max"


def _step_out(step: float) -> int | float:
    return int(step) if isinstance(step, int) or step.is_integer() else step


def summarize(series: Series, goal: str | None) -> dict[str, Scalar]:
    """The record's summary of one series: ``n``, ``last``, ``last_step``, ``min``,
    ``max`` (NaN values left out of both), and with a goal ``goal``, ``best``,
    ``best_step`` (the first step where the best value was logged)."""
    n = len(series)
    out: dict[str, Scalar] = {"n": n}
    if not n:
        return out
    values = series.values
    out["last"] = values[-1]
    out["last_step"] = _step_out(series.steps[-1])
    finite = [v for v in values if v == v] if math.isnan(min(values) + max(values)) else values
    if len(finite):
        low, high = min(finite), max(finite)
        out["min"], out["max"] = low, high
        if goal in GOALS:
            best = low if goal == "min" else high
            out["goal"], out["best"] = goal, best
            out["best_step"] = _step_out(series.steps[values.index(best)])
    return out


def _column(data: array[Any]) -> bytes:
    if _LITTLE:
        return data.tobytes()
    swapped = array(data.typecode, data)
    swapped.byteswap()
    return swapped.tobytes()


def _integral(steps: array[Any]) -> bool:
    """Whether every step is an integer a 64-bit column holds."""
    if steps.typecode == "q" or not steps:
        return True
    if min(steps) < -(2.0**63) or max(steps) >= 2.0**63:
        return False
    return all(s.is_integer() for s in steps)


def encode_history(histories: Mapping[str, Series], run: str | None = None) -> bytes:
    """The blob of a run's histories (docs/format.md); the same points give the same bytes.
    ``run``: a run id put in the header (``"run"``), which makes the bytes that run's own —
    for a run whose points give the bytes of a history ``git prov gc`` dropped, which a
    merge would otherwise drop from its record too."""
    header: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for key in sorted(histories):
        series = histories[key]
        n = len(series)
        if not (len(series.steps) == len(series.times) == n):
            raise ValueError(f"series {key!r} has columns of different lengths")
        integral = _integral(series.steps)
        header.append({"key": key, "n": n, "step": "i8" if integral else "f8"})
        steps = series.steps
        if steps.typecode != ("q" if integral else "d"):
            steps = array("q", map(int, steps)) if integral else array("d", steps)
        parts += [_column(steps), _column(series.times), _column(series.values)]
    document: dict[str, Any] = {"series": header}
    if run is not None:
        document["run"] = run
    head = canonical_json(document).encode("ascii")
    return MAGIC + head + b"\n" + b"".join(parts)


def decode_history(data: bytes) -> dict[str, Series]:
    """The histories of a blob; ``ValueError`` saying why when it is not one."""
    if not data.startswith(MAGIC):
        raise ValueError("not a git-prov metric history (no 'git-prov history 1' header)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ValueError("metric history header is not terminated")
    try:
        header = json.loads(data[len(MAGIC) : end])
    except (ValueError, RecursionError):
        raise ValueError("metric history header is not JSON") from None
    entries = header.get("series") if isinstance(header, dict) else None
    if not isinstance(entries, list):
        raise ValueError("metric history header has no series list")
    at = end + 1
    out: dict[str, Series] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("metric history series entry is not an object")
        key, n, kind = entry.get("key"), entry.get("n"), entry.get("step")
        if not isinstance(key, str) or type(n) is not int or n < 0 or kind not in _STEP_TYPES:
            raise ValueError("metric history series entry is malformed")
        if at + 24 * n > len(data):
            raise ValueError(f"metric history of {key!r} is cut short")
        steps = _read(data, at, n, _STEP_TYPES[kind])
        times = _read(data, at + 8 * n, n, "d")
        values = _read(data, at + 16 * n, n, "d")
        at += 24 * n
        out[key] = Series(steps, times, values)
    if at != len(data):
        raise ValueError("metric history has trailing bytes")
    return out


def _read(data: bytes, at: int, n: int, typecode: str) -> array[Any]:
    column = array(typecode)
    column.frombytes(data[at : at + 8 * n])
    if not _LITTLE:
        column.byteswap()
    return column


def merge_histories(parts: Iterable[Mapping[str, Series]]) -> dict[str, Series]:
    """Histories one after the other (per key, points in the order of ``parts``)."""
    out: dict[str, Series] = {}
    for part in parts:
        for key, series in part.items():
            if key in out:
                out[key].extend(series)
            else:
                out[key] = Series(
                    array(series.steps.typecode, series.steps),
                    array("d", series.times),
                    array("d", series.values),
                )
    return out


def valid_summaries(value: Any) -> bool:
    """Whether ``value`` is a record's ``series``: an object of objects of scalars."""
    return isinstance(value, dict) and all(
        isinstance(k, str)
        and isinstance(v, dict)
        and all(isinstance(x, str | int | float | bool) for x in v.values())
        for k, v in value.items()
    )

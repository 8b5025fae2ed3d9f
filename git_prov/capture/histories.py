"""Metric histories from the files training code already writes.

``--metrics-file`` names a file of final values (JSON, TOML, YAML: capture/values_files.py)
or a history, told apart by its name:

* ``*.jsonl`` / ``*.ndjson`` — JSON lines, one object per step: numeric members (nested
  objects flattened to ``a.b``) are metrics; ``step`` is the step (else the line's number,
  from 0), ``time`` or ``timestamp`` the time (seconds since the epoch; milliseconds when
  over 10¹¹, as DVCLive writes them);
* ``*.csv`` / ``*.tsv`` — a header row, then one row per step: a ``step`` column (else the
  row's number, from 0), ``time``/``timestamp`` as above, every other numeric column a
  metric (empty cells: no point);
* a directory holding ``dvclive/metrics.json`` or ``plots/metrics/`` — DVCLive's output:
  ``plots/metrics/**/<name>.tsv`` are the histories (``train/loss.tsv`` is metric
  ``train.loss``, as ``metrics.json``'s nesting names it), ``metrics.json`` the final
  values;
* a TensorBoard event file (``*tfevents*``) or a directory of them — the scalars, read
  with the ``tensorboard`` package (the optional ``tensorboard`` extra).

Times not in a file are not known: they are stored as NaN. The last value of each history
is also the run's metric (a final-values file such as DVCLive's ``metrics.json`` wins).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from git_prov.errors import BadPath, UsageProblem
from git_prov.model.history import Series
from git_prov.model.values import Scalar, flatten

MAX_HISTORY_FILE = 1 << 30  # a history file past this is refused unread
STEP_COLUMNS = ("step",)
TIME_COLUMNS = ("time", "timestamp", "wall_time")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TABLE_SUFFIXES = (".csv", ".tsv")
_MILLISECONDS = 1e11  # a timestamp over this is in milliseconds (year 5138 in seconds)
NAN = math.nan


@dataclass
class HistoryFile:
    """What a history file holds: per-metric points, and final values it states."""

    histories: dict[str, Series] = field(default_factory=dict)
    values: dict[str, Scalar] = field(default_factory=dict)


def is_history_path(path: Path) -> bool:
    """Whether ``--metrics-file PATH`` names a history rather than a file of values."""
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES + TABLE_SUFFIXES) or "tfevents" in name:
        return True
    return path.is_dir()


def read_history_path(path: Path, *, partial: bool = False) -> HistoryFile:
    """Read a history file or directory (see the module docstring). ``partial``: the file
    may still be being written — a last line without its newline is left for later."""
    if path.is_dir():
        if (path / "metrics.json").is_file() or (path / "plots" / "metrics").is_dir():
            return read_dvclive(path, partial=partial)
        if (path / "dvclive").is_dir():
            return read_dvclive(path / "dvclive", partial=partial)
        if any(_event_files(path)):
            return read_tensorboard(path)
        raise UsageProblem(
            f"metrics directory {path} is neither DVCLive's output nor TensorBoard logs",
            "name a DVCLive directory (metrics.json, plots/metrics/), a TensorBoard log "
            "directory, or a metrics file",
        )
    name = path.name.lower()
    if "tfevents" in name:
        return read_tensorboard(path)
    text = _read_text(path, partial)
    if name.endswith(JSONL_SUFFIXES):
        return read_json_lines(text, path)
    return read_table(text, path, "\t" if name.endswith(".tsv") else ",")


def _read_text(path: Path, partial: bool = False) -> str:
    """The file's text; ``partial``: without a last line still being written."""
    try:
        if path.stat().st_size > MAX_HISTORY_FILE:
            raise UsageProblem(f"metrics file {path} is larger than 1 GiB")
        text = path.read_bytes().decode("utf-8", "replace")
        if partial and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        return text
    except FileNotFoundError:
        raise BadPath(f"metrics file {path} does not exist") from None
    except OSError as exc:
        raise BadPath(f"cannot read metrics file {path}: {exc.strerror}") from None


def _seconds(value: float) -> float:
    return value / 1000.0 if abs(value) > _MILLISECONDS else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.copysign(math.inf, value)
    return None


def _cell(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class _Builder:
    def __init__(self) -> None:
        self.out: dict[str, Series] = {}

    def add(self, key: str, step: float, time: float, value: float) -> None:
        series = self.out.get(key)
        if series is None:
            series = self.out[key] = Series()
        series.append(step, time, value)


def read_json_lines(text: str, path: Path) -> HistoryFile:
    """JSON lines: one object per step (see the module docstring)."""
    built = _Builder()
    for number, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            raise UsageProblem(f"metrics file {path}: line {number + 1} is not JSON") from None
        if not isinstance(doc, dict):
            raise UsageProblem(f"metrics file {path}: line {number + 1} is not a JSON object")
        flat = flatten(doc)
        step = _number(flat.pop("step", None))
        when = NAN
        for name in TIME_COLUMNS:
            found = _number(flat.pop(name, None))
            if found is not None:
                when = _seconds(found)
                break
        at = float(number) if step is None else step
        for key, value in flat.items():
            numeric = _number(value)
            if numeric is not None:
                built.add(key, at, when, numeric)
    return HistoryFile(built.out)


def read_table(text: str, path: Path, delimiter: str) -> HistoryFile:
    """CSV or TSV with a header row (see the module docstring)."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        return HistoryFile()
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    step_at = next((lowered.index(c) for c in STEP_COLUMNS if c in lowered), None)
    time_at = next((lowered.index(c) for c in TIME_COLUMNS if c in lowered), None)
    metrics = [(i, n) for i, n in enumerate(names) if i not in (step_at, time_at) and n]
    built = _Builder()
    for number, row in enumerate(rows):
        if not row:
            continue
        step = _cell(row[step_at]) if step_at is not None and step_at < len(row) else None
        if step_at is not None and step is None:
            raise UsageProblem(f"metrics file {path}: row {number + 2} has no step")
        found = _cell(row[time_at]) if time_at is not None and time_at < len(row) else None
        when = _seconds(found) if found is not None else NAN
        at = float(number) if step is None else step
        for i, name in metrics:
            if i < len(row):
                value = _cell(row[i])
                if value is not None:
                    built.add(name, at, when, value)
    return HistoryFile(built.out)


def read_dvclive(directory: Path, *, partial: bool = False) -> HistoryFile:
    """DVCLive's output directory: plots/metrics/**/*.tsv and metrics.json."""
    out = HistoryFile()
    plots = directory / "plots" / "metrics"
    if plots.is_dir():
        for root, dirs, files in os.walk(plots):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".tsv"):
                    continue
                path = Path(root) / name
                # train/loss.tsv is metric train.loss: the key metrics.json's nesting gives.
                metric = ".".join(path.relative_to(plots).with_suffix("").parts)
                table = read_table(_read_text(path, partial), path, "\t")
                # DVCLive's column is the metric's last path part; take it whatever its name.
                for series in table.histories.values():
                    out.histories[metric] = series
                    break
    summary = directory / "metrics.json"
    if summary.is_file():
        from git_prov.capture.values_files import read_values_file

        values = read_values_file(summary, "metrics")
        values.pop("step", None)
        out.values = values
    return out


def _event_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if "tfevents" in name:
                yield Path(root) / name


def read_tensorboard(path: Path) -> HistoryFile:
    """The scalars of TensorBoard event files (the ``tensorboard`` package reads them).
    In a directory of runs, a file below ``sub/`` gives metrics ``sub/<tag>``."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            EventFileLoader,
        )
        from tensorboard.util import tensor_util  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise UsageProblem(
            f"metrics file {path} is a TensorBoard log, and tensorboard is not installed",
            "pip install 'git-prov[tensorboard]' (or tensorboard)",
        ) from None
    built = _Builder()
    base = path if path.is_dir() else path.parent
    for events in _event_files(path):
        prefix = events.parent.relative_to(base).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        for event in EventFileLoader(str(events)).Load():
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = float(value.simple_value)
                elif kind == "tensor":
                    array = tensor_util.make_ndarray(value.tensor)
                    if array.size != 1 or array.dtype.kind not in "fiu":
                        continue  # images, histograms, text: not a scalar
                    number = float(array.reshape(()))
                else:
                    continue
                built.add(prefix + value.tag, float(event.step), float(event.wall_time), number)
    return HistoryFile(built.out)

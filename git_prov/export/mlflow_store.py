"""An MLflow file store (``mlruns/``) of recorded runs, laid out exactly as MLflow's
``FileStore`` writes it, so ``mlflow ui --backend-store-uri ./mlruns`` and
``MlflowClient("file:./mlruns")`` show the runs::

    mlruns/
      .trash/
      0/meta.yaml                          the "Default" experiment MLflow expects
      <experiment id>/meta.yaml            name, artifact_location, lifecycle_stage, times
      <experiment id>/<run uuid>/
        meta.yaml                          run_id, run_name, status, start/end time, user …
        params/<name>                      the value, no newline
        metrics/<name>                     "<timestamp ms> <value> <step>\\n"
        tags/<name>                        the value, no newline
        artifacts/git-prov/                the record (JSON), manifests (TOML), logs

No MLflow code is needed to write it (nor PyYAML: the YAML is written by hand, every string
double-quoted). The run's directory name is a UUID derived from the git-prov run id, so
exporting a run again replaces its directory instead of adding a copy; the experiment is
found by name (default: the repository's directory name) or created with an id derived
from the name. Recent MLflow versions keep the file store in maintenance mode: set
``MLFLOW_ALLOW_FILE_STORE=true`` to read it, or migrate it with ``mlflow migrate-filestore``
(see ``docs/integrations.md``).

Mapping: params → ``params/`` (text); a metric with a history → ``metrics/`` with every
point (its time, value and step); other numeric metrics (and booleans, as 1/0) →
``metrics/`` with step 0 at the run's end time; other metrics → tags
``git-prov.metric.<name>``; status ok/failed/killed → FINISHED/FAILED/KILLED; the command
→ ``mlflow.source.name``; the commit → ``mlflow.source.git.commit``; the message →
``mlflow.note.content`` (the run description in the UI); labels → ``git-prov.tags``.
Names MLflow would refuse (characters other than letters, digits, ``_ - . / space``,
or paths that are not normalised) have those characters replaced by ``_``.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from git_prov.errors import UsageProblem
from git_prov.export import ExportRun
from git_prov.model.history import Series
from git_prov.model.record import STATUS_FAILED, STATUS_KILLED, STATUS_OK, RunRecord
from git_prov.model.values import as_number, format_scalar

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
TRASH = ".trash"
META = "meta.yaml"
SOURCE_TYPE_LOCAL = 4  # mlflow.entities.SourceType.LOCAL
RUN_STATUS = {STATUS_OK: 3, STATUS_FAILED: 4, STATUS_KILLED: 5}  # FINISHED, FAILED, KILLED
MAX_PARAM_VALUE = 6000  # MLflow's limits (mlflow.utils.validation)
MAX_TAG_VALUE = 8000
MAX_KEY = 250
# Run directories are uuid5(this, run id): stable across exports and machines.
RUN_NAMESPACE = uuid.UUID("0b7a6c5e-5d0c-4b53-9d5e-6a1f3c2e9b41")
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")  # MLflow's rule, without ":" (refused on Windows)


@dataclass(frozen=True)
class MlrunsWritten:
    """Where runs went: the experiment, run directories by git-prov run id, and notes
    about names that had to change."""

    experiment_id: str
    runs: dict[str, Path]
    notes: tuple[str, ...] = ()


def write_mlruns(runs: Sequence[ExportRun], root: Path, *, experiment: str) -> MlrunsWritten:
    """Write ``runs`` into the MLflow file store at ``root`` (created when missing) under
    the experiment named ``experiment``."""
    notes: list[str] = []
    try:
        _prepare_root(root)
        experiment_id = _experiment(root, experiment)
        written = {}
        for run in runs:
            written[run.record.id] = _write_run(root, experiment_id, run, notes)
    except OSError as exc:
        raise UsageProblem(f"cannot write the MLflow store {root}: {exc.strerror}") from None
    return MlrunsWritten(experiment_id, written, tuple(notes))


def run_uuid(run_id: str) -> str:
    """The MLflow run id (32 hex digits) a git-prov run is exported under."""
    return uuid.uuid5(RUN_NAMESPACE, run_id).hex


# ---- store and experiment --------------------------------------------------------------------


def _prepare_root(root: Path) -> None:
    if root.exists():
        if not root.is_dir():
            raise UsageProblem(f"{root} exists and is not a directory")
        entries = [p for p in root.iterdir()]
        looks_like_store = (root / TRASH).is_dir() or any((p / META).is_file() for p in entries)
        if entries and not looks_like_store:
            raise UsageProblem(
                f"{root} is not empty and is not an MLflow file store",
                "name a new directory (or an existing mlruns) with -o",
            )
    else:
        root.mkdir(parents=True)
    (root / TRASH).mkdir(exist_ok=True)
    if not (root / DEFAULT_EXPERIMENT_ID).exists() and not _experiments(root):
        _write_experiment(root, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME)


def _experiments(root: Path) -> dict[str, str]:
    """Experiment name → id of the active experiments in the store."""
    found: dict[str, str] = {}
    for child in sorted(root.iterdir()):
        if child.name == TRASH or not (child / META).is_file():
            continue
        name = _yaml_value((child / META).read_text(encoding="utf-8"), "name")
        if name is not None:
            found.setdefault(name, child.name)
    return found


def _experiment(root: Path, name: str) -> str:
    """The id of the experiment called ``name``, created when there is none."""
    existing = _experiments(root).get(name)
    if existing is not None:
        return existing
    number = int.from_bytes(hashlib.sha256(name.encode()).digest()[:7], "big")
    while (root / str(number)).exists() or (root / TRASH / str(number)).exists():
        number += 1
    _write_experiment(root, str(number), name)
    return str(number)


def _write_experiment(root: Path, experiment_id: str, name: str) -> None:
    directory = root / experiment_id
    directory.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    _write_yaml(
        directory / META,
        {
            "artifact_location": directory.resolve().as_uri(),
            "creation_time": now,
            "experiment_id": experiment_id,
            "last_update_time": now,
            "lifecycle_stage": "active",
            "name": name,
        },
    )


# ---- runs ------------------------------------------------------------------------------------


def _write_run(root: Path, experiment_id: str, run: ExportRun, notes: list[str]) -> Path:
    r = run.record
    ident = run_uuid(r.id)
    directory = root / experiment_id / ident
    if directory.exists():
        shutil.rmtree(directory)
    for sub in ("params", "metrics", "tags", "artifacts"):
        (directory / sub).mkdir(parents=True)
    start, end = _millis(r.started), _millis(r.ended)
    _write_yaml(
        directory / META,
        {
            "artifact_uri": (directory / "artifacts").resolve().as_uri(),
            "end_time": end,
            "entry_point_name": "",
            "experiment_id": experiment_id,
            "lifecycle_stage": "active",
            "run_id": ident,
            "run_name": r.short_id,
            "run_uuid": ident,  # the name MLflow 1.x reads
            "source_name": "",
            "source_type": SOURCE_TYPE_LOCAL,
            "source_version": "",
            "start_time": start,
            "status": RUN_STATUS.get(r.status, 4),
            "tags": [],
            "user_id": r.user or "unknown",
        },
    )
    params = {k: _text(v)[:MAX_PARAM_VALUE] for k, v in r.params.items()}
    metrics: dict[str, str] = {}
    tags = _tags(r)
    for name, value in r.metrics.items():
        number = as_number(value)
        if number is None:
            tags[f"git-prov.metric.{name}"] = _text(value)
            notes.append(f"run {r.short_id}: metric {name} is not a number; kept as a tag")
        elif name in run.histories and len(run.histories[name]):
            metrics[name] = _history_lines(run.histories[name], end)
        else:
            metrics[name] = f"{end} {number!r} 0\n"
    _write_values(directory / "params", params, r, "param", notes)
    _write_values(directory / "metrics", metrics, r, "metric", notes)
    _write_values(
        directory / "tags", {k: v[:MAX_TAG_VALUE] for k, v in tags.items()}, r, "tag", notes
    )
    _write_artifacts(directory / "artifacts" / "git-prov", run)
    return directory


def _history_lines(series: Series, end: int) -> str:
    """Every point of a metric's history as MLflow's lines: its time in milliseconds (the
    run's end when not known), the value, the step (MLflow's steps are integers: a
    fractional one is rounded down)."""
    lines = []
    for step, moment, value in zip(series.steps, series.times, series.values, strict=True):
        millis = int(moment * 1000) if moment == moment else end
        lines.append(f"{millis} {value!r} {math.floor(step)}\n")
    return "".join(lines)


def _tags(r: RunRecord) -> dict[str, str]:
    tags = {
        "mlflow.runName": r.short_id,
        "mlflow.user": r.user,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": r.command,
        "mlflow.source.git.commit": r.commit,
        "mlflow.source.git.branch": r.branch,
        "mlflow.note.content": r.message,
        "git-prov.run": r.id,
        "git-prov.status": r.status,
        "git-prov.exit_code": None if r.exit_code is None else str(r.exit_code),
        "git-prov.signal": None if r.signal is None else str(r.signal),
        "git-prov.snapshot": r.snapshot,
        "git-prov.host": r.host,
        "git-prov.origin": r.origin,
        "git-prov.tags": ", ".join(r.tags) or None,
        "git-prov.inputs": r.inputs,
        "git-prov.outputs": r.outputs,
        "git-prov.env": r.env,
        "git-prov.tool": r.tool,
    }
    return {k: v for k, v in tags.items() if v is not None}


def _write_values(
    directory: Path, values: Mapping[str, str], r: RunRecord, what: str, notes: list[str]
) -> None:
    """One file per value, named by the (MLflow-safe) key; no trailing newline except
    what the value carries (metric lines end with one, as MLflow writes them)."""
    used: set[str] = set()
    for name in sorted(values):
        key = safe_key(name)
        if key in used:
            notes.append(f"run {r.short_id}: {what} {name!r} clashes with another as {key!r}")
            continue
        if key != name:
            notes.append(f"run {r.short_id}: {what} {name!r} written as {key!r}")
        used.add(key)
        target = directory / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(values[name], encoding="utf-8", newline="")


def safe_key(name: str) -> str:
    """``name`` as MLflow accepts param, metric and tag names: letters, digits and
    ``_ - . / space`` only, a normalised relative path (no ``..``, ``//``, leading ``/``)."""
    key = _BAD_KEY_CHARS.sub("_", name)[:MAX_KEY] or "_"
    if posixpath.normpath(key) != key or key.startswith(("/", "..")) or key == ".":
        key = key.replace("/", "_")
        if key.startswith(".") or key == "":
            key = "_" + key
    return key


def _write_artifacts(directory: Path, run: ExportRun) -> None:
    r = run.record
    directory.mkdir(parents=True)
    record = json.dumps(r.to_json_dict(), indent=2, sort_keys=True) + "\n"
    (directory / "record.json").write_text(record, encoding="utf-8")
    for oid, name in (
        (r.inputs, "inputs.toml"),
        (r.outputs, "outputs.toml"),
        (r.env, "environment.toml"),
        (r.stdout, "stdout.log"),
        (r.stderr, "stderr.log"),
    ):
        if oid and oid in run.objects:
            (directory / name).write_bytes(run.objects[oid])


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else format_scalar(value)


def _millis(stamp: str) -> int:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1000)


# ---- YAML without PyYAML ---------------------------------------------------------------------


def _write_yaml(path: Path, mapping: Mapping[str, Any]) -> None:
    """A flat YAML mapping, keys sorted (as MLflow's ``yaml.safe_dump`` writes them);
    strings double-quoted with JSON escapes, which YAML reads the same way."""
    lines = []
    for key in sorted(mapping):
        value = mapping[key]
        if value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, list) and not value:
            text = "[]"
        else:
            text = json.dumps(str(value))
        lines.append(f"{key}: {text}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _yaml_value(text: str, key: str) -> str | None:
    """A top-level string value of a flat YAML mapping (MLflow's meta.yaml), read with
    PyYAML when it is installed and by a line match otherwise."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        value = doc.get(key) if isinstance(doc, dict) else None
        return None if value is None else str(value)
    for line in text.splitlines():
        name, sep, raw = line.partition(":")
        if sep and name == key:
            raw = raw.strip()
            if raw.startswith('"'):
                try:
                    return str(json.loads(raw))
                except ValueError:
                    return None
            if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
                return raw[1:-1].replace("''", "'")
            return raw
    return None

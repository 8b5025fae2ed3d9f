"""Exporting runs to the formats other tools read (``git prov export``).

Each format is a module with one function taking the loaded runs and returning a
document (``prov_json``, ``csv_table``) or writing a directory (``ro_crate``,
``mlflow_store``). :func:`export` resolves run specs, loads the records with their
manifests and dispatches; nothing here prints. See ``docs/integrations.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from git_prov.errors import NotFound, ProvError, UsageProblem
from git_prov.model.history import Series
from git_prov.model.logs import log_bytes
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.record import RunRecord
from git_prov.store.drops import is_history_dropped
from git_prov.store.ledger import Ledger, LedgerScan, LocatedRun
from git_prov.store.repo import GitRepo

FORMAT_PROV_JSON = "prov-json"
FORMAT_RO_CRATE = "ro-crate"
FORMAT_MLFLOW = "mlflow"
FORMAT_CSV = "csv"
FORMATS = (FORMAT_PROV_JSON, FORMAT_RO_CRATE, FORMAT_MLFLOW, FORMAT_CSV)
# Formats that write a directory, and the directory they write when none is named.
DIRECTORY_FORMATS = {FORMAT_RO_CRATE: "git-prov-crate", FORMAT_MLFLOW: "mlruns"}


@dataclass(frozen=True)
class ExportRun:
    """A run with everything an exporter may need, loaded from the ledger."""

    record: RunRecord
    shown_on: tuple[str, ...]
    inputs: DataManifest | None
    outputs: DataManifest | None
    environment: EnvironmentManifest | None
    logs: dict[str, bytes] = field(default_factory=dict)
    # Stored objects by id (manifests as TOML, logs): what directory formats copy.
    objects: dict[str, bytes] = field(default_factory=dict)
    # Metric histories (model/history.py): every logged point, per metric.
    histories: dict[str, Series] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the document (for stdout) or the path, and how many runs."""

    format: str
    runs: int
    path: Path | None = None
    text: str | None = None
    notes: tuple[str, ...] = ()


def select_runs(
    ledger: Ledger, specs: Sequence[str], *, all_runs: bool = False, scan: LedgerScan | None = None
) -> list[LocatedRun]:
    """The runs ``specs`` name (run ids, short ids, prefixes, or commits — every run on
    them), oldest first and each once; with ``all_runs`` every live run."""
    from git_prov import history

    if all_runs:
        return (scan or ledger.scan()).live_runs()
    if not specs:
        raise UsageProblem("no runs named", "give run ids or commits, or --all")
    chosen: dict[str, LocatedRun] = {}
    for spec in specs:
        try:
            runs = [ledger.resolve_run(spec, scan)]
        except NotFound as not_a_run:
            commit = history.resolve_commit(ledger.repo, spec)
            if commit is None:
                raise not_a_run from None
            runs = ledger.runs_on(commit, scan)
            if not runs:
                raise NotFound(f"no runs recorded on {spec} ({commit[:12]})") from None
        for run in runs:  # (neither lookup returns a deleted run)
            chosen.setdefault(run.id, run)
    return [chosen[k] for k in sorted(chosen)]


def load_runs(
    ledger: Ledger, located: Sequence[LocatedRun], notes: list[str] | None = None
) -> list[ExportRun]:
    """Load the manifests and logs of ``located`` runs (each stored object read once).

    An object missing from this clone (provenance not fetched yet, a log dropped by
    ``git prov gc``) is left out and described in ``notes``; the run is still exported.
    """
    objects: dict[str, bytes] = {}

    def read(oid: str | None, what: str, run: RunRecord) -> bytes | None:
        if not oid:
            return None
        if oid not in objects:
            try:
                objects[oid] = ledger.read_object(oid, what)
            except NotFound:
                if notes is not None:
                    notes.append(f"run {run.short_id}: its {what} {oid[:12]} is not here")
                return None
        return objects[oid]

    out = []
    for run in located:
        r = run.record
        inputs = outputs = environment = None
        if read(r.inputs, "inputs manifest", r) is not None:
            inputs = ledger.data_manifest(r.inputs or "")
        if read(r.outputs, "outputs manifest", r) is not None:
            outputs = ledger.data_manifest(r.outputs or "")
        if read(r.env, "environment manifest", r) is not None:
            environment = ledger.env_manifest(r.env or "")
        logs = {}
        for name, oid in (("stdout", r.stdout), ("stderr", r.stderr)):
            data = read(oid, f"{name} log", r)
            if data is not None:
                logs[name] = log_bytes(data, r.id)
        mine = {
            oid: objects[oid]
            for oid in (r.inputs, r.outputs, r.env, r.stdout, r.stderr)
            if oid and oid in objects
        }
        histories: dict[str, Series] = {}
        if r.history and is_history_dropped(ledger, r.history):
            if notes is not None:
                notes.append(f"run {r.short_id}: its metric history was dropped by git prov gc")
        elif r.history:
            try:
                histories = ledger.metric_history(r.history)
            except ProvError as exc:
                if notes is not None:
                    notes.append(f"run {r.short_id}: its metric history: {exc.message}")
        out.append(ExportRun(r, run.shown_on, inputs, outputs, environment, logs, mine, histories))
    return out


def export(
    repo: GitRepo,
    specs: Sequence[str],
    fmt: str,
    destination: Path | None = None,
    *,
    all_runs: bool = False,
    experiment: str | None = None,
    license: str | None = None,
    publisher: str | None = None,
) -> ExportResult:
    """Export the runs ``specs`` name as ``fmt`` (one of :data:`FORMATS`).

    ``prov-json`` and ``csv`` return their document in :attr:`ExportResult.text` when
    ``destination`` is None, else write it there; ``ro-crate`` and ``mlflow`` write a
    directory (default: :data:`DIRECTORY_FORMATS`, relative to the current directory).
    ``experiment`` names the MLflow experiment (default: the repository's directory name);
    ``license`` is the RO-Crate's license (a URL or SPDX id; default: "not specified"),
    ``publisher`` the URL of the organisation that publishes it (default: none said).
    """
    if fmt not in FORMATS:
        raise UsageProblem(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    ledger = Ledger(repo)
    notes: list[str] = []
    runs = load_runs(ledger, select_runs(ledger, specs, all_runs=all_runs), notes)
    if not runs:
        raise NotFound("there are no runs to export", "record one with `git prov run -- CMD`")
    if fmt in DIRECTORY_FORMATS:
        target = destination or Path(DIRECTORY_FORMATS[fmt])
        if fmt == FORMAT_RO_CRATE:
            from git_prov.export.ro_crate import repository_url, write_crate

            if publisher is not None and not re.match(r"^https?://[^/\s]+", publisher):
                raise UsageProblem(
                    f"--publisher {publisher!r} is not an http(s) URL",
                    "give the organisation's web address or ROR id (https://ror.org/…)",
                )
            write_crate(
                runs,
                target,
                name=repo.root.name,
                license=license,
                code_url=repository_url(_remote_url(repo)),
                publisher=publisher,
            )
            return ExportResult(fmt, len(runs), path=target, notes=tuple(notes))
        from git_prov.export.mlflow_store import write_mlruns

        written = write_mlruns(runs, target, experiment=experiment or repo.root.name)
        return ExportResult(fmt, len(runs), path=target, notes=(*notes, *written.notes))
    if fmt == FORMAT_PROV_JSON:
        import json

        from git_prov.export.prov_json import prov_document

        text = json.dumps(prov_document(runs), indent=2, sort_keys=True) + "\n"
    else:
        from git_prov.export.csv_table import csv_text

        text = csv_text(runs)
    if destination is None:
        return ExportResult(fmt, len(runs), text=text, notes=tuple(notes))
    _write_text(destination, text)
    return ExportResult(fmt, len(runs), path=destination, notes=tuple(notes))


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from None


def _remote_url(repo: GitRepo) -> str | None:
    """The URL of the remote the code is shared through: the current branch's upstream
    remote, else ``origin``, else the only remote (None when that does not say)."""

    def config(*args: str) -> list[str]:
        proc = repo.git("config", *args, check=False)
        return proc.stdout.decode("utf-8", "replace").split() if proc.returncode == 0 else []

    head = repo.git("symbolic-ref", "-q", "--short", "HEAD", check=False)
    branch = head.stdout.decode("utf-8", "replace").strip()
    keys = config("--name-only", "--get-regexp", r"^remote\..*\.url$")
    remotes = {key[len("remote.") : -len(".url")] for key in keys}
    chosen = config("--get", f"branch.{branch}.remote") if branch else []
    for name in (*chosen, "origin", *(sorted(remotes) if len(remotes) == 1 else [])):
        if name in remotes:
            urls = config("--get", f"remote.{name}.url")
            return urls[0] if urls else None
    return None

"""A recorded run as the Python API returns it (:class:`Run`), and the repository an API
call names (a path or an open :class:`~git_prov.store.repo.GitRepo`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from git_prov.errors import UsageProblem
from git_prov.model.history import Series
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.record import STATUS_OK, RunRecord
from git_prov.model.values import Scalar
from git_prov.store.ledger import Ledger as StoreLedger
from git_prov.store.ledger import LocatedRun
from git_prov.store.repo import GitRepo

RepoLike = str | os.PathLike[str] | GitRepo


@dataclass(frozen=True)
class Run:
    """A recorded run, as the API returns it: the stored record's fields, typed, and
    helpers that load its manifests and logs from the repository it came from."""

    id: str
    short_id: str
    commit: str
    command: str
    status: str
    exit_code: int | None
    started: datetime
    ended: datetime
    duration: float
    params: Mapping[str, Scalar]
    metrics: Mapping[str, Scalar]
    tags: tuple[str, ...]
    message: str | None
    branch: str | None
    snapshot: str | None
    host: str | None
    user: str | None
    origin: str
    shown_on: tuple[str, ...]
    record: RunRecord = field(repr=False)
    _ledger: StoreLedger = field(repr=False, compare=False)

    @classmethod
    def _from(cls, ledger: StoreLedger, located: LocatedRun) -> Run:
        r = located.record
        return cls(
            id=r.id,
            short_id=r.short_id,
            commit=r.commit,
            command=r.command,
            status=r.status,
            exit_code=r.exit_code,
            started=_parse_time(r.started),
            ended=_parse_time(r.ended),
            duration=r.duration,
            params=dict(r.params),
            metrics=dict(r.metrics),
            tags=r.tags,
            message=r.message,
            branch=r.branch,
            snapshot=r.snapshot,
            host=r.host,
            user=r.user,
            origin=r.origin,
            shown_on=located.shown_on,
            record=r,
            _ledger=ledger,
        )

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems met while recording the run that did not stop it (a metrics file that
        could not be read, an output that could not be hashed, data not present)."""
        from git_prov.record_hints import record_warnings

        return record_warnings(self.record)

    @property
    def ok(self) -> bool:
        """True when the run succeeded (status ``ok``)."""
        return self.status == STATUS_OK

    @property
    def source_commit(self) -> str:
        """The commit holding the exact code that ran (the snapshot when the tree was dirty)."""
        return self.record.source_commit

    def inputs_manifest(self) -> DataManifest | None:
        """The data manifest of the declared inputs (None when none were declared)."""
        return self._ledger.data_manifest(self.record.inputs) if self.record.inputs else None

    def outputs_manifest(self) -> DataManifest | None:
        """The data manifest of the declared outputs (None when none were declared)."""
        return self._ledger.data_manifest(self.record.outputs) if self.record.outputs else None

    def environment(self) -> EnvironmentManifest | None:
        """The environment manifest: interpreter, packages, system, GPUs, variables."""
        return self._ledger.env_manifest(self.record.env) if self.record.env else None

    @property
    def series(self) -> Mapping[str, Mapping[str, Scalar]]:
        """Per metric with a history, its summary: ``n``, ``last``, ``last_step``,
        ``min``, ``max`` and, when its goal is known, ``goal``, ``best``, ``best_step``."""
        return self.record.series

    def histories(self) -> dict[str, Series]:
        """Every point the run logged, per metric: :class:`~git_prov.model.history.Series`
        columns ``steps``, ``times`` (seconds since the epoch; NaN: not known) and
        ``values``. Empty when the run kept no history."""
        if not self.record.history:
            return {}
        return self._ledger.metric_history(self.record.history)

    def log(self, stream: str = "stdout") -> bytes | None:
        """The kept ``stdout`` or ``stderr`` of the run (None when none was kept)."""
        if stream not in ("stdout", "stderr"):
            raise UsageProblem(f"no log stream {stream!r}", "ask for 'stdout' or 'stderr'")
        oid = getattr(self.record, stream)
        if not oid:
            return None
        from git_prov.model.logs import log_bytes

        return log_bytes(self._ledger.read_object(oid, f"{stream} log"), self.record.id)


def open_repo_like(repo: RepoLike) -> GitRepo:
    if isinstance(repo, GitRepo):
        return repo
    from git_prov.store.repo import open_repo

    return open_repo(Path(repo))


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)

"""Small builders of model objects for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from git_prov.model.ids import new_run_id
from git_prov.model.record import RunRecord


def make_record(commit: str, **changes: Any) -> RunRecord:
    """A plausible finished run on ``commit``; any field can be overridden."""
    fields: dict[str, Any] = {
        "id": new_run_id(),
        "commit": commit,
        "command": "python train.py --lr 0.1",
        "argv": ("python", "train.py", "--lr", "0.1"),
        "started": "2026-11-26T11:34:00.123Z",
        "ended": "2026-11-26T11:34:12.400Z",
        "duration": 12.277,
        "exit_code": 0,
        "status": "ok",
        "params": {"lr": 0.1},
        "metrics": {"acc": 0.93},
    }
    fields.update(changes)
    return RunRecord(**fields)


def write_runs(path: Path, n: int = 1, commit: str | None = None) -> list[RunRecord]:
    """Write ``n`` runs on ``commit`` (default HEAD, kept alive in refs/prov/objects)
    straight through the ledger API, as `git prov record` would."""
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    repo = open_repo(path)
    c = commit or str(repo.head_commit().id)
    records = [make_record(c) for _ in range(n)]
    Ledger(repo).write([(c, r) for r in records], keep=[c])
    return records


def write_run(path: Path, commit: str | None = None) -> RunRecord:
    """One run on ``commit`` (default HEAD), as :func:`write_runs` writes it."""
    return write_runs(path, 1, commit)[0]


def shown_on(path: Path, run_id: str) -> tuple[str, ...]:
    """The commits a full read of the ledger shows ``run_id`` on."""
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    return Ledger(open_repo(path)).scan().runs[run_id].shown_on

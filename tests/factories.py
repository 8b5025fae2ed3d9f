"""Small builders of model objects for tests."""

from __future__ import annotations

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

"""A CSV table of runs: one row per run, one ``params.<name>`` / ``metrics.<name>`` column
per name any of the runs has (empty where a run lacks it). RFC 4180 quoting, ``\\r\\n``
line ends (what spreadsheets and ``pandas.read_csv`` expect).

Records can come from other people's clones, so a text cell that a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return, and not a
number) is prefixed with ``'`` (OWASP's advice against CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from git_prov.export import ExportRun
from git_prov.model.values import format_scalar, spreadsheet_safe

COLUMNS = (
    "id",
    "short_id",
    "status",
    "exit_code",
    "started",
    "ended",
    "duration",
    "command",
    "commit",
    "snapshot",
    "branch",
    "host",
    "user",
    "tags",
    "message",
    "inputs",
    "outputs",
    "env",
)


def csv_text(runs: Sequence[ExportRun]) -> str:
    """The table as CSV text."""
    params = sorted({name for run in runs for name in run.record.params})
    metrics = sorted({name for run in runs for name in run.record.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [*COLUMNS, *(f"params.{n}" for n in params), *(f"metrics.{n}" for n in metrics)]
    )
    for run in runs:
        r = run.record
        fixed: dict[str, Any] = {
            "id": r.id,
            "short_id": r.short_id,
            "status": r.status,
            "exit_code": r.exit_code,
            "started": r.started,
            "ended": r.ended,
            "duration": r.duration,
            "command": r.command,
            "commit": r.commit,
            "snapshot": r.snapshot,
            "branch": r.branch,
            "host": r.host,
            "user": r.user,
            "tags": ";".join(r.tags),
            "message": r.message,
            "inputs": r.inputs,
            "outputs": r.outputs,
            "env": r.env,
        }
        writer.writerow(
            [_cell(fixed[c]) for c in COLUMNS]
            + [_cell(r.params.get(n)) for n in params]
            + [_cell(r.metrics.get(n)) for n in metrics]
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision: a table for analysis, not for eyes
    text = format_scalar(value)
    return spreadsheet_safe(text) if isinstance(value, str) else text

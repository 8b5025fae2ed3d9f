"""Every field of a run record is known to every reader of the ledger.

The model (git_prov/model/record.py) is the one definition of a run record; the query
index reads records with two faster readers (git_prov/query/rows.py: the canonical regular
expression and the decoded-JSON check) and keeps some fields as columns. A field added to
``RunRecord`` but not taught to the fast readers would still be read correctly — slowly,
by the exact reader — so no other test notices. This one does: for each field it writes a
record with a non-default value there and requires both fast readers to take the line,
with the same answer as the model, and the index row to hold it in the right column.
The checklist for adding a field is in docs/design.md ("Adding a field to a run record").
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from git_prov.model.record import Attachment, RunRecord, encode_entry, parse_line
from git_prov.query.rows import (
    KIND_ATTACH,
    KIND_PROBLEM,
    KIND_RUN,
    ROW_COLUMNS,
    _canonical_row,
    _entry_row,
    _problem_row,
    _run_row,
    record_json_of,
    valid_run_json,
)

OID = "0123456789abcdef0123456789abcdef01234567"
BASE = RunRecord(
    id="20261126T113400.123Z-3f2a9c1d",
    commit=OID,
    command="python train.py",
    started="2026-11-26T11:34:00.123Z",
    ended="2026-11-26T11:34:12.400Z",
    duration=12.25,
    exit_code=0,
    status="ok",
)
# Values to try for a field, by its annotation: the first the model accepts is used.
SAMPLES: dict[str, list[Any]] = {
    "str": ["a-value"],
    "str | None": [OID[::-1], "a-value"],  # an object id first (the oid fields take only those)
    "float": [1.5, 7],
    "int | None": [3],
    "tuple[str, ...]": [("a", "b")],
    "tuple[str, ...] | None": [("a", "b")],
    "Mapping[str, Scalar]": [{"k": 0.5, "n": "x"}],
    "Mapping[str, Mapping[str, Scalar]]": [{"loss": {"n": 3, "last": 0.5, "goal": "min"}}],
}
# Index columns named otherwise than the record's key.
COLUMN_OF = {"id": "run", "commit": "commit_id", "user": "user_name"}
FIELDS = [f for f in dataclasses.fields(RunRecord) if f.name != "extra"]


def _variant(field: dataclasses.Field[Any]) -> tuple[RunRecord, str]:
    """A record with a non-default value in ``field`` that the model reads back; its line."""
    assert field.type in SAMPLES, (
        f"RunRecord.{field.name} has a new type {field.type!r}: add samples here, and teach "
        "query/rows.py to read it (docs/design.md, 'Adding a field to a run record')"
    )
    for value in [*SAMPLES[field.type], getattr(BASE, field.name)]:  # (ids: BASE's own)
        record = dataclasses.replace(BASE, **{field.name: value})
        line = encode_entry(record)
        try:
            read = parse_line(line)
        except ValueError:
            continue
        if read == record and field.name in record.to_json_dict():
            return record, line
    raise AssertionError(f"no sample of {field.type!r} is a valid RunRecord.{field.name}")


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_every_reader_knows_every_field(field: dataclasses.Field[Any]) -> None:
    record, line = _variant(field)
    payload = line.rpartition("\t")[2]
    data = json.loads(payload)
    assert valid_run_json(data), f"the fast reader (valid_run_json) refuses {field.name}"
    assert record_json_of(data) == record.to_json_dict()
    canonical = _canonical_row("n" * 40, 1, payload)
    assert canonical is not None, f"the canonical reader (_MEMBERS) does not know {field.name}"
    assert canonical == _run_row("n" * 40, 1, data, payload)
    row = dict(zip(ROW_COLUMNS, canonical, strict=True))
    column = COLUMN_OF.get(field.name, field.name)
    if column in row:
        value = getattr(record, field.name)
        if isinstance(value, dict | tuple):
            assert json.loads(row[column]) == (list(value) if isinstance(value, tuple) else value)
        else:
            assert row[column] == value


def test_every_row_has_every_column() -> None:
    line = encode_entry(BASE)
    payload = line.rpartition("\t")[2]
    attachment = Attachment(BASE.id, OID[::-1], OID, "amend", "2026-11-26T11:34:00.123Z")
    rows = {
        "run": _run_row("n" * 40, 1, json.loads(payload), payload),
        "canonical": _canonical_row("n" * 40, 1, payload),
        "problem": _problem_row("n" * 40, 1, "why", "text"),
        "attach": _entry_row("n" * 40, 1, encode_entry(attachment)),
    }
    for name, row in rows.items():
        assert row is not None and len(row) == len(ROW_COLUMNS), name
    assert [r[2] for r in rows.values()] == [KIND_RUN, KIND_RUN, KIND_PROBLEM, KIND_ATTACH]
    problem = dict(zip(ROW_COLUMNS, rows["problem"], strict=True))
    assert (problem["command"], problem["detail"]) == ("text", "why")

"""The note-line codec: canonical, round-tripping, tolerant of bad lines."""

from __future__ import annotations

import json
import math

import pytest
from factories import make_record
from hypothesis import example, given, settings
from hypothesis import strategies as st

from git_prov.model.ids import is_run_id, new_run_id, short_run_id
from git_prov.model.record import (
    Attachment,
    RunRecord,
    Tombstone,
    encode_entry,
    encode_note,
    parse_line,
    parse_note,
)
from git_prov.model.values import canonical_json, flatten, parse_scalar

COMMIT = "a" * 40
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)


@given(
    command=texts,
    params=st.dictionaries(texts, scalars, max_size=5),
    metrics=st.dictionaries(texts, scalars, max_size=5),
    tags=st.lists(texts, max_size=3),
    message=st.none() | texts,
    exit_code=st.none() | st.integers(-255, 255),
)
def test_run_record_round_trips_through_one_line(
    command: str,
    params: dict[str, object],
    metrics: dict[str, object],
    tags: list[str],
    message: str | None,
    exit_code: int | None,
) -> None:
    record = make_record(
        COMMIT,
        command=command,
        params=params,
        metrics=metrics,
        tags=tuple(tags),
        message=message,
        exit_code=exit_code,
    )
    line = encode_entry(record)
    assert "\n" not in line and line.count("\t") == 1
    assert parse_line(line) == record
    assert encode_entry(parse_line(line)) == line  # type: ignore[arg-type]


def test_encoding_is_canonical_whatever_the_dict_order() -> None:
    run_id = new_run_id()
    a = make_record(COMMIT, id=run_id, params={"b": 1, "a": 2})
    b = make_record(COMMIT, id=run_id, params={"a": 2, "b": 1})
    assert encode_entry(a) == encode_entry(b)


def test_bad_lines_are_reported_and_good_ones_kept() -> None:
    good = make_record(COMMIT)
    text = "\n".join(
        [
            encode_entry(good),
            "hand-written garbage",
            encode_entry(good)[:-5],  # truncated JSON
            'x\t{"v": 1, "kind": "run", "id": "nope"}',
            "",
        ]
    )
    parsed = parse_note(text, COMMIT)
    assert parsed.entries == (good,)
    assert [p.line_number for p in parsed.problems] == [2, 3, 4]
    assert all(p.commit == COMMIT for p in parsed.problems)


def test_newer_format_versions_are_refused_clearly_and_unknown_kinds_skipped() -> None:
    with pytest.raises(ValueError, match="format version 99"):
        parse_line('s\t{"v":99,"kind":"run"}')
    assert parse_line('s\t{"v":1,"kind":"annotation-from-the-future","x":1}') is None


def test_duplicate_lines_from_a_concatenating_merge_collapse() -> None:
    record = make_record(COMMIT)
    parsed = parse_note(encode_note([record, record]) + encode_note([record]))
    assert parsed.entries == (record,)


def test_attachments_and_tombstones_round_trip() -> None:
    run_id = new_run_id()
    attach = Attachment(
        run=run_id, commit="b" * 40, original=COMMIT, how="rebase", at="2026-11-26T12:00:00.000Z"
    )
    tomb = Tombstone(run=run_id, at="2026-11-26T12:00:00.000Z", reason="retention")
    assert parse_line(encode_entry(attach)) == attach
    assert parse_line(encode_entry(tomb)) == tomb


def test_unknown_fields_from_newer_minor_versions_survive_re_encoding() -> None:
    record = make_record(COMMIT)
    doc = record.to_json_dict()
    doc["gpu_hours"] = 3.5
    line = "summary\t" + canonical_json(doc)
    parsed = parse_line(line)
    assert parsed is not None and parsed.to_json_dict()["gpu_hours"] == 3.5  # type: ignore[union-attr]


def test_summary_is_readable_and_free_of_control_characters() -> None:
    record = make_record(COMMIT, command="echo 'a\tb\nc'", metrics={"acc": 0.93})
    summary = encode_entry(record).split("\t")[0]
    assert summary.startswith(f"prov run {record.short_id} ok ")
    assert "acc=0.93" in summary
    assert not any(ord(c) < 32 for c in summary)


def test_non_finite_metrics_are_stored_as_words() -> None:
    record = make_record(COMMIT, metrics={"loss": math.nan, "gain": math.inf})
    payload = json.loads(encode_entry(record).split("\t")[1])
    assert payload["metrics"] == {"gain": "inf", "loss": "nan"}


def test_run_ids_sort_by_time_and_have_a_short_form() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 11, 26, 11, 34, tzinfo=UTC)
    ids = [new_run_id(t + timedelta(milliseconds=ms)) for ms in (5, 1, 999, 1000)]
    assert all(is_run_id(i) for i in ids)
    assert sorted(ids) == [ids[1], ids[0], ids[2], ids[3]]
    assert len(short_run_id(ids[0])) == 8 and ids[0].endswith(short_run_id(ids[0]))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.1", 0.1),
        ("1e-3", 0.001),
        ("10", 10),
        ("true", True),
        ("1.10", "1.10"),
        ("007", "007"),
        ("abc", "abc"),
        ("nan", "nan"),
        ("-3", -3),
    ],
)
def test_command_line_values_keep_their_meaning(text: str, value: object) -> None:
    assert parse_scalar(text) == value
    assert type(parse_scalar(text)) is type(value)


def test_flatten_nested_values() -> None:
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, 2], "e": None}) == {
        "a.b.c": 1,
        "d": "[1,2]",
        "e": "null",
    }


def test_lines_nested_deeper_than_the_limit_are_refused_but_brackets_in_text_are_fine() -> None:
    line = encode_entry(make_record("a" * 40))
    deep = line[:-1] + ',"x":' + "[" * 40 + "]" * 40 + "}"
    with pytest.raises(ValueError, match="nested more than 32 levels"):
        parse_line(deep)
    brackets = line[:-1] + ',"x":"' + "{[" * 40 + '"}'
    entry = parse_line(brackets)
    assert isinstance(entry, RunRecord) and entry.extra["x"] == "{[" * 40


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40),
            st.integers(0, 2**63),
            st.one_of(st.text(max_size=8), st.just("a" * 64)),
            st.sampled_from([None, True, False]),
            st.lists(st.text(max_size=4), max_size=1),
            st.sampled_from(["100644", "100755", "120000"]),
        ),
        max_size=6,
    ),
    st.lists(st.text(max_size=6), max_size=2),
)
# (plain values, one table too wide to be inline: the tables formatted without tomli_w)
@example(files=[("data/a.bin", 4096, "a" * 64, None, [], "100644")], missing=[])
@example(
    files=[("d/x", 1, "a" * 64, True, [], "100755"), ("d/y", 2, "b", False, [], "120000")],
    missing=["m"],
)
def test_data_manifest_toml_is_what_tomli_w_writes(
    files: list[tuple[str, int, str, bool | None, list[str], str]], missing: list[str]
) -> None:
    import tomli_w

    from git_prov.model.manifest import DataEntry, DataManifest

    entries = [
        DataEntry(path, size, f"sha256:{digest}", mode=mode, written=written, also=tuple(also))
        for path, size, digest, written, also, mode in files
    ]
    manifest = DataManifest.build(["data", *missing[:1]], entries, missing)
    doc: dict[str, object] = {"prov": 1, "kind": "data", "paths": list(manifest.paths)}
    if manifest.missing:
        doc["missing"] = list(manifest.missing)
    if manifest.entries:
        doc["file"] = [e.to_dict() for e in manifest.entries]
    assert manifest.to_toml() == tomli_w.dumps(doc).encode()

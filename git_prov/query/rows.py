"""Note lines → rows of the query index, read fast.

The model's reader (:func:`~git_prov.model.record.parse_line`) builds a
:class:`~git_prov.model.record.RunRecord` per line; the index reads every run of the ledger,
so it has two faster readers that accept exactly what the model accepts (a test holds the
three to agreement), and falls back to the model's for anything else:

* the canonical reader — one regular expression over a run line exactly as git-prov writes
  it (:func:`_canonical_row`);
* the fast reader — the line's JSON decoded once and checked by :func:`valid_run_json`.

A row is a tuple in the order of :data:`ROW_COLUMNS`, the columns of the index's ``lines``
table (``live`` is set by the index). Adding a field to a run record: see the checklist in
docs/design.md ("Adding a field to a run record"); tests/test_record_fields.py fails until
the readers here know the field.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, NamedTuple

from git_prov.model.ids import HEX_OID_RE, RUN_ID_RE
from git_prov.model.record import (
    FORMAT_VERSION,
    INT64_MAX,
    INT64_MIN,
    MAX_LINE_BYTES,
    READABLE_VERSIONS,
    Attachment,
    RunRecord,
    Tombstone,
    parse_line,
)

KIND_RUN, KIND_ATTACH, KIND_TOMBSTONE, KIND_PROBLEM = 0, 1, 2, 3
# The columns of the index's ``lines`` table a row fills, in order. Runs fill the run
# columns (``user_name`` is the record's ``user``, ``commit_id`` its ``commit``, ``run`` its
# ``id``; params, metrics and tags as JSON); a problem row puts the line's start in
# ``command`` and the reason in ``detail``; attachments and tombstones fill ``run`` only.
ROW_COLUMNS = (
    "note", "lineno", "kind", "run", "commit_id", "started", "duration", "status",
    "exit_code", "host", "user_name", "branch", "env", "inputs", "outputs", "snapshot",
    "command", "params", "metrics", "tags", "series", "detail",
)  # fmt: skip
_BLANK = (None,) * (len(ROW_COLUMNS) - 4)  # the columns after ``run`` of an entry row

# ---- parsing note lines fast -----------------------------------------------------------

_OPT_OID = (
    "snapshot", "patch_id", "inputs", "outputs", "env", "stdout", "stderr", "history",
)  # fmt: skip
_OPT_STR = (
    "cwd", "branch", "host", "user", "message", "reproduces", "origin", "tool", "signature",
)  # fmt: skip
_RUN_KEYS = frozenset(
    (
        "id", "commit", "command", "started", "ended", "duration", "exit_code", "status",
        "argv", "signal", "params", "metrics", "tags", "omitted", "series", *_OPT_OID,
        *_OPT_STR,
    )
)  # fmt: skip


_REQUIRED_STR = ("command", "started", "ended", "status")
_SCALAR_TYPES = frozenset((str, int, float, bool))
_STR_TYPE = frozenset((str,))
_run_id_match = RUN_ID_RE.match
_oid_match = HEX_OID_RE.match


# The keys valid_run_json checks. A record with any other key (a field of a newer model, an
# unknown extra, which may nest arbitrarily) is left to the exact reader.
_CHECKED_KEYS = frozenset(_RUN_KEYS | {"v", "kind"})
_INFINITIES = (float("inf"), float("-inf"))


_NONE = type(None)
_SHAPES_KEPT = 4096  # distinct shapes remembered (a ledger has a handful)


def _shape_plan(keys: Sequence[str], types: Sequence[type]) -> tuple[Any, ...] | None:
    """What is still to check of a run object with these members and value types: (oid
    members, dict members, list members, integer members, the type of ``duration``), or
    None when no object of this shape is a valid run."""
    if not _CHECKED_KEYS.issuperset(keys):
        return None
    typed = dict(zip(keys, types, strict=True))
    if any(typed.get(key) is not str for key in ("id", "commit", *_REQUIRED_STR)):
        return None
    oids = ["commit"]
    for key in _OPT_OID:
        kind = typed.get(key, _NONE)
        if kind is str:
            oids.append(key)
        elif kind is not _NONE:
            return None
    if any(typed.get(key, _NONE) not in (str, _NONE) for key in _OPT_STR):
        return None
    if any(typed.get(key, _NONE) not in (int, _NONE) for key in ("exit_code", "signal")):
        return None
    duration = typed.get("duration")  # None: absent (0 seconds)
    if duration is not None and duration is not float and duration is not int:
        return None
    ints = tuple(key for key in ("exit_code", "signal") if typed.get(key) is int)
    dicts: list[str] = [key for key in ("params", "metrics") if key in typed]
    if any(typed[key] is not dict for key in dicts):
        return None
    if "series" in typed:
        if typed["series"] is not dict:
            return None
        dicts.append("series")
    lists = []
    for key in ("tags", "omitted", "argv"):
        kind = typed.get(key, list)
        if kind is _NONE and key == "argv":
            continue
        if kind is not list:
            return None
        if key in typed:
            lists.append(key)
    return tuple(oids), tuple(dicts), tuple(lists), ints, duration


_plans: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
_UNSEEN: tuple[Any, ...] = ()


def valid_run_json(data: dict[str, Any], _known_oids: set[str] | None = None) -> bool:
    """True when :func:`~git_prov.model.record.parse_line` would accept this decoded run
    object (``json.loads`` output: exact JSON types).

    The same checks as the model's reader without building a :class:`RunRecord` — several
    times faster, and the index reads every run of the ledger. The members' names and value
    types (the object's shape) are checked once per shape, and remembered; what is left per
    object is the formats of ids and the contents of params, metrics and lists.
    ``_known_oids`` remembers ids already checked (runs share commits and manifests). A test
    holds the two readers to agreement.
    """
    shape: tuple[Any, ...] = (*data, *map(type, data.values()))
    plan = _plans.get(shape, _UNSEEN)
    if plan is _UNSEEN:
        half = len(data)
        plan = _shape_plan(shape[:half], shape[half:])
        if len(_plans) >= _SHAPES_KEPT:
            _plans.clear()
        _plans[shape] = plan
    if plan is None:
        return False
    oids, dicts, lists, ints, duration = plan
    if not _run_id_match(data["id"]):
        return False
    known = _known_oids if _known_oids is not None else set()
    for key in oids:
        value = data[key]
        if value not in known:
            if not _oid_match(value):
                return False
            known.add(value)
    for key in dicts:
        if key == "series":  # an object of objects of scalars (the metrics' summaries)
            for summary in data[key].values():
                if type(summary) is not dict or not _SCALAR_TYPES.issuperset(
                    map(type, summary.values())
                ):
                    return False
        elif not _SCALAR_TYPES.issuperset(map(type, data[key].values())):
            return False
    for key in lists:
        if not _STR_TYPE.issuperset(map(type, data[key])):
            return False
    for key in ints:
        if not INT64_MIN <= data[key] <= INT64_MAX:
            return False
    if duration is float:  # NaN and Infinity literals are not a duration
        value = data["duration"]
        if value != value or value in _INFINITIES:
            return False
    elif duration is int:
        try:
            float(data["duration"])
        except OverflowError:  # an integer past any float
            return False
    return True


def record_json_of(data: dict[str, Any]) -> dict[str, Any]:
    """``parse_line(line).to_json_dict()`` for a valid run object, without the record."""
    out = dict(data)
    out["v"] = FORMAT_VERSION
    out["kind"] = "run"
    values = data.values()
    if None in values or [] in values or {} in values or "" in values:
        for key, value in data.items():
            if key in _RUN_KEYS and (value is None or value == [] or value == {}):
                del out[key]
    if out.get("cwd") in (".", ""):
        del out["cwd"]
    if out.get("origin") in ("run", ""):
        del out["origin"]
    duration = out.get("duration", 0)
    if type(duration) is not float:
        out["duration"] = float(duration)
    return out


def _problem_row(note: str, lineno: int, reason: str, line: str) -> tuple[Any, ...]:
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(note=note, lineno=lineno, kind=KIND_PROBLEM, command=line[:200], detail=reason)
    return tuple(row.values())


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_member(payload: str, key: str, value: Any) -> str | None:
    """The JSON text of ``payload``'s top-level ``key`` (an object of scalars or a list of
    strings, as decoded into ``value``), cut out of the payload rather than re-encoded.

    The cut is taken only when it is certainly the member: the needle ``"key":{`` cannot
    occur inside a string (its quotes would be escaped) nor nested (values are scalars),
    the last occurrence is the one JSON decoding keeps, and a cut with no backslash and an
    even number of quotes ends outside any string, so its first closing bracket closes it.
    Anything else is encoded.
    """
    if not value:
        return None
    opening, closing = ("{", "}") if type(value) is dict else ("[", "]")
    needle = f'"{key}":{opening}'
    at = payload.rfind(needle)
    if at > 0 and payload[at - 1] in ",{":
        start = at + len(needle) - 1
        end = payload.find(closing, start)
        cut = payload[start : end + 1]
        if end > 0 and "\\" not in cut and not cut.count('"') & 1:
            return cut
    return _encode(value)


def _run_row(note: str, lineno: int, data: dict[str, Any], payload: str) -> tuple[Any, ...]:
    get = data.get
    params, metrics, tags, series = get("params"), get("metrics"), get("tags"), get("series")
    return (
        note, lineno, KIND_RUN, data["id"], data["commit"], data["started"],
        float(get("duration", 0.0)), data["status"], get("exit_code"), get("host"),
        get("user"), get("branch"), get("env"), get("inputs"), get("outputs"),
        get("snapshot"), data["command"],
        json_member(payload, "params", params) if params else None,
        json_member(payload, "metrics", metrics) if metrics else None,
        json_member(payload, "tags", tags) if tags else None,
        _encode(series) if series else None, None,
    )  # fmt: skip


def _entry_row(note: str, lineno: int, line: str) -> tuple[Any, ...] | None:
    """The exact (slow) reading of a line the fast path did not accept."""
    try:
        entry = parse_line(line)
    except ValueError as exc:
        return _problem_row(note, lineno, str(exc), line)
    if entry is None:
        return None
    if isinstance(entry, RunRecord):
        data = entry.to_json_dict()
        return _run_row(note, lineno, data, "")
    kind = KIND_ATTACH if isinstance(entry, Attachment) else KIND_TOMBSTONE
    assert isinstance(entry, Attachment | Tombstone)
    return (note, lineno, kind, entry.run, *_BLANK)


def fast_run(line: str, data: Any, known: set[str] | None = None) -> bool:
    """True when decoded ``data`` is a run record the exact reader would accept."""
    return (
        type(data) is dict
        and data.get("kind") == "run"
        and type(data.get("v")) is int
        and data["v"] in READABLE_VERSIONS
        and len(line) <= MAX_LINE_BYTES
        and valid_run_json(data, known)
    )


# ---- the canonical reader: run lines exactly as git-prov writes them ------------------------
#
# git-prov writes a run's JSON one way: keys sorted, no spaces, ASCII only (see
# git_prov.model.values.canonical_json). One regular expression matches exactly the lines of
# that form whose strings have no escapes and whose members have the types the exact reader
# accepts, and its groups are the index row: no JSON decoding, no second pass of checks,
# about three times faster than the fast reader. It only ever accepts: a line it does not
# match goes to the fast reader, then to the exact one. A test holds the three to agreement.

_STRING = r'"([^"\\\x00-\x1f]*)"'  # a JSON string with no escapes (its text is its value)
_OID = r'"([0-9a-f]{40}(?:[0-9a-f]{24})?)"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_SCALAR = rf'(?:"[^"\\\x00-\x1f]*"|{_NUMBER}|true|false|NaN|-?Infinity)'
_NAME = r'"[^"\\\x00-\x1f]*"'
_SCALARS = rf"\{{(?:{_NAME}:{_SCALAR}(?:,{_NAME}:{_SCALAR})*)?\}}"
_MEMBERS = {
    "id": r'"([0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8})"',
    "commit": _OID,
    "kind": '"(run)"',
    "duration": f"({_NUMBER})",
    "exit_code": r"(?:(-?(?:0|[1-9][0-9]*))|null)",
    "signal": r"(?:(-?(?:0|[1-9][0-9]*))|null)",
    "params": rf"(\{{(?:{_NAME}:{_SCALAR}(?:,{_NAME}:{_SCALAR})*)?\}})",
    "metrics": rf"(\{{(?:{_NAME}:{_SCALAR}(?:,{_NAME}:{_SCALAR})*)?\}})",
    "tags": rf"(\[(?:{_NAME}(?:,{_NAME})*)?\])",
    "series": rf"(\{{(?:{_NAME}:{_SCALARS}(?:,{_NAME}:{_SCALARS})*)?\}})",
    "omitted": rf"(\[(?:{_NAME}(?:,{_NAME})*)?\])",
    "argv": rf"(?:(\[(?:{_NAME}(?:,{_NAME})*)?\])|null)",
    **{key: _STRING for key in _REQUIRED_STR},
    **{key: f"(?:{_OID}|null)" for key in _OPT_OID},
    **{key: f"(?:{_STRING}|null)" for key in _OPT_STR},
}
_CANONICAL_KEYS = tuple(sorted(_MEMBERS))  # then "v", which sorts after every one of them
_AT = {key: number for number, key in enumerate((*_CANONICAL_KEYS, "v"))}  # group numbers
_REQUIRED_MEMBERS = frozenset(("id", "commit", "kind", *_REQUIRED_STR))
_INT64_DIGITS = 19


def _pattern(captured: frozenset[str]) -> str:
    """The canonical run line's pattern; only the members in ``captured`` (and ``v``) keep
    their groups, the others' become non-capturing (the same lines match either way)."""
    assert set(_CANONICAL_KEYS) == _CHECKED_KEYS - {"v"} and max(_CANONICAL_KEYS) < "v"
    parts = [r"\{"]
    for key in _CANONICAL_KEYS:
        value = _MEMBERS[key] if key in captured else _UNCAPTURE(r"(?:", _MEMBERS[key])
        member = f'"{key}":{value},'
        parts.append(member if key in _REQUIRED_MEMBERS else f"(?:{member})?")
    parts.append(r'"v":([1-9][0-9]{0,5})\}')
    return "".join(parts)


_UNCAPTURE = re.compile(r"(?<!\\)\((?!\?)").sub  # "(" opening a group → "(?:"


@cache
def _canonical_match() -> Callable[[str], re.Match[str] | None]:
    """``fullmatch`` of the canonical run line, every member captured (compiled on first
    use: ~5 ms)."""
    return re.compile(_pattern(frozenset(_CANONICAL_KEYS))).fullmatch


# The members an index row takes, in :data:`_CANONICAL_KEYS` order (then ``v``): a build
# matches with only these captured, which makes 20 substrings of a line rather than 34.
_ROW_MEMBERS = (
    "branch", "command", "commit", "duration", "env", "exit_code", "host", "id", "inputs",
    "metrics", "outputs", "params", "series", "signal", "snapshot", "started", "status",
    "tags", "user",
)  # fmt: skip


@cache
def _row_match() -> Callable[[str], re.Match[str] | None]:
    """``fullmatch`` of the canonical run line with only :data:`_ROW_MEMBERS` captured
    (``fullmatch(text, pos, endpos)`` for a line inside a note's text), every quantifier
    possessive: the same matches as with backtracking quantifiers (:func:`_possessive`;
    a test holds the two to agreement), at four fifths of the work."""
    assert list(_ROW_MEMBERS) == sorted(_ROW_MEMBERS)
    return re.compile(_possessive(_pattern(frozenset(_ROW_MEMBERS)))).fullmatch


def prepare() -> None:
    """Compile the canonical patterns now (before a build forks its helpers)."""
    _canonical_match()
    _row_match()
    _build_match()


_PICK = operator.itemgetter(
    *(_AT[key] for key in (
        "id", "commit", "started", "duration", "status", "exit_code", "host", "user", "branch",
        "env", "inputs", "outputs", "snapshot", "command", "params", "metrics", "tags", "series",
    ))
)  # fmt: skip
_V_AT, _EXIT_AT, _SIGNAL_AT, _DURATION_AT = (
    _AT["v"],
    _AT["exit_code"],
    _AT["signal"],
    _AT["duration"],
)


def _canonical_groups(payload: str) -> tuple[str | None, ...] | None:
    """The groups of a canonical run line (members in :data:`_CANONICAL_KEYS` order, then
    ``v``), checked as the exact reader checks what the pattern cannot; or None (not one:
    read it the other ways)."""
    match = _canonical_match()(payload)
    if match is None:
        return None
    groups = match.groups()
    version, exit_code, signal = groups[_V_AT], groups[_EXIT_AT], groups[_SIGNAL_AT]
    if version != "1" and int(version) not in READABLE_VERSIONS:
        return None
    if exit_code is not None and (
        len(exit_code) > _INT64_DIGITS + 1 or not INT64_MIN <= int(exit_code) <= INT64_MAX
    ):
        return None  # (past 64 bits: the other readers say so)
    if signal is not None and (
        len(signal) > _INT64_DIGITS + 1 or not INT64_MIN <= int(signal) <= INT64_MAX
    ):
        return None
    duration = groups[_DURATION_AT]
    if duration is not None:
        if "." in duration or "e" in duration or "E" in duration:
            seconds = float(duration)
            if seconds != seconds or seconds in _INFINITIES:
                return None
        elif len(duration) > _INT64_DIGITS:
            return None  # (a huge integer: the other readers say what it is)
    return groups


def _canonical_row(note: str, lineno: int, payload: str) -> tuple[Any, ...] | None:
    """The index row of a canonical run line, or None (not one: read it the other ways).
    The checks of :func:`_canonical_groups`, on the groups of :func:`_row_match`."""
    match = _row_match()(payload)
    if match is None:
        return None
    (
        branch, command, commit, duration, env, exit_code, host, run, inputs, metrics,
        outputs, params, series, signal, snapshot, started, status, tags, user, version,
    ) = match.groups()  # fmt: skip
    if version != "1" and int(version) not in READABLE_VERSIONS:
        return None
    code = None
    if exit_code is not None:
        if len(exit_code) > _INT64_DIGITS + 1:
            return None  # (past 64 bits: the other readers say so)
        code = int(exit_code)
        if not INT64_MIN <= code <= INT64_MAX:
            return None
    if signal is not None and (
        len(signal) > _INT64_DIGITS + 1 or not INT64_MIN <= int(signal) <= INT64_MAX
    ):
        return None
    if duration is None:
        seconds = 0.0
    elif "." in duration or "e" in duration or "E" in duration:
        seconds = float(duration)
        if seconds != seconds or seconds in _INFINITIES:
            return None
    elif len(duration) > _INT64_DIGITS:
        return None  # (a huge integer: the other readers say what it is)
    else:
        seconds = float(int(duration))
    return (
        note, lineno, KIND_RUN, run, commit, started, seconds, status, code, host, user,
        branch, env, inputs, outputs, snapshot, command, None if params == "{}" else params,
        None if metrics == "{}" else metrics, None if tags == "[]" else tags,
        None if series == "{}" else series, None,
    )  # fmt: skip


class RunObjects(NamedTuple):
    """A run record's id and the objects it names: what ``git prov fsck`` checks of it."""

    id: str
    commit: str
    snapshot: str | None
    inputs: str | None
    outputs: str | None
    env: str | None
    stdout: str | None
    stderr: str | None
    history: str | None


_OBJECT_MEMBERS = RunObjects._fields
_PICK_OBJECTS = operator.itemgetter(*(_AT[key] for key in _OBJECT_MEMBERS))


def run_objects(line: str, known: set[str] | None = None) -> RunObjects | None:
    """The id and object ids of ``line`` when it is a run record the exact reader accepts,
    read the fast ways (the canonical pattern, else one decoding checked by
    :func:`valid_run_json`); None when neither takes it: read it with
    :func:`~git_prov.model.record.parse_line`, which says what it is."""
    if len(line) > MAX_LINE_BYTES:
        return None
    payload = line[line.rfind("\t") + 1 :].strip()
    if payload[:1] != "{":
        return None
    groups = _canonical_groups(payload)
    if groups is not None:
        return RunObjects._make(_PICK_OBJECTS(groups))
    try:
        data, end = _scan_json(payload, 0)
    except (ValueError, StopIteration, RecursionError):
        return None
    if end != len(payload) or not fast_run(line, data, known):
        return None
    get = data.get
    return RunObjects(data["id"], data["commit"], *(get(key) for key in _OBJECT_MEMBERS[2:]))


# Decoding one JSON value from a position, without json.loads' wrappers (a quarter of the
# time of decoding a record). ``json.loads(payload)`` of a stripped payload starting with
# ``{`` succeeds exactly when this scan succeeds and ends at the payload's end.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse_lines(
    note: str,
    numbered: Iterable[tuple[int, str]],
    known_oids: set[str] | None = None,
    *,
    canonical: bool = False,
) -> list[tuple[Any, ...]]:
    """Index rows (without ``live``) for note lines; unreadable lines become problem rows.

    The hot loop of a full build. With ``canonical`` (worth its one-off compile on many
    lines) run lines as git-prov writes them are read by one regular expression
    (:func:`_canonical_row`); other run lines are decoded once and checked by
    :func:`valid_run_json`; anything else goes through the model's exact reader.
    """
    scan = _scan_json
    known = known_oids if known_oids is not None else set()
    seen: set[str] = set()
    rows: list[tuple[Any, ...]] = []
    for lineno, line in numbered:
        payload = line[line.rfind("\t") + 1 :].strip()
        data: Any = None
        if payload[:1] == "{" and len(line) <= MAX_LINE_BYTES:
            if canonical:
                row = _canonical_row(note, lineno, payload)
                if row is not None:
                    if payload not in seen:  # the same entry twice in one note: once
                        seen.add(payload)
                        rows.append(row)
                    continue
            try:
                data, end = scan(payload, 0)
            except (ValueError, StopIteration, RecursionError):
                data = None
            else:
                if end != len(payload):
                    data = None
        if fast_run(line, data, known):
            if payload not in seen:  # the same entry twice in one note: once (as parse_note)
                seen.add(payload)
                rows.append(_run_row(note, lineno, data, payload))
            continue
        if not line.strip():
            continue
        row = _entry_row(note, lineno, line)
        if row is None or (row[2] != KIND_PROBLEM and payload in seen):
            continue
        if row[2] != KIND_PROBLEM:
            seen.add(payload)
        rows.append(row)
    return rows


def note_lines(blob: bytes) -> list[str]:
    """A note's lines, split as :func:`~git_prov.model.record.parse_note` splits them: at
    ``\\n`` only (as git does), without a trailing ``\\r``."""
    return [line.removesuffix("\r") for line in blob.decode("utf-8", "replace").split("\n")]


# ---- fsck's note reader: canonical run lines straight out of a note's text ------------------
#
# ``git prov fsck`` reads every line of the ledger for the id of each run and the objects it
# names. :func:`note_run_match` matches, at a position of a note's text, one whole line that
# is a canonical run line (the pattern above) whose numbers need no further check: exit code
# and signal of at most 18 digits (always 64-bit), a duration without an exponent (always a
# finite float), a readable version. Its groups are the run's id and objects. A line it does
# not match is read the other ways, exactly as before; it only ever accepts.

_NOTE_OBJECTS = ("commit", "snapshot", "inputs", "outputs", "env", "stdout", "stderr", "history")
_SHORT_INT = r"-?(?:0|[1-9][0-9]{0,17})"


def _uncaptured(pattern: str) -> str:
    """``pattern`` with every capturing group made non-capturing (the member patterns
    above have no escaped parentheses)."""
    assert "\\(" not in pattern
    return re.sub(r"\((?!\?)", "(?:", pattern)


@cache
def note_run_match() -> Callable[[str, int], re.Match[str] | None]:
    """``match(text, pos)`` of one whole canonical run line of a note starting at ``pos``:
    a summary without tabs, a tab, the JSON, then the end of the line (not consumed). Its
    groups, in order: the members of :data:`_NOTE_OBJECTS` in sorted order with ``id``
    among them (see :data:`NOTE_ID_GROUP`, :data:`NOTE_OBJECT_GROUPS`).

    Every quantifier of it is possessive (:func:`_possessive`): what one of them takes is
    never given back. Here that changes no match — whatever follows a repeated or optional
    part starts with a character that part cannot take next (a closing quote or bracket,
    a comma, a key no other member has) — and saves a fifth of the matching's work,
    which is the costliest step of reading a line."""
    compiled = re.compile(_possessive(note_run_pattern()))
    assert compiled.groups == len(_NOTE_OBJECTS) + 1
    return compiled.match


def _possessive(pattern: str) -> str:
    """``pattern`` with each of its quantifiers (``*``, ``+``, ``?``, ``{m,n}`` outside
    character classes, not already lazy or possessive) made possessive. (No class of the
    patterns here starts with ``]``.)"""
    out: list[str] = []
    at, end, in_class = 0, len(pattern), False
    while at < end:
        char = pattern[at]
        out.append(char)
        at += 1
        if char == "\\":
            out.append(pattern[at])
            at += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(" and pattern[at : at + 1] == "?":
            out.append("?")  # (a group's flag, not a quantifier)
            at += 1
        elif char in "*+?" or (
            char == "{" and (close := pattern.find("}", at)) > 0
            and re.fullmatch(r"[0-9]+(?:,[0-9]*)?", pattern[at:close])
        ):  # fmt: skip
            if char == "{":
                out.append(pattern[at : close + 1])
                at = close + 1
            if pattern[at : at + 1] in ("?", "+"):  # (lazy or possessive already)
                out.append(pattern[at])
                at += 1
            else:
                out.append("+")
    return "".join(out)


def note_run_pattern() -> str:
    """The pattern of :func:`note_run_match`, with ordinary (backtracking) quantifiers."""
    parts = [r"[^\t\n]*\t\{"]
    for key in _CANONICAL_KEYS:
        if key == "id" or key == "commit":
            value = _MEMBERS[key]
        elif key in _NOTE_OBJECTS:
            value = f"(?:{_OID}|null)"
        elif key == "duration":
            value = rf"{_SHORT_INT}(?:\.[0-9]+)?"
        elif key in ("exit_code", "signal"):
            value = f"(?:{_SHORT_INT}|null)"
        else:
            value = _uncaptured(_MEMBERS[key])
        member = f'"{key}":{value},'
        parts.append(member if key in _REQUIRED_MEMBERS else f"(?:{member})?")
    versions = "|".join(str(v) for v in sorted(READABLE_VERSIONS, reverse=True))
    parts.append(rf'"v":(?:{versions})\}}(?=\n|\Z)')
    return "".join(parts)


_NOTE_GROUPS = sorted((*_NOTE_OBJECTS, "id"))
NOTE_ID_GROUP = _NOTE_GROUPS.index("id") + 1
# The groups of the objects, in RunObjects' order (commit, snapshot, inputs, outputs, env,
# stdout, stderr, history).
NOTE_OBJECT_GROUPS = tuple(_NOTE_GROUPS.index(key) + 1 for key in _NOTE_OBJECTS)


# ---- a build's note reader: canonical run lines straight out of a note's text ---------------
#
# A first build reads every line of the ledger. :func:`build_rows` reads a note's text line
# after line with one pattern (:func:`_build_match`): the canonical run line's, with only
# numbers that need no further check (as fsck's note reader: an exit code and signal of at
# most 18 digits, always 64-bit; a duration without an exponent, always a finite float; a
# readable version), so a row is its groups with the duration and exit code converted. A
# missing value is :data:`NULL`. The note is read the other ways, whole, as soon as one of
# its lines is not such a line or two have the same run id (the same entry twice is one
# row): so a note comes out row for row as :func:`parse_lines` reads it, which a test holds.

NULL = float("nan")
"""A missing value in :func:`build_rows`' rows: SQLite binds a NaN as NULL (and no value of
a run row is a NaN), and Python's sqlite3 binds a float at once, where None goes through
its adapter protocol (~0.2 µs each, seven a row: a quarter of the insert)."""

_BUILD_MEMBERS = tuple(key for key in _ROW_MEMBERS if key != "signal")


def _build_pattern() -> str:
    """The pattern of :func:`_build_match`, with ordinary (backtracking) quantifiers."""
    parts = [r"\{"]
    for key in _CANONICAL_KEYS:
        if key == "duration":
            value = rf"({_SHORT_INT}(?:\.[0-9]+)?)"
        elif key == "exit_code":
            value = rf"(?:({_SHORT_INT})|null)"
        elif key == "signal":
            value = f"(?:{_SHORT_INT}|null)"
        elif key in _BUILD_MEMBERS:
            value = _MEMBERS[key]
        else:
            value = _uncaptured(_MEMBERS[key])
        member = f'"{key}":{value},'
        parts.append(member if key in _REQUIRED_MEMBERS else f"(?:{member})?")
    versions = "|".join(str(v) for v in sorted(READABLE_VERSIONS, reverse=True))
    parts.append(rf'"v":(?:{versions})\}}')
    return "".join(parts)


@cache
def _build_match() -> Callable[[str, int, int], re.Match[str] | None]:
    """``fullmatch(text, pos, endpos)`` of a canonical run line's JSON whose numbers need
    no check, its groups :data:`_BUILD_MEMBERS`; every quantifier possessive
    (:func:`_possessive`: the same matches as the backtracking pattern, a fifth less
    work; a test holds the two to agreement)."""
    compiled = re.compile(_possessive(_build_pattern()))
    assert compiled.groups == len(_BUILD_MEMBERS)
    return compiled.fullmatch


def build_rows(note: str, blob: bytes, known_oids: set[str] | None = None) -> list[tuple[Any, ...]]:
    """The index rows of a note's text (``blob``): :func:`parse_lines`' rows of its lines,
    with :data:`NULL` for a missing value in the rows of canonical run lines."""
    text = blob.decode("utf-8", "replace")
    match = _build_match()
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    runs: set[str] = set()
    find, rfind = text.find, text.rfind
    pos, end, lineno = 0, len(text), 0
    while pos < end:
        next_line = find("\n", pos)
        if next_line < 0:
            next_line = end
        # (the payload: after the line's last tab, as parse_lines cuts it)
        found = match(text, rfind("\t", pos, next_line) + 1 or pos, next_line)
        if found is None or next_line - pos > MAX_LINE_BYTES:
            break
        groups: tuple[Any, ...] = found.groups(NULL)
        (
            branch, command, commit, duration, env, exit_code, host, run, inputs, metrics,
            outputs, params, series, snapshot, started, status, tags, user,
        ) = groups  # fmt: skip
        if run in runs:
            break
        runs.add(run)
        lineno += 1
        append((
            note, lineno, KIND_RUN, run, commit, started,
            0.0 if duration is NULL
            else float(duration) if "." in duration else float(int(duration)), status,
            exit_code if exit_code is NULL else int(exit_code), host, user, branch, env,
            inputs, outputs, snapshot, command, NULL if params == "{}" else params,
            NULL if metrics == "{}" else metrics, NULL if tags == "[]" else tags,
            NULL if series == "{}" else series, NULL,
        ))  # fmt: skip
        pos = next_line + 1
    else:
        return rows
    return parse_lines(note, enumerate(note_lines(blob), start=1), known_oids, canonical=True)

"""Run records and the other ledger lines, and their one-line note encoding.

A note on a commit under ``refs/notes/prov`` is a list of lines. Each line is one
self-contained ledger entry::

    <summary for people> TAB <canonical JSON>

The summary is derived from the JSON and never read back; the JSON (which holds no raw
tab or newline: it is ASCII-escaped) is the truth. Because each entry is one line, git's
own line-based note merges (``cat_sort_uniq``, ``union``) and the ``concatenate`` rewrite
mode keep every entry intact. See ``docs/format.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import field, fields, replace
from typing import TYPE_CHECKING, Any

from git_prov.model.controls import Controls, shown
from git_prov.model.frozen import FRESH, Fields, frozen_fields
from git_prov.model.ids import is_hex_oid, is_run_id, short_oid, short_run_id
from git_prov.model.limits import MAX_LINE_BYTES as MAX_LINE_BYTES
from git_prov.model.limits import MAX_NESTING as MAX_NESTING
from git_prov.model.values import Scalar, canonical_json, format_assignments

if TYPE_CHECKING:
    from git_prov.model.conflict import RunConflict

FORMAT_VERSION = 1
# The oldest and newest format versions this code reads.
READABLE_VERSIONS = range(1, FORMAT_VERSION + 1)
# The exit codes and signal numbers a record may hold: 64-bit, as SQLite (the query index)
# and any other reader keep integers.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# (model/limits.py: the one set of reader limits)

# Characters that must never reach a terminal or split a line (model/controls.py): all of
# them, newline and tab included.
_CONTROL = Controls()

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_KILLED = "killed"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_KILLED)


def status_for(exit_code: int | None, signal: int | None = None) -> str:
    """The status word for a finished process."""
    if signal is not None:
        return STATUS_KILLED
    return STATUS_OK if exit_code == 0 else STATUS_FAILED


@frozen_fields
class RunRecord(Fields):
    """One run: what ran, on which code, data and environment, and how it ended.

    Records are immutable once written. ``commit`` is always the commit the run actually
    ran on, even when the record is later shown on a rewritten commit.
    """

    id: str
    commit: str
    command: str
    started: str
    ended: str
    duration: float
    exit_code: int | None
    status: str
    argv: tuple[str, ...] | None = None
    cwd: str = "."
    snapshot: str | None = None
    patch_id: str | None = None
    branch: str | None = None
    host: str | None = None
    user: str | None = None
    inputs: str | None = None
    outputs: str | None = None
    env: str | None = None
    params: Mapping[str, Scalar] = field(default_factory=dict)
    metrics: Mapping[str, Scalar] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    message: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    signal: int | None = None
    omitted: tuple[str, ...] = ()
    reproduces: str | None = None
    origin: str = "run"
    tool: str | None = None
    # Metric histories (docs/format.md, "Metric histories"): the blob of every logged point,
    # and per metric a summary (n, last, last_step, min, max, goal, best, best_step).
    history: str | None = None
    series: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)
    # An armored OpenPGP or SSH signature over :meth:`signing_payload` (git prov verify).
    signature: str | None = None
    # Fields written by a newer minor version; kept so re-encoding loses nothing.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        id: str,
        commit: str,
        command: str,
        started: str,
        ended: str,
        duration: float,
        exit_code: int | None,
        status: str,
        argv: tuple[str, ...] | None = None,
        cwd: str = ".",
        snapshot: str | None = None,
        patch_id: str | None = None,
        branch: str | None = None,
        host: str | None = None,
        user: str | None = None,
        inputs: str | None = None,
        outputs: str | None = None,
        env: str | None = None,
        params: Mapping[str, Scalar] = FRESH,
        metrics: Mapping[str, Scalar] = FRESH,
        tags: tuple[str, ...] = (),
        message: str | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        signal: int | None = None,
        omitted: tuple[str, ...] = (),
        reproduces: str | None = None,
        origin: str = "run",
        tool: str | None = None,
        history: str | None = None,
        series: Mapping[str, Mapping[str, Scalar]] = FRESH,
        signature: str | None = None,
        extra: Mapping[str, Any] = FRESH,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "id", id)
        set_(self, "commit", commit)
        set_(self, "command", command)
        set_(self, "started", started)
        set_(self, "ended", ended)
        set_(self, "duration", duration)
        set_(self, "exit_code", exit_code)
        set_(self, "status", status)
        set_(self, "argv", argv)
        set_(self, "cwd", cwd)
        set_(self, "snapshot", snapshot)
        set_(self, "patch_id", patch_id)
        set_(self, "branch", branch)
        set_(self, "host", host)
        set_(self, "user", user)
        set_(self, "inputs", inputs)
        set_(self, "outputs", outputs)
        set_(self, "env", env)
        set_(self, "params", {} if params is FRESH else params)
        set_(self, "metrics", {} if metrics is FRESH else metrics)
        set_(self, "tags", tags)
        set_(self, "message", message)
        set_(self, "stdout", stdout)
        set_(self, "stderr", stderr)
        set_(self, "signal", signal)
        set_(self, "omitted", omitted)
        set_(self, "reproduces", reproduces)
        set_(self, "origin", origin)
        set_(self, "tool", tool)
        set_(self, "history", history)
        set_(self, "series", {} if series is FRESH else series)
        set_(self, "signature", signature)
        set_(self, "extra", {} if extra is FRESH else extra)

    @property
    def short_id(self) -> str:
        return short_run_id(self.id)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems met while recording it (the run key ``warnings``, docs/format.md);
        entries that are not text are left out."""
        found = self.extra.get("warnings")
        return tuple(w for w in found if isinstance(w, str)) if isinstance(found, list) else ()

    def signing_payload(self) -> bytes:
        """The bytes a signature of this record covers (see :func:`signing_payload`)."""
        return signing_payload(self.to_json_dict())

    @property
    def dirty(self) -> bool:
        return self.snapshot is not None

    @property
    def source_commit(self) -> str:
        """The commit holding the exact code that ran: the snapshot when the tree was dirty."""
        return self.snapshot or self.commit

    def to_json_dict(self) -> dict[str, Any]:
        """The record as the JSON object stored in a note (None and empty values left out)."""
        out: dict[str, Any] = {"v": FORMAT_VERSION, "kind": "run"}
        for name in _RUN_FIELD_ORDER:
            value = getattr(self, name)
            if value is None or value == () or value == {} or (name == "cwd" and value == "."):
                continue
            if name == "origin" and value == "run":
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def summary(self) -> str:
        """The human part of the note line: id, status, time, duration, command, metrics."""
        exit_part = "" if self.status == STATUS_OK else f"({self.exit_code}) "
        when = self.started[:16] + "Z" if len(self.started) >= 16 else self.started
        text = (
            f"prov run {self.short_id} {self.status} {exit_part}{when} "
            f"{format_duration(self.duration)} {shorten(self.command, 72)}"
        )
        if self.metrics:
            text += "  " + shorten(format_assignments(sorted(self.metrics.items())), 80)
        return _CONTROL.sub(" ", text)

    def display_line(self) -> str:
        """The line plain ``git log`` shows for this run (see ``git prov init``)."""
        mark = {STATUS_OK: "✓", STATUS_FAILED: "✗", STATUS_KILLED: "⚡"}.get(self.status, "?")
        exit_part = "" if self.status == STATUS_OK else f" (exit {self.exit_code})"
        text = (
            f"{self.started[:19].replace('T', ' ')}  {mark} {self.short_id}  "
            f"{self.status}{exit_part}  {format_duration(self.duration)}  "
            f"{shorten(self.command, 72)}"
        )
        if self.metrics:
            text += "  " + shorten(format_assignments(sorted(self.metrics.items())), 80)
        if self.snapshot:
            text += "  [dirty]"
        return _CONTROL.sub(" ", text)


@frozen_fields
class Attachment(Fields):
    """A run shown on another commit than the one it ran on, and why.

    Written as a line in the note of ``commit`` (the new commit) after a rewrite.
    """

    run: str
    commit: str
    original: str
    how: str
    at: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        run: str,
        commit: str,
        original: str,
        how: str,
        at: str,
        extra: Mapping[str, Any] = FRESH,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "run", run)
        set_(self, "commit", commit)
        set_(self, "original", original)
        set_(self, "how", how)
        set_(self, "at", at)
        set_(self, "extra", {} if extra is FRESH else extra)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": FORMAT_VERSION, "kind": "attach"}
        out.update(
            run=self.run, commit=self.commit, original=self.original, how=self.how, at=self.at
        )
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def summary(self) -> str:
        return (
            f"prov attach {short_run_id(self.run)} from {short_oid(self.original)} "
            f"({_CONTROL.sub(' ', self.how)})"
        )

    def display_line(self) -> str:
        return _CONTROL.sub(
            " ",
            f"{self.at[:19].replace('T', ' ')}  ↪ {short_run_id(self.run)}  ran on "
            f"{self.original[:7]}, shown here after {self.how}",
        )


@frozen_fields
class Tombstone(Fields):
    """A run deliberately removed from the ledger (retention); survives merges."""

    run: str
    at: str
    reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        run: str,
        at: str,
        reason: str = "",
        extra: Mapping[str, Any] = FRESH,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "run", run)
        set_(self, "at", at)
        set_(self, "reason", reason)
        set_(self, "extra", {} if extra is FRESH else extra)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": FORMAT_VERSION, "kind": "tombstone"}
        out.update(run=self.run, at=self.at)
        if self.reason:
            out["reason"] = self.reason
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def summary(self) -> str:
        return f"prov tombstone {short_run_id(self.run)}"


Entry = RunRecord | Attachment | Tombstone


@frozen_fields
class LocatedRun(Fields):
    """A run record and the commits it is shown on (the commit it ran on, and any that it
    was carried or attached to after a rewrite)."""

    record: RunRecord
    shown_on: tuple[str, ...]
    attachments: tuple[Attachment, ...] = ()
    # Other, different records stored under the same id, and which one ``record`` is
    # (set by the query layer, git_prov.query.located; None: no conflict, or not asked).
    conflict: RunConflict | None = None

    def __init__(
        self,
        record: RunRecord,
        shown_on: tuple[str, ...],
        attachments: tuple[Attachment, ...] = (),
        conflict: RunConflict | None = None,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "record", record)
        set_(self, "shown_on", shown_on)
        set_(self, "attachments", attachments)
        set_(self, "conflict", conflict)

    @property
    def id(self) -> str:
        return self.record.id


@frozen_fields
class LineProblem(Fields):
    """A note line that could not be read, and why. Reported, never fatal."""

    commit: str
    line_number: int
    reason: str
    text: str

    def __init__(
        self,
        commit: str,
        line_number: int,
        reason: str,
        text: str,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "commit", commit)
        set_(self, "line_number", line_number)
        set_(self, "reason", reason)
        set_(self, "text", text)


@frozen_fields
class ParsedNote(Fields):
    """Everything read from one note: its entries and the lines that failed."""

    entries: tuple[Entry, ...]
    problems: tuple[LineProblem, ...]

    def __init__(
        self,
        entries: tuple[Entry, ...],
        problems: tuple[LineProblem, ...],
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "entries", entries)
        set_(self, "problems", problems)


def signing_payload(data: Mapping[str, Any]) -> bytes:
    """The bytes a run record's signature covers: the canonical JSON of the entry's object
    as stored in the note, without its ``signature`` key (UTF-8; ASCII in practice)."""
    return canonical_json({k: v for k, v in data.items() if k != "signature"}).encode("utf-8")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (ESC, BEL, CR, newlines, C1
    controls, bidirectional overrides) are shown as escapes such as ``\\x1b``, so a
    hostile record cannot retitle the terminal, move the cursor or hide text."""
    return _CONTROL.sub(shown, text)


def encode_entry(entry: Entry) -> str:
    """The note line for an entry (no trailing newline)."""
    return f"{entry.summary()}\t{canonical_json(entry.to_json_dict())}"


def encode_note(entries: Iterable[Entry]) -> str:
    """A whole note: one line per entry, each newline-terminated."""
    return "".join(encode_entry(e) + "\n" for e in entries)


def parse_note(text: str, commit: str = "") -> ParsedNote:
    """Read every entry in a note; lines that are blank are skipped, bad ones reported."""
    entries: list[Entry] = []
    problems: list[LineProblem] = []
    seen: set[str] = set()
    # Lines end at "\n" only, as for git: str.splitlines() would also break a hostile
    # summary at U+2028, \x1c or \x85 and report half-lines.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            entry = parse_line(line)
        except ValueError as exc:
            problems.append(LineProblem(commit, number, str(exc), line[:200]))
            continue
        if entry is None:
            continue
        key = canonical_json(entry.to_json_dict())
        if key in seen:  # the same entry twice (a concatenating merge): keep one
            continue
        seen.add(key)
        entries.append(entry)
    return ParsedNote(tuple(entries), tuple(problems))


def parse_line(line: str) -> Entry | None:
    """Parse one note line; raise ``ValueError`` saying why it cannot be read.

    Returns None for lines of a newer *kind* this version does not know (skipped silently,
    so that older readers keep working when new kinds of entries are added).
    """
    data = line_object(line)
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("entry has no format version 'v'")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"entry has format version {version}; this git-prov reads "
            f"{READABLE_VERSIONS.start}..{READABLE_VERSIONS.stop - 1} (upgrade it)"
        )
    kind = data.get("kind")
    if kind == "run":
        return _run_from_json(data)
    if kind == "attach":
        return Attachment(
            run=_run_id(data, "run"),
            commit=_oid(data, "commit"),
            original=_oid(data, "original"),
            how=_str(data, "how"),
            at=_str(data, "at"),
            extra=_extra(data, {"run", "commit", "original", "how", "at"}),
        )
    if kind == "tombstone":
        return Tombstone(
            run=_run_id(data, "run"),
            at=_str(data, "at"),
            reason=_opt_str(data, "reason") or "",
            extra=_extra(data, {"run", "at", "reason"}),
        )
    if isinstance(kind, str):
        return None
    raise ValueError("entry has no kind")


def line_object(line: str) -> dict[str, Any]:
    """The JSON object of a note line, as stored (before any interpretation); raises
    ``ValueError`` when there is none. Used where the exact stored bytes matter (signatures).
    """
    if len(line) > MAX_LINE_BYTES:
        raise ValueError("line too long")
    _, tab, payload = line.rpartition("\t")
    if not tab:
        payload = line  # a hand-written line with no summary is fine
    payload = payload.strip()
    if not payload.startswith("{"):
        raise ValueError("not a git-prov entry (no JSON object)")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        # A hostile line of 100k nested brackets: CPython's decoder recurses.
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("entry is not a JSON object")
    # (Nesting needs an opening bracket per level: fewer brackets than the limit in all
    # of the text, quoted ones included, cannot nest too deep; most lines end here.)
    if payload.count("{") + payload.count("[") > MAX_NESTING and _depth_exceeds(data, MAX_NESTING):
        # Shallower than the decoder's limit, but re-encoding it would recurse again.
        raise ValueError(f"entry is nested more than {MAX_NESTING} levels deep")
    return data


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


_RUN_FIELD_ORDER = tuple(f.name for f in fields(RunRecord) if f.name != "extra")
_RUN_FIELDS = set(_RUN_FIELD_ORDER)


def _run_from_json(data: dict[str, Any]) -> RunRecord:
    exit_code = data.get("exit_code")
    if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
        raise ValueError("exit_code is not an integer")
    if exit_code is not None and not INT64_MIN <= exit_code <= INT64_MAX:
        raise ValueError("exit_code is out of range")
    duration = data.get("duration", 0.0)
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        raise ValueError("duration is not a number")
    try:
        seconds = float(duration)
    except OverflowError:  # an integer past any float
        raise ValueError("duration is not a finite number") from None
    if not math.isfinite(seconds):
        raise ValueError("duration is not a finite number")
    status = _str(data, "status")
    argv = data.get("argv")
    if argv is not None and not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv is not a list of strings")
    signal = data.get("signal")
    if signal is not None and (not isinstance(signal, int) or isinstance(signal, bool)):
        raise ValueError("signal is not an integer")
    if signal is not None and not INT64_MIN <= signal <= INT64_MAX:
        raise ValueError("signal is out of range")
    return RunRecord(
        id=_run_id(data, "id"),
        commit=_oid(data, "commit"),
        command=_str(data, "command"),
        started=_str(data, "started"),
        ended=_str(data, "ended"),
        duration=seconds,
        exit_code=exit_code,
        status=status,
        argv=tuple(argv) if argv is not None else None,
        cwd=_opt_str(data, "cwd") or ".",
        snapshot=_opt_oid(data, "snapshot"),
        patch_id=_opt_oid(data, "patch_id"),
        branch=_opt_str(data, "branch"),
        host=_opt_str(data, "host"),
        user=_opt_str(data, "user"),
        inputs=_opt_oid(data, "inputs"),
        outputs=_opt_oid(data, "outputs"),
        env=_opt_oid(data, "env"),
        params=_scalars(data, "params"),
        metrics=_scalars(data, "metrics"),
        tags=_str_tuple(data, "tags"),
        message=_opt_str(data, "message"),
        stdout=_opt_oid(data, "stdout"),
        stderr=_opt_oid(data, "stderr"),
        signal=signal,
        omitted=_str_tuple(data, "omitted"),
        reproduces=_opt_str(data, "reproduces"),
        origin=_opt_str(data, "origin") or "run",
        tool=_opt_str(data, "tool"),
        history=_opt_oid(data, "history"),
        series=_summaries(data, "series"),
        signature=_opt_str(data, "signature"),
        extra=_extra(data, _RUN_FIELDS),
    )


def _extra(data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known and k not in ("v", "kind")}


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is missing or not a string")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _run_id(data: dict[str, Any], key: str) -> str:
    value = _str(data, key)
    if not is_run_id(value):
        raise ValueError(f"{key} {value[:40]!r} is not a run id")
    return value


def _oid(data: dict[str, Any], key: str) -> str:
    value = _str(data, key)
    if not is_hex_oid(value):
        raise ValueError(f"{key} {value[:50]!r} is not an object id")
    return value


def _opt_oid(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _oid(data, key)


def _str_tuple(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} is not a list of strings")
    return tuple(value)


def _scalars(data: dict[str, Any], key: str) -> dict[str, Scalar]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    out: dict[str, Scalar] = {}
    for k, v in value.items():
        if not isinstance(v, str | int | float | bool):
            raise ValueError(f"{key}.{k} is not a number, string or boolean")
        out[k] = v
    return out


def _summaries(data: dict[str, Any], key: str) -> dict[str, Mapping[str, Scalar]]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    out: dict[str, Mapping[str, Scalar]] = {}
    for name, summary in value.items():
        if not isinstance(summary, dict):
            raise ValueError(f"{key}.{name} is not an object")
        out[name] = _scalars(value, name)
    return out


def format_duration(seconds: float) -> str:
    """12ms, 3.4s, 5m07s, 2h03m: short and fixed-ish width."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def shorten(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters with an ellipsis."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def with_fields(record: RunRecord, **changes: Any) -> RunRecord:
    """A copy of a record with some fields changed (used before a record is stored)."""
    return replace(record, **changes)

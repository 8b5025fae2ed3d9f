"""Scalar values of params and metrics, and the canonical JSON used in stored records."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

Scalar = str | int | float | bool
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def parse_scalar(text: str) -> Scalar:
    """Read a value typed on the command line.

    Numbers and booleans become typed values only when they print back to exactly the text
    given (or use scientific notation), so ``lr=0.1`` and ``lr=1e-3`` are floats but
    ``version=1.10`` stays the string ``"1.10"`` and ``seed=007`` stays ``"007"``.
    """
    if text in ("true", "false"):
        return text == "true"
    try:
        as_int = int(text)
    except ValueError:
        pass
    else:
        return as_int if str(as_int) == text else text
    try:
        as_float = float(text)
    except ValueError:
        return text
    if not math.isfinite(as_float):
        return text
    # Scientific notation (1e-3) is a clear numeric intent; otherwise keep the text when
    # the float would print differently (1.10, 0.50 read like versions or fixed formats).
    if repr(as_float) == text or "e" in text.lower():
        return as_float
    return text


def parse_assignment(text: str, what: str = "value") -> tuple[str, Scalar]:
    """Split ``key=value`` into a key and a parsed scalar; raise ``ValueError`` if malformed."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{what} {text!r} is not of the form key=value")
    return key, parse_scalar(raw)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Flatten nested mappings into ``a.b.c`` keys; lists become JSON text."""
    flat: dict[str, Scalar] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        elif value is None:
            flat[name] = "null"
        else:
            flat[name] = canonical_json(value)
    return flat


def to_json_safe(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot hold) by the strings nan, inf, -inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """One line of JSON, the same bytes for the same content: sorted keys, ASCII only."""
    return json.dumps(
        to_json_safe(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def as_number(value: Any) -> float | None:
    """A metric or param as a float for comparisons, or None when it is not numeric."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer past any float: as far as comparing goes, ±inf
            return math.copysign(math.inf, value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            return float(value)
        except ValueError:
            return None
    return None


def format_scalar(value: Any) -> str:
    """A param or metric value as people read it in listings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_assignments(items: Iterable[tuple[str, Any]]) -> str:
    """``k=v k2=v2`` for listings."""
    return " ".join(f"{k}={format_scalar(v)}" for k, v in items)


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A CSV cell no spreadsheet runs as a formula: text starting with ``= + - @``, tab or
    carriage return, and not a number, gets a leading ``'`` (OWASP's advice against CSV
    injection; spreadsheets hide the quote). Numbers such as ``-0.5`` stay numbers."""
    if text.startswith(SPREADSHEET_FORMULA) and as_number(text) is None:
        return "'" + text
    return text

"""Params and metrics from the files people already write (JSON, TOML, YAML).

The format follows the file name: ``.toml`` is TOML, ``.yaml``/``.yml`` is YAML (read with
PyYAML, the optional ``yaml`` extra), anything else is JSON. Nested tables become
``a.b.c`` keys; lists are kept as JSON text; dates and times (TOML and YAML have them)
become ISO 8601 strings.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from git_prov.errors import BadPath, UsageProblem
from git_prov.model.values import Scalar, flatten

MAX_VALUES_FILE = 16 << 20
YAML_SUFFIXES = (".yaml", ".yml")


def read_values_file(path: Path, what: str = "metrics") -> dict[str, Scalar]:
    """Read a JSON, TOML or YAML file of values, flattened to ``a.b.c`` keys."""
    try:
        size = path.stat().st_size
        if size > MAX_VALUES_FILE:
            raise UsageProblem(f"{what} file {path} is larger than 16 MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadPath(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise BadPath(f"cannot read {what} file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        doc: Any
        if suffix == ".toml":
            doc = tomllib.loads(raw.decode("utf-8"))
        elif suffix in YAML_SUFFIXES:
            doc = _load_yaml(raw, path, what)
        else:
            doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageProblem(f"{what} file {path} cannot be parsed: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageProblem(f"{what} file {path} must hold a mapping of names to values")
    return flatten(_plain(doc))


def _load_yaml(raw: bytes, path: Path, what: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise UsageProblem(
            f"{what} file {path} is YAML, and PyYAML is not installed",
            "pip install 'git-prov[yaml]' (or pyyaml), or use JSON or TOML",
        ) from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        # YAMLError is not a ValueError: report it like the other formats' errors.
        raise ValueError(str(exc).replace("\n", " ")) from None


def _plain(value: Any) -> Any:
    """``value`` with the types only TOML and YAML have (dates, times, byte strings, sets)
    turned into JSON ones, and mapping keys into strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value

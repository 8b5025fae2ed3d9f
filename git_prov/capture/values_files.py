"""Params and metrics from the files people already write (JSON, TOML, YAML)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from git_prov.errors import BadPath, UsageProblem
from git_prov.model.values import Scalar, flatten

MAX_VALUES_FILE = 16 << 20


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
        elif suffix in (".yaml", ".yml"):
            doc = _load_yaml(raw, path, what)
        else:
            doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageProblem(f"{what} file {path} cannot be parsed: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageProblem(f"{what} file {path} must hold a mapping of names to values")
    return flatten(doc)


def _load_yaml(raw: bytes, path: Path, what: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise UsageProblem(
            f"{what} file {path} is YAML, and PyYAML is not installed",
            "pip install pyyaml, or use JSON or TOML",
        ) from None
    return yaml.safe_load(raw)

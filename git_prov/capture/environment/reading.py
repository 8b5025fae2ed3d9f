"""Small reads shared by the environment sections: files that may be absent, paths under a
test root, and text made safe for TOML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def under(root: Path, path: str) -> Path:
    """``path`` (absolute on the real machine) inside ``root``."""
    return root / path.lstrip("/") if os.path.isabs(path) else Path(path)


def read_text(path: Path, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def utf8_safe(value: Any) -> Any:
    """``value`` with undecodable bytes (lone surrogates from file names, variables and
    paths on POSIX) replaced by U+FFFD: TOML is UTF-8 and must never fail to encode."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {utf8_safe(k): utf8_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [utf8_safe(v) for v in value]
    return value

"""The fingerprint cache of the two expensive parts of environment capture (running the
interpreter, running ``nvidia-smi``): partial manifests in TOML files, each with a *stamp* of
what it depends on (see :mod:`git_prov.capture.environment` for what each part watches).

Beside each TOML file, a JSON copy of its two parsed documents (the file's and the
manifest's), named by the SHA-256 of the TOML bytes it was parsed from, spares every
record parsing TOML (and loading tomllib): a copy of other bytes is ignored, so it can
never answer for a file that changed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from git_prov.capture.environment.reading import read_text
from git_prov.model.manifest import EnvironmentManifest, load_document

CACHE_FORMAT = 1
_MAX_CACHE_BYTES = 32 << 20


def cache_file_for(cache_dir: Path, kind: str, identity: Sequence[str]) -> Path:
    digest = hashlib.sha256("\0".join(identity).encode("utf-8", "surrogateescape"))
    return Path(cache_dir) / f"{kind}-{digest.hexdigest()[:32]}.toml"


def stamp_of(keys: Sequence[str]) -> dict[str, str]:
    """The current value of every stamp key (see :data:`_STAMPERS`)."""
    stamp: dict[str, str] = {}
    for key in keys:
        kind, _, argument = key.partition(":")
        stamper = _STAMPERS.get(kind)
        stamp[key] = stamper(argument) if stamper is not None else "?"
    return stamp


def _stat_stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def _dir_stamp(path: str) -> str:
    try:
        st = os.stat(path)
        names = sorted(os.listdir(path))
    except OSError:
        return "absent"
    listing = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape"))
    return f"{st.st_mtime_ns}:{st.st_ino}:{listing.hexdigest()[:16]}"


def _names_stamp(path: str) -> str:
    """Only the names in a directory: /proc directories have no stable mtime or inode."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return "absent"
    return hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _bootid_stamp(path: str) -> str:
    return (read_text(Path(path)) or "").strip() or "unknown"


_STAMPERS: dict[str, Callable[[str], str]] = {
    "realpath": os.path.realpath,
    "file": _stat_stamp,
    "dir": _dir_stamp,
    "names": _names_stamp,
    "bootid": _bootid_stamp,
}


def read_cached(path: Path, identity: Sequence[str]) -> EnvironmentManifest | None:
    """The cached partial manifest, if the file is sound and its stamp still holds."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CACHE_BYTES + 1)
        if len(data) > _MAX_CACHE_BYTES:
            return None
        doc, manifest = _documents(path, data)
        stamp = doc["stamp"]
        if (
            doc.get("format") != CACHE_FORMAT
            or doc.get("identity") != list(identity)
            or not isinstance(stamp, dict)
            or stamp_of(list(stamp)) != stamp
        ):
            return None
        return EnvironmentManifest.from_document(manifest)
    except (
        OSError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        ValueError,
        RecursionError,
    ):
        return None


def write_cached(
    path: Path, identity: Sequence[str], stamp: Mapping[str, str], part: EnvironmentManifest
) -> None:
    """Write atomically (temp file + rename); a cache that cannot be written is skipped."""
    doc = {
        "format": CACHE_FORMAT,
        "identity": list(identity),
        "stamp": dict(stamp),
        "manifest": part.to_toml().decode("utf-8"),
    }
    data = tomli_w.dumps(doc, multiline_strings=True).encode("utf-8")
    _write_atomically(path, data)  # (its JSON copy is made by the first read)


def _documents(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache file's document (without its ``manifest`` text) and the manifest's:
    from the JSON copy when it was made of exactly ``data``, else parsed from the TOML
    (and the copy written for next time). ValueError, KeyError or TypeError when ``data``
    is not a cache file."""
    digest = hashlib.sha256(data).hexdigest()
    with contextlib.suppress(OSError, ValueError, RecursionError):
        found = json.loads(_copy_path(path).read_bytes())
        if isinstance(found, dict) and found.get("source") == digest:
            doc, manifest = found.get("file"), found.get("manifest")
            if isinstance(doc, dict) and isinstance(manifest, dict):
                return doc, manifest
    import tomllib

    outer = tomllib.loads(data.decode("utf-8"))
    manifest = load_document(str(outer["manifest"]).encode("utf-8"), "environment")
    doc = {k: v for k, v in outer.items() if k != "manifest"}
    _write_copy(path, data, doc, manifest)
    return doc, manifest


def _copy_path(path: Path) -> Path:
    return path.with_name(path.stem + ".json")


def _write_copy(path: Path, data: bytes, doc: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Write the JSON copy of ``data``'s parsed documents, if JSON holds them exactly (it
    does not hold a TOML date, nor NaN as equal to itself): else there is no copy."""
    copy = {"source": hashlib.sha256(data).hexdigest(), "file": doc, "manifest": manifest}
    try:
        text = json.dumps(copy)
        exact = json.loads(text) == copy
    except (TypeError, ValueError, RecursionError):
        return
    if exact:
        _write_atomically(_copy_path(path), text.encode("ascii"))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (temp file + rename); a cache that cannot be written is
    skipped."""
    import tempfile

    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
        temp = None
    except OSError:
        pass
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)

"""The fingerprint cache of the two expensive parts of environment capture (running the
interpreter, running ``nvidia-smi``): partial manifests in TOML files, each with a *stamp* of
what it depends on (see :mod:`git_prov.capture.environment` for what each part watches)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import tomli_w

from git_prov.capture.environment.reading import read_text
from git_prov.model.manifest import EnvironmentManifest

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
        doc = tomllib.loads(data.decode("utf-8"))
        stamp = doc["stamp"]
        if (
            doc.get("format") != CACHE_FORMAT
            or doc.get("identity") != list(identity)
            or not isinstance(stamp, dict)
            or stamp_of(list(stamp)) != stamp
        ):
            return None
        return EnvironmentManifest.from_toml(str(doc["manifest"]).encode("utf-8"))
    except (
        OSError,
        UnicodeDecodeError,
        tomllib.TOMLDecodeError,
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

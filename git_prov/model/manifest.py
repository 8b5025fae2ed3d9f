"""Data and environment manifests, stored as TOML blobs under ``refs/prov/objects``.

A manifest is identified by the git blob id of its canonical bytes, so two runs that read
the same data or ran in the same environment share one stored manifest. Encoding is
canonical (sorted keys, sorted entries), which is what makes that sharing work.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import PurePosixPath
from typing import Any

from git_prov.errors import BadPath
from git_prov.model.frozen import FRESH, Fields, frozen_fields
from git_prov.model.limits import MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES

MANIFEST_VERSION = 1

# A string tomli_w writes between double quotes as it is: printable ASCII but " and \.
_PLAIN_STRING = re.compile(r"[ !#-\[\]-~]*")


_MAX_LINE_LENGTH = 100  # tomli_w's: a wider table is not written inline


def _plain_pairs(table: Mapping[str, Any]) -> list[str] | None:
    """``key = value`` of each item of ``table`` as tomli_w writes them, when its values
    are plain strings, ints and booleans; None otherwise."""
    pairs = []
    for key, value in table.items():
        if isinstance(value, bool):
            pairs.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            pairs.append(f"{key} = {value}")
        elif isinstance(value, str) and _PLAIN_STRING.fullmatch(value):
            pairs.append(f'{key} = "{value}"')
        else:
            return None
    return pairs


def _common_tables(entries: tuple[DataEntry, ...]) -> str | None:
    """The ``[[file]]`` tables, as tomli_w writes them, when every entry has the common
    shape — path, size, hash, mode and source only, plain strings — and one of them is too
    wide to be inline (a SHA-256 makes it so); None otherwise. (20k files: 2x faster than
    the general way below, whose output it equals.)"""
    if not entries or not all(
        e.link is None
        and e.kept is None
        and e.written is None
        and e.present is not False
        and not e.also
        and type(e.size) is int
        for e in entries
    ):
        return None
    # One match over every string: the plain characters are plain one by one.
    if not _PLAIN_STRING.fullmatch("".join(f"{e.path}{e.hash}{e.mode}{e.source}" for e in entries)):
        return None
    # ``    { path = "…", size = N, hash = "…", mode = "…", source = "…" },``
    fixed = len('    { path = "", size = , hash = "", mode = "", source = "" },')
    if not any(
        fixed + len(e.path) + len(str(e.size)) + len(e.hash) + len(e.mode) + len(e.source)
        > _MAX_LINE_LENGTH
        for e in entries
    ):
        return None
    return "".join(
        f'\n[[file]]\npath = "{e.path}"\nsize = {e.size}\nhash = "{e.hash}"\n'
        f'mode = "{e.mode}"\nsource = "{e.source}"\n'
        for e in entries
    )


def _inline_width(pairs: list[str]) -> int:
    """The width of ``    { a = 1, b = 2 },``: tomli_w's inline form of these pairs."""
    return 4 + 2 + sum(map(len, pairs)) + 2 * (len(pairs) - 1) + 2 + 1


# Where a data entry's hash came from (docs/format.md).
SOURCE_READ = "read"  # we read the bytes (or our stat cache remembered reading them)
SOURCE_GIT = "git"  # a tracked, unmodified file: its blob id in the index, not read
SOURCE_LFS = "lfs"  # a git-LFS pointer file: the object id it names
SOURCE_DVC = "dvc"
SOURCE_ANNEX = "annex"
# Each source as ``show`` and the report name it (DataEntry.hash_origin).
HASH_ORIGINS = {
    SOURCE_READ: "hashed from its bytes",
    SOURCE_GIT: "git blob id, unmodified",
    SOURCE_LFS: "LFS pointer's id",
    SOURCE_DVC: "DVC's hash",
    SOURCE_ANNEX: "git-annex key",
}

# Where a data entry's bytes were kept by git-prov (``--keep``; docs/format.md "Kept data").
KEPT_GIT = "git"  # a git blob at data/sha256/<ab>/<rest> of refs/prov/data
KEPT_LFS = "lfs"  # a git-LFS object (pointer at data/lfs/<ab>/<rest> of refs/prov/data)

_entry_path = operator.attrgetter("path")

MODE_FILE = "100644"
MODE_EXECUTABLE = "100755"
MODE_LINK = "120000"


@frozen_fields
class DataEntry(Fields):
    """One file of a data manifest (ordered as ``order=True`` orders: field by field)."""

    path: str
    size: int
    hash: str  # "<algorithm>:<hex>", e.g. "sha256:…", "git:…" (a git blob id), "md5:…"
    mode: str = MODE_FILE
    source: str = SOURCE_READ
    link: str | None = None  # the target, when the declared path (or a file in it) is a symlink
    kept: str | None = None  # KEPT_GIT or KEPT_LFS when git-prov kept the bytes (``--keep``)
    # Outputs only: did the run write the file (True), leave it as it found it (False), or
    # is that unknown (None: older records, ``record``, a racy stat)? See docs/format.md.
    written: bool | None = None
    # False when the working tree did not hold the content (an LFS pointer never
    # downloaded, an annexed file whose content is absent); None: it did.
    present: bool | None = None
    # Other names of the same bytes (``git:<blob id>`` of an output hashed as SHA-256), so
    # that a later run reading them under another hash is linked to this one.
    also: tuple[str, ...] = ()

    def __init__(
        self,
        path: str,
        size: int,
        hash: str,
        mode: str = MODE_FILE,
        source: str = SOURCE_READ,
        link: str | None = None,
        kept: str | None = None,
        written: bool | None = None,
        present: bool | None = None,
        also: tuple[str, ...] = (),
    ) -> None:
        # The fields are frozen: @dataclass sets them with object.__setattr__, which puts
        # each in the instance's dict (no field is a descriptor). Writing the dict, in field
        # order, does the same at a third of the cost (a manifest of 20k files makes 20k).
        fields = self.__dict__
        fields["path"] = path
        fields["size"] = size
        fields["hash"] = hash
        fields["mode"] = mode
        fields["source"] = source
        fields["link"] = link
        fields["kept"] = kept
        fields["written"] = written
        fields["present"] = present
        fields["also"] = also

    # Equality, hash and order written out (manifests of 20k entries compare and sort
    # them): the fields in order, as the generated ones compare them.
    def _fields(self) -> tuple[Any, ...]:
        return (
            self.path,
            self.size,
            self.hash,
            self.mode,
            self.source,
            self.link,
            self.kept,
            self.written,
            self.present,
            self.also,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, DataEntry)
            return self._fields() == other._fields()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __lt__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, DataEntry)
            return self._fields() < other._fields()
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, DataEntry)
            return self._fields() <= other._fields()
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, DataEntry)
            return self._fields() > other._fields()
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, DataEntry)
            return self._fields() >= other._fields()
        return NotImplemented

    @property
    def hash_origin(self) -> str:
        """Where the hash came from, in words for people (``show``, the report): the
        stored ``source`` ("read" means git-prov hashed the bytes, not that the run read
        the file). Sources this version does not know are shown as they are."""
        return HASH_ORIGINS.get(self.source, self.source)

    @property
    def recorded_facts(self) -> tuple[str, ...]:
        """What the record says beyond the hash, in words for people (``show``, the
        report): an output the run left as it found it, content that was not there."""
        facts = []
        if self.written is False:
            facts.append("not written by this run")
        if self.present is False:
            facts.append("content not present")
        return tuple(facts)

    @property
    def algorithm(self) -> str:
        return self.hash.partition(":")[0]

    @property
    def digest(self) -> str:
        return self.hash.partition(":")[2]

    @property
    def hashes(self) -> tuple[str, ...]:
        """Every name recorded for these bytes: ``hash`` first, then ``also``."""
        return (self.hash, *self.also)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "hash": self.hash,
            "mode": self.mode,
            "source": self.source,
        }
        if self.link is not None:
            out["link"] = self.link
        if self.kept is not None:
            out["kept"] = self.kept
        if self.written is not None:
            out["written"] = self.written
        if self.present is False:
            out["present"] = False
        if self.also:
            out["also"] = list(self.also)
        return out


@frozen_fields
class DataManifest(Fields):
    """The files a run read or wrote: declared paths expanded to files, with hashes."""

    paths: tuple[str, ...]
    entries: tuple[DataEntry, ...]
    missing: tuple[str, ...] = ()

    def __init__(
        self,
        paths: tuple[str, ...],
        entries: tuple[DataEntry, ...],
        missing: tuple[str, ...] = (),
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "paths", paths)
        set_(self, "entries", entries)
        set_(self, "missing", missing)

    @classmethod
    def build(
        cls, paths: Iterable[str], entries: Iterable[DataEntry], missing: Iterable[str] = ()
    ) -> DataManifest:
        """A manifest in canonical order (paths and entries sorted, duplicates dropped)."""
        unique = {e.path: e for e in entries}
        return cls(
            tuple(sorted(set(paths))),
            # Paths are unique here, so ordering by path is the dataclass order (and a lot
            # cheaper than comparing whole entries).
            tuple(sorted(unique.values(), key=_entry_path)),
            tuple(sorted(set(missing))),
        )

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, DataEntry]:
        return {e.path: e for e in self.entries}

    def to_toml(self) -> bytes:
        import tomli_w  # (only writers need it: not loaded by a command that only reads)

        doc: dict[str, Any] = {"prov": MANIFEST_VERSION, "kind": "data", "paths": list(self.paths)}
        if self.missing:
            doc["missing"] = list(self.missing)
        body = _common_tables(self.entries)
        if body is not None:
            return (tomli_w.dumps(doc) + body).encode()
        tables = [e.to_dict() for e in self.entries]
        # tomli_w writes [[file]] tables when one of them is too wide for an inline table
        # (as sha256 hashes make them). Those of plain values are formatted here, as tomli_w
        # would (20k files: 4x faster); anything else goes through tomli_w.
        plain = [_plain_pairs(t) for t in tables]
        if tables and all(p is not None for p in plain):
            pairs = [p for p in plain if p is not None]
            if any(_inline_width(p) > _MAX_LINE_LENGTH for p in pairs):
                body = "".join("\n[[file]]\n" + "".join(f"{x}\n" for x in p) for p in pairs)
                return (tomli_w.dumps(doc) + body).encode()
        if tables:
            doc["file"] = tables
        return tomli_w.dumps(doc).encode()

    @classmethod
    def from_toml(cls, data: bytes) -> DataManifest:
        doc = _load(data, "data")
        try:
            entries = [
                DataEntry(
                    path=_s(f["path"]),
                    size=int(f["size"]),
                    hash=_s(f["hash"]),
                    mode=_s(f.get("mode", MODE_FILE)),
                    source=_s(f.get("source", SOURCE_READ)),
                    link=None if f.get("link") is None else _s(f["link"]),
                    kept=None if f.get("kept") is None else _s(f["kept"]),
                    written=_optional_bool(f.get("written")),
                    present=_optional_bool(f.get("present")),
                    also=tuple(_s(h) for h in f.get("also", [])),
                )
                for f in doc.get("file", [])
            ]
            return cls.build(
                [_s(p) for p in doc.get("paths", [])],
                entries,
                [_s(p) for p in doc.get("missing", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed data manifest: {exc}") from None


@frozen_fields
class EnvironmentManifest(Fields):
    """The environment a command ran in.

    Each section is a JSON-like mapping (see ``docs/format.md`` for the keys). Volatile
    facts (free memory, load, uptime, GPU utilisation) are never stored, so the same
    environment always encodes to the same bytes and is stored once.
    """

    python: Mapping[str, Any] = field(default_factory=dict)
    packages: Mapping[str, str] = field(default_factory=dict)
    lockfiles: Mapping[str, str] = field(default_factory=dict)
    system: Mapping[str, Any] = field(default_factory=dict)
    cpu: Mapping[str, Any] = field(default_factory=dict)
    memory: Mapping[str, Any] = field(default_factory=dict)
    gpus: tuple[Mapping[str, Any], ...] = ()
    accelerator: Mapping[str, Any] = field(default_factory=dict)
    container: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        python: Mapping[str, Any] = FRESH,
        packages: Mapping[str, str] = FRESH,
        lockfiles: Mapping[str, str] = FRESH,
        system: Mapping[str, Any] = FRESH,
        cpu: Mapping[str, Any] = FRESH,
        memory: Mapping[str, Any] = FRESH,
        gpus: tuple[Mapping[str, Any], ...] = (),
        accelerator: Mapping[str, Any] = FRESH,
        container: Mapping[str, Any] = FRESH,
        variables: Mapping[str, str] = FRESH,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "python", {} if python is FRESH else python)
        set_(self, "packages", {} if packages is FRESH else packages)
        set_(self, "lockfiles", {} if lockfiles is FRESH else lockfiles)
        set_(self, "system", {} if system is FRESH else system)
        set_(self, "cpu", {} if cpu is FRESH else cpu)
        set_(self, "memory", {} if memory is FRESH else memory)
        set_(self, "gpus", gpus)
        set_(self, "accelerator", {} if accelerator is FRESH else accelerator)
        set_(self, "container", {} if container is FRESH else container)
        set_(self, "variables", {} if variables is FRESH else variables)

    _SECTIONS = (
        "python",
        "packages",
        "lockfiles",
        "system",
        "cpu",
        "memory",
        "accelerator",
        "container",
        "variables",
    )

    def to_toml(self) -> bytes:
        import tomli_w

        doc: dict[str, Any] = {"prov": MANIFEST_VERSION, "kind": "environment"}
        for name in self._SECTIONS:
            section = _clean(getattr(self, name))
            if section:
                doc[name] = section
        if self.gpus:
            doc["gpu"] = [_clean(g) for g in self.gpus]
        return tomli_w.dumps(doc).encode()

    @classmethod
    def from_toml(cls, data: bytes) -> EnvironmentManifest:
        return cls.from_document(load_document(data, "environment"))

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> EnvironmentManifest:
        """The manifest a TOML document parsed already holds (:func:`load_document`, or
        an exact copy of one): its kind and version are checked here."""
        doc = _checked(doc, "environment")
        try:
            sections = {name: dict(doc.get(name, {})) for name in cls._SECTIONS}
            gpus = tuple(dict(g) for g in doc.get("gpu", []))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed environment manifest: {exc}") from None
        return cls(gpus=gpus, **sections)

    def summary(self) -> str:
        """One line: Python 3.11.7 · 52 packages · Linux x86_64 · 2 CPUs · 1× NVIDIA H200."""
        parts = []
        if self.python.get("version"):
            parts.append(f"{self.python.get('implementation', 'Python')} {self.python['version']}")
        if self.packages:
            parts.append(f"{len(self.packages)} packages")
        if self.system.get("os"):
            parts.append(f"{self.system['os']} {self.system.get('machine', '')}".strip())
        if self.cpu.get("count"):
            parts.append(f"{self.cpu['count']} CPUs")
        if self.gpus:
            names = sorted({str(g.get("name", "GPU")) for g in self.gpus})
            parts.append(f"{len(self.gpus)}× {', '.join(names)}")
        if self.container.get("kind"):
            parts.append(f"in {self.container['kind']}")
        return " · ".join(parts)


def _clean(value: Any) -> Any:
    """Drop None values (TOML has no null) and sort keys, recursively."""
    if isinstance(value, Mapping):
        return {
            str(k): _clean(v)
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
            if v is not None
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value if v is not None]
    return value


def _load(data: bytes, kind: str) -> Mapping[str, Any]:
    return _checked(load_document(data, kind), kind)


def load_document(data: bytes, kind: str) -> dict[str, Any]:
    """The TOML document of a ``kind`` manifest's bytes, not yet checked (ValueError when
    they are no TOML). (tomllib is loaded here, when first needed.)"""
    import tomllib

    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"{kind} manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ValueError(f"{kind} manifest is not valid TOML: {exc}") from None


def _checked(doc: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """``doc`` if it is a manifest of ``kind`` in a version this one reads."""
    if doc.get("kind") != kind:
        raise ValueError(f"not a {kind} manifest (kind = {doc.get('kind')!r})")
    version = doc.get("prov")
    if not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
        raise ValueError(f"{kind} manifest has unsupported format version {version!r}")
    return doc


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"expected true or false, found {type(value).__name__}")


def _s(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value


def safe_relative(path: str) -> str:
    """``path`` if it is a clean repo-relative POSIX path naming something below the root
    (not ``..``, not absolute, not inside ``.git``); raises BadPath otherwise. Manifests
    fetched from others are untrusted: every path is checked before it is used."""
    pure = PurePosixPath(path)
    parts = pure.parts
    if (
        not path
        or "\\" in path
        or "\0" in path
        or pure.is_absolute()
        or not parts
        or any(p in ("..", ".", "") for p in parts)
        or parts[0] == ".git"
        or path != pure.as_posix()
    ):
        raise BadPath(
            f"unsafe path in the run's manifest: {path!r}",
            "the ledger may have been tampered with; run git prov fsck",
        )
    return path

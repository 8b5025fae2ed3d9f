"""Environment tags: names for environment manifests (``gpu-box``, ``torch-2.4``), shared
with everyone through ``refs/prov/objects``.

An environment manifest's stable id is its blob id; people use its first 10 hex digits
(``env 3f2a9c1d0e``). A tag gives one a name.

Storage (docs/format.md). Every change to a tag is a new, immutable *entry*: a small TOML
blob stored at ``envtag/<name>/<blob id of the entry>`` in the objects tree::

    prov = 1
    kind = "envtag"
    name = "gpu-box"
    env = "<full id of the environment manifest>"   # absent: the tag was deleted
    at = "2026-11-26T11:34:00.123Z"
    by = "Ada Tester <ada@example.com>"
    replaces = ["<entry id>", …]                    # the entries this one moved the tag from

Paths are content-addressed like every other object path, so the union merge of two
clones' objects trees never conflicts: it simply holds every entry of both. The value of a
tag is read from its entries: the *heads* are the entries no other entry replaces; the
winner is the head with the latest ``at`` (ties: the larger entry id). The rule depends
only on the set of entries, so every clone that has the same entries agrees on the value,
whichever order the merges happened in. When a tag was moved on two machines before they
synced, both moves are heads: the latest wins everywhere, and the other is reported as
``diverged`` until someone sets the tag again (a new entry replaces every current head).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from git_prov.model.ids import is_hex_oid

TAG_DIR = "envtag"
ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 64 << 10
TAG_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}\Z")
_HEX_ONLY = re.compile(r"^[0-9a-f]{4,}\Z")


def check_tag_name(name: str) -> str | None:
    """Why ``name`` cannot be a tag name, or None when it can."""
    if not TAG_NAME_RE.match(name):
        return (
            "a tag name is 1-100 characters of letters, digits and . _ + -, "
            "starting with a letter or digit"
        )
    if _HEX_ONLY.match(name):
        return "a tag name of only hex digits would read as an environment id"
    return None


@dataclass(frozen=True)
class TagEntry:
    """One change to a tag: it now names ``env`` (None: deleted)."""

    name: str
    env: str | None
    at: str
    by: str
    replaces: tuple[str, ...] = ()
    id: str = ""  # the blob id the entry is stored as (set when read back)

    def to_toml(self) -> bytes:
        """The entry's canonical bytes (its id is the git blob id of these bytes)."""
        import tomli_w

        doc: dict[str, Any] = {"prov": ENTRY_VERSION, "kind": "envtag", "name": self.name}
        if self.env is not None:
            doc["env"] = self.env
        doc["at"] = self.at
        doc["by"] = self.by
        if self.replaces:
            doc["replaces"] = sorted(self.replaces)
        return tomli_w.dumps(doc).encode()

    @classmethod
    def from_toml(cls, entry_id: str, data: bytes) -> TagEntry:
        """Read an entry; raise ``ValueError`` saying why it cannot be read."""
        if len(data) > MAX_ENTRY_BYTES:
            raise ValueError("tag entry is too large")
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"tag entry is not valid TOML: {exc}") from None
        if doc.get("kind") != "envtag":
            raise ValueError("not an environment tag entry")
        version = doc.get("prov")
        if not isinstance(version, int) or not 1 <= version <= ENTRY_VERSION:
            raise ValueError(f"tag entry has unsupported format version {version!r}")
        name, env, at, by = doc.get("name"), doc.get("env"), doc.get("at"), doc.get("by", "")
        replaces = doc.get("replaces", [])
        if not isinstance(name, str) or check_tag_name(name) is not None:
            raise ValueError(f"bad tag name {name!r}")
        if env is not None and not (isinstance(env, str) and is_hex_oid(env)):
            raise ValueError("env is not an object id")
        if not isinstance(at, str) or not isinstance(by, str):
            raise ValueError("at/by are not strings")
        if not isinstance(replaces, list) or not all(isinstance(r, str) for r in replaces):
            raise ValueError("replaces is not a list of ids")
        return cls(name, env, at, by, tuple(replaces), entry_id)


@dataclass(frozen=True)
class EnvTag:
    """A tag's current value, how it got it, and any concurrent move that lost."""

    name: str
    env: str | None  # None: deleted
    at: str
    by: str
    entry: str
    diverged: tuple[TagEntry, ...] = ()
    history: int = 1  # entries this tag has had

    @property
    def deleted(self) -> bool:
        return self.env is None


def entry_path(name: str, entry_id: str) -> str:
    """Where an entry lives in the objects tree."""
    return f"{TAG_DIR}/{name}/{entry_id}"


def resolve_tags(entries: Iterable[TagEntry]) -> dict[str, EnvTag]:
    """Every tag's value from its entries (deleted tags included, with ``env`` None)."""
    by_name: dict[str, list[TagEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    out: dict[str, EnvTag] = {}
    for name, group in by_name.items():
        replaced = {r for e in group for r in e.replaces}
        heads = sorted(
            (e for e in group if e.id not in replaced), key=lambda e: (e.at, e.id), reverse=True
        )
        if not heads:  # a cycle of replaces cannot be written, but a hand-made tree could
            heads = sorted(group, key=lambda e: (e.at, e.id), reverse=True)
        win = heads[0]
        out[name] = EnvTag(
            name, win.env, win.at, win.by, win.id, tuple(heads[1:]), history=len(group)
        )
    return out


def heads_of(entries: Iterable[TagEntry], name: str) -> tuple[str, ...]:
    """The ids of a tag's current heads (what a new entry for ``name`` replaces)."""
    group = [e for e in entries if e.name == name]
    replaced = {r for e in group for r in e.replaces}
    return tuple(sorted(e.id for e in group if e.id not in replaced))


# ---- reading and writing through the ledger -----------------------------------------------


def read_entries(ledger: Any) -> list[TagEntry]:
    """Every readable tag entry in the objects tree (misfiled or unreadable ones skipped)."""
    from git_prov.store.objects_tree import read_directory

    out = []
    for path, oid, data in read_directory(ledger, TAG_DIR):
        try:
            entry = TagEntry.from_toml(oid, data)
        except ValueError:
            continue
        if path == entry_path(entry.name, oid):
            out.append(entry)
    return out


def current_tags(ledger: Any) -> dict[str, EnvTag]:
    """Every tag's current value (deleted tags included, with ``env`` None)."""
    return resolve_tags(read_entries(ledger))


def _now() -> str:
    from datetime import UTC, datetime

    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _write(ledger: Any, name: str, env: str | None, entries: list[TagEntry]) -> EnvTag:
    from git_prov.store.objects_tree import add_entries

    sig = ledger.repo.signature()
    entry = TagEntry(name, env, _now(), f"{sig.name} <{sig.email}>", heads_of(entries, name))
    data = entry.to_toml()
    oid = ledger.store_object(data)
    verb = "delete" if env is None else "set"
    add_entries(ledger, {entry_path(name, oid): data}, f"git-prov: {verb} env tag {name}")
    stored = TagEntry(entry.name, entry.env, entry.at, entry.by, entry.replaces, oid)
    return resolve_tags([*entries, stored])[name]


def set_tag(ledger: Any, name: str, env: str, *, force: bool = False) -> tuple[EnvTag, bool]:
    """Make tag ``name`` name environment ``env`` (a full id); returns (tag, changed).

    Moving a tag that names another environment needs ``force``, as ``git tag -f`` does.
    """
    from git_prov.errors import UsageProblem

    problem = check_tag_name(name)
    if problem:
        raise UsageProblem(f"bad tag name {name!r}: {problem}")
    entries = read_entries(ledger)
    existing = resolve_tags(entries).get(name)
    if existing is not None and not existing.deleted:
        if existing.env == env and not existing.diverged:
            return existing, False
        if existing.env != env and not force:
            raise UsageProblem(
                f"tag {name!r} already names environment {(existing.env or '')[:10]}",
                "use --force to move it",
            )
    return _write(ledger, name, env, entries), True


def delete_tag(ledger: Any, name: str) -> EnvTag:
    """Delete tag ``name`` (a new entry, so the deletion reaches every clone)."""
    from git_prov.errors import NotFound

    entries = read_entries(ledger)
    existing = resolve_tags(entries).get(name)
    if existing is None or existing.deleted:
        raise NotFound(f"no environment tag {name!r}", "list them with git prov env tags")
    return _write(ledger, name, None, entries)


def resolve_environment(ledger: Any, spec: str) -> tuple[str, str]:
    """The full environment id ``spec`` names — a tag, a run (its environment) or an
    environment id prefix — and how it was found (``tag``, ``run``, ``env``)."""
    from git_prov.errors import NotFound
    from git_prov.query.located import find_run
    from git_prov.store.objects_tree import objects_with_prefix

    tag = current_tags(ledger).get(spec)
    if tag is not None and tag.env is not None:
        return tag.env, "tag"
    run_env: str | None = None
    run_error: NotFound | None = None
    try:
        run = find_run(ledger.repo, spec)
        run_env = run.record.env
        if run_env is None:
            raise NotFound(f"run {run.record.short_id} recorded no environment")
    except NotFound as exc:
        run_error = exc
    envs: list[str] = []
    if re.fullmatch(r"[0-9a-f]{4,64}", spec.lower()):
        envs = objects_with_prefix(ledger, "env", spec.lower())
    if run_env is not None and envs and envs != [run_env]:
        raise NotFound(
            f"{spec!r} is both a run id and an environment id prefix",
            "give more characters of the environment id",
        )
    if run_env is not None:
        return run_env, "run"
    if len(envs) == 1:
        return envs[0], "env"
    if len(envs) > 1:
        raise NotFound(
            f"environment id {spec!r} is ambiguous: {', '.join(e[:12] for e in envs[:5])}",
            "give more characters of the id",
        )
    if tag is not None:
        raise NotFound(f"environment tag {spec!r} was deleted", "list tags: git prov env tags")
    raise NotFound(
        f"no environment tag, run or environment id matches {spec!r}",
        "list tags with git prov env tags, runs with git prov find",
    ) from run_error

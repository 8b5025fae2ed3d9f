"""``git prov diff``: what changed between two runs — source, data, environment, params,
metrics — as data. :mod:`git_prov.query.drift` reuses the pieces to compare a run with the
working tree now."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from git_prov.model.manifest import DataEntry, DataManifest, EnvironmentManifest
from git_prov.model.record import RunRecord
from git_prov.model.values import as_number

# ---- data ---------------------------------------------------------------------------------

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"
UNVERIFIED = "unverified"  # same size, hashed with different algorithms: cannot tell


@dataclass(frozen=True)
class FileChange:
    """One file that differs between two data manifests."""

    path: str
    change: str  # added | removed | changed | unverified
    old_size: int | None = None
    new_size: int | None = None
    old_hash: str | None = None
    new_hash: str | None = None


@dataclass(frozen=True)
class DataDiff:
    """The difference of two data manifests (a run's inputs, or its outputs)."""

    role: str  # inputs | outputs
    old_manifest: str | None
    new_manifest: str | None
    changes: tuple[FileChange, ...]
    unchanged: int
    old_missing: tuple[str, ...] = ()
    new_missing: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return not self.changes and self.old_missing == self.new_missing


def entry_change(old: DataEntry, new: DataEntry) -> str:
    """SAME, CHANGED or UNVERIFIED for two entries of one path."""
    if old.hash == new.hash or set(old.hashes) & set(new.hashes):
        return SAME  # the same bytes (also under another recorded name: ``also``)
    if old.algorithm == new.algorithm or old.size != new.size:
        return CHANGED
    return UNVERIFIED


def diff_manifests(
    role: str,
    old: DataManifest | None,
    new: DataManifest | None,
    old_id: str | None = None,
    new_id: str | None = None,
) -> DataDiff:
    """Files added, removed and changed from ``old`` to ``new`` (either may be None)."""
    before = old.by_path() if old else {}
    after = new.by_path() if new else {}
    changes: list[FileChange] = []
    unchanged = 0
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None and b is not None:
            changes.append(FileChange(path, ADDED, new_size=b.size, new_hash=b.hash))
        elif b is None and a is not None:
            changes.append(FileChange(path, REMOVED, old_size=a.size, old_hash=a.hash))
        elif a is not None and b is not None:
            kind = entry_change(a, b)
            if kind == SAME:
                unchanged += 1
            else:
                changes.append(FileChange(path, kind, a.size, b.size, a.hash, b.hash))
    return DataDiff(
        role,
        old_id,
        new_id,
        tuple(changes),
        unchanged,
        tuple(old.missing) if old else (),
        tuple(new.missing) if new else (),
    )


# ---- environment ----------------------------------------------------------------------------

UPGRADED, DOWNGRADED = "upgraded", "downgraded"
# Facts that identify a physical device rather than what it is: never a difference.
_GPU_IDENTITY = frozenset(("uuid", "pci_bus_id", "index"))
_FACT_SECTIONS = ("python", "system", "cpu", "memory", "accelerator", "container")


@dataclass(frozen=True)
class PackageChange:
    """A distribution added, removed, or whose version moved."""

    name: str
    change: str  # added | removed | upgraded | downgraded | changed
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class FactChange:
    """Any other environment fact that differs: ``python.version``, ``gpu.0.driver``,
    ``accelerator.cuda_driver_version``, ``variables.CUDA_VISIBLE_DEVICES``, …"""

    section: str  # python, system, cpu, memory, gpu, accelerator, container, variables, lockfiles
    key: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class EnvDiff:
    """The difference of two environment manifests."""

    old_id: str | None
    new_id: str | None
    packages: tuple[PackageChange, ...] = ()
    facts: tuple[FactChange, ...] = ()

    @property
    def same(self) -> bool:
        return not self.packages and not self.facts


_VERSION_RE = re.compile(
    r"^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?"
    r"(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$",
    re.IGNORECASE,
)
_PRE_ORDER = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def version_key(text: str) -> tuple[Any, ...] | None:
    """A sort key for a PEP 440 version (``2.4.0rc1`` < ``2.4.0`` < ``2.4.0.post1``), or
    None when ``text`` is not one."""
    match = _VERSION_RE.match(text)
    if not match:
        return None
    release = [int(p) for p in match.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    inf = float("inf")
    pre: tuple[float, int] = (inf, 0)
    if match.group("pre_l"):
        pre = (_PRE_ORDER[match.group("pre_l").lower()], int(match.group("pre_n") or 0))
    post_n = match.group("post_n1") or match.group("post_n2")
    post = int(post_n) if post_n is not None else (0 if match.group("post_l") else -1)
    dev: float = int(match.group("dev_n") or 0) if match.group("dev_l") else inf
    if match.group("dev_l") and not match.group("pre_l") and post < 0:
        pre = (-inf, 0)  # 1.0.dev1 sorts before 1.0a1
    local = tuple(
        (1, int(p), "") if p.isdigit() else (0, 0, p.lower())
        for p in re.split(r"[-_.]", match.group("local") or "")
        if p
    )
    return (int(match.group("epoch") or 0), tuple(release), pre, post, dev, local)


def compare_versions(old: str, new: str) -> str:
    """UPGRADED, DOWNGRADED, SAME (equal as versions) or CHANGED (not comparable)."""
    a, b = version_key(old), version_key(new)
    if a is None or b is None:
        return SAME if old == new else CHANGED
    if a == b:
        return SAME
    return UPGRADED if b > a else DOWNGRADED


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out[prefix] = ", ".join(str(v) for v in value)
    else:
        out[prefix] = value


def environment_facts(env: EnvironmentManifest) -> dict[tuple[str, str], Any]:
    """Every fact of an environment except its packages, as (section, key) → value."""
    facts: dict[tuple[str, str], Any] = {}
    for section in _FACT_SECTIONS:
        flat: dict[str, Any] = {}
        _flat("", getattr(env, section), flat)
        facts.update({(section, k): v for k, v in flat.items()})
    facts[("gpu", "count")] = len(env.gpus)
    for i, gpu in enumerate(env.gpus):
        for k, v in gpu.items():
            if k not in _GPU_IDENTITY:
                facts[("gpu", f"{i}.{k}")] = v
    facts.update({("variables", k): v for k, v in env.variables.items()})
    facts.update({("lockfiles", k): v for k, v in env.lockfiles.items()})
    if not env.gpus:
        del facts[("gpu", "count")]
    return facts


def diff_environments(
    old: EnvironmentManifest | None,
    new: EnvironmentManifest | None,
    old_id: str | None = None,
    new_id: str | None = None,
) -> EnvDiff:
    """Packages added/removed/upgraded/downgraded and every other fact that changed."""
    if old_id is not None and old_id == new_id:
        return EnvDiff(old_id, new_id)
    old = old or EnvironmentManifest()
    new = new or EnvironmentManifest()
    packages: list[PackageChange] = []
    for name in sorted(old.packages.keys() | new.packages.keys()):
        a, b = old.packages.get(name), new.packages.get(name)
        if a is None:
            packages.append(PackageChange(name, ADDED, new=b))
        elif b is None:
            packages.append(PackageChange(name, REMOVED, old=a))
        elif a != b:
            kind = compare_versions(str(a), str(b))
            packages.append(PackageChange(name, CHANGED if kind == SAME else kind, a, b))
    before, after = environment_facts(old), environment_facts(new)
    facts = [
        FactChange(section, key, before.get((section, key)), after.get((section, key)))
        for section, key in sorted(before.keys() | after.keys(), key=_fact_order)
        if before.get((section, key)) != after.get((section, key))
    ]
    return EnvDiff(old_id, new_id, tuple(packages), tuple(facts))


_SECTION_ORDER = {
    s: i
    for i, s in enumerate(
        ("python", "system", "cpu", "memory", "gpu", "accelerator", "container", "lockfiles")
    )
}


def _fact_order(key: tuple[str, str]) -> tuple[int, str]:
    return (_SECTION_ORDER.get(key[0], 99), key[1])


# ---- params, metrics, run facts --------------------------------------------------------------


@dataclass(frozen=True)
class ValueChange:
    """A param, metric or run fact in two runs; ``delta``/``relative`` for numbers."""

    name: str
    change: str  # added | removed | changed | same
    old: Any = None
    new: Any = None
    delta: float | None = None
    relative: float | None = None


def values_equal(a: Any, b: Any) -> bool:
    """Equal as numbers when both are numeric (0.1 == "0.1"), else as values."""
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None and not isinstance(a, bool) and not isinstance(b, bool):
        return x == y or abs(x - y) <= 1e-12 * max(abs(x), abs(y))
    return bool(a == b)


def diff_values(
    old: Mapping[str, Any], new: Mapping[str, Any], *, keep_same: bool = False
) -> tuple[ValueChange, ...]:
    """Changed, added and removed values (and unchanged ones with ``keep_same``)."""
    out = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            out.append(ValueChange(name, REMOVED, old=old[name]))
        elif name not in old:
            out.append(ValueChange(name, ADDED, new=new[name]))
        else:
            a, b = old[name], new[name]
            x, y = as_number(a), as_number(b)
            delta = relative = None
            if x is not None and y is not None and not isinstance(a, bool | str):
                delta = y - x
                relative = delta / abs(x) if x else None
            same = values_equal(a, b)
            if same and not keep_same:
                continue
            out.append(ValueChange(name, SAME if same else CHANGED, a, b, delta, relative))
    return tuple(out)


# ---- source -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    """A file changed between two source trees; None counts for binary files."""

    path: str
    added: int | None
    deleted: int | None


@dataclass(frozen=True)
class SourceDiff:
    """How the code of two runs differs: their source commits (the snapshot when the tree
    was dirty) compared with ``git diff``."""

    old: str
    new: str
    same: bool
    files: tuple[FileStat, ...] = ()
    stat: str = ""
    patch: str | None = None
    error: str | None = None  # a source commit is not in this repository


def diff_source(
    repo: Any, old: str, new: str, *, patch: bool = False, color: bool = False
) -> SourceDiff:
    """``git diff`` between two source commits: per-file counts, ``--stat`` text and, with
    ``patch``, the full patch."""
    missing = [
        c
        for c in (old, new)
        if repo.git("cat-file", "-e", f"{c}^{{commit}}", check=False).returncode != 0
    ]
    if missing:
        why = f"commit {missing[0][:12]} is not in this repository (git prov fetch brings it)"
        return SourceDiff(old, new, False, error=why)
    if old == new or _tree(repo, old) == _tree(repo, new):
        return SourceDiff(old, new, True)
    numstat = repo.git("diff", "--no-ext-diff", "--numstat", "-z", old, new).stdout
    files = []
    fields = numstat.split(b"\0")
    for item in fields:
        parts = item.decode("utf-8", "surrogateescape").split("\t")
        if len(parts) == 3 and parts[2]:
            added, deleted, path = parts
            files.append(
                FileStat(
                    path,
                    None if added == "-" else int(added),
                    None if deleted == "-" else int(deleted),
                )
            )
    colour = "--color=always" if color else "--color=never"
    stat = repo.git("diff", "--no-ext-diff", "--stat=100", colour, old, new).stdout
    text = None
    if patch:
        text = repo.git("diff", "--no-ext-diff", colour, old, new).stdout.decode("utf-8", "replace")
    return SourceDiff(old, new, False, tuple(files), stat.decode("utf-8", "replace"), text)


def _tree(repo: Any, commit: str) -> str:
    return str(repo.git("rev-parse", f"{commit}^{{tree}}").stdout.decode().strip())


# ---- two runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs from run ``a`` to run ``b``."""

    a: RunRecord
    b: RunRecord
    run: tuple[ValueChange, ...]  # command, status, exit code, duration, host, …
    source: SourceDiff
    inputs: DataDiff
    outputs: DataDiff
    environment: EnvDiff
    params: tuple[ValueChange, ...]
    metrics: tuple[ValueChange, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document (records in their stored form)."""
        doc = asdict(self)
        doc["a"] = self.a.to_json_dict()
        doc["b"] = self.b.to_json_dict()
        doc["inputs"]["same"] = self.inputs.same
        doc["outputs"]["same"] = self.outputs.same
        doc["environment"]["same"] = self.environment.same
        return dict(_json_safe(doc))


def _json_safe(value: Any) -> Any:
    from git_prov.model.values import to_json_safe

    return to_json_safe(value)


_RUN_FACTS = (
    "command", "cwd", "status", "exit_code", "signal", "duration", "host", "user", "branch",
)  # fmt: skip


def diff_runs(
    repo: Any, a_spec: str, b_spec: str, *, patch: bool = False, color: bool = False
) -> RunDiff:
    """Compare two runs named by id (or short id / prefix)."""
    from git_prov.query.located import find_run
    from git_prov.store.ledger import Ledger

    ledger = Ledger(repo)
    a = find_run(repo, a_spec).record
    b = find_run(repo, b_spec).record

    def data(oid: str | None) -> DataManifest | None:
        return ledger.data_manifest(oid) if oid else None

    def env(oid: str | None) -> EnvironmentManifest | None:
        return ledger.env_manifest(oid) if oid else None

    facts_a = {k: getattr(a, k) for k in _RUN_FACTS if getattr(a, k) is not None}
    facts_b = {k: getattr(b, k) for k in _RUN_FACTS if getattr(b, k) is not None}
    run_changes = diff_values(facts_a, facts_b)
    same_env = a.env == b.env
    return RunDiff(
        a=a,
        b=b,
        run=run_changes,
        source=diff_source(repo, a.source_commit, b.source_commit, patch=patch, color=color),
        inputs=diff_manifests("inputs", data(a.inputs), data(b.inputs), a.inputs, b.inputs),
        outputs=diff_manifests("outputs", data(a.outputs), data(b.outputs), a.outputs, b.outputs),
        environment=EnvDiff(a.env, b.env)
        if same_env
        else diff_environments(env(a.env), env(b.env), a.env, b.env),
        params=diff_values(a.params, b.params),
        metrics=diff_values(a.metrics, b.metrics, keep_same=True),
    )

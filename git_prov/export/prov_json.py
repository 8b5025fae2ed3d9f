"""W3C PROV-JSON (https://www.w3.org/Submission/prov-json/) of recorded runs.

The mapping (``docs/integrations.md`` has the table):

* each run is an **activity** ``run:<run id>`` with its start and end time, command,
  status, exit code, params (``param:<name>``) and metrics (``metric:<name>``);
* the code is an **entity** ``commit:<id>`` the run used — the snapshot commit when the
  tree was dirty, itself derived from the commit it was taken on;
* each data file is an **entity** ``file:<path>@<algorithm>-<digest>`` (path and content
  both name it, so the output of one run is the very entity a later run used); inputs are
  ``used``; an output is ``wasGeneratedBy`` the one run credited with producing it
  (:func:`git_prov.model.producers.credit`: never a run whose record says it left the file
  as it found it; successful runs first, then the earliest) — PROV allows one generation
  per entity, so other runs that wrote the same bytes are listed in the entity's
  ``gitprov:alsoWrittenBy``, and when the records do not say which run wrote it there is
  no ``wasGeneratedBy`` but ``gitprov:candidateGenerators``; manifests (data,
  environment) and kept logs are entities ``object:<blob id>``, a data manifest a
  ``prov:Collection`` with its files as members;
* **agents**: the person who ran it (``agent:user/<user>@<host>``) and git-prov itself
  (``agent:software/git-prov-<version>``), which acted on the person's behalf.

Identifiers are qualified names under ``urn:git-prov:…`` namespaces declared in
``prefix``. The output is deterministic: the same runs give the same document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from git_prov.export import ExportRun
from git_prov.model.manifest import DataEntry, DataManifest
from git_prov.model.producers import Credit, Writer, credit
from git_prov.model.values import to_json_safe

PREFIXES = {
    "gitprov": "urn:git-prov:vocab#",
    "run": "urn:git-prov:run:",
    "commit": "urn:git-prov:commit:",
    "file": "urn:git-prov:file:",
    "object": "urn:git-prov:object:",
    "agent": "urn:git-prov:agent:",
    "param": "urn:git-prov:param:",
    "metric": "urn:git-prov:metric:",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
_SAFE = "/._-~"


def _qname(value: str) -> dict[str, str]:
    """A ``prov:type``-style value naming a type, as PROV-JSON writes qualified names."""
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


class _Document:
    """A PROV-JSON document under construction: maps of records by id, relations numbered
    in the order they are added (callers add in a deterministic order)."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, dict[str, Any]]] = {}
        self.counters: dict[str, int] = {}
        self.seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def node(self, kind: str, ident: str, attributes: Mapping[str, Any]) -> str:
        nodes = self.maps.setdefault(kind, {})
        nodes.setdefault(ident, {}).update(_clean(attributes))
        return ident

    def relation(self, kind: str, prefix: str, attributes: Mapping[str, str]) -> None:
        key = (kind, tuple(sorted(attributes.items())))
        if key in self.seen:
            return
        self.seen.add(key)
        number = self.counters.get(kind, 0) + 1
        self.counters[kind] = number
        self.maps.setdefault(kind, {})[f"_:{prefix}{number}"] = dict(attributes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": dict(PREFIXES)}
        out.update({kind: nodes for kind, nodes in self.maps.items() if nodes})
        return out


def prov_document(runs: Sequence[ExportRun]) -> dict[str, Any]:
    """The PROV-JSON document describing ``runs`` (see the module doc)."""
    doc = _Document()
    names = FileNames(runs)
    generators = _generators(runs, names)
    for run in runs:
        _add_run(doc, run, generators, names)
    for ident, found in generators.items():
        if found.conclusive:
            others = [f"run:{r}" for r in found.others]
            doc.node("entity", ident, {"gitprov:alsoWrittenBy": others})
        else:
            candidates = [f"run:{r}" for r in (found.best, *found.others)]
            doc.node("entity", ident, {"gitprov:candidateGenerators": candidates})
    return doc.to_json()


class FileNames:
    """One entity per file version, whatever hash named it: an entry that recorded other
    names of its bytes (``also``: the git blob id of an output hashed as SHA-256) joins
    them, and every entry of the same path naming the bytes by any of them uses one
    entity id, built from the SHA-256 when one is known (else the smallest name)."""

    def __init__(self, runs: Sequence[ExportRun]) -> None:
        parent: dict[tuple[str, str], tuple[str, str]] = {}

        def root(key: tuple[str, str]) -> tuple[str, str]:
            while parent.setdefault(key, key) != key:
                key = parent[key]
            return key

        for run in runs:
            for manifest in (run.inputs, run.outputs):
                for entry in manifest.entries if manifest is not None else ():
                    first = root((entry.path, entry.hash))
                    for name in entry.also:
                        other = root((entry.path, name))
                        if other != first:
                            parent[other] = first
        groups: dict[tuple[str, str], list[str]] = {}
        for key in list(parent):
            groups.setdefault(root(key), []).append(key[1])
        self.canonical: dict[tuple[str, str], str] = {}
        self.members: dict[tuple[str, str], list[str]] = {}
        for (path, _), hashes in groups.items():
            main = min(hashes, key=lambda h: (not h.startswith("sha256:"), h))
            for name in hashes:
                self.canonical[(path, name)] = main
            self.members[(path, main)] = sorted(hashes)

    def hash_of(self, entry: DataEntry) -> str:
        return self.canonical.get((entry.path, entry.hash), entry.hash)

    def names_of(self, entry: DataEntry) -> list[str]:
        return self.members.get((entry.path, self.hash_of(entry)), [entry.hash])

    def file_id(self, entry: DataEntry) -> str:
        algorithm, _, digest = self.hash_of(entry).partition(":")
        return (
            f"file:{quote(entry.path, safe=_SAFE)}@{quote(algorithm, safe='._-')}-"
            f"{quote(digest, safe='._-')}"
        )


def _generators(runs: Sequence[ExportRun], names: FileNames) -> dict[str, Credit[str]]:
    """File entity → the run credited with generating it (runs in the order given, the
    earliest preferred: it generated the content first)."""
    writers: dict[str, list[Writer[str]]] = {}
    for run in runs:
        for entry in run.outputs.entries if run.outputs is not None else ():
            writer = Writer(run.record.id, run.record.status, entry.path, entry.written)
            writers.setdefault(names.file_id(entry), []).append(writer)
    out: dict[str, Credit[str]] = {}
    for ident, found in writers.items():
        credited = credit(found, found[0].path)
        if credited is not None:
            out[ident] = credited
    return out


def _add_run(
    doc: _Document, run: ExportRun, generators: Mapping[str, Credit[str]], names: FileNames
) -> None:
    r = run.record
    activity = f"run:{r.id}"
    attributes: dict[str, Any] = {
        "prov:startTime": r.started,
        "prov:endTime": r.ended,
        "prov:type": _qname("gitprov:Run"),
        "prov:label": r.command,
        "gitprov:command": r.command,
        "gitprov:status": r.status,
        "gitprov:exitCode": r.exit_code,
        "gitprov:signal": r.signal,
        "gitprov:duration": r.duration,
        "gitprov:cwd": r.cwd,
        "gitprov:branch": r.branch,
        "gitprov:message": r.message,
        "gitprov:tags": list(r.tags) or None,
        "gitprov:origin": r.origin,
        "gitprov:reproduces": r.reproduces,
        "gitprov:shownOn": [f"commit:{c}" for c in run.shown_on if c != r.commit] or None,
    }
    for name, value in sorted(r.params.items()):
        attributes[f"param:{quote(name, safe=_SAFE)}"] = value
    for name, value in sorted(r.metrics.items()):
        attributes[f"metric:{quote(name, safe=_SAFE)}"] = value
    doc.node("activity", activity, attributes)

    # The code: the commit, and the snapshot of a dirty tree derived from it.
    commit = doc.node(
        "entity",
        f"commit:{r.commit}",
        {"prov:type": _qname("gitprov:Commit"), "prov:label": r.commit[:12]},
    )
    source = commit
    if r.snapshot:
        source = doc.node(
            "entity",
            f"commit:{r.snapshot}",
            {
                "prov:type": _qname("gitprov:Snapshot"),
                "prov:label": f"dirty working tree on {r.commit[:12]}",
            },
        )
        doc.relation(
            "wasDerivedFrom",
            "d",
            {"prov:generatedEntity": source, "prov:usedEntity": commit},
        )
    doc.relation("used", "u", {"prov:activity": activity, "prov:entity": source})

    # Data.
    for manifest, oid, relation in (
        (run.inputs, r.inputs, "used"),
        (run.outputs, r.outputs, "wasGeneratedBy"),
    ):
        if manifest is None or oid is None:
            continue
        collection = _add_manifest(doc, oid, manifest)
        for entry in manifest.entries:
            entity = _add_file(doc, entry, names)
            doc.relation("hadMember", "m", {"prov:collection": collection, "prov:entity": entity})
            found = generators.get(entity)
            if relation == "used":
                doc.relation("used", "u", {"prov:activity": activity, "prov:entity": entity})
            elif found is not None and found.conclusive and found.best == r.id:
                doc.relation(
                    "wasGeneratedBy",
                    "g",
                    {"prov:entity": entity, "prov:activity": activity, "prov:time": r.ended},
                )
    if r.env and run.environment is not None:
        env = doc.node(
            "entity",
            f"object:{r.env}",
            {
                "prov:type": _qname("gitprov:EnvironmentManifest"),
                "prov:label": run.environment.summary() or "environment",
                "gitprov:python": run.environment.python.get("version"),
                "gitprov:packages": len(run.environment.packages) or None,
            },
        )
        doc.relation("used", "u", {"prov:activity": activity, "prov:entity": env})
    for name in ("stdout", "stderr"):
        oid = getattr(r, name)
        if oid:
            log = doc.node(
                "entity", f"object:{oid}", {"prov:type": _qname("gitprov:Log"), "prov:label": name}
            )
            doc.relation(
                "wasGeneratedBy",
                "g",
                {"prov:entity": log, "prov:activity": activity, "prov:time": r.ended},
            )

    # Agents: who ran it, and git-prov, which recorded it on their behalf.
    person = None
    if r.user or r.host:
        who = f"{r.user or 'unknown'}@{r.host or 'unknown'}"
        person = doc.node(
            "agent",
            f"agent:user/{quote(who, safe='@._-')}",
            {
                "prov:type": _qname("prov:Person"),
                "prov:label": who,
                "gitprov:user": r.user,
                "gitprov:host": r.host,
            },
        )
        doc.relation(
            "wasAssociatedWith",
            "a",
            {"prov:activity": activity, "prov:agent": person},
        )
    tool = r.tool or "git-prov"
    software = doc.node(
        "agent",
        f"agent:software/{quote(tool.replace('/', '-'), safe='._-')}",
        {"prov:type": _qname("prov:SoftwareAgent"), "prov:label": tool},
    )
    doc.relation("wasAssociatedWith", "a", {"prov:activity": activity, "prov:agent": software})
    if person is not None:
        doc.relation(
            "actedOnBehalfOf",
            "b",
            {"prov:delegate": software, "prov:responsible": person, "prov:activity": activity},
        )


def _add_manifest(doc: _Document, oid: str, manifest: DataManifest) -> str:
    return doc.node(
        "entity",
        f"object:{oid}",
        {
            "prov:type": [_qname("prov:Collection"), _qname("gitprov:DataManifest")],
            "prov:label": ", ".join(manifest.paths) or "data manifest",
            "gitprov:paths": list(manifest.paths) or None,
            "gitprov:missing": list(manifest.missing) or None,
        },
    )


def _add_file(doc: _Document, entry: DataEntry, names: FileNames) -> str:
    all_names = names.names_of(entry)
    return doc.node(
        "entity",
        names.file_id(entry),
        {
            "prov:type": _qname("gitprov:File"),
            "prov:label": entry.path,
            "gitprov:path": entry.path,
            "gitprov:hash": names.hash_of(entry),
            # Every name of these bytes (a SHA-256 and a git blob id) when several are known.
            "gitprov:hashes": all_names if len(all_names) > 1 else None,
            "gitprov:hashSource": entry.source,
            "gitprov:size": entry.size,
            "gitprov:mode": entry.mode,
            "gitprov:link": entry.link,
        },
    )


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as PROV-JSON values: no nulls, no empty lists, no non-finite numbers."""
    return {
        k: to_json_safe(v) for k, v in attributes.items() if v is not None and v != [] and v != ""
    }

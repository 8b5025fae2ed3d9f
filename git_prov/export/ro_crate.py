"""A Workflow Run RO-Crate of recorded runs: a directory with ``ro-crate-metadata.json``
conforming to RO-Crate 1.1 and the Process Run Crate profile 0.5
(https://w3id.org/ro/wfrun/process/0.5), the member of the Workflow Run Crate family for
runs of tools that are not a workflow definition — a git-prov run is one command.

* Each run is a ``CreateAction`` (``FailedActionStatus`` for failed or killed runs) whose
  ``instrument`` is the code that ran — a ``SoftwareSourceCode`` for the commit (or the
  snapshot of a dirty tree) — whose ``object`` lists the input files and the params
  (``PropertyValue``), whose ``result`` lists the output files it wrote (not those its
  record says it left as it found them) and metrics, and whose
  ``agent`` is the person who ran it.
* Data files are ``File`` entities with local identifiers
  ``#file:<path>@<algorithm>-<digest>`` carrying ``contentSize``, the hash as
  ``identifier`` and the path as ``alternateName``: the data stays where it is (it can be
  large), so the crate describes it without containing it. Such an entity is contextual
  (RO-Crate 1.2, and ro-crate-py for any version, read a ``#`` id as "not in the
  payload"), so it is not in the root's ``hasPart``: ro-crate-py can then load the crate
  and write it back without looking for files that are not there.
* Where the data exists, the Process Run Crate's recommendations: the code's ``url`` and
  ``codeRepository`` are the repository's remote (as a web address, credentials removed),
  and the root's ``publisher`` is the organisation given with ``--publisher URL``.
* The crate's payload is what git-prov stored: ``git-prov/runs/<run id>.json`` (the
  record), ``git-prov/objects/<blob id>.toml`` (data and environment manifests) and
  ``git-prov/objects/<blob id>.log`` (kept stdout/stderr), each a ``File`` the root
  dataset ``hasPart``.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from git_prov.errors import UsageProblem
from git_prov.export import ExportRun
from git_prov.export.prov_json import FileNames
from git_prov.model.manifest import DataEntry
from git_prov.model.record import STATUS_OK
from git_prov.model.values import to_json_safe

METADATA_FILE = "ro-crate-metadata.json"
RO_CRATE_1_1 = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
# The RO-Crate 1.1 context defines every term used; the workflow-run context only adds
# terms (md5, sha256, ParameterConnection …) this export does not use.
CONTEXT = "https://w3id.org/ro/crate/1.1/context"
PAYLOAD_DIR = "git-prov"
NO_LICENSE = "#license-not-specified"


def crate_metadata(
    runs: Sequence[ExportRun],
    *,
    name: str,
    license: str | None = None,
    code_url: str | None = None,
    publisher: str | None = None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The ``ro-crate-metadata.json`` document for ``runs``, and the payload files
    (crate-relative path → bytes) it describes. ``code_url`` is the repository's web
    address (:func:`repository_url`); ``publisher`` an organisation's URL."""
    graph: dict[str, dict[str, Any]] = {}
    payload: dict[str, bytes] = {}
    parts: list[str] = []
    actions: list[str] = []
    authors: list[str] = []

    def add(entity: dict[str, Any]) -> str:
        ident = str(entity["@id"])
        graph.setdefault(ident, {}).update({k: v for k, v in entity.items() if v is not None})
        return ident

    def add_part(path: str, data: bytes, **properties: Any) -> str:
        payload[path] = data
        ident = add(
            {"@id": path, "@type": "File", "contentSize": str(len(data)), **properties},
        )
        if ident not in parts:
            parts.append(ident)
        return ident

    names = FileNames(runs)
    for run in runs:
        r = run.record
        record_part = add_part(
            f"{PAYLOAD_DIR}/runs/{r.id}.json",
            (json.dumps(r.to_json_dict(), indent=2, sort_keys=True) + "\n").encode(),
            name=f"git-prov record of run {r.short_id}",
            encodingFormat="application/json",
        )
        objects: list[str] = []
        for oid, what, suffix, media in (
            (r.inputs, "inputs data manifest", "toml", "application/toml"),
            (r.outputs, "outputs data manifest", "toml", "application/toml"),
            (r.env, "environment manifest", "toml", "application/toml"),
            (r.stdout, "stdout log", "log", "text/plain"),
            (r.stderr, "stderr log", "log", "text/plain"),
        ):
            if oid and oid in run.objects:
                objects.append(
                    add_part(
                        f"{PAYLOAD_DIR}/objects/{oid}.{suffix}",
                        run.objects[oid],
                        name=f"{what} of run {r.short_id}",
                        encodingFormat=media,
                        identifier=f"git:{oid}",
                    )
                )

        source = r.source_commit
        code = add(
            {
                "@id": f"#code-{source}",
                "@type": "SoftwareSourceCode",
                "name": f"{name} at {source[:12]}"
                + (" (dirty working tree snapshot)" if r.snapshot else ""),
                "version": source,
                "identifier": f"git:{source}",
                "url": code_url,
                "codeRepository": code_url,
                "description": (
                    f"snapshot commit {r.snapshot} of the working tree on commit {r.commit}"
                    if r.snapshot
                    else f"git commit {r.commit}"
                ),
            }
        )
        inputs = [_file(add, e, names) for e in (run.inputs.entries if run.inputs else ())]
        # An output the run left as it found it (``written = false``) is not its result.
        outputs = [
            _file(add, e, names)
            for e in (run.outputs.entries if run.outputs else ())
            if e.written is not False
        ]
        params = [
            add(_property(f"#run-{r.id}-param-{_slug(k)}", k, v))
            for k, v in sorted(r.params.items())
        ]
        metrics = [
            add(_property(f"#run-{r.id}-metric-{_slug(k)}", k, v))
            for k, v in sorted(r.metrics.items())
        ]
        agent = None
        if r.user:
            who = f"{r.user}@{r.host}" if r.host else r.user
            agent = add({"@id": f"#person-{_slug(who)}", "@type": "Person", "name": who})
            if agent not in authors:
                authors.append(agent)
        action: dict[str, Any] = {
            "@id": f"#run-{r.id}",
            "@type": "CreateAction",
            "name": f"git-prov run {r.short_id}: {r.command[:80]}",
            "description": r.command,
            "startTime": _iso(r.started),
            "endTime": _iso(r.ended),
            "instrument": {"@id": code},
            "object": _refs([*inputs, *params]),
            "result": _refs([*outputs, *metrics]),
            "agent": {"@id": agent} if agent else None,
            # A plain string, as the Process Run Crate profile checks it.
            "actionStatus": "http://schema.org/CompletedActionStatus"
            if r.status == STATUS_OK
            else "http://schema.org/FailedActionStatus",
            "error": None if r.status == STATUS_OK else _error(r.status, r.exit_code, r.signal),
            "identifier": r.id,
            "subjectOf": _refs([record_part, *objects]),
            "keywords": ", ".join(r.tags) or None,
            "disambiguatingDescription": r.message,
        }
        actions.append(add(action))

    if license is None:
        license_id = add(
            {
                "@id": NO_LICENSE,
                "@type": "CreativeWork",
                "name": "No license specified",
                "description": "git prov export was not given a license (--license)",
            }
        )
    else:
        license_id = add({"@id": _license_id(license), "@type": "CreativeWork", "name": license})
    if publisher is not None:
        add({"@id": publisher, "@type": "Organization", "name": publisher, "url": publisher})
    add(
        {
            "@id": PROCESS_RUN_CRATE,
            "@type": "CreativeWork",
            "name": "Process Run Crate",
            "version": "0.5",
        }
    )
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"git-prov runs of {name}",
        "description": f"{len(runs)} run(s) recorded by git-prov in {name}, with their "
        "code, data and environment",
        # The end of the last run, not the export time: the same runs give the same crate.
        "datePublished": _iso(max(run.record.ended for run in runs)),
        "license": {"@id": license_id},
        "author": _refs(authors),
        "publisher": {"@id": publisher} if publisher else None,
        "conformsTo": {"@id": PROCESS_RUN_CRATE},
        "hasPart": _refs(parts),
        "mentions": _refs(actions),
    }
    descriptor = {
        "@id": METADATA_FILE,
        "@type": "CreativeWork",
        "conformsTo": {"@id": RO_CRATE_1_1},
        "about": {"@id": "./"},
    }
    root = {k: v for k, v in root.items() if v is not None}
    entities = [descriptor, root, *(graph[k] for k in sorted(graph))]
    return {"@context": CONTEXT, "@graph": entities}, payload


def write_crate(
    runs: Sequence[ExportRun],
    directory: Path,
    *,
    name: str,
    license: str | None = None,
    code_url: str | None = None,
    publisher: str | None = None,
) -> None:
    """Write the crate into ``directory`` (created; an existing crate there is replaced,
    any other non-empty directory is refused)."""
    document, payload = crate_metadata(
        runs, name=name, license=license, code_url=code_url, publisher=publisher
    )
    if directory.exists():
        if not directory.is_dir():
            raise UsageProblem(f"{directory} exists and is not a directory")
        if any(directory.iterdir()) and not (directory / METADATA_FILE).is_file():
            raise UsageProblem(
                f"{directory} is not empty and holds no RO-Crate",
                "name a new directory with -o",
            )
        shutil.rmtree(directory / PAYLOAD_DIR, ignore_errors=True)
    try:
        for rel, data in payload.items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        (directory / METADATA_FILE).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot write the crate in {directory}: {exc.strerror}") from None


def _file(add: Any, entry: DataEntry, names: FileNames) -> str:
    # One File per version of a path, whatever hash named it (see FileNames).
    algorithm, _, digest = names.hash_of(entry).partition(":")
    ident = add(
        {
            "@id": f"#file:{quote(entry.path, safe='/._-~')}@{algorithm}-{digest}",
            "@type": "File",
            "name": entry.path.rpartition("/")[2],
            "alternateName": entry.path,
            "contentSize": str(entry.size),
            "encodingFormat": mimetypes.guess_type(entry.path, strict=False)[0],
            "identifier": names.hash_of(entry),
            "description": f"hash from {entry.source}"
            + (f"; symbolic link to {entry.link}" if entry.link else ""),
        }
    )
    return str(ident)


def _iso(stamp: str) -> str:
    """A stored UTC time (``…Z``) with an explicit ``+00:00`` offset, the ISO 8601 form
    the Process Run Crate profile checks for."""
    return stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp


def _license_id(license: str) -> str:
    """A license as an @id: URLs and local ids as given, an SPDX id as its SPDX URL."""
    if ":" in license or license.startswith("#"):
        return license
    return f"https://spdx.org/licenses/{quote(license, safe='.-+')}"


def _property(ident: str, name: str, value: Any) -> dict[str, Any]:
    safe = to_json_safe(value)
    return {"@id": ident, "@type": "PropertyValue", "name": name, "value": safe}


def _refs(idents: Sequence[str]) -> Any:
    """A JSON-LD reference or list of references (None when empty, so it is left out)."""
    if not idents:
        return None
    refs = [{"@id": i} for i in idents]
    return refs[0] if len(refs) == 1 else refs


def _slug(text: str) -> str:
    return quote(text, safe="._-~@")


def _error(status: str, exit_code: int | None, signal: int | None) -> str:
    if signal is not None:
        return f"{status}: killed by signal {signal}"
    return f"{status}: exit status {exit_code}"


# Hosts whose repositories are browsed at https://<host>/<path> (an SSH remote of one of
# them has that web address); another host's SSH remote gives no url rather than a guess.
WEB_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")


def repository_url(remote_url: str | None) -> str | None:
    """The web address of a git remote: an http(s) URL as it is without credentials,
    query or ``.git``; an SSH remote of a host in :data:`WEB_HOSTS` as its https address;
    None for anything else (a local path, ``file://``, another SSH host)."""
    from urllib.parse import urlsplit

    if not remote_url:
        return None
    text = remote_url.strip()
    host = path = ""
    scp = re.match(r"^(?:[^@/:]+@)?([^/:]+):(?!//)(.+)$", text)
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
        if parts.scheme in ("http", "https"):
            port = f":{parts.port}" if parts.port else ""
            return _web(f"{parts.scheme}://{host}{port}", path)
        if parts.scheme not in ("ssh", "git+ssh", "git"):
            return None
    elif scp:
        host, path = scp.group(1), scp.group(2)
    if host.lower() in WEB_HOSTS and path.strip("/"):
        return _web(f"https://{host.lower()}", path)
    return None


def _web(base: str, path: str) -> str | None:
    path = path.strip("/")
    path = path[:-4] if path.endswith(".git") else path
    return f"{base}/{path}" if path else None

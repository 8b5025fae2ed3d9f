"""``git prov export``: W3C PROV-JSON (validated against the W3C schema), a Workflow Run
RO-Crate (checked against RO-Crate 1.1 and Process Run Crate 0.5 requirements), an MLflow
file store (checked against MLflow's FileStore layout, and read back with MLflow's client
when it is installed) and CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import git, missing, prov

import git_prov
from git_prov.errors import NotFound, UsageProblem
from git_prov.export import ExportRun, export, load_runs, select_runs
from git_prov.export.mlflow_store import run_uuid, safe_key
from git_prov.export.prov_json import prov_document
from git_prov.export.ro_crate import PROCESS_RUN_CRATE, crate_metadata
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

# The PROV-JSON schema of the W3C Member Submission
# (https://www.w3.org/Submission/2013/SUBM-prov-json-20130424/schema), JSON Schema draft 4,
# transcribed as published.
W3C_PROV_JSON_SCHEMA = r"""
{
  "id": "http://provenance.ecs.soton.ac.uk/prov-json/schema#",
  "$schema": "http://json-schema.org/draft-04/schema#",
  "description": "Schema for a PROV-JSON document",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "prefix": {
      "type": "object",
      "patternProperties": {"^[a-zA-Z0-9_\\-]+$": {"type": "string", "format": "uri"}}
    },
    "entity": {"type": "object", "additionalProperties": {"$ref": "#/definitions/entity"}},
    "activity": {"type": "object", "additionalProperties": {"$ref": "#/definitions/activity"}},
    "agent": {"type": "object", "additionalProperties": {"$ref": "#/definitions/agent"}},
    "wasGeneratedBy": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/generation"}
    },
    "used": {"type": "object", "additionalProperties": {"$ref": "#/definitions/usage"}},
    "wasInformedBy": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/communication"}
    },
    "wasStartedBy": {"type": "object", "additionalProperties": {"$ref": "#/definitions/start"}},
    "wasEndedby": {"type": "object", "additionalProperties": {"$ref": "#/definitions/end"}},
    "wasInvalidatedBy": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/invalidation"}
    },
    "wasDerivedFrom": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/derivation"}
    },
    "wasAttributedTo": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/attribution"}
    },
    "wasAssociatedWith": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/association"}
    },
    "actedOnBehalfOf": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/delegation"}
    },
    "wasInfluencedBy": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/influence"}
    },
    "specializationOf": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/specialization"}
    },
    "alternateOf": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/alternate"}
    },
    "hadMember": {
      "type": "object",
      "additionalProperties": {"$ref": "#/definitions/membership"}
    },
    "bundle": {"type": "object", "additionalProperties": {"$ref": "#/definitions/bundle"}}
  },
  "definitions": {
    "typedLiteral": {
      "title": "PROV-JSON Typed Literal",
      "type": "object",
      "properties": {
        "$": {"type": "string"},
        "type": {"type": "string", "format": "uri"},
        "lang": {"type": "string"}
      },
      "required": ["$"],
      "additionalProperties": false
    },
    "stringLiteral": {"type": "string"},
    "numberLiteral": {"type": "number"},
    "booleanLiteral": {"type": "boolean"},
    "literalArray": {
      "type": "array",
      "minItems": 1,
      "items": {
        "anyOf": [
          {"$ref": "#/definitions/stringLiteral"},
          {"$ref": "#/definitions/numberLiteral"},
          {"$ref": "#/definitions/booleanLiteral"},
          {"$ref": "#/definitions/typedLiteral"}
        ]
      }
    },
    "attributeValues": {
      "anyOf": [
        {"$ref": "#/definitions/stringLiteral"},
        {"$ref": "#/definitions/numberLiteral"},
        {"$ref": "#/definitions/booleanLiteral"},
        {"$ref": "#/definitions/typedLiteral"},
        {"$ref": "#/definitions/literalArray"}
      ]
    },
    "entity": {
      "type": "object",
      "title": "entity",
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "agent": {"$ref": "#/definitions/entity"},
    "activity": {
      "type": "object",
      "title": "activity",
      "prov:startTime": {"type": "string", "format": "date-time"},
      "prov:endTime": {"type": "string", "format": "date-time"},
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "generation": {
      "type": "object",
      "title": "generation/usage",
      "properties": {
        "prov:entity": {"type": "string", "format": "uri"},
        "prov:activity": {"type": "string", "format": "uri"},
        "prov:time": {"type": "string", "format": "date-time"}
      },
      "required": ["prov:entity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "usage": {"$ref": "#/definitions/generation"},
    "communication": {
      "type": "object",
      "title": "communication",
      "properties": {
        "prov:informant": {"type": "string", "format": "uri"},
        "prov:informed": {"type": "string", "format": "uri"}
      },
      "required": ["prov:informant", "prov:informed"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "start": {
      "type": "object",
      "title": "start/end",
      "properties": {
        "prov:activity": {"type": "string", "format": "uri"},
        "prov:time": {"type": "string", "format": "date-time"},
        "prov:trigger": {"type": "string", "format": "uri"}
      },
      "required": ["prov:activity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "end": {"$ref": "#/definitions/start"},
    "invalidation": {
      "type": "object",
      "title": "invalidation",
      "properties": {
        "prov:entity": {"type": "string", "format": "uri"},
        "prov:time": {"type": "string", "format": "date-time"},
        "prov:activity": {"type": "string", "format": "uri"}
      },
      "required": ["prov:entity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "derivation": {
      "type": "object",
      "title": "derivation",
      "properties": {
        "prov:generatedEntity": {"type": "string", "format": "uri"},
        "prov:usedEntity": {"type": "string", "format": "uri"},
        "prov:activity": {"type": "string", "format": "uri"},
        "prov:generation": {"type": "string", "format": "uri"},
        "prov:usage": {"type": "string", "format": "uri"}
      },
      "required": ["prov:generatedEntity", "prov:usedEntity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "attribution": {
      "type": "object",
      "title": "attribution",
      "properties": {
        "prov:entity": {"type": "string", "format": "uri"},
        "prov:agent": {"type": "string", "format": "uri"}
      },
      "required": ["prov:entity", "prov:agent"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "association": {
      "type": "object",
      "title": "association",
      "properties": {
        "prov:activity": {"type": "string", "format": "uri"},
        "prov:agent": {"type": "string", "format": "uri"},
        "prov:plan": {"type": "string", "format": "uri"}
      },
      "required": ["prov:activity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "delegation": {
      "type": "object",
      "title": "delegation",
      "properties": {
        "prov:delegate": {"type": "string", "format": "uri"},
        "prov:responsible": {"type": "string", "format": "uri"},
        "prov:activity": {"type": "string", "format": "uri"}
      },
      "required": ["prov:delegate", "prov:responsible"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "influence": {
      "type": "object",
      "title": "",
      "properties": {
        "prov:influencer": {"type": "string", "format": "uri"},
        "prov:influencee": {"type": "string", "format": "uri"}
      },
      "required": ["prov:influencer", "prov:influencee"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "specialization": {
      "type": "object",
      "title": "specialization",
      "properties": {
        "prov:generalEntity": {"type": "string", "format": "uri"},
        "prov:specificEntity": {"type": "string", "format": "uri"}
      },
      "required": ["prov:generalEntity", "prov:specificEntity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "alternate": {
      "type": "object",
      "title": "alternate",
      "properties": {
        "prov:alternate1": {"type": "string", "format": "uri"},
        "prov:alternate2": {"type": "string", "format": "uri"}
      },
      "required": ["prov:alternate1", "prov:alternate2"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "membership": {
      "type": "object",
      "title": "membership",
      "properties": {
        "prov:collection": {"type": "string", "format": "uri"},
        "prov:entity": {"type": "string", "format": "uri"}
      },
      "required": ["prov:collection", "prov:entity"],
      "additionalProperties": {"$ref": "#/definitions/attributeValues"}
    },
    "bundle": {
      "type": "object",
      "title": "bundle",
      "properties": {
        "prefix": {
          "type": "object",
          "patternProperties": {"^[a-zA-Z0-9_\\-]+$": {"type": "string", "format": "uri"}}
        },
        "entity": {"type": "object", "additionalProperties": {"$ref": "#/definitions/entity"}},
        "activity": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/activity"}
        },
        "agent": {"type": "object", "additionalProperties": {"$ref": "#/definitions/agent"}},
        "wasGeneratedBy": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/generation"}
        },
        "used": {"type": "object", "additionalProperties": {"$ref": "#/definitions/usage"}},
        "wasInformedBy": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/communication"}
        },
        "wasStartedBy": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/start"}
        },
        "wasEndedby": {"type": "object", "additionalProperties": {"$ref": "#/definitions/end"}},
        "wasInvalidatedBy": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/invalidation"}
        },
        "wasDerivedFrom": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/derivation"}
        },
        "wasAttributedTo": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/attribution"}
        },
        "wasAssociatedWith": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/association"}
        },
        "actedOnBehalfOf": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/delegation"}
        },
        "wasInfluencedBy": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/influence"}
        },
        "specializationOf": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/specialization"}
        },
        "alternateOf": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/alternate"}
        },
        "hadMember": {
          "type": "object",
          "additionalProperties": {"$ref": "#/definitions/membership"}
        }
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def ledger_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with three runs: A cleans data, B trains on A's output with a dirty
    tree, C failed (recorded after the fact) with a text metric."""
    import subprocess

    home = tmp_path_factory.mktemp("export-home")
    root = tmp_path_factory.mktemp("export") / "proj"
    root.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_AUTHOR_NAME": "Ada Tester",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Tester",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
        "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
    }
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    git("init", "-q")
    (root / "README.md").write_text("# project\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "initial")
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("x,y\n1,2\n3,4\n")
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with git_prov.run(
            repo=root,
            command="python clean.py",
            inputs=[str(root / "data" / "raw.csv")],
            outputs=[str(root / "data" / "clean.csv")],
            params={"drop": "na", "opts": {"strict": True}},
            tags=["prep"],
            message="clean the data",
        ) as a:
            (root / "data" / "clean.csv").write_text("x,y\n1,2\n")
            a.log_metric("rows", 1)
        (root / "README.md").write_text("# project (dirty)\n")
        with git_prov.run(
            repo=root,
            command="python train.py --lr 0.1",
            inputs=[str(root / "data" / "clean.csv")],
            outputs=[str(root / "model.bin")],
            params={"lr": 0.1, "model": {"depth": 3}},
            tags=["baseline", "gpu"],
        ) as b:
            (root / "model.bin").write_bytes(b"\x00weights")
            b.log_metrics({"acc": 0.93, "loss": {"val": float("inf")}})
        git_prov.record(
            "sbatch =cmd|' /C calc'!A0",
            exit_code=2,
            repo=root,
            metrics={"note": "=HYPERLINK(1)", "acc": 0.5},
            duration=60,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root


@pytest.fixture(scope="module")
def runs(ledger_repo: Path) -> list[ExportRun]:
    ledger = Ledger(open_repo(ledger_repo))
    return load_runs(ledger, select_runs(ledger, [], all_runs=True))


def by_command(runs: list[ExportRun], start: str) -> ExportRun:
    return next(r for r in runs if r.record.command.startswith(start))


# ---- selecting runs ----------------------------------------------------------------------------


def test_runs_are_selected_by_id_prefix_or_commit(ledger_repo: Path, runs: list[ExportRun]) -> None:
    ledger = Ledger(open_repo(ledger_repo))
    assert len(runs) == 3 and [r.record.id for r in runs] == sorted(r.record.id for r in runs)
    first = runs[0].record
    chosen = select_runs(ledger, [first.short_id, first.id, "HEAD"])
    assert [r.id for r in chosen] == [r.record.id for r in runs]  # each once, oldest first
    with pytest.raises(UsageProblem):
        select_runs(ledger, [])
    with pytest.raises(NotFound):
        select_runs(ledger, ["zzzzzzzz"])
    with pytest.raises(UsageProblem, match="unknown export format"):
        export(open_repo(ledger_repo), [], "yaml", all_runs=True)


# ---- PROV-JSON ---------------------------------------------------------------------------------


def test_prov_json_is_valid_against_the_w3c_schema(runs: list[ExportRun]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(W3C_PROV_JSON_SCHEMA)
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    document = json.loads(json.dumps(prov_document(runs)))  # as a reader gets it
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    # The schema is not vacuous: a generation without its entity fails it.
    broken = {**document, "wasGeneratedBy": {"_:g1": {"prov:activity": "run:x"}}}
    assert not validator.is_valid(broken)


def test_prov_json_describes_runs_data_code_and_agents(runs: list[ExportRun]) -> None:
    doc = prov_document(runs)
    clean, train = by_command(runs, "python clean"), by_command(runs, "python train")
    assert set(doc["activity"]) == {f"run:{r.record.id}" for r in runs}
    activity = doc["activity"][f"run:{train.record.id}"]
    assert activity["prov:startTime"] == train.record.started
    assert activity["param:lr"] == 0.1 and activity["param:model.depth"] == 3
    assert activity["metric:acc"] == 0.93 and activity["metric:loss.val"] == "inf"
    assert activity["gitprov:tags"] == ["baseline", "gpu"]
    # Lineage: the file A generated is the very entity B used.
    generated = {
        g["prov:entity"]
        for g in doc["wasGeneratedBy"].values()
        if g["prov:activity"] == f"run:{clean.record.id}"
    }
    used = {
        u["prov:entity"]
        for u in doc["used"].values()
        if u["prov:activity"] == f"run:{train.record.id}"
    }
    shared = generated & used
    assert len(shared) == 1
    (entity,) = shared
    assert doc["entity"][entity]["gitprov:path"] == "data/clean.csv"
    assert doc["entity"][entity]["gitprov:hash"].startswith("sha256:")
    # B ran on a dirty tree: it used the snapshot, derived from the commit.
    assert train.record.snapshot
    snapshot = f"commit:{train.record.snapshot}"
    assert snapshot in used
    assert {
        "prov:generatedEntity": snapshot,
        "prov:usedEntity": f"commit:{train.record.commit}",
    } in doc["wasDerivedFrom"].values()
    # Agents: the person, and git-prov acting on their behalf.
    kinds = {a["prov:type"]["$"] for a in doc["agent"].values()}
    assert kinds == {"prov:Person", "prov:SoftwareAgent"}
    assert all(
        d["prov:delegate"].startswith("agent:software/") for d in doc["actedOnBehalfOf"].values()
    )
    # Every relation names declared nodes; the same runs give the same bytes.
    nodes = {*doc["entity"], *doc["activity"], *doc["agent"]}
    for relation in ("used", "wasGeneratedBy", "wasAssociatedWith", "hadMember"):
        for record in doc[relation].values():
            assert {v for k, v in record.items() if k != "prov:time"} <= nodes
    assert json.dumps(prov_document(runs), sort_keys=True) == json.dumps(doc, sort_keys=True)


# ---- RO-Crate ----------------------------------------------------------------------------------

# RO-Crate 1.1 context terms this export may use (each checked against
# https://w3id.org/ro/crate/1.1/context): a validator refuses keys the context lacks.
RO_CRATE_TERMS = {
    "@id", "@type", "about", "actionStatus", "agent", "alternateName", "author", "conformsTo",
    "contentSize", "datePublished", "description", "disambiguatingDescription",
    "encodingFormat", "endTime", "error", "hasPart", "identifier", "instrument", "keywords",
    "license", "mentions", "name", "object", "result", "startTime", "subjectOf", "value",
    "version", "url", "codeRepository", "publisher",
}  # fmt: skip
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{3})?\+\d{2}:\d{2})?$")


def check_process_run_crate(directory: Path) -> list[str]:
    """The REQUIRED checks of RO-Crate 1.1 and Process Run Crate 0.5 (as roc-validator
    makes them), for a crate on disk; returns the problems found."""
    problems: list[str] = []
    doc = json.loads((directory / "ro-crate-metadata.json").read_text(encoding="utf-8"))
    if doc.get("@context") not in (
        "https://w3id.org/ro/crate/1.1/context",
        ["https://w3id.org/ro/crate/1.1/context"],
    ):
        problems.append(f"@context {doc.get('@context')!r}")
    graph = doc["@graph"]
    ids = [e.get("@id") for e in graph]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("entities need unique @ids")
    entities = {e["@id"]: e for e in graph}

    def types(entity: dict[str, Any]) -> set[str]:
        value = entity.get("@type", [])
        return {value} if isinstance(value, str) else set(value)

    def refs(value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        return [i["@id"] for i in items if isinstance(i, dict) and "@id" in i]

    for entity in graph:
        if not types(entity):
            problems.append(f"{entity['@id']} has no @type")
        unknown = set(entity) - RO_CRATE_TERMS
        if unknown:
            problems.append(f"{entity['@id']}: keys outside the context {sorted(unknown)}")
        for key, value in entity.items():
            if isinstance(value, dict) and set(value) != {"@id"}:
                problems.append(f"{entity['@id']}.{key}: nested entity (not flattened)")
            for target in refs(value):
                if target not in entities and not re.match(r"^[a-z]+:", target):
                    problems.append(f"{entity['@id']}.{key} -> {target}: no such entity")
    descriptor = entities.get("ro-crate-metadata.json", {})
    if "CreativeWork" not in types(descriptor) or refs(descriptor.get("about")) != ["./"]:
        problems.append("metadata descriptor")
    if refs(descriptor.get("conformsTo")) != ["https://w3id.org/ro/crate/1.1"]:
        problems.append("descriptor conformsTo")
    root = entities.get("./", {})
    if "Dataset" not in types(root):
        problems.append("root is not a Dataset")
    for key in ("name", "description", "license", "datePublished"):
        if not root.get(key):
            problems.append(f"root lacks {key}")
    if not ISO_8601.match(str(root.get("datePublished", ""))):
        problems.append("datePublished is not ISO 8601")
    profiles = refs(root.get("conformsTo"))
    if not any(p.startswith("https://w3id.org/ro/wfrun/process/") for p in profiles):
        problems.append("root does not conform to Process Run Crate")
    for profile in profiles:
        if "CreativeWork" not in types(entities.get(profile, {})):
            problems.append(f"{profile} is not described as a CreativeWork")
    parts = set(refs(root.get("hasPart")))
    for entity in graph:
        if types(entity) & {"File", "Dataset"} and entity["@id"] != "./":
            ident = entity["@id"]
            # A local (#) id describes a file not in the payload: a contextual entity,
            # which hasPart must not list (ro-crate-py would look for it to copy).
            if ident.startswith("#") == (ident in parts):
                problems.append(f"{ident}: in the root's hasPart exactly when in the payload")
            if not ident.startswith("#") and not (directory / ident).is_file():
                problems.append(f"{ident} is not in the payload")
    for ident in parts:
        if not types(entities.get(ident, {})) & {"File", "Dataset"}:
            problems.append(f"hasPart {ident} is not a File or Dataset")
    actions = [e for e in graph if types(e) & {"CreateAction", "ActivateAction", "UpdateAction"}]
    mentioned = set(refs(root.get("mentions")))
    for action in actions:
        if not refs(action.get("instrument")):
            problems.append(f"{action['@id']} has no instrument")
        if action["@id"] not in mentioned:
            problems.append(f"{action['@id']} is not mentioned by the root")
        for key in ("startTime", "endTime"):
            if not ISO_8601.match(action.get(key, "")):
                problems.append(f"{action['@id']}.{key} is not ISO 8601")
        status = action.get("actionStatus")
        if status not in (
            "http://schema.org/CompletedActionStatus",
            "http://schema.org/FailedActionStatus",
        ):
            problems.append(f"{action['@id']}.actionStatus {status!r}")
        if "error" in action and status != "http://schema.org/FailedActionStatus":
            problems.append(f"{action['@id']}: error without FailedActionStatus")
    return problems


def test_ro_crate_meets_the_required_fields(ledger_repo: Path, tmp_path: Path) -> None:
    crate = tmp_path / "crate"
    result = export(open_repo(ledger_repo), [], "ro-crate", crate, all_runs=True, license="MIT")
    assert result.path == crate and result.runs == 3
    assert check_process_run_crate(crate) == []
    doc = json.loads((crate / "ro-crate-metadata.json").read_text())
    entities = {e["@id"]: e for e in doc["@graph"]}
    root = entities["./"]
    assert root["conformsTo"] == {"@id": PROCESS_RUN_CRATE}
    assert root["license"] == {"@id": "https://spdx.org/licenses/MIT"}
    actions = [e for e in doc["@graph"] if e["@type"] == "CreateAction"]
    assert len(actions) == 3
    failed = next(a for a in actions if "sbatch" in a["description"])
    assert failed["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert failed["error"] == "failed: exit status 2"
    train = next(a for a in actions if "train.py" in a["description"])
    objects = [entities[r["@id"]] for r in train["object"]]
    assert {o["alternateName"] for o in objects if o["@type"] == "File"} == {"data/clean.csv"}
    assert {o["name"]: o["value"] for o in objects if o["@type"] == "PropertyValue"} == {
        "lr": 0.1,
        "model.depth": 3,
    }
    code = entities[train["instrument"]["@id"]]
    assert code["@type"] == "SoftwareSourceCode" and "dirty" in code["name"]
    # The payload holds what git-prov stored, byte for byte.
    record = json.loads((crate / "git-prov" / "runs" / f"{train['identifier']}.json").read_text())
    assert record["id"] == train["identifier"] and record["params"]["lr"] == 0.1
    # Exporting again replaces the crate; a directory that is not a crate is refused.
    export(open_repo(ledger_repo), [failed["identifier"]], "ro-crate", crate)
    assert len(list((crate / "git-prov" / "runs").iterdir())) == 1
    assert check_process_run_crate(crate) == []
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageProblem, match="holds no RO-Crate"):
        export(open_repo(ledger_repo), [], "ro-crate", other, all_runs=True)


def test_ro_crate_without_a_license_says_so(runs: list[ExportRun]) -> None:
    doc, payload = crate_metadata(runs, name="proj")
    entities = {e["@id"]: e for e in doc["@graph"]}
    license_entity = entities[entities["./"]["license"]["@id"]]
    assert license_entity["name"] == "No license specified"
    assert all(path.startswith("git-prov/") for path in payload)


def test_repository_url_is_a_web_address_or_nothing() -> None:
    from git_prov.export.ro_crate import repository_url

    cases = {
        "git@github.com:team/proj.git": "https://github.com/team/proj",
        "ssh://git@gitlab.com/group/sub/proj.git": "https://gitlab.com/group/sub/proj",
        "https://user:s3cret@git.example.org:8443/x/proj.git?x=1": (
            "https://git.example.org:8443/x/proj"
        ),
        "http://example.org/proj/": "http://example.org/proj",
        "git@git.example.org:team/proj.git": None,  # an SSH host whose web address is unknown
        "/srv/git/proj.git": None,
        "file:///srv/git/proj.git": None,
        "../proj": None,
        "": None,
    }
    assert {url: repository_url(url) for url in cases} == cases


def test_ro_crate_names_the_code_repository_and_publisher(repo: Path, tmp_path: Path) -> None:
    from factories import write_run

    write_run(repo)
    git(repo, "remote", "add", "fork", "https://example.org/fork/proj.git")
    crate = tmp_path / "crate"

    def code_and_root() -> tuple[dict[str, Any], dict[str, Any]]:
        doc = json.loads((crate / "ro-crate-metadata.json").read_text())
        entities = {e["@id"]: e for e in doc["@graph"]}
        [code] = [e for e in doc["@graph"] if e["@type"] == "SoftwareSourceCode"]
        return code, entities

    # The only remote is the one the code is shared through.
    export(open_repo(repo), [], "ro-crate", crate, all_runs=True)
    code, entities = code_and_root()
    assert code["url"] == code["codeRepository"] == "https://example.org/fork/proj"
    assert "publisher" not in entities["./"]
    # origin wins over another remote; the publisher is the organisation given.
    git(repo, "remote", "add", "origin", "git@github.com:team/proj.git")
    export(open_repo(repo), [], "ro-crate", crate, all_runs=True, publisher="https://ror.org/05abc")
    code, entities = code_and_root()
    assert code["url"] == "https://github.com/team/proj"
    assert entities["./"]["publisher"] == {"@id": "https://ror.org/05abc"}
    assert entities["https://ror.org/05abc"]["@type"] == "Organization"
    assert check_process_run_crate(crate) == []
    with pytest.raises(UsageProblem, match="not an http"):
        export(open_repo(repo), [], "ro-crate", crate, all_runs=True, publisher="ACME")
    # No remote with a web address: no url rather than a made-up one.
    git(repo, "remote", "remove", "fork")
    git(repo, "remote", "set-url", "origin", str(tmp_path / "bare.git"))
    export(open_repo(repo), [], "ro-crate", crate, all_runs=True)
    code, _ = code_and_root()
    assert "url" not in code and "codeRepository" not in code


def test_ro_crate_py_loads_the_crate_and_writes_it_back(ledger_repo: Path, tmp_path: Path) -> None:
    """ro-crate-py (the `rocrate` package) reads the export and writes it back whole:
    described-not-copied data files are contextual entities it does not try to copy."""
    rocrate = pytest.importorskip("rocrate.rocrate")
    crate, again = tmp_path / "crate", tmp_path / "written-back"
    export(open_repo(ledger_repo), [], "ro-crate", crate, all_runs=True, license="MIT")
    loaded = rocrate.ROCrate(crate)
    described = [e for e in loaded.contextual_entities if e.id.startswith("#file:")]
    assert {e["alternateName"] for e in described} >= {"data/clean.csv", "data/raw.csv"}
    assert {e.id for e in loaded.data_entities} == {
        str(p.relative_to(crate)) for p in (crate / "git-prov").rglob("*") if p.is_file()
    }
    loaded.write(again)

    def graph(directory: Path) -> dict[str, Any]:
        doc = json.loads((directory / "ro-crate-metadata.json").read_text())
        return {e["@id"]: e for e in doc["@graph"]}

    assert graph(again) == graph(crate)
    for part in (crate / "git-prov").rglob("*"):
        if part.is_file():
            assert (again / part.relative_to(crate)).read_bytes() == part.read_bytes()
    assert check_process_run_crate(again) == []
    assert len(rocrate.ROCrate(again).get_entities()) == len(graph(crate))


# ---- MLflow ------------------------------------------------------------------------------------


def _read_meta(path: Path) -> dict[str, Any]:
    """meta.yaml as MLflow reads it (YAML); our writer quotes every string as JSON does."""
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_mlflow_store_has_the_file_store_layout(ledger_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "mlruns"
    result = export(open_repo(ledger_repo), [], "mlflow", store, all_runs=True, experiment="exp")
    assert any("note" in n and "not a number" in n for n in result.notes)
    assert (store / ".trash").is_dir()
    assert _read_meta(store / "0" / "meta.yaml")["name"] == "Default"
    [experiment] = [p for p in store.iterdir() if p.name not in ("0", ".trash")]
    meta = _read_meta(experiment / "meta.yaml")
    assert meta["name"] == "exp" and meta["experiment_id"] == experiment.name
    assert meta["lifecycle_stage"] == "active" and meta["artifact_location"].startswith("file://")
    runs = sorted(experiment.iterdir())
    runs = [p for p in runs if p.is_dir()]
    assert len(runs) == 3
    train = next(p for p in runs if (p / "params" / "lr").exists())
    info = _read_meta(train / "meta.yaml")
    assert info["run_id"] == info["run_uuid"] == train.name and len(train.name) == 32
    assert info["experiment_id"] == experiment.name and info["status"] == 3
    assert info["source_type"] == 4 and info["tags"] == [] and info["lifecycle_stage"] == "active"
    assert info["end_time"] >= info["start_time"] > 1_700_000_000_000
    assert (train / "params" / "lr").read_text() == "0.1"
    assert (train / "params" / "model.depth").read_text() == "3"
    line = (train / "metrics" / "acc").read_text()
    assert re.fullmatch(r"\d{13} 0\.93 0\n", line)
    assert (train / "metrics" / "loss.val").read_text().split()[1] == "inf"
    assert (train / "tags" / "mlflow.runName").read_text() == info["run_name"]
    assert (train / "tags" / "mlflow.source.git.commit").read_text() == (
        (train / "tags" / "mlflow.source.git.commit").read_text().strip()
    )
    assert (train / "tags" / "git-prov.tags").read_text() == "baseline, gpu"
    assert (train / "artifacts" / "git-prov" / "record.json").is_file()
    assert (train / "artifacts" / "git-prov" / "inputs.toml").is_file()
    failed = next(p for p in runs if (p / "tags" / "git-prov.metric.note").exists())
    assert _read_meta(failed / "meta.yaml")["status"] == 4
    # A second export replaces runs in place, in the same experiment.
    export(open_repo(ledger_repo), [], "mlflow", store, all_runs=True, experiment="exp")
    assert sorted(p.name for p in experiment.iterdir() if p.is_dir()) == [p.name for p in runs]
    assert run_uuid("x") == run_uuid("x") != run_uuid("y")


@pytest.mark.parametrize(
    ("name", "key"),
    [("acc", "acc"), ("val/acc", "val/acc"), ("a:b", "a_b"), ("../up", "_.._up"),
     ("/abs", "_abs"), ("a//b", "a__b"), ("ünï côde", "ünï côde"), ("", "_")],
)  # fmt: skip
def test_mlflow_names(name: str, key: str) -> None:
    assert safe_key(name) == key


def test_mlflow_reads_the_store_back(ledger_repo: Path, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason=missing("MLflow (the test-mlflow extra)"))
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    export(open_repo(ledger_repo), [], "mlflow", store, all_runs=True, experiment="exp")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow ≥ 3.7 gates the file store
    try:
        client = MlflowClient(tracking_uri=store.resolve().as_uri())
        experiment = client.get_experiment_by_name("exp")
        assert experiment is not None
        found = client.search_runs([experiment.experiment_id], "metrics.acc > 0.9")
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    [run] = found
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.1"
    assert run.data.metrics == {"acc": 0.93, "loss.val": float("inf")}
    assert run.data.tags["git-prov.tags"] == "baseline, gpu"
    assert mlflow is not None


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_has_one_row_per_run_and_a_column_per_name(runs: list[ExportRun]) -> None:
    from git_prov.export.csv_table import csv_text

    text = csv_text(runs)
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    header = list(rows[0])
    assert header[:3] == ["id", "short_id", "status"]
    assert [h for h in header if h.startswith(("params.", "metrics."))] == [
        "params.drop", "params.lr", "params.model.depth", "params.opts.strict",
        "metrics.acc", "metrics.loss.val", "metrics.note", "metrics.rows",
    ]  # fmt: skip
    train = next(r for r in rows if r["command"].startswith("python train"))
    assert train["params.lr"] == "0.1" and train["metrics.loss.val"] == "inf"
    assert train["params.drop"] == "" and train["tags"] == "baseline;gpu"
    failed = next(r for r in rows if r["status"] == "failed")
    # Formula-looking text is defused for spreadsheets; numbers are left alone.
    assert failed["metrics.note"] == "'=HYPERLINK(1)"
    assert failed["command"].startswith("'=") is False and failed["command"].startswith("sbatch")
    assert failed["metrics.acc"] == "0.5"


# ---- the command line --------------------------------------------------------------------------


def test_export_command(ledger_repo: Path, tmp_path: Path) -> None:
    proc = prov(ledger_repo, "export", "--all", "-f", "csv")
    assert len(list(csv.DictReader(io.StringIO(proc.stdout)))) == 3
    out = tmp_path / "runs.prov.json"
    proc = prov(ledger_repo, "export", "HEAD", "--format", "prov-json", "-o", str(out))
    assert proc.stdout == "" and "exported 3 runs as prov-json" in proc.stderr
    assert len(json.loads(out.read_text())["activity"]) == 3
    proc = prov(ledger_repo, "export", "--all", "-f", "mlflow", "-o", str(tmp_path / "ml"))
    assert "warning: run" in proc.stderr and "not a number" in proc.stderr
    assert (tmp_path / "ml" / ".trash").is_dir()
    assert prov(ledger_repo, "export", "-f", "csv", check=False).returncode == 2
    assert prov(ledger_repo, "export", "--all", "-f", "xml", check=False).returncode == 2
    missing = prov(ledger_repo, "export", "deadbeef", "-f", "csv", check=False)
    assert missing.returncode == 6 and missing.stderr.startswith("error: ")


def test_objects_missing_from_this_clone_are_reported_not_fatal(repo: Path) -> None:
    from conftest import git as run_git
    from factories import make_record

    head = run_git(repo, "rev-parse", "HEAD")
    record = make_record(head, stdout="0" * 40, env="1" * 40)
    Ledger(open_repo(repo)).write([(head, record)])
    result = export(open_repo(repo), [record.id], "prov-json")
    assert result.text is not None and f"run:{record.id}" in json.loads(result.text)["activity"]
    assert any("stdout log" in n for n in result.notes)
    assert any("environment manifest" in n for n in result.notes)
    proc = prov(repo, "export", record.short_id, "-f", "csv")
    assert "warning: run" in proc.stderr and record.id in proc.stdout

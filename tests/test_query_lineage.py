"""`git prov lineage`: a three-stage pipeline recorded with real `git prov run`, traced back
from its last output to raw data, as text, JSON, DOT and Mermaid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import commit_file, prov

PY = sys.executable
COPY_UPPER = "import sys; open(sys.argv[2], 'w').write(open(sys.argv[1]).read().upper())"
TRAIN = "import sys; open(sys.argv[2], 'w').write('model of ' + open(sys.argv[1]).read())"
EVALUATE = "import sys; open(sys.argv[3], 'w').write(str(len(open(sys.argv[1]).read())))"


def run(repo: Path, *args: str) -> str:
    proc = prov(repo, "run", *args)
    return proc.stderr.split("recorded run ")[1].split()[0]


@pytest.fixture
def pipeline(repo: Path) -> tuple[Path, dict[str, str]]:
    commit_file(repo, "prepare.py", COPY_UPPER)
    commit_file(repo, "train.py", TRAIN)
    commit_file(repo, "evaluate.py", EVALUATE)
    commit_file(repo, "data/raw.csv", "a,b\n")
    ids = {
        "prepare": run(
            repo, "-i", "data/raw.csv", "-o", "data/clean.csv", "--",
            PY, "prepare.py", "data/raw.csv", "data/clean.csv",
        ),
        "train": run(
            repo, "-i", "data/clean.csv", "-o", "model.txt", "--",
            PY, "train.py", "data/clean.csv", "model.txt",
        ),
        "evaluate": run(
            repo, "-i", "model.txt", "-i", "data/clean.csv", "-o", "report.txt", "--",
            PY, "evaluate.py", "model.txt", "data/clean.csv", "report.txt",
        ),
    }  # fmt: skip
    return repo, ids


def test_lineage_of_the_last_output_reaches_raw_data(pipeline: tuple[Path, dict[str, str]]) -> None:
    repo, ids = pipeline
    doc = json.loads(prov(repo, "lineage", "report.txt", "--json").stdout)
    assert doc["kind"] == "file"
    tree = doc["tree"]
    assert tree["file"]["path"] == "report.txt" and tree["run"].endswith(ids["evaluate"])
    assert tree["match"] == "hash"
    inputs = {step["file"]["path"]: step for step in tree["inputs"]}
    assert set(inputs) == {"model.txt", "data/clean.csv"}
    assert inputs["model.txt"]["run"].endswith(ids["train"])
    assert inputs["data/clean.csv"]["run"].endswith(ids["prepare"])
    [train_input] = inputs["model.txt"]["inputs"]
    assert train_input["file"]["path"] == "data/clean.csv"
    assert train_input["run"].endswith(ids["prepare"])
    prepare_step = inputs["data/clean.csv"]
    [raw] = prepare_step["inputs"]
    assert raw["file"]["path"] == "data/raw.csv" and raw["run"] is None
    assert raw["note"] == "raw data" and raw["file"]["hash"].startswith("git:")
    assert train_input["note"] == "its inputs are shown above"  # the DAG is not repeated
    edges = {(e["from"], e["to"], e["kind"]) for e in doc["edges"]}
    assert len([e for e in edges if e[2] == "input"]) == 4
    assert len([e for e in edges if e[2] == "output"]) == 3

    text = prov(repo, "lineage", "report.txt").stdout
    assert text.splitlines()[0].startswith("report.txt  sha256:")
    for name, short in ids.items():
        assert f"made by run {short}" in text, name
    assert "data/raw.csv" in text and "raw data" in text

    for fmt in ("--dot", "--mermaid"):
        graph = prov(repo, "lineage", fmt, "report.txt").stdout
        for short in ids.values():
            assert f"run {short}" in graph
        for path in ("report.txt", "model.txt", "data/clean.csv", "data/raw.csv"):
            assert path in graph
    dot = prov(repo, "lineage", "--dot", "report.txt").stdout
    assert dot.startswith("digraph lineage {") and dot.count("->") == 7
    mermaid = prov(repo, "lineage", "--mermaid", "report.txt").stdout
    assert mermaid.startswith("flowchart LR") and mermaid.count("-->") == 7


def test_run_target_producers_and_modified_files(pipeline: tuple[Path, dict[str, str]]) -> None:
    repo, ids = pipeline
    doc = json.loads(prov(repo, "lineage", ids["train"], "--json").stdout)
    assert doc["kind"] == "run" and doc["tree"]["run"].endswith(ids["train"])
    assert [s["file"]["path"] for s in doc["tree"]["inputs"]] == ["data/clean.csv"]

    # Two runs wrote the same bytes: the latest is followed, the other listed.
    again = run(
        repo, "-i", "data/raw.csv", "-o", "data/clean.csv", "--",
        PY, "prepare.py", "data/raw.csv", "data/clean.csv",
    )  # fmt: skip
    doc = json.loads(prov(repo, "lineage", "data/clean.csv", "--json").stdout)
    assert doc["tree"]["run"].endswith(again)
    assert [r[-8:] for r in doc["tree"]["others"]] == [ids["prepare"]]
    # …but a consumer's input comes from a run that ran before it.
    doc = json.loads(prov(repo, "lineage", "model.txt", "--json").stdout)
    assert doc["tree"]["inputs"][0]["run"].endswith(ids["prepare"])
    assert f"also written by {ids['prepare']}" in prov(repo, "lineage", "data/clean.csv").stdout

    # A file changed by hand after its run: the run that declared it, with a warning.
    (repo / "report.txt").write_text("edited\n")
    doc = json.loads(prov(repo, "lineage", "report.txt", "--json").stdout)
    assert doc["tree"]["match"] == "path" and doc["tree"]["run"].endswith(ids["evaluate"])
    assert doc["tree"]["note"] == f"modified since run {ids['evaluate']} wrote it"

    unknown = prov(repo, "lineage", "nothing-here.txt", check=False)
    assert unknown.returncode == 6 and "neither a file" in unknown.stderr

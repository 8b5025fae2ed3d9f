"""What a finished run's record says about how it ended: problems found after the command
ran never lose the run (they become warnings in the record and on stderr), and an output
the command did not write is recorded as such and never credited to it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import prov, runs_json

import git_prov

PY = sys.executable


# ---- problems after the command ran ------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_a_missing_metrics_file_never_loses_the_run(repo: Path, code: int) -> None:
    proc = prov(
        repo,
        "run",
        "--metrics-file",
        "nope.json",
        "--",
        PY,
        "-c",
        f"print('ok'); raise SystemExit({code})",
        check=False,
    )
    assert proc.returncode == code  # the command's own status, ok or not
    assert proc.stdout == "ok\n"
    assert "warning:" in proc.stderr and "nope.json" in proc.stderr
    [run] = runs_json(repo)
    assert run["exit_code"] == code
    assert any("nope.json" in w for w in run["warnings"])


def test_unparseable_metrics_and_unreadable_outputs_are_warnings(repo: Path) -> None:
    script = (
        "import os; open('m.json','w').write('{not json');"
        "os.makedirs('out', exist_ok=True); open('out/good.txt','w').write('fine');"
        "os.mkfifo('pipe')"
    )
    proc = prov(
        repo,
        "run",
        "--metrics-file",
        "m.json",
        "--metric",
        "kept=1",
        "-o",
        "out",
        "-o",
        "pipe",
        "--",
        PY,
        "-c",
        script,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [run] = runs_json(repo)
    assert run["metrics"] == {"kept": 1}  # what could be captured is kept
    warnings = " | ".join(run["warnings"])
    assert "m.json" in warnings and "pipe" in warnings  # a FIFO cannot be hashed
    assert proc.stderr.count("warning:") >= 2
    shown = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)
    assert [f["path"] for f in shown["outputs_manifest"]["files"]] == ["out/good.txt"]


def test_record_agrees_with_run(repo: Path) -> None:
    proc = prov(repo, "record", "--metrics-file", "nope.json", "--command", "sbatch x", "--json")
    assert "warning:" in proc.stderr and "nope.json" in proc.stderr
    record = json.loads(proc.stdout)
    assert any("nope.json" in w for w in record["warnings"])
    assert [r["id"] for r in runs_json(repo)] == [record["id"]]


def test_the_api_records_the_block_and_warns(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    with (
        pytest.warns(UserWarning, match="nope.json"),
        git_prov.run(metrics_files=["nope.json"], command="block") as active,
    ):
        pass
    assert active.run is not None
    assert any("nope.json" in w for w in active.run.warnings)
    assert [r["id"] for r in runs_json(repo)] == [active.run.id]


# ---- outputs the run did not write -------------------------------------------------------


def _two_runs_one_failed(repo: Path) -> tuple[dict[str, object], dict[str, object]]:
    """The first run writes out.txt; the second declares it, fails and leaves it alone."""
    prov(repo, "run", "-o", "out.txt", "--", "sh", "-c", "echo 1 > out.txt")
    prov(repo, "run", "-o", "out.txt", "--", "sh", "-c", "exit 1", check=False)
    by_status = {run["status"]: run for run in runs_json(repo)}
    return by_status["ok"], by_status["failed"]


def _output_files(repo: Path, run: dict[str, object]) -> list[dict[str, object]]:
    shown = json.loads(prov(repo, "show", "--json", str(run["short_id"])).stdout)
    files: list[dict[str, object]] = shown["outputs_manifest"]["files"]
    return files


def test_an_output_the_run_did_not_write_is_recorded_as_such(repo: Path) -> None:
    ok, failed = _two_runs_one_failed(repo)
    [wrote] = _output_files(repo, ok)
    [left] = _output_files(repo, failed)
    assert wrote["written"] is True and left["written"] is False
    assert wrote["hash"] == left["hash"]  # the same bytes: only the fact tells them apart


def test_lineage_credits_only_the_run_that_wrote_the_bytes(repo: Path) -> None:
    ok, failed = _two_runs_one_failed(repo)
    tree = json.loads(prov(repo, "lineage", "--json", "out.txt").stdout)["tree"]
    assert tree["run"] == ok["id"] and tree["match"] == "hash"
    assert failed["id"] not in tree["others"]
    text = prov(repo, "lineage", "out.txt").stdout
    assert str(ok["short_id"]) in text and str(failed["short_id"]) not in text
    # A consumer of out.txt is linked to the run that wrote it, not to the failed one.
    prov(repo, "run", "-i", "out.txt", "-o", "sum.txt", "--", "sh", "-c", "cat out.txt > sum.txt")
    tree = json.loads(prov(repo, "lineage", "--json", "sum.txt").stdout)["tree"]
    [step] = tree["inputs"]
    assert step["run"] == ok["id"] and failed["id"] not in step["others"]


def test_a_failed_run_that_did_write_is_credited_when_no_ok_run_did(repo: Path) -> None:
    prov(
        repo, "run", "-o", "part.txt", "--", "sh", "-c", "echo half > part.txt; exit 2", check=False
    )
    [failed] = runs_json(repo)
    [entry] = _output_files(repo, failed)
    assert entry["written"] is True
    tree = json.loads(prov(repo, "lineage", "--json", "part.txt").stdout)["tree"]
    assert tree["run"] == failed["id"]


def test_exports_and_report_credit_only_the_writer(repo: Path, tmp_path: Path) -> None:
    from git_prov.report import build_report
    from git_prov.store.repo import open_repo

    ok, failed = _two_runs_one_failed(repo)
    prov(repo, "run", "-i", "out.txt", "--", "sh", "-c", "cat out.txt")
    doc = json.loads(prov(repo, "export", "--all", "-f", "prov-json").stdout)
    generated = [
        g["prov:activity"]
        for g in doc["wasGeneratedBy"].values()
        if str(g["prov:entity"]).startswith("file:out.txt@")
    ]
    assert generated == [f"run:{ok['id']}"]
    crate = tmp_path / "crate"
    prov(repo, "export", "--all", "-f", "ro-crate", "-o", str(crate))
    graph = json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]
    results = {
        e["identifier"]: json.dumps(e.get("result", []))
        for e in graph
        if e["@type"] == "CreateAction"
    }
    assert "out.txt" in results[ok["id"]] and "out.txt" not in results[failed["id"]]
    report = build_report(open_repo(repo))
    assert [e.source for e in report.graph.edges] == [ok["id"]]


def test_the_credit_rule_lists_candidates_when_records_do_not_say() -> None:
    from git_prov.model.producers import Writer, credit

    left, wrote, unknown = (
        Writer("a", "ok", "x", False),
        Writer("b", "failed", "x", True),
        Writer("c", "ok", "x", None),
    )
    assert credit([left]) is None  # left as it found it: never the producer
    only = credit([left, wrote], "x")
    assert only is not None and (only.best, only.conclusive) == ("b", True)
    # An ok run is preferred, but its record does not say it wrote the file: candidates.
    both = credit([wrote, unknown], "x")
    assert both is not None and (both.best, both.others, both.conclusive) == ("c", ("b",), False)
    sure = credit([Writer("d", "ok", "x", True), unknown], "x")
    assert sure is not None and (sure.best, sure.conclusive) == ("d", True)


# ---- the same bytes, whatever hash named them --------------------------------------------


def test_an_output_later_committed_is_the_same_entity_in_lineage_and_exports(repo: Path) -> None:
    from conftest import git

    prov(repo, "run", "-o", "out.csv", "--", "sh", "-c", "echo a,b > out.csv")
    [producer] = runs_json(repo)
    [written] = _output_files(repo, producer)
    blob = git(repo, "hash-object", "out.csv")
    assert str(written["hash"]).startswith("sha256:")
    assert f"git:{blob}" in written["also"]  # both names of the bytes are recorded
    git(repo, "add", "out.csv")
    git(repo, "commit", "-q", "-m", "commit the output")
    prov(repo, "run", "-i", "out.csv", "-o", "n.txt", "--", "sh", "-c", "wc -c < out.csv > n.txt")
    consumer = next(r for r in runs_json(repo) if r["id"] != producer["id"])
    shown = json.loads(prov(repo, "show", "--json", str(consumer["short_id"])).stdout)
    [read] = shown["inputs_manifest"]["files"]
    assert read["hash"] == f"git:{blob}"  # named by git this time

    tree = json.loads(prov(repo, "lineage", "--json", "n.txt").stdout)["tree"]
    [step] = tree["inputs"]
    assert step["run"] == producer["id"] and step["match"] == "hash"

    doc = json.loads(prov(repo, "export", "--all", "-f", "prov-json").stdout)
    generated = {
        g["prov:entity"]
        for g in doc["wasGeneratedBy"].values()
        if g["prov:activity"] == f"run:{producer['id']}" and "out.csv" in g["prov:entity"]
    }
    used = {
        u["prov:entity"]
        for u in doc["used"].values()
        if u["prov:activity"] == f"run:{consumer['id']}" and "out.csv" in u["prov:entity"]
    }
    assert generated == used and len(used) == 1
    crate = repo / "crate"
    prov(repo, "export", "--all", "-f", "ro-crate", "-o", str(crate))
    graph = json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]
    actions = {e["identifier"]: e for e in graph if e["@type"] == "CreateAction"}
    wrote = json.dumps(actions[producer["id"]]["result"])
    read_ids = [o["@id"] for o in [actions[consumer["id"]]["object"]] if "out.csv" in o["@id"]]
    assert len(read_ids) == 1 and read_ids[0] in wrote  # one File, whatever hash named it


def test_show_says_what_the_record_says(repo: Path) -> None:
    ok, failed = _two_runs_one_failed(repo)
    assert "not written by this run" in prov(repo, "show", str(failed["short_id"])).stdout
    assert "not written" not in prov(repo, "show", str(ok["short_id"])).stdout
    prov(repo, "run", "--metrics-file", "nope.json", "--", "true")
    last = next(r for r in runs_json(repo) if r["id"] not in (ok["id"], failed["id"]))
    shown = prov(repo, "show", str(last["short_id"])).stdout
    assert "Warning:" in shown and "nope.json" in shown

"""``git prov report``: the HTML page's content, parsed back with html.parser, for a
generated ledger; a hostile record renders inert."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from git_prov.model.manifest import DataEntry, DataManifest, EnvironmentManifest
from git_prov.model.record import RunRecord
from git_prov.report import Edge, build_report, layered_layout, lineage_graph
from git_prov.report.html import SCRIPTS_EMITTED, render, run_anchor, script_json
from git_prov.store.ledger import KIND_DATA, KIND_ENV, Ledger
from git_prov.store.repo import open_repo
from tests.conftest import commit_file, git, prov
from tests.factories import make_record

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'&amp;</title>"


def rid(i: int) -> str:
    return f"20261126T1000{i:02d}.000Z-{i:08x}"


def started(i: int) -> str:
    return f"2026-11-26T10:00:{i:02d}.000Z"


class Page(HTMLParser):
    """Collects what the tests look at: elements with their attributes, text per element
    id, script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "script":
            self.in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def _manifest(ledger: Ledger, files: dict[str, str]) -> str:
    manifest = DataManifest(
        tuple(sorted(files)),
        tuple(DataEntry(p, 10, h) for p, h in sorted(files.items())),
    )
    return ledger.store_object(manifest.to_toml())


def _env(ledger: Ledger, version: str) -> str:
    env = EnvironmentManifest(python={"version": version}, packages={"numpy": "2.1.0"})
    return ledger.store_object(env.to_toml())


H = {name: "sha256:" + (f"{i:x}" * 64)[:64] for i, name in enumerate("abcdefghij", start=1)}


@pytest.fixture
def pipeline(repo: Path) -> dict[str, Any]:
    """A ledger with a 3-stage pipeline, a failed run, two mismatches, a run whose commit
    is gone, a conflict and an unreadable line."""
    c1 = git(repo, "rev-parse", "HEAD")
    c2 = commit_file(repo, "train.py", "print(1)\n")
    ledger = Ledger(open_repo(repo))
    env1, env2 = _env(ledger, "3.11.7"), _env(ledger, "3.12.1")
    data: dict[str, str] = {}

    def manifest(files: dict[str, str]) -> str:
        oid = _manifest(ledger, files)
        data[oid] = oid
        return oid

    def rec(i: int, commit: str, **changes: Any) -> RunRecord:
        fields: dict[str, Any] = {"id": rid(i), "started": started(i), "ended": started(i)}
        fields.update({"env": env1, "branch": "main"})
        fields.update(changes)
        return make_record(commit, **fields)

    runs = {
        "prep": rec(
            1,
            c1,
            command="python prep.py",
            params={"stage": "prep"},
            inputs=manifest({"raw.csv": H["a"]}),
            outputs=manifest({"clean.csv": H["b"]}),
        ),
        "train": rec(
            2,
            c1,
            command="python train.py",
            params={"stage": "train"},
            inputs=manifest({"clean.csv": H["b"]}),
            outputs=manifest({"model.pt": H["c"]}),
            metrics={"acc": 0.8, "loss": 0.5},
        ),
        "eval": rec(
            3,
            c1,
            command="python eval.py",
            params={"stage": "eval"},
            inputs=manifest({"model.pt": H["c"]}),
            outputs=manifest({"m.json": H["d"]}),
            metrics={"acc": 0.85},
        ),
        "failed": rec(
            4,
            c2,
            command="python train.py --bad",
            status="failed",
            exit_code=2,
            params={"lr": 9},
            tags=("broken",),
        ),
        "env_a": rec(5, c2, params={"lr": 0.1}, env=env1, metrics={"acc": 0.9}),
        "env_b": rec(6, c2, params={"lr": 0.1}, env=env2, metrics={"acc": 0.91}),
        "out_a": rec(
            7,
            c2,
            params={"seed": 7},
            inputs=manifest({"x.csv": H["e"]}),
            outputs=manifest({"y.bin": H["f"]}),
        ),
        "out_b": rec(
            8,
            c2,
            params={"seed": 7},
            inputs=manifest({"x.csv": H["e"]}),
            outputs=manifest({"y.bin": H["g"]}),
        ),
        "gone": rec(9, "1" * 40, params={"gone": True}),
    }
    conflict = rec(10, c1, command="python a.py", params={"conflict": 1})
    conflict_b = rec(10, c1, command="python b.py", params={"conflict": 1})
    entries = [(r.commit if r.commit != "1" * 40 else c2, r) for r in runs.values()]
    entries += [(c1, conflict), (c1, conflict_b)]
    ledger.write(entries, objects={KIND_DATA: list(data), KIND_ENV: [env1, env2]}, keep=[c1, c2])
    git(repo, "notes", "--ref=prov", "append", "-m", "this line is not a record", c1)
    runs["conflict"] = conflict
    return {"repo": repo, "runs": runs, "c1": c1, "c2": c2}


def _report_page(repo: Path) -> tuple[str, Page]:
    text = render(build_report(open_repo(repo)))
    return text, parse(text)


def _ids_in(page: Page, tag: str, attr: str, **where: str) -> set[str]:
    return {a[attr] or "" for a in page.find(tag, **where) if a.get(attr)}


def test_runs_table_lists_every_run_newest_first(pipeline: dict[str, Any]) -> None:
    text, page = _report_page(pipeline["repo"])
    runs = pipeline["runs"]
    table = text[
        text.index('<table id="runs">') : text.index("</table>", text.index('<table id="runs">'))
    ]
    rows = parse(table)
    links = [a["href"] for a in rows.find("a") if (a.get("href") or "").startswith("#run-")]
    expected = sorted((r.id for r in runs.values()), reverse=True)
    assert links == [f"#run-{i}" for i in expected]
    assert rows.find("th", scope="row") and len(rows.find("th", scope="row")) == len(expected)
    headers = [a for a in rows.find("th", scope="col")]
    # fixed columns + the params that vary among the runs (by name) + acc, loss
    assert len(headers) == 10 + 5 + 2
    params = re.findall(r'<th scope="col" class="param-col">([^<]*)</th>', table)
    assert params == ["conflict", "gone", "lr", "seed", "stage"]
    assert "<caption>" in table
    # every run has its detail section
    sections = _ids_in(page, "section", "id", class_="run-detail")
    assert sections == {run_anchor(r.id) for r in runs.values()}
    # labels for every filter input
    for control in ("f-branch", "f-status", "f-tag", "f-data", "f-env"):
        assert page.find("label", for_=control)


def test_page_is_self_contained(pipeline: dict[str, Any]) -> None:
    text, page = _report_page(pipeline["repo"])
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")):
        assert not [a for a in page.find(tag) if a.get(attr)], (tag, attr)
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    assert "@import" not in text and "url(" not in text.replace("url(#arrow)", "")
    assert len(page.find("script")) == SCRIPTS_EMITTED
    assert "@media print" in text


def test_lineage_graph_has_a_node_per_connected_run(pipeline: dict[str, Any]) -> None:
    _text, page = _report_page(pipeline["repo"])
    runs = pipeline["runs"]
    nodes = _ids_in(page, "a", "data-run", class_="node status-ok")
    assert nodes == {runs["prep"].id, runs["train"].id, runs["eval"].id}
    assert len(page.find("path", class_="edge")) == 2
    report = build_report(open_repo(pipeline["repo"]))
    assert report.graph.layers == [[runs["prep"].id], [runs["train"].id], [runs["eval"].id]]
    assert {(e.source, e.target, e.files) for e in report.graph.edges} == {
        (runs["prep"].id, runs["train"].id, ("clean.csv",)),
        (runs["train"].id, runs["eval"].id, ("model.pt",)),
    }


def test_mismatches_and_anomalies_name_the_right_runs(pipeline: dict[str, Any]) -> None:
    _, page = _report_page(pipeline["repo"])
    runs = pipeline["runs"]
    mismatches = {a["data-kind"]: set((a["data-runs"] or "").split()) for a in page.find("article")}
    assert mismatches == {
        "inputs-or-env": {runs["env_a"].id, runs["env_b"].id},
        "output": {runs["out_a"].id, runs["out_b"].id},
    }
    report = build_report(open_repo(pipeline["repo"]))
    env_detail = next(m for m in report.mismatches if m.kind == "inputs-or-env").details
    assert any("python.version 3.11.7 → 3.12.1" in d for d in env_detail)
    out_detail = next(m for m in report.mismatches if m.kind == "output").details
    assert any("y.bin" in d for d in out_detail)
    by_kind: dict[str, set[str]] = {}
    for anomaly in report.anomalies:
        by_kind.setdefault(anomaly.kind, set()).add(anomaly.run or anomaly.detail)
    assert by_kind["failed"] == {runs["failed"].id}
    assert by_kind["missing-commit"] == {runs["gone"].id}
    assert by_kind["conflict"] == {runs["conflict"].id}
    assert len(by_kind["unreadable"]) == 1
    listed = {a["data-run"] for a in page.find("a") if a.get("data-run") and not a.get("class")}
    assert {runs["failed"].id, runs["gone"].id, runs["conflict"].id} <= listed


def test_trend_charts_plot_each_metric(pipeline: dict[str, Any]) -> None:
    _, page = _report_page(pipeline["repo"])
    figures = page.find("figure", class_="trend")
    assert len(figures) == 2  # acc, loss
    acc_runs = [r for r in pipeline["runs"].values() if "acc" in r.metrics]
    assert len(page.find("circle", class_="point")) == len(acc_runs) + 1  # + one loss point


def test_revision_range_limits_the_runs(pipeline: dict[str, Any]) -> None:
    repo, runs = pipeline["repo"], pipeline["runs"]
    report = build_report(open_repo(repo), [f"{pipeline['c1']}..HEAD"])
    assert {v.id for v in report.runs} == {
        r.id for r in runs.values() if r.commit in (pipeline["c2"], "1" * 40)
    }


def test_cli_writes_the_file(pipeline: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    proc = prov(pipeline["repo"], "report", "-o", str(out))
    assert proc.stdout.strip() == str(out)
    assert "runs" in proc.stderr
    page = parse(out.read_text())
    assert len(page.find("section", class_="run-detail")) == len(pipeline["runs"])


def test_big_ledgers_cap_the_table_but_not_the_analysis(pipeline: dict[str, Any]) -> None:
    runs = pipeline["runs"]
    report = build_report(open_repo(pipeline["repo"]), max_runs=3)
    assert [v.id for v in report.runs] == sorted((r.id for r in runs.values()), reverse=True)[:3]
    assert report.total_runs == len(runs)
    assert len(report.mismatches) == 2 and report.graph.layers
    page = parse(render(report))
    assert len(page.find("section", class_="run-detail")) == 3
    # runs beyond the table are named, not linked to sections that do not exist
    anchors = {a["href"] for a in page.find("a") if (a.get("href") or "").startswith("#run-")}
    assert anchors <= {f"#{run_anchor(v.id)}" for v in report.runs}
    assert runs["failed"].id in {a["data-run"] for a in page.find("span") if a.get("data-run")}


def test_serve_renders_afresh_on_each_request(pipeline: dict[str, Any]) -> None:
    import threading
    import urllib.request

    from git_prov.report import make_server

    server = make_server(open_repo(pipeline["repo"]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=30) as response:
            page = parse(response.read().decode())
        assert len(page.find("section", class_="run-detail")) == len(pipeline["runs"])
        assert host == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_empty_repository_report(repo: Path) -> None:
    _, page = _report_page(repo)
    assert page.find("table", id="runs")
    assert not page.find("section", class_="run-detail")


def test_layout_orders_layers_by_longest_path() -> None:
    edges = [Edge("a", "b", ()), Edge("b", "c", ()), Edge("a", "c", ()), Edge("x", "c", ())]
    layers = layered_layout(["a", "x", "b", "c"], edges)
    assert layers == [["a", "x"], ["b"], ["c"]]
    assert lineage_graph([]).layers == []


def test_layout_of_a_30_run_pipeline_has_no_crossings_between_chains() -> None:
    # 6 shards × 5 stages, nodes listed in start order shard by shard, each chain reading
    # only its own previous stage: every chain must stay on one row.
    nodes = [f"s{shard}-{stage}" for shard in range(6) for stage in range(5)]
    edges = [
        Edge(f"s{shard}-{stage}", f"s{shard}-{stage + 1}", ())
        for shard in (3, 0, 5, 1, 4, 2)
        for stage in range(4)
    ]
    layers = layered_layout(nodes, edges)
    assert [len(layer) for layer in layers] == [6] * 5
    rows = {node: i for layer in layers for i, node in enumerate(layer)}
    assert all(rows[e.source] == rows[e.target] for e in edges)


def test_script_json_cannot_close_the_element() -> None:
    text = script_json({"k": "</script><!-- \u2028 & >"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"k": "</script><!-- \u2028 & >"}


def hostile_record(repo: Path) -> RunRecord:
    """A run with HTML and script in every string field, written to the ledger."""
    c = git(repo, "rev-parse", "HEAD")
    ledger = Ledger(open_repo(repo))
    inputs = _manifest(ledger, {f"data/{HOSTILE}.csv": H["a"]})
    env = ledger.store_object(
        EnvironmentManifest(python={"version": HOSTILE}, packages={"evil": HOSTILE}).to_toml()
    )
    record = make_record(
        c,
        id=rid(1),
        started=started(1),
        command=HOSTILE,
        argv=(HOSTILE,),
        params={HOSTILE: HOSTILE},
        metrics={HOSTILE: 1.5},
        tags=(HOSTILE,),
        message=HOSTILE,
        host=HOSTILE,
        user=HOSTILE,
        branch=HOSTILE,
        cwd=HOSTILE,
        inputs=inputs,
        env=env,
        status="failed",
        exit_code=1,
    )
    ledger.write([(c, record)], objects={KIND_DATA: [inputs], KIND_ENV: [env]}, keep=[c])
    return record


def test_hostile_record_renders_as_text(repo: Path) -> None:
    hostile_record(repo)
    text, page = _report_page(repo)
    assert len(page.find("script")) == SCRIPTS_EMITTED
    assert not page.find("img")
    assert not [a for _, a in page.elements if any(k.startswith("on") for k in a)]
    visible = "".join(page.text)
    assert visible.count(HOSTILE) >= 8  # command, params, metrics, tags, message, host, …
    data_script = page.scripts[0]
    assert "<" not in data_script and ">" not in data_script
    assert json.loads(data_script)["runs"][0][0] == HOSTILE  # the branch, intact
    assert "<script>alert" not in text


def test_cli_default_table_cap_matches_the_library() -> None:
    import click

    from git_prov.cli import cli
    from git_prov.report import MAX_TABLE_RUNS

    command = cli.get_command(click.Context(cli), "report")  # (loaded lazily)
    assert isinstance(command, click.Command)
    [option] = [p for p in command.params if p.name == "max_runs"]
    assert option.default == MAX_TABLE_RUNS


def test_run_details_say_what_the_record_saw(repo: Path) -> None:
    """An output the run left as it found it and a problem met while recording show in the
    report as they do in `show`, not as an ordinary output of a clean run."""
    (repo / "out.txt").write_text("made earlier\n")
    prov(repo, "run", "-o", "out.txt", "--metrics-file", "nope.json", "--", "true")
    prov(repo, "report", "-o", "report.html")
    page = (repo / "report.html").read_text()
    assert "hashed from its bytes; not written by this run" in page
    assert "(read" not in page and ">read;" not in page
    assert "metrics not read" in page

"""``git prov report``: one self-contained HTML file about the runs of a repository.

:func:`build_report` gathers everything the page shows as plain data (runs, a lineage
graph laid out in layers, metric series, mismatches, anomalies); :mod:`git_prov.report.html`
turns that into HTML with the standard library only. Nothing here prints or writes files
except :func:`write_report`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from git_prov.errors import ProvError
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.record import LineProblem, RunRecord
from git_prov.model.values import as_number
from git_prov.query.compare import (
    DataDiff,
    EnvDiff,
    diff_environments,
    diff_manifests,
)
from git_prov.query.lineage import FileNode, file_key
from git_prov.report.curves import Curves, collect_curves
from git_prov.store.ledger import Ledger, LedgerScan, LocatedRun
from git_prov.store.repo import GitRepo

MAX_METRIC_COLUMNS = 12  # metric columns in the runs table; the rest are in run details
MAX_TREND_METRICS = 8  # metrics that get a trend chart
MAX_GRAPH_RUNS = 300  # runs drawn in the lineage graph (the most recent connected ones)
# Rows of the runs table and detail sections: browsers lay a big table out again and again
# while parsing it (10k rows took over 10 s to open), so large ledgers show the newest runs;
# everything else (trends, graph, mismatches, anomalies) covers every run, up to
# MAX_SAMPLE_RUNS.
MAX_TABLE_RUNS = 1000
# Over a ledger of more live runs than this, the default page (a bounded ``max_runs``, no
# revisions) reads only the newest MAX_SAMPLE_RUNS runs (by start time) through the query
# index: their trends, lineage graph, mismatches and anomalies; the summary's counts come
# from the index (SQL aggregates over every run). Memory and time then follow the page,
# not the ledger (a million runs: seconds, not minutes). ``max_runs=None`` reads all.
MAX_SAMPLE_RUNS = 5_000


@dataclass(frozen=True)
class Edge:
    """Run ``source`` wrote a file that run ``target`` (started later) read."""

    source: str
    target: str
    files: tuple[str, ...]


@dataclass
class Graph:
    """The lineage graph: runs in layers (longest path from a source), edges between them."""

    layers: list[list[str]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    omitted: int = 0  # connected runs left out beyond MAX_GRAPH_RUNS

    def layer_of(self) -> dict[str, tuple[int, int]]:
        """run id → (layer, position within the layer)."""
        return {rid: (i, j) for i, layer in enumerate(self.layers) for j, rid in enumerate(layer)}


@dataclass(frozen=True)
class Mismatch:
    """Runs that should agree and do not.

    ``kind`` is ``inputs-or-env`` (same code and params, different data or environment) or
    ``output`` (same code, params, input bytes and environment, different output bytes).
    """

    kind: str
    runs: tuple[str, ...]
    reference: str
    details: tuple[str, ...]


@dataclass(frozen=True)
class Anomaly:
    """Something wrong with a run or a note line."""

    kind: str  # failed | missing-commit | missing-object | conflict | unreadable
    run: str | None
    detail: str


@dataclass
class RunView:
    """A run and what the report loaded for it."""

    located: LocatedRun
    inputs: DataManifest | None = None
    outputs: DataManifest | None = None
    load_errors: list[str] = field(default_factory=list)

    @property
    def record(self) -> RunRecord:
        return self.located.record

    @property
    def id(self) -> str:
        return self.located.id


@dataclass(frozen=True)
class Totals:
    """Counts over every live run (SQL aggregates of the query index)."""

    runs: int
    commits: int
    not_ok: int


@dataclass
class Report:
    """Everything the HTML page shows."""

    title: str
    generated: str
    revisions: tuple[str, ...]
    runs: list[RunView]  # the runs of the table and details, newest first
    total_runs: int
    every_run: dict[str, RunView]  # every selected run, also those beyond the table
    metric_names: list[str]  # columns of the runs table, most common first
    more_metrics: int
    environments: dict[str, EnvironmentManifest | None]
    graph: Graph
    trends: dict[str, list[tuple[str, float]]]  # metric → [(run id, value)] oldest first
    mismatches: list[Mismatch]
    anomalies: list[Anomaly]
    shown: set[str] = field(default_factory=set)  # ids of ``runs``
    curves: Curves = field(default_factory=Curves)  # training curves (report/curves.py)
    # Set when the page covers only the newest runs of a big ledger (MAX_SAMPLE_RUNS):
    # ``every_run`` holds that sample, ``totals`` counts every live run.
    sampled: bool = False
    totals: Totals | None = None

    def __post_init__(self) -> None:
        self.shown = {v.id for v in self.runs}


@dataclass
class Selection:
    """The runs a report covers, before anything is loaded about them: their views, the
    unreadable lines and conflicts among them, and (over a sample) the totals of all."""

    views: list[RunView]
    problems: Sequence[LineProblem]
    conflicts: dict[str, int]
    revisions: tuple[str, ...]
    total_runs: int
    totals: Totals | None = None


def build_report(
    repo: GitRepo,
    revisions: Sequence[str] = (),
    *,
    scan: LedgerScan | None = None,
    title: str | None = None,
    now: datetime | None = None,
    max_runs: int | None = MAX_TABLE_RUNS,
    sample: int = MAX_SAMPLE_RUNS,
) -> Report:
    """Collect the runs shown on the commits of ``revisions`` (all live runs when empty)
    and everything the report shows about them. The table and the run details hold the
    newest ``max_runs`` (None: all). Over more than ``sample`` runs (and with ``max_runs``
    set, no ``scan``) only the newest ``sample`` runs are read (see :data:`MAX_SAMPLE_RUNS`)."""
    ledger = Ledger(repo)
    chosen = select_runs(repo, ledger, revisions, scan=scan, max_runs=max_runs, sample=sample)
    return _assemble(repo, ledger, chosen, title=title, now=now, max_runs=max_runs)


def select_runs(
    repo: GitRepo,
    ledger: Ledger,
    revisions: Sequence[str] = (),
    *,
    scan: LedgerScan | None = None,
    max_runs: int | None = MAX_TABLE_RUNS,
    sample: int = MAX_SAMPLE_RUNS,
) -> Selection:
    """The runs :func:`build_report` covers (its arguments), nothing loaded about them."""
    if scan is None and revisions:
        bounded_sample = None if max_runs is None else max(sample, max_runs)
        return _revisions_selection(repo, revisions, bounded_sample)
    if scan is None and max_runs is not None:
        bounded = _sampled_selection(repo, max(sample, max_runs))
        if bounded is not None:
            return bounded
    scan = scan or ledger.scan()
    if revisions:
        picked = set(_run_ids_in(repo, revisions))
        located = [run for run in scan.live_runs() if run.id in picked]
        commits = {c for run in located for c in run.shown_on}
        problems = [p for p in scan.problems if p.commit in commits]
    else:
        located = scan.live_runs()
        problems = list(scan.problems)
    views = [RunView(run) for run in located]
    conflicts = {k: len(v) for k, v in scan.conflicts.items()}
    return Selection(views, problems, conflicts, tuple(revisions), len(views))


def _assemble(
    repo: GitRepo,
    ledger: Ledger,
    chosen: Selection,
    *,
    title: str | None,
    now: datetime | None,
    max_runs: int | None,
) -> Report:
    """The report of the ``chosen`` runs: their data and environments loaded, and every
    analysis the page shows made over them. Totals (all runs' counts) mark a sample."""
    views, totals = chosen.views, chosen.totals
    _load_manifests(ledger, views)
    environments = _load_environments(ledger, views)
    oldest_first = sorted(views, key=lambda v: (v.record.started, v.id))
    counts = Counter(name for v in views for name in v.record.metrics)
    metric_names = [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return Report(
        title=title or _default_title(repo),
        generated=when,
        revisions=chosen.revisions,
        runs=list(reversed(oldest_first))[:max_runs],
        total_runs=chosen.total_runs,
        every_run={v.id: v for v in views},
        metric_names=metric_names[:MAX_METRIC_COLUMNS],
        more_metrics=max(0, len(metric_names) - MAX_METRIC_COLUMNS),
        environments=environments,
        graph=lineage_graph(oldest_first),
        trends=metric_trends(oldest_first, metric_names[:MAX_TREND_METRICS]),
        mismatches=find_mismatches(oldest_first, environments),
        anomalies=find_anomalies(repo, oldest_first, chosen.conflicts, chosen.problems),
        curves=collect_curves(repo, ledger, (v.record for v in reversed(oldest_first))),
        sampled=totals is not None,
        totals=totals,
    )


# What reading every run costs (measured at 1M runs on 100k commits, 2 cores): per run.
FULL_READ_BYTES_PER_RUN = 4_700
FULL_READ_SECONDS_PER_RUN = 150e-6


def full_read_cost(repo: GitRepo) -> str | None:
    """What ``--max-runs 0`` (every run read) will cost, in one sentence, when the ledger
    holds more than :data:`MAX_SAMPLE_RUNS` live runs; None otherwise."""
    from git_prov.query.index import RepoPaths, open_index

    with open_index(RepoPaths.of_repo(repo)) as index:
        runs = index.run_count()
    if runs <= MAX_SAMPLE_RUNS:
        return None
    megabytes = runs * FULL_READ_BYTES_PER_RUN / 1e6
    seconds = runs * FULL_READ_SECONDS_PER_RUN
    return (
        f"--max-runs 0 reads all {runs} runs: expect about {seconds:.0f} s and"
        f" {megabytes:.0f} MB of memory (the default page reads the newest {MAX_SAMPLE_RUNS})"
    )


def _sampled_selection(repo: GitRepo, sample: int) -> Selection | None:
    """The newest ``sample`` runs, read through the query index; None when
    the ledger holds no more than ``sample`` live runs (then every run is read, as ever)."""
    from git_prov.query.index import KIND_RUN, RepoPaths, open_index
    from git_prov.query.located import located

    with open_index(RepoPaths.of_repo(repo)) as index:
        runs, commits, not_ok = index.db.execute(
            "SELECT count(*), count(DISTINCT commit_id), coalesce(sum(status != 'ok'), 0)"
            " FROM lines WHERE live = 1 AND kind = ?",
            (KIND_RUN,),
        ).fetchone()
        if runs <= sample:
            return None
        newest = [
            str(run)
            for (run,) in index.db.execute(
                "SELECT run FROM lines WHERE live = 1 AND kind = ?"
                " ORDER BY started DESC, run DESC LIMIT ?",
                (KIND_RUN, sample),
            )
        ]
        found = located(index, newest)
        problems = index.problems()
    totals = Totals(int(runs), int(commits), int(not_ok))
    return _from_index(found, problems, (), totals)


def _run_ids_in(repo: GitRepo, revisions: Sequence[str]) -> list[str]:
    """The ids of the live runs shown on the commits of ``git log REVISIONS`` (no note read)."""
    from git_prov.history import run_ids_in
    from git_prov.query.index import RepoPaths, open_index

    with open_index(RepoPaths.of_repo(repo)) as index:
        return run_ids_in(index, revisions)


def _revisions_selection(repo: GitRepo, revisions: Sequence[str], sample: int | None) -> Selection:
    """The runs on the commits of ``revisions``, read through the query index:
    only those runs' note lines are read, never the whole ledger. Over more than ``sample``
    of them (None: no limit) only the newest ``sample`` are read, with totals from SQL."""
    from git_prov.history import run_ids_in
    from git_prov.query.index import KIND_RUN, RepoPaths, open_index
    from git_prov.query.located import located

    totals = None
    with open_index(RepoPaths.of_repo(repo)) as index:
        ids = run_ids_in(index, revisions)
        if sample is not None and len(ids) > sample:
            newest: dict[str, tuple[str, str, str]] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for run, started, commit, status in index.db.execute(
                    "SELECT run, started, commit_id, status FROM lines"
                    f" WHERE live = 1 AND kind = ? AND run IN ({marks})",
                    (KIND_RUN, *chunk),
                ):
                    newest[str(run)] = (str(started or ""), str(commit), str(status))
            totals = Totals(
                len(newest),
                len({commit for _, commit, _ in newest.values()}),
                sum(status != "ok" for _, _, status in newest.values()),
            )
            ids = sorted(newest, key=lambda r: (newest[r][0], r), reverse=True)[:sample]
        found = located(index, ids)
        commits = {c for run in found.values() for c in run.shown_on}
        problems = [p for p in index.problems() if p.commit in commits]
    return _from_index(found, problems, tuple(revisions), totals)


def _from_index(
    found: Mapping[str, LocatedRun],
    problems: Sequence[LineProblem],
    revisions: tuple[str, ...],
    totals: Totals | None,
) -> Selection:
    """The selection of the runs ``found`` through the index (a conflicting run carries its
    copies); ``totals`` when they are a sample of more."""
    views = [RunView(found[rid]) for rid in sorted(found)]
    conflicts = {
        v.id: len(v.located.conflict.copies) for v in views if v.located.conflict is not None
    }
    total = len(views) if totals is None else totals.runs
    return Selection(views, problems, conflicts, revisions, total, totals)


def write_report(report: Report, path: Path) -> int:
    """Render ``report`` to ``path`` (UTF-8); returns the number of bytes written."""
    from git_prov.report.html import render

    data = render(report).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def _default_title(repo: GitRepo) -> str:
    where = repo.workdir if repo.workdir is not None else repo.git_dir
    return f"git prov report — {Path(where).resolve().name}"


def _load_manifests(ledger: Ledger, views: Iterable[RunView]) -> None:
    cache: dict[str, DataManifest | str] = {}

    def load(oid: str) -> DataManifest | str:
        if oid not in cache:
            try:
                cache[oid] = ledger.data_manifest(oid)
            except ProvError as exc:
                cache[oid] = f"data manifest {oid[:12]}: {exc.message}"
        return cache[oid]

    for view in views:
        for role in ("inputs", "outputs"):
            oid = getattr(view.record, role)
            if not oid:
                continue
            got = load(oid)
            if isinstance(got, str):
                view.load_errors.append(got)
            else:
                setattr(view, role, got)


def _load_environments(
    ledger: Ledger, views: Iterable[RunView]
) -> dict[str, EnvironmentManifest | None]:
    out: dict[str, EnvironmentManifest | None] = {}
    for view in views:
        oid = view.record.env
        if oid and oid not in out:
            try:
                out[oid] = ledger.env_manifest(oid)
            except ProvError:
                out[oid] = None
    return out


# ---- lineage graph -------------------------------------------------------------------------


def lineage_graph(oldest_first: Sequence[RunView], limit: int = MAX_GRAPH_RUNS) -> Graph:
    """Runs linked by data, with the rules of ``git prov lineage``: a run's input is
    produced by the run credited for exactly those bytes among those that started before
    it (:func:`git_prov.model.producers.credit`: never a run that left the file as it found
    it; successful runs first, same path first, the latest). When the records do not say
    which of several runs wrote it, no edge is drawn. Layers by longest path; within
    layers, barycentre ordering."""
    from git_prov.model.producers import Writer, credit

    # hash → [(started, Writer(run id))], oldest first
    writers: dict[str, list[tuple[str, Writer[str]]]] = {}
    for view in oldest_first:
        if view.outputs is None:
            continue
        for entry in view.outputs.entries:
            writer = Writer(view.id, view.record.status, entry.path, entry.written)
            writers.setdefault(entry.hash, []).append((view.record.started, writer))
    links: dict[tuple[str, str], list[str]] = {}
    for view in oldest_first:
        if view.inputs is None:
            continue
        for entry in view.inputs.entries:
            before = [
                w for started, w in writers.get(entry.hash, ()) if started < view.record.started
            ]
            found = credit(before[::-1], entry.path)
            if found is None or not found.conclusive:
                continue
            label = file_key(FileNode(entry.path, entry.hash)).removeprefix("file:")
            links.setdefault((found.best, view.id), []).append(label.rsplit("@", 1)[0])
    connected = {rid for pair in links for rid in pair}
    order = [v.id for v in oldest_first if v.id in connected]
    omitted = max(0, len(order) - limit)
    keep = set(order[omitted:])
    edges = [
        Edge(a, b, tuple(sorted(set(files))))
        for (a, b), files in sorted(links.items())
        if a in keep and b in keep
    ]
    return Graph(layered_layout([rid for rid in order if rid in keep], edges), edges, omitted)


def layered_layout(nodes: Sequence[str], edges: Sequence[Edge], sweeps: int = 4) -> list[list[str]]:
    """Assign each node the layer of its longest path from a source (``nodes`` must be in a
    topological order: producers start before consumers), then reorder each layer by the
    mean position of its neighbours, down and up a few times, to cut crossings."""
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        parents[edge.target].append(edge.source)
        children[edge.source].append(edge.target)
    layer: dict[str, int] = {}
    for node in nodes:
        layer[node] = 1 + max((layer[p] for p in parents[node] if p in layer), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in nodes:
        layers[layer[node]].append(node)

    def reorder(rows: Iterable[list[str]], neighbours: dict[str, list[str]]) -> None:
        for row in rows:
            pos = {n: j for layer_nodes in layers for j, n in enumerate(layer_nodes)}
            keys: dict[str, tuple[float, int]] = {}
            for i, node in enumerate(row):
                near = [pos[n] for n in neighbours[node]]
                keys[node] = (sum(near) / len(near) if near else float(i), i)
            row.sort(key=keys.__getitem__)

    for _ in range(sweeps):
        reorder(layers[1:], parents)
        reorder(reversed(layers[:-1]), children)
    return layers


# ---- metric trends ---------------------------------------------------------------------------


def metric_trends(
    oldest_first: Sequence[RunView], names: Sequence[str]
) -> dict[str, list[tuple[str, float]]]:
    """For each metric, its numeric values over runs in start-time order."""
    out: dict[str, list[tuple[str, float]]] = {}
    for name in names:
        series = []
        for view in oldest_first:
            value = view.record.metrics.get(name)
            number = None if isinstance(value, bool) or value is None else as_number(value)
            if number is not None and number == number and abs(number) != float("inf"):
                series.append((view.id, number))
        if series:
            out[name] = series
    return out


# ---- mismatches ------------------------------------------------------------------------------


def _params_key(record: RunRecord) -> str:
    return json.dumps(
        {k: (as_number(v) if as_number(v) is not None else v) for k, v in record.params.items()},
        sort_keys=True,
        default=str,
    )


def _file_hashes(manifest: DataManifest | None, oid: str | None) -> tuple[tuple[str, str], ...]:
    if manifest is None:
        return (("?", oid or ""),)
    return tuple(sorted((e.path, e.hash) for e in manifest.entries))


def find_mismatches(
    oldest_first: Sequence[RunView], environments: dict[str, EnvironmentManifest | None]
) -> list[Mismatch]:
    """Runs of the same code and params whose data or environment differ, and runs that
    agree on everything recorded but wrote different output bytes."""
    out: list[Mismatch] = []
    groups: dict[tuple[str, str], list[RunView]] = {}
    for view in oldest_first:
        groups.setdefault((view.record.source_commit, _params_key(view.record)), []).append(view)
    for members in groups.values():
        if len(members) < 2:
            continue
        ref = members[0]
        differing: list[RunView] = []
        details: list[str] = []
        for other in members[1:]:
            notes = _input_env_differences(ref, other, environments)
            if notes:
                differing.append(other)
                details.extend(f"{other.record.short_id}: {n}" for n in notes)
        if differing:
            ids = (ref.id, *(v.id for v in differing))
            out.append(Mismatch("inputs-or-env", ids, ref.id, tuple(details)))
        same_inputs: dict[tuple[object, ...], list[RunView]] = {}
        for view in members:
            key = (_file_hashes(view.inputs, view.record.inputs), view.record.env or "")
            same_inputs.setdefault(key, []).append(view)
        for alike in same_inputs.values():
            out.extend(_output_mismatch(alike))
    return out


def _input_env_differences(
    ref: RunView, other: RunView, environments: dict[str, EnvironmentManifest | None]
) -> list[str]:
    notes: list[str] = []
    if ref.record.inputs != other.record.inputs:
        diff: DataDiff = diff_manifests(
            "inputs", ref.inputs, other.inputs, ref.record.inputs, other.record.inputs
        )
        if not diff.same:
            changed = ", ".join(f"{c.path} ({c.change})" for c in diff.changes[:5])
            more = f" … {len(diff.changes) - 5} more" if len(diff.changes) > 5 else ""
            notes.append(f"inputs differ: {changed or 'missing files differ'}{more}")
    a, b = ref.record.env, other.record.env
    if a != b:
        env_a, env_b = environments.get(a or ""), environments.get(b or "")
        if env_a is None or env_b is None:
            notes.append(f"environment differs: {(a or 'none')[:10]} → {(b or 'none')[:10]}")
        else:
            env_diff: EnvDiff = diff_environments(env_a, env_b, a, b)
            if not env_diff.same:
                parts = [f"{p.name} {p.old or '—'} → {p.new or '—'}" for p in env_diff.packages]
                parts += [f"{f.section}.{f.key} {f.old} → {f.new}" for f in env_diff.facts]
                more = f" … {len(parts) - 5} more" if len(parts) > 5 else ""
                notes.append("environment differs: " + "; ".join(parts[:5]) + more)
    return notes


def _output_mismatch(alike: Sequence[RunView]) -> list[Mismatch]:
    with_outputs = [v for v in alike if v.outputs is not None]
    if len(with_outputs) < 2:
        return []
    ref = with_outputs[0]
    differing: list[RunView] = []
    details: list[str] = []
    for other in with_outputs[1:]:
        diff = diff_manifests("outputs", ref.outputs, other.outputs)
        changed = [c for c in diff.changes if c.change in ("changed", "unverified")]
        if changed:
            differing.append(other)
            details.extend(
                f"{other.record.short_id}: {c.path} {c.old_hash} → {c.new_hash}" for c in changed
            )
    if not differing:
        return []
    return [Mismatch("output", (ref.id, *(v.id for v in differing)), ref.id, tuple(details))]


# ---- anomalies -------------------------------------------------------------------------------


def find_anomalies(
    repo: GitRepo,
    oldest_first: Sequence[RunView],
    conflicts: Mapping[str, int],
    problems: Sequence[LineProblem],
) -> list[Anomaly]:
    """Failed and killed runs, runs whose code is gone, conflicting records (run id →
    how many different records share it), bad lines."""
    out: list[Anomaly] = []
    present: dict[str, bool] = {}

    def exists(oid: str) -> bool:
        if oid not in present:
            present[oid] = repo.has_object(oid)
        return present[oid]

    shown = {v.id for v in oldest_first}
    for view in oldest_first:
        r = view.record
        if r.status != "ok":
            how = f"exit {r.exit_code}" if r.exit_code is not None else f"signal {r.signal}"
            out.append(Anomaly("failed", r.id, f"{r.status} ({how})"))
        for what, oid in (("commit", r.commit), ("snapshot", r.snapshot)):
            if oid and not exists(oid):
                out.append(Anomaly("missing-commit", r.id, f"source {what} {oid} is not here"))
        for error in view.load_errors:
            out.append(Anomaly("missing-object", r.id, error))
    for run_id, records in sorted(conflicts.items()):
        if run_id in shown:
            out.append(Anomaly("conflict", run_id, f"{records} different records share this id"))
    for problem in problems:
        out.append(
            Anomaly(
                "unreadable",
                None,
                f"note on {problem.commit[:12]} line {problem.line_number}: {problem.reason}"
                f" — {problem.text[:200]}",
            )
        )
    return out


# ---- --serve ---------------------------------------------------------------------------------


def make_server(
    repo: GitRepo,
    revisions: Sequence[str] = (),
    *,
    port: int = 0,
    title: str | None = None,
    max_runs: int | None = MAX_TABLE_RUNS,
) -> Any:
    """An HTTP server on 127.0.0.1 (``port`` 0: a free one) that renders the report afresh
    for every request of ``/``, so reloading the page shows new runs and the curves of
    runs still going; ``/curves.json`` is the curves' data alone. Call
    ``serve_forever()`` on it; ``server_address`` says where it listens."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from git_prov.report.html import render

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/curves.json":
                data, kind = _curves_json(repo, revisions, max_runs), "application/json"
            elif path in ("/", "/index.html"):
                body = render(build_report(repo, revisions, title=title, max_runs=max_runs))
                data, kind = body.encode("utf-8"), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the CLI says where it listens, nothing per request

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def _curves_json(repo: GitRepo, revisions: Sequence[str], max_runs: int | None) -> bytes:
    """``/curves.json``: the curves section's data (runs still going included)."""
    from git_prov.model.values import canonical_json

    ledger = Ledger(repo)
    chosen = select_runs(repo, ledger, revisions, max_runs=max_runs)
    newest_first = sorted(chosen.views, key=lambda v: (v.record.started, v.id), reverse=True)
    curves = collect_curves(repo, ledger, (v.record for v in newest_first))
    return canonical_json(curves.to_json()).encode("ascii")

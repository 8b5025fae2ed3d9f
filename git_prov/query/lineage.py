"""``git prov lineage``: which run produced a file, from which inputs, which runs produced
those, and so on back to raw data.

A run *produced* a file when one of its recorded outputs has exactly the file's content
(its hash; the same bytes written under another name count too) and the run wrote it: an
output the record says the run left as it found it (``written = false``, see
docs/format.md) is never credited. Among the runs that wrote those bytes, successful ones
are preferred, then the latest that ran before the consumer (same path first), the others
listed; when the chosen run's record does not say whether it wrote the file (older
records, ``record``), the answer is a list of candidates, not a pick. For
the file asked about, when no run wrote its current content, the latest run that declared
it as an output is named instead, with a note that the content differs. Inputs recorded
as a git blob id whose producer recorded a SHA-256 (the file was committed in between) are
linked by path when the sizes agree, marked unverified. Cycles (a run that reads what a
later run of the same pipeline writes back) are cut and marked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from git_prov.errors import NotFound, UsageProblem
from git_prov.model.ids import short_run_id
from git_prov.model.producers import Writer, credit
from git_prov.query.index import RepoPaths, RunIndex

if TYPE_CHECKING:
    from git_prov.model.manifest import DataEntry, DataManifest

MATCH_HASH = "hash"  # the run wrote exactly these bytes
MATCH_PATH = "path"  # the run declared this path as output; content not (or differently) hashed
MATCH_CANDIDATES = "candidates"  # one of these runs wrote exactly these bytes; which is unknown
MAX_DEPTH = 64


@dataclass(frozen=True)
class RunNode:
    """A run in a lineage."""

    id: str
    started: str
    status: str
    command: str
    commit: str

    @property
    def short_id(self) -> str:
        return short_run_id(self.id)


@dataclass(frozen=True)
class FileNode:
    """A version of a file: its path and content hash (None when unknown)."""

    path: str
    hash: str | None
    size: int | None = None


@dataclass
class Step:
    """How one file (or, at the top of a run's lineage, the run itself) came to be."""

    file: FileNode | None
    producer: RunNode | None
    match: str | None = None  # MATCH_*, or None (raw data, or the asked run)
    # Other runs that wrote it (MATCH_CANDIDATES: the other candidates).
    others: list[RunNode] = field(default_factory=list)
    inputs: list[Step] = field(default_factory=list)  # the producer's inputs
    note: str = ""  # "raw data", "cycle", "shown above", "modified since …"


@dataclass
class Lineage:
    """The answer: a tree of steps from the file (or run) asked about back to raw data."""

    target: str
    kind: str  # "file" or "run"
    root: Step

    def steps(self) -> Iterator[Step]:
        """Every step, depth first."""
        stack = [self.root]
        while stack:
            step = stack.pop()
            yield step
            stack.extend(reversed(step.inputs))

    def runs(self) -> list[RunNode]:
        """Every run of the lineage (producers and alternatives), once each."""
        found: dict[str, RunNode] = {}
        for step in self.steps():
            for run in [step.producer, *step.others]:
                if run is not None:
                    found.setdefault(run.id, run)
        return list(found.values())

    def files(self) -> list[FileNode]:
        """Every file version of the lineage, once each."""
        found: dict[tuple[str, str | None], FileNode] = {}
        for step in self.steps():
            if step.file is not None:
                found.setdefault((step.file.path, step.file.hash), step.file)
        return list(found.values())

    def edges(self) -> list[tuple[str, str, str]]:
        """(from, to, kind) between node ids ``file:<path>@<hash>`` and ``run:<id>``;
        kind is ``output`` (run wrote file), ``input`` (run read file), ``alternative``
        (another run wrote the same content) or ``candidate`` (one of several runs that
        may have written it, the evidence not saying which)."""
        out: dict[tuple[str, str, str], None] = {}
        for step in self.steps():
            maybe = step.match == MATCH_CANDIDATES
            if step.producer is not None and step.file is not None:
                kind = "candidate" if maybe else "output"
                out[(run_key(step.producer), file_key(step.file), kind)] = None
            for other in step.others:
                if step.file is not None:
                    kind = "candidate" if maybe else "alternative"
                    out[(run_key(other), file_key(step.file), kind)] = None
            for child in step.inputs:
                if child.file is not None and step.producer is not None:
                    out[(file_key(child.file), run_key(step.producer), "input")] = None
        return list(out)

    def to_json(self) -> dict[str, Any]:
        """The tree, plus flat node and edge lists for tools."""
        return {
            "target": self.target,
            "kind": self.kind,
            "tree": _step_json(self.root),
            "runs": [asdict(r) | {"short_id": r.short_id} for r in self.runs()],
            "files": [asdict(f) for f in self.files()],
            "edges": [{"from": a, "to": b, "kind": k} for a, b, k in self.edges()],
        }


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "file": asdict(step.file) if step.file else None,
        "run": step.producer.id if step.producer else None,
        "match": step.match,
        "others": [r.id for r in step.others],
        "note": step.note,
        "inputs": [_step_json(s) for s in step.inputs],
    }


def file_key(node: FileNode) -> str:
    return f"file:{node.path}@{node.hash or '?'}"


def run_key(node: RunNode) -> str:
    return f"run:{node.id}"


# ---- building it ------------------------------------------------------------------------------

_RUN_SQL = "SELECT l.run, l.started, l.status, l.command, l.commit_id"


class _Tracer:
    def __init__(self, index: RunIndex, max_depth: int):
        self.index = index
        self.db = index.db
        self.max_depth = max_depth
        self.expanded: set[str] = set()
        self.manifests: dict[str, DataManifest | None] = {}

    def written(self, manifest: str, path: str) -> bool | None:
        """What the outputs manifest ``manifest`` says about whether its run wrote ``path``
        (None: it does not say — an older record, or a manifest this clone lacks)."""
        entry = self.entry(manifest, path)
        return entry.written if entry is not None else None

    def entry(self, manifest: str, path: str) -> DataEntry | None:
        """The entry for ``path`` of a data manifest (None when unreadable or absent)."""
        if manifest not in self.manifests:
            from git_prov.model.manifest import DataManifest
            from git_prov.store.gitcli import read_blobs

            data = read_blobs(self.index.paths.cwd, [manifest]).get(manifest)
            try:
                self.manifests[manifest] = None if data is None else DataManifest.from_toml(data)
            except ValueError:
                self.manifests[manifest] = None
        found = self.manifests[manifest]
        return found.by_path().get(path) if found is not None else None

    def alias_producers(self, node: FileNode, before: str | None) -> list[Writer[RunNode]]:
        """Runs that wrote ``node.path`` with these very bytes recorded under another name
        (their entry's ``also`` holds ``node.hash``: an output hashed as SHA-256, read
        after a commit under its git blob id), latest first."""
        sql = (
            f"{_RUN_SQL}, l.outputs FROM files f JOIN lines l ON l.outputs = f.manifest"
            " WHERE f.path = ? AND l.live = 1"
        )
        args: list[Any] = [node.path]
        if before is not None:
            sql += " AND l.started < ?"
            args.append(before)
        rows = self.db.execute(sql + " ORDER BY l.started DESC, l.run DESC", args).fetchall()
        out = []
        for row in rows:
            entry = self.entry(row[5], node.path)
            if entry is not None and node.hash in entry.also:
                out.append(Writer(RunNode(*row[:5]), row[2], node.path, entry.written))
        return out

    def producers_of(self, digest_hash: str, before: str | None) -> list[Writer[RunNode]]:
        """Runs whose outputs hold exactly ``digest_hash`` (and started before ``before``),
        latest first, with the path they wrote it at and what their record says about
        having written it."""
        digest = digest_hash.partition(":")[2].lower()
        sql = (
            f"{_RUN_SQL}, f.path, l.outputs FROM files f JOIN lines l ON l.outputs = f.manifest"
            " WHERE f.digest = ? AND f.hash = ? AND l.live = 1"
        )
        args: list[Any] = [digest, digest_hash]
        if before is not None:
            sql += " AND l.started < ?"
            args.append(before)
        rows = self.db.execute(sql + " ORDER BY l.started DESC, l.run DESC", args).fetchall()
        return [
            Writer(RunNode(*row[:5]), row[2], row[5], self.written(row[6], row[5])) for row in rows
        ]

    def declared_by(self, path: str, before: str | None) -> list[tuple[RunNode, str | None, int]]:
        """Runs that declared ``path`` as an output and did not leave it as they found it,
        latest first, with what they wrote."""
        sql = (
            f"{_RUN_SQL}, f.hash, f.size, l.outputs FROM files f"
            " JOIN lines l ON l.outputs = f.manifest WHERE f.path = ? AND l.live = 1"
        )
        args: list[Any] = [path]
        if before is not None:
            sql += " AND l.started < ?"
            args.append(before)
        rows = self.db.execute(sql + " ORDER BY l.started DESC, l.run DESC", args).fetchall()
        return [
            (RunNode(*row[:5]), row[5], row[6] if row[6] is not None else -1)
            for row in rows
            if row[5] is None or self.written(row[7], path) is not False
        ]

    def run_node(self, run_id: str) -> tuple[RunNode, str | None]:
        row = self.db.execute(
            f"{_RUN_SQL}, l.inputs FROM lines l WHERE l.live = 1 AND l.run = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id}")
        return RunNode(*row[:5]), row[5]

    def inputs_of(self, run_id: str) -> list[FileNode]:
        _, manifest = self.run_node(run_id)
        if manifest is None:
            return []
        return [
            FileNode(path, file_hash, size)
            for path, file_hash, size in self.db.execute(
                "SELECT path, hash, size FROM files WHERE manifest = ? ORDER BY path", (manifest,)
            )
        ]

    def expand(self, step: Step, path: tuple[str, ...], depth: int) -> None:
        """Fill in the producer's inputs, recursively."""
        run = step.producer
        if run is None:
            return
        if run.id in path:
            step.note = "cycle: this run is already on the way here"
            return
        if run.id in self.expanded:
            step.note = "its inputs are shown above"
            return
        if depth >= self.max_depth:
            step.note = "… (depth limit)"
            return
        self.expanded.add(run.id)
        for node in self.inputs_of(run.id):
            child = self.upstream(node, run.started)
            step.inputs.append(child)
            self.expand(child, (*path, run.id), depth + 1)

    def upstream(self, node: FileNode, before: str) -> Step:
        """The step for an input ``node`` of a run that started at ``before``."""
        if node.hash is None:
            return Step(node, None, note="missing when the run read it")
        chosen = _choose(node, self.producers_of(node.hash, before))
        if chosen is None:
            chosen = _choose(node, self.alias_producers(node, before))
        if chosen is not None:
            return chosen
        from git_prov.model.manifest import DataEntry
        from git_prov.query.compare import UNVERIFIED, entry_change

        for run, written, size in self.declared_by(node.path, before)[:1]:
            if written is None:
                break
            wrote = DataEntry(node.path, size, written)
            kind = entry_change(wrote, DataEntry(node.path, node.size or -1, node.hash))
            if kind == UNVERIFIED:
                return Step(
                    node,
                    run,
                    MATCH_PATH,
                    note="same size, hashed differently (git blob id / sha256): unverified",
                )
            return Step(node, None, note=f"raw data (differs from what run {run.short_id} wrote)")
        return Step(node, None, note="raw data")


def _choose(node: FileNode, producers: list[Writer[RunNode]]) -> Step | None:
    """The step crediting the run that produced ``node`` (:func:`credit`'s rule), or None
    when none of ``producers`` wrote it."""
    found = credit(producers, node.path)
    if found is None:
        return None
    if found.conclusive:
        return Step(node, found.best, MATCH_HASH, others=list(found.others))
    return Step(
        node,
        found.best,
        MATCH_CANDIDATES,
        others=list(found.others),
        note="the records do not say which of these runs wrote it",
    )


def current_hashes(paths: RepoPaths, rel: str) -> list[str]:
    """The hashes a file in the working tree would be recorded under: the SHA-256 of its
    bytes (or the object an LFS pointer names) and its git blob id."""
    from git_prov.capture.hashing import hash_file
    from git_prov.model.lfs_pointer import parse_lfs_pointer
    from git_prov.store.gitcli import run_git

    assert paths.workdir is not None
    full = paths.workdir / rel
    out = []
    try:
        with open(full, "rb") as handle:
            head = handle.read(1024)
        pointer = parse_lfs_pointer(head)
        out.append(f"sha256:{pointer[0]}" if pointer else hash_file(full))
    except OSError:
        return []
    proc = run_git(paths.workdir, ["hash-object", "--", rel], check=False)
    if proc.returncode == 0:
        out.append("git:" + proc.stdout.decode().strip())
    return out


def lineage(index: RunIndex, target: str, *, max_depth: int = MAX_DEPTH) -> Lineage:
    """The lineage of ``target``: a path (relative to the current directory or the
    repository root) or a run id."""
    from git_prov.query.find import data_candidates

    index.ensure_data_manifests()
    index.need("lines_outputs")  # (runs are found by the manifests they wrote)
    tracer = _Tracer(index, max_depth)
    paths = index.paths
    candidates = data_candidates(paths, target) if not target.startswith("run:") else []
    for rel in candidates:
        on_disk = paths.workdir is not None and rel and (paths.workdir / rel).is_file()
        known = index.db.execute("SELECT 1 FROM files WHERE path = ? LIMIT 1", (rel,)).fetchall()
        if on_disk or known:
            if paths.workdir is not None and rel and (paths.workdir / rel).is_dir():
                raise UsageProblem(f"{target} is a directory", "ask about one of its files")
            return Lineage(target, "file", _file_root(tracer, paths, rel, bool(on_disk)))
    if paths.workdir is not None and any(c and (paths.workdir / c).is_dir() for c in candidates):
        raise UsageProblem(f"{target} is a directory", "ask about one of its files")
    try:
        run_id = index.resolve_run(target.removeprefix("run:"))
    except NotFound:
        raise NotFound(
            f"{target!r} is neither a file any run read or wrote nor a run",
            "give a data file path or a run id (git prov find lists runs)",
        ) from None
    run, _ = tracer.run_node(run_id)
    root = Step(None, run)
    tracer.expand(root, (), 0)
    return Lineage(target, "run", root)


def _file_root(tracer: _Tracer, paths: RepoPaths, rel: str, on_disk: bool) -> Step:
    hashes = current_hashes(paths, rel) if on_disk else []
    size = (paths.workdir / rel).stat().st_size if on_disk and paths.workdir else None
    node = FileNode(rel, hashes[0] if hashes else None, size)
    for file_hash in hashes:
        step = _choose(FileNode(rel, file_hash, size), tracer.producers_of(file_hash, None))
        if step is not None:
            tracer.expand(step, (), 0)
            return step
    declared = tracer.declared_by(rel, None)
    if declared:
        run, written, _ = declared[0]
        note = "" if not on_disk else f"modified since run {run.short_id} wrote it"
        if not on_disk:
            note = "not in the working tree now"
        step = Step(
            FileNode(rel, written, None) if not on_disk else node,
            run,
            MATCH_PATH,
            others=[r for r, _, _ in declared[1:]],
            note=note,
        )
        tracer.expand(step, (), 0)
        return step
    return Step(node, None, note="raw data (no recorded run wrote it)")


# ---- views -----------------------------------------------------------------------------------


def _quote_dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _short_hash(file_hash: str | None) -> str:
    if not file_hash:
        return "?"
    algorithm, _, digest = file_hash.partition(":")
    return f"{algorithm}:{digest[:12]}"


def _run_label(run: RunNode, width: int = 40) -> str:
    from git_prov.model.record import shorten

    return f"run {run.short_id}\n{shorten(run.command, width)}"


def to_dot(result: Lineage) -> str:
    """Graphviz: files as notes, runs as boxes, data flowing left to right."""
    ids: dict[str, str] = {}
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for file in result.files():
        key = file_key(file)
        ids[key] = f"f{len(ids)}"
        label = f"{file.path}\n{_short_hash(file.hash)}"
        lines.append(f"  {ids[key]} [shape=note, label={_quote_dot(label)}];")
    for run in result.runs():
        key = run_key(run)
        ids[key] = f"r{len(ids)}"
        lines.append(
            f"  {ids[key]} [shape=box, style=rounded, label={_quote_dot(_run_label(run))}];"
        )
    for source, target, kind in result.edges():
        style = {
            "alternative": ' [style=dashed, label="also"]',
            "candidate": ' [style=dotted, label="maybe"]',
        }.get(kind, "")
        lines.append(f"  {ids[source]} -> {ids[target]}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote_mermaid(text: str) -> str:
    escaped = text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return '"' + escaped.replace("\n", "<br/>") + '"'


def to_mermaid(result: Lineage) -> str:
    """Mermaid flowchart of the same graph."""
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for file in result.files():
        key = file_key(file)
        ids[key] = f"f{len(ids)}"
        label = _quote_mermaid(file.path + "\n" + _short_hash(file.hash))
        lines.append(f"  {ids[key]}[{label}]")
    for run in result.runs():
        key = run_key(run)
        ids[key] = f"r{len(ids)}"
        lines.append(f"  {ids[key]}([{_quote_mermaid(_run_label(run))}])")
    for source, target, kind in result.edges():
        arrow = {"alternative": "-. also .->", "candidate": "-. maybe .->"}.get(kind, "-->")
        lines.append(f"  {ids[source]} {arrow} {ids[target]}")
    return "\n".join(lines) + "\n"


def to_text(result: Lineage, *, style: Any = None) -> str:
    """The indented tree people read."""
    from git_prov.model.record import shorten

    paint = style or (lambda text, **_: text)
    out: list[str] = []

    def run_text(run: RunNode) -> str:
        return str(
            paint(f"run {run.short_id}", fg="yellow")
            + f"  {run.started[:16].replace('T', ' ')}  {run.status}  {shorten(run.command, 60)}"
        )

    def walk(step: Step, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        inner = prefix + ("" if top else ("   " if last else "│  "))
        if step.file is not None:
            size = f"  ({step.file.size} B)" if step.file.size is not None else ""
            head = paint(step.file.path, bold=True) + f"  {_short_hash(step.file.hash)}{size}"
            if step.producer is None:
                out.append(f"{prefix}{branch}{head}  " + paint(f"— {step.note}", dim=True))
                return
            out.append(f"{prefix}{branch}{head}")
            how = {MATCH_HASH: "made by", MATCH_CANDIDATES: "made by one of"}.get(
                step.match or "", "declared as output by"
            )
            out.append(f"{inner}└─ {how} {run_text(step.producer)}")
            run_prefix = inner + "   "
        else:
            assert step.producer is not None
            out.append(f"{prefix}{run_text(step.producer)}")
            run_prefix = prefix
        if step.others:
            listed = ", ".join(r.short_id for r in step.others[:5])
            more = f" … {len(step.others) - 5} more" if len(step.others) > 5 else ""
            also = "or" if step.match == MATCH_CANDIDATES else "also written by"
            out.append(f"{run_prefix}" + paint(f"({also} {listed}{more})", dim=True))
        if step.note:
            out.append(f"{run_prefix}" + paint(f"({step.note})", dim=True))
        for i, child in enumerate(step.inputs):
            walk(child, run_prefix, i == len(step.inputs) - 1, False)

    walk(result.root, "", True, True)
    from git_prov.terminal import view

    return view(out)


def open_lineage(paths: RepoPaths, target: str, max_depth: int = MAX_DEPTH) -> Lineage:
    """Open the index and trace ``target``."""
    from git_prov.query.index import with_index

    result: Lineage = with_index(paths, lambda index: lineage(index, target, max_depth=max_depth))
    return result

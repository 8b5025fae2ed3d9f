"""``git prov sweep``: params written once. A grid (``-p lr=0.1,0.01 -p depth=3,5``) or a
list of param sets from a file becomes cells; each cell's values are substituted into the
command (a list-of-argv operation: no shell) and the cell is run and recorded by the very
machinery of ``git prov run`` (:func:`git_prov.recording.run`), with the values as its
params and one ``sweep:<id>`` tag on every cell.

Substitution (:func:`substitute`): ``{name}`` is the value of the declared param ``name``
as it was written (``1e-3`` stays ``1e-3``); ``{{`` and ``}}`` are literal braces; any
other ``{…}`` is a usage error, found before anything runs. ``git prov run -p n=50 -- …
--n {n}`` uses the same rule, but only in arguments that name a declared param
(:func:`templated`), so commands written before it existed run unchanged.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from git_prov.errors import BadPath, ProvError, UsageProblem
from git_prov.model.record import RunRecord
from git_prov.model.values import Scalar, flatten, parse_scalar

SWEEP_TAG = "sweep:"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


# ---- substitution -----------------------------------------------------------------------------


def substitute(arg: str, texts: Mapping[str, str]) -> str:
    """``arg`` with ``{name}`` replaced by ``texts[name]`` and ``{{``/``}}`` by braces; a
    ``{…}`` naming no key of ``texts`` raises UsageProblem."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name not in texts:
            known = ", ".join("{" + n + "}" for n in texts) or "none"
            raise UsageProblem(
                f"the command names {token} but no param {name!r} is declared (declared: {known})",
                "declare it with -p NAME=VALUES, or write {{ and }} for literal braces",
            )
        return texts[name]

    return _PLACEHOLDER.sub(one, arg)


def templated(arg: str, names: Sequence[str] | Mapping[str, Any]) -> bool:
    """Whether ``arg`` holds ``{name}`` for one of ``names`` (``git prov run`` substitutes
    only in such arguments)."""
    return any(m.group(1) in names for m in _PLACEHOLDER.finditer(arg) if m.group(1) is not None)


def substitute_run_argv(argv: Sequence[str], texts: Mapping[str, str]) -> list[str]:
    """``git prov run``'s substitution: arguments naming a declared param are substituted
    (strictly, as a sweep's); the others are left exactly as typed."""
    return [substitute(a, texts) if templated(a, texts) else a for a in argv]


# ---- cells --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One combination of param values, and the command it runs."""

    index: int  # 1-based, in the order cells are planned
    params: Mapping[str, Scalar]
    texts: Mapping[str, str]  # the values as written, for substitution
    argv: tuple[str, ...]

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.texts.items())


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``-p name=v1,v2,…`` options as (name, [texts]) in the order given."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageProblem(f"-p {spec!r} is not NAME=VALUE[,VALUE…]", "e.g. -p lr=0.1,0.01")
        if any(n == name for n, _ in grid):
            raise UsageProblem(f"param {name!r} is given twice", "list all its values in one -p")
        texts = values.split(",")
        if any(t == "" for t in texts):
            raise UsageProblem(
                f"-p {spec!r} has an empty value",
                "values are separated by commas; a value holding a comma goes in --params-file",
            )
        grid.append((name, texts))
    return grid


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_param_sets(path: Path) -> list[dict[str, str]]:
    """Param sets from a file, each as {name: text}: JSON (a list of objects; nested
    objects give ``a.b`` names), TOML (``[[runs]]`` tables), CSV (a header row of names,
    a row per set; an empty cell leaves that param out of the set)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadPath(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
            sets = [
                {k.strip(): v for k, v in row.items() if k and v not in (None, "")} for row in rows
            ]
            return [s for s in sets if s]
        if suffix == ".toml":
            import tomllib

            doc: Any = tomllib.loads(raw.decode("utf-8")).get("runs")
            shape = "a TOML file of [[runs]] tables"
        elif suffix == ".json":
            doc = json.loads(raw)
            shape = "a JSON list of objects"
        else:
            raise UsageProblem(
                f"{path}: a list of param sets must be .json, .toml or .csv",
                "see git prov sweep --help",
            )
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageProblem(f"cannot read param sets from {path}: {exc}") from None
    if not isinstance(doc, list) or not all(isinstance(item, dict) for item in doc) or not doc:
        raise UsageProblem(f"{path} is not {shape}", 'e.g. [{"lr": 0.1}, {"lr": 0.01}]')
    return [{k: _text_of(v) for k, v in flatten(item).items()} for item in doc]


def plan(
    argv: Sequence[str],
    grid: Sequence[tuple[str, Sequence[str]]] = (),
    sets: Sequence[Mapping[str, str]] = (),
) -> list[Cell]:
    """The cells: every param set (or one empty set) crossed with every combination of
    the grid (the last ``-p`` varies fastest), each command substituted. Every problem
    (an unknown ``{x}``, a set missing a value the command names, a name both in the
    grid and a set) is found here, before anything runs."""
    if not argv:
        raise UsageProblem("no command given", "put the command after --: git prov sweep … -- CMD")
    if not grid and not sets:
        raise UsageProblem("no params to sweep", "give -p NAME=V1,V2 or --params-file FILE")
    names = [n for n, _ in grid]
    for s in sets:
        clash = [n for n in s if n in names]
        if clash:
            raise UsageProblem(f"param {clash[0]!r} is both in -p and in the params file")
    cells: list[Cell] = []
    for base in sets or [{}]:
        for combo in itertools.product(*(values for _, values in grid)):
            texts = {**base, **dict(zip(names, combo, strict=True))}
            cell_argv = tuple(substitute(a, texts) for a in argv)
            params = {k: parse_scalar(v) for k, v in texts.items()}
            cells.append(Cell(len(cells) + 1, params, texts, cell_argv))
    return cells


def new_sweep_id(now: datetime | None = None) -> str:
    """``20261203-051200-1a2b``: the start time (UTC) and 4 random hex digits."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


# ---- running ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    """How a cell went: its record (None when it was not recorded: the command could not
    start, or the sweep stopped before it), its exit status, or why it did not run."""

    cell: Cell
    record: RunRecord | None = None
    exit_status: int | None = None
    error: str | None = None  # the one-line problem, when there is no record
    started: bool = True
    interrupted: bool = False  # ^C, SIGTERM or SIGHUP reached the command

    @property
    def ok(self) -> bool:
        return self.record is not None and self.exit_status == 0


@dataclass
class SweepResult:
    """Every cell's result, in cell order."""

    sweep_id: str
    results: list[CellResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def tag(self) -> str:
        return SWEEP_TAG + self.sweep_id

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results if not r.ok]


def run_sweep(
    root: Path,
    cells: Sequence[Cell],
    options: Any,
    *,
    sweep_id: str,
    jobs: int = 1,
    fail_fast: bool = False,
    on_start: Callable[[Cell], None] | None = None,
    on_done: Callable[[CellResult], None] | None = None,
) -> SweepResult:
    """Run and record every cell (``options``: the :class:`~git_prov.recording.RunOptions`
    all cells share; each adds its params and the sweep tag), ``jobs`` at a time. A failed
    cell does not stop the others unless ``fail_fast``: then no further cell starts (those
    running finish). ^C (KeyboardInterrupt in the calling thread) starts no further cell;
    the running ones get the signal from the terminal and are recorded as they end. With
    ``jobs`` > 1 a cell whose command died of SIGINT counts as that ^C (see ``one``)."""
    from git_prov import recording
    from git_prov.store.repo import open_repo

    tag = SWEEP_TAG + sweep_id
    result = SweepResult(sweep_id)
    done: dict[int, CellResult] = {}
    lock = threading.Lock()
    stop = threading.Event()
    pending = list(cells)

    def one(cell: Cell) -> CellResult:
        paths = dict(cell.texts)
        cell_options = replace(
            options,
            params={**options.params, **cell.params},
            tags=(*options.tags, tag),
            # -o out/{lr} --metrics-file out/{lr}/m.json: each cell its own files
            inputs=tuple(substitute_run_argv(options.inputs, paths)),
            outputs=tuple(substitute_run_argv(options.outputs, paths)),
            metrics_files=tuple(substitute_run_argv(options.metrics_files, paths)),
        )
        try:
            # Each cell its own repository handle: libgit2 objects are not shared across
            # threads; the ledger's lock and compare-and-swap order the writes.
            outcome = recording.run(open_repo(root), cell.argv, cell_options)
        except ProvError as exc:
            return CellResult(cell, error=str(exc), started=False)
        except Exception as exc:  # one cell's surprise must not lose the others' results
            return CellResult(cell, error=f"{type(exc).__name__}: {exc}", started=False)
        # A cell's command killed by SIGINT, in a worker thread, is the user's ^C (the
        # terminal sends it to the whole foreground group): the main thread's handler may
        # run only after this worker has recorded the cell, and it must not start another.
        # (With one job the cell runs in the main thread, whose guard knows exactly.)
        by_sigint = workers > 1 and outcome.record.signal == signal.SIGINT
        return CellResult(
            cell,
            outcome.record,
            outcome.exit_status,
            interrupted=outcome.interrupted or by_sigint,
        )

    def finished(res: CellResult) -> None:
        with lock:
            done[res.cell.index] = res
            if res.interrupted:
                result.interrupted = True
                stop.set()
            if fail_fast and not res.ok:
                stop.set()
        if on_done is not None:
            on_done(res)

    def next_cell() -> Cell | None:
        with lock:
            if stop.is_set() or not pending:
                return None
            return pending.pop(0)

    begun: set[int] = set()
    workers = max(1, min(jobs, len(cells)))
    running = [workers]
    all_done = threading.Event()

    def worker() -> None:
        try:
            while (cell := next_cell()) is not None:
                begun.add(cell.index)
                if on_start is not None:
                    on_start(cell)
                finished(one(cell))
        finally:
            with lock:
                running[0] -= 1
                if running[0] == 0:
                    all_done.set()

    try:
        if workers == 1:
            worker()  # in this thread: ^C and terminal signals as `git prov run` has them
        else:
            for i in range(workers):
                name = f"git-prov-sweep-{i}"
                threading.Thread(target=worker, name=name, daemon=True).start()
            # An Event, not Thread.join: a join cut short by ^C can leave the thread
            # looking finished while it still runs (and its cell would be lost).
            while not all_done.wait(0.2):
                pass
    except KeyboardInterrupt:
        result.interrupted = True
        stop.set()
        if workers > 1:
            all_done.wait()  # the running cells end (they got the signal too) and are recorded
    result.results = [
        done.get(c.index)
        or CellResult(
            c,
            error="interrupted before it was recorded" if c.index in begun else "not started",
            started=False,
        )
        for c in cells
    ]
    return result

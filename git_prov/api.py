"""The Python API: record runs from inside a program or notebook, and read them back.

::

    import git_prov

    with git_prov.run(inputs=["data/train.csv"], outputs=["model.pt"], params=cfg) as run:
        model = train(cfg)
        run.log_metric("acc", evaluate(model))

    for r in git_prov.Ledger(".").runs(status="ok", tag="baseline"):
        print(r.short_id, r.metrics, r.inputs_manifest())

A ``with git_prov.run(…)`` block captures the code, the declared inputs and the
environment when it starts (as ``git prov run`` does before the command) and writes the
record when it ends: status ``ok``, or ``failed`` when the block raises — the exception
still propagates, and its type, message and traceback are kept (redacted) as the run's
stderr log. ``git_prov.record(…)`` records a run that happened elsewhere, as
``git prov record`` does. The CLI is a client of the same functions
(:mod:`git_prov.recording`). See ``docs/api.md``.
"""

from __future__ import annotations

import os
import shlex
import signal as signals
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from git_prov.errors import NotFound, ProvError, UsageProblem
from git_prov.live import MetricLog, end_live
from git_prov.model.history import GOALS, Series
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.record import STATUS_OK, LineProblem, RunRecord
from git_prov.model.values import Scalar, flatten
from git_prov.store.ledger import Ledger as StoreLedger
from git_prov.store.ledger import LocatedRun
from git_prov.store.repo import GitRepo

if TYPE_CHECKING:
    from git_prov.attach import Attached, Outer
    from git_prov.capture.data import OutputsBefore
    from git_prov.recording import Prepared, RunOptions
    from git_prov.trust.redaction import Redactor

RepoLike = str | os.PathLike[str] | GitRepo
ORIGIN_API = "api"
MAX_ERROR_LOG = 64 << 10  # bytes of exception text kept as the stderr log
_ACTIVE: ContextVar[ActiveRun | None] = ContextVar("git_prov_active_run", default=None)


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A recorded run, as the API returns it: the stored record's fields, typed, and
    helpers that load its manifests and logs from the repository it came from."""

    id: str
    short_id: str
    commit: str
    command: str
    status: str
    exit_code: int | None
    started: datetime
    ended: datetime
    duration: float
    params: Mapping[str, Scalar]
    metrics: Mapping[str, Scalar]
    tags: tuple[str, ...]
    message: str | None
    branch: str | None
    snapshot: str | None
    host: str | None
    user: str | None
    origin: str
    shown_on: tuple[str, ...]
    record: RunRecord = field(repr=False)
    _ledger: StoreLedger = field(repr=False, compare=False)

    @classmethod
    def _from(cls, ledger: StoreLedger, located: LocatedRun) -> Run:
        r = located.record
        return cls(
            id=r.id,
            short_id=r.short_id,
            commit=r.commit,
            command=r.command,
            status=r.status,
            exit_code=r.exit_code,
            started=_parse_time(r.started),
            ended=_parse_time(r.ended),
            duration=r.duration,
            params=dict(r.params),
            metrics=dict(r.metrics),
            tags=r.tags,
            message=r.message,
            branch=r.branch,
            snapshot=r.snapshot,
            host=r.host,
            user=r.user,
            origin=r.origin,
            shown_on=located.shown_on,
            record=r,
            _ledger=ledger,
        )

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems met while recording the run that did not stop it (a metrics file that
        could not be read, an output that could not be hashed, data not present)."""
        from git_prov.recording import record_warnings

        return record_warnings(self.record)

    @property
    def ok(self) -> bool:
        """True when the run succeeded (status ``ok``)."""
        return self.status == STATUS_OK

    @property
    def source_commit(self) -> str:
        """The commit holding the exact code that ran (the snapshot when the tree was dirty)."""
        return self.record.source_commit

    def inputs_manifest(self) -> DataManifest | None:
        """The data manifest of the declared inputs (None when none were declared)."""
        return self._ledger.data_manifest(self.record.inputs) if self.record.inputs else None

    def outputs_manifest(self) -> DataManifest | None:
        """The data manifest of the declared outputs (None when none were declared)."""
        return self._ledger.data_manifest(self.record.outputs) if self.record.outputs else None

    def environment(self) -> EnvironmentManifest | None:
        """The environment manifest: interpreter, packages, system, GPUs, variables."""
        return self._ledger.env_manifest(self.record.env) if self.record.env else None

    @property
    def series(self) -> Mapping[str, Mapping[str, Scalar]]:
        """Per metric with a history, its summary: ``n``, ``last``, ``last_step``,
        ``min``, ``max`` and, when its goal is known, ``goal``, ``best``, ``best_step``."""
        return self.record.series

    def histories(self) -> dict[str, Series]:
        """Every point the run logged, per metric: :class:`~git_prov.model.history.Series`
        columns ``steps``, ``times`` (seconds since the epoch; NaN: not known) and
        ``values``. Empty when the run kept no history."""
        if not self.record.history:
            return {}
        return self._ledger.metric_history(self.record.history)

    def log(self, stream: str = "stdout") -> bytes | None:
        """The kept ``stdout`` or ``stderr`` of the run (None when none was kept)."""
        if stream not in ("stdout", "stderr"):
            raise UsageProblem(f"no log stream {stream!r}", "ask for 'stdout' or 'stderr'")
        oid = getattr(self.record, stream)
        if not oid:
            return None
        from git_prov.model.logs import log_bytes

        return log_bytes(self._ledger.read_object(oid, f"{stream} log"), self.record.id)


class Ledger:
    """Read access to the runs recorded in one repository.

    ``Ledger(path)`` opens the repository containing ``path`` (default: the current
    directory); an open :class:`~git_prov.store.repo.GitRepo` is accepted too.
    """

    def __init__(self, path: RepoLike = "."):
        self.repo = _open(path)
        self._store = StoreLedger(self.repo)
        self.problems: list[LineProblem] = []

    def runs(
        self,
        commit: str | None = None,
        status: str | Iterable[str] | None = None,
        tag: str | None = None,
    ) -> list[Run]:
        """Recorded runs, oldest first.

        ``commit`` (any revision: ``HEAD``, a branch, an id) keeps the runs shown on that
        commit (including runs carried to it by a rebase or amend); ``status`` keeps runs
        with that status (``ok``, ``failed``, ``killed``, or several); ``tag`` keeps runs
        carrying that tag. Unreadable ledger lines are skipped and listed in
        :attr:`problems`. Deleted (tombstoned) runs are never returned.
        """
        from git_prov import history
        from git_prov.query import located as by_index
        from git_prov.query.index import RepoPaths, RunIndex, with_index

        target: str | None = None
        if commit is not None:
            target = history.resolve_commit(self.repo, commit)
            if target is None:
                raise NotFound(f"{commit!r} does not name a commit", "see `git help revisions`")
        statuses = sorted({status} if isinstance(status, str) else set(status or ()))

        def find(index: RunIndex) -> tuple[list[LocatedRun], list[LineProblem]]:
            if target is not None:
                return by_index.runs_on(index, [target]).get(target, []), index.problems()
            sql, args = "SELECT run FROM lines WHERE live = 1", statuses
            if statuses:
                sql += f" AND status IN ({','.join('?' * len(statuses))})"
            ids = [run for (run,) in index.db.execute(sql, args)]
            return list(by_index.located(index, ids).values()), index.problems()

        # Through the query index: only the lines of the runs returned are read.
        located, self.problems = with_index(RepoPaths.of_repo(self.repo), find)
        return [
            Run._from(self._store, r)
            for r in sorted(located, key=lambda r: r.id)
            if (not statuses or r.record.status in statuses)
            and (tag is None or tag in r.record.tags)
        ]

    def run(self, spec: str) -> Run:
        """One run by id, short id or unique prefix; :class:`~git_prov.errors.NotFound`
        when there is none (or it was deleted)."""
        from git_prov.query.located import find_run

        return Run._from(self._store, find_run(self.repo, spec))  # never a deleted run


# ---- recording -------------------------------------------------------------------------------


class ActiveRun:
    """A run being recorded by a ``with git_prov.run(…) as run:`` block.

    Created by :func:`run`; capture happens on entering the block, the record is written
    on leaving it. Inside the block, :meth:`log_metric`, :meth:`log_param` and
    :meth:`add_tag` add to what will be recorded. After the block, :attr:`run` is the
    recorded :class:`Run`.
    """

    def __init__(
        self,
        repo: RepoLike,
        options: RunOptions,
        command: str | None,
        notebook: bool | None,
        attach: bool = True,
    ):
        self._repo_spec = repo
        self._may_attach = attach
        self._options = options
        self._command = command
        self._notebook = notebook
        self._params: dict[str, Scalar] = {}
        self._log: MetricLog = _ClosedLog("new")
        self._live: Path | None = None
        self._goals: dict[str, str] = {}
        self._tags: list[str] = []
        self._state = "new"
        self._token: Token[ActiveRun | None] | None = None
        self._prepared: Prepared | None = None
        self._repo: GitRepo | None = None
        self._begun = 0.0
        self._argv: tuple[str, ...] | None = None
        # Inside a command `git prov run` records: the run this block joins (attach.py).
        self._attached: Attached | None = None
        self._outputs: tuple[str, ...] = ()
        self._outputs_before: OutputsBefore | None = None
        self.notebook: Path | None = None
        self.run: Run | None = None

    @property
    def attached(self) -> bool:
        """Whether this block is part of the run ``git prov run`` is recording its process
        as (then that command's record holds what the block logs: docs/api.md)."""
        return self._attached is not None

    @property
    def id(self) -> str:
        """The run's id (known once the block has started)."""
        if self._attached is not None:
            return self._attached.outer.run_id
        if self._prepared is None:
            raise UsageProblem("the run has not started", "use it as `with git_prov.run(…):`")
        return self._prepared.run_id

    def log_metric(self, key: str, value: Scalar, step: int | None = None) -> None:
        """Record a metric's value at ``step`` (default: one more than its previous
        step, 0 first). Every value is kept, with its step and the time, as the metric's
        history; the record's metric is the last value. Values that are not numbers
        (text, booleans) are kept as the metric's value, without a history. Cheap: no
        system call per point (the points reach the live view once a second)."""
        self._log.log(key, value, step)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record several metrics at one ``step``; nested mappings become ``a.b.c`` keys."""
        log = self._log.log
        for key, value in _values(metrics, "metric").items():
            log(key, value, step)

    def set_goal(self, key: str, goal: str) -> None:
        """Say what is better for metric ``key``: ``"min"`` or ``"max"``. It decides the
        ``best`` and ``best_step`` of its summary (without one, a name such as ``loss`` or
        ``acc`` decides, and other names get no best: docs/format.md)."""
        self._check_open("set a goal")
        if self._attached is not None:
            self._attached.add_goal(key, _goal(key, goal))
            return
        self._goals[key] = _goal(key, goal)

    def log_param(self, key: str, value: Scalar) -> None:
        """Record a parameter (in addition to those given to :func:`run`)."""
        self._check_open("log a param")
        self._add_params(_values({key: value}, "param"))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters; nested mappings become ``a.b.c`` keys."""
        self._check_open("log params")
        self._add_params(_values(params, "param"))

    def _add_params(self, params: dict[str, Scalar]) -> None:
        if self._attached is None:
            self._params.update(params)
            return
        from git_prov.trust.redaction import Redactor

        self._attached.add_params(params, Redactor.from_environment().values(params))

    def add_tag(self, tag: str) -> None:
        """Add a label to the run."""
        self._check_open("add a tag")
        if not isinstance(tag, str) or not tag:
            raise UsageProblem(f"tag {tag!r} is not a non-empty string")
        (self._attached.tags if self._attached is not None else self._tags).append(tag)

    def __enter__(self) -> ActiveRun:
        from git_prov import recording
        from git_prov.capture.notebook import detect_notebook

        if self._state != "new":
            raise UsageProblem("this git_prov.run() was already used", "call git_prov.run() again")
        active = _ACTIVE.get()
        if active is not None:
            raise UsageProblem(
                f"a git-prov run is already being recorded here ({active.id})",
                "runs do not nest: finish the outer `with git_prov.run()` first, or record "
                "the inner step separately with git_prov.record()",
            )
        self._repo = repo = _open(self._repo_spec)
        options = self._options
        if self._notebook is not False:
            self.notebook = detect_notebook(options.env, options.cwd)
        if self.notebook is not None:
            options = _with_notebook(repo, options, self.notebook)
        if self._command is None and self.notebook is not None:
            self._command = f"notebook {_shown_path(repo, self.notebook)}"
        elif self._command is None:
            # The Python command line as typed (``python train.py --lr 0.1``).
            self._argv = tuple(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
        self._options = options
        from git_prov.attach import find_outer

        outer = find_outer(repo) if self._may_attach else None
        if outer is not None:
            return self._attach(repo, outer)
        self._prepared = recording.prepare(repo, options, list(self._argv or ()) or None)
        shown = self._command or self._argv
        shown = shown if isinstance(shown, str) else shlex.join(shown or ())
        self._live = recording._start_live(repo, self._prepared, options, shown)
        self._log = MetricLog(self._live)
        # The hot path: run.log_metric is the log's own method (one call per point).
        self.log_metric = self._log.log  # type: ignore[method-assign]
        self._begun = time.monotonic()  # the block's own time, as `run` times the command
        self._token = _ACTIVE.set(self)
        self._state = "open"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        from git_prov import recording
        from git_prov.store.ledger import Ledger as Store
        from git_prov.trust.redaction import Redactor

        assert self._repo is not None and self._token is not None
        if self._attached is not None:
            return self._leave_attached(exc)
        assert self._prepared is not None
        _ACTIVE.reset(self._token)
        self._state = "closed"
        duration = time.monotonic() - self._begun
        exit_code, signal = _outcome(exc)
        log, self._log = self._log, _ClosedLog("closed")
        self.log_metric = self._log.log  # type: ignore[method-assign]
        log.close()
        repo, options = self._repo, self._options
        options = replace(
            options,
            metrics={**options.metrics, **log.last_values()},
            tags=(*options.tags, *self._tags),
            goals={**options.goals, **self._goals},
        )
        prepared = replace(self._prepared, params={**self._prepared.params, **self._params})
        redactor = Redactor.from_environment(options.env)
        ledger = Store(repo)
        try:
            signer = recording.signer_for(repo, options.sign)
            logs: dict[str, str] = {}
            if exc is not None and exit_code != 0:
                text = "".join(traceback.format_exception(exc)).encode("utf-8", "replace")
                logs["stderr"] = recording.store_log(
                    ledger, redactor.log(text[-MAX_ERROR_LOG:]), prepared.run_id
                )
            argv = redactor.argv(self._argv) if self._argv is not None else None
            command = (
                shlex.join(argv) if argv is not None else redactor.command(self._command or "")
            )
            started = prepared.started
            record = recording.finish(
                repo,
                ledger,
                prepared,
                options,
                command=command,
                argv=argv,
                exit_code=exit_code,
                signal=signal,
                started=started,
                ended=started + timedelta(seconds=duration),
                duration=duration,
                logs=logs,
                progress=_no_progress(),
                origin=ORIGIN_API,
                redactor=redactor,
                signer=signer,
                extra={"error": _error(exc, redactor)}
                if exc is not None and exit_code != 0
                else None,
                histories=log.histories(),
            )
        except ProvError as problem:
            if exc is None:
                raise
            # The block's own exception matters more; say why there is no record.
            exc.add_note(f"git-prov: this run was not recorded: {problem}")
            return False
        finally:
            end_live(self._live)
        self.run = Run._from(ledger, LocatedRun(record, (record.commit,)))
        for found in self.run.warnings:
            message = f"git-prov: run {record.short_id} recorded with a problem: {found}"
            if exc is not None:
                exc.add_note(message)  # the block's own exception stays the one raised
            else:
                warnings.warn(message, UserWarning, stacklevel=2)
        return False

    def _attach(self, repo: GitRepo, outer: Outer) -> ActiveRun:
        """Enter as a part of ``outer``, the run ``git prov run`` records this process as:
        check what the block declares against it, describe the block's own inputs now."""
        from git_prov.attach import (
            attached_for,
            covered,
            describe_inputs,
            merge_manifests,
            outputs_before,
        )
        from git_prov.capture.values_files import read_values_file
        from git_prov.live import child_log
        from git_prov.model.ids import short_run_id
        from git_prov.recording import _declared_files, repo_relative
        from git_prov.trust.redaction import Redactor

        options, run_id = self._options, short_run_id(outer.run_id)
        where = f"this block is part of run {run_id}, which `git prov run` records"
        if options.sign is not None and options.sign != outer.signs:
            raise UsageProblem(
                f"sign={options.sign} cannot be kept: {where} "
                + ("signed" if outer.signs else "unsigned"),
                "drop sign=, or pass --sign/--no-sign to git prov run",
            )
        if any(k != "none" for k in options.keep):
            raise UsageProblem(
                f"keep= cannot be used here: {where}",
                "pass --keep to git prov run, with the data as -i/-o",
            )
        root, cwd = repo.root, Path(os.path.abspath(options.cwd or Path.cwd()))

        def own(paths: Sequence[str], declared: Sequence[str]) -> tuple[str, ...]:
            relative = dict.fromkeys(repo_relative(root, cwd, p) for p in paths)
            return tuple(p for p in relative if not covered(p, declared))

        inputs, outputs = own(options.inputs, outer.inputs), own(options.outputs, outer.outputs)
        if (inputs or outputs) and outer.keeps:
            raise UsageProblem(
                f"this block declares data ({', '.join((*inputs, *outputs)[:3])}) but run "
                f"{run_id}, which `git prov run` records, keeps the bytes of data: the block's "
                "would not be kept",
                "declare the data on the git prov run command line (-i/-o)",
            )
        params: dict[str, Scalar] = {}
        for path in _declared_files(root, cwd, (), options.params_files):
            params.update(read_values_file(path, "params"))
        params.update(options.params)
        redactor = Redactor.from_environment()
        shown = redactor.values(params)  # compared as stored
        message = redactor.text(options.message) if options.message else None
        state = attached_for(outer)
        state.check_params(shown)  # refused before anything is added or hashed
        for key, goal in options.goals.items():
            state.check_goal(key, goal)
        if message is not None:
            state.check_message(message)
        log = child_log()
        if log is None:  # (its live directory went away just now)
            raise UsageProblem(f"run {run_id} is no longer being recorded", "run the script again")
        files = _declared_files(root, cwd, (), options.metrics_files)
        if inputs:
            manifest, notes = describe_inputs(repo, inputs)
            state.inputs = merge_manifests(state.inputs, manifest, "input", state.warnings)
            state.warnings.extend(notes)
        self._outputs = outputs
        self._outputs_before = outputs_before(repo, outputs) if outputs else None
        state.add_params(params, shown)
        for key, goal in options.goals.items():
            state.add_goal(key, goal)
        state.message = message or state.message
        state.tags.extend(options.tags)
        state.metrics_files.extend(str(f) for f in files)
        state.write()
        self._attached, self._log = state, log
        self.log_metric = log.log  # type: ignore[method-assign]
        self._token = _ACTIVE.set(self)
        self._state = "open"
        return self

    def _leave_attached(self, exc: BaseException | None) -> Literal[False]:
        """Leave a block that is part of another run: flush its points, describe its own
        outputs and write what it added (the run's record is written when the command ends)."""
        from git_prov.attach import describe_outputs, merge_manifests
        from git_prov.model.ids import short_run_id

        assert self._attached is not None and self._repo is not None and self._token is not None
        _ACTIVE.reset(self._token)
        self._state = "closed"
        state, log = self._attached, self._log
        self._log = _ClosedLog("closed")
        self.log_metric = self._log.log  # type: ignore[method-assign]
        log.flush()
        if exc is not None and _outcome(exc)[0] != 0:  # (as a run of its own records it)
            state.raised(exc)
        if self._outputs:
            manifest, notes = describe_outputs(self._repo, self._outputs, self._outputs_before)
            state.outputs = merge_manifests(state.outputs, manifest, "output", state.warnings)
            state.warnings.extend(notes)
        try:
            state.write()
        except OSError as problem:
            run_id = short_run_id(self.id)
            message = f"git-prov: run {run_id} may miss what this block logged: {problem}"
            if exc is not None:
                exc.add_note(message)
            else:
                warnings.warn(message, UserWarning, stacklevel=3)
        return False

    def _check_open(self, what: str) -> None:
        if self._state != "open":
            raise UsageProblem(
                f"cannot {what}: the run is not being recorded ({self._state})",
                "log inside the `with git_prov.run(…)` block",
            )


def run(
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    params_files: Sequence[str] = (),
    metrics_files: Sequence[str] = (),
    tags: Sequence[str] = (),
    message: str | None = None,
    repo: RepoLike = ".",
    command: str | None = None,
    python: str | None = None,
    notebook: bool | None = None,
    sign: bool | None = None,
    keep: Sequence[str] | str = (),
    goals: Mapping[str, str] | None = None,
    attach: bool = True,
) -> ActiveRun:
    """Record the code in a ``with`` block as a run: ``with git_prov.run(…) as run:``.

    ``inputs``/``outputs`` are files or directories (relative to the current directory)
    hashed when the block starts and ends; ``params`` (nested mappings are flattened to
    ``a.b.c``) and ``params_files`` are recorded as parameters, ``metrics_files`` are read
    when the block ends. ``command`` is how the run is shown (default: the Python command
    line, or ``notebook <path>`` in Jupyter); ``python`` is the interpreter whose packages
    are recorded (default: this one, ``sys.executable``). In a Jupyter kernel the
    notebook file is added to the inputs (``notebook=False`` turns that off; see
    :mod:`git_prov.capture.notebook`). ``sign`` signs the record (default:
    ``git config prov.sign``). ``keep`` keeps the bytes of data, not only their hash, as
    ``--keep`` does: ``"inputs"``, ``"outputs"``, ``"all"``, ``"none"`` or declared paths
    (:func:`get` gives them back). ``goals`` says per metric whether ``"min"`` or
    ``"max"`` is best (see :meth:`ActiveRun.set_goal`).

    In a process ``git prov run`` (or ``sweep``) records, the block joins that run (one
    record: docs/api.md, "Under git prov run"); ``attach=False`` records it as a run of
    its own (each of several blocks a run, as for Optuna trials).

    Runs do not nest: starting one inside another's block raises
    :class:`~git_prov.errors.UsageProblem` (runs in other threads are independent).
    """
    from git_prov.recording import RunOptions

    options = RunOptions(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        params=_values(params or {}, "param"),
        params_files=tuple(params_files),
        metrics_files=tuple(metrics_files),
        tags=tuple(tags),
        message=message,
        python=python or sys.executable,
        sign=sign,
        keep=_keep(keep),
        goals={k: _goal(k, g) for k, g in (goals or {}).items()},
    )
    return ActiveRun(repo, options, command, notebook, attach)


class _ClosedLog(MetricLog):
    """The log of a run not being recorded: logging to it is a usage error."""

    def __init__(self, state: str):
        super().__init__(None)
        self._state = state

    def log(self, key: str, value: Any, step: int | None = None) -> None:
        raise UsageProblem(
            f"cannot log a metric: the run is not being recorded ({self._state})",
            "log inside the `with git_prov.run(…)` block",
        )


def _goal(key: str, goal: str) -> str:
    if goal not in GOALS:
        raise UsageProblem(f"goal {goal!r} of metric {key!r} is not min or max")
    return goal


def log_metric(key: str, value: Scalar, step: int | None = None) -> None:
    """Log a metric of the run being recorded: the ``with git_prov.run()`` block active
    here, else the run ``git prov run`` is recording this process as (its points reach
    the record and ``git prov metrics --follow`` through the run's live directory)."""
    _current_log().log(key, value, step)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """:func:`log_metric` for several metrics at one ``step`` (nested mappings flattened)."""
    log = _current_log().log
    for key, value in _values(metrics, "metric").items():
        log(key, value, step)


def _current_log() -> MetricLog:
    active = _ACTIVE.get()
    if active is not None:
        return active._log
    from git_prov.live import child_log

    found = child_log()
    if found is None:
        raise UsageProblem(
            "no run is being recorded here",
            "log inside `with git_prov.run(…)`, or run the script with `git prov run -- …`",
        )
    return found


def _keep(keep: Sequence[str] | str) -> tuple[str, ...]:
    return (keep,) if isinstance(keep, str) else tuple(keep)


def record(
    command: str,
    exit_code: int = 0,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    params_files: Sequence[str] = (),
    metrics_files: Sequence[str] = (),
    tags: Sequence[str] = (),
    message: str | None = None,
    started: datetime | None = None,
    duration: float | None = None,
    repo: RepoLike = ".",
    python: str | None = None,
    sign: bool | None = None,
    keep: Sequence[str] | str = (),
) -> Run:
    """Record a run that happened outside git-prov (``git prov record``): the code is the
    current HEAD (and working tree if dirty), inputs and outputs are hashed as they are
    now. ``started`` defaults to now minus ``duration``; ``keep`` as for :func:`run`."""
    from git_prov import recording

    options = recording.RunOptions(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        params=_values(params or {}, "param"),
        metrics=_values(metrics or {}, "metric"),
        params_files=tuple(params_files),
        metrics_files=tuple(metrics_files),
        tags=tuple(tags),
        message=message,
        python=python,
        sign=sign,
        keep=_keep(keep),
    )
    repository = _open(repo)
    stored = recording.record(
        repository, command, exit_code, options, started=started, duration=duration
    )
    return Run._from(StoreLedger(repository), LocatedRun(stored, (stored.commit,)))


def active_run() -> ActiveRun | None:
    """The run being recorded in this thread (or asyncio task), if any."""
    return _ACTIVE.get()


# ---- helpers ---------------------------------------------------------------------------------


def _open(repo: RepoLike) -> GitRepo:
    if isinstance(repo, GitRepo):
        return repo
    from git_prov.store.repo import open_repo

    return open_repo(Path(repo))


def _values(mapping: Mapping[str, Any], what: str) -> dict[str, Scalar]:
    """Params or metrics as stored: string keys, nested mappings flattened to ``a.b.c``."""
    if not isinstance(mapping, Mapping):
        raise UsageProblem(f"{what}s must be a mapping of names to values, not {mapping!r}")
    for key in mapping:
        if not isinstance(key, str) or not key:
            raise UsageProblem(f"{what} name {key!r} is not a non-empty string")
    return flatten(mapping)


def _outcome(exc: BaseException | None) -> tuple[int | None, int | None]:
    """(exit code, signal) of a block that ended with ``exc``: 0 without one, the code of
    ``SystemExit``, SIGINT for ^C, else 1 (what Python exits with on an exception)."""
    if exc is None:
        return 0, None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0, None
        return (code if isinstance(code, int) and not isinstance(code, bool) else 1), None
    if isinstance(exc, KeyboardInterrupt):
        return None, int(signals.SIGINT)
    return 1, None


def _with_notebook(repo: GitRepo, options: RunOptions, notebook: Path) -> RunOptions:
    """Options with the notebook as an input and the kernel's interpreter as the Python."""
    path = Path(os.path.realpath(notebook))  # the repository root is resolved too
    if not path.is_relative_to(repo.root):
        return options  # a notebook outside the repository is not data of this run
    return replace(
        options,
        inputs=(*options.inputs, str(path)),
        python=options.python or sys.executable,
    )


def _shown_path(repo: GitRepo, path: Path) -> str:
    real = Path(os.path.realpath(path))
    return real.relative_to(repo.root).as_posix() if real.is_relative_to(repo.root) else str(path)


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def _no_progress() -> Any:
    from git_prov.progress import NO_PROGRESS

    return NO_PROGRESS


def _error(exc: BaseException, redactor: Redactor) -> dict[str, str]:
    """The structured ``error`` field of an API run whose block raised (docs/format.md)."""
    from git_prov.attach import error_field

    return error_field(type(exc).__qualname__, str(exc), redactor)


def get(
    run: str,
    paths: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    repo: RepoLike = ".",
) -> list[str]:
    """Write the recorded bytes of run ``run``'s kept data files (``git prov get``): all of
    them, or those at or below ``paths``, below ``output`` (default: the working tree).
    Returns the paths written or found unchanged. Raises as ``git prov get`` fails."""
    from git_prov.kept_data import GetOptions, get_files

    result = get_files(
        _open(repo),
        run,
        GetOptions(paths=tuple(paths), output=Path(output) if output else None, force=force),
    )
    return [f.target for f in result.files]

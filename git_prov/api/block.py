"""A ``with git_prov.run(…)`` block recorded as a run (:class:`ActiveRun`): capture on
entering it, the record written on leaving it, or — inside a command ``git prov run``
records — the block joined to that run (:mod:`git_prov.attach`); and the metrics logged
to the run being recorded here (:func:`log_metric`)."""

from __future__ import annotations

import os
import shlex
import signal as signals
import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from git_prov.api.runs import RepoLike, Run, open_repo_like
from git_prov.errors import ProvError, UsageProblem
from git_prov.live import MetricLog, end_live
from git_prov.model.history import GOALS
from git_prov.model.values import Scalar, flatten
from git_prov.store.ledger import LocatedRun
from git_prov.store.repo import GitRepo

if TYPE_CHECKING:
    from git_prov.attach import Attached, Outer
    from git_prov.capture.data import OutputsBefore
    from git_prov.recording import Prepared, RunOptions
    from git_prov.trust.redaction import Redactor


ORIGIN_API = "api"
MAX_ERROR_LOG = 64 << 10  # bytes of exception text kept as the stderr log
_ACTIVE: ContextVar[ActiveRun | None] = ContextVar("git_prov_active_run", default=None)


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
        for key, value in checked_values(metrics, "metric").items():
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
        self._add_params(checked_values({key: value}, "param"))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters; nested mappings become ``a.b.c`` keys."""
        self._check_open("log params")
        self._add_params(checked_values(params, "param"))

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
        self._repo = repo = open_repo_like(self._repo_spec)
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
        params=checked_values(params or {}, "param"),
        params_files=tuple(params_files),
        metrics_files=tuple(metrics_files),
        tags=tuple(tags),
        message=message,
        python=python or sys.executable,
        sign=sign,
        keep=as_keep(keep),
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
    for key, value in checked_values(metrics, "metric").items():
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


def as_keep(keep: Sequence[str] | str) -> tuple[str, ...]:
    return (keep,) if isinstance(keep, str) else tuple(keep)


def active_run() -> ActiveRun | None:
    """The run being recorded in this thread (or asyncio task), if any."""
    return _ACTIVE.get()


def checked_values(mapping: Mapping[str, Any], what: str) -> dict[str, Scalar]:
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


def _no_progress() -> Any:
    from git_prov.progress import NO_PROGRESS

    return NO_PROGRESS


def _error(exc: BaseException, redactor: Redactor) -> dict[str, str]:
    """The structured ``error`` field of an API run whose block raised (docs/format.md)."""
    from git_prov.attach import error_field

    return error_field(type(exc).__qualname__, str(exc), redactor)

"""Recording runs: capture code, data and environment, run (or take) the command's result,
and write one record to the ledger. This is where ``git prov run`` and ``record`` happen."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from git_prov import __version__
from git_prov.capture.source import SourceState, capture_source
from git_prov.collector import collector_paused
from git_prov.config import ProvConfig, load_config
from git_prov.errors import BadPath, ProvError, StorageProblem, UsageProblem, storage_problem
from git_prov.model.frozen import FRESH, Fields, frozen_fields
from git_prov.model.ids import new_run_id
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.record import RunRecord, status_for
from git_prov.model.values import Scalar
from git_prov.progress import NO_PROGRESS, Progress
from git_prov.record_hints import SECRETS_LEFT_OUT
from git_prov.record_parts import capture_outputs, store_histories, store_manifest
from git_prov.record_parts import store_log as store_log  # (the API stores a block's logs)
from git_prov.store.ledger import (
    KIND_DATA,
    KIND_ENV,
    KIND_LOG,
    KIND_METRICS,
    Ledger,
)
from git_prov.store.repo import GitRepo
from git_prov.trust.redaction import Redactor

# Imported where they are used, not here: what only some runs need (keeping bytes, live
# metrics, metric histories, signing) stays out of a plain record's start-up
# (tests/test_startup.py).
if TYPE_CHECKING:
    from git_prov.capture.data import OutputsBefore
    from git_prov.capture.data_memo import DataMemo
    from git_prov.capture.keep import KeepPlan
    from git_prov.model.history import Series
    from git_prov.trust.signing import SigningProblem, SigningSetup


@frozen_fields
class RunOptions(Fields):
    """What a user declares about a run (command-line options and API arguments)."""

    inputs: Sequence[str] = ()
    outputs: Sequence[str] = ()
    params: Mapping[str, Scalar] = field(default_factory=dict)
    metrics: Mapping[str, Scalar] = field(default_factory=dict)
    params_files: Sequence[str] = ()
    metrics_files: Sequence[str] = ()
    tags: Sequence[str] = ()
    message: str | None = None
    python: str | None = None
    capture_logs: bool | None = None  # None: as .gitprov.toml says (on by default)
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    use_config: bool = True
    sign: bool | None = None  # None: as `git config prov.sign` says (off by default)
    reproduces: str | None = None  # the id of the run this one reproduces (git prov reproduce)
    keep: Sequence[str] = ()  # --keep: inputs, outputs, all, none, or paths (capture/keep.py)
    # --goal / goals=: "min" or "max" per metric, deciding its "best" (model/history.py)
    goals: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        params: Mapping[str, Scalar] = FRESH,
        metrics: Mapping[str, Scalar] = FRESH,
        params_files: Sequence[str] = (),
        metrics_files: Sequence[str] = (),
        tags: Sequence[str] = (),
        message: str | None = None,
        python: str | None = None,
        capture_logs: bool | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        use_config: bool = True,
        sign: bool | None = None,
        reproduces: str | None = None,
        keep: Sequence[str] = (),
        goals: Mapping[str, str] = FRESH,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "inputs", inputs)
        set_(self, "outputs", outputs)
        set_(self, "params", {} if params is FRESH else params)
        set_(self, "metrics", {} if metrics is FRESH else metrics)
        set_(self, "params_files", params_files)
        set_(self, "metrics_files", metrics_files)
        set_(self, "tags", tags)
        set_(self, "message", message)
        set_(self, "python", python)
        set_(self, "capture_logs", capture_logs)
        set_(self, "cwd", cwd)
        set_(self, "env", env)
        set_(self, "use_config", use_config)
        set_(self, "sign", sign)
        set_(self, "reproduces", reproduces)
        set_(self, "keep", keep)
        set_(self, "goals", {} if goals is FRESH else goals)


@frozen_fields
class Prepared(Fields):
    """Everything captured before the command starts."""

    run_id: str
    started: datetime
    source: SourceState
    inputs: DataManifest | None
    environment: EnvironmentManifest
    params: dict[str, Scalar]
    config: ProvConfig
    cwd: Path
    inputs_declared: tuple[str, ...]
    outputs_declared: tuple[str, ...]
    # Problems met while capturing that did not stop the recording (see :func:`finish`).
    warnings: tuple[str, ...] = ()
    keep: KeepPlan | None = None
    # The declared outputs as they were before the command (None for ``record``: it ran
    # already), to tell which of them the run wrote.
    outputs_before: OutputsBefore | None = None
    # The Hydra configs there were before the command (None for ``record``), to tell
    # which one the run wrote (capture/hydra.py).
    hydra_before: Mapping[Path, tuple[int, int, int]] | None = None
    # The inputs' stored manifest when their files are unchanged since a record that stored
    # it (then ``inputs`` is None: it was not built), and the memo to tell of a new one.
    inputs_id: str | None = None
    inputs_memo: DataMemo | None = None

    def __init__(
        self,
        run_id: str,
        started: datetime,
        source: SourceState,
        inputs: DataManifest | None,
        environment: EnvironmentManifest,
        params: dict[str, Scalar],
        config: ProvConfig,
        cwd: Path,
        inputs_declared: tuple[str, ...],
        outputs_declared: tuple[str, ...],
        warnings: tuple[str, ...] = (),
        keep: KeepPlan | None = None,
        outputs_before: OutputsBefore | None = None,
        hydra_before: Mapping[Path, tuple[int, int, int]] | None = None,
        inputs_id: str | None = None,
        inputs_memo: DataMemo | None = None,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "run_id", run_id)
        set_(self, "started", started)
        set_(self, "source", source)
        set_(self, "inputs", inputs)
        set_(self, "environment", environment)
        set_(self, "params", params)
        set_(self, "config", config)
        set_(self, "cwd", cwd)
        set_(self, "inputs_declared", inputs_declared)
        set_(self, "outputs_declared", outputs_declared)
        set_(self, "warnings", warnings)
        set_(self, "keep", keep)
        set_(self, "outputs_before", outputs_before)
        set_(self, "hydra_before", hydra_before)
        set_(self, "inputs_id", inputs_id)
        set_(self, "inputs_memo", inputs_memo)


@frozen_fields
class RunOutcome(Fields):
    """A recorded run and how its process ended."""

    record: RunRecord
    exit_status: int
    interrupted: bool = False

    def __init__(
        self,
        record: RunRecord,
        exit_status: int,
        interrupted: bool = False,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "record", record)
        set_(self, "exit_status", exit_status)
        set_(self, "interrupted", interrupted)


def repo_relative(root: Path, cwd: Path, path: str) -> str:
    """``path`` (relative to ``cwd`` or absolute) as a repo-relative POSIX path.

    Purely lexical (symlinks are not resolved, so a link into the repository pointing at
    data elsewhere is fine); raises BadPath for anything outside the working tree.
    """
    absolute = Path(os.path.abspath(os.path.join(cwd, path)))
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        raise BadPath(
            f"{path} is outside the repository ({root})",
            "declare data inside the working tree (a symlink to it is fine)",
        ) from None
    text = relative.as_posix()
    if text in ("", ".") or text == ".git" or text.startswith(".git/"):
        raise BadPath(
            f"{path} cannot be declared as data",
            "name files or directories inside the working tree",
        )
    return text


@collector_paused()
def prepare(
    repo: GitRepo,
    options: RunOptions,
    argv: Sequence[str] | None,
    progress: Progress = NO_PROGRESS,
    started: datetime | None = None,
    *,
    lenient: bool = False,
) -> Prepared:
    """Capture source, inputs, params and environment before a command runs.

    With ``lenient`` (``record``: the command already ran) a params file that cannot be
    read is a warning in :attr:`Prepared.warnings` instead of an error."""
    from git_prov.capture.environment import DEFAULT_ALLOWED_VARIABLES, capture_environment

    root = repo.root
    config = load_config(root) if options.use_config else ProvConfig()
    cwd = Path(os.path.abspath(options.cwd or Path.cwd()))
    if not cwd.is_relative_to(root):
        cwd = root
    inputs = tuple(
        dict.fromkeys(
            [repo_relative(root, root, p) for p in config.inputs]
            + [repo_relative(root, cwd, p) for p in options.inputs]
        )
    )
    outputs = tuple(
        dict.fromkeys(
            [repo_relative(root, root, p) for p in config.outputs]
            + [repo_relative(root, cwd, p) for p in options.outputs]
        )
    )
    params: dict[str, Scalar] = {}
    warnings: list[str] = []
    for path in _declared_files(root, cwd, config.params_files, options.params_files):
        from git_prov.capture.values_files import read_values_file

        try:
            params.update(read_values_file(path, "params"))
        except ProvError as exc:
            if not lenient:
                raise
            warnings.append(f"params not read: {exc}")
    params.update(options.params)
    cache = repo.prov_dir
    index = None if "GIT_INDEX_FILE" in os.environ else repo.git_dir / "index"
    early = None
    if inputs and not (options.keep or config.keep):
        # Unchanged inputs: git checks the memo's files index beside the snapshot.
        from git_prov.capture.data_memo import DataMemo
        from git_prov.capture.data_paths import declared_paths

        with contextlib.suppress(ProvError):  # (a bad path: said below, as before)
            early = DataMemo.early(cache, index, *declared_paths(root, inputs, cwd=root))
    try:
        source = capture_source(
            repo,
            exclude=inputs + outputs,
            max_untracked_bytes=config.max_snapshot_file,
            secret_files=config.snapshot_secret_files,
        )
    except BaseException:
        if early is not None:
            early.abandon()
        raise
    keep = None
    if options.keep or config.keep:
        from git_prov.capture.keep import plan_keep

        keep = plan_keep(repo, config, options.keep, cwd, declared=inputs + outputs)
    manifest = None
    inputs_id = memo = None
    if inputs:
        keep_inputs = None
        if keep is not None:
            from git_prov.capture.keep import KEEP_INPUTS

            keep_inputs = keep.chooser(KEEP_INPUTS)
        listing = None
        if keep_inputs is None:  # unchanged inputs: the manifest stored last time
            from git_prov.capture.data_memo import DataMemo
            from git_prov.capture.data_paths import declared_paths

            if early is not None:
                memo = early.settle()
            else:
                memo = DataMemo.before_walk(cache, index, *declared_paths(root, inputs, cwd=root))
            if memo.needs_listing:  # (no files index or find to vouch: the walk's own)
                from git_prov.capture.data import list_data

                memo.listed(listing := list_data(root, list(inputs), cwd=root))
            inputs_id = memo.recall()
            if inputs_id is not None and not repo.has_object(inputs_id):
                inputs_id = None
        if inputs_id is None:
            from git_prov.capture.data import absent_warnings, describe_data, list_data

            if listing is None:
                listing = list_data(root, list(inputs), cwd=root)
                if memo is not None:
                    memo.listed(listing)
            manifest = describe_data(
                listing,
                cache_path=cache / "hash-cache.sqlite",
                progress=progress,
                keep=keep_inputs,
                keeper=keep.store if keep else None,
            )
            warnings.extend(absent_warnings(manifest, "input"))
    environment = capture_environment(
        root,
        argv=argv,
        python=options.python,
        env=options.env or os.environ,
        cache_dir=cache / "env-cache",
        cwd=cwd,
        allow_variables=(*DEFAULT_ALLOWED_VARIABLES, *config.variables),
    )
    hydra_before = None
    if not lenient:
        from git_prov.capture.hydra import config_stats

        hydra_before = config_stats(cwd, [root / p for p in outputs])
    before = None
    if outputs and not lenient:
        from git_prov.capture.data import outputs_before

        # Last, so that as little as possible happens between this look and the command.
        before = outputs_before(root, outputs, cache_path=cache / "hash-cache.sqlite")
    return Prepared(
        run_id=new_run_id(started),
        started=started or datetime.now(UTC),
        source=source,
        inputs=manifest,
        inputs_id=inputs_id,
        inputs_memo=memo,
        environment=environment,
        params=params,
        config=config,
        cwd=cwd,
        inputs_declared=inputs,
        outputs_declared=outputs,
        warnings=tuple(warnings),
        keep=keep,
        outputs_before=before,
        hydra_before=hydra_before,
    )


def _declared_files(
    root: Path, cwd: Path, from_config: Sequence[str], from_options: Sequence[str]
) -> list[Path]:
    """Files named in .gitprov.toml (relative to the root) and on the command line
    (relative to the current directory), as absolute paths inside the repository."""
    return [root / repo_relative(root, root, p) for p in from_config] + [
        root / repo_relative(root, cwd, p) for p in from_options
    ]


def run(
    repo: GitRepo,
    argv: Sequence[str],
    options: RunOptions = RunOptions(),
    *,
    progress: Progress = NO_PROGRESS,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> RunOutcome:
    """Run ``argv`` and record it (``git prov run``). The command's exit status is kept."""

    if not argv:
        raise UsageProblem("no command given", "put the command after --: git prov run -- CMD")
    from git_prov.store.writable import ensure_writable

    ensure_writable(repo)  # a read-only .git or a full disk: refuse before the command runs
    ledger = Ledger(repo)
    redactor = Redactor.from_environment(options.env)
    signer = signer_for(repo, options.sign)  # a broken signing setup fails before the command runs
    prepared = prepare(repo, options, argv, progress)
    config = prepared.config
    capture_logs = options.capture_logs
    if capture_logs is None:
        capture_logs = config.log_limit > 0
    from git_prov.attach import outer_declared
    from git_prov.live import LIVE_ENV, RUN_ENV, end_live

    attach = outer_declared(
        repo.root, redactor.values(prepared.params), options.goals,
        redactor.text(options.message) if options.message else None,
        prepared.inputs_declared, prepared.outputs_declared,
        signs=signer is not None, keeps=prepared.keep is not None,
    )  # fmt: skip
    live = _start_live(repo, prepared, options, shlex.join(redactor.argv(argv)), attach)
    env = options.env
    if live is not None:
        env = {**(options.env or os.environ), LIVE_ENV: str(live), RUN_ENV: prepared.run_id}
    try:
        return _run_and_finish(
            repo, ledger, prepared, options, argv, env, live, capture_logs, progress,
            redactor, signer, stdout, stderr,
        )  # fmt: skip
    finally:
        end_live(live)


def _start_live(
    repo: GitRepo,
    prepared: Prepared,
    options: RunOptions,
    command: str,
    attach: Mapping[str, Any] | None = None,
) -> Path | None:
    """The run's live directory (git_prov/live.py), naming its declared metrics files
    (and, with ``attach``, what a ``git_prov.run()`` block in the command joins)."""
    from git_prov.live import start_live

    files = _declared_files(
        repo.root, prepared.cwd, prepared.config.metrics_files, options.metrics_files
    )
    return start_live(
        repo.prov_dir, prepared.run_id, command, _iso(prepared.started), files, attach
    )


def _run_and_finish(
    repo: GitRepo,
    ledger: Ledger,
    prepared: Prepared,
    options: RunOptions,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    live: Path | None,
    capture_logs: bool,
    progress: Progress,
    redactor: Redactor,
    signer: SigningSetup | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
) -> RunOutcome:
    from git_prov.capture.process import run_command

    config = prepared.config
    result = run_command(
        list(argv),
        cwd=prepared.cwd,
        env=env,
        capture_logs=capture_logs,
        log_limit=config.log_limit or (1 << 20),
        stdout=stdout,
        stderr=stderr,
    )
    logs: dict[str, str] = {}
    for name, captured in (("stdout", result.stdout), ("stderr", result.stderr)):
        if captured is not None and captured.total_bytes:
            # Redacted before the blob is written: the secret never enters the object store.
            try:
                logs[name] = store_log(ledger, redactor.log(captured.data), prepared.run_id)
            except Exception as exc:  # a disk that filled while the command ran
                problem = storage_problem(exc)
                if problem is None:
                    raise
                # The run is worth more than its log: record it without, and say so.
                note = f"{name} log not kept ({len(captured.data):,} bytes): {problem.message}"
                prepared = replace(prepared, warnings=(*prepared.warnings, note))
    from git_prov.attach import fold

    # `with git_prov.run()` blocks in the command joined this run (git_prov/attach.py).
    folded = fold(ledger, live, prepared, options, redactor)
    prepared, options = folded.prepared, folded.options
    stored_argv = redactor.argv(argv)
    try:
        record = finish(
            repo,
            ledger,
            prepared,
            options,
            command=shlex.join(stored_argv),
            argv=stored_argv,
            exit_code=result.exit_code,
            signal=result.signal,
            ended=result.ended,
            duration=result.duration,
            started=result.started,
            logs=logs,
            progress=progress,
            redactor=redactor,
            signer=signer,
            live=live,
            attached_outputs=folded.outputs,
            # A block in the command raised, and the command failed (or was killed): the
            # exception, as a block that is a run of its own records it.
            extra={"error": folded.error}
            if folded.error is not None and (result.exit_code != 0 or result.signal is not None)
            else None,
        )
    except Exception as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        # The disk filled (or .git turned read-only) while the command ran: say that it
        # ran and how it ended, since no record will.
        raise StorageProblem(
            f"the command ran ({status_for(result.exit_code, result.signal)}, exit status "
            f"{result.shell_status}) but it could not be recorded: {problem.message}",
            problem.hint or "free some space",
        ) from None
    return RunOutcome(record, result.shell_status, result.interrupted)


@collector_paused()
def record(
    repo: GitRepo,
    command: str,
    exit_code: int,
    options: RunOptions = RunOptions(),
    *,
    started: datetime | None = None,
    duration: float | None = None,
    progress: Progress = NO_PROGRESS,
) -> RunRecord:
    """Record a run that happened outside git-prov (``git prov record``)."""
    ended = datetime.now(UTC)
    if started is None:
        started = ended - timedelta(seconds=duration or 0.0)
    if duration is None:
        duration = max(0.0, (ended - started).total_seconds())
    ledger = Ledger(repo)
    try:
        argv = tuple(shlex.split(command))
    except ValueError:
        argv = ()
    redactor = Redactor.from_environment(options.env)
    signer = signer_for(repo, options.sign)
    prepared = prepare(repo, options, list(argv) or None, progress, started=started, lenient=True)
    return finish(
        repo,
        ledger,
        prepared,
        options,
        command=redactor.command(command),
        argv=None,
        exit_code=exit_code,
        signal=None,
        started=started,
        ended=ended,
        duration=duration,
        logs={},
        progress=progress,
        origin="record",
        redactor=redactor,
        signer=signer,
    )


@collector_paused()
def finish(
    repo: GitRepo,
    ledger: Ledger,
    prepared: Prepared,
    options: RunOptions,
    *,
    command: str,
    argv: tuple[str, ...] | None,
    exit_code: int | None,
    signal: int | None,
    started: datetime,
    ended: datetime,
    duration: float,
    logs: Mapping[str, str],
    progress: Progress,
    origin: str = "run",
    redactor: Redactor | None = None,
    signer: SigningSetup | None = None,
    extra: Mapping[str, Any] | None = None,
    histories: Mapping[str, Series] | None = None,
    live: Path | None = None,
    attached_outputs: DataManifest | None = None,
) -> RunRecord:
    """Capture outputs and metrics after the command, then write the record.

    Metric histories come from ``histories`` (the API's log), the points flushed to the
    ``live`` directory (a command under ``git prov run`` logging with
    ``git_prov.log_metric``) and the history files among the metrics files; they are
    stored as one blob, summarised in the record (docs/format.md, "Metric histories").

    ``command`` and ``argv`` are stored as given (callers redact them); params, metrics,
    tags, the message and environment variables are redacted here. With ``signer`` the
    record is signed; if signing fails after a command ran, the run is still recorded
    (unsigned) and :class:`~git_prov.trust.signing.SigningProblem` is raised afterwards.

    The command has run: no problem met while capturing its results (a metrics file
    missing or unparseable, an output that cannot be hashed) loses it. Whatever could be
    captured is recorded, and each problem becomes one line of the record's ``warnings``
    (callers show them: :func:`~git_prov.record_hints.record_warnings`).
    """
    from git_prov.store.reflocks import recover_stale_ref_locks

    redactor = redactor or Redactor.from_environment(options.env)
    root = repo.root
    config = prepared.config
    warnings = list(prepared.warnings)
    outputs = None
    keeping = prepared.keep
    if prepared.outputs_declared:
        from git_prov.capture.data import absent_warnings

        outputs = capture_outputs(repo, prepared, progress, warnings)
        warnings.extend(absent_warnings(outputs, "output"))
    if attached_outputs is not None:  # described by git_prov.run() blocks as they ended
        from git_prov.attach import merge_manifests

        outputs = merge_manifests(attached_outputs, outputs, "output", warnings)
    if keeping is not None and keeping.store.too_large:
        from git_prov.capture.keep import not_kept_warning

        warnings.append(not_kept_warning(keeping.store.too_large, keeping.store.lfs_threshold))
    metrics: dict[str, Scalar] = {}
    parts: list[Mapping[str, Series]] = [histories or {}]
    if live is not None:
        from git_prov.live import read_points

        parts.append(read_points(live))
    for path in _declared_files(root, prepared.cwd, config.metrics_files, options.metrics_files):
        from git_prov.capture.histories import is_history_path, read_history_path
        from git_prov.capture.values_files import read_values_file

        try:
            if is_history_path(path):
                found = read_history_path(path)
                parts.append(found.histories)
                metrics.update({k: s.values[-1] for k, s in found.histories.items() if len(s)})
                metrics.update(found.values)
            else:
                metrics.update(read_values_file(path, "metrics"))
        except ProvError as exc:
            warnings.append(f"metrics not read: {exc}")
        except Exception as exc:  # the run is worth more than its metrics
            warnings.append(f"metrics not read from {path}: {type(exc).__name__}: {exc}")
    merged: dict[str, Series] = {}
    if any(parts):
        from git_prov.model.history import merge_histories

        merged = merge_histories(parts)
    for key, series in merged.items():
        if len(series) and key not in metrics:
            metrics[key] = series.values[-1]
    metrics.update(options.metrics)
    params = prepared.params
    if origin != "record":  # (record: the run is over; what it wrote when is not known)
        from git_prov.capture.hydra import params_of_run

        declared = [root / p for p in prepared.outputs_declared]
        # mtimes are whole seconds on some file systems: a second of slack
        hydra, notes = params_of_run(
            prepared.cwd, declared, started.timestamp() - 1.0, before=prepared.hydra_before
        )
        warnings.extend(notes)
        if hydra:
            params = {**hydra, **params}  # what was given explicitly wins
    if prepared.source.secrets_left_out:
        extra = {**(extra or {}), SECRETS_LEFT_OUT: list(prepared.source.secrets_left_out)}

    objects: dict[str, list[str]] = {KIND_DATA: [], KIND_ENV: [], KIND_LOG: list(logs.values())}
    inputs_id, outputs_id = prepared.inputs_id, None
    if prepared.inputs is not None:
        inputs_id = store_manifest(ledger, prepared.inputs)
        if prepared.inputs_memo is not None:
            prepared.inputs_memo.remember(prepared.inputs, inputs_id)
    if inputs_id is not None:
        objects[KIND_DATA].append(inputs_id)
    if outputs is not None:
        outputs_id = store_manifest(ledger, outputs)
        objects[KIND_DATA].append(outputs_id)
    environment = prepared.environment
    variables = {k: redactor.known_values(v) for k, v in environment.variables.items()}
    if variables != dict(environment.variables):
        environment = replace(environment, variables=variables)
    env_id = ledger.store_object(environment.to_toml())
    objects[KIND_ENV].append(env_id)
    history_id, summaries = store_histories(
        ledger, merged, options.goals, warnings, prepared.run_id
    )
    if history_id is not None:
        objects[KIND_METRICS] = [history_id]
    if warnings:
        extra = {**(extra or {}), "warnings": [redactor.text(w) for w in warnings]}
    source = prepared.source
    rel_cwd = prepared.cwd.relative_to(root).as_posix() if prepared.cwd != root else "."
    run_record = RunRecord(
        extra=dict(extra or {}),
        id=prepared.run_id,
        commit=source.commit,
        command=command,
        started=_iso(started),
        ended=_iso(ended),
        duration=round(float(duration), 3),
        exit_code=exit_code,
        status=status_for(exit_code, signal),
        argv=argv,
        cwd=rel_cwd,
        snapshot=source.snapshot,
        patch_id=source.patch_id,
        branch=source.branch,
        host=os.uname().nodename,
        user=_user(),
        inputs=inputs_id,
        outputs=outputs_id,
        env=env_id,
        params=redactor.values(params),
        metrics=redactor.values(metrics),
        tags=tuple(dict.fromkeys(redactor.strings(options.tags))),
        message=redactor.text(options.message) if options.message else options.message,
        stdout=logs.get("stdout"),
        stderr=logs.get("stderr"),
        signal=signal,
        omitted=source.omitted,
        origin=origin,
        reproduces=options.reproduces,
        tool=f"git-prov/{__version__}",
        history=history_id,
        series=summaries,
    )
    signing_failed: SigningProblem | None = None
    if signer is not None:
        from git_prov.trust.signing import SigningProblem, sign_record

        try:
            run_record = sign_record(signer, run_record)
        except SigningProblem as exc:
            if origin == "record":
                raise  # nothing ran: record nothing rather than an unsigned record
            signing_failed = exc
    keep = [source.commit] + ([source.snapshot] if source.snapshot else [])
    # A writer killed inside a ref update leaves a ref lock behind that would fail this
    # write; it is removed when provably stale (see git_prov.fsck).
    recover_stale_ref_locks(repo)
    if keeping is not None:  # kept bytes are reachable before any record names them
        keeping.remember(repo.prov_dir / "hash-cache.sqlite")
        keeping.store.commit(f"git-prov: keep data of run {run_record.id}")
    ledger.write(
        [(source.commit, run_record)],
        objects=objects,
        keep=keep,
        message=f"git-prov: record run {run_record.id}",
    )
    if signing_failed is not None:
        from git_prov.trust.signing import SigningProblem

        raise SigningProblem(
            f"run {run_record.short_id} was recorded UNSIGNED: {signing_failed.message}",
            "fix the signing setup (git config user.signingKey, gpg.format); "
            "`git prov verify` lists unsigned runs",
        )
    return run_record


def signer_for(repo: GitRepo, sign: bool | None) -> SigningSetup | None:
    """The signing setup when a record is to be signed: ``sign`` (``--sign``/``--no-sign``)
    when given, else ``git config prov.sign``. An unsigned record loads no signing code."""
    if sign is False or (sign is None and not repo.config_flag("prov.sign")):
        return None
    from git_prov.trust.signing import signing_setup

    return signing_setup(repo)


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")

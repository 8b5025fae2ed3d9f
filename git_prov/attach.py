"""A ``with git_prov.run()`` block inside a command ``git prov run`` records: one record.

``git prov run`` (and each cell of ``git prov sweep``) gives its command the run's live
directory (``GIT_PROV_LIVE``, ``GIT_PROV_RUN``: git_prov/live.py). A block entered in
such a process, for the same repository, *attaches* to that run instead of recording a
second one (as ``mlflow.start_run()`` resumes the run ``mlflow run`` made):

* the live directory's ``run.json`` says, under ``attach``, what the outer run declared:
  its working tree, its params (redacted, as they will be stored), goals, message,
  declared inputs and outputs, and whether it signs and keeps data;
* the block logs its points with the process's live log (``points-<pid>.bin``, as
  ``git_prov.log_metric`` outside a block does), and writes ``attached-<pid>.json``
  (``{"params", "metrics", "tags", "goals", "message", "metrics_files", "warnings",
  "error"}``) when it starts and when it ends (and once more when the process exits, for
  metrics logged after the block), each time whole (a temporary file, then a rename);
  ``error`` is the exception a block ended with (as a block that is a run of its own
  records it: :func:`error_field`), with the time it was raised;
* data the block declares that the outer run did not (paths not at or below one of its
  declared paths) is described by the block: ``inputs-<pid>.toml`` when it starts,
  ``outputs-<pid>.toml`` when it ends (data manifests, docs/format.md);
* the outer run folds all of it into its one record when the command has ended
  (:func:`fold`).

Nothing here is stored as it is: it is local, temporary state like the rest of the live
directory. The rules (a param given twice with two values is refused, …) are in
docs/api.md, "Under git prov run".
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from git_prov.errors import UsageProblem
from git_prov.model.ids import short_run_id
from git_prov.model.values import Scalar, parse_scalar

if TYPE_CHECKING:
    from git_prov.capture.data import OutputsBefore
    from git_prov.model.manifest import DataManifest
    from git_prov.recording import Prepared, RunOptions
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import GitRepo
    from git_prov.trust.redaction import Redactor

ATTACH_KEY = "attach"  # run.json's key: what the outer run declared
MAX_ERROR_MESSAGE = 200  # characters of the ``error`` field's message (docs/format.md)
STATE_PREFIX = "attached-"
INPUTS_PREFIX = "inputs-"
OUTPUTS_PREFIX = "outputs-"


def outer_declared(
    root: Path,
    params: Mapping[str, Scalar],
    goals: Mapping[str, str],
    message: str | None,
    inputs: Sequence[str],
    outputs: Sequence[str],
    *,
    signs: bool,
    keeps: bool,
) -> dict[str, Any]:
    """``run.json``'s ``attach`` value for a run ``git prov run`` records (params as they
    will be stored: redacted by the caller)."""
    return {
        "root": os.path.realpath(root),
        "params": dict(params),
        "goals": dict(goals),
        "message": message,
        "inputs": list(inputs),
        "outputs": list(outputs),
        "sign": signs,
        "keep": keeps,
    }


def same_value(a: Scalar, b: Scalar) -> bool:
    """Whether two values of one param are the same: equal, or equal once the text one is
    read as ``-p`` reads a value (``"0.1"`` and ``0.1``: a sweep's ``{lr}`` passed on as
    text)."""
    if a == b:
        return True
    if isinstance(a, str) and not isinstance(b, str):
        return parse_scalar(a) == b
    if isinstance(b, str) and not isinstance(a, str):
        return parse_scalar(b) == a
    return False


def error_field(type_name: str, text: str, redactor: Redactor) -> dict[str, str]:
    """The structured ``error`` field of a run whose ``git_prov.run()`` block raised an
    exception of class ``type_name`` saying ``text`` (docs/format.md): its first line,
    redacted, then cut to :data:`MAX_ERROR_MESSAGE` characters."""
    first = text.splitlines()[0] if text else ""
    message = redactor.text(first)
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    return {"type": type_name, "message": message}


def _conflict(key: str, outer: Scalar, inner: Scalar, run_id: str, what: str) -> UsageProblem:
    return UsageProblem(
        f"{what} {key!r} is {inner!r} in this git_prov.run() block but {outer!r} in run "
        f"{short_run_id(run_id)}, which `git prov run` is recording (the block is part of it)",
        f"give {key} one value (or leave it out of one of them); a block that is a run of "
        "its own (one of several runs of this script): git_prov.run(…, attach=False)",
    )


# ---- the process inside `git prov run` -------------------------------------------------------


@dataclass
class Outer:
    """The run a block attaches to, as its live directory's ``run.json`` describes it."""

    run_id: str
    directory: Path
    params: dict[str, Scalar]
    goals: dict[str, str]
    message: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    signs: bool
    keeps: bool


def find_outer(repo: GitRepo) -> Outer | None:
    """The run ``git prov run`` is recording this process as, when it records into
    ``repo`` and its live directory says what it declared; else None (the block records
    its own run, as outside ``git prov run``)."""
    from git_prov.live import LIVE_ENV, RUN_ENV, RUN_FILE, live_root

    directory, run_id = os.environ.get(LIVE_ENV), os.environ.get(RUN_ENV)
    if not directory or not run_id:
        return None
    path = Path(directory)
    try:
        if os.path.realpath(path.parent) != os.path.realpath(live_root(repo.prov_dir)):
            return None  # another repository's run
        info = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # its record is written (or it cannot be read): not attachable
    declared = info.get(ATTACH_KEY) if isinstance(info, dict) else None
    if not isinstance(declared, dict) or info.get("id") != run_id:
        return None
    if declared.get("root") != os.path.realpath(repo.root):
        return None  # another working tree of the repository
    params = declared.get("params")
    goals = declared.get("goals")
    message = declared.get("message")
    return Outer(
        run_id=run_id,
        directory=path,
        params=dict(params) if isinstance(params, dict) else {},
        goals=dict(goals) if isinstance(goals, dict) else {},
        message=message if isinstance(message, str) else None,
        inputs=tuple(_strings(declared.get("inputs"))),
        outputs=tuple(_strings(declared.get("outputs"))),
        signs=declared.get("sign") is True,
        keeps=declared.get("keep") is True,
    )


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def covered(path: str, declared: Sequence[str]) -> bool:
    """Whether repo-relative ``path`` is at or below one of ``declared``."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


@dataclass
class Attached:
    """What the blocks of this process add to the outer run (one per process)."""

    outer: Outer
    params: dict[str, Scalar] = field(default_factory=dict)
    shown_params: dict[str, Scalar] = field(default_factory=dict)  # as stored: redacted
    tags: list[str] = field(default_factory=list)
    goals: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    metrics_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: DataManifest | None = None
    outputs: DataManifest | None = None
    metrics: dict[str, Scalar] = field(default_factory=dict)
    # The exception the last block that raised ended with: type, first line (not yet
    # redacted: the outer run redacts it as it stores it), when.
    error: dict[str, str | float] | None = None
    _exit_hook: bool = False

    def raised(self, exc: BaseException) -> None:
        """A block of this process ended with ``exc`` (and its process with a failure)."""
        import time

        said = str(exc)
        self.error = {
            "type": type(exc).__qualname__,
            "message": said.splitlines()[0] if said else "",
            "at": time.time(),
        }

    def check_params(self, redacted: Mapping[str, Scalar]) -> None:
        """Refuse a param the outer run or an earlier block gives another value (compared
        as stored: redacted)."""
        for key, value in redacted.items():
            for known in (self.outer.params, self.shown_params):
                if key in known and not same_value(known[key], value):
                    raise _conflict(key, known[key], value, self.outer.run_id, "param")

    def add_params(self, params: Mapping[str, Scalar], redacted: Mapping[str, Scalar]) -> None:
        """Add params (after :meth:`check_params`); those the outer run has are its own."""
        self.check_params(redacted)
        for key, value in params.items():
            if key not in self.outer.params:
                self.params[key] = value
                self.shown_params[key] = redacted[key]

    def check_goal(self, key: str, goal: str) -> None:
        for known in (self.outer.goals, self.goals):
            if known.get(key, goal) != goal:
                raise _conflict(key, known[key], goal, self.outer.run_id, "the goal of metric")

    def add_goal(self, key: str, goal: str) -> None:
        self.check_goal(key, goal)
        self.goals[key] = goal

    def check_message(self, message: str) -> None:
        for known in (self.outer.message, self.message):
            if known is not None and known != message:
                raise _conflict("message", known, message, self.outer.run_id, "the")

    def write(self) -> None:
        """Write this process's state to the live directory, whole (a rename)."""
        from git_prov.live import child_log

        log = child_log()
        if log is not None:
            self.metrics.update(log.last_values())
        state = {
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "goals": self.goals,
            "message": self.message,
            "metrics_files": self.metrics_files,
            "warnings": self.warnings,
            "error": self.error,
        }
        pid = os.getpid()
        _replace(self.outer.directory / f"{STATE_PREFIX}{pid}.json", json.dumps(state).encode())
        for prefix, manifest in ((INPUTS_PREFIX, self.inputs), (OUTPUTS_PREFIX, self.outputs)):
            if manifest is not None:
                _replace(self.outer.directory / f"{prefix}{pid}.toml", manifest.to_toml())
        if not self._exit_hook:  # metrics logged after the block reach the record too
            import atexit

            self._exit_hook = True
            atexit.register(self._write_at_exit)

    def _write_at_exit(self) -> None:
        from git_prov.live import child_log

        log = child_log()
        if log is not None:
            log.close()
        with contextlib.suppress(OSError):  # (the command's record is written without it)
            self.write()


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


_ATTACHED: Attached | None = None


def attached_for(outer: Outer) -> Attached:
    """This process's :class:`Attached` for ``outer`` (made on the first block)."""
    global _ATTACHED
    if _ATTACHED is None or _ATTACHED.outer.run_id != outer.run_id:
        _ATTACHED = Attached(outer)
    return _ATTACHED


def merge_manifests(
    first: DataManifest | None, second: DataManifest | None, role: str, warnings: list[str]
) -> DataManifest | None:
    """One manifest of two described one after the other; a file both describe with
    different content keeps the later (``second``) description, with a warning naming it."""
    if first is None or second is None:
        return first or second
    from git_prov.model.manifest import DataManifest

    known = first.by_path()
    changed = [e.path for e in second.entries if e.path in known and known[e.path] != e]
    if changed:
        warnings.append(
            f"{role} {', '.join(changed[:3])}{' …' if len(changed) > 3 else ''} described twice "
            "(by git prov run and a git_prov.run() block) with different content: recorded "
            "as described last"
        )
    return DataManifest.build(
        (*first.paths, *second.paths),
        (*first.entries, *second.entries),
        (*first.missing, *second.missing),
    )


def describe_inputs(repo: GitRepo, paths: Sequence[str]) -> tuple[DataManifest, list[str]]:
    """The manifest of inputs a block declared (repo-relative), hashed now."""
    from git_prov.capture.data import absent_warnings, describe_data, list_data

    listing = list_data(repo.root, list(paths), cwd=repo.root)
    manifest = describe_data(listing, cache_path=repo.prov_dir / "hash-cache.sqlite")
    return manifest, absent_warnings(manifest, "input")


def outputs_before(repo: GitRepo, paths: Sequence[str]) -> OutputsBefore:
    from git_prov.capture.data import outputs_before as before

    return before(repo.root, list(paths), cache_path=repo.prov_dir / "hash-cache.sqlite")


def describe_outputs(
    repo: GitRepo, paths: Sequence[str], before: OutputsBefore | None
) -> tuple[DataManifest | None, list[str]]:
    """The manifest of outputs a block declared, hashed now (None, with a warning, when
    they cannot be described: the block's work is not lost for it)."""
    from git_prov.capture.data import absent_warnings, build_manifest
    from git_prov.errors import ProvError

    try:
        manifest = build_manifest(
            repo.root,
            list(paths),
            cwd=repo.root,
            cache_path=repo.prov_dir / "hash-cache.sqlite",
            missing_ok=True,
            before=before,
            git_ids=True,
        )
    except ProvError as exc:
        return None, [f"outputs not recorded: {exc}"]
    return manifest, absent_warnings(manifest, "output")


# ---- `git prov run`, once its command has ended ----------------------------------------------


@dataclass(frozen=True)
class Folded:
    """What the attached blocks change of the outer run's record."""

    prepared: Prepared
    options: RunOptions
    outputs: DataManifest | None = None  # data the blocks declared, described at their end
    # The ``error`` field (redacted) of the exception the last block that raised ended with.
    error: dict[str, str] | None = None


def fold(
    ledger: Ledger,
    live: Path | None,
    prepared: Prepared,
    options: RunOptions,
    redactor: Redactor,
) -> Folded:
    """Fold what the attached blocks wrote to ``live`` into the outer run's capture.

    Params, tags, goals, the message and metrics files are added (a param or goal two
    processes gave two values keeps the first, and the record warns, naming both as
    stored); metrics logged by the blocks win over the metrics files' (as in a block's
    own run), ``--metric`` values over both; data the blocks declared joins the run's
    inputs and outputs manifests. The exception a block raised last is ``error``."""
    found = _read_states(live) if live is not None else []
    if not found:
        return Folded(prepared, options)
    from git_prov.model.manifest import DataManifest

    warnings = list(prepared.warnings)
    params = dict(prepared.params)
    goals = dict(options.goals)
    tags = list(options.tags)
    metrics: dict[str, Scalar] = {}
    message = options.message
    files = list(options.metrics_files)
    inputs = prepared.inputs
    if inputs is None and prepared.inputs_id is not None and any(f[1] for f in found):
        inputs = ledger.data_manifest(prepared.inputs_id)
    merged_inputs = inputs
    outputs: DataManifest | None = None
    raised: dict[str, Any] | None = None
    for state, inputs_toml, outputs_toml in found:
        error = state["error"]
        if error is not None and (raised is None or error["at"] >= raised["at"]):
            raised = error
        for target, values, what in ((params, state["params"], "param"),
                                     (goals, state["goals"], "goal of")):  # fmt: skip
            for key, value in values.items():
                if key in target and not same_value(target[key], value):
                    kept, given = (redactor.values({key: v})[key] for v in (target[key], value))
                    warnings.append(
                        f"{what} {key}: a git_prov.run() block gave {given!r}, recorded as {kept!r}"
                    )
                    continue
                target.setdefault(key, value)
        tags.extend(state["tags"])
        metrics.update(state["metrics"])
        files.extend(state["metrics_files"])
        warnings.extend(state["warnings"])
        if message is None:
            message = state["message"]
        try:  # (the command has run: data that cannot be read loses only itself)
            if inputs_toml is not None:
                merged_inputs = merge_manifests(
                    merged_inputs, DataManifest.from_toml(inputs_toml), "input", warnings
                )
            if outputs_toml is not None:
                outputs = merge_manifests(
                    outputs, DataManifest.from_toml(outputs_toml), "output", warnings
                )
        except ValueError as exc:
            warnings.append(f"data a git_prov.run() block declared not recorded: {exc}")
    if merged_inputs is not inputs:  # a new manifest: stored anew, not the memo's
        prepared = replace(prepared, inputs=merged_inputs, inputs_id=None, inputs_memo=None)
    prepared = replace(prepared, params=params, warnings=tuple(warnings))
    options = replace(
        options,
        goals=goals,
        tags=tuple(dict.fromkeys(tags)),
        metrics={**metrics, **options.metrics},
        message=message,
        metrics_files=tuple(dict.fromkeys(files)),
    )
    error = None if raised is None else error_field(raised["type"], raised["message"], redactor)
    return Folded(prepared, options, outputs, error)


def _read_states(live: Path) -> list[tuple[dict[str, Any], bytes | None, bytes | None]]:
    """Every ``attached-<pid>.json`` of ``live`` (in pid order) with the process's inputs
    and outputs manifests; one that cannot be read is skipped."""
    try:
        names = [n for n in os.listdir(live) if n.startswith(STATE_PREFIX) and n.endswith(".json")]
    except OSError:
        return []
    out = []
    for name in sorted(names, key=lambda n: (len(n), n)):
        pid = name[len(STATE_PREFIX) : -len(".json")]
        try:
            state = json.loads((live / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict):
            continue
        clean = {
            "params": _scalars(state.get("params")),
            "metrics": _scalars(state.get("metrics")),
            "goals": {k: v for k, v in _scalars(state.get("goals")).items() if v in ("min", "max")},
            "tags": _strings(state.get("tags")),
            "metrics_files": _strings(state.get("metrics_files")),
            "warnings": _strings(state.get("warnings")),
            "message": state.get("message") if isinstance(state.get("message"), str) else None,
            "error": _raised(state.get("error")),
        }
        manifests: list[bytes | None] = []
        for prefix in (INPUTS_PREFIX, OUTPUTS_PREFIX):
            try:
                manifests.append((live / f"{prefix}{pid}.toml").read_bytes())
            except OSError:
                manifests.append(None)
        out.append((clean, manifests[0], manifests[1]))
    return out


def _raised(value: Any) -> dict[str, Any] | None:
    """A state's ``error``, when it has the shape :meth:`Attached.raised` writes."""
    if not isinstance(value, dict):
        return None
    kind, message, at = value.get("type"), value.get("message"), value.get("at")
    if not (isinstance(kind, str) and kind and isinstance(message, str)):
        return None
    if not isinstance(at, int | float) or isinstance(at, bool):
        return None
    return {"type": kind, "message": message, "at": float(at)}


def _scalars(value: Any) -> dict[str, Scalar]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str | int | float)
    }

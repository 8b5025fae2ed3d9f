"""``git prov reproduce``: rerun a recorded run from its exact source, in a separate git
worktree, with its inputs verified by hash, and say whether the result is the same.

The steps, each reported in a :class:`Reproduction`:

1. **source** — the run's snapshot commit (dirty tree) or commit, both kept reachable by
   ``refs/prov/objects``, checked out with ``git worktree add --detach`` into a directory of
   its own; the user's working tree and index are never touched.
2. **inputs** — every file of the recorded input manifest is looked for in the checked-out
   source, else in the user's working tree at the same repo-relative path (and copied — a
   reflink where the filesystem can — into the worktree), and its hash compared with the
   recorded one in the recorded algorithm. Missing or changed inputs refuse the rerun
   unless ``allow_drift``. Manifest paths are validated: nothing named by a manifest is
   ever written outside the worktree (``..``, absolute paths, ``.git``, and symlinks that
   lead out of the worktree are refused).
3. **environment** — the environment the rerun used (with ``dry_run``: the one captured
   now) compared with the recorded one (:func:`git_prov.query.compare.diff_environments`).
4. **consent** — a record not written in this repository and not signed by a key you
   trust is someone else's command: it runs only when ``ask`` says yes or with
   ``assume_yes`` (:mod:`git_prov.trust.consent`).
5. **rerun** — the recorded argv (else ``sh -c COMMAND``) in the recorded cwd, recorded as a
   new run with ``reproduces`` set and the original's declared inputs and outputs.
6. **verdict** — outputs compared file by file, metrics within ``rtol``/``atol``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from git_prov.errors import EXIT_BAD_PATH, EXIT_FINDING, BadPath, NotFound, UsageProblem
from git_prov.model.manifest import DataManifest, EnvironmentManifest
from git_prov.model.manifest import safe_relative as safe_relative
from git_prov.model.record import RunRecord, printable
from git_prov.model.values import as_number
from git_prov.progress import NO_PROGRESS, Progress
from git_prov.query.compare import (
    DataDiff,
    EnvDiff,
    diff_environments,
    diff_manifests,
)
from git_prov.query.drift import settle_unverified
from git_prov.reproduce.inputs import (
    FOUND_IN_KEPT,
    FOUND_IN_WORKING_TREE,
    INPUT_CHANGED,
    INPUT_MISSING,
    INPUT_OK,
    INPUT_UNVERIFIABLE,
    InputCheck,
    check_inputs,
    describe_drift,
    file_hash,
    is_safe,
    use_kept,
)
from git_prov.reproduce.placing import check_real, inside, make_parents, place_file
from git_prov.store.repo import GitRepo
from git_prov.trust.consent import CONSENT_REFUSED, gate

# Verdicts.
IDENTICAL = "identical"  # every recorded output has the same bytes, metrics within tolerance
WITHIN_TOLERANCE = "within-tolerance"  # outputs differ, every recorded metric within tolerance
DIFFERS = "differs"  # anything else: outputs differ without metrics to vouch, a metric moved…
REFUSED = "refused"  # inputs missing or changed and no --allow-drift: nothing ran
READY = "ready"  # dry run: nothing would block the rerun
BLOCKED = "blocked"  # dry run: something would block it


@dataclass(frozen=True)
class ReproduceOptions:
    """How to reproduce (the options of ``git prov reproduce``)."""

    worktree: Path | None = None  # default: <git common dir>/prov/reproduce/<short id>
    dry_run: bool = False
    allow_drift: bool = False
    rtol: float = 1e-9
    atol: float = 0.0
    keep_worktree: bool = False
    metrics_files: Sequence[str] = ()  # repo-relative; outputs holding the metrics are found
    write_requirements: Path | None = None
    environment: bool = True  # compare environments
    assume_yes: bool = False  # --yes: run a record that is not yours without asking


@dataclass(frozen=True)
class MetricCheck:
    """A recorded metric against the rerun's value."""

    name: str
    old: Any
    new: Any
    within: bool | None  # None: the rerun did not produce it (a hand-given --metric)
    delta: float | None = None


@dataclass(frozen=True)
class Reproduction:
    """What ``reproduce`` did (or, with ``dry_run``, would do) and how it ended."""

    original: RunRecord
    source: str  # the commit checked out: the snapshot of a dirty run, else its commit
    command: tuple[str, ...]
    cwd: str
    dry_run: bool
    verdict: str
    inputs: tuple[InputCheck, ...] = ()
    environment: EnvDiff | None = None
    blockers: tuple[str, ...] = ()  # why it did not (or would not) run
    notes: tuple[str, ...] = ()
    worktree: str | None = None
    worktree_kept: bool = False
    rerun: RunRecord | None = None
    rerun_exit_status: int | None = None
    outputs: DataDiff | None = None
    metrics: tuple[MetricCheck, ...] = ()
    requirements: str | None = None  # the requirements file written
    rtol: float = 1e-9
    atol: float = 0.0
    drift: tuple[str, ...] = field(default=())  # inputs that drifted (allowed or not)
    trust: dict[str, Any] | None = None  # trust.consent.TrustDecision.to_json_dict()

    @property
    def exit_code(self) -> int:
        """0 reproduced (or, dry run, nothing blocks); 1 not reproduced (or something would
        block); 5 refused because inputs are missing or changed."""
        if self.verdict in (IDENTICAL, WITHIN_TOLERANCE, READY):
            return 0
        if self.verdict == REFUSED:
            return EXIT_BAD_PATH
        return EXIT_FINDING

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document."""
        from git_prov.model.values import to_json_safe

        doc: dict[str, Any] = {
            "run": self.original.to_json_dict(),
            "source": self.source,
            "command": list(self.command),
            "cwd": self.cwd,
            "dry_run": self.dry_run,
            "verdict": self.verdict,
            "reproduced": self.verdict in (IDENTICAL, WITHIN_TOLERANCE),
            "exit_code": self.exit_code,
            "inputs": [asdict(i) for i in self.inputs],
            "drift": list(self.drift),
            "environment": None,
            "blockers": list(self.blockers),
            "notes": list(self.notes),
            "worktree": self.worktree,
            "worktree_kept": self.worktree_kept,
            "rerun": self.rerun.to_json_dict() if self.rerun else None,
            "rerun_exit_status": self.rerun_exit_status,
            "outputs": None,
            "metrics": [asdict(m) for m in self.metrics],
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "requirements": self.requirements,
            "trust": self.trust,
        }
        if self.environment is not None:
            doc["environment"] = asdict(self.environment) | {"same": self.environment.same}
        if self.outputs is not None:
            doc["outputs"] = asdict(self.outputs) | {"same": self.outputs.same}
        return dict(to_json_safe(doc))


# ---- paths ------------------------------------------------------------------------------------


# ---- the steps --------------------------------------------------------------------------------


def _command(run: RunRecord) -> tuple[str, ...]:
    if run.argv:
        return tuple(run.argv)
    return ("sh", "-c", run.command)


def capture_environment_now(repo: GitRepo, run: RunRecord, recorded: EnvironmentManifest) -> Any:
    """The environment the rerun would get, captured as ``run`` captures it."""
    from git_prov.capture.environment import DEFAULT_ALLOWED_VARIABLES, capture_environment
    from git_prov.config import load_config

    interpreter = str(recorded.python.get("executable") or "") or None
    if interpreter is not None and not os.access(interpreter, os.X_OK):
        interpreter = None
    root = repo.root
    config = load_config(root)
    return capture_environment(
        root,
        argv=list(_command(run)),
        python=interpreter,
        env=os.environ,
        cache_dir=repo.prov_dir / "env-cache",
        cwd=root,
        allow_variables=(*DEFAULT_ALLOWED_VARIABLES, *config.variables),
    )


def requirements_text(env: EnvironmentManifest, run: RunRecord) -> str:
    """A pip requirements file pinning every package of the recorded environment."""
    python = env.python.get("version")
    lines = [f"# packages of git-prov run {run.id}"]
    if python:
        lines.append(f"# recorded with {env.python.get('implementation', 'Python')} {python}")
    lines += [f"{name}=={version}" for name, version in sorted(env.packages.items())]
    return "\n".join(lines) + "\n"


def compare_metrics(
    old: dict[str, Any], new: dict[str, Any], rtol: float, atol: float
) -> tuple[MetricCheck, ...]:
    """Each recorded metric against the rerun's: numbers within ``atol + rtol·|old|``
    (NaN equals NaN), anything else equal. A metric the rerun did not produce (one given by
    hand with ``--metric``, or read from a file that is not found) is unchecked (None)."""
    out = []
    for name in sorted(old):
        a = old[name]
        b = new.get(name)
        x, y = as_number(a), as_number(b)
        numeric = (
            x is not None and y is not None and not isinstance(a, bool) and not isinstance(b, bool)
        )
        if b is None and name not in new:
            out.append(MetricCheck(name, a, None, None))
        elif numeric:
            assert x is not None and y is not None
            if math.isnan(x) or math.isnan(y):
                within = math.isnan(x) and math.isnan(y)
                delta = None
            else:
                delta = y - x
                within = x == y or abs(delta) <= atol + rtol * abs(x)
            out.append(MetricCheck(name, a, b, within, delta))
        else:
            out.append(MetricCheck(name, a, b, a == b))
    return tuple(out)


def _metrics_files(
    repo: GitRepo, run: RunRecord, outputs: DataManifest | None, given: Sequence[str]
) -> list[str]:
    """Output files holding the recorded metrics (as the user's working tree shows them
    now), so the rerun reads its metrics the way the original did."""
    from git_prov.capture.values_files import read_values_file

    files = [safe_relative(p) for p in given]
    if not run.metrics or outputs is None:
        return files
    for entry in outputs.entries:
        if not entry.path.endswith((".json", ".toml", ".yaml", ".yml")) or entry.path in files:
            continue
        try:
            values = read_values_file(repo.root / safe_relative(entry.path), "metrics")
        except Exception:  # any unreadable candidate is simply not one
            continue
        if set(values) & set(run.metrics):
            files.append(entry.path)
    return files


def default_worktree(repo: GitRepo, run: RunRecord) -> Path:
    """``<git common dir>/prov/reproduce/<short id>`` (``-2``, ``-3``… when taken)."""
    base = repo.prov_dir / "reproduce"
    candidate = base / run.short_id
    n = 2
    while os.path.lexists(candidate):
        candidate = base / f"{run.short_id}-{n}"
        n += 1
    return candidate


def _check_worktree_dir(repo: GitRepo, directory: Path) -> Path:
    directory = Path(os.path.abspath(directory))
    if os.path.lexists(directory) and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageProblem(
            f"{directory} already exists and is not empty", "name a new directory with --worktree"
        )
    root = repo.root
    inside_tree = directory == root or directory.is_relative_to(root)
    if inside_tree and not directory.is_relative_to(repo.common_dir):
        raise UsageProblem(
            f"{directory} is inside your working tree",
            "reproduce elsewhere (the default is under .git/prov/reproduce)",
        )
    return directory


def checkout_problem(repo: GitRepo, source: str) -> str | None:
    """Why git would refuse to check ``source`` out (a path such as ``.git/config`` or
    ``../x`` in a hostile snapshot), or None. Asked of git itself: its tree is read into
    a throw-away index, which applies the checks a checkout does."""
    index = repo.prov_dir / f"reproduce-check-{os.getpid()}.index"
    try:
        proc = repo.git("read-tree", source, check=False, env={"GIT_INDEX_FILE": str(index)})
    finally:
        with contextlib.suppress(OSError):
            os.unlink(index)
    if proc.returncode == 0:
        return None
    said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    detail = said[0].removeprefix("error: ") if said else f"exit status {proc.returncode}"
    return f"the run's source {source[:12]} cannot be checked out: {printable(detail)}"


# ---- reproduce ------------------------------------------------------------------------------


def reproduce(
    repo: GitRepo,
    spec: str,
    options: ReproduceOptions = ReproduceOptions(),
    *,
    progress: Progress = NO_PROGRESS,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    ask: Callable[[str], bool] | None = None,
) -> Reproduction:
    """Reproduce run ``spec`` (see the module docstring). The command's output goes to
    ``stdout``/``stderr`` (default: ours). Returns what happened; the caller decides the
    exit status from :attr:`Reproduction.exit_code`.

    A record that is not yours (see :mod:`git_prov.trust.consent`) runs only after
    ``ask(question)`` says yes, or with ``options.assume_yes``; without ``ask`` it raises
    :class:`~git_prov.errors.Untrusted` before anything is checked out."""
    from git_prov.query.located import find_run
    from git_prov.store.ledger import Ledger

    ledger = Ledger(repo)
    run = find_run(repo, spec).record
    source = run.source_commit
    command = _command(run)
    notes: list[str] = []
    blockers: list[str] = []
    cwd = run.cwd or "."
    if cwd != "." and not is_safe(cwd):
        blockers.append(f"the recorded working directory {cwd!r} is unsafe")
    if any("<redacted>" in arg for arg in command):
        blockers.append("the recorded command had secrets redacted: it cannot be rerun exactly")
    if not run.argv:
        notes.append("no argv recorded (git prov record): running the command with sh -c")
    source_present = repo.git("cat-file", "-e", f"{source}^{{commit}}", check=False)
    if source_present.returncode != 0:
        what = "snapshot" if run.snapshot else "commit"
        blockers.append(
            f"the run's source {what} {source[:12]} is not in this repository "
            "(git prov fetch brings it)"
        )
        if not options.dry_run:
            raise NotFound(blockers[-1], "fetch the provenance: git prov fetch")
    else:
        if not ledger.is_kept(source):
            notes.append(
                f"source {source[:12]} is not kept by refs/prov/objects (git gc may drop it)"
            )
        refused = checkout_problem(repo, source)
        if refused:
            blockers.append(refused)

    inputs = ledger.data_manifest(run.inputs) if run.inputs else None
    outputs = ledger.data_manifest(run.outputs) if run.outputs else None
    checks: list[InputCheck] = []
    unsafe: list[str] = []
    if inputs is not None:
        checks, unsafe = check_inputs(repo, inputs, source, progress)
        for path in unsafe:
            blockers.append(f"unsafe input path in the manifest: {path!r} (nothing written)")
    declared = [*(inputs.paths if inputs else ()), *(outputs.paths if outputs else ())]
    for path in declared:
        if path not in unsafe and not is_safe(path):
            blockers.append(f"unsafe declared path in the manifest: {path!r}")
    drifted = [c for c in checks if c.status in (INPUT_MISSING, INPUT_CHANGED)]
    if drifted and inputs is not None:
        checks, drifted = use_kept(repo, run, inputs, checks, drifted, notes)
    drift = tuple(describe_drift(c) for c in drifted)
    for check in checks:
        if check.status == INPUT_UNVERIFIABLE:
            notes.append(f"input {check.path} ({check.recorded_hash}) cannot be verified here")

    recorded_env = ledger.env_manifest(run.env) if run.env else None
    requirements = None
    if options.write_requirements is not None:
        if recorded_env is None:
            raise NotFound(f"run {run.short_id} recorded no environment: no requirements")
        target = Path(options.write_requirements)
        target.write_text(requirements_text(recorded_env, run))
        requirements = str(target)
    env_diff: EnvDiff | None = None
    if recorded_env is None:
        notes.append("the run recorded no environment: nothing to compare")

    base = Reproduction(
        original=run,
        source=source,
        command=command,
        cwd=cwd,
        dry_run=options.dry_run,
        verdict=READY,
        inputs=tuple(checks),
        notes=tuple(notes),
        requirements=requirements,
        rtol=options.rtol,
        atol=options.atol,
        drift=drift,
    )
    trust = gate(repo, run, command, cwd, assume_yes=options.assume_yes, ask=ask, dry_run=True)
    base = replace(base, trust=trust.to_json_dict())
    if options.dry_run:
        if trust.consent == CONSENT_REFUSED:
            blockers.append(
                f"run {run.short_id} is not yours ({trust.reason}): without a terminal to "
                "ask, it would not run (--yes trusts it)"
            )
        if options.environment and recorded_env is not None:
            now = capture_environment_now(repo, run, recorded_env)
            env_diff = diff_environments(recorded_env, now, run.env, None)
        if drifted and not options.allow_drift:
            blockers.extend(drift)
        return replace(
            base,
            verdict=BLOCKED if blockers else READY,
            environment=env_diff,
            blockers=tuple(blockers),
        )
    if blockers:
        raise BadPath(blockers[0], "nothing was run")
    if drifted and not options.allow_drift:
        return replace(base, verdict=REFUSED, blockers=drift)
    if not trust.trusted:  # asked only now: nothing else stands in the way
        trust = gate(repo, run, command, cwd, assume_yes=options.assume_yes, ask=ask, dry_run=False)
        base = replace(base, trust=trust.to_json_dict())

    metrics_files = _metrics_files(repo, run, outputs, options.metrics_files)
    directory = _check_worktree_dir(repo, options.worktree or default_worktree(repo, run))
    directory.parent.mkdir(parents=True, exist_ok=True)
    # The rerun is recorded on the commit the run ran on (where git log shows the run), with
    # the run's exact code as its working tree: a dirty run's snapshot is read into the
    # worktree, so the rerun's snapshot is the same commit as the run's.
    repo.git("worktree", "add", "--detach", str(directory), run.commit if run.snapshot else source)
    if run.snapshot:
        repo.git("read-tree", "-u", "--reset", run.snapshot, cwd=directory)
    kept = options.keep_worktree
    try:
        return _rerun_in(
            repo,
            ledger,
            run,
            directory,
            checks,
            inputs,
            outputs,
            recorded_env,
            metrics_files,
            options,
            base,
            progress=progress,
            stdout=stdout,
            stderr=stderr,
        )
    finally:
        if not kept:
            repo.git("worktree", "remove", "--force", str(directory), check=False)
            if os.path.lexists(directory):
                shutil.rmtree(directory, ignore_errors=True)
            repo.git("worktree", "prune", check=False)


def _rerun_in(
    repo: GitRepo,
    ledger: Any,
    run: RunRecord,
    directory: Path,
    checks: list[InputCheck],
    inputs: DataManifest | None,
    outputs: DataManifest | None,
    recorded_env: EnvironmentManifest | None,
    metrics_files: list[str],
    options: ReproduceOptions,
    base: Reproduction,
    *,
    progress: Progress,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
) -> Reproduction:
    from git_prov import recording
    from git_prov.store.repo import open_repo

    worktree = open_repo(directory)
    root = worktree.root
    modes = {e.path: e.mode for e in inputs.entries} if inputs else {}
    # Inputs not in the checked-out source come from the user's working tree, or, where
    # they drifted there, from the bytes the run kept.
    for check in checks:
        if check.found_in == FOUND_IN_WORKING_TREE:
            place_file(root, check.path, repo.root / check.path, modes.get(check.path, ""))
    from_kept = [c.path for c in checks if c.found_in == FOUND_IN_KEPT]
    if from_kept:
        from git_prov.kept_data import write_kept

        write_kept(repo, run, from_kept, root)
    # Verify what the command will actually read, in the worktree.
    verified = []
    for check in checks:
        if check.status not in (INPUT_OK, INPUT_CHANGED) or check.found_hash is None:
            verified.append(check)
            continue
        inside(root, check.path)
        now, size = file_hash(worktree, root, check.path, check.recorded_hash)
        status = INPUT_OK if now == check.recorded_hash else INPUT_CHANGED
        verified.append(
            InputCheck(
                check.path,
                status,
                check.recorded_hash,
                check.recorded_size,
                now,
                size,
                check.found_in,
            )
        )
    drifted = [c for c in verified if c.status in (INPUT_MISSING, INPUT_CHANGED)]
    drift = tuple(describe_drift(c) for c in drifted)
    base = replace(base, inputs=tuple(verified), drift=drift)
    worktree_text = str(directory)
    if drifted and not options.allow_drift:
        return replace(
            base,
            verdict=REFUSED,
            blockers=drift,
            worktree=worktree_text,
            worktree_kept=options.keep_worktree,
        )

    cwd = root / base.cwd if base.cwd != "." else root
    if not cwd.exists():
        make_parents(root, f"{base.cwd}/placeholder")
    check_real(root, cwd, base.cwd)
    run_options = recording.RunOptions(
        inputs=[str(root / safe_relative(p)) for p in (inputs.paths if inputs else ())],
        outputs=[str(root / safe_relative(p)) for p in (outputs.paths if outputs else ())],
        metrics_files=[str(root / p) for p in metrics_files],
        cwd=cwd,
        params=dict(run.params),  # the same command: the same parameters
        reproduces=run.id,
        message=f"reproduces {run.id}",
    )
    outcome = recording.run(
        worktree, list(base.command), run_options, progress=progress, stdout=stdout, stderr=stderr
    )
    rerun = outcome.record
    new_outputs = ledger.data_manifest(rerun.outputs) if rerun.outputs else None
    out_diff = None
    if outputs is not None or new_outputs is not None:
        out_diff = settle_unverified(
            worktree,
            root,
            diff_manifests("outputs", outputs, new_outputs, run.outputs, rerun.outputs),
        )
    env_diff = None
    if options.environment and recorded_env is not None and rerun.env is not None:
        env_diff = diff_environments(
            recorded_env, ledger.env_manifest(rerun.env), run.env, rerun.env
        )
    metrics = compare_metrics(dict(run.metrics), dict(rerun.metrics), options.rtol, options.atol)
    verdict = decide(run, rerun, out_diff, metrics)
    return replace(
        base,
        verdict=verdict,
        environment=env_diff,
        worktree=worktree_text,
        worktree_kept=options.keep_worktree,
        rerun=rerun,
        rerun_exit_status=outcome.exit_status,
        outputs=out_diff,
        metrics=metrics,
    )


def decide(
    run: RunRecord,
    rerun: RunRecord,
    outputs: DataDiff | None,
    metrics: tuple[MetricCheck, ...],
) -> str:
    """The verdict. IDENTICAL: the rerun ended as the original did (status and exit code),
    every recorded output has the same bytes, and no checked metric is outside tolerance.
    WITHIN_TOLERANCE: the same, except that outputs differ (or none were declared) while
    at least one metric was checked and all checked ones are within tolerance. DIFFERS:
    anything else — including a run with nothing to check (no outputs, no metric the
    rerun produced). Unchecked metrics neither pass nor fail a run."""
    if (rerun.status, rerun.exit_code) != (run.status, run.exit_code):
        return DIFFERS
    checked = [m for m in metrics if m.within is not None]
    if not all(m.within for m in checked):
        return DIFFERS
    if outputs is not None and outputs.same:
        return IDENTICAL
    return WITHIN_TOLERANCE if checked else DIFFERS


__all__ = [
    "BLOCKED",
    "DIFFERS",
    "IDENTICAL",
    "READY",
    "REFUSED",
    "WITHIN_TOLERANCE",
    "InputCheck",
    "MetricCheck",
    "ReproduceOptions",
    "Reproduction",
    "place_file",
    "reproduce",
    "safe_relative",
]

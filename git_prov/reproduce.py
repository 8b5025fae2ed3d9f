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
import hashlib
import math
import os
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from git_prov.errors import EXIT_BAD_PATH, EXIT_FINDING, BadPath, NotFound, UsageProblem
from git_prov.model.manifest import MODE_EXECUTABLE, DataEntry, DataManifest, EnvironmentManifest
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
from git_prov.query.drift import rehash, settle_unverified
from git_prov.store.repo import GitRepo
from git_prov.trust.consent import CONSENT_REFUSED, gate

# Verdicts.
IDENTICAL = "identical"  # every recorded output has the same bytes, metrics within tolerance
WITHIN_TOLERANCE = "within-tolerance"  # outputs differ, every recorded metric within tolerance
DIFFERS = "differs"  # anything else: outputs differ without metrics to vouch, a metric moved…
REFUSED = "refused"  # inputs missing or changed and no --allow-drift: nothing ran
READY = "ready"  # dry run: nothing would block the rerun
BLOCKED = "blocked"  # dry run: something would block it

# What became of one recorded input.
INPUT_OK = "ok"
INPUT_MISSING = "missing"
INPUT_CHANGED = "changed"
INPUT_UNVERIFIABLE = "unverifiable"  # an algorithm we cannot compute (git-annex keys)

FOUND_IN_SOURCE = "source"  # checked out with the run's source
FOUND_IN_WORKING_TREE = "working-tree"  # copied from the user's working tree
FOUND_IN_KEPT = "kept"  # drifted here; the recorded bytes come from kept data (git prov get)

_VERIFIABLE = ("sha256", "git", "md5", "md5-dos2unix")  # md5*: DVC's (capture/dvc.py)
_FICLONE = 0x40049409  # Linux ioctl: make the destination a reflink of the source


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
class InputCheck:
    """One recorded input file and what was found at its path."""

    path: str
    status: str  # ok | missing | changed | unverifiable
    recorded_hash: str
    recorded_size: int
    found_hash: str | None = None
    found_size: int | None = None
    found_in: str | None = None  # source | working-tree | kept


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


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that its parent directory really lies inside ``root``
    (symlinked directories are followed and must stay inside)."""
    target = root / safe_relative(rel)
    _check_real(root, target.parent, rel)
    return target


def _check_real(root: Path, directory: Path, shown: str) -> None:
    real_root = os.path.realpath(root)
    real = os.path.realpath(directory)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise BadPath(
            f"{shown} leads outside the worktree through a symbolic link",
            "the run's source or manifest is hostile or broken; nothing was written there",
        )


def _make_parents(root: Path, rel: str) -> None:
    """Create the directories above ``root/rel`` one at a time, never through a symlink
    that leaves ``root``."""
    parts = PurePosixPath(safe_relative(rel)).parts[:-1]
    for depth in range(1, len(parts) + 1):
        directory = root.joinpath(*parts[:depth])
        _check_real(root, directory, rel)
        if not os.path.lexists(directory):
            os.mkdir(directory)
        elif not directory.is_dir():
            raise BadPath(f"{'/'.join(parts[:depth])} in the worktree is not a directory")


def place_file(root: Path, rel: str, source: Path, mode: str) -> Path:
    """Copy ``source`` to ``root/rel`` without ever writing outside ``root``: the path is
    validated, parents are created without following links out, and the file is created
    with ``O_NOFOLLOW | O_EXCL`` (an existing file or link there is removed first — the link
    itself, never its target)."""
    _make_parents(root, rel)
    target = _inside(root, rel)
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise BadPath(f"{rel} is a directory in the worktree, not a file")
        os.unlink(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    perms = 0o755 if mode == MODE_EXECUTABLE else 0o644
    with open(source, "rb") as reader:
        fd = os.open(target, flags, perms)
        with os.fdopen(fd, "wb") as writer:
            _copy(reader, writer)
    return target


def _copy(reader: BinaryIO, writer: BinaryIO) -> None:
    try:
        import fcntl

        fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
        return
    except (ImportError, OSError):
        pass
    shutil.copyfileobj(reader, writer, 1 << 20)


# ---- the steps --------------------------------------------------------------------------------


def _command(run: RunRecord) -> tuple[str, ...]:
    if run.argv:
        return tuple(run.argv)
    return ("sh", "-c", run.command)


def _source_blobs(repo: GitRepo, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """path → blob id of every file below ``paths`` in ``commit``'s tree (one git call)."""
    if not paths:
        return {}
    listing = repo.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths, check=False)
    blobs = {}
    for item in listing.stdout.split(b"\0"):
        meta, _, name = item.partition(b"\t")
        fields = meta.split()
        if len(fields) == 3 and fields[1] == b"blob":
            blobs[name.decode("utf-8", "surrogateescape")] = fields[2].decode()
    return blobs


def _blob_hash(repo: GitRepo, blob: str, like: str) -> str | None:
    """The hash of a stored blob in the algorithm of ``like``."""
    algorithm = like.partition(":")[0]
    if algorithm == "git":
        return f"git:{blob}"
    if algorithm in ("md5", "md5-dos2unix"):
        from git_prov.capture.dvc import hash_like

        return hash_like([repo.git("cat-file", "blob", blob).stdout], like)
    if algorithm == "sha256":
        from git_prov.capture.hashing import parse_lfs_pointer

        data = repo.git("cat-file", "blob", blob).stdout
        pointer = parse_lfs_pointer(data[:1024])
        return f"sha256:{pointer[0]}" if pointer else f"sha256:{hashlib.sha256(data).hexdigest()}"
    return None


def _file_hash(repo: GitRepo, root: Path, rel: str, like: str) -> tuple[str | None, int | None]:
    """Hash and size of the regular file at ``root/rel`` (None, None when absent)."""
    path = root / rel
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    return rehash(repo, path, like), st.st_size


def check_inputs(
    repo: GitRepo, manifest: DataManifest, source: str, progress: Progress = NO_PROGRESS
) -> tuple[list[InputCheck], list[str]]:
    """Where each recorded input can be had with its recorded bytes: in ``source``'s tree,
    else in the user's working tree (hashed through the stat cache, so unchanged data costs
    stat calls). Returns the checks and the unsafe paths (never used)."""
    unsafe = [e.path for e in manifest.entries if not _is_safe(e.path)]
    entries = [e for e in manifest.entries if e.path not in unsafe]
    blobs = _source_blobs(repo, source, [e.path for e in entries])
    checks: dict[str, InputCheck] = {}
    in_source: dict[str, str | None] = {}
    for entry in entries:
        if entry.algorithm not in _VERIFIABLE:
            present = os.path.lexists(repo.root / entry.path)
            checks[entry.path] = InputCheck(
                entry.path,
                INPUT_UNVERIFIABLE,
                entry.hash,
                entry.size,
                found_in=FOUND_IN_WORKING_TREE if present else None,
            )
            continue
        blob = blobs.get(entry.path)
        found = _blob_hash(repo, blob, entry.hash) if blob else None
        in_source[entry.path] = found
        if found == entry.hash:
            checks[entry.path] = InputCheck(
                entry.path, INPUT_OK, entry.hash, entry.size, found, entry.size, FOUND_IN_SOURCE
            )
    rest = [e for e in entries if e.path not in checks]
    now = _working_tree_manifest(repo, [e.path for e in rest], progress)
    for entry in rest:
        current = now.get(entry.path)
        found_hash, size = (current.hash, current.size) if current else (None, None)
        if current is not None and current.algorithm != entry.algorithm:
            found_hash = rehash(repo, repo.root / entry.path, entry.hash)
        if found_hash is None:
            source_hash = in_source.get(entry.path)
            checks[entry.path] = (
                InputCheck(
                    entry.path,
                    INPUT_CHANGED,
                    entry.hash,
                    entry.size,
                    source_hash,
                    None,
                    FOUND_IN_SOURCE,
                )
                if source_hash is not None
                else InputCheck(entry.path, INPUT_MISSING, entry.hash, entry.size)
            )
            continue
        status = INPUT_OK if found_hash == entry.hash else INPUT_CHANGED
        checks[entry.path] = InputCheck(
            entry.path, status, entry.hash, entry.size, found_hash, size, FOUND_IN_WORKING_TREE
        )
    return [checks[e.path] for e in entries], unsafe


def _is_safe(path: str) -> bool:
    try:
        safe_relative(path)
    except BadPath:
        return False
    return True


def _working_tree_manifest(
    repo: GitRepo, paths: Sequence[str], progress: Progress
) -> dict[str, DataEntry]:
    """The user's working-tree files at ``paths`` (absent ones left out)."""
    if not paths:
        return {}
    from git_prov.capture.data import build_manifest

    try:
        manifest = build_manifest(
            repo.root,
            list(paths),
            cwd=repo.root,
            cache_path=repo.prov_dir / "hash-cache.sqlite",
            missing_ok=True,
            progress=progress,
        )
    except BadPath:
        # Something unreadable or odd among them: hash the regular files one by one.
        out = {}
        for path in paths:
            found, size = _file_hash(repo, repo.root, path, "sha256:")
            if found is not None and size is not None:
                out[path] = DataEntry(path, size, found)
        return out
    return {e.path: e for e in manifest.entries if e.path in set(paths)}


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
    if cwd != "." and not _is_safe(cwd):
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
        if path not in unsafe and not _is_safe(path):
            blockers.append(f"unsafe declared path in the manifest: {path!r}")
    drifted = [c for c in checks if c.status in (INPUT_MISSING, INPUT_CHANGED)]
    if drifted and inputs is not None:
        checks, drifted = _use_kept(repo, run, inputs, checks, drifted, notes)
    drift = tuple(_describe(c) for c in drifted)
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
        _inside(root, check.path)
        now, size = _file_hash(worktree, root, check.path, check.recorded_hash)
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
    drift = tuple(_describe(c) for c in drifted)
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
        _make_parents(root, f"{base.cwd}/placeholder")
    _check_real(root, cwd, base.cwd)
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


def _use_kept(
    repo: GitRepo,
    run: RunRecord,
    inputs: DataManifest,
    checks: list[InputCheck],
    drifted: list[InputCheck],
    notes: list[str],
) -> tuple[list[InputCheck], list[InputCheck]]:
    """Drifted inputs whose recorded bytes were kept are no drift: the rerun gets the kept
    bytes (and a note says so). Returns the checks and what still drifted."""
    from git_prov.kept_data import restorable

    kept = restorable(repo, inputs, [c.path for c in drifted])
    if not kept:
        return checks, drifted
    out = []
    for check in checks:
        if check.path in kept:
            how = "is missing" if check.status == INPUT_MISSING else "changed"
            notes.append(f"input {check.path} {how} here: the rerun uses its kept recorded bytes")
            check = InputCheck(
                check.path,
                INPUT_OK,
                check.recorded_hash,
                check.recorded_size,
                check.recorded_hash,
                check.recorded_size,
                FOUND_IN_KEPT,
            )
        out.append(check)
    return out, [c for c in drifted if c.path not in kept]


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


def _describe(check: InputCheck) -> str:
    if check.status == INPUT_MISSING:
        return f"input {check.path} is missing (recorded {check.recorded_hash})"
    return (
        f"input {check.path} changed: recorded {check.recorded_hash} "
        f"({check.recorded_size} bytes), found {check.found_hash} "
        f"({check.found_size if check.found_size is not None else '?'} bytes)"
    )


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

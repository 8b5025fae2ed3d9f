"""``git prov check``: has anything a run depended on changed since? Its code (HEAD and the
working tree against the run's commit or snapshot), its inputs (re-hashed now, through the
stat cache) and its environment (captured now, for the run's interpreter)."""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from git_prov.errors import BadPath, NotFound
from git_prov.model.manifest import DataManifest
from git_prov.model.record import RunRecord
from git_prov.progress import NO_PROGRESS, Progress
from git_prov.query.compare import (
    CHANGED,
    SAME,
    UNVERIFIED,
    DataDiff,
    EnvDiff,
    FileChange,
    SourceDiff,
    diff_environments,
    diff_manifests,
    diff_source,
)


@dataclass(frozen=True)
class CodeDrift:
    """The run's source against the code here now."""

    recorded: str  # the run's source commit (its snapshot when the tree was dirty)
    head: str
    current: str  # HEAD, or a snapshot of the dirty working tree
    dirty: bool
    diff: SourceDiff
    data_files: tuple[str, ...] = ()  # differing files that runs declared as data: not code

    @property
    def same(self) -> bool:
        return self.diff.same


@dataclass(frozen=True)
class CheckResult:
    """What drifted since a run. A category is None when it was not checked."""

    run: RunRecord
    code: CodeDrift | None
    inputs: DataDiff | None
    environment: EnvDiff | None
    current_env: str | None = None  # the id the current environment manifest would have
    notes: tuple[str, ...] = ()  # things worth saying that are not drift

    @property
    def drifted(self) -> bool:
        """True when anything checked differs."""
        return (
            (self.code is not None and not self.code.same)
            or (self.inputs is not None and not self.inputs.same)
            or (self.environment is not None and not self.environment.same)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document."""
        from git_prov.model.values import to_json_safe

        doc: dict[str, Any] = {
            "run": self.run.to_json_dict(),
            "drifted": self.drifted,
            "code": None,
            "inputs": None,
            "environment": None,
            "current_env": self.current_env,
            "notes": list(self.notes),
        }
        if self.code is not None:
            doc["code"] = asdict(self.code) | {"same": self.code.same}
        if self.inputs is not None:
            doc["inputs"] = asdict(self.inputs) | {"same": self.inputs.same}
        if self.environment is not None:
            doc["environment"] = asdict(self.environment) | {"same": self.environment.same}
        return dict(to_json_safe(doc))


def latest_run_on_head(repo: Any, ledger: Any) -> Any:
    """The most recently started run shown on HEAD; NotFound when HEAD has none."""
    from git_prov.query.located import runs_on_commit

    head = str(repo.head_commit().id)
    runs = runs_on_commit(repo, head)
    if not runs:
        raise NotFound(
            f"no runs recorded on HEAD ({head[:12]})",
            "name a run: git prov check RUN (list them with git prov find)",
        )
    return max(runs, key=lambda r: (r.record.started, r.record.id))


def check_run(
    repo: Any,
    spec: str | None = None,
    *,
    code: bool = True,
    data: bool = True,
    environment: bool = True,
    python: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> CheckResult:
    """Compare run ``spec`` (default: the latest run on HEAD) with the working tree and
    environment now."""
    from git_prov.query.located import find_run
    from git_prov.store.ledger import Ledger

    ledger = Ledger(repo)
    located = latest_run_on_head(repo, ledger) if spec is None else find_run(repo, spec)
    run: RunRecord = located.record
    inputs = ledger.data_manifest(run.inputs) if run.inputs else None
    outputs = ledger.data_manifest(run.outputs) if run.outputs else None
    notes: list[str] = []
    code_drift = _code(repo, run, inputs, outputs) if code else None
    data_drift = None
    if data:
        if inputs is None:
            notes.append("the run declared no inputs: nothing to compare")
        else:
            data_drift = _data(repo, inputs, run.inputs, progress)
            if not data_drift.same:
                from git_prov.kept_data import restore_hints

                drifted = [c.path for c in data_drift.changes] + list(data_drift.new_missing)
                notes.extend(restore_hints(repo, run, inputs, drifted))
    env_drift = None
    current_env = None
    if environment:
        env_drift, current_env = _environment(repo, ledger, run, python, notes)
    return CheckResult(run, code_drift, data_drift, env_drift, current_env, tuple(notes))


def _code(
    repo: Any, run: RunRecord, inputs: DataManifest | None, outputs: DataManifest | None
) -> CodeDrift:
    from git_prov.capture.source import capture_source
    from git_prov.config import load_config

    declared = tuple((inputs.paths if inputs else ()) + (outputs.paths if outputs else ()))
    config = load_config(repo.root)
    state = capture_source(
        repo,
        exclude=declared,
        max_untracked_bytes=config.max_snapshot_file,
        secret_files=config.snapshot_secret_files,
    )
    current = state.snapshot or state.commit
    diff = diff_source(repo, run.source_commit, current)
    data_files: tuple[str, ...] = ()
    if not diff.same and diff.error is None and diff.files:
        # Files other runs read or wrote (a later stage's output in the working tree) are
        # data, compared by their own runs; they are not a change of this run's code.
        from git_prov.query.index import RepoPaths, with_index

        changed = [f.path for f in diff.files]
        data = with_index(RepoPaths.of_repo(repo), lambda index: index.data_paths(changed))
        if data:
            data_files = tuple(sorted(data))
            kept = [f for f in diff.files if f.path not in data]
            if not kept:
                diff = SourceDiff(diff.old, diff.new, True)
            else:
                stat = repo.git(
                    "diff", "--no-ext-diff", "--stat=100", "--color=never", diff.old, diff.new,
                    "--", *(f.path for f in kept),
                ).stdout.decode("utf-8", "replace")  # fmt: skip
                diff = SourceDiff(diff.old, diff.new, False, tuple(kept), stat)
    return CodeDrift(
        run.source_commit, state.commit, current, state.snapshot is not None, diff, data_files
    )


def _data(
    repo: Any, recorded: DataManifest, recorded_id: str | None, progress: Progress
) -> DataDiff:
    from git_prov.capture.data import build_manifest

    root = repo.root
    now = build_manifest(
        root,
        list(recorded.paths),
        cwd=root,
        cache_path=repo.prov_dir / "hash-cache.sqlite",
        missing_ok=True,
        progress=progress,
    )
    diff = diff_manifests("inputs", recorded, now, recorded_id, None)
    return settle_unverified(repo, root, diff)


def settle_unverified(repo: Any, root: Path, diff: DataDiff) -> DataDiff:
    """Settle files hashed with different algorithms by hashing the current file the
    recorded way: a file hashed one way then (a git blob id) and another way now (sha256),
    or the reverse, is the same content when its bytes hash the recorded way to the same
    value; otherwise it is a real change."""
    settled = []
    for change in diff.changes:
        if change.change == UNVERIFIED and change.old_hash:
            again = rehash(repo, root / change.path, change.old_hash)
            if again == change.old_hash:
                continue
            if again is not None:
                change = FileChange(
                    change.path, CHANGED, change.old_size, change.new_size, change.old_hash, again
                )
        settled.append(change)
    unchanged = diff.unchanged + len(diff.changes) - len(settled)
    return DataDiff(
        diff.role,
        diff.old_manifest,
        diff.new_manifest,
        tuple(settled),
        unchanged,
        diff.old_missing,
        diff.new_missing,
    )


def rehash(repo: Any, path: Path, like: str) -> str | None:
    """The file's hash in the algorithm of ``like`` (``git:``, ``sha256:``, or DVC's
    ``md5:`` / ``md5-dos2unix:``), or None."""
    algorithm = like.partition(":")[0]
    try:
        if algorithm in ("md5", "md5-dos2unix"):
            from git_prov.capture.dvc import file_chunks, hash_like

            return hash_like(file_chunks(path), like)
        if algorithm == "sha256":
            from git_prov.capture.hashing import hash_file
            from git_prov.model.lfs_pointer import parse_lfs_pointer

            with open(path, "rb") as handle:
                head = handle.read(1024)
            pointer = parse_lfs_pointer(head)
            return f"sha256:{pointer[0]}" if pointer else hash_file(path)
        if algorithm == "git":
            proc = repo.git("hash-object", "--", str(path), check=False)
            return f"git:{proc.stdout.decode().strip()}" if proc.returncode == 0 else None
    except (OSError, ValueError, BadPath):
        return None
    return None


def _environment(
    repo: Any, ledger: Any, run: RunRecord, python: str | None, notes: list[str]
) -> tuple[EnvDiff | None, str | None]:
    from git_prov.capture.environment import DEFAULT_ALLOWED_VARIABLES, capture_environment
    from git_prov.config import load_config

    if run.env is None:
        notes.append("the run recorded no environment: nothing to compare")
        return None, None
    recorded = ledger.env_manifest(run.env)
    root = repo.root
    interpreter = python
    recorded_python = str(recorded.python.get("executable") or "")
    if interpreter is None and recorded_python and os.access(recorded_python, os.X_OK):
        interpreter = recorded_python  # the interpreter the run used, as it is now
    elif interpreter is None and recorded_python:
        notes.append(f"the run's interpreter {recorded_python} is gone; using the command's")
    argv = list(run.argv) if run.argv else _split(run.command)
    cwd = root / run.cwd if run.cwd != "." else root
    config = load_config(root)
    now = capture_environment(
        root,
        argv=argv or None,
        python=interpreter,
        env=os.environ,
        cache_dir=repo.prov_dir / "env-cache",
        cwd=cwd if cwd.is_dir() else root,
        allow_variables=(*DEFAULT_ALLOWED_VARIABLES, *config.variables),
    )
    now_id = ledger.store_object(now.to_toml())
    if now_id == run.env:
        return EnvDiff(run.env, now_id), now_id
    return diff_environments(recorded, now, run.env, now_id), now_id


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []


__all__ = ["SAME", "CheckResult", "CodeDrift", "check_run", "latest_run_on_head"]

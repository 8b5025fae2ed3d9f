"""Fill a repository with a big ledger, fast: ``commits`` commits and ``runs`` run records.

Commits, then note blobs, go through ``git fast-import`` (packed, no loose objects). The
notes tree is built with pygit2 in git-prov's own fan-out layout (``ab/cdef…``, 256
subtrees) from blob ids hashed in memory; then one notes commit and one objects commit (an
environment manifest plus a ``keep/`` entry per annotated commit) are written, laid out as
:class:`git_prov.store.ledger.Ledger` lays them out.

    python bench/ledger_factory.py /tmp/big --runs 100000 --commits 10000

Other benchmarks import it: ``from ledger_factory import make_ledger`` (bench/ on sys.path).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygit2

from git_prov.model.history import Series, encode_history
from git_prov.model.record import RunRecord, encode_entry
from git_prov.model.values import format_assignments
from git_prov.store.ledger import (
    KEEP_DIR,
    KIND_ENV,
    KIND_METRICS,
    NOTES_REF,
    OBJECTS_REF,
    object_path,
)
from git_prov.store.notes import canonical_note
from git_prov.store.trees import FILEMODE_BLOB, FILEMODE_TREE

BRANCH = "refs/heads/main"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ENV_MANIFEST = b'prov = 1\nkind = "environment"\n[python]\nversion = "3.11.7"\n'
EMPTY_ENV = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


@dataclass(frozen=True)
class LedgerStats:
    """What :func:`make_ledger` built, and how long it took."""

    commits: int
    runs: int
    head: str
    seconds: float


def _run_id(index: int, rng: random.Random) -> str:
    moment = EPOCH + timedelta(milliseconds=index * 1500)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{rng.getrandbits(32):08x}"


def _record(
    index: int, commit: str, env: str, rng: random.Random, history: str | None = None
) -> RunRecord:
    started = EPOCH + timedelta(milliseconds=index * 1500)
    ended = started + timedelta(seconds=1.25)
    lr = f"0.{index % 97 + 1}"
    run_id = _run_id(index, rng)  # (the random draws in the order they always were)
    acc, loss = round(rng.random(), 4), round(rng.random(), 4)
    series: dict[str, dict[str, str | int | float | bool]] = {}
    if history is not None:  # summaries as a run that logged 1,000 steps of each has
        series = {
            "acc": {"n": 1000, "last": acc, "last_step": 999, "min": 0.0, "max": acc,
                    "goal": "max", "best": acc, "best_step": 999},
            "loss": {"n": 1000, "last": loss, "last_step": 999, "min": loss / 2, "max": 2.5,
                     "goal": "min", "best": loss / 2, "best_step": index % 1000},
        }  # fmt: skip
    return RunRecord(
        id=run_id,
        commit=commit,
        command=f"python train.py --lr {lr} --seed {index}",
        argv=("python", "train.py", "--lr", lr, "--seed", str(index)),
        started=_stamp(started),
        ended=_stamp(ended),
        duration=1.25,
        exit_code=0,
        status="ok",
        branch="main",
        host="bench",
        env=env,
        params={"lr": float(lr), "seed": index},
        metrics={"acc": acc, "loss": loss},
        history=history,
        series=series,
    )


def make_run(commit: str, index: int = 0) -> RunRecord:
    """One more run record of the kind :func:`make_ledger` writes (for benchmarks that
    record a run on top of a built ledger)."""
    return _record(index, commit, EMPTY_ENV, random.Random(index))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _line(r: RunRecord) -> str:
    """``encode_entry(r)`` for the records :func:`_record` makes, 30x faster (checked
    against ``encode_entry`` on a sample of every ledger built)."""
    argv = ",".join(f'"{a}"' for a in r.argv or ())
    acc, loss, lr, seed = r.metrics["acc"], r.metrics["loss"], r.params["lr"], r.params["seed"]
    shown = format_assignments([("acc", acc), ("loss", loss)])  # (1.0 is shown as 1)
    summary = f"prov run {r.id[-8:]} ok {r.started[:16]}Z 1.2s {r.command}  {shown}"
    payload = (
        f'{{"argv":[{argv}],"branch":"main","command":"{r.command}","commit":"{r.commit}",'
        f'"duration":1.25,"ended":"{r.ended}","env":"{r.env}","exit_code":0,'
        f'"host":"bench","id":"{r.id}","kind":"run","metrics":{{"acc":{acc!r},'
        f'"loss":{loss!r}}},"params":{{"lr":{lr!r},"seed":{seed}}},'
        f'"started":"{r.started}","status":"ok","v":1}}'
    )
    return f"{summary}\t{payload}"


def _fast_import_commits(repo_path: Path, commits: int) -> list[str]:
    """Write a linear history of ``commits`` commits on main; returns their ids."""
    with tempfile.TemporaryDirectory() as scratch:
        return _commits_stream(repo_path, commits, Path(scratch) / "marks")


def _commits_stream(repo_path: Path, commits: int, marks: Path) -> list[str]:
    chunks: list[bytes] = []
    when = int(EPOCH.timestamp())
    for i in range(commits):
        body = b"step %d\n" % i
        message = b"step %d" % i
        parent = b"from :%d\n" % i if i else b""
        chunks.append(
            b"commit %s\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n"
            b"data %d\n%s\n%sM 644 inline data.txt\ndata %d\n%s\n"
            % (BRANCH.encode(), i + 1, when + i, len(message), message, parent, len(body), body)
        )
    chunks.append(b"done\n")
    subprocess.run(
        ["git", "fast-import", "--quiet", "--done", f"--export-marks={marks}"],
        cwd=repo_path,
        input=b"".join(chunks),
        check=True,
    )
    ids = [""] * commits
    for line in marks.read_text().splitlines():
        mark, oid = line.split()
        ids[int(mark[1:]) - 1] = oid
    return ids


def _tree(repo: pygit2.Repository, entries: dict[str, dict[str, pygit2.Oid]]) -> pygit2.Oid:
    root = repo.TreeBuilder()
    for prefix in sorted(entries):
        sub = repo.TreeBuilder()
        for name, oid in entries[prefix].items():
            sub.insert(name, oid, FILEMODE_BLOB)
        root.insert(prefix, sub.write(), FILEMODE_TREE)
    return root.write()


def make_ledger(
    repo_path: Path | str, runs: int, commits: int, *, seed: int = 1, histories: bool = False
) -> LedgerStats:
    """Create a repository at ``repo_path`` (an empty directory, or a fresh ``git init``)
    with ``commits`` commits on main and ``runs`` run records spread round-robin over them,
    in git-prov's layout. 100k runs take a few seconds. With ``histories`` every run has
    metric histories: a ``history`` blob (one, shared) and per-metric ``series`` summaries."""
    began = time.perf_counter()
    path = Path(repo_path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists() and not (path / "HEAD").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    commits = max(1, commits)
    rng = random.Random(seed)
    # Commit ids are needed in the notes, so commits go first, then the notes' blobs.
    ids = _fast_import_commits(path, commits)
    repo = pygit2.Repository(str(path))
    env = str(repo.create_blob(ENV_MANIFEST))
    history = str(repo.create_blob(_history_blob())) if histories else None
    lines: dict[int, list[str]] = {}
    check = set(random.Random(seed).sample(range(runs), min(runs, 200)))
    for index in range(runs):
        at = index % commits
        record = _record(index, ids[at], env, rng, history)
        line = _line(record) if history is None else encode_entry(record)
        if index in check and line != encode_entry(record):
            raise AssertionError(f"fast encoding differs:\n{line}\n{encode_entry(record)}")
        lines.setdefault(at, []).append(line)
    texts = {at: canonical_note(entry_lines).encode() for at, entry_lines in lines.items()}
    _fast_import_blobs(path, texts)
    notes: dict[str, dict[str, pygit2.Oid]] = {}
    keep: dict[str, dict[str, pygit2.Oid]] = {}
    empty = repo.create_blob(b"")
    for at, text in texts.items():
        commit = ids[at]
        notes.setdefault(commit[:2], {})[commit[2:]] = pygit2.hash(text)
        keep.setdefault(commit[:2], {})[commit[2:]] = empty
    sig = pygit2.Signature("Bench", "bench@example.com", int(EPOCH.timestamp()), 0)
    notes_tree = _tree(repo, notes)
    notes_commit = repo.create_commit(None, sig, sig, "git-prov: record\n", notes_tree, [])
    objects_root = repo.TreeBuilder()
    env_path = object_path(KIND_ENV, env).split("/")
    env_sub = repo.TreeBuilder()
    env_sub.insert(env_path[2], pygit2.Oid(hex=env), FILEMODE_BLOB)
    env_dir = repo.TreeBuilder()
    env_dir.insert(env_path[1], env_sub.write(), FILEMODE_TREE)
    objects_root.insert(KIND_ENV, env_dir.write(), FILEMODE_TREE)
    objects_root.insert(KEEP_DIR, _tree(repo, keep), FILEMODE_TREE)
    if history is not None:
        objects_root.insert(
            KIND_METRICS, _tree(repo, {history[:2]: {history[2:]: pygit2.Oid(hex=history)}}),
            FILEMODE_TREE,
        )  # fmt: skip
    head = pygit2.Oid(hex=ids[-1])
    objects_commit = repo.create_commit(
        None, sig, sig, "git-prov: record\n", objects_root.write(), [head]
    )
    for ref, target in ((OBJECTS_REF, objects_commit), (NOTES_REF, notes_commit)):
        repo.references.create(ref, target, force=True)
    if not repo.is_bare:
        subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, check=True)
    return LedgerStats(commits, runs, ids[-1], time.perf_counter() - began)


def _history_blob() -> bytes:
    """A history of 1,000 steps of acc and loss (every run of a ledger shares it)."""
    points = range(1000)
    steps = array("q", points)
    times = array("d", (EPOCH.timestamp() + i for i in points))
    return encode_history(
        {
            "acc": Series(steps, times, array("d", (1 - 1 / (i + 1) for i in points))),
            "loss": Series(steps, times, array("d", (1 / (i + 1) for i in points))),
        }
    )


def _fast_import_blobs(path: Path, texts: dict[int, bytes]) -> None:
    chunks = [b"blob\ndata %d\n%s\n" % (len(t), t) for t in texts.values()]
    chunks.append(b"done\n")
    subprocess.run(
        ["git", "-c", "pack.compression=1", "fast-import", "--quiet", "--done", "--depth=0"],
        cwd=path,
        input=b"".join(chunks),
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    """``python bench/ledger_factory.py PATH --runs N --commits M``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stats = make_ledger(args.path, args.runs, args.commits, seed=args.seed)
    print(
        f"{args.path}: {stats.commits} commits, {stats.runs} runs in {stats.seconds:.1f}s "
        f"(HEAD {stats.head[:12]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

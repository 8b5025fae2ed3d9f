"""`git prov remap` over a large history: 10k commits on main, 1k runs on a side branch that
was then rewritten onto main (as a hosting service's rebase merge would) and deleted.

    python bench/bench_remap.py [--commits 10000] [--runs 1000] [--later 20]

History is built with one `git fast-import`; the side branch forks near the start, so every
main commit is a candidate (the worst case for the date cut-off). The 1k runs are written
with the Ledger API in one write. Timed, in-process (library calls, no CLI start-up):

* first remap — cold patch-id cache: every candidate and orphan gets a patch-id;
* second remap — nothing changed: the watermark answers;
* third remap — after one more rewrite (``--later`` more side commits with runs, copied
  onto main, branch deleted): the cache is warm, only the new commits are computed;
* the post-rewrite hook's work for a 1k-commit rebase (``remap_rewritten``).

Target (issue): remap "finishes in seconds".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from git_prov.model.ids import new_run_id
from git_prov.model.record import RunRecord
from git_prov.rewrite import find_orphans, remap, remap_rewritten
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
FORK_AT = 100  # the side branch forks from main commit 100
T = TypeVar("T")


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, input=input
    ).stdout.decode()


def _commit(
    ref: str,
    mark: int,
    when: int,
    path: str,
    text: str,
    parent: int | None,
    authored: int | None = None,
) -> bytes:
    """One fast-import commit; ``authored`` (default ``when``) is its author date — a copy
    made by a rebase keeps its original's author date and message."""
    data = text.encode()
    message = f"{path}: {text.strip()}\n".encode()
    out = (
        f"commit {ref}\nmark :{mark}\n"
        f"author Bench <bench@example.com> {authored or when} +0000\n"
        f"committer Bench <bench@example.com> {when} +0000\n"
        f"data {len(message)}\n"
    ).encode() + message
    if parent is not None:
        out += f"from :{parent}\n".encode()
    out += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
    return out


def build(repo: Path, commits: int, runs: int) -> list[str]:
    """main: ``commits`` commits, each rewriting one of 100 small files; side: ``runs``
    commits forking at FORK_AT, each adding its own file; then copies of the side commits
    on top of main. Returns the side commits (oldest first)."""
    git(repo, "init", "-q", "-b", "main")
    stream = bytearray()
    for i in range(commits):
        path = f"src/module{i % 100}.py"
        parent = i if i else None  # marks are 1-based: commit i has mark i+1
        stream += _commit("refs/heads/main", i + 1, T0 + 60 * i, path, f"x = {i}\n", parent)
    side_mark = commits + 1
    for j in range(runs):
        parent = FORK_AT + 1 if j == 0 else side_mark + j - 1
        when = T0 + 60 * FORK_AT + j
        stream += _commit(
            "refs/heads/side", side_mark + j, when, f"side/exp{j}.py", f"e = {j}\n", parent
        )
    copy_mark = side_mark + runs
    for j in range(runs):
        parent = commits if j == 0 else copy_mark + j - 1
        when = T0 + 60 * commits + j
        stream += _commit(
            "refs/heads/main",
            copy_mark + j,
            when,
            f"side/exp{j}.py",
            f"e = {j}\n",
            parent,
            authored=T0 + 60 * FORK_AT + j,  # a rebase keeps the author date
        )
    git(repo, "fast-import", "--quiet", input=bytes(stream))
    git(repo, "checkout", "-q", "main")
    side = git(repo, "rev-list", "--reverse", f"main~{runs}..side").split()
    assert len(side) == runs, len(side)
    return side


def record_runs(repo: Path, commits: list[str]) -> None:
    entries = [(c, _record(c)) for c in commits]
    Ledger(open_repo(repo)).write(entries, keep=commits, message="bench: runs")


def _record(commit: str) -> RunRecord:
    return RunRecord(
        id=new_run_id(),
        commit=commit,
        command="python train.py",
        started="2026-01-01T00:00:00.000Z",
        ended="2026-01-01T00:00:01.000Z",
        duration=1.0,
        exit_code=0,
        status="ok",
    )


def rewrite_later(repo: Path, count: int, name: str, dated: int | None = None) -> None:
    """One more rewrite: ``count`` new side commits with runs (dated ``dated``, default
    now), cherry-picked onto main now, their branch deleted."""
    tip = git(repo, "rev-parse", "main").strip()
    git(repo, "checkout", "-q", "-b", name, f"main~{count + 5}")
    made = []
    for j in range(count):
        (repo / f"{name}{j}.py").write_text(f"{j}\n")
        git(repo, "add", f"{name}{j}.py")
        if dated is not None:
            stamp = f"@{dated + j} +0000"
            os.environ["GIT_AUTHOR_DATE"] = os.environ["GIT_COMMITTER_DATE"] = stamp
        git(repo, "commit", "-q", "-m", f"{name} {j}")
        os.environ.pop("GIT_AUTHOR_DATE", None)
        os.environ.pop("GIT_COMMITTER_DATE", None)
        made.append(git(repo, "rev-parse", "HEAD").strip())
    record_runs(repo, made)
    git(repo, "checkout", "-q", "main")
    git(repo, "cherry-pick", "--allow-empty", *made)
    git(repo, "branch", "-q", "-D", name)
    assert git(repo, "rev-parse", "main~" + str(count)).strip() == tip


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--later", type=int, default=20)
    args = parser.parse_args()
    for key, value in {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        os.environ.setdefault(key, value)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-remap-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        os.environ["HOME"] = tmp  # no user config
        built, side = timed(lambda: build(repo, args.commits, args.runs))
        rows.append(("build (fast-import)", f"{built:.2f}s", f"{args.commits} + 2x{args.runs}"))
        spent, _ = timed(lambda: record_runs(repo, side))
        rows.append(("record runs (one write)", f"{spent:.2f}s", f"{args.runs} runs"))
        git(repo, "branch", "-q", "-D", "side")
        gprov = open_repo(repo)
        spent, orphans = timed(lambda: find_orphans(gprov))
        rows.append(("find_orphans", f"{spent:.2f}s", f"{len(orphans)} orphans"))
        spent, first = timed(lambda: remap(gprov))
        assert len(first.matched) == args.runs and not first.unmatched, first.unmatched[:3]
        rows.append(
            (
                "remap 1 (cold patch-id cache)",
                f"{spent:.2f}s",
                f"{len(first.matched)} attached, {first.candidates} candidates",
            )
        )
        spent, second = timed(lambda: remap(gprov))
        assert second.up_to_date
        rows.append(("remap 2 (nothing changed)", f"{spent * 1000:.0f}ms", "watermark hit"))
        rewrite_later(repo, args.later, "later")
        spent, third = timed(lambda: remap(gprov))
        assert len(third.matched) == args.later, third
        rows.append(
            (
                "remap 3 (one more rewrite, new commits)",
                f"{spent:.2f}s",
                f"{len(third.matched)} attached, {third.candidates} candidates",
            )
        )
        # The same with originals dated at the start of history: the date cut-off does not
        # help, every main commit is a candidate again, read from the warm cache.
        rewrite_later(repo, args.later, "older", dated=T0 + 60 * FORK_AT)
        spent, fourth = timed(lambda: remap(gprov))
        assert len(fourth.matched) == args.later, fourth
        rows.append(
            (
                "remap 4 (one more rewrite, old commits)",
                f"{spent:.2f}s",
                f"{len(fourth.matched)} attached, {fourth.candidates} candidates",
            )
        )
        # The hook's work for a rebase of the copies (each shows one run) onto other commits.
        copies = [m.commit for m in first.matched]
        targets = git(repo, "rev-list", "--reverse", "main").split()[: len(copies)]
        mapping = list(zip(copies, targets, strict=True))
        spent, written = timed(lambda: remap_rewritten(gprov, mapping, "rebase"))
        rows.append(
            (
                f"hook: {args.runs}-commit rebase",
                f"{spent:.2f}s",
                f"{len(written)} attachments",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'time':>8}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>8}  {note}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()

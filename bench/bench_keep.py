"""Keeping the bytes of data (issue 14): `git prov record --keep` of one big output next to
recording it without keeping (hashing alone); re-recording it unchanged; `git prov get`
of it next to `cp`; metadata-only `git prov sync` with and without kept data in the repo.

    python bench/bench_keep.py [--size-mb 256] [--gib] [--repeat 3]

Prints a table of medians (page cache warm: every measure reads the same cached file).
Targets (issue 14): keeping ≤ 1.3× hashing alone (the first record); get ≤ 1.5× cp; an
unchanged kept file costs nothing extra on re-record; metadata sync within its time
without kept data.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PY = sys.executable
PROV = [PY, "-m", "git_prov"]
OLD = 1_700_000_000  # an mtime old enough for the stat cache to trust


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def prov(cwd: Path, *args: str) -> None:
    subprocess.run([*PROV, *args], cwd=cwd, check=True, capture_output=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}


def timed(
    fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``fn``; its median CPU time (user + system of the processes it
    ran) goes to CPU["last"], which compares better on a busy machine."""
    samples, cpu = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), _children_cpu()
        fn()
        samples.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
    CPU["last"] = statistics.median(cpu)
    return statistics.median(samples)


def new_repo(root: Path, size: int) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("out/\ngot/\n")
    git(root, "add", ".gitignore")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    (root / "out").mkdir()
    big = root / "out" / "model.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    os.utime(big, (OLD, OLD))
    return root


def forget(repo: Path, *, kept: bool) -> None:
    """Back to a first record: no stat cache (and, with ``kept``, nothing kept)."""
    common = repo / ".git"
    for name in ("hash-cache.sqlite", "hash-cache.sqlite-wal", "hash-cache.sqlite-shm"):
        (common / "prov" / name).unlink(missing_ok=True)
    if kept:
        shutil.rmtree(common / "lfs", ignore_errors=True)
        subprocess.run(["git", "update-ref", "-d", "refs/prov/data"], cwd=repo, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--gib", action="store_true", help="1 GiB instead of --size-mb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir", help="where to build the repository (e.g. a reflink-capable XFS/btrfs mount)"
    )
    args = parser.parse_args()
    size = (1 << 30) if args.gib else args.size_mb << 20
    with tempfile.TemporaryDirectory(prefix="bench-keep-", dir=args.dir) as tmp:
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tmp) / "pycache"))
        repo = new_repo(Path(tmp) / "repo", size)
        big = repo / "out" / "model.bin"
        record = ["record", "-o", "out", "-c", "train"]
        rows: list[tuple[str, float, float]] = []

        hash_only = timed(
            lambda: prov(repo, *record), args.repeat, lambda: forget(repo, kept=False)
        )
        rows.append(("record, hash only (first record)", hash_only, CPU["last"]))
        keep = timed(
            lambda: prov(repo, *record, "--keep", "outputs"),
            args.repeat,
            lambda: forget(repo, kept=True),
        )
        rows.append(("record --keep outputs (first: hash + keep in LFS store)", keep, CPU["last"]))
        rerecord = timed(lambda: prov(repo, *record), args.repeat)
        rows.append(("re-record unchanged, no --keep", rerecord, CPU["last"]))
        rekeep = timed(lambda: prov(repo, *record, "--keep", "outputs"), args.repeat)
        rows.append(("re-record unchanged, --keep (already kept)", rekeep, CPU["last"]))

        run = subprocess.run(
            [*PROV, "find", "--json"], cwd=repo, check=True, capture_output=True, text=True
        ).stdout
        import json

        run_id = max(json.loads(run), key=lambda r: r["id"])["id"]
        got = repo / "got"
        get = timed(
            lambda: prov(repo, "get", run_id, "-o", str(got)),
            args.repeat,
            lambda: shutil.rmtree(got, ignore_errors=True),
        )
        rows.append(("git prov get RUN -o DIR (verified)", get, CPU["last"]))
        copy = Path(tmp) / "copy.bin"
        cp = timed(
            lambda: subprocess.run(["cp", str(big), str(copy)], check=True),
            args.repeat,
            lambda: copy.unlink(missing_ok=True),
        )
        rows.append(("cp of the same file", cp, CPU["last"]))

        # Metadata-only sync of one new run, with kept data in the repo and without.
        bare = Path(tmp) / "remote.git"
        git(Path(tmp), "init", "-q", "--bare", str(bare))
        git(repo, "remote", "add", "origin", str(bare))
        git(repo, "push", "-q", "origin", "HEAD:refs/heads/main")
        prov(repo, "push", "--data")

        def one_run_then_sync() -> None:
            prov(repo, "record", "-c", "small")

        def sync() -> None:
            prov(repo, "sync")

        with_data = timed(sync, args.repeat, one_run_then_sync)
        rows.append(("sync one new run, kept data in the repo", with_data, CPU["last"]))
        git(repo, "update-ref", "-d", "refs/prov/data")
        git(repo, "update-ref", "-d", "refs/prov/remotes/origin/data")
        git(bare, "update-ref", "-d", "refs/prov/data")
        without = timed(sync, args.repeat, one_run_then_sync)
        rows.append(("sync one new run, no kept data", without, CPU["last"]))

    width = max(len(name) for name, _, _ in rows)
    print(f"{size >> 20} MiB output, median of {args.repeat} (wall and CPU seconds)")
    print(f"| {'measure':<{width}} | wall s | CPU s |")
    print(f"|{'-' * (width + 2)}|-------:|------:|")
    for name, seconds, cpu in rows:
        print(f"| {name:<{width}} | {seconds:6.3f} | {cpu:5.3f} |")
    value = {name: (seconds, cpu) for name, seconds, cpu in rows}
    pairs = [
        ("keep / hash only (first record)", rows[1][0], rows[0][0], "<= 1.3"),
        ("get / cp", rows[4][0], rows[5][0], "<= 1.5"),
        ("re-record kept / plain", rows[3][0], rows[2][0], "~1"),
        ("sync with / without kept data", rows[6][0], rows[7][0], "~1"),
    ]
    print()
    for label, a, b, target in pairs:
        (wa, ca), (wb, cb) = value[a], value[b]
        print(f"{label:<34} wall {wa / wb:5.2f}x  CPU {ca / cb:5.2f}x  (target {target})")


if __name__ == "__main__":
    main()

"""Benchmark data hashing: git-prov against plain hashlib and coreutils' sha256sum.

    python bench/bench_hashing.py [--size-mb N] [--files N] [--repeat N] [--workers N]

Creates a temporary git repository holding one big file of N MiB and a directory of
--files files totalling about the same, then prints one table:

* hashlib.sha256 single-threaded on the big file: over bytes already in memory (the
  compute ceiling) and as the usual read-and-update loop;
* ``sha256sum`` on the same file;
* git-prov's first hashing of the big file and of the many-files directory (parallel);
* git-prov re-recording both with a warm stat cache (``build_manifest`` end to end:
  walking, the git index checks and the cache lookups);
* the ratios against the targets: first hashing >= 0.9x hashlib, re-recording >= 20x faster.

The page cache cannot be dropped without root, so every file is read once before timing
and all numbers are warm-cache. Each time is the best of --repeat runs. The files get an
old mtime, as data recorded by an earlier run would have; files modified in the last two
seconds are never cached (see ``git_prov/capture/hashing.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from git_prov.capture.data import build_manifest
from git_prov.capture.hashing import default_workers, hash_file

MIB = 1 << 20
FIRST_TARGET = 0.9
RERECORD_TARGET = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb",
        type=int,
        default=1024,
        help="size of the big file, and of the many-files directory (MiB)",
    )
    parser.add_argument("--files", type=int, default=1000, help="files in the directory")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--workers", type=int, default=None, help="hashing threads")
    parser.add_argument("--dir", type=Path, default=None, help="where to create the data")
    args = parser.parse_args()
    load = os.getloadavg()  # other work on the machine skews every number

    with tempfile.TemporaryDirectory(prefix="git-prov-bench-", dir=args.dir) as tmp:
        repo = Path(tmp) / "repo"
        size = args.size_mb * MIB
        print(
            f"creating {args.size_mb} MiB file and {args.files} files "
            f"({args.size_mb} MiB) in {repo} …",
            file=sys.stderr,
        )
        big, many = make_data(repo, size, args.files)
        os.sync()  # let writeback finish now rather than during the measurements
        for path in [big, *many.iterdir()]:  # warm the page cache
            path.read_bytes()
        rows = measure(repo, big, many, size, args.repeat, args.workers)
    print_table(rows, args, size, load)
    return 0


def make_data(repo: Path, size: int, files: int) -> tuple[Path, Path]:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    old = time.time_ns() - 3600 * 10**9
    big = repo / "data" / "big.bin"
    big.parent.mkdir(parents=True)
    block = os.urandom(16 * MIB)
    with big.open("wb") as f:
        for start in range(0, size, len(block)):
            f.write(block[: min(len(block), size - start)])
            block = hashlib.sha512(block[:64]).digest() + block[64:]  # no repeated blocks
    os.utime(big, ns=(old, old))
    many = repo / "data" / "many"
    many.mkdir()
    mean = size // files
    for i in range(files):
        length = mean // 2 + (i * 7919) % (mean + 1)  # sizes spread over 0.5x-1.5x the mean
        path = many / f"part-{i:05}.bin"
        path.write_bytes(os.urandom(length))
        os.utime(path, ns=(old, old))
    return big, many


Row = tuple[str, float, int]  # label, seconds, bytes


class Measurement(NamedTuple):
    key: str
    label: str
    nbytes: int
    run: Callable[[], object]
    fresh_cache: bool = False  # start from an empty stat cache (a first recording)
    once: bool = False  # slow reference tools: one run is enough


def measure(
    repo: Path, big: Path, many: Path, size: int, repeat: int, workers: int | None
) -> dict[str, Row]:
    """Best time of each measurement; rounds interleave them all, so that a burst of load
    from something else on the machine hurts every measurement alike."""
    many_bytes = sum(p.stat().st_size for p in many.iterdir())
    many_names = sorted(str(p) for p in many.iterdir())
    cache = repo / ".git" / "prov" / "hash-cache.sqlite"
    in_memory = big.read_bytes()

    def plain_loop() -> str:
        digest = hashlib.sha256()
        with big.open("rb", buffering=0) as f:
            while chunk := f.read(MIB):
                digest.update(chunk)
        return digest.hexdigest()

    def sha256sum(*names: str) -> object:
        return subprocess.run(["sha256sum", *names], check=True, stdout=subprocess.DEVNULL)

    def record(paths: list[str], n: int | None = workers) -> object:
        return build_manifest(repo, paths, cache_path=cache, workers=n)

    have_sha256sum = shutil.which("sha256sum") is not None
    plan = [
        Measurement(
            "mem",
            "hashlib.sha256, bytes in memory (1 thread)",
            size,
            lambda: hashlib.sha256(in_memory).hexdigest(),
        ),
        Measurement("loop", "hashlib.sha256, read+update loop (1 thread)", size, plain_loop),
        *(
            [
                Measurement(
                    "sha256sum",
                    "sha256sum (coreutils)",
                    size,
                    lambda: sha256sum(str(big)),
                    once=True,
                )
            ]
            if have_sha256sum
            else []
        ),
        Measurement("ours_file", "git-prov hash_file, big file", size, lambda: hash_file(big)),
        Measurement(
            "ours_big",
            "git-prov first record, big file",
            size,
            lambda: record(["data/big.bin"]),
            fresh_cache=True,
        ),
        Measurement(
            "ours_many",
            f"git-prov first record, {len(many_names)} files",
            many_bytes,
            lambda: record(["data/many"]),
            fresh_cache=True,
        ),
        Measurement(
            "ours_many_1",
            "  same, workers=1",
            many_bytes,
            lambda: record(["data/many"], 1),
            fresh_cache=True,
        ),
        *(
            [
                Measurement(
                    "sha256sum_many",
                    "  sha256sum on the same files",
                    many_bytes,
                    lambda: sha256sum(*many_names),
                    once=True,
                )
            ]
            if have_sha256sum
            else []
        ),
        Measurement(
            "warm_big",
            "git-prov re-record, big file (warm cache)",
            size,
            lambda: record(["data/big.bin"]),
        ),
        Measurement(
            "warm_many",
            "git-prov re-record, many files (warm cache)",
            many_bytes,
            lambda: record(["data/many"]),
        ),
    ]
    times: dict[str, list[float]] = {m.key: [] for m in plan}
    for round_ in range(repeat):
        for m in plan:
            if m.once and round_:
                continue
            if m.fresh_cache:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{cache}{suffix}").unlink(missing_ok=True)
            elif m.key.startswith("warm_"):
                record(["data"])  # make sure the cache is filled
            start = time.perf_counter()
            m.run()
            times[m.key].append(time.perf_counter() - start)
    return {m.key: (m.label, min(times[m.key]), m.nbytes) for m in plan}


def print_table(
    rows: dict[str, Row], args: argparse.Namespace, size: int, load: tuple[float, ...]
) -> None:
    workers = args.workers or default_workers()
    print(
        f"\nload average before {' '.join(f'{x:.2f}' for x in load)} · "
        f"warm page cache · {os.cpu_count()} CPUs · {workers} hashing workers · "
        f"best of {args.repeat} · big file {size / MIB:.0f} MiB · Python "
        f"{sys.version.split()[0]}\n"
    )
    print(f"| {'measurement':<46} | {'time':>8} | {'GB/s':>6} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 8}|")
    for label, seconds, nbytes in rows.values():
        print(f"| {label:<46} | {seconds:>7.3f}s | {nbytes / seconds / 1e9:>6.2f} |")

    def speed(key: str) -> float:
        _, seconds, nbytes = rows[key]
        return nbytes / seconds

    checks = [
        (
            "first hashing, big file / hashlib in memory",
            speed("ours_big") / speed("mem"),
            FIRST_TARGET,
        ),
        (
            "first hashing, big file / hashlib read loop",
            speed("ours_big") / speed("loop"),
            FIRST_TARGET,
        ),
        ("hash_file / hashlib in memory", speed("ours_file") / speed("mem"), FIRST_TARGET),
        ("many files, parallel / hashlib in memory", speed("ours_many") / speed("mem"), None),
        ("many files, parallel / workers=1", speed("ours_many") / speed("ours_many_1"), None),
        (
            "re-record speed-up, big file",
            rows["ours_big"][1] / rows["warm_big"][1],
            RERECORD_TARGET,
        ),
        (
            "re-record speed-up, many files",
            rows["ours_many"][1] / rows["warm_many"][1],
            RERECORD_TARGET,
        ),
    ]
    print(f"\n| {'ratio':<46} | {'value':>8} | {'target':>8} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 10}|")
    for label, value, target in checks:
        verdict = "" if target is None else (f"≥{target:g} {'ok' if value >= target else 'MISS'}")
        print(f"| {label:<46} | {value:>7.2f}x | {verdict:>8} |")


if __name__ == "__main__":
    sys.exit(main())

"""Record overhead of `git prov run`/`record`, next to a bare Python+pygit2 start and to
`git notes add`; re-record time of unchanged data; recording into a 100k-run ledger.

    python bench/bench_record.py [--repeat 15] [--data-mb 1024] [--ledger-runs 100000]

Prints a table of medians. Targets (issue 2): record overhead (small inputs, warm caches)
within 2x of a bare `python -c "import pygit2"`; re-recording unchanged data >= 20x faster
than the first record; recording into a 100k-run ledger within 1.2x of an empty one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PY = sys.executable
PROV = [PY, "-m", "git_prov"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def new_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    (root / "small.txt").write_text("small input\n")
    (root / "code.py").write_text("print(1)\n")
    git(root, "add", "code.py")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--data-mb", type=int, default=1024)
    parser.add_argument("--ledger-runs", type=int, default=100_000)
    args = parser.parse_args()
    # Measure an installed package: compiled bytecode is used (and written once), even
    # where the environment sets PYTHONDONTWRITEBYTECODE (then every command would
    # recompile git-prov, ~40 ms, which a normal `pip install` never does).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bench-record-pyc")
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-record-") as tmp:
        base = Path(tmp)
        repo = new_repo(base / "repo")
        record = [*PROV, "record", "-i", "small.txt", "--command", "true"]
        prov_run = [*PROV, "run", "-q", "-i", "small.txt", "--", "true"]
        run(prov_run, repo)  # warm the environment and hash caches
        bare = timed(lambda: run([PY, "-c", "import pygit2"], repo), args.repeat)
        notes_add = timed(
            lambda: subprocess.run(
                ["git", "notes", "--ref=bench", "add", "-f", "-m", "x", "HEAD"],
                cwd=repo,
                check=True,
                capture_output=True,
            ),
            args.repeat,
        )
        t_run = timed(lambda: run(prov_run, repo), args.repeat)
        t_record = timed(lambda: run(record, repo), args.repeat)
        rows += [
            ("python -c 'import pygit2'", f"{bare * 1000:.0f} ms", "baseline"),
            ("git notes add", f"{notes_add * 1000:.0f} ms", ""),
            (
                "git prov run -i small -- true",
                f"{t_run * 1000:.0f} ms",
                f"{t_run / bare:.2f}x bare (target <= 2x)",
            ),
            (
                "git prov record -i small",
                f"{t_record * 1000:.0f} ms",
                f"{t_record / bare:.2f}x bare (target <= 2x)",
            ),
        ]

        if args.data_mb:
            data = repo / "data"
            data.mkdir()
            chunk = os.urandom(1 << 20)
            files = 64
            per_file = max(1, args.data_mb // files)
            for i in range(files):
                with open(data / f"part-{i:03d}.bin", "wb") as f:
                    for _ in range(per_file):
                        f.write(chunk)
            time.sleep(2.1)  # past the racy-timestamp window, so the stat cache may keep it
            data_run = [*PROV, "run", "-q", "-i", "data", "--", "true"]
            start = time.perf_counter()
            run(data_run, repo)
            first = time.perf_counter() - start
            again = timed(lambda: run(data_run, repo), max(3, args.repeat // 3))
            # The data step alone, in-process: hashing vs the stat cache.
            from git_prov.capture.data import build_manifest

            cache = base / "bench-cache.sqlite"
            start = time.perf_counter()
            build_manifest(repo, ["data"], cache_path=cache)
            m_first = time.perf_counter() - start
            m_again = timed(lambda: build_manifest(repo, ["data"], cache_path=cache), 5)
            rows += [
                (
                    f"data manifest, first ({files * per_file} MB)",
                    f"{m_first * 1000:.0f} ms",
                    f"{files * per_file / m_first / 1000:.2f} GB/s",
                ),
                (
                    "data manifest, unchanged (stat cache)",
                    f"{m_again * 1000:.1f} ms",
                    f"{m_first / m_again:.0f}x faster (target >= 20x)",
                ),
            ]
            rows += [
                (
                    f"first record, {files * per_file} MB in {files} files",
                    f"{first * 1000:.0f} ms",
                    f"{files * per_file / first / 1000:.2f} GB/s",
                ),
                (
                    "re-record, data unchanged",
                    f"{again * 1000:.0f} ms",
                    f"{first / again:.1f}x faster end to end (process start included)",
                ),
            ]

        if args.ledger_runs:
            from ledger_factory import make_ledger

            big = base / "big"
            big.mkdir()
            start = time.perf_counter()
            make_ledger(big, runs=args.ledger_runs, commits=max(1, args.ledger_runs // 10))
            built = time.perf_counter() - start
            (big / "small.txt").write_text("small input\n")
            empty = new_repo(base / "empty")
            run(prov_run, empty)
            run(prov_run, big)
            t_empty = timed(lambda: run(prov_run, empty), args.repeat)
            t_big = timed(lambda: run(prov_run, big), args.repeat)
            rows += [
                ("git prov run, empty ledger", f"{t_empty * 1000:.0f} ms", ""),
                (
                    f"git prov run, {args.ledger_runs:,}-run ledger",
                    f"{t_big * 1000:.0f} ms",
                    f"{t_big / t_empty:.2f}x empty (target <= 1.2x; built in {built:.0f} s)",
                ),
            ]

    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'median':>9}  note")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 40}")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")


if __name__ == "__main__":
    main()

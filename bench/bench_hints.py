"""What does log's orphaned-runs hint (issue 19) cost?

For each size, a ledger from ``ledger_factory.make_ledger`` (10 runs per commit, linear
history on main), its query index built, then in this process, best of ``--repeat``:

* ``hit``  — :func:`git_prov.query.hints.orphaned_run_count` when no ref moved since the
  last call: one ``git rev-parse`` of the alive tips and a small JSON file read;
* ``ledger moved`` — after one more run was recorded (the ledger moved, no branch did):
  one ``diff-tree`` of the two ledger tips, and only the changed notes looked at;
* ``miss`` — the same after a ref moved (the cache file removed): the index's run → commit
  rows, one ``cat-file`` and one ``rev-list`` for every annotated commit;
* ``miss, 10% orphaned`` — the same after the newest tenth of history was cut off the
  branch (``git reset --hard``), so those commits' runs are orphans;
* ``git prov log -n 20`` — a whole fresh process, for scale (the hint is part of it).

    python bench/bench_hints.py                       # 10k and 100k runs
    python bench/bench_hints.py --sizes 10000 --repeat 3

Last results (2 CPUs shared with ~8 other sessions: load average 10-25 while measuring,
so read the ratios, not the milliseconds; best of 3):

| | 10,000 runs ms (orphans) | 100,000 runs ms (orphans) |
|---|---:|---:|
| hit | 19.6 (0) | 8.0 (0) |
| ledger moved (1 run recorded) | 13.8 (0) | 33.1 (0) |
| miss | 46.3 (0) | 336.4 (0) |
| miss, 10% orphaned | 69.0 (1,003) | 847.9 (10,003) |
| git prov log -n 20 | 1251.5 | 1812.2 |

(1,003: the three runs recorded for the second row sat on the commit cut off.) A hit is
what every query pays while no ref moves; recording a run moves only the ledger; a full
miss comes after a commit, checkout, branch or tag change. At 100k runs the miss is
mostly ``rev-list`` walking from 10,000 annotated commits.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_factory import make_ledger

from git_prov.query.hints import CACHE_FILE, orphaned_run_count
from git_prov.query.index import RepoPaths, open_index


def best(
    repeat: int, work: Callable[[], object], before: Callable[[], object] = lambda: 0
) -> float:
    times = []
    for _ in range(repeat):
        before()
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times) * 1000


def measure(root: Path, runs: int, repeat: int) -> list[tuple[str, float, int]]:
    path = root / f"ledger-{runs}"
    make_ledger(path, runs, max(1, runs // 10))
    paths = RepoPaths.discover(path)
    cache = paths.prov_dir / CACHE_FILE
    rows = []
    with open_index(paths) as index:

        def count() -> int:
            return orphaned_run_count(paths, index.db, index.tips.notes)

        def forget() -> None:
            cache.unlink(missing_ok=True)

        count()
        rows.append(("hit", best(repeat, count), count()))
        record = [sys.executable, "-m", "git_prov", "record", "-q", "-c", "bench"]

        def record_one() -> None:  # the ledger moves, no branch does
            subprocess.run(record, cwd=path, capture_output=True, check=True)
            index.refresh()

        rows.append(("ledger moved (1 run recorded)", best(repeat, count, record_one), count()))
        rows.append(("miss", best(repeat, count, forget), count()))
        cut = max(1, runs // 100)  # a tenth of the commits
        subprocess.run(["git", "reset", "-q", "--hard", f"HEAD~{cut}"], cwd=path, check=True)
        rows.append(("miss, 10% orphaned", best(repeat, count, forget), count()))
    log = [sys.executable, "-m", "git_prov", "--no-pager", "log", "-n", "20"]
    rows.append(
        (
            "git prov log -n 20",
            best(repeat, lambda: subprocess.run(log, cwd=path, capture_output=True, check=True)),
            0,
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="runs per ledger, comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        results = {size: measure(Path(tmp), size, args.repeat) for size in sizes}
    print("| | " + " | ".join(f"{s:,} runs ms (orphans)" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for i, (label, _, _) in enumerate(results[sizes[0]]):
        cells = []
        for size in sizes:
            _, ms, orphans = results[size][i]
            cells.append(f"{ms:.1f}" + (f" ({orphans:,})" if label != "git prov log -n 20" else ""))
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

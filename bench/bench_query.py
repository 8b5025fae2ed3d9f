"""How fast is ``git prov find`` on big ledgers, next to ``git log --notes=prov``?

For each size, a ledger is made with ``ledger_factory.make_ledger`` (and kept under
``--dir`` for the next time), then every command runs as a user would run it (a fresh
process) and the best of ``--repeat`` wall-clock times is reported:

* ``git log``  — ``git log --notes=prov --format=%H%n%N``: git reading every note;
* ``cold``     — ``git prov find -n 20`` with no query index: the index is built first
  (by forked helpers side by side, and once more by one process alone);
* ``warm …``   — the same index, already fresh: ``-n 20`` (the newest runs), ``--where``
  (a selective metric condition), ``--format '{id}'`` (every run) and the default table of
  every run;
* ``+1 run``   — ``find -n 20`` after one more run was recorded: an incremental update;
* ``show RUN``, ``log -n 20`` — one run, the 20 newest commits with runs;
* ``log, first page`` — ``git prov log`` on a terminal whose pager quits after 40 lines,
  as a person reading the top of a long history does.

Python runs from compiled bytecode as an installed package does (``PYTHONPYCACHEPREFIX``
outside the tree, even when ``PYTHONDONTWRITEBYTECODE`` is set).

    python bench/bench_query.py                       # 10k and 100k runs
    python bench/bench_query.py --sizes 10000:1000 --repeat 3

Last results (non-editable install, 2 CPUs; ledgers of 10 runs per commit from
``ledger_factory``): the final code, best of 7, then best of 5 a few minutes earlier (a
shared machine: git log itself moved by 10%):

| | 10k runs ms | × git log | 100k runs ms | × git log |
|---|---:|---:|---:|---:|
| git log | 31 | 1.0 | 282–298 | 1.0 |
| cold (build index, -n 20) | 326–365 | 10.5–11.8 | 2077–2208 | 7.4 |
| cold, one process (no helpers) | 367–481 | 11.8–15.6 | 2627–4113 | 8.8–14.6 |
| warm -n 20 | 96–109 | 3.1–3.5 | 137–160 | 0.5–0.6 |
| warm --where | 112–128 | 3.6–4.1 | 193–206 | 0.6–0.7 |
| warm every run (--format) | 151–154 | 4.9–5.0 | 679–775 | 2.3–2.8 |
| warm every run (table) | 213–269 | 6.8–8.7 | 1754–2228 | 5.9–7.9 |
| +1 run, then -n 20 (incremental) | 103–115 | 3.3–3.7 | 157–161 | 0.5–0.6 |
| show RUN | 180–186 | 5.8–6.0 | 201–231 | 0.7–0.8 |
| log -n 20 | 207–256 | 6.7–8.3 | 304–355 | 1.0–1.3 |
| log, first page (pager quits) | 225–287 | 7.2–9.3 | 304–364 | 1.0–1.3 |

Before this session's changes, the cold build took 436 ms (12×) and 3035 ms (12×).

At 10k runs every row is bound by start-up: Python and the imports of a query take about
90 ms, three times that ``git log``. A cold build parses every note line in Python. Run lines
as git-prov writes them are read by one regular expression (about 5 µs each), then inserted
into SQLite (about 5 µs each: 22 columns). Forked helpers parse parts of the ledger side by
side (:mod:`git_prov.query.parts`). What is left at 100k is the first part (~1 s) and a serial
tail of ~0.5 s: copying the other parts in, building the indexes, and committing the WAL.
``show RUN`` and ``log`` read every note before they used the index (14.2 s and 13.9 s at
100k runs).
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_factory import make_ledger

PROV = [sys.executable, "-m", "git_prov", "--no-pager"]
FIND = [*PROV, "find"]
QUERIES = {
    "warm -n 20": ["-n", "20"],
    "warm --where": ["--where", "acc>0.99", "--sort", "-acc"],
    "warm every run (--format)": ["--format", "{id}"],
    "warm every run (table)": [],
}
# Commands that name a run or a commit range (through the same index).
READS = {
    "show RUN": ["show", "RUN"],
    "log -n 20": ["log", "-n", "20"],
}


def best(
    action: Callable[[], None], repeat: int, before: Callable[[], None] | None = None
) -> float:
    """The best wall-clock seconds of ``repeat`` runs of ``action``."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


# Commands run as an installed git-prov runs: from compiled bytecode (kept out of the tree).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "bench-query-pycache"))


def run(args: Sequence[str], cwd: Path, **env: str) -> None:
    subprocess.run(args, cwd=cwd, stdout=subprocess.DEVNULL, check=True, env={**ENV, **env})


def drop_index(repo: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (repo / ".git" / "prov" / f"index.sqlite{suffix}").unlink(missing_ok=True)


def add_run(repo: Path) -> None:
    """Record one more run through the library (as `git prov run` would write it)."""
    from git_prov.model.ids import new_run_id
    from git_prov.model.record import RunRecord
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    ledger = Ledger(open_repo(repo))
    head = str(ledger.pygit.head.target)
    record = RunRecord(
        id=new_run_id(), commit=head, command="python train.py", started="2027-01-01T00:00:00.000Z",
        ended="2027-01-01T00:00:01.000Z", duration=1.0, exit_code=0, status="ok",
        metrics={"acc": 0.5},
    )  # fmt: skip
    ledger.write([(head, record)])


def measure(repo: Path, repeat: int) -> dict[str, float]:
    """Seconds for each row of the table."""
    out: dict[str, float] = {}
    out["git log"] = best(
        lambda: run(["git", "log", "--notes=prov", "--format=%H%n%N"], repo), repeat
    )
    out["cold (build index, -n 20)"] = best(
        lambda: run([*FIND, "-n", "20"], repo), max(2, repeat // 2), lambda: drop_index(repo)
    )
    out["cold, one process (no helpers)"] = best(
        lambda: run([*FIND, "-n", "20"], repo, GIT_PROV_INDEX_JOBS="1"),
        max(2, repeat // 2),
        lambda: drop_index(repo),
    )
    for label, args in QUERIES.items():
        run([*FIND, "-n", "1"], repo)  # fresh
        out[label] = best(lambda args=args: run([*FIND, *args], repo), repeat)  # type: ignore[misc]
    out["+1 run, then -n 20 (incremental)"] = best(
        lambda: run([*FIND, "-n", "20"], repo), repeat, lambda: add_run(repo)
    )
    newest = subprocess.run(
        [*FIND, "-n", "1", "--format", "{short_id}"], cwd=repo, env=ENV, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    for label, args in READS.items():
        args = [newest if a == "RUN" else a for a in args]
        out[label] = best(lambda args=args: run([*PROV, *args], repo), repeat)  # type: ignore[misc]
    out["log, first page (pager quits)"] = best(lambda: first_page(repo), repeat)
    return out


def first_page(repo: Path) -> None:
    """``git prov log`` on a terminal whose pager quits after a screenful (``head``)."""
    primary, secondary = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "git_prov", "--color", "never", "log"], cwd=repo,
            stdout=secondary, check=True,
            env={**ENV, "GIT_PAGER": "head -n 40 >/dev/null"},
        )  # fmt: skip
    finally:
        os.close(secondary)
        os.close(primary)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000:1000,100000:10000", help="RUNS:COMMITS,…")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="Keep the generated ledgers here.")
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-query-"))
    sizes = [tuple(int(n) for n in s.split(":")) for s in args.sizes.split(",")]
    load = os.getloadavg()[0]
    results: list[tuple[int, int, dict[str, float]]] = []
    for runs, commits in sizes:
        repo = base / f"ledger-{runs}-{commits}"
        if not (repo / ".git").exists():
            stats = make_ledger(repo, runs=runs, commits=commits)
            print(f"made {repo}: {runs} runs on {commits} commits in {stats.seconds:.1f}s")
        results.append((runs, commits, measure(repo, args.repeat)))
    print()
    print(
        f"best of {args.repeat}; {os.cpu_count()} CPUs, load {load:.1f} → "
        f"{os.getloadavg()[0]:.1f} (a shared machine)"
    )
    labels = list(results[0][2])
    header = f"{'':36}" + "".join(f"{f'{r // 1000}k runs':>22}" for r, _, _ in results)
    print(header)
    print(f"{'':36}" + "".join(f"{'ms':>12}{'× git log':>10}" for _ in results))
    for label in labels:
        cells = ""
        for _, _, times in results:
            ratio = times[label] / times["git log"]
            cells += f"{times[label] * 1000:>12.0f}{ratio:>10.1f}"
        print(f"{label:36}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast is ``git prov report`` on big ledgers, and how fast does the page open?

For each size a ledger is made with ``ledger_factory.make_ledger``; then, best of
``--repeat``:

* ``scan+build`` — :func:`git_prov.report.build_report` (reads the ledger, manifests,
  computes graph, trends, mismatches, anomalies);
* ``render``     — :func:`git_prov.report.html.render` to one string;
* ``size``       — the file written;
* ``table rows``  — rows of the runs table and run details (``--max-runs``; the default
  caps them at the newest 1000, 0 lists every run);
* ``open``       — headless Chromium, driven through chromedriver's WebDriver API: from
  the navigate command to ``document.readyState == "complete"`` (target: under 2 s for
  10k runs). Skipped when chromium/chromedriver are not installed.

    python bench/bench_report.py                   # 10k runs on 1k commits
    python bench/bench_report.py --sizes 1000:100,10000:1000 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from ledger_factory import make_ledger  # noqa: E402

from git_prov.report import MAX_TABLE_RUNS, build_report  # noqa: E402
from git_prov.report.html import render  # noqa: E402
from git_prov.store.repo import open_repo  # noqa: E402


def _open_time(page: Path, repeat: int, scratch: Path) -> float | None:
    try:
        from tests.test_report_browser import CHROMEDRIVER, CHROMIUM, WebDriver
    except ImportError:
        return None
    import os

    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return None
    best = float("inf")
    for attempt in range(repeat):
        driver = WebDriver(scratch / f"profile-{attempt}")
        try:
            driver.get("about:blank")
            began = time.perf_counter()
            driver.get(page.as_uri())
            while driver.execute("return document.readyState") != "complete":
                time.sleep(0.01)
            best = min(best, time.perf_counter() - began)
            rows = driver.execute("return document.querySelectorAll('#runs tbody tr').length")
            if not rows:
                raise AssertionError("the page opened without its runs table")
        finally:
            driver.quit()
    return best


def bench(runs: int, commits: int, repeat: int, max_runs: int | None) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        make_ledger(scratch / "repo", runs=runs, commits=commits)
        repo = open_repo(scratch / "repo")
        build_s = render_s = float("inf")
        text = ""
        for _ in range(repeat):
            began = time.perf_counter()
            report = build_report(repo, max_runs=max_runs)
            build_s = min(build_s, time.perf_counter() - began)
            began = time.perf_counter()
            text = render(report)
            render_s = min(render_s, time.perf_counter() - began)
        page = scratch / "report.html"
        page.write_text(text, encoding="utf-8")
        size = page.stat().st_size
        opened = _open_time(page, repeat, scratch)
    return {
        "runs": f"{runs:,}",
        "commits": f"{commits:,}",
        "table rows": f"{len(report.runs):,}",
        "scan+build": f"{build_s:.2f} s",
        "render": f"{render_s:.2f} s",
        "size": f"{size / 1e6:.1f} MB",
        "open (readyState complete)": "n/a" if opened is None else f"{opened:.2f} s",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000:1000", help="RUNS:COMMITS,… (default 10000:1000)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--max-runs",
        default=f"{MAX_TABLE_RUNS},0",
        help="table sizes to try, comma-separated; 0 = every run (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        runs, commits = (int(x) for x in size.split(":"))
        for cap in (int(x) for x in args.max_runs.split(",")):
            rows.append(bench(runs, commits, args.repeat, cap or None))
    heads = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in heads]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(row[h].rjust(w) for h, w in zip(heads, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

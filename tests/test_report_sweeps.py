"""The report's sweep views: params columns in the runs table, a metric-vs-param scatter
per sweep tag, and the compare view of the runs ticked in the table — in the page's HTML,
and in real headless Chromium (a screenshot kept, as for the other browser tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import git
from factories import make_record
from test_report_browser import WebDriver, browser, keep_screenshot, needs_browser  # noqa: F401

from git_prov.report import build_report
from git_prov.report.html import render
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

EVIL = "<script>alert(3)</script>"


@pytest.fixture
def sweep_page(repo: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A 3×2 sweep (lr over two orders of magnitude: a log axis) with one failed cell,
    and one run outside it with a hostile param."""
    head = git(repo, "rev-parse", "HEAD")
    records = []
    for i, (lr, depth) in enumerate([(a, b) for a in (0.1, 0.01, 0.001) for b in (3, 5)]):
        failed = lr == 0.001 and depth == 5
        records.append(
            make_record(
                head,
                params={"lr": lr, "depth": depth, "seed": 7},
                metrics={} if failed else {"loss": round(lr * depth, 4), "acc": 0.9 - lr},
                status="failed" if failed else "ok",
                exit_code=1 if failed else 0,
                tags=("sweep:20261203-0500-ab12",),
                started=f"2026-12-03T05:0{i}:00.000Z",
                id=f"20261203T050{i}00.000Z-{i:08x}",
            )
        )
    other = make_record(
        head, params={EVIL: EVIL}, metrics={"loss": 1.0}, started="2026-12-03T06:00:00.000Z"
    )
    Ledger(open_repo(repo)).write([(head, r) for r in [*records, other]], keep=[head])
    page = tmp_path / "report.html"
    page.write_text(render(build_report(open_repo(repo))), encoding="utf-8")
    return page, [r.id for r in records]


def test_report_sweep_views_in_the_page(sweep_page: tuple[Path, list[str]]) -> None:
    page, _ = sweep_page
    text = page.read_text(encoding="utf-8")
    head = text[text.index('<table id="runs">') : text.index("</thead>")]
    params = re.findall(r'<th scope="col" class="param-col">([^<]*)</th>', head)
    assert params == ["&lt;script&gt;alert(3)&lt;/script&gt;", "depth", "lr", "seed"]
    sweeps = text[text.index('<section id="sweeps"') :]
    sweeps = sweeps[: sweeps.index("</section>")]
    labels = re.findall(r'role="img" aria-label="([^"]*)"', sweeps)
    assert labels == [
        f"{m} against {p} in sweep:20261203-0500-ab12: {n} runs"
        for m in ("acc", "loss")
        for p, n in (("depth", 5), ("lr", 5))
    ]
    assert "lr (log scale)" in sweeps and "6 runs (1 not ok, drawn hollow)" in sweeps
    assert "the same in all: seed=7" in sweeps
    assert sweeps.count('class="point best"') == 4  # one ringed per figure
    # the best loss (0.001 × 3) is the ringed point of the loss figures
    assert re.search(
        r'class="point best"[^>]*><title>run [^:]*: lr = 0.001, loss = 0.003; best', sweeps
    )
    # the hostile param is text everywhere: no element, no script but the page's two
    assert EVIL not in text and text.count("<script") == 2
    assert '<section id="compare"' in text


@needs_browser
def test_compare_selected_runs_in_the_browser(
    sweep_page: tuple[Path, list[str]],
    browser: WebDriver,  # noqa: F811
    tmp_path: Path,
) -> None:
    page, ids = sweep_page
    browser.get(page.as_uri())
    assert browser.execute("return document.getElementById('compare-table').hidden") is True
    # tick three cells of the sweep: lr=0.1/depth=3, lr=0.01/depth=3 and the failed one
    for i in (0, 2, 5):
        box = browser.find(f'#runs a[href="#run-{ids[i]}"]')
        browser.execute(
            "arguments[0].previousElementSibling.click()",
            {"element-6066-11e4-a52e-4f735466cecf": box},
        )
    table = browser.execute(
        "return Array.from(document.querySelectorAll('#compare-table tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    assert table[0] == ["Run", "Status", "depth", "lr", "acc", "loss"]
    rows = {r[0]: r for r in table[1:]}
    assert len(rows) == 3
    best = [r for r in table[1:] if any("★" in c for c in r)]
    assert [r[3] for r in best] == ["0.01"]  # best acc and loss both: lr=0.01, depth=3
    assert best[0][4:] == ["0.89 ★", "0.03 ★"]
    failed = next(r for r in table[1:] if r[1] == "failed")
    assert failed[4:] == ["", ""]
    shared = browser.text(browser.find("#compare-shared"))
    assert shared == "3 selected; the same in all: seed=7"
    assert browser.alert_text() is None
    browser.execute("document.getElementById('compare').scrollIntoView()")
    keep_screenshot(browser, tmp_path, "report-compare.png")
    browser.execute("document.getElementById('sweeps').scrollIntoView()")
    keep_screenshot(browser, tmp_path, "report-sweeps.png")
    browser.execute("window.scrollTo(0, 0)")
    keep_screenshot(browser, tmp_path, "report-runs-params.png")
    browser.click(browser.find("#compare-clear"))
    assert browser.execute("return document.getElementById('compare-table').hidden") is True

"""``git prov report`` in real headless Chromium, driven through chromedriver's W3C
WebDriver HTTP API with urllib (no selenium). Skipped when chromium or chromedriver is not
installed (CI installs both: see .ci/run).

A screenshot of each page is kept as a test artifact in the test's tmp dir, and copied to
``tests/artifacts/`` when ``GIT_PROV_ARTIFACTS`` is set.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from git_prov.report import build_report
from git_prov.report.html import SCRIPTS_EMITTED, render, run_anchor
from git_prov.store.repo import open_repo
from tests.test_report import HOSTILE, hostile_record, pipeline  # noqa: F401 (fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
HEADLESS_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]

needs_browser = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="chromium and chromedriver are not installed",
)


class WebDriver:
    """The few W3C WebDriver commands the tests need, over HTTP with urllib."""

    def __init__(self, profile: Path, extra_args: tuple[str, ...] = ()):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status")["value"].get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        options = {
            "binary": CHROMIUM,
            "args": [*HEADLESS_ARGS, *extra_args, f"--user-data-dir={profile}"],
        }
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        try:
            self.session = self._call("POST", "/session", caps)["value"]["sessionId"]
        except Exception:
            self.proc.kill()
            raise

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.read().decode(errors='replace')}") from None

    def cmd(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)["value"]

    def get(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        return str(self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> list[str]:
        found = self.cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [str(e[ELEMENT]) for e in found]

    def click(self, element: str) -> None:
        self.cmd("POST", f"/element/{element}/click", {})

    def text(self, element: str) -> str:
        return str(self.cmd("GET", f"/element/{element}/text"))

    def alert_text(self) -> str | None:
        """The text of an open alert/confirm/prompt, or None when no dialog is open."""
        try:
            return str(self.cmd("GET", "/alert/text"))
        except RuntimeError as exc:
            if "no such alert" in str(exc):
                return None
            raise

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))
        return path

    def quit(self) -> None:
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = WebDriver(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def keep_screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in the test's tmp dir; copy it to tests/artifacts/ when
    GIT_PROV_ARTIFACTS is set (CI uploads that directory)."""
    shot = driver.screenshot(tmp_path / name)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("GIT_PROV_ARTIFACTS"):
        target = Path(__file__).parent / "artifacts"
        target.mkdir(exist_ok=True)
        shutil.copy(shot, target / name)
    return shot


def _write(repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    out.write_text(render(build_report(open_repo(repo))), encoding="utf-8")
    return out


@needs_browser
def test_filter_and_open_a_run(
    pipeline: dict[str, Any],  # noqa: F811
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    runs = pipeline["runs"]
    page = _write(pipeline["repo"], tmp_path)
    browser.get(page.as_uri())
    total = len(runs)
    count = browser.find("#shown-count")
    assert browser.text(count) == f"{total} of {total} runs shown"
    # filter status = failed: pick the option with the keyboard-accessible select
    browser.click(browser.find("#f-status"))
    browser.click(browser.find('#f-status option[value="failed"]'))
    assert browser.text(count) == f"1 of {total} runs shown"
    visible = browser.execute(
        "return Array.from(document.querySelectorAll('#runs tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.cells[0].textContent)"
    )
    assert visible == [runs["failed"].short_id]
    # sort by duration works without errors and keeps every row
    browser.click(browser.find("#runs thead th:nth-child(7) button"))
    # open the failed run's details through its link
    browser.click(browser.find(f'#runs a[href="#{run_anchor(runs["failed"].id)}"]'))
    assert browser.execute("return location.hash") == f"#{run_anchor(runs['failed'].id)}"
    detail = browser.text(browser.find(f'[id="{run_anchor(runs["failed"].id)}"]'))
    assert "python train.py --bad" in detail and "failed (exit 2)" in detail
    assert browser.execute("return document.querySelector(':target').id") == run_anchor(
        runs["failed"].id
    )
    keep_screenshot(browser, tmp_path, "report-filtered.png")
    # the lineage graph: clicking a node opens that run
    browser.get(page.as_uri())
    browser.click(browser.find(f'svg a.node[data-run="{runs["train"].id}"]'))
    assert browser.execute("return location.hash") == f"#{run_anchor(runs['train'].id)}"


@needs_browser
def test_hostile_record_is_inert_in_the_browser(
    repo: Path, browser: WebDriver, tmp_path: Path
) -> None:
    record = hostile_record(repo)
    page = _write(repo, tmp_path)
    browser.get(page.as_uri())
    assert browser.execute("return document.readyState") == "complete"
    assert browser.alert_text() is None
    assert browser.execute("return document.querySelectorAll('script').length") == SCRIPTS_EMITTED
    assert browser.execute("return document.querySelectorAll('img').length") == 0
    detail = browser.text(browser.find(f'[id="{run_anchor(record.id)}"]'))
    assert HOSTILE in detail  # the command, shown as text
    assert browser.execute("return window.__pwned === undefined")
    # the script ran (filters shown) and filtering by the hostile tag still matches it
    tag = browser.find("#f-tag")
    browser.cmd("POST", f"/element/{tag}/value", {"text": "<script>"})
    assert browser.text(browser.find("#shown-count")) == "1 of 1 runs shown"
    assert browser.alert_text() is None
    keep_screenshot(browser, tmp_path, "report-hostile.png")


@needs_browser
def test_without_javascript_everything_is_in_the_page(
    pipeline: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    runs = pipeline["runs"]
    page = _write(pipeline["repo"], tmp_path)
    driver = WebDriver(tmp_path / "profile-nojs", ("--blink-settings=scriptEnabled=false",))
    try:
        driver.get(page.as_uri())
        # the script did not run: the filter form stays hidden, every row is shown in the
        # fallback order (newest first), and the run links still open the details
        assert driver.text(driver.find("#shown-count")) == ""
        table = driver.text(driver.find("#runs tbody"))
        order = [r.short_id for r in sorted(runs.values(), key=lambda r: r.id, reverse=True)]
        positions = [table.index(short_id) for short_id in order]
        assert positions == sorted(positions)
        driver.click(driver.find(f'#runs a[href="#{run_anchor(runs["eval"].id)}"]'))
        detail = driver.text(driver.find(f'[id="{run_anchor(runs["eval"].id)}"]'))
        assert "python eval.py" in detail and "model.pt" in detail
        keep_screenshot(driver, tmp_path, "report-no-javascript.png")
    finally:
        driver.quit()


@needs_browser
def test_training_curves_overlaid_and_chosen_from_the_table(
    repo: Path, browser: WebDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three runs' loss histories overlaid on one chart with labelled axes; a metric named
    like markup stays text; unticking a run in the runs table hides its curves."""
    import math

    import git_prov

    monkeypatch.chdir(repo)
    hostile = "<img src=x onerror=alert(1)>"
    ids = []
    for rate in (0.5, 1.0, 2.0):
        with git_prov.run(command=f"python train.py --lr {rate}") as run:
            for step in range(120):
                loss = math.exp(-step * rate / 30) + 0.02 * math.sin(step)
                run.log_metrics({"loss": loss, hostile: step * rate}, step=step)
        ids.append(run.id)
    page = _write(repo, tmp_path)
    browser.get(page.as_uri())
    assert browser.alert_text() is None
    assert browser.execute("return document.querySelectorAll('img').length") == 0
    visible = (
        "return Array.from(document.querySelectorAll('#curves .curve'))"
        ".filter(l => l.getAttribute('display') !== 'none').map(l => l.getAttribute('data-run'))"
    )
    anchors = [run_anchor(i) for i in ids]
    assert sorted(browser.execute(visible)) == sorted(anchors * 2)  # two charts, three runs
    titles = browser.execute(
        "return Array.from(document.querySelectorAll('#curves h3')).map(h => h.textContent)"
    )
    assert sorted(titles) == sorted(["loss", hostile])
    axis = browser.execute(
        "return Array.from(document.querySelectorAll('#curves .axis-title'))"
        ".map(t => t.textContent)"
    )
    assert axis.count("step") == 2 and "loss" in axis
    # Untick a run in the section's list: gone from both charts.
    section_box = f'#curve-runs input[data-run="{anchors[0]}"]'
    browser.click(browser.find(section_box))
    assert sorted(browser.execute(visible)) == sorted(anchors[1:] * 2)
    browser.execute("document.getElementById('curves').scrollIntoView()")
    keep_screenshot(browser, tmp_path, "report-curves.png")
    # Choose runs from the table: ticking its row (the compare selection) draws it again,
    # and the section's box follows; unticking hides it.
    table_box = f'#runs th:has(a[href="#{anchors[0]}"]) input.pick'
    browser.click(browser.find(table_box))
    assert sorted(browser.execute(visible)) == sorted(anchors * 2)
    assert browser.execute(f"return document.querySelector('{section_box}').checked")
    browser.click(browser.find(table_box))
    assert sorted(browser.execute(visible)) == sorted(anchors[1:] * 2)

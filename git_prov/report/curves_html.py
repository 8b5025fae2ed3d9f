"""The report's "Training curves" section: one SVG chart per metric, a line per run.

Every value from the ledger or a live directory goes through :func:`esc`; the charts are
drawn here (no script needed to see them). The script (:data:`CURVES_SCRIPT`, part of the
page's one pinned script) only shows and hides runs: a checkbox per run in the section,
and the runs table's selection boxes (those of the compare view): ticking a run there
draws its curves, unticking hides them.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from git_prov.report.curves import CHECKED_RUNS, CurveRun, Curves, extent, nice_ticks

if TYPE_CHECKING:
    from git_prov.report import Report

W, H = 720, 280
PAD_L, PAD_R, PAD_T, PAD_B = 78, 18, 14, 46
COLOURS = 8  # classes c0 … c7 in CURVES_STYLE


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.4g}"


def curves_section(report: Report) -> str:
    """The section: the runs chooser, then a chart per metric."""
    curves: Curves = report.curves
    head = (
        '<section id="curves" aria-labelledby="curves-h">\n<h2 id="curves-h">Training curves</h2>\n'
    )
    if not curves.runs or not curves.metrics:
        said = "".join(f'<p class="warn">{esc(problem)}</p>\n' for problem in curves.problems)
        return head + '<p class="empty">No run kept a metric history.</p>\n' + said + "</section>\n"
    out = [head, _chooser(curves)]
    for index, metric in enumerate(curves.metrics):
        out.append(_chart(index, metric, curves))
    for problem in curves.problems:
        out.append(f'<p class="warn">{esc(problem)}</p>\n')
    out.append("</section>\n")
    return "".join(out)


def _anchor(run: CurveRun) -> str:
    from git_prov.report.html import run_anchor

    return run_anchor(run.id)


def _short(run: CurveRun) -> str:
    from git_prov.model.ids import short_run_id

    return short_run_id(run.id)


def _chooser(curves: Curves) -> str:
    items = []
    for i, run in enumerate(curves.runs):
        checked = " checked" if i < CHECKED_RUNS else ""
        state = " (running: the points so far)" if run.live else ""
        items.append(
            f'<li><label><input type="checkbox" data-run="{esc(_anchor(run))}"{checked}>'
            f' <span class="swatch c{i % COLOURS}" aria-hidden="true"></span>'
            f' <span class="mono token">{esc(_short(run))}</span>'
            f' <span class="cmd mono">{esc(run.command[:80])}</span>{esc(state)}</label></li>'
        )
    return (
        '<fieldset id="curve-runs"><legend>Runs plotted (the newest'
        f" {min(CHECKED_RUNS, len(curves.runs))} of {len(curves.runs)} with histories;"
        " tick runs here, or in the runs table)</legend>\n"
        f'<ul class="curve-runs">{"".join(items)}</ul></fieldset>\n'
    )


def _chart(index: int, metric: str, curves: Curves) -> str:
    drawn = [
        (i, run, run.curves[metric]) for i, run in enumerate(curves.runs) if metric in run.curves
    ]
    xs = extent([c.steps for _, _, c in drawn])
    ys = extent([c.values for _, _, c in drawn])
    assert xs is not None and ys is not None  # (every curve kept has a point)
    x0, x1 = xs
    y0, y1 = ys
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - abs(y0 or 1) * 0.05, y1 + abs(y1 or 1) * 0.05
    inner_w, inner_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(step: float) -> float:
        return PAD_L + (step - x0) / (x1 - x0) * inner_w

    def y(value: float) -> float:
        return PAD_T + inner_h - (value - y0) / (y1 - y0) * inner_h

    label = f"{metric} by step: {len(drawn)} runs"
    out = [
        f'<figure id="curve-{index}" class="curve-chart">'
        f"<figcaption><h3>{esc(metric)}</h3></figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}"'
        f' viewBox="0 0 {W} {H}" role="img" aria-label="{esc(label)}">'
    ]
    for tick in nice_ticks(y0, y1):
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{PAD_L}" y1="{ty:.1f}" x2="{W - PAD_R}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{PAD_L - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{esc(_num(tick))}</text>"
        )
    for tick in nice_ticks(x0, x1, 6):
        tx = x(tick)
        out.append(
            f'<line class="axis" x1="{tx:.1f}" y1="{H - PAD_B}" x2="{tx:.1f}"'
            f' y2="{H - PAD_B + 4}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{H - PAD_B + 17}" text-anchor="middle">'
            f"{esc(_num(tick))}</text>"
        )
    out.append(
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}"/>'
        f'<line class="axis" x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}"/>'
        f'<text class="axis-title" x="{PAD_L + inner_w / 2:.0f}" y="{H - 8}"'
        ' text-anchor="middle">step</text>'
        f'<text class="axis-title" transform="translate(14 {PAD_T + inner_h / 2:.0f}) rotate(-90)"'
        f' text-anchor="middle">{esc(metric[:40])}</text>'
    )
    for i, run, curve in drawn:
        points = " ".join(
            f"{x(s):.1f},{y(v):.1f}" for s, v in zip(curve.steps, curve.values, strict=True)
        )
        hidden = "" if i < CHECKED_RUNS else ' display="none"'
        live = " live" if run.live else ""
        thinned = f", drawn from {curve.total:,} points" if curve.total > len(curve.steps) else ""
        last = f"{_num(curve.values[-1])} at step {_num(curve.steps[-1])}"
        title = f"run {_short(run)}{' (running)' if run.live else ''}: last {last}{thinned}"
        if len(curve.steps) == 1:
            out.append(
                f'<circle class="curve c{i % COLOURS}{live}" data-run="{esc(_anchor(run))}"'
                f' cx="{x(curve.steps[0]):.1f}" cy="{y(curve.values[0]):.1f}" r="3"{hidden}>'
                f"<title>{esc(title)}</title></circle>"
            )
            continue
        out.append(
            f'<polyline class="curve c{i % COLOURS}{live}" data-run="{esc(_anchor(run))}"'
            f' points="{points}"{hidden}><title>{esc(title)}</title></polyline>'
        )
    out.append("</svg></figure>\n")
    return "".join(out)


CURVES_STYLE = """
#curve-runs { border: 1px solid var(--line); padding: .3rem .8rem; margin: .5rem 0; }
ul.curve-runs { list-style: none; margin: 0; padding: 0; columns: 2 28rem; }
ul.curve-runs li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.curve-chart { display: inline-block; vertical-align: top; margin: 1rem 1.5rem 1rem 0; }
#runs tbody th { white-space: nowrap; }
.curve-chart figcaption h3 { margin: 0 0 .2rem; }
.curve-chart svg { max-width: 100%; height: auto; }
.curve-chart .grid { stroke: #eaeef2; }
.curve-chart .axis { stroke: var(--muted); }
.curve-chart .tick { font-size: 11px; fill: var(--muted); }
.curve-chart .axis-title { font-size: 12px; fill: var(--fg); }
.curve { fill: none; stroke-width: 1.8; }
circle.curve { stroke-width: 0; }
.curve.live { stroke-dasharray: 5 3; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: -.1em;
  border-radius: 2px; }
.c0 { stroke: #0550ae; fill: #0550ae; } .swatch.c0 { background: #0550ae; }
.c1 { stroke: #bc4c00; fill: #bc4c00; } .swatch.c1 { background: #bc4c00; }
.c2 { stroke: #116329; fill: #116329; } .swatch.c2 { background: #116329; }
.c3 { stroke: #8250df; fill: #8250df; } .swatch.c3 { background: #8250df; }
.c4 { stroke: #a40e26; fill: #a40e26; } .swatch.c4 { background: #a40e26; }
.c5 { stroke: #1b7c83; fill: #1b7c83; } .swatch.c5 { background: #1b7c83; }
.c6 { stroke: #7d4e00; fill: #7d4e00; } .swatch.c6 { background: #7d4e00; }
.c7 { stroke: #57606a; fill: #57606a; } .swatch.c7 { background: #57606a; }
polyline.curve { fill: none; }
"""

CURVES_SCRIPT = """
(function () {
  "use strict";
  var box = document.getElementById("curve-runs");
  if (!box) { return; }
  var marks = Array.prototype.slice.call(document.querySelectorAll("#curves .curve"));
  var boxes = {};
  function show(anchor, on) {
    marks.forEach(function (mark) {
      if (mark.getAttribute("data-run") !== anchor) { return; }
      if (on) { mark.removeAttribute("display"); } else { mark.setAttribute("display", "none"); }
    });
    (boxes[anchor] || []).forEach(function (input) { input.checked = on; });
  }
  function watch(anchor, input) {
    (boxes[anchor] = boxes[anchor] || []).push(input);
    input.addEventListener("change", function () { show(anchor, input.checked); });
  }
  Array.prototype.forEach.call(box.querySelectorAll("input[data-run]"), function (input) {
    watch(input.getAttribute("data-run"), input);
  });
  // Runs ticked in the runs table (the boxes that also select them for Compare, made by
  // report/sweeps.py) draw their curves; unticked, they are hidden.
  var table = document.getElementById("runs");
  if (!table) { return; }
  table.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.classList || !input.classList.contains("pick")) { return; }
    var cell = input.closest("th, td");
    var link = cell && cell.querySelector("a[href^='#']");
    if (!link) { return; }
    var anchor = link.getAttribute("href").slice(1);
    if (boxes[anchor]) { show(anchor, input.checked); }
  });
})();
"""

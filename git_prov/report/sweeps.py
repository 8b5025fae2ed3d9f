"""The report's views of sweeps and comparisons: the params columns of the runs table,
a metric-vs-param scatter per sweep (runs grouped by their ``sweep:…`` or
``optuna-study:…`` tag), and the compare view of the runs selected in the table.

HTML only through :func:`~git_prov.report.html.esc`; the compare view is filled by the
page's script from escaped JSON with ``textContent`` (:mod:`git_prov.report.assets`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from git_prov.model.values import as_number
from git_prov.query.comparison import direction_by_name, split_params
from git_prov.report import Report, RunView

MAX_PARAM_COLUMNS = 6
PARAM_CELL_WIDTH = 40
SWEEP_TAG_PREFIXES = ("sweep:", "optuna-study:")
MAX_SWEEPS, MAX_SWEEP_PARAMS, MAX_SWEEP_METRICS = 8, 4, 4
MAX_CATEGORIES = 12
PLOT_W, PLOT_H, PLOT_L, PLOT_R, PLOT_T, PLOT_B = 340, 230, 64, 14, 14, 46


def _esc(value: object) -> str:
    from git_prov.report.html import esc

    return esc(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _tick(value: float) -> str:
    """An axis label: four significant digits fit the plot's margin (the exact values are
    in the table and each point's title)."""
    return f"{value:.4g}"


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


# ---- params columns of the runs table ------------------------------------------------------------


def param_columns(report: Report) -> tuple[list[str], list[str]]:
    """(the params shown as columns, those that vary but are left out): the params that
    differ among the table's runs, by name, at most :data:`MAX_PARAM_COLUMNS`."""
    if len(report.runs) < 2:
        return [], []
    _, varying = split_params([v.record.params for v in report.runs])
    return varying[:MAX_PARAM_COLUMNS], varying[MAX_PARAM_COLUMNS:]


def numeric_params(report: Report, names: Sequence[str]) -> list[str]:
    """Those of ``names`` whose every value in the table is a number (sorted as numbers)."""
    return [
        n
        for n in names
        if all(
            n not in v.record.params or _finite(v.record.params[n]) is not None for v in report.runs
        )
    ]


def param_cells(view: RunView, names: Sequence[str]) -> str:
    """The row's cells of the params columns."""
    from git_prov.report.html import _cut

    out = []
    for name in names:
        value = view.record.params.get(name)
        text = "" if value is None else _cut(_text(value), PARAM_CELL_WIDTH)
        numeric = value is not None and _finite(value) is not None
        out.append(f'<td class="{"num" if numeric else "param"}">{_esc(text)}</td>')
    return "".join(out)


# ---- compare view of the selected runs -----------------------------------------------------------


def compare_data(report: Report) -> dict[str, Any]:
    """What the script needs to compare the selected runs (in table order): per run its
    short id, status, params and metrics; each metric's best direction when its name says
    it (never guessed: None otherwise)."""
    from git_prov.report.html import short

    names = sorted({m for v in report.runs for m in v.record.metrics})
    return {
        "direction": {m: direction_by_name(m) for m in names},
        "runs": [
            [
                short(v.id),
                v.record.status,
                {k: _text(x) for k, x in v.record.params.items()},
                {k: _text(x) for k, x in v.record.metrics.items()},
                {k: _finite(x) for k, x in v.record.metrics.items()},
            ]
            for v in report.runs
        ],
    }


def compare_section() -> str:
    """The compare view: filled by the script with the runs ticked in the table."""
    return (
        '<section id="compare" aria-labelledby="compare-h">\n'
        '<h2 id="compare-h">Compare selected runs</h2>\n'
        '<p id="compare-help">Tick runs in the table (the box before each run id) to see them'
        " side by side here: the params that differ, the ones they share, and their metrics"
        " with the best value marked ★ (lower for loss/error-like names, higher for"
        " accuracy-like names, among runs that ended ok; other metrics are not marked)."
        " <code>git prov compare RUN…</code> gives the same in a terminal.</p>\n"
        '<p id="compare-shared"></p>\n'
        '<div class="table-wrap"><table id="compare-table" hidden></table></div>\n'
        '<p><button type="button" id="compare-clear" hidden>Clear the selection</button></p>\n'
        "</section>\n"
    )


# ---- scatter of a metric against a param, per sweep --------------------------------------------


def sweep_groups(report: Report) -> dict[str, list[RunView]]:
    """Runs grouped by sweep tag (``sweep:…``, ``optuna-study:…``), groups of at least two
    runs, newest sweep first; at most :data:`MAX_SWEEPS`."""
    groups: dict[str, list[RunView]] = {}
    for view in report.every_run.values():
        for tag in view.record.tags:
            if tag.startswith(SWEEP_TAG_PREFIXES):
                groups.setdefault(tag, []).append(view)
    kept = {
        t: sorted(vs, key=lambda v: v.record.started) for t, vs in groups.items() if len(vs) > 1
    }
    newest = sorted(kept, key=lambda t: max(v.record.started for v in kept[t]), reverse=True)
    return {t: kept[t] for t in newest}


def sweeps_section(report: Report) -> str:
    """The "Sweeps" section: per sweep, a scatter of each numeric metric against each
    param that varies in it."""
    from git_prov.report.html import esc

    groups = sweep_groups(report)
    out = ['<section id="sweeps" aria-labelledby="sweeps-h">\n<h2 id="sweeps-h">Sweeps</h2>\n']
    if not groups:
        out.append(
            '<p class="empty">No sweep: runs sharing a <code>sweep:…</code> tag'
            " (<code>git prov sweep</code>) or an <code>optuna-study:…</code> tag.</p>\n"
        )
    for tag in list(groups)[:MAX_SWEEPS]:
        out.append(_sweep(tag, groups[tag], report))
    if len(groups) > MAX_SWEEPS:
        out.append(f"<p>{esc(len(groups) - MAX_SWEEPS)} older sweeps are not plotted.</p>\n")
    out.append("</section>\n")
    return "".join(out)


def _sweep(tag: str, runs: list[RunView], report: Report) -> str:
    from git_prov.report.html import esc

    constant, varying = split_params([v.record.params for v in runs])
    metrics = sorted(
        {m for v in runs for m in v.record.metrics if _finite(v.record.metrics[m]) is not None},
        key=lambda m: (-sum(1 for v in runs if m in v.record.metrics), m),
    )
    failed = sum(1 for v in runs if v.record.status != "ok")
    head = (
        f'<h3 class="token">{esc(tag)}</h3>\n<p>{len(runs)} runs'
        f"{f' ({failed} not ok, drawn hollow)' if failed else ''}"
        f"; the same in all: {esc(_shared(constant)) or '(nothing)'}.</p>\n"
    )
    params = varying[:MAX_SWEEP_PARAMS]
    shown_metrics = metrics[:MAX_SWEEP_METRICS]
    if not params or not shown_metrics:
        what = "no param varies" if not params else "no numeric metric"
        return head + f'<p class="empty">Nothing to plot: {what} in this sweep.</p>\n'
    figures = [_scatter(tag, p, m, runs, report) for m in shown_metrics for p in params]
    left_out = (len(varying) - len(params)) + (len(metrics) - len(shown_metrics))
    note = (
        f"<p>{left_out} more params or metrics of this sweep are not plotted"
        f" (git prov compare --tag {esc(tag)} lists them all).</p>\n"
        if left_out
        else ""
    )
    return head + '<div class="scatters">' + "".join(figures) + "</div>\n" + note


def _shared(constant: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in list(constant.items())[:12]) + (
        ", …" if len(constant) > 12 else ""
    )


def _scatter(tag: str, param: str, metric: str, runs: list[RunView], report: Report) -> str:
    from git_prov.report.html import esc, run_anchor, short

    points = [
        (v, v.record.params.get(param), y)
        for v in runs
        if (y := _finite(v.record.metrics.get(metric))) is not None
    ]
    xs_numeric = [_finite(x) for _, x, _ in points]
    numeric = all(x is not None for x in xs_numeric)
    inner_w = PLOT_W - PLOT_L - PLOT_R
    inner_h = PLOT_H - PLOT_T - PLOT_B
    ticks: list[tuple[float, str]] = []
    log = False
    if numeric:
        values = [x for x in xs_numeric if x is not None]
        low, high = min(values), max(values)
        log = low > 0 and high / low >= 100
        scale = math.log10 if log else float
        lo, hi = scale(low), scale(high)
        span = (hi - lo) or 1.0

        def x_of(value: Any) -> float:
            number = _finite(value)
            assert number is not None
            return (
                PLOT_L + (scale(number) - lo) / span * inner_w if hi != lo else PLOT_L + inner_w / 2
            )

        ticks = (
            [(x_of(low), _text(low)), (x_of(high), _text(high))]
            if low != high
            else [(x_of(low), _text(low))]
        )
    else:
        categories = sorted({_text(x) if x is not None else "(none)" for _, x, _ in points})
        if len(categories) > MAX_CATEGORIES:
            return ""
        gap = inner_w / len(categories)
        place = {c: PLOT_L + gap * (i + 0.5) for i, c in enumerate(categories)}

        def x_of(value: Any) -> float:
            return place[_text(value) if value is not None else "(none)"]

        ticks = [(place[c], c) for c in categories]
    ys = [y for _, _, y in points]
    y_low, y_high = min(ys), max(ys)
    y_span = (y_high - y_low) or 1.0

    def y_of(value: float) -> float:
        if y_high == y_low:
            return PLOT_T + inner_h / 2
        return PLOT_T + inner_h - (value - y_low) / y_span * inner_h

    way = direction_by_name(metric)
    ok_ys = [y for v, _, y in points if v.record.status == "ok"]
    best = (min(ok_ys) if way == "min" else max(ok_ys)) if way and ok_ys else None
    x_label = f"{param}{' (log scale)' if log else ''}"
    label = f"{metric} against {param} in {tag}: {len(points)} runs"
    bottom = PLOT_T + inner_h
    out = [
        f'<figure class="scatter"><svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}"'
        f' height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img"'
        f' aria-label="{esc(label)}">'
        f'<line class="axis" x1="{PLOT_L}" y1="{PLOT_T}" x2="{PLOT_L}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PLOT_L}" y1="{bottom}" x2="{PLOT_W - PLOT_R}" y2="{bottom}"/>'
        f'<text x="{PLOT_L - 4}" y="{PLOT_T + 4}" text-anchor="end">{esc(_tick(y_high))}</text>'
        f'<text x="{PLOT_L - 4}" y="{bottom}" text-anchor="end">{esc(_tick(y_low))}</text>'
        f'<text class="axis-label" x="12" y="{PLOT_T + inner_h / 2:.0f}" text-anchor="middle"'
        f' transform="rotate(-90 12 {PLOT_T + inner_h / 2:.0f})">{esc(metric)}</text>'
    ]
    for x, text in ticks:
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{esc(text[:14])}</text>'
        )
    out.append(
        f'<text class="axis-label" x="{PLOT_L + inner_w / 2:.0f}" y="{PLOT_H - 6}"'
        f' text-anchor="middle">{esc(x_label)}</text>'
    )
    for view, x_value, y in points:
        r = view.record
        cls = "point" if r.status == "ok" else "point hollow"
        if best is not None and r.status == "ok" and y == best:
            cls += " best"
        href = f' href="#{esc(run_anchor(r.id))}"' if r.id in report.shown else ""
        title = (
            f"run {short(r.id)} ({r.status}): {param} = {_text(x_value)}, {metric} = {_text(y)}"
            f"{'; best' if 'best' in cls else ''}"
        )
        out.append(
            f'<a{href}><circle class="{cls}" cx="{x_of(x_value):.1f}" cy="{y_of(y):.1f}"'
            f' r="{5 if "best" in cls else 4}"><title>{esc(title)}</title></circle></a>'
        )
    side = {"min": "lower", "max": "higher"}.get(way or "", "")
    caption = f"{metric} against {x_label}" + (
        f"; the best ({side} is better, by the name) ringed" if best is not None else ""
    )
    out.append(f"</svg><figcaption>{esc(caption)}</figcaption></figure>")
    return "".join(out)


def pick_box(run_id: str) -> str:
    """The box that selects a row for the compare view (hidden until the script runs:
    without it, it would do nothing)."""
    from git_prov.report.html import short

    return (
        '<input type="checkbox" class="pick" hidden'
        f' aria-label="{_esc(f"Select run {short(run_id)} to compare")}">'
    )


def tag_tokens(tags: Sequence[str]) -> str:
    """Tags as text that wraps between tags, never inside one (``sweep:20261203-…``)."""
    return ", ".join(f'<span class="token">{_esc(t)}</span>' for t in tags)

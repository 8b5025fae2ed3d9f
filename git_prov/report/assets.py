"""The report's inline stylesheet and script. Both are constant strings: nothing from the
ledger is ever pasted into them (the data travels as escaped JSON in a separate
``<script type="application/json">`` element, and the script writes it with
``textContent`` only)."""

from __future__ import annotations

STYLE = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --accent: #0550ae;
  --bad: #a40e26; --bad-bg: #ffebe9; --ok: #116329; --warn-bg: #fff8c5; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.6rem; margin: .2rem 0; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem;
  margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .3rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .92em;
  overflow-wrap: anywhere; }
a { color: var(--accent); }
/* Run ids, commits and times are read as one token: never broken inside one. */
.token { white-space: nowrap; overflow-wrap: normal; }
.tokens { overflow-wrap: normal; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
svg a:focus-visible { outline: 3px solid #fb8500; outline-offset: 2px; }
svg a:focus-visible rect { stroke: #fb8500; stroke-width: 3; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem 1rem; }
.summary { color: var(--muted); }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .4rem 0; }
caption { text-align: left; color: var(--muted); padding: .2rem 0; caption-side: top; }
th, td { border: 1px solid var(--line); padding: .25rem .45rem; text-align: left;
  vertical-align: top; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.status-failed td, tr.status-killed td, tr.status-failed th,
  tr.status-killed th { background: var(--bad-bg); }
.status-failed .status, .status-killed .status, .bad { color: var(--bad); font-weight: 600; }
.cmd { max-width: 32rem; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0;
  cursor: pointer;
  color: inherit; text-align: left; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
form#filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end;
  margin: .5rem 0; }
form#filters label { display: flex; flex-direction: column; font-size: .85rem;
  color: var(--muted); }
form#filters input, form#filters select, form#filters button { font: inherit;
  padding: .2rem .35rem; }
.run-detail { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem .8rem;
  margin: .8rem 0;
  content-visibility: auto; contain-intrinsic-size: auto 420px; }
.run-detail:target { border: 2px solid var(--accent); box-shadow: 0 0 0 4px #ddf4ff; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
  margin: .3rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.graph-wrap { overflow: auto; border: 1px solid var(--line); border-radius: 6px;
  max-height: 80vh; }
svg .node rect { fill: #ddf4ff; stroke: #54aeff; rx: 6; }
svg .node.status-failed rect, svg .node.status-killed rect { fill: var(--bad-bg);
  stroke: var(--bad); }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .edge { fill: none; stroke: #8c959f; stroke-width: 1.4; }
svg .axis { stroke: #8c959f; }
svg .series { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg .point { fill: var(--accent); }
figure { margin: .6rem 0 1.2rem; }
figcaption { color: var(--muted); }
.mismatch, .anomaly-list li { background: var(--warn-bg); }
.mismatch { border: 1px solid #d4a72c; border-radius: 6px; padding: .2rem 1rem .6rem;
  margin: .6rem 0; }
.empty { color: var(--muted); font-style: italic; }
form#filters select { max-width: 16rem; }
.scatters { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; }
figure.scatter { margin: .3rem 0 .8rem; }
svg .axis-label { fill: var(--muted); font-weight: 600; }
svg .point.hollow { fill: #fff; stroke: var(--bad); stroke-width: 1.5; }
svg .point.best { stroke: #fb8500; stroke-width: 3; }
th.param-col { background: #eef6ee; }
td.best { color: var(--ok); font-weight: 700; }
input.pick { margin: 0 .35rem 0 0; vertical-align: middle; }
#compare-shared { overflow-wrap: anywhere; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .3rem; z-index: 2; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, form#filters, .skip, #shown-count, input.pick, #compare { display: none !important; }
  tr[hidden] { display: table-row !important; }
  .table-wrap, .graph-wrap { overflow: visible; max-height: none; border: 0; }
  thead th { position: static; }
  .run-detail { content-visibility: visible; break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  var source = document.getElementById("prov-data");
  var table = document.getElementById("runs");
  if (!source || !table) { return; }
  var data = JSON.parse(source.textContent);
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var form = document.getElementById("filters");
  var count = document.getElementById("shown-count");
  var field = { branch: 0, status: 1, tags: 2, data: 3, env: 4 };
  var numericFrom = 5;

  function text(id) { return document.getElementById(id).value.trim().toLowerCase(); }

  function apply() {
    var branch = document.getElementById("f-branch").value;
    var status = document.getElementById("f-status").value;
    var tag = text("f-tag"), dataText = text("f-data"), env = text("f-env");
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var run = data.runs[i];
      var ok = (!branch || run[field.branch] === branch) &&
        (!status || run[field.status] === status) &&
        (!tag || run[field.tags].toLowerCase().indexOf(tag) >= 0) &&
        (!dataText || run[field.data].toLowerCase().indexOf(dataText) >= 0) &&
        (!env || run[field.env].toLowerCase().indexOf(env) >= 0);
      rows[i].hidden = !ok;
      if (ok) { shown++; }
    }
    count.textContent = shown + " of " + rows.length + " runs shown";
  }

  form.hidden = false;
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });

  var headers = table.tHead.rows[0].cells;
  var numeric = data.numeric;
  var current = { col: -1, dir: 1 };

  function sortKey(i, col) {
    var slot = numeric.indexOf(col);
    if (slot >= 0) { return data.runs[i][numericFrom + slot]; }
    return rows[i].cells[col].textContent;
  }

  function sortBy(col) {
    var dir = current.col === col ? -current.dir : (col === 1 ? -1 : 1);
    current = { col: col, dir: dir };
    var order = rows.map(function (_, i) { return i; });
    var keys = rows.map(function (_, i) { return sortKey(i, col); });
    order.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === null || x === "") { return (y === null || y === "") ? a - b : 1; }
      if (y === null || y === "") { return -1; }
      if (x < y) { return -dir; }
      if (x > y) { return dir; }
      return a - b;
    });
    var fragment = document.createDocumentFragment();
    order.forEach(function (i) { fragment.appendChild(rows[i]); });
    tbody.appendChild(fragment);
    for (var h = 0; h < headers.length; h++) {
      if (h === col) { headers[h].setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); }
      else { headers[h].removeAttribute("aria-sort"); }
    }
  }

  Array.prototype.forEach.call(headers, function (th, col) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    button.title = "Sort by " + th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(col); });
  });
  apply();
})();
(function () {
  "use strict";
  // The compare view: the runs ticked in the table, side by side (report/sweeps.py).
  var source = document.getElementById("prov-data");
  var table = document.getElementById("runs");
  var view = document.getElementById("compare-table");
  if (!source || !table || !view) { return; }
  var cmp = JSON.parse(source.textContent).compare;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var boxes = rows.map(function (row) { return row.querySelector("input.pick"); });
  var shared = document.getElementById("compare-shared");
  var clear = document.getElementById("compare-clear");
  var own = function (o, k) { return Object.prototype.hasOwnProperty.call(o, k); };

  function cell(tr, tag, text, cls) {
    var c = document.createElement(tag);
    c.textContent = text;
    if (cls) { c.className = cls; }
    tr.appendChild(c);
    return c;
  }

  function names(objects) {
    var seen = Object.create(null);
    objects.forEach(function (o) { Object.keys(o).forEach(function (k) { seen[k] = true; }); });
    return Object.keys(seen).sort();
  }

  function update() {
    var picked = [];
    boxes.forEach(function (box, i) { if (box && box.checked) { picked.push(cmp.runs[i]); } });
    view.textContent = "";
    clear.hidden = picked.length === 0;
    if (!picked.length) { view.hidden = true; shared.textContent = ""; return; }
    var varying = [], same = [];
    names(picked.map(function (r) { return r[2]; })).forEach(function (p) {
      var first = picked[0][2][p];
      var one = picked.every(function (r) { return own(r[2], p) && r[2][p] === first; });
      if (one) { same.push(p + "=" + first); } else { varying.push(p); }
    });
    var metrics = names(picked.map(function (r) { return r[3]; }));
    var best = Object.create(null);
    metrics.forEach(function (m) {
      var way = own(cmp.direction, m) ? cmp.direction[m] : null;
      if (way !== "min" && way !== "max") { return; }
      var values = picked.filter(function (r) {
        return r[1] === "ok" && own(r[4], m) && typeof r[4][m] === "number";
      }).map(function (r) { return r[4][m]; });
      if (values.length) { best[m] = (way === "min" ? Math.min : Math.max).apply(null, values); }
    });
    shared.textContent = picked.length + " selected; the same in all: " +
      (same.length ? same.join(", ") : "(no param)");
    var head = document.createElement("thead"), hr = document.createElement("tr");
    ["Run", "Status"].concat(varying, metrics).forEach(function (h, i) {
      var th = cell(hr, "th", h, i >= 2 && i < 2 + varying.length ? "param-col" : "");
      th.scope = "col";
    });
    head.appendChild(hr);
    view.appendChild(head);
    var body = document.createElement("tbody");
    picked.forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, "th", r[0], "mono token").scope = "row";
      cell(tr, "td", r[1], "status");
      varying.forEach(function (p) { cell(tr, "td", own(r[2], p) ? r[2][p] : ""); });
      metrics.forEach(function (m) {
        var has = own(r[3], m);
        var top = has && r[1] === "ok" && (m in best) && r[4][m] === best[m];
        var text = has ? r[3][m] + (top ? " \u2605" : "") : "";
        var c = cell(tr, "td", text, top ? "num best" : "num");
        if (top) { c.title = "best " + m; }
      });
      if (r[1] !== "ok") { tr.className = "status-" + r[1]; }
      body.appendChild(tr);
    });
    view.appendChild(body);
    view.hidden = false;
  }

  boxes.forEach(function (box) {
    if (!box) { return; }
    box.hidden = false;
    box.addEventListener("change", update);
  });
  clear.addEventListener("click", function () {
    boxes.forEach(function (box) { if (box) { box.checked = false; } });
    update();
  });
  update();
})();
"""

# The training curves section's own rules and code (report/curves_html.py), in the page's
# one stylesheet and one script (each pinned by its hash).
from git_prov.report.curves_html import CURVES_SCRIPT, CURVES_STYLE  # noqa: E402

STYLE += CURVES_STYLE
SCRIPT += CURVES_SCRIPT

"""``git prov find`` (alias ``runs``), ``env``, ``diff``, ``check`` and ``lineage``
(registered on the main group). Parse, call one library function, render."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from git_prov.cli import CONTEXT, State, _open, cli, complete_run
from git_prov.cli.output import _page, _report_problems
from git_prov.errors import EXIT_FINDING, NotFound, UsageProblem
from git_prov.terminal import csv_view, echo, isatty, view, views

_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")


def _emit_json(doc: Any) -> None:
    echo(json.dumps(doc, indent=2, sort_keys=True), data=True)


def _debug_stats(state: State, stats: Any) -> None:
    if state.debug:
        echo(f"debug: index {stats}", err=True)


# ---- find -------------------------------------------------------------------------------------


@cli.command(name="find", context_settings=CONTEXT)
@click.argument("revisions", nargs=-1)
@click.option("--branch", metavar="BRANCH", help="Runs on commits reachable from BRANCH.")
@click.option(
    "--data", "data", multiple=True, metavar="PATH", help="Runs that read or wrote PATH (or below)."
)
@click.option(
    "--data-hash",
    "data_hashes",
    multiple=True,
    metavar="HASH",
    help="Runs that read or wrote this exact content (sha256:…, a hex prefix, a manifest id).",
)
@click.option("--env", "envs", multiple=True, metavar="ID|TAG", help="Runs in this environment.")
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="SPEC",
    help="Runs whose environment has this package: NAME, NAME==2.4.* (fnmatch), NAME!=1.*.",
)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A param equals V.")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COND",
    help="A metric or param condition: 'acc>0.9', 'lr<=0.01', 'model==resnet'.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["ok", "failed", "killed"]),
    help="How the run ended.",
)
@click.option("--since", metavar="TIME", help="Started at or after TIME (2026-01-02, 3d, 12h).")
@click.option("--until", metavar="TIME", help="Started before TIME.")
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="Ran on HOST (globs work).")
@click.option("--user", "users", multiple=True, metavar="USER", help="Ran as USER.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Has this tag.")
@click.option(
    "--sort",
    default="-started",
    show_default=True,
    metavar="FIELD",
    help="started, duration, status, … or a metric/param name; '-' for descending.",
)
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N", help="At most N runs.")
@click.option("--json", "as_json", is_flag=True, help="The records as a JSON list.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with params.* and metrics.* columns.")
@click.option(
    "--format",
    "template",
    metavar="TEMPLATE",
    help="One line per run, e.g. '{short_id} {metrics[acc]}' (Python str.format).",
)
@click.pass_obj
def find_command(
    state: State,
    revisions: tuple[str, ...],
    branch: str | None,
    data: tuple[str, ...],
    data_hashes: tuple[str, ...],
    envs: tuple[str, ...],
    packages: tuple[str, ...],
    params: tuple[str, ...],
    where: tuple[str, ...],
    statuses: tuple[str, ...],
    since: str | None,
    until: str | None,
    hosts: tuple[str, ...],
    users: tuple[str, ...],
    tags: tuple[str, ...],
    sort: str,
    limit: int | None,
    as_json: bool,
    as_csv: bool,
    template: str | None,
) -> int:
    """Find runs by code, data, environment, params, metrics, time and more.

    REVISIONS select the commits runs are shown on, as for git log (main~20..main); by
    default every run is searched. Different filters must all hold; a repeated selector
    (--status, --host, --user, --tag, --env, --data, --data-hash) accepts any of its
    values, repeated --param/--where/--package conditions must all hold.

    \b
    Examples:
      git prov find --where 'acc>0.9' --sort -acc -n 5
      git prov find main~20..main --status failed
      git prov find --data data/train.csv --package 'torch==2.4.*'
      git prov find --format '{short_id} {params[lr]} {metrics[acc]}'
    """
    from git_prov.query import find as finding
    from git_prov.query.index import RepoPaths
    from git_prov.query.render import (
        INDEX_FIELD_COLUMNS,
        TABLE_FIELDS,
        runs_csv,
        runs_table,
        template_fields,
    )

    if sum(bool(x) for x in (as_json, as_csv, template)) > 1:
        raise UsageProblem("choose one of --json, --csv and --format")
    fields: set[str] = set()
    if template is not None:
        try:
            fields = template_fields(template)
        except ValueError as exc:
            raise UsageProblem(f"bad --format template: {exc}") from None
    paths = RepoPaths.discover()
    query = _find_query(
        paths,
        revisions=revisions,
        branch=branch,
        data=data,
        data_hashes=data_hashes,
        envs=envs,
        packages=packages,
        params=params,
        where=where,
        statuses=statuses,
        since=since,
        until=until,
        hosts=hosts,
        users=users,
        tags=tags,
        sort=sort,
        limit=limit,
    )
    from git_prov.query.index import with_index

    hints: list[str] = []

    def answer(index: Any) -> str:
        if as_json or as_csv:  # (every record is read: of the index rows, only their ids)
            rows = finding.found_rows(index, query)
            if not rows:
                hints.extend(finding.unknown_name_hints(index, query))
            _report_problems(index.problems())
            _debug_stats(state, index.stats)
            if as_csv and isatty(sys.stdout):  # shown as a table: it needs every row at once
                ids = finding.found_ids(index, query)
                records = index.record_jsons(ids)
                return runs_csv([records[run] for run in ids if run in records])
            if as_csv:
                return _stream_csv(index, rows)
            # One record per line: a single JSON document, written as it is read (100k
            # runs in constant memory).
            from git_prov.query.find_json import find_json_document
            from git_prov.terminal import echo_data

            for part in find_json_document(index, rows):
                echo_data(part)
            return ""
        if template is not None:
            needed: tuple[str, ...] = tuple(INDEX_FIELD_COLUMNS.get(f, "id") for f in fields)
        else:
            needed = TABLE_FIELDS
        result = finding.find_runs(index, query, needed)
        if not result.runs:
            hints.extend(finding.unknown_name_hints(index, query))
        _report_problems(index.problems())
        _debug_stats(state, index.stats)
        runs = result.runs
        if template is not None:
            return _formatted(index, runs, template, fields)
        if not runs:
            return ""
        from git_prov.cli.history import orphan_hint

        if orphaned := orphan_hint(paths, index):
            hints.append(orphaned)
        first = [c.key for c in (*query.where, *query.params)] + [sort.lstrip("-+")]
        from git_prov.query.whereabouts import shown_now

        now = shown_now(index, [r.id for r in runs])
        runs = _with_shown_copies(runs)
        text = runs_table(runs, style=state.style, first=first, now=now)
        if result.matched > len(runs):
            beyond = result.matched - len(runs)  # (exact, or a lower bound: at least)
            more = "" if result.exact else "at least "
            more = state.style(f"… {more}{beyond} more (--limit)", dim=True)
            return views([text, view([more])])
        return text

    def _with_shown_copies(runs: list[Any]) -> list[Any]:
        """Runs in conflict: the copy show displays (the verified one, if any) in the
        table, and a warning each — never one copy silently."""
        from git_prov.query.located import conflicted

        found = conflicted(index_of["index"], [r.id for r in runs])
        for run in found.values():
            conflict = run.conflict
            assert conflict is not None
            echo(
                f"warning: run {run.record.short_id} is in conflict: {conflict.summary()} "
                f"(git prov show {run.record.short_id})",
                err=True,
            )
        return [_as_found(r, found[r.id].record) if r.id in found else r for r in runs]

    index_of: dict[str, Any] = {}

    def answer_with(index: Any) -> Any:
        index_of["index"] = index
        return answer(index)

    text = with_index(paths, answer_with)
    if not text and not (as_json or as_csv or template):
        echo("no runs match", err=True)
    from git_prov.model.record import printable

    for hint in hints:  # names come from records: through the one escaping path
        echo(f"hint: {printable(hint)}", err=True)
    if not text and not (as_json or as_csv or template):
        return 0
    if as_csv and isatty(sys.stdout):
        echo(csv_view(text), nl=False, data=True)
    elif as_json or as_csv or template is not None:
        echo(text, nl=False, data=True)
    else:
        _page(state, text)
    return 0


def _stream_csv(index: Any, rows: list[int]) -> str:
    """Write find --csv of the runs of index ``rows`` part by part (the columns are known
    once every record was read: they are kept compact in a spool meanwhile); returns ''."""
    from git_prov.query.find_json import records_of_rows
    from git_prov.query.render import runs_csv

    params: set[str] = set()
    metrics: set[str] = set()

    def compact(record: dict[str, Any]) -> str:
        params.update(record.get("params") or ())
        metrics.update(record.get("metrics") or ())
        return json.dumps(record, separators=(",", ":"))

    header = True
    lines = records_of_rows(index, rows, compact)
    batch: list[dict[str, Any]] = []
    columns = (sorted(params), sorted(metrics))
    for line in lines:
        if header and not batch:
            columns = (sorted(params), sorted(metrics))  # every record is read by now
        batch.append(json.loads(line))
        if len(batch) == 1024:
            echo(runs_csv(batch, columns=columns, header=header), nl=False, data=True)
            header, batch = False, []
    if batch or header:
        echo(runs_csv(batch, columns=columns, header=header), nl=False, data=True)
    return ""


def _find_query(paths: Any, **given: Any) -> Any:
    """The FindQuery of find's selection options (compare takes the same ones)."""
    from git_prov.query import find as finding

    return finding.FindQuery(
        revisions=tuple(given["revisions"]),
        branch=given["branch"],
        data=tuple(c for d in given["data"] for c in finding.data_candidates(paths, d)),
        data_hashes=tuple(given["data_hashes"]),
        envs=tuple(given["envs"]),
        packages=tuple(given["packages"]),
        params=tuple(finding.Condition.parse_param(item) for item in given["params"]),
        where=tuple(finding.Condition.parse(w) for w in given["where"]),
        statuses=tuple(given["statuses"]),
        since=finding.parse_when(given["since"], option="--since") if given["since"] else None,
        until=finding.parse_when(given["until"], option="--until") if given["until"] else None,
        hosts=tuple(given["hosts"]),
        users=tuple(given["users"]),
        tags=tuple(given["tags"]),
        sort=given["sort"],
        limit=given["limit"],
    )


def _as_found(row: Any, record: Any) -> Any:
    """An index row with the fields of ``record`` (another copy of the same run)."""
    return row._replace(
        commit=record.commit,
        started=record.started,
        duration=record.duration,
        status=record.status,
        exit_code=record.exit_code,
        command=record.command,
        params_json=json.dumps(dict(record.params)),
        metrics_json=json.dumps(dict(record.metrics)),
        tags_json=json.dumps(list(record.tags)),
    )


def _formatted(index: Any, runs: list[Any], template: str, fields: set[str]) -> str:
    from git_prov.query.render import INDEX_FIELDS, format_found, format_run, run_fields

    try:
        if fields <= INDEX_FIELDS.keys():
            lines = format_found(template, runs, fields)
        else:
            records = index.record_jsons([r.id for r in runs])
            shown = index.shown_on([r.id for r in runs]) if "shown_on" in fields else {}
            lines = []
            for run in runs:
                data = run_fields(records.get(run.id, {}))
                if shown:
                    data["shown_on"] = ",".join(shown.get(run.id, []))
                lines.append(format_run(template, data))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise UsageProblem(f"bad --format template: {exc}") from None
    if isatty(sys.stdout):
        return view(lines)  # on a terminal a field's newline must not start a line
    return "".join(line + "\n" for line in lines)


cli.add_command(
    click.Command(
        name="runs",
        context_settings=CONTEXT,
        callback=find_command.callback,
        params=find_command.params,
        help="Same as git prov find.",
        short_help="Same as find.",
    )
)


# ---- compare ----------------------------------------------------------------------------------

# find's options that select runs: compare takes the very same ones (one definition).
_SELECTING = (
    "branch", "data", "data_hashes", "envs", "packages", "params", "where", "statuses",
    "since", "until", "hosts", "users", "tags", "sort", "limit",
)  # fmt: skip


@cli.command(name="compare", context_settings=CONTEXT)
@click.argument("specs", nargs=-1, metavar="[RUN|REVISION]...", shell_complete=complete_run)
@click.option(
    "--maximize",
    multiple=True,
    metavar="METRIC",
    help="Best is the highest value of METRIC (repeatable).",
)
@click.option(
    "--minimize",
    multiple=True,
    metavar="METRIC",
    help="Best is the lowest value of METRIC (repeatable).",
)
@_JSON
@click.option("--csv", "as_csv", is_flag=True, help="CSV: the differing params and the metrics.")
@click.pass_obj
def compare_command(
    state: State,
    /,
    specs: tuple[str, ...],
    maximize: tuple[str, ...],
    minimize: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
    **selection: Any,
) -> int:
    """Compare runs side by side: the params that differ between them (the ones all share
    are listed once above the table), every metric, and the best value of each metric
    marked with *.

    Name runs (ids, short ids, prefixes), or select them as find does (--tag, --where,
    --status, …, and REVISIONS such as main~5..main); both together compare the runs
    named and those selected. An argument that names a run is a run, otherwise a revision.

    Best is decided per metric, among runs that ended ok: --maximize/--minimize say which
    way is better; otherwise a name containing a word such as loss, error, mse, rmse,
    perplexity is lower-is-better, and acc, accuracy, f1, auc, precision, recall, r2,
    bleu, iou higher-is-better (docs/cli.md lists them). Any other metric gets no mark.

    \b
    Examples:
      git prov compare 3f2a9c1d 8be04a11 c0ffee12
      git prov compare --tag sweep:20261203-0512-ab12 --maximize acc
      git prov compare main~5..main --status ok --csv
    """
    from git_prov.query import comparison, located
    from git_prov.query import find as finding
    from git_prov.query.index import RepoPaths, with_index
    from git_prov.query.render import compare_csv, compare_text

    if as_json and as_csv:
        raise UsageProblem("choose one of --json and --csv")
    paths = RepoPaths.discover()
    defaults = {"sort": "-started", "limit": None}
    selecting = any(
        bool(v) if k not in defaults else v != defaults[k] for k, v in selection.items()
    )

    def answer(index: Any) -> Any:
        _report_problems(index.problems())
        named: dict[str, Any] = {}
        revisions: list[str] = []
        for spec in specs:
            try:
                run = located.resolve(index, spec)
            except NotFound as not_a_run:
                if not _is_revision(paths, spec):
                    raise not_a_run from None
                revisions.append(spec)
                continue
            named.setdefault(run.record.id, comparison.from_record(run.record))
        if not named and not revisions and not selecting:
            raise UsageProblem(
                "name the runs to compare, or select them",
                "git prov compare RUN RUN…, or --tag TAG, --where COND, REVISIONS (as find)",
            )
        runs = list(named.values())
        if revisions or selecting:
            query = _find_query(paths, revisions=tuple(revisions), **selection)
            found = finding.find_runs(index, query)
            runs += [comparison.from_found(r) for r in found.runs if r.id not in named]
        return runs

    runs = with_index(paths, answer)
    result = comparison.compare_runs(runs, maximize=maximize, minimize=minimize)
    if as_json:
        _emit_json(result.to_json())
    elif as_csv:
        text = compare_csv(result)
        echo(csv_view(text) if isatty(sys.stdout) else text, nl=False, data=True)
    elif not runs:
        echo("no runs match", err=True)
    else:
        _page(state, compare_text(result, style=state.style))
    return 0


compare_command.params[1:1] = [p for p in find_command.params if p.name in _SELECTING]


def _is_revision(paths: Any, spec: str) -> bool:
    """Whether ``spec`` names commits: a range, an exclusion, or what git rev-parse takes."""
    from git_prov.store.gitcli import run_git

    if ".." in spec or spec.startswith("^"):
        return True  # find's rev-list says precisely what is wrong with a bad one
    if spec.startswith("-"):
        return False
    proc = run_git(
        paths.cwd, ["rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], check=False
    )
    return proc.returncode == 0


# ---- env ----------------------------------------------------------------------------------------


@cli.group(name="env", context_settings=CONTEXT)
def env_group() -> None:
    """Environments runs used: show them and give them names (tags) shared through sync.

    An environment is named by its id (the first 10 hex digits are enough), by a tag,
    or by a run that ran in it.
    """


@env_group.command(name="tag", context_settings=CONTEXT)
@click.argument("name")
@click.argument("target", metavar="RUN|ENV", required=False, shell_complete=complete_run)
@click.option("-f", "--force", is_flag=True, help="Move the tag if it names another environment.")
@click.option("-d", "--delete", is_flag=True, help="Delete the tag.")
@click.pass_obj
def env_tag(state: State, name: str, target: str | None, force: bool, delete: bool) -> int:
    """Name the environment of RUN (or environment ENV) NAME.

    \b
    Examples:
      git prov env tag gpu-box 3f2a9c1d        the environment run 3f2a9c1d ran in
      git prov env tag -f baseline 92ecbf1172  move the tag to another environment
      git prov find --env gpu-box              runs in it
    """
    from git_prov.query import envtags
    from git_prov.store.ledger import Ledger

    ledger = Ledger(_open())
    if delete:
        if target is not None:
            raise UsageProblem("--delete takes only the tag name")
        envtags.delete_tag(ledger, name)
        echo(f"deleted environment tag {name}")
        return 0
    if target is None:
        raise UsageProblem("name the run or environment to tag", "git prov env tag NAME RUN|ENV")
    env, _ = envtags.resolve_environment(ledger, target)
    ledger.env_manifest(env)  # the manifest must be here: a tag must not dangle
    _, changed = envtags.set_tag(ledger, name, env, force=force)
    verb = "tagged" if changed else "already tagged"
    echo(f"{verb} environment {env[:10]} as {name}")
    return 0


@env_group.command(name="tags", context_settings=CONTEXT)
@_JSON
@click.option("--all", "show_all", is_flag=True, help="Include deleted tags.")
@click.pass_obj
def env_tags(state: State, as_json: bool, show_all: bool) -> int:
    """List environment tags: name, environment, when and by whom they were set."""
    from git_prov.query import envtags
    from git_prov.store.ledger import Ledger

    ledger = Ledger(_open())
    tags = sorted(envtags.current_tags(ledger).values(), key=lambda t: t.name)
    if not show_all:
        tags = [t for t in tags if not t.deleted]
    if as_json:
        _emit_json(
            [
                {
                    "name": t.name,
                    "env": t.env,
                    "at": t.at,
                    "by": t.by,
                    "entry": t.entry,
                    "history": t.history,
                    "diverged": [{"env": e.env, "at": e.at, "by": e.by} for e in t.diverged],
                }
                for t in tags
            ]
        )
        return 0
    if not tags:
        echo("no environment tags (add one with git prov env tag NAME RUN)", err=True)
        return 0
    width = max(len(t.name) for t in tags)
    for t in tags:
        env = (t.env or "(deleted)")[:10]
        label = state.style(t.name.ljust(width), fg="yellow")  # (echo: one line each)
        echo(f"{label}  {env:<10}  {t.at[:16]}  {t.by}")
        for other in t.diverged:
            echo(
                f"warning: tag {t.name} was also set to {(other.env or 'deleted')[:10]} "
                f"by {other.by} at {other.at[:16]} (moved on two machines; the latest wins "
                f"— set it again to settle)",
                err=True,
            )
    return 0


@env_group.command(name="show", context_settings=CONTEXT)
@click.argument("spec", metavar="ENV|TAG|RUN")
@_JSON
@click.pass_obj
def env_show(state: State, spec: str, as_json: bool) -> int:
    """Show an environment: interpreter, packages, system, hardware, variables."""
    from git_prov import render
    from git_prov.query import envtags
    from git_prov.query.render import env_text
    from git_prov.store.ledger import Ledger

    ledger = Ledger(_open())
    env_id, _ = envtags.resolve_environment(ledger, spec)
    manifest = ledger.env_manifest(env_id)
    names = sorted(t.name for t in envtags.current_tags(ledger).values() if t.env == env_id)
    if as_json:
        doc = render.env_json(manifest)
        doc["id"] = env_id
        doc["tags"] = names
        _emit_json(doc)
        return 0
    _page(state, env_text(env_id, manifest, names, style=state.style))
    return 0


# ---- diff, check, lineage ------------------------------------------------------------------


@cli.command(name="diff", context_settings=CONTEXT)
@click.argument("run_a", metavar="RUN_A", shell_complete=complete_run)
@click.argument("run_b", metavar="RUN_B", shell_complete=complete_run)
@click.option("--patch", "-p", is_flag=True, help="Show the full source patch, not just --stat.")
@_JSON
@click.pass_obj
def diff_command(state: State, run_a: str, run_b: str, patch: bool, as_json: bool) -> int:
    """Show what changed from RUN_A to RUN_B: source, data, environment, params, metrics.

    Source is compared between the exact code each run ran (its snapshot when the
    working tree was dirty); data file by file (sizes and hashes); the environment
    package by package and fact by fact; metrics with absolute and relative deltas.
    """
    from git_prov.query.compare import diff_runs
    from git_prov.query.render import diff_text

    # git is asked for no colour: its codes could not be told apart from escape codes
    # in the files it shows; diff_text colours the patch itself.
    result = diff_runs(_open(), run_a, run_b, patch=patch)
    if as_json:
        _emit_json(result.to_json())
        return 0
    _page(state, diff_text(result, style=state.style))
    return 0


@cli.command(name="check", context_settings=CONTEXT)
@click.argument("run", metavar="[RUN]", required=False, shell_complete=complete_run)
@click.option("--no-code", is_flag=True, help="Do not compare the source code.")
@click.option("--no-data", is_flag=True, help="Do not re-hash the inputs.")
@click.option("--no-env", is_flag=True, help="Do not compare the environment.")
@click.option(
    "--python",
    metavar="PATH",
    help="The interpreter to inspect (default: the run's, if it still exists).",
)
@_JSON
@click.pass_obj
def check_command(
    state: State,
    run: str | None,
    no_code: bool,
    no_data: bool,
    no_env: bool,
    python: str | None,
    as_json: bool,
) -> int:
    """Check whether anything RUN depended on has changed since (default: the latest run
    on HEAD): its code, its inputs (re-hashed now) and its environment.

    Exits 0 when nothing drifted and 1 when something did, so it can guard a script:
    git prov check && echo "results still valid".
    """
    from git_prov.cli import _progress
    from git_prov.query.drift import check_run
    from git_prov.query.render import check_text

    result = check_run(
        _open(),
        run,
        code=not no_code,
        data=not no_data,
        environment=not no_env,
        python=python,
        progress=_progress(),
    )
    if as_json:
        _emit_json(result.to_json())
    else:
        echo(check_text(result, style=state.style), nl=False)
    return _exit_for(result.drifted)


@cli.command(name="lineage", context_settings=CONTEXT)
@click.argument("target", metavar="PATH|RUN")
@_JSON
@click.option("--dot", "as_dot", is_flag=True, help="Graphviz DOT (pipe into dot -Tsvg).")
@click.option("--mermaid", "as_mermaid", is_flag=True, help="A Mermaid flowchart.")
@click.option(
    "--depth", type=click.IntRange(min=1), default=64, show_default=True, help="Levels to follow."
)
@click.pass_obj
def lineage_command(
    state: State, target: str, as_json: bool, as_dot: bool, as_mermaid: bool, depth: int
) -> int:
    """Show which run produced PATH (or what RUN was made from), from which inputs, which
    runs produced those, back to raw data.

    A run produced a file when one of its outputs had exactly the file's content; when
    several did, the latest is followed and the others listed.
    """
    from git_prov.query import lineage
    from git_prov.query.index import RepoPaths

    if sum((as_json, as_dot, as_mermaid)) > 1:
        raise UsageProblem("choose one of --json, --dot and --mermaid")
    result = lineage.open_lineage(RepoPaths.discover(), target, max_depth=depth)
    if as_json:
        _emit_json(result.to_json())
    elif as_dot:
        echo(lineage.to_dot(result), nl=False, data=True)
    elif as_mermaid:
        echo(lineage.to_mermaid(result), nl=False, data=True)
    else:
        _page(state, lineage.to_text(result, style=state.style))
    return 0


def _exit_for(found: bool) -> int:
    return EXIT_FINDING if found else 0

"""``git prov find``: select runs by code, data, environment, params, metrics and more.

Filters of different kinds are ANDed. Repeating a *selector* (``--status``, ``--host``,
``--user``, ``--tag``, ``--env``, ``--data``, ``--data-hash``) widens it (any of the values,
as ``git log --author`` does); repeating a *condition* (``--param``, ``--where``,
``--package``) narrows (all of them must hold). A condition on a value a run does not have
is false for that run (``--where 'acc!=1'`` does not list runs without ``acc``).

Everything is answered from the query index (:mod:`git_prov.query.index`), in SQL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from git_prov.errors import NotFound, UsageProblem
from git_prov.model.history import SUMMARY_FIELDS
from git_prov.model.ids import short_run_id
from git_prov.model.values import Scalar, as_number, parse_scalar
from git_prov.model.when import parse_time
from git_prov.query.index import RepoPaths, RunIndex, package_key

OPERATORS = (">=", "<=", "==", "!=", ">", "<", "=")
_CONDITION_RE = re.compile(r"^\s*([^<>=!\s][^<>=!]*?)\s*(>=|<=|==|!=|>|<|=)\s*(.*?)\s*\Z")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{4,64}\Z")
# Sort keys that are columns of the index (anything else is a metric or param name).
SORT_COLUMNS = {
    "started": "started",
    "duration": "duration",
    "status": "status",
    "exit_code": "exit_code",
    "id": "run",
    "commit": "commit_id",
    "command": "command",
    "host": "host",
    "user": "user_name",
    "branch": "branch",
}
REL_TOLERANCE = 1e-9  # == on numbers: 0.1 + 0.2 == 0.3
# A page (``-n``) of a filtered query counts the runs that match beyond it among at most
# this many rows of the index: the count of a bigger ledger is a lower bound ("at least"),
# so a page costs what it shows, not a pass over every run.
COUNT_SCAN = 10_000


@dataclass(frozen=True)
class Condition:
    """``key op value`` on a metric or param (``acc>0.9``, ``model==resnet``).

    ``key`` may name its section: ``metrics.acc``, ``params.lr``; a bare name is looked up
    in metrics first, then in params.
    """

    key: str
    op: str
    value: Scalar
    section: str | None = None  # "metrics", "params" or None (metrics, then params)

    @classmethod
    def parse(cls, text: str, section: str | None = None, option: str = "--where") -> Condition:
        """Read ``acc>0.9``; raise :class:`UsageProblem` when it is not a condition.

        One operator only: ``acc>>0.9`` or ``acc => 0.9`` is a typo, not a comparison with
        the text ``>0.9``; a value that really starts with ``<``, ``>``, ``=`` or ``!`` is
        written quoted (``name=='=x'``)."""
        match = _CONDITION_RE.match(text)
        if not match or not match.group(3):
            raise UsageProblem(
                f"{option} {text!r} is not a condition",
                "write NAME OP VALUE with OP one of > >= < <= == != (e.g. 'acc>0.9')",
            )
        key, op, raw = match.groups()
        if raw[0] in "<>=!":
            raise UsageProblem(
                f"{option} {text!r}: {raw!r} after {op!r} is not a value (two operators?)",
                "use one operator: > >= < <= == != (e.g. 'acc>0.9'); "
                "quote a value that starts with one ('name=='=x'')",
            )
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            value: Scalar = raw[1:-1]  # quoted: the text as is, never a number
        else:
            value = parse_scalar(raw)
        if op == "=":
            op = "=="
        if section is None:
            for prefix in ("metrics.", "params."):
                if key.startswith(prefix) and len(key) > len(prefix):
                    section, key = prefix[:-1], key[len(prefix) :]
                    break
        if '"' in key:
            raise UsageProblem(f"{key!r}: names with a double quote cannot be queried")
        return cls(key, op, value, section)

    @classmethod
    def parse_param(cls, text: str) -> Condition:
        """Read ``--param NAME=VALUE`` (``==`` is the same); other operators belong in
        ``--where``."""
        condition = cls.parse(text, "params", option="--param")
        if condition.op != "==":
            raise UsageProblem(
                f"--param {text!r}: only = compares a param",
                f"use --where 'params.{condition.key}{condition.op}…' for other comparisons",
            )
        return condition

    @property
    def number(self) -> float | None:
        """The value as a number, when it is one (then the comparison is numeric)."""
        return as_number(self.value)


@dataclass(frozen=True)
class FindQuery:
    """What ``git prov find`` selects; every field is optional."""

    revisions: tuple[str, ...] = ()  # commits of `git rev-list REVISIONS` (a range, a branch)
    branch: str | None = None  # commits reachable from this
    data: tuple[str, ...] = ()  # repo-relative paths or directory prefixes read or written
    data_hashes: tuple[str, ...] = ()  # "sha256:…", a hex prefix, or a data manifest id
    envs: tuple[str, ...] = ()  # environment id prefixes or tags
    packages: tuple[str, ...] = ()  # "torch", "torch==2.4.*", "numpy!=1.*"
    params: tuple[Condition, ...] = ()
    where: tuple[Condition, ...] = ()
    statuses: tuple[str, ...] = ()
    since: str | None = None  # started at or after (record time format, UTC)
    until: str | None = None  # started before
    hosts: tuple[str, ...] = ()  # exact, or fnmatch patterns
    users: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sort: str = "-started"
    limit: int | None = None


class FoundRun(NamedTuple):
    """A run as the index holds it: the columns listings need (a tuple: cheap to make for
    100k rows). The full record is :meth:`RunIndex.record_jsons`."""

    id: str
    commit: str
    started: str
    duration: float
    status: str
    exit_code: int | None
    command: str
    host: str | None
    user: str | None
    branch: str | None
    env: str | None
    inputs: str | None
    outputs: str | None
    snapshot: str | None
    params_json: str | None
    metrics_json: str | None
    tags_json: str | None

    @property
    def short_id(self) -> str:
        run_id = self.id
        return run_id[21:] if len(run_id) == 29 else short_run_id(run_id)

    @property
    def params(self) -> dict[str, Scalar]:
        return dict(json.loads(self.params_json)) if self.params_json else {}

    @property
    def metrics(self) -> dict[str, Scalar]:
        return dict(json.loads(self.metrics_json)) if self.metrics_json else {}

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(json.loads(self.tags_json)) if self.tags_json else ()


@dataclass(frozen=True)
class FindResult:
    """The runs found (in the requested order) and how many matched before ``limit``:
    exactly, or (``exact`` False: a filtered page of a ledger of more than
    :data:`COUNT_SCAN` runs) at least ``matched``."""

    runs: list[FoundRun]
    matched: int
    exact: bool = True


# ---- parsing user input ------------------------------------------------------------------


def parse_when(text: str, now: datetime | None = None, option: str = "") -> str:
    """A time typed by a user (:func:`git_prov.model.when.parse_time`: a date or time, local
    unless it says otherwise, ``today``, or an age such as ``3d`` or ``2 days ago``) in the
    UTC form records use (``2026-01-02T03:04:05.000Z``)."""
    moment = parse_time(text, now, option=option)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def data_candidates(paths: RepoPaths, typed: str) -> list[str]:
    """The repo-relative paths a typed ``--data`` path may mean: as given from the root,
    and relative to the current directory."""
    text = typed.replace(os.sep, "/")
    out = []
    if os.path.isabs(typed):
        if paths.workdir is None:
            raise UsageProblem(f"{typed}: an absolute path needs a working tree")
        rel = os.path.relpath(typed, paths.workdir).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../"):
            raise UsageProblem(f"{typed} is outside the repository")
        out.append(rel)
    else:
        out.append(text)
        if paths.prefix:
            out.append(paths.prefix + text)
    cleaned = []
    for candidate in out:
        norm = os.path.normpath(candidate).replace(os.sep, "/")
        norm = "" if norm == "." else norm
        if norm.startswith("../") or norm == "..":
            continue
        cleaned.append(norm)
    return list(dict.fromkeys(cleaned))


def parse_package(spec: str) -> tuple[str, str | None, str | None]:
    """``torch==2.4.*`` → (``torch``, ``==``, ``2.4.*``); ``torch`` → (``torch``, None, None)."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(==|!=|=)\s*(\S+))?\s*$", spec)
    if not match:
        raise UsageProblem(
            f"{spec!r} is not a package spec", "write NAME, NAME==VERSION or NAME==2.4.* (fnmatch)"
        )
    name, op, pattern = match.groups()
    if op == "=":
        op = "=="
    return package_key(name), op, pattern


# ---- the query --------------------------------------------------------------------------


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _summary_path(key: str) -> str | None:
    """The JSON path in the ``series`` column of ``loss.min``-style keys (a metric's
    summary field, docs/format.md "Metric histories"), or None."""
    name, dot, part = key.rpartition(".")
    if dot and name and part in SUMMARY_FIELDS:
        return f'$."{name}"."{part}"'
    return None


def _value_sql(section: str, key: str) -> tuple[str, list[Any], str, list[Any]]:
    """SQL for one metric/param: (numeric value, its bound parameters, raw value, its
    bound parameters). ``section`` is the column (``params`` or ``metrics``), never user
    input. A metric key ``NAME.FIELD`` that no run has as a metric of its own reads the
    summary of metric NAME's history (``loss.min``, ``loss.last``, ``acc.best_step``)."""
    path = f'$."{key}"'
    number = (
        f"(CASE json_type({section}, ?) WHEN 'text' THEN prov_number(json_extract({section}, ?))"
        f" ELSE json_extract({section}, ?) END)"
    )
    raw = f"json_extract({section}, ?)"
    summary = _summary_path(key) if section == "metrics" else None
    if summary is None:
        return number, [path, path, path], raw, [path]
    summary_number = (
        "(CASE json_type(series, ?) WHEN 'text' THEN prov_number(json_extract(series, ?))"
        " ELSE json_extract(series, ?) END)"
    )
    return (
        f"coalesce({number}, {summary_number})",
        [path, path, path, summary, summary, summary],
        f"coalesce({raw}, json_extract(series, ?))",
        [path, summary],
    )


def _metric_present_sql(key: str) -> tuple[str, list[Any]]:
    """SQL true when a run has metric ``key`` (or, for ``NAME.FIELD``, that summary)."""
    summary = _summary_path(key)
    if summary is None:
        return "json_type(metrics, ?) IS NOT NULL", [f'$."{key}"']
    return "(json_type(metrics, ?) IS NOT NULL OR json_type(series, ?) IS NOT NULL)", [
        f'$."{key}"',
        summary,
    ]


def _condition_sql(cond: Condition) -> tuple[str, list[Any]]:
    sections = [cond.section] if cond.section else ["metrics", "params"]
    number = cond.number
    parts: list[str] = []
    args: list[Any] = []
    for section in sections:
        num_sql, num_args, raw_sql, raw_args = _value_sql(section, cond.key)
        if number is not None and cond.op in ("==", "!="):
            close = f"({num_sql} = ? OR abs({num_sql} - ?) <= ? * max(abs({num_sql}), abs(?)))"
            test = close if cond.op == "==" else f"NOT {close}"
            test = f"({num_sql} IS NOT NULL AND {test})"
            args_here = [*num_args, *num_args, number, *num_args, number, REL_TOLERANCE]
            args_here += [*num_args, number]
        elif number is not None:
            test = f"({num_sql} {cond.op} ?)"
            args_here = [*num_args, number]
        else:
            op = "=" if cond.op == "==" else cond.op
            test = f"(CAST({raw_sql} AS TEXT) {op} ?)"
            args_here = [*raw_args, str(cond.value)]
        parts.append(test)
        args.append(args_here)
    if len(parts) == 1:
        return parts[0], args[0]
    # Metrics first: the param is used only when the run has no metric of that name.
    present, present_args = _metric_present_sql(cond.key)
    sql = f"(CASE WHEN {present} THEN {parts[0]} ELSE {parts[1]} END)"
    return sql, [*present_args, *args[0], *args[1]]


def _sort_sql(sort: str) -> tuple[str, list[Any]]:
    descending = sort.startswith("-")
    name = sort.lstrip("-+").strip()
    if not name:
        raise UsageProblem("--sort needs a field name", "e.g. --sort started or --sort -acc")
    direction = "DESC" if descending else "ASC"
    if name in SORT_COLUMNS:
        column = SORT_COLUMNS[name]
        return f"{column} {direction}, run {direction}", []
    section = None
    for prefix in ("metrics.", "params."):
        if name.startswith(prefix):
            section, name = prefix[:-1], name[len(prefix) :]
    if '"' in name:
        raise UsageProblem(f"{name!r}: names with a double quote cannot be sorted on")
    path = f'$."{name}"'
    summary = _summary_path(name) if section != "params" else None
    metric, metric_args = "json_extract(metrics, ?)", [path]
    if summary is not None:
        metric = "coalesce(json_extract(metrics, ?), json_extract(series, ?))"
        metric_args = [path, summary]
    if section == "params":
        value, args = "json_extract(params, ?)", [path]
    elif section == "metrics":
        value, args = metric, metric_args
    else:
        value = f"coalesce({metric}, json_extract(params, ?))"
        args = [*metric_args, path]
    # Runs without the value last, whichever the direction.
    return (
        f"({value}) IS NULL, ({value}) {direction}, started DESC, run DESC",
        [*args, *args],
    )


def _has_value(index: RunIndex, section: str | None, key: str) -> bool:
    """Whether any live run has the metric or param ``key`` (stops at the first)."""
    path = f'$."{key}"'
    sections = [section] if section else ["metrics", "params"]
    tests: list[str] = []
    args: list[Any] = []
    for name in sections:
        if name == "metrics":
            sql, sql_args = _metric_present_sql(key)
        else:
            sql, sql_args = f"json_type({name}, ?) IS NOT NULL", [path]
        tests.append(sql)
        args += sql_args
    row = index.db.execute(
        f"SELECT 1 FROM lines WHERE live = 1 AND ({' OR '.join(tests)}) LIMIT 1", args
    ).fetchone()
    return row is not None


def value_names(index: RunIndex, section: str | None = None) -> list[str]:
    """The metric and/or param names live runs have, sorted (one pass over the index)."""
    sections = [section] if section else ["metrics", "params"]
    names: set[str] = set()
    for name in sections:
        names.update(
            key
            for (key,) in index.db.execute(
                f"SELECT DISTINCT j.key FROM lines, json_each(lines.{name}) j"
                f" WHERE lines.live = 1 AND lines.{name} IS NOT NULL"
            )
        )
    return sorted(names)


def _what(section: str | None) -> str:
    return {"metrics": "metric", "params": "param"}.get(section or "", "metric or param")


def _listed(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … ({len(names) - limit} more)" if len(names) > limit else "")


def unknown_name_hints(index: RunIndex, query: FindQuery) -> list[str]:
    """For each ``--where``/``--param`` name no run has (a typo, most likely), one line
    naming it and listing the names runs do have."""
    hints: list[str] = []
    conditions = [*query.params, *query.where]
    for cond in dict.fromkeys((c.section, c.key) for c in conditions):
        section, key = cond
        if _has_value(index, section, key):
            continue
        names = value_names(index, section)
        known = f"; names runs have: {_listed(names)}" if names else ""
        hints.append(f"no run has a {_what(section)} {key!r}{known}")
    return hints


def _check_sort(index: RunIndex, sort: str) -> None:
    """An unknown ``--sort`` key would leave the output unsorted: a usage error listing
    what can be sorted on (only when some run exists, so an empty ledger is no error)."""
    name = sort.lstrip("-+").strip()
    if not name or name in SORT_COLUMNS:
        return
    section = None
    for prefix in ("metrics.", "params."):
        if name.startswith(prefix) and len(name) > len(prefix):
            section, name = prefix[:-1], name[len(prefix) :]
    if '"' in name or _has_value(index, section, name):
        return
    if index.db.execute("SELECT 1 FROM lines WHERE live = 1 LIMIT 1").fetchone() is None:
        return
    names = value_names(index, section)
    raise UsageProblem(
        f"--sort {sort!r}: no run has a {_what(section)} {name!r}",
        f"sort on {', '.join(SORT_COLUMNS)}"
        + (f", or a {_what(section)}: {_listed(names)}" if names else ""),
    )


def resolve_env(index: RunIndex, spec: str) -> tuple[list[str], list[tuple[str, str]]]:
    """An ``--env`` value as exact ids (a tag) and id-prefix ranges; NotFound if neither."""
    tags = index.env_tags()
    if spec in tags:
        env, _ = tags[spec]
        if env is None:
            raise NotFound(f"environment tag {spec!r} was deleted", "see git prov env tags")
        return [env], []
    if _HEX_PREFIX.match(spec.lower()):
        return [], [_prefix_range(spec.lower())]
    raise NotFound(
        f"no environment tag {spec!r}", "list tags with git prov env tags, or give an env id"
    )


def rev_list(paths: RepoPaths, revisions: Sequence[str]) -> list[str]:
    """The commits ``git rev-list REVISIONS`` names; UsageProblem for a bad revision."""
    from git_prov.store.gitcli import run_git

    for rev in revisions:
        if rev.startswith("-") and rev not in ("--all", "--branches", "--tags", "--remotes"):
            raise UsageProblem(
                f"unsupported revision option {rev!r}",
                "give revisions or ranges such as main~10..main, or --branch NAME",
            )
    proc = run_git(paths.cwd, ["rev-list", *revisions, "--"], check=False)
    if proc.returncode != 0:
        from git_prov.store.gitcli import bad_revision

        raise bad_revision(paths.cwd, revisions, proc.stderr)
    return proc.stdout.decode().split()


# FoundRun fields → index columns.
COLUMNS = {
    "id": "run",
    "commit": "commit_id",
    "started": "started",
    "duration": "duration",
    "status": "status",
    "exit_code": "exit_code",
    "command": "command",
    "host": "host",
    "user": "user_name",
    "branch": "branch",
    "env": "env",
    "inputs": "inputs",
    "outputs": "outputs",
    "snapshot": "snapshot",
    "params_json": "params",
    "metrics_json": "metrics",
    "tags_json": "tags",
}


def find_runs(
    index: RunIndex, query: FindQuery, fields: Collection[str] | None = None
) -> FindResult:
    """The runs of the index that ``query`` selects, sorted, at most ``query.limit``.

    ``fields`` names the :class:`FoundRun` fields to read (default: all; the others are
    None) — reading 100k rows costs mostly the values converted to Python.
    """
    db = index.db
    selection = _selection(index, query)
    where, every = selection.where, selection.args
    wanted = set(COLUMNS) if fields is None else {"id", *fields}
    columns = ", ".join(c if f in wanted else "NULL" for f, c in COLUMNS.items())
    sql = f"SELECT {columns} FROM lines WHERE {where} ORDER BY {selection.order}"
    limit_args: list[Any] = []
    if query.limit is not None:
        sql += " LIMIT ?"  # one more than asked: whether there are more, without a count
        limit_args.append(query.limit + 1)
    # (Straight from the cursor: a list of the plain rows too would double the memory.)
    found = list(map(FoundRun._make, db.execute(sql, [*every, *selection.order_args, *limit_args])))
    if query.limit is None or len(found) <= query.limit:
        return FindResult(found, len(found))
    del found[query.limit :]
    if not selection.filtered:  # (the index of start times counts them)
        count = db.execute(f"SELECT count(*) FROM lines WHERE {where}", every).fetchone()[0]
        return FindResult(found, int(count))
    # The others are counted among the first COUNT_SCAN rows of the index (in table order:
    # neighbouring rows, read in a few pages) — all of them, on a small ledger.
    scanned, hits = db.execute(
        f"SELECT count(*), total(CASE WHEN {where} THEN 1 ELSE 0 END) FROM lines"
        " WHERE id IN (SELECT id FROM lines ORDER BY id LIMIT ?)",
        [*every, COUNT_SCAN],
    ).fetchone()
    if scanned < COUNT_SCAN:  # every row was looked at: the exact count
        return FindResult(found, int(hits))
    # (Those counted and those found are both runs that match: at least the more of them.)
    return FindResult(found, max(int(hits), query.limit + 1), exact=False)


def found_ids(index: RunIndex, query: FindQuery) -> list[str]:
    """The ids of :func:`find_runs`' runs, in its order."""
    return [run for (run,) in index.db.execute(*_found_sql(index, query, "run"))]


def found_rows(index: RunIndex, query: FindQuery) -> list[int]:
    """The index rows of :func:`find_runs`' runs (their ``lines.id``), in its order: all
    that ``find --json`` and ``--csv`` need of 100k rows, which cost a tenth of them."""
    return [row for (row,) in index.db.execute(*_found_sql(index, query, "id"))]


def _found_sql(index: RunIndex, query: FindQuery, column: str) -> tuple[str, list[Any]]:
    selection = _selection(index, query)
    sql = f"SELECT {column} FROM lines WHERE {selection.where} ORDER BY {selection.order}"
    args = [*selection.args, *selection.order_args]
    if query.limit is not None:
        sql += " LIMIT ?"
        args.append(query.limit)
    return sql, args


@dataclass(frozen=True)
class _Selection:
    """The SQL of a query's selection: the ``where`` clause of the rows (with ``args``),
    the ``order`` (with ``order_args``), and whether it tests more than live rows' start
    times (``filtered``: a count of the matches beyond a page is then not cheap)."""

    where: str
    args: list[Any]
    order: str
    order_args: list[Any]
    filtered: bool


def _selection(index: RunIndex, query: FindQuery) -> _Selection:
    """:class:`_Selection` of ``query`` (temporary tables it needs are filled)."""
    # ``ranged``: what the index of start times answers (a count of it is cheap); the
    # other clauses test runs one by one.
    ranged: list[str] = ["live = 1"]
    ranged_args: list[Any] = []
    clauses: list[str] = []
    args: list[Any] = []
    db = index.db
    _check_sort(index, query.sort)

    def any_of(parts: list[str], part_args: list[Any]) -> None:
        clauses.append("(" + " OR ".join(parts) + ")")
        args.extend(part_args)

    if query.statuses:
        any_of(["status = ?"] * len(query.statuses), list(query.statuses))
    if query.since:
        ranged.append("started >= ?")
        ranged_args.append(query.since)
    if query.until:
        ranged.append("started < ?")
        ranged_args.append(query.until)
    if query.hosts:
        any_of(
            [
                "prov_glob(?, host)" if any(c in h for c in "*?[") else "host = ?"
                for h in query.hosts
            ],
            list(query.hosts),
        )
    if query.users:
        any_of(["user_name = ?"] * len(query.users), list(query.users))
    if query.tags:
        marks = ",".join("?" * len(query.tags))
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(tags) WHERE value IN ({marks}))")
        args.extend(query.tags)
    if query.envs:
        parts, part_args = [], []
        for spec in query.envs:
            exact, ranges = resolve_env(index, spec)
            for env in exact:
                parts.append("env = ?")
                part_args.append(env)
            for low, high in ranges:
                parts.append("(env >= ? AND env < ?)")
                part_args += [low, high]
        any_of(parts, part_args)
    if query.packages:
        index.ensure_env_manifests()
        for spec in query.packages:
            name, op, pattern = parse_package(spec)
            sub = "SELECT env FROM packages WHERE name = ?"
            sub_args: list[Any] = [name]
            if op is not None:
                sub += " AND " + ("" if op == "==" else "NOT ") + "prov_glob(?, version)"
                sub_args.append(pattern)
            clauses.append(f"env IN ({sub})")
            args.extend(sub_args)
    if query.data or query.data_hashes:
        index.ensure_data_manifests()
        index.need("lines_inputs", "lines_outputs")
    if query.data:
        parts, part_args = [], []
        for path in query.data:
            if path:
                low, high = path + "/", path + "0"  # "0" sorts right after "/"
                cond = "(path = ? OR (path > ? AND path < ?))"
                manifests = f"SELECT manifest FROM files WHERE {cond}"
                parts.append(f"(inputs IN ({manifests}) OR outputs IN ({manifests}))")
                part_args += [path, low, high] * 2
            else:
                parts.append("(inputs IS NOT NULL OR outputs IS NOT NULL)")
        any_of(parts, part_args)
    if query.data_hashes:
        parts, part_args = [], []
        for spec in query.data_hashes:
            text = spec.strip().lower()
            if ":" in text:
                low, high = _prefix_range(text)
                manifests = "SELECT manifest FROM files WHERE hash >= ? AND hash < ?"
                parts.append(f"(inputs IN ({manifests}) OR outputs IN ({manifests}))")
                part_args += [low, high, low, high]
            elif _HEX_PREFIX.match(text):
                low, high = _prefix_range(text)
                manifests = "SELECT manifest FROM files WHERE digest >= ? AND digest < ?"
                parts.append(
                    f"(inputs IN ({manifests}) OR outputs IN ({manifests})"
                    " OR (inputs >= ? AND inputs < ?) OR (outputs >= ? AND outputs < ?))"
                )
                part_args += [low, high] * 4
            else:
                raise UsageProblem(
                    f"--data-hash {spec!r} is neither a hash nor a hex prefix",
                    "give sha256:HEX, git:HEX, at least 4 hex digits, or a data manifest id",
                )
        any_of(parts, part_args)
    conditions = [Condition(c.key, c.op, c.value, "params") for c in query.params]
    for condition in [*conditions, *query.where]:
        sql, cond_args = _condition_sql(condition)
        clauses.append(sql)
        args.extend(cond_args)
    revisions = list(query.revisions)
    if query.branch:
        revisions.append(query.branch)
    if revisions:
        commits = rev_list(index.paths, revisions)
        db.execute("CREATE TEMP TABLE IF NOT EXISTS commits (c TEXT PRIMARY KEY)")
        db.execute("DELETE FROM temp.commits")
        db.executemany("INSERT OR IGNORE INTO temp.commits VALUES (?)", ((c,) for c in commits))
        clauses.append(
            "(commit_id IN temp.commits OR EXISTS (SELECT 1 FROM lines shown"
            " WHERE shown.run = lines.run AND shown.kind IN (0, 1)"
            " AND shown.note IN temp.commits))"
        )
    order, order_args = _sort_sql(query.sort)
    where = " AND ".join([*ranged, *clauses])
    return _Selection(where, [*ranged_args, *args], order, order_args, bool(clauses))


def find(paths: RepoPaths, query: FindQuery) -> tuple[FindResult, list[Any], Any]:
    """Open (and refresh) the index and run ``query``: (result, ledger problems, stats)."""
    from git_prov.query.index import with_index

    def use(index: RunIndex) -> tuple[FindResult, list[Any], Any]:
        result = find_runs(index, query)
        return result, index.problems(), index.stats

    answer: tuple[FindResult, list[Any], Any] = with_index(paths, use)
    return answer

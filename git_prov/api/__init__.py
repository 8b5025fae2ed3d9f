"""The Python API: record runs from inside a program or notebook, and read them back.

::

    import git_prov

    with git_prov.run(inputs=["data/train.csv"], outputs=["model.pt"], params=cfg) as run:
        model = train(cfg)
        run.log_metric("acc", evaluate(model))

    for r in git_prov.Ledger(".").runs(status="ok", tag="baseline"):
        print(r.short_id, r.metrics, r.inputs_manifest())

A ``with git_prov.run(…)`` block captures the code, the declared inputs and the
environment when it starts (as ``git prov run`` does before the command) and writes the
record when it ends: status ``ok``, or ``failed`` when the block raises — the exception
still propagates, and its type, message and traceback are kept (redacted) as the run's
stderr log. ``git_prov.record(…)`` records a run that happened elsewhere, as
``git prov record`` does. The CLI is a client of the same functions
(:mod:`git_prov.recording`). See ``docs/api.md``.

Here: reading (:class:`Ledger`) and recording after the fact (:func:`record`); a
``with`` block recorded as a run is :mod:`git_prov.api.block`, a recorded run as the API
returns it :mod:`git_prov.api.runs` — both named here as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

# The public names of the API, defined beside: named here as ``git_prov.api`` always did.
from git_prov.api.block import ActiveRun as ActiveRun
from git_prov.api.block import active_run as active_run
from git_prov.api.block import as_keep, checked_values
from git_prov.api.block import log_metric as log_metric
from git_prov.api.block import log_metrics as log_metrics
from git_prov.api.block import run as run
from git_prov.api.runs import RepoLike as RepoLike
from git_prov.api.runs import Run as Run
from git_prov.api.runs import open_repo_like
from git_prov.errors import NotFound
from git_prov.model.record import LineProblem
from git_prov.store.ledger import Ledger as StoreLedger
from git_prov.store.ledger import LocatedRun


class Ledger:
    """Read access to the runs recorded in one repository.

    ``Ledger(path)`` opens the repository containing ``path`` (default: the current
    directory); an open :class:`~git_prov.store.repo.GitRepo` is accepted too.
    """

    def __init__(self, path: RepoLike = "."):
        self.repo = open_repo_like(path)
        self._store = StoreLedger(self.repo)
        self.problems: list[LineProblem] = []

    def runs(
        self,
        commit: str | None = None,
        status: str | Iterable[str] | None = None,
        tag: str | None = None,
    ) -> list[Run]:
        """Recorded runs, oldest first.

        ``commit`` (any revision: ``HEAD``, a branch, an id) keeps the runs shown on that
        commit (including runs carried to it by a rebase or amend); ``status`` keeps runs
        with that status (``ok``, ``failed``, ``killed``, or several); ``tag`` keeps runs
        carrying that tag. Unreadable ledger lines are skipped and listed in
        :attr:`problems`. Deleted (tombstoned) runs are never returned.
        """
        from git_prov import history
        from git_prov.query import located as by_index
        from git_prov.query.index import RepoPaths, RunIndex, with_index

        target: str | None = None
        if commit is not None:
            target = history.resolve_commit(self.repo, commit)
            if target is None:
                raise NotFound(f"{commit!r} does not name a commit", "see `git help revisions`")
        statuses = sorted({status} if isinstance(status, str) else set(status or ()))

        def find(index: RunIndex) -> tuple[list[LocatedRun], list[LineProblem]]:
            if target is not None:
                return by_index.runs_on(index, [target]).get(target, []), index.problems()
            sql, args = "SELECT run FROM lines WHERE live = 1", statuses
            if statuses:
                sql += f" AND status IN ({','.join('?' * len(statuses))})"
            ids = [run for (run,) in index.db.execute(sql, args)]
            return list(by_index.located(index, ids).values()), index.problems()

        # Through the query index: only the lines of the runs returned are read.
        located, self.problems = with_index(RepoPaths.of_repo(self.repo), find)
        return [
            Run._from(self._store, r)
            for r in sorted(located, key=lambda r: r.id)
            if (not statuses or r.record.status in statuses)
            and (tag is None or tag in r.record.tags)
        ]

    def run(self, spec: str) -> Run:
        """One run by id, short id or unique prefix; :class:`~git_prov.errors.NotFound`
        when there is none (or it was deleted)."""
        from git_prov.query.located import find_run

        return Run._from(self._store, find_run(self.repo, spec))  # never a deleted run


def record(
    command: str,
    exit_code: int = 0,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    params_files: Sequence[str] = (),
    metrics_files: Sequence[str] = (),
    tags: Sequence[str] = (),
    message: str | None = None,
    started: datetime | None = None,
    duration: float | None = None,
    repo: RepoLike = ".",
    python: str | None = None,
    sign: bool | None = None,
    keep: Sequence[str] | str = (),
) -> Run:
    """Record a run that happened outside git-prov (``git prov record``): the code is the
    current HEAD (and working tree if dirty), inputs and outputs are hashed as they are
    now. ``started`` defaults to now minus ``duration``; ``keep`` as for :func:`run`."""
    from git_prov import recording

    options = recording.RunOptions(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        params=checked_values(params or {}, "param"),
        metrics=checked_values(metrics or {}, "metric"),
        params_files=tuple(params_files),
        metrics_files=tuple(metrics_files),
        tags=tuple(tags),
        message=message,
        python=python,
        sign=sign,
        keep=as_keep(keep),
    )
    repository = open_repo_like(repo)
    stored = recording.record(
        repository, command, exit_code, options, started=started, duration=duration
    )
    return Run._from(StoreLedger(repository), LocatedRun(stored, (stored.commit,)))


def get(
    run: str,
    paths: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    repo: RepoLike = ".",
) -> list[str]:
    """Write the recorded bytes of run ``run``'s kept data files (``git prov get``): all of
    them, or those at or below ``paths``, below ``output`` (default: the working tree).
    Returns the paths written or found unchanged. Raises as ``git prov get`` fails."""
    from git_prov.kept_data import GetOptions, get_files

    result = get_files(
        open_repo_like(repo),
        run,
        GetOptions(paths=tuple(paths), output=Path(output) if output else None, force=force),
    )
    return [f.target for f in result.files]

"""Optuna: each trial a recorded run — its params the trial's params, its metric the
objective value, tagged with the study (``optuna-study:<name>``) and the trial number.

Two ways, for two situations (docs/integrations.md)::

    from git_prov.integrations.optuna import recorded, RecordTrials

    study.optimize(recorded(objective, metric="loss"), n_trials=50)   # wrap the objective
    study.optimize(objective, n_trials=50, callbacks=[RecordTrials(metric="loss")])

:func:`recorded` records each trial as ``with git_prov.run()`` does: code, declared inputs
and environment captured as the trial starts, outputs as it ends, an exception recorded as
a failed run. :class:`RecordTrials` records each finished trial afterwards, as
``git_prov.record()`` does (the code and data as they are when the trial ended), for
objectives that cannot be wrapped. Optuna itself is imported by neither: they use only the
trial and study objects Optuna passes in, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from git_prov.errors import UsageProblem

STUDY_TAG = "optuna-study:"
TRIAL_TAG = "optuna-trial:"
PRUNED_TAG = "optuna-state:pruned"


def _tags(study: Any, number: int, tags: Sequence[str]) -> tuple[str, ...]:
    return (*tags, STUDY_TAG + str(study.study_name), f"{TRIAL_TAG}{number}")


def _metrics(value: Any, metric: str | Sequence[str]) -> dict[str, Any]:
    """The objective's value(s) as metrics: one name per objective."""
    names = [metric] if isinstance(metric, str) else list(metric)
    values = list(value) if isinstance(value, list | tuple) else [value]
    if len(names) == 1 and len(values) > 1:
        names = [f"{names[0]}_{i}" for i in range(len(values))]
    if len(names) != len(values):
        raise UsageProblem(
            f"the objective returned {len(values)} values for {len(names)} metric names",
            "give one name per objective in metric=",
        )
    return {n: v for n, v in zip(names, values, strict=True) if v is not None}


def recorded(
    objective: Callable[[Any], Any],
    *,
    metric: str | Sequence[str] = "value",
    repo: str = ".",
    tags: Sequence[str] = (),
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    message: str | None = None,
) -> Callable[[Any], Any]:
    """``objective`` wrapped so that each trial is recorded as a run (see the module).

    The run's params are the trial's params (what it suggested) and ``trial.user_attrs``
    are not touched; its metric ``metric`` is the returned value (a sequence of names for
    a multi-objective study; ``value_0``, ``value_1``, … when one name is given). A trial
    that raises is a failed run (the exception still propagates to Optuna); a pruned one
    (``optuna.TrialPruned``) is recorded as ended ok with the tag ``optuna-state:pruned``
    and no objective value, and the exception is re-raised for Optuna.
    """
    import git_prov

    @functools.wraps(objective)
    def trial_run(trial: Any) -> Any:
        pruned: BaseException | None = None
        with git_prov.run(
            repo=repo,
            inputs=inputs,
            outputs=outputs,
            tags=_tags(trial.study, trial.number, tags),
            message=message,
            attach=False,  # each trial its own run, also in a script `git prov run` records
        ) as run:
            try:
                value = objective(trial)
            except BaseException as exc:
                if type(exc).__name__ != "TrialPruned":
                    raise
                pruned = exc
                run.add_tag(PRUNED_TAG)
            finally:
                run.log_params(dict(trial.params))
            if pruned is None:
                run.log_metrics(_metrics(value, metric))
        if pruned is not None:
            raise pruned
        return value

    return trial_run


class RecordTrials:
    """An Optuna callback (``study.optimize(…, callbacks=[RecordTrials()])``) recording
    each finished trial as a run after the fact: params, the objective value(s) as
    ``metric``, the trial's start time and duration, status ok for a complete or pruned
    trial (pruned ones tagged ``optuna-state:pruned``) and failed for a failed one."""

    def __init__(
        self,
        *,
        metric: str | Sequence[str] = "value",
        repo: str = ".",
        tags: Sequence[str] = (),
        command: str | None = None,
    ):
        self.metric = metric
        self.repo = repo
        self.tags = tuple(tags)
        self.command = command
        self.runs: list[Any] = []  # the recorded git_prov.Run of each trial, in order

    def __call__(self, study: Any, trial: Any) -> None:
        import sys

        import git_prov

        state = getattr(trial.state, "name", str(trial.state))
        tags = _tags(study, trial.number, self.tags)
        if state == "PRUNED":
            tags = (*tags, PRUNED_TAG)
        values = trial.values if state == "COMPLETE" else None
        started = trial.datetime_start
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        self.runs.append(
            git_prov.record(
                self.command or " ".join(getattr(sys, "orig_argv", None) or sys.argv),
                0 if state in ("COMPLETE", "PRUNED") else 1,
                params=dict(trial.params),
                metrics=_metrics(values, self.metric) if values is not None else {},
                tags=tags,
                started=started.astimezone(UTC) if started is not None else None,
                duration=duration,
                repo=self.repo,
            )
        )

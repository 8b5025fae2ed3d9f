"""Integrations with tools that run experiments: Optuna (the real package, the
test-optuna extra) and Hydra's composed config (read as params where a run has one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import missing
from test_query_find import cli_run

import git_prov


@pytest.fixture
def here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def test_optuna_each_trial_a_recorded_run(here: Path) -> None:
    optuna = pytest.importorskip("optuna", reason=missing("optuna (the test-optuna extra)"))
    from git_prov.integrations.optuna import RecordTrials, recorded

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: object) -> float:
        x = trial.suggest_float("x", -4.0, 4.0)  # type: ignore[attr-defined]
        depth = trial.suggest_int("depth", 1, 3)  # type: ignore[attr-defined]
        if trial.number == 1:  # type: ignore[attr-defined]
            raise optuna.TrialPruned()
        return (x - 1.0) ** 2 + depth

    study = optuna.create_study(study_name="tiny", sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(recorded(objective, metric="loss"), n_trials=3)
    runs = git_prov.Ledger(here).runs(tag="optuna-study:tiny")
    assert len(runs) == 3
    by_trial = {next(t for t in r.tags if t.startswith("optuna-trial:")): r for r in runs}
    for trial in study.trials:
        run = by_trial[f"optuna-trial:{trial.number}"]
        assert dict(run.params) == trial.params  # the suggested values, typed
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert "optuna-state:pruned" in run.tags and run.ok and dict(run.metrics) == {}
        else:
            assert dict(run.metrics) == {"loss": trial.value} and run.ok
    # compare: the best trial is Optuna's best (loss: lower by its name)
    doc = json.loads(cli_run(here, "compare", "--tag", "optuna-study:tiny", "--json").stdout)
    best_run = by_trial[f"optuna-trial:{study.best_trial.number}"]
    assert doc["metrics"]["loss"]["best_runs"] == [best_run.id]

    # the callback: recorded after each trial, a failed trial a failed run
    def flaky(trial: object) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)  # type: ignore[attr-defined]
        if trial.number == 2:  # type: ignore[attr-defined]
            raise ValueError("boom")
        return x

    other = optuna.create_study(study_name="cb", direction="maximize")
    callback = RecordTrials(metric="acc")
    other.optimize(flaky, n_trials=3, callbacks=[callback], catch=(ValueError,))
    assert [r.status for r in callback.runs] == ["ok", "ok", "failed"]
    assert callback.runs[0].metrics == {"acc": other.trials[0].value}
    assert all("optuna-study:cb" in r.tags for r in callback.runs)


def test_optuna_trials_stay_runs_of_their_own_under_git_prov_run(here: Path) -> None:
    """A study that `git prov run` runs: each trial its own run (recorded() does not join
    the command's run), the command one more."""
    pytest.importorskip("optuna", reason=missing("optuna (the test-optuna extra)"))
    import sys

    from conftest import commit_file

    commit_file(
        here,
        "study.py",
        "import optuna\n"
        "from git_prov.integrations.optuna import recorded\n"
        "optuna.logging.set_verbosity(optuna.logging.WARNING)\n"
        "study = optuna.create_study(study_name='s', sampler=optuna.samplers.RandomSampler(1))\n"
        "study.optimize(recorded(lambda t: t.suggest_float('x', 0, 1), metric='loss'), "
        "n_trials=2)\n",
    )
    cli_run(here, "run", "--", sys.executable, "study.py")
    runs = git_prov.Ledger(here).runs()
    assert sorted(r.origin for r in runs) == ["api", "api", "run"]
    trials = [r for r in runs if r.origin == "api"]
    assert all("optuna-study:s" in r.tags and set(r.params) == {"x"} for r in trials)


HYDRA_APP = """\
import hydra

@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg):
    print("lr", cfg.lr)

main()
"""


def test_hydra_composed_config_read_as_params(here: Path) -> None:
    pytest.importorskip("hydra", reason=missing("Hydra (the test-hydra extra)"))
    pytest.importorskip("yaml", reason=missing("PyYAML (the yaml extra)"))
    import sys

    from conftest import commit_file, prov

    commit_file(here, "conf/config.yaml", "lr: 0.1\nmodel:\n  depth: 3\n  layers: [4, 8]\n")
    commit_file(here, "app.py", HYDRA_APP)
    commit_file(here, ".gitignore", "outputs/\nmultirun/\n")
    # the real Hydra composes the config, applies the overrides and writes .hydra/
    ran = prov(
        here, "run", "-p", "seed=1", "-p", "lr=9", "--",
        sys.executable, "app.py", "lr=0.5", "model.depth=5",
    )  # fmt: skip
    assert "lr 0.5" in ran.stdout
    run = git_prov.Ledger(here).runs()[-1]
    assert dict(run.params) == {
        "lr": 9,  # given explicitly: it wins over Hydra's 0.5
        "model.depth": 5,
        "model.layers": "[4,8]",
        "hydra.overrides": "lr=0.5 model.depth=5",
        "seed": 1,
    }
    # the next run, within a second of it, wrote no Hydra directory: it has no Hydra
    # params (the last run's directory is not taken for its own)
    prov(here, "run", "--", sys.executable, "-c", "pass")
    after = git_prov.Ledger(here).runs()[-1]
    assert not any(k == "lr" or k.startswith(("model.", "hydra.")) for k in after.params)
    assert not any("Hydra" in w for w in after.warnings)
    # a multirun (several run dirs in one command) reads none, and says so
    prov(here, "run", "--", sys.executable, "app.py", "--multirun", "lr=1,2")
    last = git_prov.Ledger(here).runs()[-1]
    assert "lr" not in last.params
    assert any("wrote 2 Hydra run directories" in w for w in last.warnings)
    assert os.path.isdir(here / "multirun")

"""Project templates (`git prov init --template NAME`): each one end to end in a real
repository — scaffold, commit, record its example, `git prov check` — and the promises
of init: never overwrite a file, say what was kept, the same result when run again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from conftest import git, prov, runs_json

from git_prov.project_templates import TEMPLATES, apply_template, template_files

BIN = Path(sys.executable).parent


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def test_list_names_every_template_and_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    listed = prov(tmp_path, "init", "--template", "list").stdout.splitlines()
    assert [line.split()[0] for line in listed] == [t.name for t in TEMPLATES]
    assert {"python", "notebook"} <= {t.name for t in TEMPLATES}
    bad = prov(tmp_path, "init", "--template", "pyhton", check=False)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: no project template 'pyhton' — choose one of python, notebook "
        "(git prov init --template list)"
    ]


@pytest.mark.parametrize("name", [t.name for t in TEMPLATES])
def test_every_template_ignores_its_data_and_declares_it(name: str) -> None:
    import tomllib

    files = template_files(name)
    assert ".github/workflows/prov-check.yml" in files
    config = tomllib.loads(files[".gitprov.toml"].decode())["run"]
    for key in ("inputs", "outputs", "params_files", "metrics_files"):
        assert config[key], key
    ignored = files[".gitignore"].decode().splitlines()
    # Declared data is ignored (a run leaves the tree clean); params files are code.
    for path in (*config["inputs"], *config["outputs"]):
        assert f"/{path}/" in ignored, path
    for path in config["params_files"]:
        assert path in files, path
    steps = yaml.safe_load(files[".github/workflows/prov-check.yml"])["jobs"]["check"]["steps"]
    assert any("git prov check" in step.get("run", "") for step in steps)


def test_existing_files_are_kept_and_a_second_init_changes_nothing(repo: Path) -> None:
    (repo / ".gitignore").write_text("/data/\n*.log")  # no final newline
    (repo / "train.py").write_text("print('mine')\n")
    done = apply_template(repo, "python")
    assert "train.py: kept (it exists; the template's version was not written)" in done
    assert (repo / "train.py").read_text() == "print('mine')\n"
    assert "prepare.py: written" in done
    assert (repo / ".gitignore").read_text() == (
        "/data/\n*.log\n# Added by `git prov init --template python`\n"
        "/models/\n/metrics.json\n__pycache__/\n.venv/\n"
    )
    before = _tree(repo)
    again = apply_template(repo, "python")
    assert _tree(repo) == before
    assert all(": kept (" in line for line in again), again


def _workflow_check_step(repo: Path) -> str:
    workflow = yaml.safe_load((repo / ".github/workflows/prov-check.yml").read_text())
    [step] = [s for s in workflow["jobs"]["check"]["steps"] if "git prov check" in s.get("run", "")]
    return str(step["run"])


def _shell(repo: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A workflow step as CI runs it, with this git-prov's `git-prov` on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_python_template_end_to_end(repo: Path) -> None:
    out = prov(repo, "init", "--template", "python").stdout
    assert "template python: train.py: written" in out
    assert "next, try:" in out
    # The workflow's check passes on a commit without runs yet (a notice, not a failure).
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start from the python template")
    no_runs = _shell(repo, _workflow_check_step(repo))
    assert no_runs.returncode == 0, no_runs.stderr
    assert "::notice::no run recorded on this commit yet" in no_runs.stdout

    subprocess.run([sys.executable, "prepare.py"], cwd=repo, check=True, capture_output=True)
    prov(repo, "run", "--", sys.executable, "train.py")
    second = prov(repo, "run", "--", sys.executable, "train.py")
    assert "best earlier run" in second.stdout  # train.py read the ledger through the API
    assert git(repo, "status", "--porcelain") == ""  # data, models, metrics: ignored
    [run] = [r for r in runs_json(repo) if r["short_id"] in second.stderr]
    assert set(run["params"]) == {"seed", "epochs", "learning_rate"}
    assert set(run["metrics"]) == {"mse"}
    show = prov(repo, "show", str(run["id"])).stdout
    assert "data/train.csv" in show and "models/model.json" in show
    check = prov(repo, "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "nothing drifted" in check.stdout
    ci = _shell(repo, _workflow_check_step(repo))
    assert ci.returncode == 0 and "nothing drifted" in ci.stdout, ci.stdout + ci.stderr


def test_notebook_template_end_to_end_executed_headless(repo: Path) -> None:
    """The notebook records itself with git_prov.run() while nbclient executes it, as CI
    does (`jupyter execute`, nbconvert --execute and papermill all drive nbclient): the
    run is recorded as that notebook, not as the kernel launcher's command line."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    out = prov(repo, "init", "--template", "notebook").stdout
    assert "template notebook: analysis.ipynb: written" in out
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start from the notebook template")

    book = nbformat.read(repo / "analysis.ipynb", as_version=4)
    nbclient.NotebookClient(book, resources={"metadata": {"path": str(repo)}}).execute()
    printed = "".join(o.get("text", "") for o in book.cells[2].outputs)
    assert printed.startswith("recorded run ")

    [run] = runs_json(repo)
    assert run["command"] == "notebook analysis.ipynb"
    assert run["short_id"] in printed
    assert set(run["params"]) == {"bins"} and set(run["metrics"]) == {"mean", "n"}
    show = prov(repo, "show", str(run["id"])).stdout
    for path in ("analysis.ipynb", "data/values.csv", "results/histogram.json"):
        assert path in show, path
    assert git(repo, "status", "--porcelain") == ""
    check = prov(repo, "check", check=False)
    assert check.returncode == 0 and "nothing drifted" in check.stdout, check.stdout

    # `jupyter execute NOTEBOOK` (nbclient's command line, as CI runs it): the notebook it
    # names, though a copy beside it holds the same cells (the directory alone is no answer).
    (repo / "analysis-copy.ipynb").write_bytes((repo / "analysis.ipynb").read_bytes())
    executed = subprocess.run(
        [str(BIN / "jupyter-execute"), "analysis.ipynb"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert executed.returncode == 0, executed.stderr
    [_, latest] = sorted(runs_json(repo), key=lambda r: str(r["id"]))
    assert latest["command"] == "notebook analysis.ipynb", executed.stdout

"""The Python API (``import git_prov``): recording in-process runs, reading the ledger back,
and notebook detection — on real repositories, through the same library the CLI uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from conftest import commit_file, git, prov, runs_json

import git_prov
from git_prov.capture import notebook as nb
from git_prov.errors import NotFound, UsageProblem


@pytest.fixture
def here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository fixture, as the current directory (the API's default repo)."""
    monkeypatch.chdir(repo)
    return repo


# ---- recording -------------------------------------------------------------------------------


def test_block_records_an_ok_run_with_data_params_and_metrics(here: Path) -> None:
    (here / "data").mkdir()
    (here / "data" / "train.csv").write_text("x,y\n1,2\n")
    cfg = {"model": {"depth": 3, "layers": [64, 32]}, "lr": 0.01}
    with git_prov.run(
        inputs=["data"], outputs=["model.txt"], params=cfg, tags=["baseline"], message="first"
    ) as run:
        assert git_prov.active_run() is run and run.id
        (here / "model.txt").write_text("weights")
        run.log_metric("acc", 0.93)
        run.log_metrics({"loss": {"train": 0.1}})
        run.log_param("seed", 7)
        run.add_tag("api")
    assert git_prov.active_run() is None
    recorded = run.run
    assert recorded is not None and recorded.ok and recorded.exit_code == 0
    assert recorded.params == {"model.depth": 3, "model.layers": "[64,32]", "lr": 0.01, "seed": 7}
    assert recorded.metrics == {"acc": 0.93, "loss.train": 0.1}
    assert recorded.tags == ("baseline", "api") and recorded.message == "first"
    assert recorded.origin == "api" and recorded.commit == git(here, "rev-parse", "HEAD")
    # The command is the Python command line that ran the block.
    assert recorded.record.argv == tuple(sys.orig_argv)
    inputs, outputs = recorded.inputs_manifest(), recorded.outputs_manifest()
    assert inputs is not None and [e.path for e in inputs.entries] == ["data/train.csv"]
    assert outputs is not None and [e.path for e in outputs.entries] == ["model.txt"]
    environment = recorded.environment()
    assert environment is not None and environment.python["executable"] == sys.executable
    # The CLI sees the same record.
    [shown] = runs_json(here)
    assert shown["id"] == recorded.id and shown["origin"] == "api"


def test_an_exception_records_a_failed_run_and_propagates(here: Path) -> None:
    error = ValueError("bad input in row 3")
    with pytest.raises(ValueError) as caught, git_prov.run(command="train step") as run:
        raise error
    assert caught.value is error  # the very exception, not a wrapper
    recorded = run.run
    assert recorded is not None and recorded.status == "failed" and recorded.exit_code == 1
    assert recorded.command == "train step" and recorded.record.argv is None
    log = recorded.log("stderr")
    assert log is not None and log.endswith(b"ValueError: bad input in row 3\n")
    assert b"Traceback (most recent call last)" in log


def test_secrets_in_the_exception_are_redacted(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2-very-secret")
    with pytest.raises(RuntimeError), git_prov.run() as run:
        raise RuntimeError("cannot connect with hunter2-very-secret")
    assert run.run is not None
    log = run.run.log("stderr") or b""
    assert b"hunter2" not in log and b"<redacted>" in log


def test_interrupt_and_exit_codes(here: Path) -> None:
    with pytest.raises(KeyboardInterrupt), git_prov.run() as interrupted:
        raise KeyboardInterrupt
    assert interrupted.run is not None and interrupted.run.status == "killed"
    assert interrupted.run.record.signal == 2 and interrupted.run.exit_code is None
    with pytest.raises(SystemExit), git_prov.run() as exited:
        sys.exit(0)
    assert exited.run is not None and exited.run.ok
    with pytest.raises(SystemExit), git_prov.run() as exited3:
        sys.exit(3)
    assert exited3.run is not None and exited3.run.exit_code == 3


def test_nested_runs_are_refused_clearly(here: Path) -> None:
    with (
        pytest.raises(UsageProblem, match="runs do not nest"),
        git_prov.run() as outer,
        git_prov.run(),
    ):
        pytest.fail("the inner block must not run")
    # The outer block ended with the refusal: it is recorded as failed, and nothing is left
    # active, so the next run works.
    assert outer.run is not None and outer.run.status == "failed"
    assert git_prov.active_run() is None
    with git_prov.run() as after:
        pass
    assert after.run is not None and after.run.ok
    assert len(git_prov.Ledger().runs()) == 2


def test_runs_in_other_threads_are_independent(here: Path) -> None:
    started = threading.Event()
    release = threading.Event()
    results: list[Any] = []

    def worker() -> None:
        with git_prov.run(command="worker") as run:
            started.set()
            release.wait(10)
        results.append(run.run)

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(10)
    with git_prov.run(command="main") as main_run:
        pass
    release.set()
    thread.join(10)
    assert main_run.run is not None and results and results[0].ok
    assert {r.command for r in git_prov.Ledger().runs()} == {"worker", "main"}


def test_logging_outside_the_block_is_refused(here: Path) -> None:
    active = git_prov.run()
    with pytest.raises(UsageProblem, match="not being recorded"):
        active.log_metric("acc", 1.0)
    with active:
        pass
    with pytest.raises(UsageProblem):
        active.log_param("lr", 0.1)
    with pytest.raises(UsageProblem, match="already used"), active:
        pass
    with pytest.raises(UsageProblem, match="name"):
        git_prov.run(params={1: "x"})  # type: ignore[dict-item]


def test_a_failed_recording_does_not_hide_the_blocks_exception(here: Path) -> None:
    with pytest.raises(ZeroDivisionError) as caught, git_prov.run(metrics_files=["m.json"]):
        1 / 0  # noqa: B018
    # m.json was never written: the run is still recorded, the problem noted on the error.
    assert [n for n in caught.value.__notes__ if "m.json" in n and "recorded with" in n]
    (here / "m.json").write_text("not json")
    with pytest.raises(ZeroDivisionError) as caught, git_prov.run(metrics_files=["m.json"]):
        1 / 0  # noqa: B018
    assert any("recorded with a problem" in note for note in caught.value.__notes__)
    assert len(runs_json(here)) == 2
    # A recording that cannot happen at all (signing asked for, no key) is noted too.
    with pytest.raises(ZeroDivisionError) as caught, git_prov.run(sign=True):
        1 / 0  # noqa: B018
    assert any("not recorded" in note for note in caught.value.__notes__)


def test_record_after_the_fact(here: Path) -> None:
    (here / "results.csv").write_text("a\n1\n")
    recorded = git_prov.record(
        "sbatch train.sh",
        exit_code=2,
        outputs=["results.csv"],
        params={"nodes": 4},
        metrics={"acc": 0.5},
        duration=3600,
    )
    assert recorded.status == "failed" and recorded.origin == "record"
    assert recorded.duration == 3600 and recorded.params == {"nodes": 4}
    assert git_prov.Ledger().run(recorded.short_id).id == recorded.id


def test_repo_argument_and_errors(repo: Path, tmp_path: Path) -> None:
    with git_prov.run(repo=repo, command="elsewhere") as run:
        pass
    assert run.run is not None and git_prov.Ledger(repo).runs()[0].id == run.run.id
    with pytest.raises(git_prov.ProvError), git_prov.run(repo=tmp_path):
        pass


# ---- reading ---------------------------------------------------------------------------------


def test_ledger_filters_by_commit_status_and_tag(here: Path) -> None:
    first = git(here, "rev-parse", "HEAD")
    with git_prov.run(tags=["a"]):
        pass
    git_prov.record("job", exit_code=1, tags=["b"])
    second = commit_file(here, "train.py", "print(1)\n")
    with git_prov.run(tags=["a", "b"]):
        pass
    ledger = git_prov.Ledger(".")
    everything = ledger.runs()
    assert len(everything) == 3 and [r.id for r in everything] == sorted(r.id for r in everything)
    assert {r.commit for r in ledger.runs(commit="HEAD~1")} == {first}
    assert [r.commit for r in ledger.runs(commit="HEAD")] == [second]
    assert [r.status for r in ledger.runs(status="failed")] == ["failed"]
    assert len(ledger.runs(status=["ok", "failed"])) == 3
    assert len(ledger.runs(tag="a")) == 2 and len(ledger.runs(tag="b", status="ok")) == 1
    assert ledger.problems == []
    with pytest.raises(NotFound):
        ledger.runs(commit="no-such-branch")
    with pytest.raises(NotFound):
        ledger.run("ffffffff")
    one = everything[0]
    assert ledger.run(one.short_id) == one
    assert one.inputs_manifest() is None and one.log("stdout") is None
    with pytest.raises(UsageProblem):
        one.log("stdlog")


def test_deleted_runs_are_not_returned(here: Path) -> None:
    with git_prov.run(command="keep"):
        pass
    with git_prov.run(command="drop") as dropped:
        pass
    assert dropped.run is not None
    prov(here, "gc", dropped.run.short_id, "--force")
    ledger = git_prov.Ledger()
    assert [r.command for r in ledger.runs()] == ["keep"]
    with pytest.raises(NotFound):
        ledger.run(dropped.run.id)


def test_unreadable_lines_are_listed_in_problems_and_the_rest_returned(here: Path) -> None:
    with git_prov.run(command="good"):
        pass
    head = git(here, "rev-parse", "HEAD")
    note = git(here, "notes", "--ref=prov", "show", head) + '\n{"v": 1, "kind": "run"}\n'
    git(here, "notes", "--ref=prov", "add", "-f", "-F", "-", head, input=note)
    ledger = git_prov.Ledger()
    assert [r.command for r in ledger.runs()] == ["good"]
    assert [(p.commit, p.line_number) for p in ledger.problems] == [(head, 2)]
    assert [r.command for r in ledger.runs(commit="HEAD", status="ok")] == ["good"]
    assert len(ledger.problems) == 1


def test_import_is_cheap_and_names_load_lazily() -> None:
    code = (
        "import sys, git_prov\n"
        "heavy = [m for m in sys.modules if m.startswith(('git_prov.', 'pygit2', 'click'))]\n"
        "assert not heavy, heavy\n"
        "assert 'run' in dir(git_prov) and callable(git_prov.run)\n"
        "assert git_prov.Ledger.__module__ == 'git_prov.api'\n"
        "print(git_prov.__version__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == git_prov.__version__
    with pytest.raises(AttributeError):
        git_prov.no_such_name  # noqa: B018


# ---- notebooks -------------------------------------------------------------------------------


class _Shell:
    def __init__(self, namespace: dict[str, Any], kernel: bool = True):
        self.user_ns = namespace
        self.kernel = object() if kernel else None


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: _Shell | None) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_notebook_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "analysis.ipynb"
    book.write_text("{}")
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert nb.kernel_namespace() is None and nb.detect_notebook({}, tmp_path) is None
    # A terminal IPython has no kernel, hence no notebook.
    _fake_ipython(monkeypatch, _Shell({"__session__": str(book)}, kernel=False))
    assert nb.detect_notebook({}, tmp_path) is None
    _fake_ipython(monkeypatch, None)
    assert nb.detect_notebook({}, tmp_path) is None
    # VS Code's variable, ipykernel's __session__, and JPY_SESSION_NAME (absolute or relative).
    _fake_ipython(monkeypatch, _Shell({"__vsc_ipynb_file__": str(book)}))
    assert nb.detect_notebook({}, tmp_path) == book
    _fake_ipython(monkeypatch, _Shell({"__session__": str(book)}))
    assert nb.detect_notebook({}, tmp_path) == book
    _fake_ipython(monkeypatch, _Shell({}))
    assert nb.detect_notebook({"JPY_SESSION_NAME": str(book)}, tmp_path) == book
    assert nb.detect_notebook({"JPY_SESSION_NAME": "work/analysis.ipynb"}, tmp_path) == book
    assert nb.detect_notebook({"JPY_SESSION_NAME": "missing.ipynb"}, tmp_path) is None
    assert nb.detect_notebook({"JPY_SESSION_NAME": str(tmp_path)}, tmp_path) is None
    # A kernel whose front end says nothing (an old server): no notebook, no error.
    assert nb.detect_notebook({}, tmp_path) is None


def _book(path: Path, *cells: str | list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"cells": [{"cell_type": "code", "source": c} for c in cells], "nbformat": 4}
    path.write_text(json.dumps(doc))
    return path


def test_a_headless_notebook_is_the_one_holding_the_running_cell(tmp_path: Path) -> None:
    cell = "with git_prov.run() as run:\n    train()\n"
    book = _book(tmp_path / "nb" / "train.ipynb", "import git_prov", cell.splitlines(True))
    _book(tmp_path / "nb" / "other.ipynb", "print('other')")
    here = book.parent
    # Executed in its directory (nbclient, nbconvert): the one notebook there with the cell.
    assert nb.headless_notebook(cell, (tmp_path, ["python", "-m", "pytest"]), here) == book
    assert nb.headless_notebook("print('not in any')", None, here) is None
    assert nb.headless_notebook("", None, here) is None
    # Two notebooks holding it (a copy): no answer rather than a guess.
    copy = _book(here / "train-Copy1.ipynb", cell)
    assert nb.headless_notebook(cell, None, here) is None
    # Named on the executing command line (papermill IN OUT): the first named that has it,
    # relative to that process's directory, wherever the kernel runs.
    papermill = ["papermill", "nb/train-Copy1.ipynb", "out/train.ipynb"]
    assert nb.headless_notebook(cell, (tmp_path, papermill), tmp_path / "elsewhere") == copy
    jupyter = ["jupyter-nbconvert", "--execute", "--to", "notebook", "train.ipynb"]
    assert nb.headless_notebook(cell, (here, jupyter), here) == book


def test_the_executing_process_is_read_from_jpy_parent_pid(tmp_path: Path) -> None:
    found = nb._parent_argv({"JPY_PARENT_PID": str(os.getpid())})
    if not Path("/proc/self/cmdline").exists():
        assert found is None  # no /proc: the directory is all there is
        return
    assert found is not None
    assert found[0] == Path.cwd() and found[1] == [a for a in sys.orig_argv if a]


def test_a_run_in_a_notebook_records_the_notebook_and_the_kernels_python(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = here / "notebooks" / "explore.ipynb"
    book.parent.mkdir()
    book.write_text(json.dumps({"cells": [], "nbformat": 4}))
    _fake_ipython(monkeypatch, _Shell({"__session__": str(book)}))
    monkeypatch.chdir(book.parent)  # a kernel starts in its notebook's directory
    with git_prov.run(repo=here) as run:
        run.log_metric("rows", 10)
    recorded = run.run
    assert recorded is not None and run.notebook == book
    assert recorded.command == "notebook notebooks/explore.ipynb"
    inputs = recorded.inputs_manifest()
    assert inputs is not None and [e.path for e in inputs.entries] == ["notebooks/explore.ipynb"]
    environment = recorded.environment()
    assert environment is not None and environment.python["executable"] == sys.executable
    # notebook=False opts out; so does a kernel whose notebook cannot be found.
    with git_prov.run(repo=here, notebook=False) as plain:
        pass
    assert plain.run is not None and plain.run.record.inputs is None


def test_a_failed_block_records_a_structured_error(repo: Path) -> None:
    import git_prov

    with pytest.raises(ValueError), git_prov.run(repo=repo, command="api block"):
        raise ValueError("bad learning rate\nsecond line is dropped")
    [run] = git_prov.Ledger(repo).runs()
    assert run.status == "failed"
    stored = json.loads(git(repo, "notes", "--ref=prov", "show", run.commit).split("\t")[-1])
    assert stored["error"] == {"type": "ValueError", "message": "bad learning rate"}

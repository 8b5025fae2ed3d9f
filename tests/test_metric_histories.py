"""Metric histories (#17): every logged value kept with its step and time, stored once per
run as a blob under refs/prov/objects, summarised in the record so that find's --where and
--sort read them from the index; history files (JSON lines, CSV/TSV, DVCLive, TensorBoard)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from array import array
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from conftest import git, missing, prov

import git_prov
from git_prov.errors import UsageProblem
from git_prov.model.history import (
    Series,
    decode_history,
    encode_history,
    goal_for,
    summarize,
)
from git_prov.query.find import Condition, FindQuery, find
from git_prov.query.index import RepoPaths
from git_prov.report import make_server
from git_prov.store.repo import open_repo


@pytest.fixture
def here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


# ---- the stored format (pure) ----------------------------------------------------------------


def test_history_blob_round_trips_and_is_canonical() -> None:
    loss = Series(
        array("d", [0, 1, 2]), array("d", [10.0, 11.5, 12.0]), array("d", [1.0, 0.5, 0.25])
    )
    half = Series(array("d", [0.5, 1.5]), array("d", [math.nan, 1.0]), array("d", [math.nan, 2.0]))
    blob = encode_history({"loss": loss, "half": half})
    assert blob.startswith(b"git-prov history 1\n")
    header = json.loads(blob.split(b"\n")[1])
    # Keys sorted; integral steps stored as int64, fractional ones as float64.
    assert header == {
        "series": [{"key": "half", "n": 2, "step": "f8"}, {"key": "loss", "n": 3, "step": "i8"}]
    }
    assert len(blob) == len(blob.split(b"\n")[0]) + len(blob.split(b"\n")[1]) + 2 + 5 * 24
    back = decode_history(blob)
    assert list(back["loss"].steps) == [0, 1, 2] and list(back["loss"].values) == [1, 0.5, 0.25]
    assert list(back["half"].steps) == [0.5, 1.5] and math.isnan(back["half"].times[0])
    assert encode_history(back) == blob  # the same points, the same bytes (stored once)
    for bad in (b"nope", blob[:-1], blob + b"x", b"git-prov history 1\n{}\n"):
        with pytest.raises(ValueError):
            decode_history(bad)


def test_summary_and_how_best_is_decided() -> None:
    series = Series(array("d", [0, 1, 2, 3]), array("d", [0] * 4), array("d", [3, 1, math.nan, 2]))
    assert summarize(series, "min") == {
        "n": 4, "last": 2.0, "last_step": 3, "min": 1.0, "max": 3.0,
        "goal": "min", "best": 1.0, "best_step": 1,
    }  # fmt: skip
    assert summarize(series, "max")["best_step"] == 0
    assert "best" not in summarize(series, None)  # no goal: no best, never a guess
    assert goal_for("val_loss") == goal_for("train/loss") == goal_for("mse") == "min"
    assert goal_for("val_acc") == goal_for("top1") == goal_for("f1") == "max"
    assert goal_for("lr") is None and goal_for("acc_error") is None  # neither, or both
    assert goal_for("lr", {"lr": "max"}) == "max"


# ---- the API ---------------------------------------------------------------------------------


def test_log_metric_keeps_every_step_and_summaries_reach_find(here: Path) -> None:
    with git_prov.run(goals={"score": "max"}) as run:
        for step in range(50):
            run.log_metric("loss", 1.0 / (step + 1), step=step * 10)
            run.log_metrics({"acc": step / 50, "score": float(step % 7)})
        run.log_metric("phase", "done")  # text: a value, no history
    recorded = run.run
    assert recorded is not None
    assert recorded.metrics["loss"] == 1.0 / 50 and recorded.metrics["phase"] == "done"
    histories = recorded.histories()
    assert sorted(histories) == ["acc", "loss", "score"]
    assert list(histories["loss"].steps) == [s * 10 for s in range(50)]
    assert list(histories["acc"].steps) == list(range(50))  # no step: the next one
    times = list(histories["loss"].times)
    assert times == sorted(times) and all(t > 1.7e9 for t in times)
    assert recorded.series["loss"] == {
        "n": 50, "last": 0.02, "last_step": 490, "min": 0.02, "max": 1.0,
        "goal": "min", "best": 0.02, "best_step": 490,
    }  # fmt: skip
    assert recorded.series["score"]["best_step"] == 6
    # The blob is under refs/prov/objects, and no live directory is left behind.
    blob = recorded.record.history
    assert blob and git(here, "cat-file", "-t", f"refs/prov/objects:metrics/{blob[:2]}/{blob[2:]}")
    assert not list((here / ".git" / "prov" / "live").glob("*"))
    with git_prov.run() as other:
        other.log_metric("loss", 0.5)
        other.log_metric("loss", 0.4)
    found = json.loads(prov(here, "find", "--where", "loss.min<0.1", "--json").stdout)
    assert [r["id"] for r in found] == [recorded.id]
    assert _found(here, sort="loss.last") == [recorded.id, other.id]
    assert _found(here, sort="-loss.n") == [recorded.id, other.id]
    assert _found(here, where=(Condition.parse("acc.best_step==49"),)) == [recorded.id]
    assert _found(here, where=(Condition.parse("metrics.loss.max>=0.5"),)) == [
        other.id, recorded.id,
    ]  # fmt: skip


def _found(repo: Path, **query: Any) -> list[str]:
    """Run ids ``find`` selects, in-process (the CLI is tested above)."""
    result, _, _ = find(RepoPaths.of_repo(open_repo(repo)), FindQuery(**query))
    return [r.id for r in result.runs]


class Steps:
    """An integer-like step (as numpy's int64 is)."""

    def __init__(self, value: int):
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_logging_outside_a_run_is_a_usage_error(here: Path) -> None:
    with git_prov.run() as run:
        with pytest.raises(UsageProblem):
            run.log_metric("", 1.0)
        with pytest.raises(UsageProblem):
            run.log_metric("x", 1.0, step="3")  # type: ignore[arg-type]
        with pytest.raises(UsageProblem, match="is not a number, string or boolean"):
            run.log_metric("x", [1.0])  # type: ignore[arg-type]
        # Scalars of other types (numpy, torch, Fraction) are numbers: kept as floats.
        run.log_metric("half", Fraction(1, 2), step=Steps(3))  # type: ignore[arg-type]
    assert run.run is not None and run.run.metrics == {"half": 0.5}
    assert list(run.run.histories()["half"].steps) == [3]
    with pytest.raises(UsageProblem, match="not being recorded"):
        run.log_metric("loss", 1.0)
    with pytest.raises(UsageProblem, match="no run is being recorded"):
        git_prov.log_metric("loss", 1.0)


# ---- git prov run and history files ----------------------------------------------------------


def test_a_script_under_git_prov_run_logs_a_history(here: Path) -> None:
    (here / "train.py").write_text(
        "import git_prov\n"
        "for step in range(5):\n"
        "    git_prov.log_metric('loss', 1.0 / (step + 1), step=step)\n"
    )
    prov(here, "run", "--", sys.executable, "train.py")
    [recorded] = git_prov.Ledger(here).runs()
    assert recorded.metrics["loss"] == 0.2 and recorded.series["loss"]["n"] == 5
    assert list(recorded.histories()["loss"].steps) == [0, 1, 2, 3, 4]
    assert not list((here / ".git" / "prov" / "live").glob("*"))


def test_history_files_json_lines_csv_tsv(here: Path) -> None:
    (here / "log.jsonl").write_text(
        '{"step": 0, "time": 1700000000.5, "loss": 1.0, "val": {"acc": 0.1}, "phase": "warm"}\n'
        '{"step": 2, "timestamp": 1700000001000, "loss": 0.5}\n'  # milliseconds
        "\n"
        '{"loss": 0.25}\n'  # no step: its line's number
    )
    (here / "log.csv").write_text("epoch_time,step,lr,note\n,0,0.1,a\n,1,0.05,b\n,2,,c\n")
    (here / "log.tsv").write_text("step\tgrad_norm\n0\t3\n5\t1e-3\n")
    recorded = git_prov.record("train", metrics_files=["log.jsonl", "log.csv", "log.tsv"])
    histories = recorded.histories()
    # Columns with no numbers ("epoch_time" empty, "note" text) have no history.
    assert sorted(histories) == ["grad_norm", "loss", "lr", "val.acc"]
    loss = histories["loss"]
    assert list(loss.steps) == [0, 2, 3] and list(loss.values) == [1.0, 0.5, 0.25]
    assert loss.times[0] == 1700000000.5 and loss.times[1] == 1700000001.0
    assert math.isnan(loss.times[2])  # not in the file: not known
    assert list(histories["lr"].steps) == [0, 1] and list(histories["lr"].values) == [0.1, 0.05]
    assert list(histories["grad_norm"].steps) == [0, 5]
    assert recorded.metrics["loss"] == 0.25 and recorded.series["loss"]["best_step"] == 3
    assert "phase" not in histories and "note" not in histories
    assert not recorded.warnings


def test_a_bad_history_file_is_a_warning_not_a_lost_run(here: Path) -> None:
    (here / "log.jsonl").write_text('{"loss": 1}\nnot json\n')
    (here / "log.csv").write_text("step,loss\n0,1\n,2\n")
    recorded = git_prov.record("train", metrics_files=["log.jsonl", "log.csv"])
    assert recorded.record.history is None
    assert [w.split(":")[0] for w in recorded.warnings] == ["metrics not read"] * 2
    assert (
        "line 2 is not JSON" in recorded.warnings[0] and "row 3 has no step" in recorded.warnings[1]
    )


def test_dvclive_output_directory(here: Path) -> None:
    try:
        import dvclive  # noqa: F401
    except ImportError:
        pytest.skip(missing("dvclive"))
    # dvclive written by a training script of its own (as users run it): in this process,
    # Live starts a thread that lives as long as the process (its Studio queue), and a
    # process with threads parses a first index build alone (query/parts.can_fork).
    script = """if True:
        import sys
        from dvclive import Live
        with Live(sys.argv[1], save_dvc_exp=False) as live:
            for step in range(4):
                live.log_metric("train/loss", 1.0 / (step + 1))
                live.log_metric("acc", step / 4)
                live.next_step()
    """
    subprocess.run([sys.executable, "-c", script, str(here / "dvclive")], check=True, cwd=here)
    recorded = git_prov.record("train", metrics_files=["dvclive"])
    histories = recorded.histories()
    assert sorted(histories) == ["acc", "train.loss"]
    assert list(histories["train.loss"].steps) == [0, 1, 2, 3]
    assert list(histories["train.loss"].values) == [1.0, 0.5, 1 / 3, 0.25]
    # metrics.json's final values are the run's metrics; its "step" is not a metric.
    assert recorded.metrics == {"acc": 0.75, "train.loss": 0.25}
    assert recorded.series["acc"]["best"] == 0.75 and not recorded.warnings


def test_tensorboard_event_files(here: Path) -> None:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        pytest.skip(missing("tensorboard"))
    for sub in ("train", "eval"):
        writer = EventFileWriter(str(here / "tb" / sub))
        for step in range(3):
            value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
            writer.add_event(
                event_pb2.Event(
                    wall_time=1700000000.0 + step, step=step * 100,
                    summary=summary_pb2.Summary(value=[value]),
                )
            )  # fmt: skip
        writer.close()
    recorded = git_prov.record("train", metrics_files=["tb"])
    histories = recorded.histories()
    assert sorted(histories) == ["eval/loss", "train/loss"]
    loss = histories["train/loss"]
    assert list(loss.steps) == [0, 100, 200] and list(loss.times) == [1.7e9, 1.7e9 + 1, 1.7e9 + 2]
    assert list(loss.values) == pytest.approx([1.0, 0.5, 1 / 3])
    assert recorded.series["eval/loss"]["best_step"] == 200


# ---- while it runs -----------------------------------------------------------------------------

TRAIN_UNTIL_TOLD = """\
import os, sys, time
import git_prov

for step in range(3):
    git_prov.log_metric("loss", 1.0 / (step + 1), step=step)
deadline = time.monotonic() + 120  # never hang the suite: give up after two minutes
while not os.path.exists("finish") and time.monotonic() < deadline:
    time.sleep(0.05)
git_prov.log_metric("loss", 0.1, step=3)
"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def test_report_served_mid_run_shows_a_partial_curve_and_follow_tails_it(here: Path) -> None:
    """A real `git prov run -- python train.py` logs three points and waits: the report's
    server (over HTTP) shows the partial curve, `metrics --follow` prints the points and
    ends when the record is written; the record has every point. (About 5 s: a real
    `git prov run` of a Python script and a second `git prov` process following it.)"""
    (here / "train.py").write_text(TRAIN_UNTIL_TOLD)
    (here / ".gitignore").write_text("finish\n")
    command = [sys.executable, "-m", "git_prov", "run", "--", sys.executable, "train.py"]
    training = subprocess.Popen(command, cwd=here, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    server = make_server(open_repo(here))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    follower = None
    try:
        live: dict[str, Any] = {}
        while not live.get("metrics", {}).get("loss", {}).get("points", 0) >= 3:
            assert training.poll() is None, training.communicate()
            doc = json.loads(_get(base + "/curves.json"))
            live = next((r for r in doc["runs"] if r["live"]), {})
            time.sleep(0.1)  # (the script flushes its points within a second)
        assert live["metrics"]["loss"]["values"] == [1.0, 0.5, 1 / 3]
        page = _get(base + "/").decode()
        run_anchor = f'data-run="run-{live["id"]}"'
        assert f'<polyline class="curve c0 live" {run_anchor}' in page
        assert "(running: the points so far)" in page
        follower = subprocess.Popen(
            [sys.executable, "-m", "git_prov", "metrics", live["id"][-8:], "--follow"],
            cwd=here, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        (here / "finish").touch()
        training.communicate(timeout=120)
        assert training.returncode == 0
        followed, _ = follower.communicate(timeout=120)  # ends by itself: the run is recorded
    finally:
        server.shutdown()
        server.server_close()
        server.server_close()
        for proc in (training, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    lines = followed.splitlines()
    assert lines[0].startswith(f"run {live['id'][-8:]}")
    assert [line.split()[-3:] for line in lines[1:]] == [
        ["step", "0", "1"], ["step", "1", "0.5"], ["step", "2", "0.333333"], ["step", "3", "0.1"],
    ]  # fmt: skip
    doc = json.loads(_get_after(here))
    [recorded] = doc["runs"]
    assert recorded["id"] == live["id"] and not recorded["live"]
    assert recorded["metrics"]["loss"]["values"] == [1.0, 0.5, 1 / 3, 0.1]
    assert not list((here / ".git" / "prov" / "live").glob("*"))


def _get_after(repo: Path) -> str:
    """The curves' data once the run is over, from a fresh server."""
    server = make_server(open_repo(repo))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return _get(f"http://127.0.0.1:{server.server_address[1]}/curves.json").decode()
    finally:
        server.shutdown()
        server.server_close()


def test_fsck_checks_the_history_blob(here: Path) -> None:
    from git_prov.fsck import fsck
    from git_prov.store.ledger import KIND_METRICS, Ledger

    with git_prov.run() as run:
        run.log_metric("loss", 0.5)
    repo = open_repo(here)
    assert [f.code for f in fsck(repo).findings if f.severity != "info"] == []
    # A record naming a blob that is no history: fsck says so (a hand-made bad record).
    ledger = Ledger(repo)
    bad = ledger.store_object(b"not a history")
    assert run.run is not None
    record = dataclasses.replace(run.run.record, id=run.run.id[:-8] + "0badf00d", history=bad)
    ledger.write([(record.commit, record)], objects={KIND_METRICS: [bad]})
    found = [(f.code, f.message) for f in fsck(repo).findings if f.severity == "error"]
    why = "not a git-prov metric history (no 'git-prov history 1' header)"
    assert found == [("bad-history", f"run {record.id}: metric history {bad[:12]}: {why}")]


def test_metrics_command_views(here: Path) -> None:
    from git_prov.query import histories as views

    with git_prov.run(command="python train.py") as run:
        for step in range(8):
            run.log_metrics({"loss": 1.0 / (step + 1), "lr": 0.1}, step=step * 2)
    repo = open_repo(here)
    loaded = views.load_histories(repo, run.id[-8:])
    lines = views.summary_lines(loaded)
    assert lines[0] == f"run {run.id[-8:]}  python train.py"
    assert lines[1].split()[:2] == ["loss", "█▄▂▂▁▁▁▁"]
    assert lines[1].split()[2:] == [
        "n=8", "last=0.125", "min=0.125", "max=1", "best(min)=0.125@14",
    ]  # fmt: skip
    assert "best" not in lines[2]  # lr: no goal, no best
    table = views.table_lines(views.load_histories(repo, run.id, ["loss"]))
    assert [line.split() for line in table[:4]] == [
        ["step", "loss"], ["0", "1"], ["2", "0.5"], ["4", "0.333333"],
    ]  # fmt: skip
    [doc] = views.to_json([loaded])
    assert doc["id"] == run.id and not doc["live"]
    assert doc["metrics"]["loss"]["steps"] == list(range(0, 16, 2))
    assert doc["metrics"]["loss"]["summary"]["best_step"] == 14
    csv_text = prov(here, "metrics", run.id[-8:], "loss", "--csv").stdout.splitlines()
    assert csv_text[0] == "run,metric,step,time,value" and len(csv_text) == 9
    assert csv_text[1].startswith(f"{run.id},loss,0,20") and csv_text[1].endswith(",1.0")
    shown = prov(here, "show", run.id).stdout
    assert "Histories:   loss 8 points, min 0.125, max 1, best at step 14; lr 8 points" in shown
    wrong = prov(here, "metrics", "nosuchmetric", check=False)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: no run given")


def test_report_thins_a_long_curve_keeping_its_spikes() -> None:
    from git_prov.report.curves import thin

    n = 100_000
    values = array("d", (math.sin(i / 500) for i in range(n)))
    values[54_321] = 9.0
    series = Series(array("q", range(n)), array("d", [0.0]) * n, values)
    for case in ("finite", "with NaN"):
        if case == "with NaN":
            series.values[7] = math.nan
        curve = thin(series, 400)
        assert len(curve.steps) <= 400 and curve.total == n
        assert max(curve.values) == 9.0 and curve.steps[curve.values.index(9.0)] == 54_321
        assert list(curve.steps) == sorted(curve.steps) and not any(v != v for v in curve.values)


def test_a_run_whose_recorder_was_killed_shows_its_flushed_points_as_not_recorded(
    here: Path,
) -> None:
    from git_prov.live import MetricLog, start_live
    from git_prov.query import histories as views

    repo = open_repo(here)
    run_id = "20261203T050000.000Z-0000dead"
    directory = start_live(repo.prov_dir, run_id, "python train.py", "2026-12-03T05:00:00.000Z")
    assert directory is not None
    log = MetricLog(directory)
    for step in range(3):
        log.log("loss", 1.0 / (step + 1), step)
    log.close()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    info = json.loads((directory / "run.json").read_text())
    (directory / "run.json").write_text(json.dumps({**info, "pid": int(gone.stdout)}))
    loaded = views.load_histories(repo, "0000dead")
    assert loaded.live and loaded.gone and list(loaded.histories["loss"].values) == [1, 0.5, 1 / 3]
    assert "(not recorded: the process recording it is gone" in views.summary_lines(loaded)[0]
    from git_prov.report import build_report

    assert build_report(repo).curves.runs == []  # the report shows runs going, not this


def test_mlflow_export_carries_every_point(here: Path, tmp_path: Path) -> None:
    """(About 5 s alone, nearly all of it importing MLflow, which test_export's read-back
    test imports too: in one pytest process it is paid once.)"""
    from git_prov.export import export
    from git_prov.export.mlflow_store import run_uuid

    with git_prov.run(command="python train.py") as run:
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step * 10)
        run.log_metric("note", "done")
    store = tmp_path / "mlruns"
    export(open_repo(here), [], "mlflow", store, all_runs=True, experiment="exp")
    [lines] = [p.read_text().splitlines() for p in store.glob(f"*/{run_uuid(run.id)}/metrics/loss")]
    assert [line.split()[1:] for line in lines] == [
        ["1.0", "0"], ["0.5", "10"], ["0.3333333333333333", "20"], ["0.25", "30"], ["0.2", "40"],
    ]  # fmt: skip
    assert all(int(line.split()[0]) > 1_700_000_000_000 for line in lines)  # milliseconds
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        pytest.skip(missing("MLflow (the test-mlflow extra)"))
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow ≥ 3.7 gates the file store
    try:
        client = MlflowClient(tracking_uri=store.resolve().as_uri())
        history = client.get_metric_history(run_uuid(run.id), "loss")
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    assert [(m.step, m.value) for m in history] == [
        (0, 1.0), (10, 0.5), (20, 1 / 3), (30, 0.25), (40, 0.2),
    ]  # fmt: skip


def test_a_metrics_file_being_written_is_read_live(here: Path) -> None:
    from git_prov.live import live_runs, read_live, start_live

    log = here / "log.jsonl"
    log.write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n{"step": 2, "lo')
    repo = open_repo(here)
    start_live(repo.prov_dir, "20261203T050000.000Z-00000f11", "train", "", [log])
    [running] = live_runs(repo.prov_dir)
    assert list(read_live(running)["loss"].values) == [1.0, 0.5]  # not the half line

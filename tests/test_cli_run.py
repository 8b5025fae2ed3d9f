"""`git prov run / record / log / show` end to end, through the real CLI on real repos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import commit_file, git, prov, runs_json

PY = sys.executable


def test_clean_run_records_commit_status_and_timing(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    proc = prov(repo, "run", "--", PY, "-c", "print('hello')")
    assert proc.stdout == "hello\n"  # the command's output passes through untouched
    assert "recorded run" in proc.stderr
    [run] = runs_json(repo)
    assert run["commit"] == head
    assert run["status"] == "ok" and run["exit_code"] == 0
    assert run["argv"] == [PY, "-c", "print('hello')"]
    assert "snapshot" not in run  # clean tree: the commit is the exact code
    assert run["duration"] >= 0 and run["started"] <= run["ended"]
    assert run["host"] and run["env"]


def test_failing_command_keeps_its_exit_status_and_is_recorded(repo: Path) -> None:
    proc = prov(
        repo,
        "run",
        "--",
        PY,
        "-c",
        "import sys; print('oops', file=sys.stderr); sys.exit(3)",
        check=False,
    )
    assert proc.returncode == 3
    [run] = runs_json(repo)
    assert run["status"] == "failed" and run["exit_code"] == 3
    log = prov(repo, "show", "--log", "stderr", run["short_id"]).stdout
    assert log == "oops\n"


def test_dirty_tree_and_untracked_files_are_snapshotted_exactly(repo: Path) -> None:
    (repo / "README.md").write_text("# changed\n")
    (repo / "new_module.py").write_text("X = 1\n")
    (repo / ".gitignore").write_text("ignored.bin\n")
    (repo / "ignored.bin").write_text("not code")
    git(repo, "add", ".gitignore")  # staged-only change is part of the tree too
    prov(repo, "run", "--", PY, "-c", "pass")
    [run] = runs_json(repo)
    snap = run["snapshot"]
    assert git(repo, "show", f"{snap}:README.md") == "# changed"
    assert git(repo, "show", f"{snap}:new_module.py") == "X = 1"
    assert git(repo, "cat-file", "-e", f"{snap}:ignored.bin", check=False) == ""
    assert git(repo, "rev-parse", f"{snap}^") == run["commit"]
    # The user's index and working tree are untouched.
    assert git(repo, "diff", "--cached", "--name-only") == ".gitignore"
    assert "?? new_module.py" in git(repo, "status", "--porcelain")


def test_same_dirty_state_gives_the_same_snapshot(repo: Path) -> None:
    (repo / "README.md").write_text("# changed\n")
    prov(repo, "run", "--", PY, "-c", "pass")
    prov(repo, "run", "--", PY, "-c", "pass")
    snaps = {run["snapshot"] for run in runs_json(repo)}
    assert len(snaps) == 1


def test_inputs_outputs_params_metrics_and_tags(repo: Path) -> None:
    data = repo / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    commit_file(repo, "params.json", json.dumps({"model": {"depth": 3}}))
    script = (
        "import json; open('out.txt','w').write('result');"
        "json.dump({'acc': 0.9, 'loss': {'val': 0.1}}, open('metrics.json','w'))"
    )
    prov(
        repo,
        "run",
        "-i",
        "data",
        "-o",
        "out.txt",
        "-p",
        "lr=0.01",
        "-p",
        "name=base",
        "--params-file",
        "params.json",
        "--metrics-file",
        "metrics.json",
        "--metric",
        "extra=1",
        "-t",
        "baseline",
        "-m",
        "first try",
        "--",
        PY,
        "-c",
        script,
    )
    [run] = runs_json(repo)
    assert run["params"] == {"lr": 0.01, "name": "base", "model.depth": 3}
    assert run["metrics"] == {"acc": 0.9, "loss.val": 0.1, "extra": 1}
    assert run["tags"] == ["baseline"] and run["message"] == "first try"
    shown = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)
    [entry] = shown["inputs_manifest"]["files"]
    assert entry["path"] == "data/train.csv" and entry["size"] == 8
    import hashlib

    assert entry["hash"] == "sha256:" + hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert shown["outputs_manifest"]["files"][0]["path"] == "out.txt"
    assert shown["environment"]["python"]["executable"]
    # Declared data is not part of the source snapshot.
    if "snapshot" in run:
        tree = git(repo, "ls-tree", "-r", "--name-only", run["snapshot"])
        assert "data/train.csv" not in tree and "out.txt" not in tree


def test_record_after_the_fact(repo: Path) -> None:
    proc = prov(
        repo,
        "record",
        "--command",
        "sbatch train.sh",
        "--exit-code",
        "1",
        "--duration",
        "3600",
        "-p",
        "nodes=4",
        "--json",
    )
    record = json.loads(proc.stdout)
    assert record["command"] == "sbatch train.sh" and record["status"] == "failed"
    assert record["duration"] == 3600 and record["origin"] == "record"
    assert "argv" not in record
    [run] = runs_json(repo)
    assert run["id"] == record["id"]


def test_detached_head(repo: Path) -> None:
    second = commit_file(repo, "a.txt", "a")
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    prov(repo, "run", "--", PY, "-c", "pass")
    [run] = runs_json(repo)
    assert run["commit"] == git(repo, "rev-parse", "HEAD") != second
    assert "branch" not in run


def test_repository_without_commits_is_a_clear_error(empty_repo: Path) -> None:
    proc = prov(empty_repo, "run", "--", PY, "-c", "print('never')", check=False)
    assert proc.returncode == 4
    assert proc.stderr.startswith("error: this repository has no commits yet")
    assert "never" not in proc.stdout and "Traceback" not in proc.stderr


def test_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    proc = prov(tmp_path, "log", check=False)
    assert proc.returncode == 4 and "not a git repository" in proc.stderr


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/hostname", ".git/config"])
def test_paths_outside_the_repository_are_refused_before_running(repo: Path, path: str) -> None:
    (repo.parent / "outside.txt").write_text("x")
    proc = prov(repo, "run", "-i", path, "--", PY, "-c", "open('ran','w')", check=False)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (repo / "ran").exists()
    assert runs_json(repo) == []


def test_missing_input_is_a_clear_error(repo: Path) -> None:
    proc = prov(repo, "run", "-i", "nope.csv", "--", PY, "-c", "pass", check=False)
    assert proc.returncode == 5 and "nope.csv" in proc.stderr


def test_odd_file_names(repo: Path) -> None:
    odd = repo / "data dir" / "naïve résumé ✓.csv"
    odd.parent.mkdir()
    odd.write_text("1\n")
    prov(
        repo,
        "run",
        "-i",
        "data dir",
        "-o",
        "out put.txt",
        "--",
        PY,
        "-c",
        "open('out put.txt','w').write('x')",
    )
    [run] = runs_json(repo)
    shown = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)
    assert [f["path"] for f in shown["inputs_manifest"]["files"]] == ["data dir/naïve résumé ✓.csv"]
    assert shown["outputs_manifest"]["files"][0]["path"] == "out put.txt"


def test_symlinked_input_is_followed(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "dataset.bin"
    target.write_bytes(b"\x00\x01" * 100)
    (repo / "data.bin").symlink_to(target)
    prov(repo, "run", "-i", "data.bin", "--", PY, "-c", "pass")
    [run] = runs_json(repo)
    [entry] = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)["inputs_manifest"][
        "files"
    ]
    assert entry["size"] == 200 and entry["link"] == str(target)


def test_command_not_found_is_not_recorded(repo: Path) -> None:
    proc = prov(repo, "run", "--", "no-such-command-xyz", check=False)
    assert proc.returncode == 127 and "no-such-command-xyz" in proc.stderr
    assert runs_json(repo) == []


def test_twenty_parallel_runs_are_all_recorded(repo: Path) -> None:
    (repo / "in.txt").write_text("shared input\n")

    def one(i: int) -> subprocess.CompletedProcess[str]:
        return prov(
            repo,
            "run",
            "-i",
            "in.txt",
            "-p",
            f"seed={i}",
            "--",
            PY,
            "-c",
            f"print({i})",
            check=False,
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results]
    runs = runs_json(repo)
    assert sorted(r["params"]["seed"] for r in runs) == list(range(20))
    assert len({r["inputs"] for r in runs}) == 1  # one shared manifest, stored once
    assert git(repo, "fsck", "--no-progress", "--connectivity-only") == ""


def test_corrupt_hand_edited_note_is_reported_and_other_runs_still_shown(repo: Path) -> None:
    prov(repo, "run", "--", PY, "-c", "pass")
    prov(repo, "run", "--", PY, "-c", "pass")
    note = git(repo, "notes", "--ref=prov", "show", "HEAD")
    lines = note.splitlines()
    broken = lines[0][: len(lines[0]) // 2]  # a line cut in half by a careless edit
    git(repo, "notes", "--ref=prov", "add", "-f", "-m", "\n".join([broken, lines[1]]), "HEAD")
    proc = prov(repo, "show", "HEAD")
    assert proc.stdout.count("\nStatus:") == 1 or proc.stdout.count("Status:") == 1
    assert "warning: unreadable ledger line 1" in proc.stderr
    assert len(runs_json(repo)) == 1


def test_log_views(repo: Path) -> None:
    prov(repo, "run", "--metric", "acc=0.5", "--", PY, "-c", "pass")
    second = commit_file(repo, "train.py", "print(1)\n", "add training")
    prov(repo, "run", "--metric", "acc=0.7", "--", PY, "train.py")
    text = prov(repo, "log").stdout
    assert text.startswith(f"commit {second}")
    assert "add training" in text and "acc=0.7" in text and "acc=0.5" in text
    oneline = prov(repo, "log", "--oneline").stdout.splitlines()
    assert len(oneline) == 2 and oneline[0].split()[1] == second[:7]
    assert len(runs_json(repo, "HEAD~1..HEAD")) == 1
    path_limited = json.loads(prov(repo, "log", "--json", "--", "train.py").stdout)
    assert [c["commit"] for c in path_limited] == [second]
    bad = prov(repo, "log", "no-such-rev..HEAD", check=False)
    assert bad.returncode == 2 and "bad revision" in bad.stderr


def test_plain_git_log_shows_runs_readably_after_init(repo: Path) -> None:
    prov(repo, "run", "--metric", "acc=0.5", "--", PY, "-c", "pass")  # before init
    prov(repo, "init")
    prov(repo, "init")  # idempotent
    assert git(repo, "config", "--get-all", "notes.displayRef") == "refs/notes/prov-log"
    assert (repo / ".gitprov.toml").exists()
    prov(repo, "run", "--", PY, "-c", "import sys; sys.exit(2)", check=False)
    first, second = sorted(runs_json(repo), key=lambda r: r["id"])
    shown = git(repo, "log", "-1")
    assert f"✓ {first['short_id']}  ok" in shown and "acc=0.5" in shown
    assert f"✗ {second['short_id']}  failed (exit 2)" in shown
    assert '{"' not in shown  # people see the summary, not the JSON


def test_config_file_declares_default_inputs(repo: Path) -> None:
    (repo / "data.csv").write_text("1\n")
    (repo / ".gitprov.toml").write_text('[run]\ninputs = ["data.csv"]\n')
    prov(repo, "run", "--", PY, "-c", "pass")
    [run] = runs_json(repo)
    assert run["inputs"]
    (repo / ".gitprov.toml").write_text("[run\n")
    proc = prov(repo, "run", "--", PY, "-c", "pass", check=False)
    assert proc.returncode == 2 and ".gitprov.toml is not valid TOML" in proc.stderr


def test_show_by_prefix_and_ambiguity(repo: Path) -> None:
    prov(repo, "run", "--", PY, "-c", "pass")
    [run] = runs_json(repo)
    assert run["id"] in prov(repo, "show", run["short_id"][:5]).stdout
    missing = prov(repo, "show", "zzzzzzzz", check=False)
    assert missing.returncode == 6 and missing.stderr.startswith("error: no run matches")


def test_bad_param_syntax_is_a_usage_error(repo: Path) -> None:
    proc = prov(repo, "run", "-p", "novalue", "--", PY, "-c", "pass", check=False)
    assert proc.returncode == 2 and "key=value" in proc.stderr


def test_working_directory_is_recorded_relative_to_the_root(repo: Path) -> None:
    sub = repo / "src"
    sub.mkdir()
    (sub / "in.txt").write_text("x")
    prov(sub, "run", "-i", "in.txt", "--", PY, "-c", "import os; print(os.getcwd())")
    [run] = runs_json(repo)
    assert run["cwd"] == "src"
    shown = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)
    assert shown["inputs_manifest"]["files"][0]["path"] == "src/in.txt"


def test_environment_of_the_commands_interpreter_is_recorded(repo: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    prov(repo, "run", "--", python, "-c", "pass")
    [run] = runs_json(repo)
    env = json.loads(prov(repo, "show", "--json", run["short_id"]).stdout)["environment"]
    assert env["python"]["executable"] == python
    assert os.path.realpath(env["python"]["executable"]) != ""


def test_show_in_a_repository_without_commits_says_so(empty_repo: Path) -> None:
    proc = prov(empty_repo, "show", check=False)
    assert proc.returncode == 4 and "no commits yet" in proc.stderr

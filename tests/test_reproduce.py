"""`git prov reproduce` end to end: real repositories, the real CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import git, prov

PY = sys.executable

PIPELINE = """\
import json, os, sys, time
total = sum(int(x) for x in open("data/in.csv").read().split())
os.makedirs("out", exist_ok=True)
with open("out/result.txt", "w") as f:
    f.write(f"{total * FACTOR}\\n")
    if "noisy" in sys.argv:
        f.write(f"{time.time()}\\n")
json.dump({"total": total * FACTOR}, open("out/metrics.json", "w"))
"""


def _pipeline(repo: Path, factor: int = 1) -> None:
    (repo / "pipe.py").write_text(PIPELINE.replace("FACTOR", str(factor)))


@pytest.fixture
def pipeline(repo: Path) -> Path:
    """A repo with a committed pipeline script and untracked input data."""
    _pipeline(repo)
    git(repo, "add", "pipe.py")
    git(repo, "commit", "-q", "-m", "pipeline")
    (repo / "data").mkdir()
    (repo / "data" / "in.csv").write_text("1\n2\n3\n")
    return repo


def _run(repo: Path, *extra: str) -> dict[str, object]:
    prov(
        repo,
        "run",
        "-i",
        "data/in.csv",
        "-o",
        "out",
        "--metrics-file",
        "out/metrics.json",
        "--",
        PY,
        "pipe.py",
        *extra,
    )
    docs = json.loads(prov(repo, "find", "--json").stdout or "[]")
    return dict(max(docs, key=lambda r: r["id"]))


def _reproduce(repo: Path, *args: str) -> tuple[int, dict[str, object], str]:
    proc = prov(repo, "reproduce", "--json", *args, check=False)
    doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, doc, proc.stderr


def _no_worktree_left(repo: Path) -> bool:
    directory = repo / ".git" / "prov" / "reproduce"
    listed = git(repo, "worktree", "list").splitlines()
    return len(listed) == 1 and (not directory.exists() or not any(directory.iterdir()))


def _user_state(repo: Path) -> tuple[str, bytes]:
    return git(repo, "status", "--porcelain", "--untracked-files=all"), (
        repo / ".git" / "index"
    ).read_bytes()


def test_deterministic_pipeline_reproduces_byte_identically(pipeline: Path) -> None:
    run = _run(pipeline)
    before = _user_state(pipeline)
    code, doc, err = _reproduce(pipeline, str(run["short_id"]))
    assert code == 0, err
    assert doc["verdict"] == "identical" and doc["reproduced"] is True
    assert doc["outputs"]["same"] is True
    assert [m["within"] for m in doc["metrics"]] == [True]
    inputs = doc["inputs"]
    assert [(i["path"], i["status"], i["found_in"]) for i in inputs] == [
        ("data/in.csv", "ok", "working-tree")
    ]
    rerun = doc["rerun"]
    assert rerun["reproduces"] == run["id"] and rerun["id"] != run["id"]
    stored = json.loads(prov(pipeline, "show", "--json", rerun["id"]).stdout)
    assert stored["reproduces"] == run["id"]
    # The user's working tree, index and worktree list are untouched; the worktree is gone.
    assert _user_state(pipeline) == before
    assert len(git(pipeline, "worktree", "list").splitlines()) == 1
    assert _no_worktree_left(pipeline)
    assert (pipeline / "out" / "result.txt").read_text() == "6\n"


def test_changed_input_is_refused_then_allowed_with_drift(pipeline: Path) -> None:
    run = _run(pipeline)
    (pipeline / "data" / "in.csv").write_text("1\n2\n4\n")
    code, doc, err = _reproduce(pipeline, str(run["short_id"]))
    assert code == 5
    assert doc["verdict"] == "refused" and doc["rerun"] is None
    assert "data/in.csv" in err
    assert _no_worktree_left(pipeline)
    code, doc, err = _reproduce(pipeline, str(run["short_id"]), "--allow-drift")
    assert code == 1, err
    assert doc["verdict"] == "differs"
    assert any("data/in.csv" in d for d in doc["drift"])
    assert doc["rerun"]["reproduces"] == run["id"]
    assert [c["path"] for c in doc["outputs"]["changes"]] == ["out/metrics.json", "out/result.txt"]
    # Missing input: also refused, named.
    (pipeline / "data" / "in.csv").unlink()
    code, doc, err = _reproduce(pipeline, str(run["short_id"]))
    assert code == 5 and "data/in.csv" in err and "missing" in err


def test_nondeterministic_output_differs_but_metric_within_tolerance(pipeline: Path) -> None:
    run = _run(pipeline, "noisy")
    code, doc, err = _reproduce(pipeline, str(run["short_id"]), "--rtol", "1e-6")
    assert code == 0, err
    assert doc["verdict"] == "within-tolerance"
    [change] = doc["outputs"]["changes"]
    assert change["path"] == "out/result.txt" and change["change"] == "changed"
    assert change["old_hash"] != change["new_hash"]
    assert doc["metrics"][0]["name"] == "total" and doc["metrics"][0]["within"]


def test_dirty_tree_run_reproduces_from_its_snapshot(pipeline: Path) -> None:
    _pipeline(pipeline, factor=10)  # an uncommitted change to the code
    run = _run(pipeline)
    assert run["snapshot"]
    git(pipeline, "checkout", "--", "pipe.py")  # the committed code would give 6, not 60
    before = _user_state(pipeline)
    code, doc, err = _reproduce(pipeline, str(run["short_id"]), "--keep-worktree")
    assert code == 0, err
    assert doc["source"] == run["snapshot"] and doc["verdict"] == "identical"
    kept = Path(str(doc["worktree"]))
    assert (kept / "out" / "result.txt").read_text() == "60\n"
    # Recorded on the commit the run ran on, with the same snapshot (issue 15, item 8).
    assert doc["rerun"]["commit"] == run["commit"]
    assert doc["rerun"]["snapshot"] == run["snapshot"]
    assert _user_state(pipeline) == before
    git(pipeline, "worktree", "remove", "--force", str(kept))


def test_run_on_a_rewritten_away_commit_still_reproduces(pipeline: Path) -> None:
    git(pipeline, "checkout", "-q", "-b", "feature")
    _pipeline(pipeline, factor=7)
    git(pipeline, "commit", "-q", "-am", "feature code")
    run = _run(pipeline)
    original = str(run["commit"])
    git(pipeline, "commit", "-q", "--amend", "-m", "feature code, amended")
    git(pipeline, "checkout", "-q", "main")
    git(pipeline, "branch", "-q", "-D", "feature")
    git(pipeline, "reflog", "expire", "--expire=now", "--all")
    git(pipeline, "gc", "-q", "--prune=now")
    assert git(pipeline, "cat-file", "-t", original) == "commit"  # kept by refs/prov/objects
    code, doc, err = _reproduce(pipeline, str(run["short_id"]))
    assert code == 0, err
    assert doc["source"] == original and doc["verdict"] == "identical"


def _hostile_run(
    repo: Path, run: dict[str, object], entries: list[tuple[str, bytes]], **changes: object
) -> str:
    """Store a copy of ``run`` whose input manifest names ``entries`` (path, content)."""
    import hashlib

    from git_prov.model.ids import new_run_id
    from git_prov.model.manifest import DataEntry, DataManifest
    from git_prov.model.record import with_fields
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    opened = open_repo(repo)
    ledger = Ledger(opened)
    original = ledger.resolve_run(str(run["id"])).record
    manifest = DataManifest.build(
        [p for p, _ in entries],
        [
            DataEntry(p, len(data), "sha256:" + hashlib.sha256(data).hexdigest())
            for p, data in entries
        ],
    )
    oid = ledger.store_object(manifest.to_toml())
    head = git(repo, "rev-parse", "HEAD")  # its source holds the tracked link out
    fields: dict[str, object] = {"inputs": oid, "commit": head, "snapshot": None}
    data = [oid]
    if "outputs" in changes:  # declared output paths
        declared = changes.pop("outputs")
        assert isinstance(declared, list)
        out = DataManifest.build([str(p) for p in declared], [])
        fields["outputs"] = ledger.store_object(out.to_toml())
        data.append(str(fields["outputs"]))
    record = with_fields(original, id=new_run_id(), **fields, **changes)
    ledger.write([(record.commit, record)], objects={"data": data}, keep=[record.commit])
    return record.id


def test_hostile_manifest_paths_never_write_outside_the_worktree(
    pipeline: Path, tmp_path: Path
) -> None:
    run = _run(pipeline)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "x.csv"
    victim.write_bytes(b"precious\n")
    # A tracked symlink leading out of the repository, and inputs "inside" it.
    os.symlink(outside, pipeline / "escape")
    git(pipeline, "add", "escape")
    git(pipeline, "commit", "-q", "-m", "a link out")
    before = sorted(p.name for p in tmp_path.iterdir()), victim.stat()
    cases = [
        [("../evil.txt", b"evil\n")],
        [(str(tmp_path / "abs.txt"), b"evil\n")],
        [(".git/hooks/post-checkout", b"evil\n")],
        [("escape/x.csv", b"precious\n")],  # matches what the link shows: would be copied
        [("escape/new.csv", b"evil\n")],
    ]
    for entries in cases:
        if entries[0][0].endswith("new.csv"):
            (outside / "new.csv").write_bytes(b"evil\n")
        run_id = _hostile_run(pipeline, run, entries)
        code, doc, err = _reproduce(pipeline, run_id, "--allow-drift")
        assert code == 5, (entries, err)
        assert doc == {} or doc["rerun"] is None
        (outside / "new.csv").unlink(missing_ok=True)
    ok_input = [("data/in.csv", b"1\n2\n3\n")]
    for changes in ({"outputs": ["../evil"]}, {"cwd": "../.."}):
        run_id = _hostile_run(pipeline, run, ok_input, **changes)
        code, doc, err = _reproduce(pipeline, run_id)
        assert code == 5 and "unsafe" in err, (changes, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before[0]
    after = victim.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before[1].st_ino, before[1].st_mtime_ns)
    assert victim.read_bytes() == b"precious\n"
    assert not (pipeline / ".git" / "hooks" / "post-checkout").exists()
    assert len(git(pipeline, "worktree", "list").splitlines()) == 1


def test_dry_run_writes_nothing_and_names_blockers(pipeline: Path) -> None:
    run = _run(pipeline)
    refs = git(pipeline, "for-each-ref")
    before = _user_state(pipeline)
    code, doc, err = _reproduce(pipeline, str(run["short_id"]), "--dry-run")
    assert code == 0, err
    assert doc["verdict"] == "ready" and doc["rerun"] is None and doc["worktree"] is None
    assert doc["environment"] is not None
    assert git(pipeline, "for-each-ref") == refs  # no run recorded
    assert not (pipeline / ".git" / "prov" / "reproduce").exists()
    assert _user_state(pipeline) == before
    (pipeline / "data" / "in.csv").write_text("changed\n")
    code, doc, err = _reproduce(pipeline, str(run["short_id"]), "--dry-run")
    assert code == 1
    assert doc["verdict"] == "blocked" and any("data/in.csv" in b for b in doc["blockers"])
    text = prov(pipeline, "reproduce", "--dry-run", str(run["short_id"]), check=False)
    assert text.returncode == 1 and "would NOT run" in text.stdout


def test_write_requirements_pins_recorded_packages(pipeline: Path, tmp_path: Path) -> None:
    run = _run(pipeline)
    target = tmp_path / "requirements.txt"
    code, doc, _ = _reproduce(
        pipeline, str(run["short_id"]), "--dry-run", "--write-requirements", str(target)
    )
    assert code == 0 and doc["requirements"] == str(target)
    lines = [line for line in target.read_text().splitlines() if not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    assert any(line.startswith("click==") for line in lines)


def test_recorded_command_reruns_through_the_shell_and_hand_metrics_are_unchecked(
    pipeline: Path,
) -> None:
    prov(pipeline, "run", "-o", "out", "--", PY, "pipe.py")  # makes out/ for record
    cmd = f"{PY} pipe.py"
    prov(pipeline, "record", "-i", "data/in.csv", "-o", "out", "--metric", "acc=0.5", "-c", cmd)
    docs = json.loads(prov(pipeline, "find", "--json").stdout)
    recorded = max(docs, key=lambda r: r["id"])
    code, doc, err = _reproduce(pipeline, str(recorded["short_id"]))
    assert code == 0, err
    assert doc["command"] == ["sh", "-c", cmd] and doc["verdict"] == "identical"
    assert doc["metrics"] == [
        {"name": "acc", "old": 0.5, "new": None, "within": None, "delta": None}
    ]


# ---- library pieces (no git) -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "a/../../x", ".git/config", "a\\b", "a//b", "./a", "", "a/./b", "a/"],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    from git_prov.errors import BadPath
    from git_prov.reproduce import safe_relative

    with pytest.raises(BadPath):
        safe_relative(path)


def test_place_file_never_writes_through_links(tmp_path: Path) -> None:
    from git_prov.errors import BadPath
    from git_prov.reproduce import place_file

    root, outside = tmp_path / "wt", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    source = tmp_path / "data.bin"
    source.write_bytes(b"data")
    (outside / "victim").write_bytes(b"keep")
    os.symlink(outside / "victim", root / "link")  # a link at the target itself
    os.symlink(outside, root / "dir")  # a linked directory on the way
    os.symlink(tmp_path / "nowhere", root / "dangling")
    place_file(root, "link", source, "100755")
    assert not (root / "link").is_symlink() and (root / "link").read_bytes() == b"data"
    assert os.stat(root / "link").st_mode & 0o111
    for bad in ("dir/new", "dir/victim", "dangling/x"):
        with pytest.raises(BadPath):
            place_file(root, bad, source, "100644")
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"keep"
    place_file(root, "a/b/c.bin", source, "100644")
    assert (root / "a" / "b" / "c.bin").read_bytes() == b"data"


def test_metric_tolerance() -> None:
    from git_prov.reproduce import compare_metrics

    old = {"a": 1.0, "b": 100.0, "c": float("nan"), "d": "adam", "e": True, "f": 1}
    new = {"a": 1.0 + 1e-12, "b": 100.5, "c": float("nan"), "d": "sgd", "e": True}
    got = {m.name: m.within for m in compare_metrics(old, new, rtol=1e-9, atol=0.0)}
    assert got == {"a": True, "b": False, "c": True, "d": False, "e": True, "f": None}
    assert {m.name: m.within for m in compare_metrics(old, new, rtol=0.01, atol=0)}["b"] is True
    assert {m.name: m.within for m in compare_metrics(old, new, rtol=0, atol=0.5)}["b"] is True

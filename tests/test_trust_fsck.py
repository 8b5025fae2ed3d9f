"""``git prov fsck``: a clean ledger passes; unreadable lines, conflicts, missing or
malformed objects, unsafe paths and unreadable refs are found and reported precisely."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from conftest import git, prov
from factories import make_record

from git_prov.fsck import recover_stale_ref_locks, unsafe_path_reason
from git_prov.model.record import Tombstone
from git_prov.store.ledger import KIND_DATA, NOTES_REF, Ledger
from git_prov.store.repo import open_repo

PY = sys.executable
MISSING = "0123456789abcdef0123456789abcdef01234567"


def _fsck(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = prov(path, "fsck", "--json", *args, check=False)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}


def _codes(doc: dict[str, Any], severity: str | None = None) -> list[str]:
    return [str(f["code"]) for f in doc["findings"] if severity in (None, f["severity"])]


def _ledger(path: Path) -> tuple[Ledger, str]:
    repo = open_repo(path)
    return Ledger(repo), str(repo.head_commit().id)


def test_a_recorded_ledger_is_consistent(repo: Path) -> None:
    (repo / "data.csv").write_text("a\n")
    prov(repo, "run", "-i", "data.csv", "-o", "out.txt", "--", PY, "-c", "print('hi')")
    prov(repo, "record", "-c", "echo done")
    code, doc = _fsck(repo)
    assert code == 0 and doc["ok"] is True
    assert _codes(doc, "error") == []
    assert doc["checked"]["runs"] == 2
    proc = prov(repo, "fsck")
    assert "ledger is consistent" in proc.stderr


def test_unreadable_lines_are_reported_with_commit_and_line(repo: Path) -> None:
    prov(repo, "record", "-c", "good run")
    head = git(repo, "rev-parse", "HEAD")
    note = git(repo, "notes", "--ref=prov", "show", "HEAD")
    broken = note + "\nthis is not a record\n" + '{"v":1,"kind":"run","id":"x"}\n'
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", "HEAD", input=broken)
    code, doc = _fsck(repo)
    assert code == 1
    bad = [f for f in doc["findings"] if f["code"] == "bad-line"]
    assert [(f["commit"], f["line"]) for f in bad] == [(head, 2), (head, 3)]
    text = prov(repo, "fsck", check=False).stdout
    assert f"the note on {head[:12]}, line 2" in text


def test_a_newer_format_version_is_a_warning_not_a_problem(repo: Path) -> None:
    prov(repo, "record", "-c", "good run")
    note = git(repo, "notes", "--ref=prov", "show", "HEAD") + '\n{"v":99,"kind":"run"}\n'
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", "HEAD", input=note)
    code, doc = _fsck(repo)
    assert code == 0 and _codes(doc, "warning") == ["newer-format"]


def test_conflicting_records_and_missing_objects_are_problems(repo: Path) -> None:
    ledger, head = _ledger(repo)
    one = make_record(head)
    forged = make_record(head, id=one.id, metrics={"acc": 0.99})
    orphan = make_record(head, inputs=MISSING, snapshot=MISSING)
    ledger.write([(head, one), (head, forged), (head, orphan)], keep=[head])
    code, doc = _fsck(repo)
    assert code == 1
    assert set(_codes(doc, "error")) == {"conflict", "missing-object", "missing-snapshot"}
    conflict = next(f for f in doc["findings"] if f["code"] == "conflict")
    assert conflict["run"] == one.id


def test_unkept_commits_and_unreferenced_manifests_are_warnings(repo: Path) -> None:
    ledger, head = _ledger(repo)
    manifest = ledger.store_object(b'prov = 1\nkind = "data"\npaths = ["a"]\n')
    ledger.write([(head, make_record(head, inputs=manifest))])  # neither kept nor stored
    code, doc = _fsck(repo)
    assert code == 0
    assert set(_codes(doc, "warning")) == {"commit-not-kept", "object-not-in-tree"}


def test_tombstones_for_runs_never_seen_are_information(repo: Path) -> None:
    ledger, head = _ledger(repo)
    stranger = make_record(head).id
    ledger.write([(head, Tombstone(stranger, "2026-11-26T00:00:00.000Z", "gc"))])
    code, doc = _fsck(repo)
    assert code == 0 and _codes(doc) == ["tombstone-unknown-run"]


def test_manifests_with_unsafe_paths_or_bad_toml_are_problems(repo: Path) -> None:
    ledger, head = _ledger(repo)
    hostile = ledger.store_object(
        b'prov = 1\nkind = "data"\npaths = ["../../etc/passwd", "/etc/shadow"]\n'
        b'file = [{path = "a\\nb", size = 1, hash = "sha256:00", mode = "100644"}]\n'
    )
    broken = ledger.store_object(b'prov = 1\nkind = "data"\nfile = [[[[[\n')
    ledger.write(
        [(head, make_record(head, inputs=hostile)), (head, make_record(head, outputs=broken))],
        objects={KIND_DATA: [hostile, broken]},
        keep=[head],
    )
    code, doc = _fsck(repo)
    assert code == 1
    assert sorted(_codes(doc, "error")) == ["bad-manifest", *["unsafe-path"] * 3]
    text = prov(repo, "fsck", check=False).stdout
    assert "'a\\nb'" in text and "a\nb" not in text  # paths are shown escaped


def test_unsafe_path_reasons() -> None:
    assert unsafe_path_reason("data/train.csv") is None
    assert unsafe_path_reason("") == "empty path"
    assert unsafe_path_reason("/abs") == "absolute path"
    assert unsafe_path_reason("C:\\x") == "absolute path"
    assert unsafe_path_reason("a/../../b") == "'..' leaves the working tree"
    assert unsafe_path_reason("a//b") == "not a normalised path"
    assert unsafe_path_reason(".git/config") == "inside .git"
    assert unsafe_path_reason("x\x1b[2J") == "control characters in the path"


def test_an_unreadable_ledger_ref_exits_9(repo: Path) -> None:
    prov(repo, "record", "-c", "a run")
    blob = git(repo, "hash-object", "-w", "--stdin", input="not a commit\n")
    git(repo, "update-ref", NOTES_REF, blob)
    proc = prov(repo, "fsck", check=False)
    assert proc.returncode == 9
    assert "refs/notes/prov does not point at a commit" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_data_drift_is_information(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("x\n1\n")
    (repo / "data" / "same.csv").write_text("y\n")
    git(repo, "add", "data/same.csv")
    git(repo, "commit", "-q", "-m", "tracked data")
    prov(repo, "run", "-i", "data", "--", PY, "-c", "pass")
    code, doc = _fsck(repo, "--data")
    assert code == 0 and _codes(doc) == []
    assert doc["checked"]["files_hashed"] == 2
    (repo / "data" / "train.csv").write_text("x\n2\n")
    code, doc = _fsck(repo, "--data")
    assert code == 0
    drift = [f for f in doc["findings"] if f["code"] == "data-drift"]
    assert [f["path"] for f in drift] == ["data/train.csv"]


def test_a_stale_ref_lock_is_reported_and_removed_by_the_next_write(repo: Path) -> None:
    prov(repo, "record", "-c", "first")
    lock = repo / ".git" / "refs" / "notes" / "prov.lock"
    lock.write_text("0" * 40 + "\n")
    old = time.time() - 60
    os.utime(lock, (old, old))
    code, doc = _fsck(repo)
    assert code == 0 and _codes(doc) == ["stale-lock"]
    assert f"rm '{lock}'" in prov(repo, "fsck").stdout
    prov(repo, "record", "-c", "second")  # would fail on the lock without recovery
    assert not lock.exists()
    assert len(git(repo, "notes", "--ref=prov", "show", "HEAD").splitlines()) == 2


def test_a_young_lock_is_waited_for_not_removed_at_once(repo: Path) -> None:
    prov(repo, "record", "-c", "first")
    lock = repo / ".git" / "refs" / "prov" / "objects.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    removed = recover_stale_ref_locks(open_repo(repo), min_age=0.3)
    assert removed == [lock] and not lock.exists()
    lock.write_text("")
    assert recover_stale_ref_locks(open_repo(repo), min_age=60, wait=False) == []
    assert lock.exists()

"""Two different records under one run id — an attacker's edited copy of a signed record,
or two machines that wrote different content for one id — are never shown as if there
were one: show, log, find and their --json say the run is in conflict and which copy
verifies, the verified copy is preferred, and fetch/sync warn when such a copy arrives."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import git, prov

needs_ssh = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def _sign_with_ssh(repo: Path, keys: Path) -> None:
    keys.mkdir(exist_ok=True)
    key = keys / "ada"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ada", "-f", str(key)],
            check=True,
        )
        (keys / "allowed_signers").write_text(f"ada@example.com {(keys / 'ada.pub').read_text()}")
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingKey", str(key))
    git(repo, "config", "gpg.ssh.allowedSignersFile", str(keys / "allowed_signers"))


def _world(tmp_path: Path, repo: Path) -> tuple[Path, Path]:
    """``repo`` (ours) and an attacker's clone, both with the bare remote as origin."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    prov(repo, "push", "origin")
    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", str(remote), str(attacker))
    prov(attacker, "fetch", "origin")
    return remote, attacker


def _tamper(clone: Path, old: str, new: str) -> None:
    """Edit the record in the clone's note by hand (keeping its signature) and push it."""
    text = git(clone, "notes", "--ref=prov", "show", "HEAD") + "\n"
    assert old in text
    git(clone, "notes", "--ref=prov", "add", "-f", "-F", "-", "HEAD", input=text.replace(old, new))
    prov(clone, "push", "origin")


def _show_json(repo: Path, run: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(prov(repo, "show", "--json", run).stdout)
    return doc


@needs_ssh
def test_a_tampered_copy_of_a_signed_record_is_flagged_and_the_verified_one_shown(
    repo: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    _sign_with_ssh(repo, keys)
    prov(repo, "record", "--sign", "--metric", "acc=0.5", "-c", "python train.py")
    [run] = json.loads(prov(repo, "find", "--json").stdout)
    short = run["short_id"]
    _, attacker = _world(tmp_path, repo)
    _tamper(attacker, '"acc":0.5', '"acc":0.99')

    fetched = prov(repo, "fetch", "origin")
    assert "warning:" in fetched.stderr and short in fetched.stderr
    assert "conflict" in fetched.stderr and "verifies" in fetched.stderr

    # Both copies are kept (union), and the one that verifies is shown, flagged.
    assert prov(repo, "verify", check=False).returncode == 1
    doc = _show_json(repo, short)
    assert doc["metrics"] == {"acc": 0.5}
    conflict = doc["conflict"]
    assert conflict["shown"] == "verified"
    assert sorted(c["verdict"] for c in conflict["copies"]) == ["bad", "good"]
    assert {json.dumps(c["metrics"]) for c in conflict["copies"]} == {
        '{"acc": 0.5}',
        '{"acc": 0.99}',
    }
    text = prov(repo, "show", short)
    assert "0.5" in text.stdout and "Conflict:" in text.stdout
    assert "2 different copies" in text.stdout and "verifies" in text.stdout
    log = prov(repo, "log")
    assert "conflict" in log.stdout and "acc=0.99" not in log.stdout
    [found] = json.loads(prov(repo, "find", "--json").stdout)
    assert found["metrics"] == {"acc": 0.5} and found["conflict"]["shown"] == "verified"
    table = prov(repo, "find")
    assert "conflict" in table.stdout + table.stderr and "0.99" not in table.stdout

    # Once we push the union back, the attacker's clone too shows the verified copy.
    prov(repo, "push", "origin")
    _sign_with_ssh(attacker, keys)
    prov(attacker, "fetch", "origin")
    assert _show_json(attacker, short)["metrics"] == {"acc": 0.5}


def test_unsigned_copies_that_differ_are_listed_never_chosen_silently(
    repo: Path, tmp_path: Path
) -> None:
    prov(repo, "record", "--metric", "acc=0.5", "-c", "python train.py")
    [run] = json.loads(prov(repo, "find", "--json").stdout)
    short = run["short_id"]
    _, other = _world(tmp_path, repo)
    _tamper(other, '"acc":0.5', '"acc":0.7')

    sync = prov(repo, "sync", "origin")
    assert "warning:" in sync.stderr and short in sync.stderr and "conflict" in sync.stderr
    doc = _show_json(repo, short)
    conflict = doc["conflict"]
    assert conflict["shown"] == "first"  # nothing verifies: the first copy, and we say so
    assert [c["verdict"] for c in conflict["copies"]] == ["unsigned", "unsigned"]
    assert sorted(c["metrics"]["acc"] for c in conflict["copies"]) == [0.5, 0.7]
    assert [c["shown"] for c in conflict["copies"]].count(True) == 1
    text = prov(repo, "show", short).stdout
    assert "Conflict:" in text and "none verifies" in text
    assert "0.5" in text and "0.7" in text  # every copy's differing fields are listed
    log = json.loads(prov(repo, "log", "--json").stdout)
    assert log[0]["runs"][0]["conflict"]["copies"]
    # A run without a conflict says nothing of it.
    prov(repo, "record", "-c", "python other.py")
    [plain, _] = sorted(
        json.loads(prov(repo, "find", "--json").stdout), key=lambda r: "conflict" in r
    )
    assert "conflict" not in plain and "conflict" not in _show_json(repo, plain["short_id"])


def test_identical_copies_on_rewritten_commits_are_no_conflict(repo: Path) -> None:
    prov(repo, "record", "-c", "python train.py")
    git(repo, "config", "notes.rewriteRef", "refs/notes/prov")
    git(repo, "commit", "-q", "--amend", "-m", "amended")  # the note line is copied as is
    [run] = json.loads(prov(repo, "find", "--json").stdout)
    assert "conflict" not in run
    assert "conflict" not in prov(repo, "show", run["short_id"]).stdout.lower()

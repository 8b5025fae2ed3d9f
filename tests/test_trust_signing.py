"""Signed records: ``--sign`` with the user's git signing setup (SSH and OpenPGP), and
``git prov verify`` telling good, bad (tampered), unknown-key and unsigned records apart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import git, missing, prov, runs_json

from git_prov.model.record import line_object, parse_line, signing_payload
from git_prov.trust.signing import BAD, GOOD, UNKNOWN_KEY, UNSIGNED

PY = sys.executable
needs_ssh = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason=missing("ssh-keygen"))
needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason=missing("gpg"))


def _ssh_key(directory: Path, name: str, email: str) -> Path:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(key)], check=True
    )
    return key


@pytest.fixture
def ssh_signing(repo: Path, tmp_path: Path) -> Path:
    """``repo`` set up to sign with an SSH key that its allowed-signers file trusts."""
    keys = tmp_path / "keys"
    keys.mkdir()
    key = _ssh_key(keys, "ada", "ada@example.com")
    allowed = keys / "allowed_signers"
    allowed.write_text(f"ada@example.com {(keys / 'ada.pub').read_text()}")
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingKey", str(key))
    git(repo, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    return keys


def _verify(repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = prov(repo, "verify", "--json", *args, check=False)
    return proc.returncode, json.loads(proc.stdout)


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {str(r["run"])[-8:]: str(r["status"]) for r in doc["runs"]}


def _edit_note(repo: Path, old: str, new: str) -> None:
    """Change a stored record by hand, as someone with push access could."""
    text = git(repo, "notes", "--ref=prov", "show", "HEAD") + "\n"
    assert old in text
    git(repo, "notes", "--ref=prov", "add", "-f", "-F", "-", "HEAD", input=text.replace(old, new))


@needs_ssh
def test_signed_record_verifies_and_names_its_signer(repo: Path, ssh_signing: Path) -> None:
    prov(repo, "record", "--sign", "--metric", "acc=0.9", "-c", "python train.py")
    [run] = runs_json(repo)
    assert str(run["signature"]).startswith("-----BEGIN SSH SIGNATURE-----")
    note = git(repo, "notes", "--ref=prov", "show", "HEAD")
    assert len(note.splitlines()) == 1  # the armored signature is escaped: still one line
    code, doc = _verify(repo)
    assert code == 0
    [verdict] = doc["runs"]
    assert verdict["status"] == GOOD
    assert verdict["signer"] == "ada@example.com"
    assert verdict["format"] == "ssh" and str(verdict["key"]).startswith("ED25519 key SHA256:")
    text = prov(repo, "verify").stdout
    assert "good" in text and "ada@example.com" in text


@needs_ssh
def test_a_hand_edited_metric_is_reported_bad(repo: Path, ssh_signing: Path) -> None:
    prov(repo, "record", "--sign", "--metric", "acc=0.9", "-c", "python train.py")
    prov(repo, "record", "--sign", "--metric", "acc=0.5", "-c", "python train.py --other")
    _edit_note(repo, '"acc":0.5', '"acc":0.99')
    code, doc = _verify(repo)
    assert code == 1
    assert sorted(_statuses(doc).values()) == [BAD, GOOD]
    bad = next(r for r in doc["runs"] if r["status"] == BAD)
    assert "does not match" in bad["detail"]
    # The tampered line is still a well-formed ledger line: only verify can tell.
    assert prov(repo, "fsck", check=False).returncode == 0


@needs_ssh
def test_unsigned_and_unknown_keys_are_told_apart(
    repo: Path, ssh_signing: Path, tmp_path: Path
) -> None:
    prov(repo, "record", "--no-sign", "-c", "unsigned run")
    prov(repo, "record", "--sign", "-c", "trusted key")
    stranger = _ssh_key(ssh_signing, "eve", "eve@example.com")
    git(repo, "config", "user.signingKey", str(stranger))
    prov(repo, "record", "--sign", "-c", "untrusted key")
    code, doc = _verify(repo)
    assert code == 0  # nothing is bad: unsigned and unknown keys are reported, not failed
    by_command = {r["command"]: _statuses(doc)[str(r["short_id"])] for r in runs_json(repo)}
    assert by_command == {
        "unsigned run": UNSIGNED,
        "trusted key": GOOD,
        "untrusted key": UNKNOWN_KEY,
    }
    assert prov(repo, "verify", "--strict", check=False).returncode == 1
    # Verifying one run by its short id.
    short = next(str(r["short_id"]) for r in runs_json(repo) if r["command"] == "trusted key")
    code, doc = _verify(repo, short)
    assert code == 0 and list(_statuses(doc).values()) == [GOOD]


@needs_ssh
def test_prov_sign_config_signs_every_record_and_no_sign_overrides(
    repo: Path, ssh_signing: Path
) -> None:
    git(repo, "config", "prov.sign", "true")
    prov(repo, "run", "--", PY, "-c", "pass")
    prov(repo, "run", "--no-sign", "--", PY, "-c", "print(1)")
    signed = {str(r["command"]).endswith("pass"): "signature" in r for r in runs_json(repo)}
    assert signed == {True: True, False: False}


@needs_ssh
def test_a_broken_signing_setup_fails_before_the_command_runs(
    repo: Path, ssh_signing: Path
) -> None:
    git(repo, "config", "user.signingKey", str(ssh_signing / "no-such-key"))
    proc = prov(repo, "run", "--sign", "--", PY, "-c", "open('ran', 'w')", check=False)
    assert proc.returncode == 4
    assert "user.signingKey" in proc.stderr and "Traceback" not in proc.stderr
    assert not (repo / "ran").exists()
    assert git(repo, "notes", "--ref=prov", "list", check=False) == ""


def test_the_signed_payload_is_the_stored_json_without_its_signature() -> None:
    line = (
        'summary\t{"command":"c","commit":"' + "a" * 40 + '","duration":5,"ended":"e",'
        '"exit_code":0,"id":"20260101T000000.000Z-0123abcd","kind":"run","new_field":[1],'
        '"signature":"sig","started":"s","status":"ok","v":1}'
    )
    record = parse_line(line)
    data = line_object(line)
    # Verification uses the stored bytes (duration 5, an unknown field), not a re-encoding.
    assert signing_payload(data) == line.split("\t")[1].replace(',"signature":"sig"', "").encode()
    assert record is not None


# ---- OpenPGP ------------------------------------------------------------------------------


@pytest.fixture
def gnupg_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throw-away GnuPG home with one passphrase-less signing key for ada@example.com.
    (Short path under /tmp: gpg-agent's socket path must fit in 108 bytes.)"""
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    try:
        subprocess.run(
            ["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
             "Ada Tester <ada@example.com>", "ed25519", "sign", "never"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield home
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@needs_gpg
def test_openpgp_signatures_verify_against_the_keyring(
    repo: Path, gnupg_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "config", "user.signingKey", "ada@example.com")
    prov(repo, "record", "--sign", "--metric", "acc=0.9", "-c", "one")
    prov(repo, "record", "--sign", "--metric", "acc=0.5", "-c", "two")
    assert all(str(r["signature"]).startswith("-----BEGIN PGP") for r in runs_json(repo))
    code, doc = _verify(repo)
    assert code == 0 and set(_statuses(doc).values()) == {GOOD}
    assert all(r["signer"] == "Ada Tester <ada@example.com>" for r in doc["runs"])
    _edit_note(repo, '"acc":0.5', '"acc":0.99')
    code, doc = _verify(repo)
    assert code == 1 and sorted(_statuses(doc).values()) == [BAD, GOOD]
    # Someone without Ada's public key cannot check her records: unknown key, not bad.
    empty = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    try:
        empty.chmod(0o700)
        monkeypatch.setenv("GNUPGHOME", str(empty))
        code, doc = _verify(repo)
        assert set(_statuses(doc).values()) == {UNKNOWN_KEY}
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], check=False, capture_output=True)
        shutil.rmtree(empty, ignore_errors=True)
        monkeypatch.setenv("GNUPGHOME", str(gnupg_home))

"""Secrets in snapshots: untracked secret files (``.env``, private keys, credential stores)
are left out of the dirty-tree snapshot, said at record time and recorded; and the value of
a redacted environment variable is redacted wherever else it appears in a record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import commit_file, git, prov, runs_json

from git_prov.trust.secrets import DEFAULT_SECRET_FILES, REDACTED, secret_file

SECRET_FILES = {
    ".env": "DB_PASSWORD=dotenv-secret-1\n",
    ".env.production": "API_KEY=dotenv-secret-2\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nssh-secret-3\n",
    "deploy/server.pem": "pem-secret-4\n",
    ".netrc": "machine example.com login me password netrc-secret-5\n",
    "config/credentials.json": '{"secret": "credentials-secret-6"}\n',
    "infra/prod.tfvars": 'token = "tfvars-secret-7"\n',
}
KEPT_FILES = {
    "id_rsa.pub": "ssh-ed25519 AAAA public\n",
    ".env.example": "DB_PASSWORD=\n",
    "notes.txt": "dirty work\n",
    "src/envelope.py": "x = 1\n",
}


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        ("app/.env.local", True),
        ("prod.env", True),
        (".env.example", False),
        ("a/b/id_ed25519", True),
        ("id_ed25519.pub", False),
        ("key.pem", True),
        ("tls/server.key", True),
        ("keys.p12", True),
        ("home/.netrc", True),
        (".pgpass", True),
        (".npmrc", True),
        (".git-credentials", True),
        (".docker/config.json", True),
        ("config.json", False),
        ("credentials", True),
        ("gcp/client_secret_123.json", True),
        ("secrets.yaml", True),
        ("terraform.tfvars", True),
        ("environment.yml", False),
        ("keyboard.py", False),
        ("monkey.pem.txt", False),
    ],
)
def test_default_secret_files(path: str, secret: bool) -> None:
    assert secret_file(path) is secret


def test_the_last_matching_pattern_decides() -> None:
    patterns = (*DEFAULT_SECRET_FILES, "!deploy/*.pem", "*.secret")
    assert not secret_file("deploy/server.pem", patterns)
    assert secret_file("other/server.pem", patterns)
    assert secret_file("x/y.secret", patterns)


def _write(repo: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)


def _object_database(repo: Path) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout


def test_untracked_secret_files_stay_out_of_the_snapshot(repo: Path) -> None:
    _write(repo, SECRET_FILES | KEPT_FILES)
    proc = prov(repo, "run", "--", "true")
    notes = [line for line in proc.stderr.splitlines() if "secret files" in line]
    assert len(notes) == 1, proc.stderr
    for name in SECRET_FILES:
        assert name in notes[0]
    (run,) = runs_json(repo)
    assert run["omitted_secrets"] == sorted(SECRET_FILES)
    snapshot = str(run["snapshot"])
    in_snapshot = set(git(repo, "ls-tree", "-r", "--name-only", snapshot).splitlines())
    assert set(KEPT_FILES) <= in_snapshot
    assert not set(SECRET_FILES) & in_snapshot
    assert "Left out (secret files):" in git(repo, "log", "-1", "--format=%B", snapshot)
    stored = _object_database(repo)
    for content in SECRET_FILES.values():
        assert content.encode() not in stored
    shown = prov(repo, "show", str(run["short_id"])).stdout
    assert ".env" in shown and "untracked secret files, not snapshotted" in shown
    # The tree a run left out secret files of is the tree `check` compares: no code drift.
    checked = json.loads(prov(repo, "check", "--json", str(run["short_id"])).stdout)
    assert checked["code"]["same"] is True, checked["code"]


def test_a_tree_with_only_secret_files_needs_no_snapshot(repo: Path) -> None:
    _write(repo, {".env": "TOKEN=abcdefgh12345\n"})
    proc = prov(repo, "record", "--command", "true")
    assert ".env" in proc.stderr
    (run,) = runs_json(repo)
    assert "snapshot" not in run and run["omitted_secrets"] == [".env"]


def test_gitprov_toml_decides_which_files_are_secret(repo: Path) -> None:
    commit_file(
        repo,
        ".gitprov.toml",
        '[run]\nsecret_files = ["!deploy/*.pem", "*.secret"]\n',
    )
    _write(repo, {"deploy/server.pem": "public test cert\n", "x.secret": "s3cr3t-value\n"})
    prov(repo, "run", "--", "true")
    (run,) = runs_json(repo)
    assert run["omitted_secrets"] == ["x.secret"]
    in_snapshot = git(repo, "ls-tree", "-r", "--name-only", str(run["snapshot"])).splitlines()
    assert "deploy/server.pem" in in_snapshot and "x.secret" not in in_snapshot


def test_tracked_secret_files_are_snapshotted_as_they_are(repo: Path) -> None:
    """A tracked file is in git already: its change is part of the exact code that ran."""
    commit_file(repo, ".env", "MODE=dev\n")
    (repo / ".env").write_text("MODE=prod\n")
    prov(repo, "run", "--", "true")
    (run,) = runs_json(repo)
    assert "omitted_secrets" not in run
    assert git(repo, "show", f"{run['snapshot']}:.env") == "MODE=prod"


def test_a_redacted_variables_value_is_redacted_everywhere(repo: Path) -> None:
    password = "hunter2-but-longer"
    url_password = "url-pass-9876"
    pin = "31415926535"
    env = {
        "DB_PASSWORD": password,  # secret by name
        "DATABASE_URL": f"postgres://app:{url_password}@db:5432/main",  # secret part of a URL
        "MY_PIN_SECRET": pin,  # a numeric secret
        "HF_TOKEN": "not-a-token-shape-but-secret",  # allow-listed (HF_*): manifest too
    }
    script = (
        "import os, sys\n"
        "print('connecting with', os.environ['DB_PASSWORD'])\n"
        "print('url password', os.environ['DATABASE_URL'].split(':')[2], file=sys.stderr)\n"
        "raise SystemExit(0)\n"
    )
    prov(
        repo,
        "run",
        "-p",
        f"conn=user/{password}",
        "-p",
        f"seed={pin}",
        "-t",
        f"pw-{url_password}",
        "-m",
        f"ran with {password} and {url_password}",
        "--",
        sys.executable,
        "-c",
        script,
        password,
        f"--db=x{url_password}y",
        env=env,
    )
    (run,) = runs_json(repo)
    assert run["params"] == {"conn": f"user/{REDACTED}", "seed": REDACTED}
    assert run["tags"] == [f"pw-{REDACTED}"]
    assert run["message"] == f"ran with {REDACTED} and {REDACTED}"
    argv = run["argv"]
    assert isinstance(argv, list) and argv[3:] == [REDACTED, f"--db=x{REDACTED}y"]
    short = str(run["short_id"])
    assert prov(repo, "show", "--log", "stdout", short).stdout == f"connecting with {REDACTED}\n"
    assert REDACTED in prov(repo, "show", "--log", "stderr", short).stdout
    env_doc = json.loads(prov(repo, "show", "--json", short).stdout)["environment"]
    assert env_doc["variables"]["HF_TOKEN"] == REDACTED
    stored = _object_database(repo)
    for value in (password, url_password, pin, env["HF_TOKEN"]):
        assert value.encode() not in stored, value

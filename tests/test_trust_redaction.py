"""Secrets never reach a stored object: command lines, argv, params, messages, environment
variables and captured logs are redacted before anything is written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, prov, runs_json

from git_prov.trust.redaction import Redactor, known_secrets
from git_prov.trust.secrets import REDACTED

PY = sys.executable
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HF_TOKEN = "hf_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn"


# Arguments separated by spaces; [brackets] mark what must become <redacted>.
ARGV_CASES = [
    "t.py --password=[hunter2] --lr=0.1",
    "t.py --token [abc123xyz] -v",
    "t.py --api-key [k] --max-tokens 512",
    "t.py --password [12345678]",
    "run --use-auth-token --model gpt2",
    "run --api-key-file keys/k.txt",
    "env AWS_SECRET_ACCESS_KEY=[a/b] LR=1 python",
    "python x.py db.password=[pw123] trainer.epochs=3",
    "git clone https://bob:[s3cret]@example.com/r.git",
    "curl -u bob:[pw] https://x",
    "mysql -p[S3cret] db",
    "sshpass -p [pw] ssh host",
    f"push [{GITHUB_TOKEN}]",
    "python -c login(password='[x1y2z3]')",
]


@pytest.mark.parametrize("case", ARGV_CASES)
def test_argv_keeps_everything_but_the_secret(case: str) -> None:
    argv = re.sub(r"\[([^\]]*)\]", r"\1", case).split(" ")
    expected = re.sub(r"\[[^\]]*\]", REDACTED, case).split(" ")
    assert list(Redactor().argv(argv)) == expected


def test_command_text_keeps_its_quoting_when_it_can() -> None:
    r = Redactor()
    assert r.command("python t.py --password=hunter2 --x 'a b'") == (
        f"python t.py --password={REDACTED} --x 'a b'"
    )
    # The secret is quoted differently in the text: rebuilt from the redacted argv.
    assert "hunter 2" not in r.command("python t.py --password='hunter 2'")
    assert "p4ss" not in r.command("unbalanced 'quote https://u:p4ss@h")


def test_params_with_secret_names_are_redacted_but_hyperparameters_kept() -> None:
    values = Redactor().values(
        {
            "api_key": "abc",
            "max_tokens": 512,
            "db_password": 12345678,
            "lr": 0.1,
            "url": "https://u:pw@h/x",
            "use_auth": True,
        }
    )
    assert values == {
        "api_key": REDACTED,
        "max_tokens": 512,
        "db_password": REDACTED,
        "lr": 0.1,
        "url": f"https://u:{REDACTED}@h/x",
        "use_auth": True,
    }


def test_logs_lose_secret_looking_substrings_and_keep_everything_else() -> None:
    r = Redactor(known=("s3cr3t-from-env",))
    log = (
        b"epoch 1 loss=0.3\n"
        b"connecting to postgres://app:dbpass@db:5432/x\n"
        b"password=letmein token: abcdef123\n"
        b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdef\n"
        b"leaked s3cr3t-from-env here\n" + GITHUB_TOKEN.encode() + b"\n"
        b"KeyError: 'column'\n"
        b"\xff\xfe not utf-8 \x00\n"
    )
    out = r.log(log)
    for secret in (b"dbpass", b"letmein", b"abcdef123", b"eyJhbGci", b"s3cr3t", b"ghp_"):
        assert secret not in out
    assert b"epoch 1 loss=0.3\n" in out
    assert b"KeyError: 'column'" in out  # tracebacks stay readable
    assert b"\xff\xfe not utf-8 \x00\n" in out  # undecodable bytes are kept as they were
    assert r.log(b"nothing to see\n") == b"nothing to see\n"


def test_known_secrets_come_from_secret_named_variables_only() -> None:
    env = {
        "DB_PASSWORD": "long-enough-secret",
        "HF_TOKEN": "short",
        "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "TOKENIZERS_PARALLELISM": "false-but-long",
    }
    assert known_secrets(env) == ("long-enough-secret",)


def _all_object_bytes(repo: Path) -> bytes:
    """The content of every object in the repository's object database (reachable or not)."""
    proc = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo,
        capture_output=True,
        check=True,
    )
    return proc.stdout


def _reachable_object_bytes(repo: Path) -> bytes:
    """Every object reachable from any ref (refs/notes/prov, refs/prov/objects,
    refs/notes/prov-log included), as git cat-file --batch prints them."""
    listing = git(repo, "rev-list", "--objects", "--all")
    ids = "\n".join(line.split(" ", 1)[0] for line in listing.splitlines()) + "\n"
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input=ids.encode(),
        capture_output=True,
        check=True,
    )
    return proc.stdout


def test_planted_secrets_reach_no_stored_object(repo: Path) -> None:
    prov(repo, "init", "--no-hooks")  # the git log display ref is written too
    (repo / "data.csv").write_text("x\n1\n")
    secrets = {
        "env allowed, secret name": HF_TOKEN,  # HF_* is recorded: value redacted
        "env allowed, URL password": "urlpw-in-torch-home",
        "env not recorded, printed": "printed-db-password-42",
        "env allowed, token shape": GITHUB_TOKEN,
        "argv --password=": "argv-password-1",
        "argv --token X": "argv-token-value-2",
        "argv URL": "argv-url-password-3",
        "param api_key": "param-api-key-4",
        "message": "glpat-" + "m" * 24,
        "stdout password=": "log-password-5",
        "stderr URL": "log-url-password-6",
        "record --password": "record-password-7",
    }
    env = {
        "HF_TOKEN": HF_TOKEN,
        "TORCH_HOME": f"https://user:{secrets['env allowed, URL password']}@cache.example/t",
        "MY_DB_PASSWORD": secrets["env not recorded, printed"],
        "NVIDIA_NOTE": GITHUB_TOKEN,
        "OMP_NUM_THREADS": "4",
    }
    script = (
        "import os, sys\n"
        "print('db password is', os.environ['MY_DB_PASSWORD'])\n"
        f"print('password={secrets['stdout password=']}')\n"
        f"print('fetching https://bob:{secrets['stderr URL']}@example.com/x', file=sys.stderr)\n"
        "print('token', os.environ['HF_TOKEN'], file=sys.stderr)\n"
    )
    prov(
        repo,
        "run",
        "-i",
        "data.csv",
        "-p",
        f"api_key={secrets['param api_key']}",
        "-p",
        "lr=0.1",
        "-m",
        f"pushed with {secrets['message']}",
        "--",
        PY,
        "-c",
        script,
        f"--password={secrets['argv --password=']}",
        "--token",
        secrets["argv --token X"],
        f"https://u:{secrets['argv URL']}@example.com/repo",
        env=env,
    )
    prov(
        repo,
        "record",
        "--command",
        f"deploy.sh --password {secrets['record --password']} --verbose",
        env=env,
    )
    stored = _reachable_object_bytes(repo)
    everything = _all_object_bytes(repo)
    for what, secret in secrets.items():
        assert secret.encode() not in stored, f"{what} reached a stored object"
        assert secret.encode() not in everything, f"{what} reached the object database"
    # …and what is stored is still useful.
    run, recorded = sorted(runs_json(repo), key=lambda r: str(r["id"]))
    argv = run["argv"]
    assert isinstance(argv, list)
    code = script.replace(secrets["stdout password="], REDACTED)
    assert argv[:3] == [PY, "-c", code.replace(secrets["stderr URL"], REDACTED)]
    assert argv[3:] == [
        f"--password={REDACTED}",
        "--token",
        REDACTED,
        f"https://u:{REDACTED}@example.com/repo",
    ]
    assert run["params"] == {"api_key": REDACTED, "lr": 0.1}
    assert recorded["command"] == f"deploy.sh --password {REDACTED} --verbose"
    out = prov(repo, "show", "--log", "stdout", str(run["short_id"])).stdout
    assert out == f"db password is {REDACTED}\npassword={REDACTED}\n"
    env_doc = json.loads(prov(repo, "show", "--json", str(run["short_id"])).stdout)["environment"]
    assert env_doc["variables"]["OMP_NUM_THREADS"] == "4"
    assert env_doc["variables"]["HF_TOKEN"] == REDACTED
    assert "MY_DB_PASSWORD" not in env_doc["variables"]

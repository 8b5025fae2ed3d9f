"""One list of secret rules (git_prov.trust.secrets), and every rule through every path.

Every token shape of :data:`TOKEN_SHAPES` has examples here (a shape added without
examples fails :func:`test_every_token_shape_has_examples`), and every example goes through
every redaction path: environment variables, argv (positional, ``--opt=``, ``--opt X``),
command text, params, messages, tags, logs (line by line, with hints) and tracebacks — in
unit tests per path, and end to end through ``git prov run`` and the Python API into a real
repository whose object database must not hold any of them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import prov

import git_prov
from git_prov.capture.environment import capture_environment
from git_prov.capture.environment.variables import variables_section
from git_prov.trust.redaction import Redactor
from git_prov.trust.secrets import (
    LINE_HINTS,
    REDACTED,
    SECRET_NAME_HINTS,
    TEXT_HINTS,
    TOKEN_SHAPES,
    is_secret_name,
)

# Built from pieces so that this file itself does not look like it leaks credentials.
_A = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
TOKEN_EXAMPLES: dict[str, tuple[str, ...]] = {
    "GitHub token": tuple(f"gh{kind}_" + _A[:36] for kind in "pousr"),
    "GitHub fine-grained token": ("github_pat_" + "11ABCDEFG0" + "_" + _A[:30],),
    "GitLab token": ("glpat-" + "xJ9kL2mN4pQ6rS8tU0vW",),
    "Hugging Face token": ("hf_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn",),
    "OpenAI or Anthropic key": (
        "sk-" + _A[:40],
        "sk-proj-" + _A[:32],
        "sk-ant-" + "api03-" + _A[:30],
    ),
    "Stripe key": ("sk_live_" + _A[:24], "rk_test_" + _A[:24]),
    "AWS access key id": ("AKIA" + "IOSFODNN7EXAMPLE", "ASIA" + "Y34FZKBOKMUTVV7A"),
    "Slack token": (
        "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKl",
        "xoxp-" + "1234567890-abcdefghij",
        "xoxa-" + "2-1234567890",
    ),
    "npm token": ("npm_" + _A[:36],),
    "PyPI token": ("pypi-" + "AgEIcHlwaS5vcmc" + _A[:40],),
    "Google API key": ("AIza" + "SyD-" + _A[:31],),
    "Google OAuth access token": ("ya29." + "a0AfH6SMB" + _A[:20],),
    "JSON Web Token": (
        "eyJ" + "hbGciOiJIUzI1NiJ9" + ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w",
    ),
    "PEM private key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + _A + "\n"
        "-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + _A + "\n"
        "-----END OPENSSH PRIVATE KEY-----",
    ),
}
EXAMPLES = [
    pytest.param(token, id=f"{shape}-{i}")
    for shape, tokens in TOKEN_EXAMPLES.items()
    for i, token in enumerate(tokens)
]


def _secret_part(token: str) -> str:
    """What must not survive: the token, or a PEM block's key material."""
    return token.splitlines()[1] if token.startswith("-----BEGIN") else token


def test_every_token_shape_has_examples() -> None:
    assert set(TOKEN_EXAMPLES) == {shape.name for shape in TOKEN_SHAPES}


@pytest.mark.parametrize("shape", TOKEN_SHAPES, ids=lambda shape: shape.name)
def test_each_hint_of_a_shape_is_in_one_of_its_examples(shape: object) -> None:
    """A shape's hints are what lets free text reach its pattern: each one is exercised."""
    from git_prov.trust.secrets import TokenShape

    assert isinstance(shape, TokenShape)
    examples = [token.lower() for token in TOKEN_EXAMPLES[shape.name]]
    for hint in shape.hints:
        assert any(hint in token for token in examples), f"no example of {shape.name} has {hint}"
    for token in examples:
        assert any(hint in token for hint in shape.hints), f"{token} holds no hint of its shape"
    hints = TEXT_HINTS if shape.spans_lines else LINE_HINTS
    assert set(shape.hints) <= set(hints)


def test_every_secret_name_holds_a_name_hint() -> None:
    """Free-text ``name=value`` redaction only looks at names holding a hint."""
    names = ["HF_TOKEN", "DB_PASSWORD", "PGPASSWORD", "MYSQL_PWD", "SMTP_PASS", "apiKey"]
    names += ["SESSION_COOKIE", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_CREDS", "BASIC_AUTH"]
    names += ["HTTP_AUTHORIZATION", "SENTRY_DSN", "GH_PAT", "SSH_PRIVATE_KEY", "MY_SECRETS"]
    names += ["X_SIGNATURE", "db_passphrase", "OPENAI_APIKEY", "NPM_AUTHTOKEN"]
    for name in names:
        assert is_secret_name(name)
        assert any(hint in name.lower() for hint in SECRET_NAME_HINTS), name
        # …and the free-text rule finds it in a log line with nothing else to go on.
        line = f"step 1 {name}=abcdefgh12345 done".encode()
        assert Redactor().log(line) == f"step 1 {name}={REDACTED} done".encode(), name


# ---- every path, one token at a time ------------------------------------------------------


def _traceback_of(token: str) -> bytes:
    try:
        raise RuntimeError(f"cannot connect with {token}")
    except RuntimeError as exc:
        return "".join(traceback.format_exception(exc)).encode()


_TRAINING_LOG = "".join(f"epoch {i} loss=0.{i:03d} acc=0.9{i}\n" for i in range(50))

PATHS: dict[str, Callable[[str], str]] = {
    "env variable": lambda t: variables_section({"NOTE_X": f"uses {t} here"}, ["NOTE_*"])["NOTE_X"],
    "argv positional": lambda t: " ".join(Redactor().argv(["deploy", t])),
    "argv --opt=value": lambda t: " ".join(Redactor().argv(["deploy", f"--note={t}"])),
    "argv --opt value": lambda t: " ".join(Redactor().argv(["deploy", "--note", t, "-v"])),
    "argv inside code": lambda t: " ".join(Redactor().argv(["python", "-c", f"f({t!r})"])),
    "command text": lambda t: Redactor().command(f"deploy --note {shlex.quote(t)} -v"),
    "param": lambda t: str(Redactor().values({"note": t})["note"]),
    "param in text": lambda t: str(Redactor().values({"note": f"from {t}."})["note"]),
    "message": lambda t: Redactor().text(f"deployed with {t} today"),
    "tag": lambda t: Redactor().strings([t])[0],
    "log": lambda t: Redactor().log(f"{_TRAINING_LOG}using {t}\n{_TRAINING_LOG}".encode()).decode(),
    "log, redrawn with CR": lambda t: Redactor().log(f"10%\rup {t}\r100%\n".encode()).decode(),
    "traceback": lambda t: Redactor().log(_traceback_of(t)).decode(),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("token", EXAMPLES)
def test_every_token_through_every_redaction_path(token: str, path: str) -> None:
    stored = PATHS[path](token)
    assert _secret_part(token) not in stored
    assert REDACTED in stored


def test_every_token_in_an_environment_manifest(repo: Path) -> None:
    env = {"PATH": "/nonexistent"}
    env |= {f"NVIDIA_NOTE_{i}": token for i, token in enumerate(_all_tokens())}
    manifest = capture_environment(repo, argv=["make"], env=env)
    data = manifest.to_toml().decode()
    for token in _all_tokens():
        assert _secret_part(token) not in data
    assert all(value == REDACTED for value in manifest.variables.values())


def _all_tokens() -> list[str]:
    return [token for tokens in TOKEN_EXAMPLES.values() for token in tokens]


# ---- end to end: a real repository's object database ----------------------------------------


def _object_database(repo: Path) -> bytes:
    proc = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo,
        capture_output=True,
        check=True,
    )
    return proc.stdout


def test_no_token_reaches_the_object_database(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [t for t in _all_tokens() if "\n" not in t]  # one argv word each
    pems = [t for t in _all_tokens() if "\n" in t]
    script = (
        "import os, sys\n"
        "for name, value in sorted(os.environ.items()):\n"
        "    if name.startswith('NVIDIA_NOTE'):\n"
        "        print('token', value)\n"
        "        print('token', value, file=sys.stderr)\n"
        "print(os.environ['PEM_TEXT'])\n"
    )
    env = {f"NVIDIA_NOTE_{i}": token for i, token in enumerate(tokens)}
    env["PEM_TEXT"] = "\n".join(pems)
    params = [arg for i, t in enumerate(tokens) for arg in ("-p", f"note{i}=x {t}")]
    tags = [arg for t in tokens for arg in ("-t", t)]
    prov(
        repo,
        "run",
        *params,
        *tags,
        "-m",
        "deployed with " + " ".join(tokens),
        "--",
        sys.executable,
        "-c",
        script,
        *tokens,
        *[f"--note={t}" for t in tokens],
        env=env,
    )
    prov(repo, "record", "--command", "deploy " + " ".join(tokens))
    monkeypatch.chdir(repo)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError), git_prov.run(message=" ".join(tokens)):
        raise RuntimeError(" ".join(tokens) + "\n" + "\n".join(pems))
    stored = _object_database(repo)
    assert stored.count(REDACTED.encode()) > 10 * len(tokens)
    for token in _all_tokens():
        assert _secret_part(token).encode() not in stored, f"{token[:8]}… was stored"


def test_secret_file_quick_rejection_agrees_with_the_patterns() -> None:
    import fnmatch

    from git_prov.trust.secrets import DEFAULT_SECRET_FILES, secret_file

    def plain(path: str, patterns: tuple[str, ...]) -> bool:
        name = path.rpartition("/")[2]
        for pattern in reversed(patterns):
            body = pattern.removeprefix("!")
            if "/" in body:
                body = body.removeprefix("/")
                hit = fnmatch.fnmatchcase(path, body) or fnmatch.fnmatchcase(path, "*/" + body)
            else:
                hit = fnmatch.fnmatchcase(name, body)
            if hit:
                return not pattern.startswith("!")
        return False

    sets = [
        DEFAULT_SECRET_FILES,
        (*DEFAULT_SECRET_FILES, "a[b", "x?y", "conf/*.key", "!keep.pem", "[!k]ey]"),
        ("*", "!*.txt"),
    ]
    paths = [
        "a/.env",
        ".env.example",
        "k/id_rsa.pub",
        "a[b",
        "x.y",
        "xzy",
        "conf/s.key",
        "d/conf/s.key",
        "keep.pem",
        "b.pem",
        "note.txt",
        "f123.txt",
        "key]",
        ".docker/config.json",
        "a/.docker/config.json",
        "config.json",
        "client_secret_1.json",
        "sub/credentials",
    ]
    for patterns in sets:
        for path in paths:
            assert secret_file(path, patterns) == plain(path, patterns), (path, patterns)

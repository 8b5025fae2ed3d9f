"""Secret rules: which names hold secrets, which substrings are credentials, and how a value
is redacted. Pure text rules, no I/O: environment capture (:mod:`git_prov.capture.environment`)
and every redaction path (:mod:`git_prov.trust.redaction`) use these and only these."""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# Words of a variable name that mark its value secret, and endings of glued words
# ("APIKEY", "HFTOKEN"). Words are split on "_", "-", "." and camelCase.
_SECRET_WORDS = frozenset(
    {
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "PWD",
        "KEY",
        "KEYS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "AUTHN",
        "AUTHZ",
        "PRIVATE",
        "SESSION",
        "COOKIE",
        "COOKIES",
        "PAT",
        "DSN",
        "SIGNATURE",
    }
)
_SECRET_FRAGMENTS = (
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "PRIVATE",
    "COOKIE",
    "SESSION",
    "AUTHORIZ",
)
_SECRET_ENDINGS = ("TOKEN", "TOKENS", "KEY", "KEYS", "AUTH", "PWD")
# Words ending like a secret that are not one.
_HARMLESS_WORDS = frozenset(
    {"MONKEY", "DONKEY", "HOCKEY", "JOCKEY", "TURKEY", "WHISKEY", "HOTKEY", "OLDPWD"}
)

_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^/?#\s]+)@"
)
_TOKEN_SHAPES = re.compile(
    "|".join(
        [
            r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
            r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
            r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
            r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}",  # Hugging Face
            r"(?<![A-Za-z0-9])sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI, Anthropic
            r"(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key id
            r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
            r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}",
            r"(?<![A-Za-z0-9])pypi-[A-Za-z0-9_\-]{50,}",
            r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}",  # Google API key
            r"(?<![A-Za-z0-9])ya29\.[0-9A-Za-z_\-]{20,}",  # Google OAuth access token
            r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWT
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
        ]
    )
)


def is_secret_name(name: str) -> bool:
    """Whether a variable (or option) called ``name`` probably holds a secret.

    Matches whole words (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASS``, ``apiKey``,
    ``OAUTH_CLIENT``), glued words (``APIKEY``, ``GITHUBTOKEN``), but not look-alikes
    (``TOKENIZERS_PARALLELISM``, ``KEYBOARD``, ``GIT_AUTHOR_NAME``, ``PWD``).
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+|_", spaced.upper()) if w]
    for word in words:
        if word in _HARMLESS_WORDS:
            continue
        if word in _SECRET_WORDS and not (word == "PWD" and len(words) == 1):
            return True
        if any(fragment in word for fragment in _SECRET_FRAGMENTS):
            return True
        if len(word) > 4 and word.endswith(_SECRET_ENDINGS):
            return True
    return False


def redact_value(name: str, value: str) -> str:
    """``value`` with anything secret replaced by ``"<redacted>"``.

    The whole value when :func:`is_secret_name` says ``name`` is secret (an empty value
    stays empty); otherwise the password of ``scheme://user:password@host`` URLs and every
    substring shaped like a known credential (GitHub, GitLab, Hugging Face, OpenAI, Stripe,
    AWS access key ids, Slack, npm, PyPI, Google, JWTs, PEM private keys). Pass ``name=""``
    for text that has no name, such as one argument of a command line.
    """
    if not value:
        return value
    if name and is_secret_name(name):
        return REDACTED
    value = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", value)
    return _TOKEN_SHAPES.sub(REDACTED, value)

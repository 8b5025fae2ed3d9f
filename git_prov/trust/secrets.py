"""Secret rules: which names hold secrets, which substrings are credentials, how a value
is redacted, and which files are left out of snapshots. Pure text rules, no I/O:
environment capture (:mod:`git_prov.capture.environment`), snapshots
(:mod:`git_prov.capture.source`) and every redaction path (:mod:`git_prov.trust.redaction`)
use these and only these."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from typing import ClassVar

from git_prov.model.frozen import Fields, frozen_fields

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

_NAME_RULES = {w.lower() for w in (*_SECRET_WORDS, *_SECRET_FRAGMENTS, *_SECRET_ENDINGS)}
SECRET_NAME_HINTS: tuple[str, ...] = tuple(
    sorted(w for w in _NAME_RULES if not any(o != w and o in w for o in _NAME_RULES))
)
"""Lower-case fragments one of which every name :func:`is_secret_name` accepts contains:
its words, fragments and endings, minus those holding another (``tokens`` holds
``token``). Derived, never copied: text without any of them holds no secret-named
assignment, so redaction looks for these before running a regular expression."""


@frozen_fields
class TokenShape(Fields):
    """A kind of credential recognised by its shape wherever it appears, whatever its name.

    ``hints`` are lower-case substrings one of which every match contains: redaction of free
    text (logs of megabytes) runs ``pattern`` only on lines holding a hint, so a shape whose
    hints miss its matches is a shape that lets tokens through. ``spans_lines``: a match may
    cover several lines (a PEM block), so the whole text is searched, not line by line.
    """

    name: str
    pattern: str
    hints: tuple[str, ...]
    spans_lines: bool = False

    def __init__(
        self,
        name: str,
        pattern: str,
        hints: tuple[str, ...],
        spans_lines: bool = False,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "name", name)
        set_(self, "pattern", pattern)
        set_(self, "hints", hints)
        set_(self, "spans_lines", spans_lines)


TOKEN_SHAPES: tuple[TokenShape, ...] = (
    TokenShape(
        "GitHub token",
        r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    TokenShape(
        "GitHub fine-grained token",
        r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
        ("github_pat_",),
    ),
    TokenShape("GitLab token", r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_\-]{20,}", ("glpat-",)),
    TokenShape("Hugging Face token", r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}", ("hf_",)),
    TokenShape(
        "OpenAI or Anthropic key",
        r"(?<![A-Za-z0-9])sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",
        ("sk-",),
    ),
    TokenShape(
        "Stripe key",
        r"(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        ("k_live_", "k_test_"),
    ),
    TokenShape(
        "AWS access key id",
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        ("akia", "asia"),
    ),
    TokenShape("Slack token", r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}", ("xox",)),
    TokenShape("npm token", r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}", ("npm_",)),
    TokenShape("PyPI token", r"(?<![A-Za-z0-9])pypi-[A-Za-z0-9_\-]{50,}", ("pypi-",)),
    TokenShape("Google API key", r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}", ("aiza",)),
    TokenShape(
        "Google OAuth access token", r"(?<![A-Za-z0-9])ya29\.[0-9A-Za-z_\-]{20,}", ("ya29.",)
    ),
    TokenShape(
        "JSON Web Token",
        r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        ("eyj",),
    ),
    TokenShape(
        "PEM private key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
        ("private key-----",),
        spans_lines=True,
    ),
)
"""Every credential shape git-prov redacts, in environment variables, argv, params,
messages, tags, logs and tracebacks alike (docs/security.md lists them)."""

URL_PASSWORD_HINT = "://"


# The patterns are compiled when first used, not at import: most values hold no hint of a
# secret and never need them (start-up: tests/test_startup.py).
@functools.cache
def _url_password() -> re.Pattern[str]:
    return re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^/?#\s]+)@")


@functools.cache
def _token_pattern() -> re.Pattern[str]:
    return re.compile("|".join(shape.pattern for shape in TOKEN_SHAPES))


LINE_HINTS: tuple[str, ...] = (
    URL_PASSWORD_HINT,
    *(hint for shape in TOKEN_SHAPES if not shape.spans_lines for hint in shape.hints),
)
"""Lower-case substrings without which no line holds a URL password or a token that
:func:`redact_value` replaces (shapes that span lines excepted: :data:`TEXT_HINTS`)."""
TEXT_HINTS: tuple[str, ...] = tuple(
    hint for shape in TOKEN_SHAPES if shape.spans_lines for hint in shape.hints
)
"""Lower-case substrings of the shapes that may span lines: look for them in a whole text."""
_VALUE_HINTS = (*LINE_HINTS, *TEXT_HINTS)


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
    substring shaped like a credential of :data:`TOKEN_SHAPES`. Pass ``name=""``
    for text that has no name, such as one argument of a command line.
    """
    if not value:
        return value
    if name and is_secret_name(name):
        return REDACTED
    lowered = value.lower()  # (the hints are ASCII: lower() keeps each one's letters together)
    if not any(hint in lowered for hint in _VALUE_HINTS):
        return value  # no URL password, no token shape: every match holds a hint
    value = _url_password().sub(lambda m: f"{m.group('head')}{REDACTED}@", value)
    return _token_pattern().sub(REDACTED, value)


def url_passwords(value: str) -> list[str]:
    """The passwords of the ``scheme://user:password@host`` URLs in ``value``."""
    if URL_PASSWORD_HINT not in value:
        return []
    return [m.group("password") for m in _url_password().finditer(value)]


# --- secret files -------------------------------------------------------------------------

DEFAULT_SECRET_FILES: tuple[str, ...] = (
    # Environment files: dotenv and its variants; their templates are meant to be shared.
    ".env",
    ".env.*",
    "*.env",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    "!*.env.example",
    # Private keys and key stores (public halves are fine).
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "!*.pub",
    # Credential stores of common tools.
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    ".docker/config.json",
    "credentials",
    "credentials.*",
    "*-credentials.json",
    "*_credentials.json",
    "client_secret*.json",
    "service-account*.json",
    ".secrets",
    "secrets.*",
    "*.tfvars",
)
"""Untracked files left out of dirty-tree snapshots by default: ``fnmatch`` patterns,
case-sensitive. A pattern without ``/`` matches a file's name in any directory; one with
``/`` matches the end of its repository-relative path. The last pattern matching a path
decides, and ``!pattern`` keeps a file in, so patterns appended from ``.gitprov.toml``
(``[run] secret_files``) override these."""


def secret_file(path: str, patterns: Sequence[str] = DEFAULT_SECRET_FILES) -> bool:
    """Whether the repository-relative posix ``path`` is a secret file by ``patterns``
    (see :data:`DEFAULT_SECRET_FILES` for the rules)."""
    return _SecretFiles.of(tuple(patterns)).match(path)


def secret_file_test(patterns: Sequence[str] = DEFAULT_SECRET_FILES) -> Callable[[str], bool]:
    """:func:`secret_file` with ``patterns`` prepared once, for testing many paths."""
    return _SecretFiles.of(tuple(patterns)).match


class _SecretFiles:
    """``patterns`` prepared for many paths: a path no pattern can match (by the literal
    start and end each pattern has) is rejected by two string tests; the rest go through
    the patterns, last first, as :func:`secret_file` describes."""

    _cache: ClassVar[dict[tuple[str, ...], _SecretFiles]] = {}

    @classmethod
    def of(cls, patterns: tuple[str, ...]) -> _SecretFiles:
        found = cls._cache.get(patterns)
        if found is None:
            found = cls._cache[patterns] = cls(patterns)
        return found

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.rules: list[tuple[bool, bool, str]] = []
        name_starts: set[str] = set()
        name_ends: set[str] = set()
        path_ends: set[str] = set()
        self.always_check = False
        for pattern in reversed(patterns):
            include = not pattern.startswith("!")
            body = pattern.removeprefix("!")
            by_path = "/" in body
            if by_path:
                body = body.removeprefix("/")
            self.rules.append((include, by_path, body))
            start, end = _literal_ends(body)
            if by_path:
                if not end:
                    self.always_check = True
                path_ends.add(end)
            elif start:
                name_starts.add(start)
            elif end:
                name_ends.add(end)
            else:
                self.always_check = True
        self.name_starts = tuple(name_starts)
        self.name_ends = tuple(name_ends)
        self.path_ends = tuple(path_ends)

    def match(self, path: str) -> bool:
        name = path.rpartition("/")[2]
        if not (
            self.always_check
            or name.startswith(self.name_starts)
            or name.endswith(self.name_ends)
            or path.endswith(self.path_ends)
        ):
            return False
        for include, by_path, body in self.rules:
            if by_path:
                hit = fnmatch.fnmatchcase(path, body) or fnmatch.fnmatchcase(path, "*/" + body)
            else:
                hit = fnmatch.fnmatchcase(name, body)
            if hit:
                return include
        return False


def _literal_ends(pattern: str) -> tuple[str, str]:
    """The text before a pattern's first wildcard and after its last one (the whole
    pattern twice when it has none): every name it matches starts and ends so."""
    cuts = [i for i, c in enumerate(pattern) if c in "*?["]
    if not cuts:
        return pattern, pattern
    last = max(i for i, c in enumerate(pattern) if c in "*?[]")
    return pattern[: cuts[0]], pattern[last + 1 :]

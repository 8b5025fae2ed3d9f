"""Keeping secrets out of stored records: command lines, params, messages and logs.

The rules live in :mod:`git_prov.trust.secrets` (secret names, the token shapes and their
hints); the environment manifest applies them to variables. This module applies the same
rules — :func:`~git_prov.trust.secrets.is_secret_name` for names,
:func:`~git_prov.trust.secrets.redact_value` for URL passwords and token shapes — to
everything else a record stores, before it is written:

* the argument vector and the command text (``--password=…``, ``--token X``,
  ``API_KEY=…`` assignments, ``https://user:pass@…``, ``curl -u user:pass``,
  ``mysql -pPASS``, ``sshpass -p PASS``, tokens anywhere in an argument);
* params and metrics whose names look secret, and any value holding a URL password or
  a token shape;
* the message and tags;
* captured stdout/stderr: the same, plus ``name=value`` / ``name: value`` pairs with
  secret-looking names and ``Authorization:``/``Bearer`` credentials.

On top of these rules, the *values* of secret-looking environment variables (``HF_TOKEN``,
``DB_PASSWORD``, …) and the passwords of URLs in any variable (at least
:data:`MIN_KNOWN_SECRET` characters, not paths) are replaced wherever they appear — argv,
command, params (numbers too), message, tags, logs, tracebacks — so a command that prints
``$DB_PASSWORD`` does not store it.

Only the secret part is replaced, by ``<redacted>``, so argv stays usable: ``--password=x``
becomes ``--password=<redacted>``. Redaction is a best effort against accidents, not a
guarantee: see docs/security.md.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence

from git_prov.model.frozen import Fields, frozen_fields
from git_prov.model.values import Scalar
from git_prov.trust.secrets import (
    LINE_HINTS,
    REDACTED,
    SECRET_NAME_HINTS,
    TEXT_HINTS,
    is_secret_name,
    redact_value,
    url_passwords,
)

# Shorter values of secret-named variables ("1", "true", "prod") would redact half a log.
MIN_KNOWN_SECRET = 8

# Last words of names that say the value is *about* a secret, not the secret itself
# (``--api-key-file PATH``, ``token_type: bearer``, ``max_tokens=512``'s cousins, and the
# ``KeyError: 'x'`` of every Python traceback).
_NOT_A_VALUE = frozenset(
    {
        "FILE",
        "FILES",
        "PATH",
        "PATHS",
        "DIR",
        "NAME",
        "NAMES",
        "ENV",
        "VAR",
        "TYPE",
        "SIZE",
        "LEN",
        "LENGTH",
        "COUNT",
        "ID",
        "HEADER",
        "ERROR",
        "EXCEPTION",
        "WARNING",
    }
)
# Names whose values are secret even when they are plain numbers (a numeric PIN or
# password); other secret-looking names keep numbers (``max_tokens=512``).
# (Each pattern here is compiled on first use — most text holds no hint of a secret — and
# then kept by re's own cache; start-up: tests/test_startup.py.)
_ALWAYS_SECRET = r"PASSW|PASSPHRASE|SECRET|CREDENTIAL|PRIVATE|(?:^|_)(?:PASS|PIN)$"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# An argument that is another option, not the value of the one before (``--use-auth-token
# --model x``: the first is a flag).
_OPTION = r"--?[A-Za-z][A-Za-z0-9_.\-]*(?:=.*)?"
_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate"})
# Lower-case substrings without which no rule below can match a line: those of the secret
# rules (URLs, token shapes, fragments of secret names; all from git_prov.trust.secrets,
# never copied here) and "bearer". A line without any of them is left alone without
# running a regex.
_HINTS = (*LINE_HINTS, *SECRET_NAME_HINTS, "bearer")
_TOKEN_HINT_SET = frozenset(LINE_HINTS)
_NAME_HINT_SET = frozenset(SECRET_NAME_HINTS)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# name=value and name: value in free text (logs, code in `python -c`, messages), for names
# holding a fragment of a secret-looking name (is_secret_name decides; the fragment keeps
# the regex from calling back for every loss=0.1). The name may be quoted (JSON, YAML,
# Python kwargs); the value is a quoted string or one word.
_ASSIGNMENT = (
    r"""(?<![A-Za-z0-9_.\-])(?P<name>(?=[A-Za-z_])[A-Za-z0-9_.\-]*?"""
    r"""(?i:""" + "|".join(map(re.escape, SECRET_NAME_HINTS)) + r""")"""
    r"""[A-Za-z0-9_.\-]*)(?P<sep>["']?[ \t]*[:=][ \t]*)"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,;&"'<>)\]}]+)"""
)
_AUTH_HEADER = (
    r"(?i)(?P<head>\b(?:proxy-)?authorization[ \t]*[:=][ \t]*(?:(?:bearer|basic|token|digest|"
    r"negotiate)[ \t]+)?)(?P<value>[^\s\"',;]+)"
)
_BEARER = r"(?i)(?P<head>\bbearer[ \t]+)(?P<value>[A-Za-z0-9._~+/\-]{12,}=*)"

# Programs whose short options carry passwords: mysql-style glued ``-pSECRET`` and
# sshpass's ``-p SECRET``; curl-style ``-u user:password``.
_GLUED_P = frozenset({"mysql", "mysqldump", "mysqladmin", "mysqlimport", "mariadb"})
_SPACED_P = frozenset({"sshpass"})
_USER_COLON = frozenset({"curl", "wget", "http", "httpie"})


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


@functools.lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a value called ``name`` (an option, a param, a key in a log) should be
    redacted: :func:`is_secret_name`, unless the name says the value is a path, a size, a
    type or an error (``--api-key-file``, ``token_type``, ``KeyError``)."""
    words = _words(name)
    if not words or words[-1] in _NOT_A_VALUE or words[-1].endswith(("ERROR", "EXCEPTION")):
        return False
    return is_secret_name(name)


def _secret_value(name: str, value: str) -> bool:
    """Whether ``value``, given under ``name``, is to be redacted."""
    if not value or value == REDACTED or not secret_name(name):
        return False
    if re.fullmatch(_NUMBER, value.strip("'\"")):
        return re.search(_ALWAYS_SECRET, "_".join(_words(name))) is not None
    return True


def known_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets of ``env`` worth looking for in text: values of secret-looking variables
    and the passwords of URLs in any variable (``DATABASE_URL=postgres://u:PASSWORD@h``) —
    each at least :data:`MIN_KNOWN_SECRET` characters and not a path (``SSH_AUTH_SOCK``).
    Everything the environment manifest redacts of a variable is among them."""
    found: set[str] = set()
    for name, value in env.items():
        if secret_name(name):
            found.add(value)
        elif "://" in value:
            found.update(url_passwords(value))
    found = {
        value
        for value in found
        if len(value) >= MIN_KNOWN_SECRET and not value.startswith(("/", "~")) and value != REDACTED
    }
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


@frozen_fields
class Redactor(Fields):
    """Redaction of everything a record stores. ``known`` are literal secret values
    (usually :func:`known_secrets` of the command's environment) replaced wherever found."""

    known: tuple[str, ...] = ()

    def __init__(
        self,
        known: tuple[str, ...] = (),
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "known", known)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Redactor:
        """A redactor that also knows the secret values of ``env`` (default: ours)."""
        return cls(known_secrets(os.environ if env is None else env))

    # ---- free text ---------------------------------------------------------------------

    def text(self, text: str) -> str:
        """Free text (a log, a message, one argument) with secrets replaced.

        Only the lines that contain a hint of a secret (``://``, a token prefix, a word
        such as ``pass``, ``key`` or ``token``) go through the regular expressions, which
        keeps a megabyte of training log at milliseconds, not seconds.
        """
        if not text:
            return text
        for value in self.known:
            if value in text:
                text = text.replace(value, REDACTED)
        lowered = text.translate(_ASCII_LOWER)  # same length as text, unlike str.lower()
        if any(hint in lowered for hint in TEXT_HINTS):  # a PEM block spans lines
            text = redact_value("", text)
            lowered = text.translate(_ASCII_LOWER)
        lines: dict[tuple[int, int], list[str]] = {}  # (start, end) of a line -> its hints
        for hint in _HINTS:
            at = lowered.find(hint)
            while at != -1:
                start = lowered.rfind("\n", 0, at) + 1
                end = lowered.find("\n", at)
                end = len(lowered) if end == -1 else end
                lines.setdefault((start, end), []).append(hint)
                at = lowered.find(hint, end)
        if not lines:
            return text
        pieces: list[str] = []
        done = 0
        for (start, end), hints in sorted(lines.items()):
            pieces.append(text[done:start])
            line = text[start:end]
            if "\r" in line:  # progress bars redraw with \r: each redraw is a line
                pieces.append("\r".join(_redact_segment(part) for part in line.split("\r")))
            else:
                pieces.append(_redact_segment(line, lowered[start:end], hints))
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def log(self, data: bytes) -> bytes:
        """A captured log with secrets replaced; bytes that are not UTF-8 pass unchanged."""
        text = data.decode("utf-8", errors="surrogateescape")
        redacted = self.text(text)
        if redacted == text:
            return data
        return redacted.encode("utf-8", errors="surrogateescape")

    # ---- command lines -----------------------------------------------------------------

    def argv(self, argv: Sequence[str]) -> tuple[str, ...]:
        """An argument vector with only the secret parts of its arguments replaced."""
        out: list[str] = []
        program = ""
        pending: str | None = None  # the option whose value is the next argument
        for arg in argv:
            if pending is not None and not re.fullmatch(_OPTION, arg):
                name, pending = pending, None
                if _secret_value(name, arg) or (name == "-p" and program in _SPACED_P):
                    out.append(REDACTED)
                    continue
                if program in _USER_COLON and name in ("-u", "--user", "--proxy-user"):
                    out.append(_after_colon(arg))
                    continue
            base = os.path.basename(arg)
            if base in _GLUED_P | _SPACED_P | _USER_COLON:
                program = base
            pending = None
            if program in _GLUED_P and arg.startswith("-p") and len(arg) > 2:
                out.append("-p" + REDACTED)
                continue
            out.append(self._argument(arg, program))
            if arg.startswith("-") and "=" not in arg and arg not in ("-", "--"):
                name = arg.lstrip("-")
                if secret_name(name) or (arg == "-p" and program in _SPACED_P):
                    pending = arg if arg == "-p" else name
                elif program in _USER_COLON and arg in ("-u", "--user", "--proxy-user"):
                    pending = arg
        return tuple(out)

    def _argument(self, arg: str, program: str) -> str:
        if program in _USER_COLON and arg.startswith(("-u", "--user=")) and ":" in arg:
            return _after_colon(arg)
        name, eq, value = arg.lstrip("-").partition("=")
        if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name) and _secret_value(name, value):
            return arg[: len(arg) - len(value)] + REDACTED
        return self.text(arg)

    def command(self, command: str) -> str:
        """A command as a shell would show it, with the same redactions as :meth:`argv`.

        The text keeps its own quoting where the secret can be found in it verbatim;
        otherwise it is rebuilt from the redacted arguments (``shlex.join``).
        """
        try:
            argv = shlex.split(command)
        except ValueError:  # unbalanced quotes: not a command line we can split
            return self.text(command)
        redacted = self.argv(argv)
        out = command
        for original, new in zip(argv, redacted, strict=True):
            if original == new:
                continue
            if original not in out:
                return shlex.join(redacted)
            out = out.replace(original, new)
        return self.text(out)

    # ---- params and metrics ------------------------------------------------------------

    def values(self, values: Mapping[str, Scalar]) -> dict[str, Scalar]:
        """Params or metrics: values of secret-looking names (strings, and numbers under
        names such as ``password``) become ``<redacted>``; strings are redacted as text."""
        out: dict[str, Scalar] = {}
        for name, value in values.items():
            if isinstance(value, bool):
                out[name] = value
            elif isinstance(value, str):
                out[name] = REDACTED if _secret_value(name, value) else self.text(value)
            elif _secret_value(name, repr(value)) or self._known_number(value):
                out[name] = REDACTED
            else:
                out[name] = value
        return out

    def _known_number(self, value: float) -> bool:
        """Whether a number is, as written, one of the known secrets (a numeric PIN)."""
        return bool(self.known) and any(text in self.known for text in (repr(value), str(value)))

    def strings(self, values: Iterable[str]) -> tuple[str, ...]:
        """Tags and other short strings, redacted as text."""
        return tuple(self.text(v) for v in values)

    def known_values(self, text: str) -> str:
        """Only the literal known secrets replaced (for text already redacted by its own
        rules, such as environment variables)."""
        for value in self.known:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def _redact_segment(
    line: str, lowered: str | None = None, hints: Sequence[str] | None = None
) -> str:
    """One line of text with its secrets replaced. ``lowered``/``hints``: the line in
    ASCII lower case and the hints found in it, when the caller knows them already."""
    if lowered is None:
        lowered = line.translate(_ASCII_LOWER)
    if hints is None:
        hints = [hint for hint in _HINTS if hint in lowered]
    if any(hint in _TOKEN_HINT_SET for hint in hints):
        line = redact_value("", line)  # URL passwords and known token shapes
    if "auth" in hints:
        line = re.sub(_AUTH_HEADER, lambda m: m.group("head") + REDACTED, line)
    if "bearer" in hints:
        line = re.sub(_BEARER, lambda m: m.group("head") + REDACTED, line)
    names = [hint for hint in hints if hint in _NAME_HINT_SET]
    if names and ("=" in line or ":" in line) and _may_assign(lowered, names):
        line = re.sub(_ASSIGNMENT, _redact_assignment, line)
    return line


def _may_assign(lowered: str, hints: Sequence[str]) -> bool:
    """Whether some name holding one of ``hints`` is followed by ``=`` or ``:`` (a cheap
    test that spares "the path is …" lines the assignment regex)."""
    for hint in hints:
        at = lowered.find(hint)
        while at != -1:
            end = at + len(hint)
            while end < len(lowered) and lowered[end] in _NAME_CHARS:
                end += 1
            if lowered[end : end + 8].lstrip("\"' \t")[:1] in ("=", ":"):
                return True
            at = lowered.find(hint, end)
    return False


def _after_colon(arg: str) -> str:
    head, colon, _ = arg.partition(":")
    return f"{head}:{REDACTED}" if colon else arg


def _redact_assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    inner = value[1:-1] if quote else value
    if inner.lower() in _AUTH_SCHEMES or not _secret_value(match.group("name"), inner):
        return match.group()
    return f"{match.group('name')}{match.group('sep')}{quote}{REDACTED}{quote}"

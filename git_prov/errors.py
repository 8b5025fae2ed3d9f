"""The one error type of git-prov, and the exit codes it maps to.

Every failure a user can cause or meet is a :class:`ProvError` (or a subclass) carrying a
message, an optional hint saying what to do, and the process exit code the CLI uses.
The table of exit codes is documented in ``docs/cli.md``; keep the two in step.
"""

from __future__ import annotations

# Exit codes. 0 is success; 1 is reserved for "the check found something" answers
# (drift, mismatch) so that scripts and CI can tell a finding from a failure.
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_REPOSITORY = 4
EXIT_BAD_PATH = 5
EXIT_NOT_FOUND = 6
EXIT_CONFLICT = 7
EXIT_REMOTE = 8
EXIT_CORRUPT = 9
EXIT_UNTRUSTED = 10
EXIT_STORAGE = 11
EXIT_COMMAND_NOT_FOUND = 127
EXIT_INTERRUPTED = 130


class ProvError(Exception):
    """A failure with a message for people, a hint, and an exit code."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class UsageProblem(ProvError):
    """The arguments given cannot work (a bad ``k=v``, an unknown option value)."""

    exit_code = EXIT_USAGE


class RepositoryProblem(ProvError):
    """Not a git repository, no commits yet, an unsupported repository format, …"""

    exit_code = EXIT_REPOSITORY


class BadPath(ProvError):
    """A declared path is outside the repository, missing or unreadable."""

    exit_code = EXIT_BAD_PATH


class NotFound(ProvError):
    """A run, commit or object named by the user does not exist (or is ambiguous)."""

    exit_code = EXIT_NOT_FOUND


class LedgerConflict(ProvError):
    """A ref could not be updated because others kept moving it (retries exhausted)."""

    exit_code = EXIT_CONFLICT


class RemoteProblem(ProvError):
    """A remote is missing, unreachable or rejected what we sent."""

    exit_code = EXIT_REMOTE


class CorruptLedger(ProvError):
    """Stored provenance cannot be read (a damaged object, an unparseable manifest)."""

    exit_code = EXIT_CORRUPT


class CommandNotFound(ProvError):
    """The command given to ``git prov run`` could not be started."""

    exit_code = EXIT_COMMAND_NOT_FOUND


class Untrusted(ProvError):
    """``reproduce`` was not allowed to run another person's recorded command (no terminal
    to ask and no ``--yes``, or declined at the prompt)."""

    exit_code = EXIT_UNTRUSTED


class StorageProblem(ProvError):
    """The repository cannot be written: a read-only file system or ``.git``, a full disk,
    a quota, missing permissions."""

    exit_code = EXIT_STORAGE


# What the OS says (in an OSError, or in the text of a pygit2 or git error) when the
# repository cannot be written: errno → (what, what to do).
_STORAGE_ERRNOS = {
    28: ("no space left on the device", "free some space, then run it again"),  # ENOSPC
    122: ("the disk quota is exceeded", "free some space, then run it again"),  # EDQUOT
    30: (  # EROFS
        "the repository is on a read-only file system",
        "run git prov where .git can be written (reads work as they are)",
    ),
    13: (  # EACCES
        "permission denied writing the repository",
        "check the owner and permissions of .git (reads work as they are)",
    ),
    1: (  # EPERM
        "the repository may not be written (operation not permitted)",
        "check .git for immutable files (lsattr) or its permissions",
    ),
}
_STORAGE_TEXTS = {
    "no space left on device": 28,
    "disk quota exceeded": 122,
    "read-only file system": 30,
    "permission denied": 13,
    "operation not permitted": 1,
}


def storage_problem(exc: BaseException) -> StorageProblem | None:
    """The :class:`StorageProblem` an exception is (a full disk, a read-only or
    unwritable ``.git``), or None when it is something else. Reads the errno of an
    OSError, else the words the OS puts in pygit2's and git's messages."""
    if isinstance(exc, StorageProblem):
        return exc
    number = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if number not in _STORAGE_ERRNOS:
        lowered = text.lower()
        number = next((n for words, n in _STORAGE_TEXTS.items() if words in lowered), None)
        if number in (1, 13) and ".git" not in lowered:
            return None  # ("Permission denied (publickey)" is a remote's answer)
    if number is None:
        return None
    what, hint = _STORAGE_ERRNOS[number]
    where = getattr(exc, "filename", None)
    return StorageProblem(f"{what}" + (f" ({where})" if where else ""), hint)

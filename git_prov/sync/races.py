"""When a refused push is tried again, and for how long: the rejections git reports that mean
"someone pushed first", full-jitter backoff, and the time bound (:func:`sync_timeout`)."""

from __future__ import annotations

from git_prov.errors import (
    UsageProblem,
)
from git_prov.sync.repo import RepoLike, SyncRepo

# A rejected push is retried until it lands or DEFAULT_TIMEOUT seconds have passed (git config
# prov.syncTimeout, --timeout), and at most --attempts times when that is given.
DEFAULT_TIMEOUT = 60.0
TIMEOUT_KEY = "prov.synctimeout"  # (git config --get-regexp prints keys in lower case)


BACKOFF_BASE = 0.05  # seconds; doubled per attempt, capped, fully jittered
BACKOFF_CAP = 2.0


_RACE = (
    "fetch first",
    "non-fast-forward",
    "cannot lock",
    "incorrect old value",
    "failed to update ref",
    "stale info",
    "failed to lock",
    "atomic push failed",
    "remote failed to report status",
    "unable to update local ref",
    "reference already exists",
    "already exists",
    "failed to write",
)
# git's reasons for refusing a ref update before sending it (enum ref_status in git's
# remote.h), as "atomic push failed for ref R. status: N" reports them: all mean "the remote
# moved; fetch, merge and push again".
_RACE_STATUSES = {
    2: "non-fast-forward",
    3: "already exists",
    5: "fetch first",
    6: "needs force",
    7: "stale info",
    9: "remote ref updated since checkout",
}


def _backoff(attempt: int) -> float:
    import random  # only a retry needs it

    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def sync_timeout(repo: RepoLike) -> float:
    """How long a push keeps retrying rejections, in seconds: ``git config
    prov.syncTimeout`` when it is a positive number, else :data:`DEFAULT_TIMEOUT`."""
    values = SyncRepo.open(repo).config().get(TIMEOUT_KEY, [])
    if values:
        try:
            value = float(values[-1])
        except ValueError:
            value = 0.0
        if value > 0 and value == value:  # (not NaN)
            return value
        raise UsageProblem(
            f"git config prov.syncTimeout is {values[-1]!r}, not a number of seconds",
            "set it to a positive number, e.g. `git config prov.syncTimeout 120`",
        )
    return DEFAULT_TIMEOUT

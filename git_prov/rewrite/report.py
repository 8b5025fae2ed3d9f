"""What :func:`git_prov.rewrite.remap` found and did."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RemapMatch:
    """An orphaned run and the reachable commit it is now also shown on."""

    run: str
    original: str  # the commit the run ran on
    commit: str  # the reachable commit it was attached to
    how: str  # patch-id, squash of N commits, same tree, copy of an empty commit
    via: str  # the (unreachable) commit whose change matched: the original or a copy of it


@dataclass(frozen=True)
class RemapAmbiguity:
    """A run with several reachable copies, each with the evidence of one: not attached."""

    run: str
    original: str
    candidates: tuple[str, ...]
    how: str


@dataclass(frozen=True)
class RemapCandidate:
    """A reachable commit with the same change as an orphaned run's commit but no evidence
    that it is a copy of it (``missing`` says what differs): listed, never attached."""

    run: str
    original: str
    commit: str
    how: str  # patch-id, squash of N commits
    via: str
    missing: str  # e.g. "author date, message"


@dataclass(frozen=True)
class RemapUnmatched:
    """An orphaned run no reachable commit matches (its code is still kept)."""

    run: str
    original: str
    shown_on: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RemapReport:
    """What :func:`remap` found and did."""

    matched: tuple[RemapMatch, ...] = ()
    ambiguous: tuple[RemapAmbiguity, ...] = ()
    unconfirmed: tuple[RemapCandidate, ...] = ()
    unmatched: tuple[RemapUnmatched, ...] = ()
    orphans: int = 0  # runs examined (orphans, plus reachable ones with include_reachable)
    candidates: int = 0  # reachable commits examined
    missing: int = 0  # runs whose commits are not in this repository
    purged: int = 0  # of those, runs whose commit was kept here: a history purge removed it
    dry_run: bool = False
    written: bool = False  # attachments were written (one ledger commit)
    up_to_date: bool = False  # nothing changed since the last remap: no work was done

    def to_json_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

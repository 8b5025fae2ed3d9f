"""Identifiers: run ids that sort by time, and helpers for git object ids."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

# 20261126T113400.123Z-3f2a9c1d: UTC start time to the millisecond, then 32 random bits.
# Sorting ids as strings sorts runs by start time; the random tail keeps concurrent runs
# apart and is the short form people type.
RUN_ID_RE = re.compile(r"^(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{8})\Z")
HEX_OID_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")
SHORT_RUN = 8
SHORT_OID = 10


def new_run_id(now: datetime | None = None) -> str:
    """Return a fresh run id for a run starting at ``now`` (UTC; default: the current time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{os.urandom(4).hex()}"


def is_run_id(text: str) -> bool:
    """True when ``text`` is a complete run id."""
    return RUN_ID_RE.match(text) is not None


def short_run_id(run_id: str) -> str:
    """The short form of a run id shown in listings (its random tail)."""
    match = RUN_ID_RE.match(run_id)
    return match.group(2) if match else run_id[:SHORT_RUN]


def is_hex_oid(text: str) -> bool:
    """True when ``text`` is a full lowercase hex object id (SHA-1 or SHA-256)."""
    return HEX_OID_RE.match(text) is not None


def short_oid(oid: str | None) -> str:
    """The abbreviated form of an object id for display."""
    return (oid or "")[:SHORT_OID]

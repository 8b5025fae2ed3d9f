"""Times typed by users: one reading for every option that takes one (``find --since`` and
``--until``, ``gc --older-than``), so the same words mean the same moment everywhere.

* ``now``, ``today`` and ``yesterday`` (local midnight, as git reads them);
* an age before now: ``3d``, ``12h``, ``90m``, ``2w``, ``1y``, ``1w2d``, ``1.5h``, with or
  without spaces and ``ago`` (``2 days ago``); units s, m (minutes), h, d, w and y (365 days),
  or their words (``sec``, ``min``, ``hours``, ``days``, ``weeks``, ``years``);
* an ISO 8601 date or time: ``2026-01-31``, ``2026-01-31T15:00``, ``2026-01-31T15:00Z``.
  Without a zone it is local time, as for ``git log --since``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from git_prov.errors import UsageProblem

_AGE_PART = re.compile(
    r"(\d+(?:\.\d+)?)(seconds?|secs?|s|minutes?|mins?|m|hours?|h|days?|d|weeks?|w|years?|y)"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
HINT = "give a date or time (2026-01-31, 2026-01-31T15:00Z), today, or an age (30d, 12h, 1w2d)"


def age_seconds(text: str) -> float | None:
    """The seconds an age such as ``1w2d``, ``12 h`` or ``2 days ago`` spans; None when
    ``text`` is not an age."""
    compact = text.strip().lower().removesuffix("ago").replace(" ", "")
    parts = _AGE_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit[0]] for number, unit in parts)


def parse_time(text: str, now: datetime | None = None, *, option: str = "") -> datetime:
    """The moment ``text`` names (an aware UTC datetime); :class:`UsageProblem` when it
    names none (``option`` starts the message, e.g. ``--since``)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    word = text.strip().lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - timedelta(days=1 if word == "yesterday" else 0)).astimezone(UTC)
    seconds = age_seconds(word)
    if seconds is not None:
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        said = f"{option} {text!r}" if option else repr(text)
        raise UsageProblem(f"{said} is not a time", HINT) from None
    return (moment if moment.tzinfo is not None else moment.astimezone()).astimezone(UTC)

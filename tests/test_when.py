"""Times typed by users mean the same moment in every option that takes one: `find
--since/--until` and `gc --older-than` (git_prov.model.when)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import git, prov
from factories import make_record

from git_prov.errors import UsageProblem
from git_prov.model.when import parse_time
from git_prov.query.find import parse_when
from git_prov.retention import parse_age
from git_prov.store.ledger import Ledger
from git_prov.store.repo import open_repo

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "before"),
    [
        ("now", timedelta(0)),
        ("30d", timedelta(days=30)),
        ("1w2d", timedelta(days=9)),
        ("2 days ago", timedelta(days=2)),
        ("3d ago", timedelta(days=3)),
        ("1.5h", timedelta(hours=1.5)),
        ("90 min", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("45 seconds", timedelta(seconds=45)),
        ("1y", timedelta(days=365)),
        ("3 Weeks", timedelta(weeks=3)),
    ],
)
def test_ages(text: str, before: timedelta) -> None:
    assert parse_time(text, NOW) == NOW - before
    assert parse_age(text, NOW) == NOW - before  # gc --older-than
    assert parse_when(text, NOW) == (NOW - before).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_dates_and_times_with_a_zone() -> None:
    assert parse_time("2026-03-01T00:00Z", NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_time("2026-03-01T02:00+02:00", NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_when("2026-03-01T00:00Z", NOW) == "2026-03-01T00:00:00.000Z"


@pytest.mark.parametrize("text", ["last tuesday", "1mo", "ago", "", "5 parsecs", "3d4", "d3"])
def test_what_is_not_a_time_is_refused_with_the_option_named(text: str) -> None:
    with pytest.raises(UsageProblem, match=r"--older-than .* is not a time") as refused:
        parse_age(text, NOW)
    assert "30d" in (refused.value.hint or "")
    with pytest.raises(UsageProblem, match=r"--since .* is not a time"):
        parse_when(text, NOW, option="--since")


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is New York (UTC-5 in winter)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_date_without_a_zone_is_local_time_in_every_option(new_york: None) -> None:
    """As git reads `--since 2026-01-31`: local midnight. (gc used to read it as UTC.)"""
    five_am_utc = datetime(2026, 1, 31, 5, 0, tzinfo=UTC)
    assert parse_age("2026-01-31", NOW) == five_am_utc
    assert parse_when("2026-01-31", NOW) == "2026-01-31T05:00:00.000Z"
    afternoon = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 13:00 in New York (EDT, UTC-4)
    assert parse_time("today", afternoon) == datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    assert parse_time("yesterday", afternoon) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)


def test_find_and_gc_take_the_same_words(repo: Path) -> None:
    """`find --since "1w2d"` and `gc --older-than "1w2d"` split the runs at the same moment."""
    now = datetime.now(UTC)
    head = git(repo, "rev-parse", "HEAD")

    def stamp(days: int) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    old = make_record(head, started=stamp(20), ended=stamp(20))
    new = make_record(head, started=stamp(2), ended=stamp(2))
    Ledger(open_repo(repo)).write([(head, old), (head, new)], keep=[head])
    for words in ("1w2d", "9 days ago", "9d"):
        found = prov(repo, "find", "--since", words, "--format", "{id}").stdout.split()
        assert found == [new.id]
        gone = json.loads(prov(repo, "gc", "--older-than", words, "--dry-run", "--json").stdout)
        assert [r["id"] for r in gone["runs"]] == [old.id]

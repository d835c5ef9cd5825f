"""Tenant-local due instants, across DST changes, computed without periodiq."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from gcmc_jobs.scheduling.clock import due_instant, is_due, next_due

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def test_an_ordinary_time_is_due_at_that_local_instant() -> None:
    assert due_instant(date(2026, 6, 1), time(7), ZoneInfo("Asia/Tokyo")) == datetime(
        2026, 5, 31, 22, tzinfo=UTC
    )


def test_a_time_skipped_by_spring_forward_is_due_when_the_gap_ends() -> None:
    # 02:30 does not exist in Paris on 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    assert due_instant(date(2026, 3, 29), time(2, 30), PARIS) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert due_instant(date(2026, 3, 8), time(2, 30), NEW_YORK) == datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )


def test_a_time_repeated_by_fall_back_is_due_at_its_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 2026-10-25 (CEST, then CET): the first is 00:30 UTC.
    assert due_instant(date(2026, 10, 25), time(2, 30), PARIS) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert due_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


def test_is_due_uses_the_tenant_local_date_not_utc() -> None:
    # 23:30 UTC on May 31 is already June 1, 08:30 in Tokyo.
    due, day, _ = is_due(datetime(2026, 5, 31, 23, 30, tzinfo=UTC), time(8), ZoneInfo("Asia/Tokyo"))
    assert (due, day) == (True, date(2026, 6, 1))


def test_next_due_is_tomorrow_once_today_ran() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert next_due(now, time(7), ZoneInfo("UTC"), done_today=True) == datetime(
        2026, 6, 2, 7, tzinfo=UTC
    )
    assert next_due(now, time(7), ZoneInfo("UTC"), done_today=False) == datetime(
        2026, 6, 1, 7, tzinfo=UTC
    )
    assert next_due(now, time(13), ZoneInfo("UTC"), done_today=False) == datetime(
        2026, 6, 1, 13, tzinfo=UTC
    )

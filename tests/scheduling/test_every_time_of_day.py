"""Issue 11, item 8: every configured time of day runs once per local day, whatever the
tick period, in zones whose offsets are whole hours, half hours and 45 minutes.

The ticks work on the minutes (since 00:00 UTC) divisible by the period. For each time of
day, period and local day, the first tick at or after the run's due instant must owe that
run (:func:`pending_occurrence`), and the tick before it must not; the ledger row written
by the first keeps every later tick from running it again. This is pure computation over
every minute of the day; one end-to-end case goes through the real tick on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from sqlalchemy import Engine, select

from gcmc_jobs.actors import run_daily_job
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import JobRun
from gcmc_jobs.scheduling.clock import due_instant, pending_occurrence
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.scheduling.tick import catch_up_for, tick
from tests import factories as f

#: Zone -> local days to check: an ordinary day, and the DST change days where there are.
DAYS: dict[str, tuple[date, ...]] = {
    "Europe/Paris": (date(2026, 3, 29), date(2026, 10, 25)),  # whole hours, DST
    "Asia/Kolkata": (date(2026, 6, 1),),  # +05:30
    "Asia/Kathmandu": (date(2026, 6, 1),),  # +05:45
    "Australia/Eucla": (date(2026, 6, 1),),  # +08:45
    "Pacific/Chatham": (date(2026, 4, 5), date(2026, 9, 27)),  # +12:45/+13:45, DST
    "Australia/Lord_Howe": (date(2026, 4, 5), date(2026, 10, 4)),  # half-hour DST shift
}
PERIODS = (1, 5, 15)
EVERY_MINUTE = [time(minute // 60, minute % 60) for minute in range(24 * 60)]


def _first_tick_at_or_after(instant: datetime, period: int) -> datetime:
    """The first working tick at or after ``instant``: minutes since 00:00 UTC divisible by
    ``period`` (1440 is a multiple of each period, so the grid is the same every day)."""
    midnight = instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = -(-(instant - midnight) // timedelta(minutes=period)) * period
    return midnight + timedelta(minutes=minutes)


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("zone_name", sorted(DAYS))
def test_every_time_of_day_is_owed_by_exactly_the_first_tick_after_it(
    zone_name: str, period: int
) -> None:
    zone = ZoneInfo(zone_name)
    catch_up = catch_up_for(period)
    step = timedelta(minutes=period)
    missed: list[tuple[date, time]] = []
    early: list[tuple[date, time]] = []
    for day in DAYS[zone_name]:
        # The change day, and the days either side of it (midnight falls next to them).
        for local_day in (day - timedelta(days=1), day, day + timedelta(days=1)):
            for at in EVERY_MINUTE:
                instant = due_instant(local_day, at, zone)
                first = _first_tick_at_or_after(instant, period)
                if pending_occurrence(first, at, zone, catch_up=catch_up) != (local_day, instant):
                    missed.append((local_day, at))
                before = pending_occurrence(first - step, at, zone, catch_up=catch_up)
                if before is not None and before[0] == local_day:
                    early.append((local_day, at))
    assert missed == []
    assert early == []


def test_a_time_near_midnight_is_owed_on_the_next_local_day_only_for_its_catch_up() -> None:
    # Given 23:58 in Kathmandu (+05:45) and a 15-minute tick: 23:58 local is 18:13 UTC, and
    # the tick at 18:15 UTC is already 00:00 on the next local day.
    zone = ZoneInfo("Asia/Kathmandu")
    catch_up = catch_up_for(15)  # 30 minutes
    at = time(23, 58)

    def owed(hour: int, minute: int) -> tuple[date, datetime] | None:
        return pending_occurrence(
            datetime(2026, 6, 1, hour, minute, tzinfo=UTC), at, zone, catch_up=catch_up
        )

    june_1 = (date(2026, 6, 1), datetime(2026, 6, 1, 18, 13, tzinfo=UTC))
    assert owed(18, 0) is None  # 23:45 local: not due yet (May 31's is a day old)
    assert owed(18, 15) == june_1  # 00:00 local on June 2: June 1's is still owed
    assert owed(18, 40) == june_1
    assert owed(18, 45) is None  # 32 minutes late: past the catch-up, not replayed


def test_the_real_tick_enqueues_yesterdays_2358_run_at_local_midnight(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine
) -> None:
    # Given a Kathmandu tenant whose filing_reminders run at 23:58, and a 15-minute tick
    with session_scope(gcmc_db) as session:
        tenant_id = f.tenant(session, "ktm", timezone="Asia/Kathmandu").id
    job_times = {"filing_reminders": time(23, 58)}
    catch_up = catch_up_for(15)

    def tick_at(now: datetime) -> list[tuple[str, int, date]]:
        result = tick(
            gcmc_db,
            gcmc_broker,
            now=now,
            job_times=job_times,
            make_message=run_daily_job.message_with_options,
            catch_up=catch_up,
        )
        return [(run.job, run.tenant_id, run.local_date) for run in result.due]

    # When the scheduler ticks at 23:45 local (18:00 UTC): not due yet
    assert tick_at(datetime(2026, 6, 1, 18, 0, tzinfo=UTC)) == []
    # Then the tick at 00:00 local on June 2 (18:15 UTC) enqueues June 1's run
    due = tick_at(datetime(2026, 6, 1, 18, 15, tzinfo=UTC))
    assert due == [("filing_reminders", tenant_id, date(2026, 6, 1))]
    run_for_tenant(
        gcmc_db,
        "filing_reminders",
        tenant_id,
        local_date=date(2026, 6, 1),
        now=datetime(2026, 6, 1, 18, 16, tzinfo=UTC),
    )
    # And once it ran, the next tick owes nothing
    assert tick_at(datetime(2026, 6, 1, 18, 30, tzinfo=UTC)) == []
    with session_scope(gcmc_db) as session:
        dates = session.scalars(select(JobRun.local_date).where(JobRun.tenant_id == tenant_id))
        assert list(dates) == [date(2026, 6, 1)]

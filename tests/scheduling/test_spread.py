"""The tenants of one timezone are spread over a window after each job's time (issue 15, item
5; the audit's load-spike finding): each tenant at its own minute, the same every day, each
run once, and the tick's statements still independent of the number of tenants."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dramatiq
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.db.models import JobRun, JobRunStatus
from gcmc_jobs.scheduling.clock import spread_minutes, tenant_time, window_times
from gcmc_jobs.scheduling.due_runs import scan_due_runs
from gcmc_jobs.scheduling.tick import tick
from tests import factories as f
from tests.support.statements import recorded_statements

ZONE = "Europe/Paris"
JOB = "document_expiry_emails"
TIMES = {JOB: time(7, 0)}
WINDOW = timedelta(minutes=30)
DAY = date(2026, 6, 10)


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def _tick(engine: Engine, broker: dramatiq.Broker, now: datetime) -> list[tuple[object, date]]:
    result = tick(
        engine,
        broker,
        now=now,
        job_times=TIMES,
        make_message=run_daily_job.message_with_options,
        spread=WINDOW,
    )
    return [(run.tenant_id, run.local_date) for run in result.due]


def _ran(session: Session, due: list[tuple[object, date]]) -> None:
    """The ledger rows the runs would write (the tick only enqueues)."""
    for tenant_id, day in due:
        session.add(
            JobRun(
                job=JOB,
                tenant_id=tenant_id,
                local_date=day,
                status=JobRunStatus.SUCCEEDED,
                stats={},
            )
        )
    session.commit()


def test_a_timezones_tenants_run_over_the_window_each_once_at_its_own_minute(
    gcmc_db: Engine, gcmc_broker: dramatiq.Broker, gcmc_session: Session
) -> None:
    # Given 40 tenants in one timezone and a job at 07:00 spread over 30 minutes
    tenants = [f.tenant(gcmc_session, f"Firm {i}", timezone=ZONE).id for i in range(40)]
    gcmc_session.commit()
    own = {t: tenant_time(TIMES[JOB], t, WINDOW) for t in tenants}

    for day in (DAY, DAY + timedelta(days=1)):
        # When the scheduler ticks every 5 minutes from 06:55 to 07:35 local
        per_tick: dict[time, list[object]] = {}
        for minute in range(-5, 40, 5):
            now = _local(day, 7, 0) + timedelta(minutes=minute)
            due = _tick(gcmc_db, gcmc_broker, now)
            assert {d for _, d in due} <= {day}
            per_tick[now.astimezone(ZoneInfo(ZONE)).time()] = [t for t, _ in due]
            _ran(gcmc_session, due)

        # Then every tenant ran once, at the first tick at or after its own minute
        ran = Counter(t for due in per_tick.values() for t in due)
        assert ran == Counter(tenants)
        for at, due in per_tick.items():
            for tenant_id in due:
                assert (
                    own[tenant_id]
                    <= at
                    < (datetime.combine(day, own[tenant_id]) + timedelta(minutes=5)).time()
                )
        # Nothing before 07:00, and no tick carries the whole timezone: the peak is spread
        assert per_tick[time(6, 55)] == []
        assert max(len(due) for due in per_tick.values()) < len(tenants) / 2
    # The same minute on both days (own was computed once, checked on each)


def test_the_scan_statements_do_not_grow_with_the_tenants(
    gcmc_db: Engine, gcmc_session: Session
) -> None:
    now = _local(DAY, 7, 20)

    def statements() -> int:
        with recorded_statements(gcmc_db) as seen, Session(gcmc_db) as session:
            scan_due_runs(session, now, TIMES, spread=WINDOW)
        return len(seen)

    for i in range(3):
        f.tenant(gcmc_session, f"Few {i}", timezone=ZONE)
    gcmc_session.commit()
    few = statements()
    for i in range(60):
        f.tenant(gcmc_session, f"Many {i}", timezone=ZONE)
    gcmc_session.commit()
    assert statements() == few


def test_a_window_never_runs_past_local_midnight() -> None:
    # A job at 23:50 spread over 30 minutes keeps its tenants on their own local day
    assert window_times(time(23, 50), WINDOW) == [time(23, 50 + m) for m in range(10)]
    assert window_times(time(7), timedelta(0)) == [time(7)]
    assert spread_minutes(42, time(23, 59), WINDOW) == 0


@given(
    tenant_id=st.one_of(st.integers(min_value=1, max_value=2**62), st.text(min_size=1)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    window=st.integers(0, 240),
)
def test_each_tenants_minute_lies_in_the_window_and_never_changes(
    tenant_id: int | str, hour: int, minute: int, window: int
) -> None:
    at = time(hour, minute)
    spread = timedelta(minutes=window)
    minutes = spread_minutes(tenant_id, at, spread)
    assert 0 <= minutes < max(window, 1)
    own = tenant_time(at, tenant_id, spread)
    assert own in window_times(at, spread)
    assert own >= at  # the same local day
    assert tenant_time(at, str(tenant_id), spread) == own  # the id's text decides, not its type


def test_the_minutes_are_spread_evenly() -> None:
    minutes = Counter(spread_minutes(i, time(7), WINDOW) for i in range(3000))
    assert set(minutes) == set(range(30))
    assert max(minutes.values()) < 2 * min(minutes.values())

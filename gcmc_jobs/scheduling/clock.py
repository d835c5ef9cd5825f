"""When a tenant-local daily time happens, as a UTC instant, correct across DST changes.

A daily job at ``at`` o'clock on a tenant's local date ``day`` is *due* from the earliest
instant whose local wall-clock time is at or after ``day at``:

- a time that exists once is due at that instant;
- a time repeated by a fall-back change (02:30 in Europe/Paris on the last Sunday of October)
  is due at its **first** occurrence; the ``job_runs`` row then keeps it from running again
  during the repeated hour;
- a time skipped by a spring-forward change (02:30 in Europe/Paris on the last Sunday of
  March) is due at the end of the gap (03:00 local), so the first tick after it runs it.

A tick at ``now`` runs the *pending occurrence* (:func:`pending_occurrence`): today's run
once it is due, else yesterday's while ``now`` is within ``catch_up`` of its due instant.
The second case is what makes a time near midnight run whatever the tick period: with
23:58 and a tick every 5 minutes, the tick at 23:55 finds it not yet due and the next, at
00:00, is on the following local day; that tick still owes yesterday's run.

Everything here is pure: the caller passes ``now``. periodiq's process-local timezone is
never consulted.

**Spreading a timezone's tenants** (``GCMC_JOBS_SCHEDULE_SPREAD_MINUTES``): each tenant runs
each daily job at its own local time, :func:`tenant_time`, a whole number of minutes into a
window after the job's time, derived from the tenant's id alone. A tenant so runs at the same
local minute every day, and the tenants of one timezone do not all fire on the same tick.
Everything above then applies to that time unchanged (DST, catch-up).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "due_instant",
    "is_due",
    "local_date",
    "next_due",
    "pending_occurrence",
    "spread_minutes",
    "tenant_time",
    "window_times",
]

_DAY_MINUTES = 24 * 60


def _window_size(at: time, window: timedelta) -> int:
    """How many distinct minutes the window ``window`` after ``at`` offers: at least 1,
    never past the end of the local day."""
    left = _DAY_MINUTES - (at.hour * 60 + at.minute)
    return max(1, min(int(window.total_seconds() // 60), left))


def _plus(at: time, minutes: int) -> time:
    if not minutes:
        return at
    return (datetime.combine(date(2000, 1, 1), at) + timedelta(minutes=minutes)).time()


def spread_minutes(tenant_id: object, at: time, window: timedelta) -> int:
    """How many minutes after ``at`` the tenant ``tenant_id`` runs a daily job at ``at``,
    with the tenants spread over ``window``: in ``[0, window)``, never past the end of the
    local day (the window shrinks to the minutes left before midnight), the same every day
    and in every process (a SHA-256 of the id's text, not Python's salted ``hash``), and
    even over the window. Zero when the window is under two minutes."""
    size = _window_size(at, window)
    if size == 1:
        return 0
    digest = hashlib.sha256(str(tenant_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def tenant_time(at: time, tenant_id: object, window: timedelta) -> time:
    """The local time at which the tenant ``tenant_id`` runs a daily job at ``at`` when
    the tenants are spread over ``window``: ``at`` plus :func:`spread_minutes`."""
    return _plus(at, spread_minutes(tenant_id, at, window))


def window_times(at: time, window: timedelta) -> list[time]:
    """Every local time :func:`tenant_time` can give for a job at ``at`` (``[at]`` when
    not spread)."""
    return [_plus(at, minutes) for minutes in range(_window_size(at, window))]


def local_date(now: datetime, zone: ZoneInfo) -> date:
    """The calendar date in ``zone`` at the aware instant ``now``."""
    return now.astimezone(zone).date()


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def due_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant from which the job at ``at`` on local date ``day`` is due."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == naive:
        return first  # exists; fold=0 is the first of two occurrences when repeated
    # In a gap: fold=1 uses the offset after the change and lands before the gap, fold=0
    # after it. The gap's end (the change itself) lies between; search it to the second.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def is_due(now: datetime, at: time, zone: ZoneInfo) -> tuple[bool, date, datetime]:
    """Whether the job at ``at`` is due today in ``zone`` at ``now``.

    Returns ``(due, local date, the instant it became or becomes due)``.
    """
    day = local_date(now, zone)
    instant = due_instant(day, at, zone)
    return now >= instant, day, instant


def next_due(now: datetime, at: time, zone: ZoneInfo, *, done_today: bool) -> datetime:
    """The next instant the job at ``at`` becomes due: today's unless done or passed."""
    due, day, instant = is_due(now, at, zone)
    if due and not done_today:
        return instant  # due now, waiting for the next tick
    if not due:
        return instant
    return due_instant(day + timedelta(days=1), at, zone)


def pending_occurrence(
    now: datetime, at: time, zone: ZoneInfo, *, catch_up: timedelta
) -> tuple[date, datetime] | None:
    """The occurrence of the job at ``at`` that a tick at ``now`` owes, as (local date, due
    instant), or None when it owes none.

    Today's once it is due; before that, yesterday's while ``now - due instant <
    catch_up``. The tick passes twice its period: the previous tick may have been
    processed up to one period late (periodiq's ``skip_delay``), and a time that fell
    between it and local midnight would otherwise never run. A longer gap (the scheduler
    down across midnight) is not replayed; ``schedule.days_skipped`` logs it later.
    """
    due, day, instant = is_due(now, at, zone)
    if due:
        return day, instant
    yesterday = day - timedelta(days=1)
    previous = due_instant(yesterday, at, zone)
    if now - previous < catch_up:
        return yesterday, previous
    return None

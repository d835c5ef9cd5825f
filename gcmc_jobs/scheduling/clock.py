"""When a tenant-local daily time happens, as a UTC instant, correct across DST changes.

A daily job at ``at`` o'clock on a tenant's local date ``day`` is *due* from the earliest
instant whose local wall-clock time is at or after ``day at``:

- a time that exists once is due at that instant;
- a time repeated by a fall-back change (02:30 in Europe/Paris on the last Sunday of October)
  is due at its **first** occurrence; the ``job_runs`` row then keeps it from running again
  during the repeated hour;
- a time skipped by a spring-forward change (02:30 in Europe/Paris on the last Sunday of
  March) is due at the end of the gap (03:00 local), so the first tick after it runs it.

Everything here is pure: the caller passes ``now``. periodiq's process-local timezone is
never consulted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["due_instant", "is_due", "local_date", "next_due"]


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

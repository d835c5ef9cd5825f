"""Scheduler actors: the periodic tick, and one daily job for one tenant.

``scheduler_tick`` is declared with a fixed ``periodic=cron("* * * * *")``: actor options
are fixed at import and library modules read no settings then, so the tick fires every
minute and does its work only on minutes (since midnight UTC) that are a multiple of
``Settings.scheduler_tick_minutes`` (default 5). Its spec has no hour, so periodiq's
process-local timezone cannot shift it; all tenant-local time is handled in the tick itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dramatiq.middleware import CurrentMessage
from periodiq import cron

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.email import email_message
from gcmc_jobs.actors.reports import report_starter
from gcmc_jobs.actors.sms import sms_message
from gcmc_jobs.actors.webhooks import dispatch_webhooks
from gcmc_jobs.brokers import actor
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import PermanentError, RunInProgress
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.scheduling.jobs import DigestSender, job_times, schedule_spread
from gcmc_jobs.scheduling.ledger import Claim
from gcmc_jobs.scheduling.mailing import digest_sender
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.scheduling.tick import TickResult, catch_up_for, tick
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "digests_of",
    "log_scheduler_plan",
    "next_tick_minute",
    "run_daily_job",
    "scheduler_tick",
    "tick_now",
]

log = get_logger("gcmc_jobs.schedule")


def is_tick_minute(now: datetime, every_minutes: int) -> bool:
    """Whether a tick at ``now`` (UTC) should work, ticking every ``every_minutes``."""
    return (now.hour * 60 + now.minute) % every_minutes == 0


def next_tick_minute(now: datetime, every_minutes: int) -> datetime:
    """The first minute at or after ``now`` (aware) on which the tick works."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    if minute < now:
        minute += timedelta(minutes=1)
    while not is_tick_minute(minute, every_minutes):
        minute += timedelta(minutes=1)
    return minute


def log_scheduler_plan(runtime: Runtime, now: datetime) -> datetime:
    """Log, at start, when the scheduler tick will next look for due runs
    (``schedule.next_tick``): the periodic message fires every minute, but works only every
    ``scheduler_tick_minutes``, so a new operator watching it would otherwise see nothing
    happen for minutes. Returns that instant."""
    every = runtime.settings.scheduler_tick_minutes
    at = next_tick_minute(now, every)
    log.info(
        "schedule.next_tick",
        at=at.isoformat(),
        every_minutes=every,
        note="periodiq sends scheduler_tick every minute; it looks for due runs on the "
        f"minutes (since 00:00 UTC) divisible by {every}",
    )
    return at


@actor(
    queue_name=queues.SCHEDULER,
    periodic=cron("* * * * *"),
    max_retries=0,  # the next tick replaces a failed one
    time_limit=60_000,
)
def scheduler_tick() -> None:
    """Enqueue the daily runs due now (logged as ``schedule.tick``).

    Returns nothing: Dramatiq warns about every discarded return value without a results
    backend, and this runs every minute.
    """
    runtime = current()
    now = utcnow()
    every = runtime.settings.scheduler_tick_minutes
    if not is_tick_minute(now, every):
        log.debug("schedule.tick_idle", next_tick=next_tick_minute(now, every).isoformat())
        return
    tick_now(runtime, now)


@actor(
    queue_name=queues.SCHEDULED,
    # A redelivered message whose run is still marked running retries until that run
    # finishes or goes stale (15 min): the backoff covers that.
    max_retries=8,
    min_backoff=30_000,
    max_backoff=600_000,
    time_limit=600_000,
    throws=(PermanentError,),
)
def run_daily_job(
    job: str,
    tenant_id: Id,
    local_date: str,
    scheduled_for: str | None = None,
    force: bool = False,
) -> None:
    """Run daily ``job`` for one tenant on its ``local_date`` (``YYYY-MM-DD``), once.

    ``force`` re-runs a run that already succeeded. The stats go to ``job_runs.stats`` and
    the ``schedule.run_succeeded`` log event.
    """
    runtime = current()
    result = run_for_tenant(
        runtime.engine,
        job,
        tenant_id,
        local_date=date.fromisoformat(local_date),
        scheduled_for=datetime.fromisoformat(scheduled_for) if scheduled_for else None,
        force=force,
        send_digests=digests_of(runtime),
        settings=runtime.settings,
        start_report=report_starter(runtime),
        final_attempt=_final_attempt(),
    )
    if result.claim is Claim.RUNNING_ELSEWHERE:
        raise RunInProgress(f"{job} for tenant {tenant_id} on {local_date} is running elsewhere")
    if result.stats.get("webhook_events"):
        dispatch_webhooks.send()  # committed: deliver them now, not at the next minute


def _final_attempt() -> bool:
    """Whether the running ``run_daily_job`` message has no retry left (a failure now is
    for good: the ledger emits ``job_run.failed``)."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return True
    declared = run_daily_job.options.get("max_retries", 0)
    return bool(message.options.get("retries", 0) >= message.options.get("max_retries", declared))


def tick_now(runtime: Runtime, now: datetime, *, jobs: list[str] | None = None) -> TickResult:
    """One scheduler tick at ``now`` on ``runtime``: the due runs' messages, in bulk."""
    return tick(
        runtime.engine,
        runtime.broker,
        now=now,
        job_times=job_times(runtime.settings),
        make_message=run_daily_job.message_with_options,
        jobs=jobs,
        catch_up=catch_up_for(runtime.settings.scheduler_tick_minutes),
        spread=schedule_spread(runtime.settings),
    )


def digests_of(runtime: Runtime) -> DigestSender:
    """The digest sender of ``runtime``: email messages built by the email actor, SMS
    messages by the SMS actor, enqueued in bulk on its broker."""
    return digest_sender(
        runtime.broker,
        portal_url=runtime.settings.portal_url,
        build_message=email_message,
        build_sms=sms_message,
    )

"""The daily jobs, by name: what each does for one tenant on one local date.

Each job is a plain function of a :class:`JobContext` returning its counts, which the
runner stores in ``job_runs.stats``. A job issues a constant number of statements whatever
the tenant's size, and never touches another tenant's rows.

=================================  =======  ========================================================
job                                default  what it does (DOMAIN.md)
=================================  =======  ==============================================
``compliance_refresh``             02:00    every active client's compliance score
``document_expiry_emails``         07:00    a digest per recipient: documents expiring in
                                            exactly 30, 14, 7, 3 or 1 days, and the day's
                                            risk-level changes of their clients (and an
                                            SMS to those who opted in to it)
``document_expiry_notifications``  08:00    in-app: latest versions expiring in
                                            [today, today + 7]
``filing_reminder_emails``         08:00    a digest per recipient: open filings due in
                                            exactly 14, 7, 3 or 0 days, or 1 to 7 days late
                                            (and an SMS to those who opted in to it)
``filing_reminders``               09:00    in-app: open filings due within 7 days, or late
``retention``                      03:30    deletes the tenant's expired rows, in batches
``monthly_report``                 06:00    on the first local day of a month: start the
                                            report chain for the month before
=================================  =======  ==============================================

A host application registers its own tenant-local daily jobs next to these
(:func:`daily_job`, :func:`register_daily_job`): the tick enqueues them, the ledger runs each
once per tenant per local day, and ``gcmc-jobs schedules`` / ``runs`` show them. The modules
that register them are imported by :func:`import_host_modules` (``GCMC_JOBS_HOST_MODULES``),
which :func:`job_times` calls, so every process that asks for the schedule knows them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import ConfigurationError, UnknownJob
from gcmc_jobs.services import (
    compliance,
    digests,
    notifications,
    reports,
    retention,
    webhook_events,
)
from gcmc_jobs.services.recipients import Channel
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings

__all__ = [
    "JOBS",
    "JOB_NAMES",
    "DigestSender",
    "JobContext",
    "JobFunction",
    "ReportStarter",
    "SentDigests",
    "check_job",
    "daily_job",
    "host_jobs",
    "import_host_modules",
    "job_times",
    "register_daily_job",
    "schedule_spread",
]


@dataclass(frozen=True)
class SentDigests:
    """What a :data:`DigestSender` did: digests enqueued, and dropped as already sent."""

    queued: int
    duplicates: int


#: Enqueues digest emails (in bulk) and says how many went out; the runner provides one.
DigestSender = Callable[[Sequence[digests.Digest]], SentDigests]
#: Starts the report chain of a tenant for a month (its first day); False when that report's
#: chain is already pending. The actors layer provides one
#: (:func:`gcmc_jobs.actors.reports.report_starter`).
ReportStarter = Callable[[Id, date], bool]


@dataclass(frozen=True)
class JobContext:
    """Everything a job needs: the session of its transaction, whose and which day it is."""

    session: Session
    tenant_id: Id
    today: date
    now: datetime
    send_digests: DigestSender
    #: The process's settings, when the caller has them (the retention job's periods).
    settings: Settings | None = None
    #: None for compute-only runs: the monthly report job then starts nothing.
    start_report: ReportStarter | None = None


def _retention(ctx: JobContext) -> dict[str, Any]:
    """Delete the tenant's expired rows (and replayed dead letters), batch by batch, each
    batch its own transaction (:mod:`gcmc_jobs.services.retention`)."""
    settings = ctx.settings or Settings()
    engine = ctx.session.get_bind()
    assert isinstance(engine, Engine)
    counts = retention.apply_retention(
        engine,
        tables_of(ctx.session),
        retention.RetentionPolicy.from_settings(settings),
        now=ctx.now,
        tenant_id=ctx.tenant_id,
        batch_size=settings.retention_batch_size,
    )
    return {f"deleted_{name}": count for name, count in counts.items()}


def _compliance_refresh(ctx: JobContext) -> dict[str, Any]:
    result = compliance.refresh_tenant(ctx.session, ctx.tenant_id, today=ctx.today, now=ctx.now)
    return {"clients": result.clients, "webhook_events": result.level_changes}


def _notifications(
    notify: Callable[..., notifications.NotifyResult],
    emit: Callable[..., int],
) -> Callable[[JobContext], dict[str, Any]]:
    def job(ctx: JobContext) -> dict[str, Any]:
        # ``now`` is the run's clock (injected in tests and the demo's simulated day): the
        # notifications' created_at, like the compliance refresh's computed_at.
        result = notify(ctx.session, ctx.tenant_id, ctx.today, now=ctx.now)
        return {
            "notifications_created": result.created,
            "skipped_duplicates": result.duplicates,
            # The same subjects as webhook events (document.expiring, filing.due_soon,
            # filing.overdue), in the run's transaction.
            "webhook_events": emit(ctx.session, ctx.tenant_id, ctx.today, now=ctx.now),
        }

    return job


def _emails(
    compute: Callable[..., list[digests.Digest]], *, risk_changes: bool = False
) -> Callable[[JobContext], dict[str, Any]]:
    def job(ctx: JobContext) -> dict[str, Any]:
        found = compute(ctx.session, ctx.tenant_id, ctx.today)
        sent = ctx.send_digests(found) if found else SentDigests(0, 0)
        # The same alerts by SMS to those who opted in (gcmc_jobs.sms): the same statements
        # again, on the SMS opt-ins.
        texts = compute(ctx.session, ctx.tenant_id, ctx.today, Channel.SMS)
        texted = ctx.send_digests(texts) if texts else SentDigests(0, 0)
        # The document digest's section of the day's risk-level changes (issue 14).
        changes = {"risk_changes": sum(len(d.risk_changes) for d in found)}
        return {
            "recipients": len(found),
            "items": sum(len(d.items) for d in found),
            **(changes if risk_changes else {}),
            "digests_queued": sent.queued,
            "skipped_duplicates": sent.duplicates,
            "sms_recipients": len(texts),
            "sms_queued": texted.queued,
            "sms_skipped_duplicates": texted.duplicates,
        }

    return job


def _monthly_report(ctx: JobContext) -> dict[str, Any]:
    """On the tenant's first local day of a month, start the report chain for the month
    before (unless that report is already completed); on other days, nothing."""
    if ctx.today.day != 1:
        return {"reports_started": 0}
    period = reports.previous_period(ctx.today)
    stats: dict[str, Any] = {"period": reports.month_label(period), "reports_started": 0}
    existing = reports.find_report(ctx.session, ctx.tenant_id, period)
    if existing is not None and existing.status == "completed":
        return {**stats, "already_completed": 1}
    if ctx.start_report is not None and ctx.start_report(ctx.tenant_id, period):
        stats["reports_started"] = 1
    return stats


#: What a daily job is: a function of its context returning its counts (``job_runs.stats``).
JobFunction = Callable[[JobContext], dict[str, Any]]

#: Every daily job by name, the package's and those the host registered; the package's
#: local times are ``Settings.job_times``, a host job's is given when it is registered.
JOBS: dict[str, JobFunction] = {
    "compliance_refresh": _compliance_refresh,
    "document_expiry_emails": _emails(digests.document_expiry_digests, risk_changes=True),
    "document_expiry_notifications": _notifications(
        notifications.notify_document_expiry, webhook_events.emit_document_expiring
    ),
    "filing_reminder_emails": _emails(digests.filing_reminder_digests),
    "filing_reminders": _notifications(
        notifications.notify_filing_reminders, webhook_events.emit_filing_reminders
    ),
    "retention": _retention,
    "monthly_report": _monthly_report,
}
#: The package's own daily jobs.
JOB_NAMES: tuple[str, ...] = tuple(DEFAULT_JOB_TIMES)
assert set(JOBS) == set(JOB_NAMES)

#: The host's daily jobs, by name: their local time.
_HOST_TIMES: dict[str, time] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def register_daily_job(name: str, job: JobFunction, *, at: time | str) -> JobFunction:
    """Register a host's tenant-local daily job: ``job(ctx)`` runs once per active tenant per
    local day at ``at`` (a ``time`` or ``"HH:MM"``, the tenant's local time), under the run
    ledger, and returns its counts (a JSON-able dict, stored in ``job_runs.stats``).

    ``ctx`` is a :class:`JobContext`: ``session`` (the run's transaction: the job's writes
    and the ledger's ``succeeded`` row commit together), ``tenant_id``, ``today`` (the
    tenant's local date), ``now``. Like the package's jobs it should issue a constant number
    of statements per tenant and be safe to run again (``--force``). Raises ``ValueError``
    for a name that is not lower-case ``[a-z0-9_]`` (at most 64), that is a package job's,
    or that another function already took. Returns ``job``.
    """
    if not _NAME.match(name):
        raise ValueError(f"daily job name {name!r}: lower-case letters, digits and _, <= 64")
    if name in JOB_NAMES:
        raise ValueError(f"daily job name {name!r} is one of gcmc-jobs' own")
    previous = JOBS.get(name)
    if previous is not None and _qualified(previous) != _qualified(job):
        raise ValueError(f"daily job {name!r} is already registered by {_qualified(previous)}")
    when = at if isinstance(at, time) else time.fromisoformat(at)
    JOBS[name] = job
    _HOST_TIMES[name] = when
    return job


def daily_job(name: str, *, at: time | str) -> Callable[[JobFunction], JobFunction]:
    """:func:`register_daily_job` as a decorator::

    @daily_job("stale_drafts_report", at="06:00")
    def stale_drafts_report(ctx: JobContext) -> dict[str, Any]:
        ...
        return {"drafts": count}
    """

    def register(job: JobFunction) -> JobFunction:
        return register_daily_job(name, job, at=at)

    return register


def _qualified(job: JobFunction) -> str:
    return f"{getattr(job, '__module__', '?')}.{getattr(job, '__qualname__', repr(job))}"


def host_jobs() -> dict[str, time]:
    """The daily jobs the host registered, by name, with their local time."""
    return dict(_HOST_TIMES)


def import_host_modules(settings: Settings) -> None:
    """Import the host's modules named by ``settings.host_modules`` (``GCMC_JOBS_HOST_MODULES``):
    their ``@gcmc_jobs.actor`` and ``@daily_job`` declarations run. Idempotent (Python
    imports a module once). A module that cannot be imported raises
    :class:`~gcmc_jobs.errors.ConfigurationError` naming the setting."""
    for module in settings.host_modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(
                f"GCMC_JOBS_HOST_MODULES: cannot import {module!r}: {exc}"
            ) from exc


def job_times(settings: Settings) -> dict[str, time]:
    """Every daily job's local time: the package's (``settings.job_times``) then the host's
    (imported first: :func:`import_host_modules`). What the tick, ``gcmc-jobs schedules``,
    the API and the health check use."""
    import_host_modules(settings)
    return {**settings.job_times, **_HOST_TIMES}


def schedule_spread(settings: Settings) -> timedelta:
    """The window the tenants of one timezone are spread over after each job's time
    (``settings.schedule_spread_minutes``; see
    :func:`~gcmc_jobs.scheduling.clock.spread_offset`)."""
    return timedelta(minutes=settings.schedule_spread_minutes)


def check_job(name: str) -> str:
    """``name`` if it is a daily job, else :class:`UnknownJob` listing the known ones."""
    if name not in JOBS:
        raise UnknownJob(f"unknown job {name!r}; known jobs: {', '.join(JOBS)}")
    return name

"""Demo step: a simulated day of the scheduler, ticking every 15 minutes on an injected clock.

Each tick is :func:`gcmc_jobs.scheduling.tick.tick` as of the simulated instant: it enqueues one
``run_daily_job`` message per due (job, tenant, local date), which the demo's worker runs
through the real actors (notifications in the database, digest emails through the email
actor, so to ``./outbox`` by default). Then the step shows what ran when, in each tenant's
local time and in UTC, the notifications created and the digests sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from rich import box
from rich.table import Table
from sqlalchemy import func, select, true

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.db.models import EmailLog, JobRun, Tenant
from gcmc_jobs.db.tables import Id
from gcmc_jobs.demo.context import DemoContext
from gcmc_jobs.redaction import redact_text
from gcmc_jobs.scheduling.tick import tick
from gcmc_jobs.services.tenancy import tenant_zone

__all__ = ["TICK", "TITLE", "Ran", "run"]

TITLE = "A simulated day of the schedule"
#: Simulated time between two ticks.
TICK = timedelta(minutes=15)


@dataclass(frozen=True)
class Ran:
    """One run the simulated day enqueued, and the tick that did it."""

    tenant_id: Id
    tenant: str
    timezone: str
    job: str
    local_date: date
    scheduled_for: datetime
    tick_at: datetime


def _window(ctx: DemoContext) -> tuple[datetime, datetime]:
    """The demo's UTC day: 00:00 to 24:00 UTC of ``ctx.now``'s date."""
    start = datetime.combine(ctx.now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return start, start + timedelta(hours=24)


def run(ctx: DemoContext) -> None:
    """Tick across the day, let the worker run what each tick enqueued, and report."""
    with ctx.session() as session:
        tenants: dict[Id, tuple[str, str]] = {
            t.id: (t.name, t.timezone)
            for t in session.scalars(select(Tenant).where(Tenant.is_active.is_(true())))
        }
    start, end = _window(ctx)
    job_times = ctx.settings.job_times
    ran: list[Ran] = []
    now = start
    ticks = 0
    while now < end:
        result = tick(
            ctx.engine,
            ctx.broker,
            now=now,
            job_times=job_times,
            make_message=run_daily_job.message_with_options,
        )
        ctx.wait()
        ticks += 1
        for due in result.due:
            name, zone = tenants[due.tenant_id]
            ran.append(
                Ran(due.tenant_id, name, zone, due.job, due.local_date, due.scheduled_for, now)
            )
        now += TICK
    ctx.facts["schedule"] = ran

    ctx.console.print(
        f"{ticks} ticks, every {TICK.seconds // 60} min, from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC, on an injected clock. At the first tick each tenant is "
        "already some hours into its own day: what was due before then is [yellow]caught "
        "up[/] at once, as after downtime; the rest runs at its local time."
    )
    table = Table(title="What ran when", box=box.SIMPLE_HEAD)
    for column in ("tenant", "job", "local date", "due (local)", "ran (local)", "ran (UTC)"):
        table.add_column(column, no_wrap=True)
    for r in sorted(ran, key=lambda r: (r.tenant_id, r.tick_at, r.job)):
        tz = tenant_zone(r.timezone)
        late = r.tick_at - r.scheduled_for >= TICK
        table.add_row(
            f"{r.tenant} ({r.timezone})",
            r.job,
            r.local_date.isoformat(),
            r.scheduled_for.astimezone(tz).strftime("%H:%M"),
            r.tick_at.astimezone(tz).strftime("%H:%M %Z")
            + (" [yellow](caught up)[/]" if late else ""),
            r.tick_at.strftime("%H:%M"),
        )
    ctx.console.print(table)
    if not ran:
        ctx.console.print(
            "Nothing was due: every run of this day is already in the ledger "
            "(`gcmc-jobs demo --reset` starts over)."
        )

    days = {(r.tenant_id, r.local_date) for r in ran}
    with ctx.session() as session:
        runs = [
            run
            for run in session.scalars(select(JobRun).where(JobRun.tenant_id.in_(tenants)))
            if (run.tenant_id, run.local_date) in days
        ]
        digests: dict[Id | None, int] = dict(
            session.execute(
                select(EmailLog.tenant_id, func.count())
                .where(EmailLog.kind.in_(["document_expiry_warning", "filing_reminder"]))
                .group_by(EmailLog.tenant_id)
            ).all()
        )
    summary = Table(title="Per tenant", box=box.SIMPLE_HEAD)
    for column in ("tenant", "runs", "notifications created", "digests queued", "digest emails"):
        summary.add_column(column, justify="right" if column != "tenant" else "left")
    for tenant_id, (name, zone) in sorted(tenants.items()):
        mine = [r for r in runs if r.tenant_id == tenant_id]
        summary.add_row(
            f"{name} ({zone})",
            str(len(mine)),
            str(sum(int(r.stats.get("notifications_created", 0)) for r in mine)),
            str(sum(int(r.stats.get("digests_queued", 0)) for r in mine)),
            str(digests.get(tenant_id, 0)),
        )
    ctx.console.print(summary)
    ctx.console.print(
        "Each daily job ran once per tenant at its [bold]local[/] time, guarded by its "
        "[bold]job_runs[/] row; each recipient got one digest per kind "
        # The URL may carry SMTP credentials: show it with them masked.
        f"(email transport: {redact_text(ctx.settings.email_url.get_secret_value())})."
    )

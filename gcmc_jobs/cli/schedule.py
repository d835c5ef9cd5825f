"""``gcmc-jobs run | tick | schedules | runs``: drive and inspect the daily schedule.

``run`` and ``tick`` work inline when the broker is the in-process ``stub://`` (the default):
a Dramatiq worker is started in this process so that digest emails are really delivered
(to ``./outbox`` by default). With Redis or RabbitMQ, ``tick`` and ``run --enqueue`` send
messages for the real workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    configure_command_logging,
    console,
    engine,
    fail,
    print_json,
    print_table,
    settings,
)
from gcmc_jobs.cli._output import print_error

if TYPE_CHECKING:
    from gcmc_jobs.db.tables import Id, Tables
    from gcmc_jobs.runtime import Runtime
    from gcmc_jobs.scheduling.runner import RunResult
    from gcmc_jobs.scheduling.tenant_problems import TenantProblem

# The actors, the database and the scheduling code are imported inside the functions that
# use them: a command module loads its implementation only when a command runs
# (gcmc_jobs.cli._app).

__all__ = ["parse_date", "parse_now"]


def parse_date(value: str | None) -> date | None:
    """``YYYY-MM-DD`` as a date; raises ``typer.BadParameter`` with the expected form."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected a date as YYYY-MM-DD") from None


def parse_now(value: str | None) -> datetime:
    """An ISO 8601 instant (UTC when it has no offset), or the current instant."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services.tenancy import utcnow

    if value is None:
        return utcnow()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: expected an ISO 8601 time such as 2026-03-29T07:00:00+02:00"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@contextmanager
def _configured() -> Iterator[Runtime]:
    """gcmc-jobs configured from the environment for the command (the process's previous
    configuration is restored after); with the stub broker, a worker in this process
    delivers what the jobs send, and is drained before returning."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.bootstrap import configured, start_worker

    current = settings()
    configure_command_logging(current)
    with configured(current) as runtime:
        worker: dramatiq.Worker | None = None
        try:
            if isinstance(runtime.broker, StubBroker):
                runtime.broker.emit_after("process_boot")
                worker = start_worker(
                    dramatiq.Worker(runtime.broker, worker_timeout=100, worker_threads=2)
                )
            yield runtime
            if worker is not None:
                for _ in range(2):
                    for queue in sorted(runtime.broker.get_declared_queues()):
                        runtime.broker.join(queue)
                    worker.join()
        finally:
            if worker is not None:
                worker.stop()


def _tenant_ids(runtime: Runtime, tenant: str | None) -> tuple[list[Id], list[TenantProblem]]:
    """The tenants to run (every active one, or ``tenant``), and those skipped because
    their timezone is unusable (reported, never a reason to stop the others)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from sqlalchemy import select, true

    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.scheduling.tenant_problems import TenantProblem, zones_of

    columns = runtime.tables.tenants.c
    query = select(columns.id, columns.name, columns.timezone).order_by(columns.id)
    with session_scope(runtime.engine) as session:
        if tenant is not None:
            wanted = _tenant_id(runtime.tables, tenant)
            rows = session.execute(query.where(columns.id == wanted)).all()
            if not rows:
                fail(f"no tenant with id {tenant}")
        else:
            rows = session.execute(query.where(columns.is_active.is_(true()))).all()
    _, bad = zones_of({row.timezone for row in rows})
    problems = [
        TenantProblem(r.id, r.name, r.timezone, bad[r.timezone]) for r in rows if r.timezone in bad
    ]
    return [row.id for row in rows if row.timezone not in bad], problems


def _tenant_id(tables: Tables, tenant: str) -> Id:
    """``--tenant`` as the mapping's id type: a number on integer ids, the text otherwise."""
    if tables.mapping.id_type != "integer":
        return tenant
    try:
        return int(tenant)
    except ValueError:
        raise typer.BadParameter(f"{tenant!r}: tenant ids are integers here") from None


def _report(problems: list[TenantProblem]) -> None:
    """Each skipped tenant on stderr, by id and name; exit 1 when there is any (after the
    other tenants were served)."""
    for problem in problems:
        print_error(f"skipped {problem}")
    if problems:
        raise typer.Exit(1)


def _results_table(title: str, results: list[RunResult]) -> Table:
    table = Table(title=title)
    for column in ("job", "tenant", "local date", "outcome", "stats"):
        table.add_column(column)
    for r in results:
        stats = ", ".join(f"{k}={v}" for k, v in r.stats.items() if k != "tenants")
        outcome = "[green]ran[/]" if r.ran else f"[yellow]{r.claim.value}[/]"
        table.add_row(r.job, str(r.tenant_id), r.local_date.isoformat(), outcome, stats)
    return table


JobArg = typer.Argument(
    ...,
    help="A daily job (a key of GCMC_JOBS_JOB_TIMES), or a daily job of "
    "GCMC_JOBS_HOST_MODULES; gcmc-jobs schedules lists them.",
)


@app.command("run")
def run_command(
    job: str = JobArg,
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant (default: all)."),
    on: str | None = typer.Option(
        None, "--date", help="The tenants' local date YYYY-MM-DD (default: each one's today)."
    ),
    force: bool = typer.Option(False, "--force", help="Run again even if it already succeeded."),
    enqueue: bool = typer.Option(
        False, "--enqueue", help="Send one message per tenant to the workers instead."
    ),
) -> None:
    """Run a daily job now for every active tenant (or one), under the run ledger.

    Without --force a job that already succeeded for a tenant's date is skipped; a failed
    one runs again. Notifications and digest emails are never duplicated, even forced.
    """
    from dramatiq.brokers.stub import StubBroker
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.actors.reports import report_starter
    from gcmc_jobs.actors.schedule import digests_of
    from gcmc_jobs.scheduling.jobs import check_job, import_host_modules
    from gcmc_jobs.scheduling.runner import run_for_tenant

    import_host_modules(settings())  # the host's registered jobs are jobs too
    check_job(job)
    day = parse_date(on)
    with _configured() as runtime:
        if enqueue:
            if isinstance(runtime.broker, StubBroker):
                fail("--enqueue needs GCMC_JOBS_BROKER_URL to be redis:// or amqp://")
            _enqueue(runtime, job, tenant, day, force)
            return
        tenant_ids, problems = _tenant_ids(runtime, tenant)
        send = digests_of(runtime)
        results: list[RunResult] = []
        with Progress(
            TextColumn(f"[bold]{job}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(job, total=len(tenant_ids))
            for tenant_id in tenant_ids:
                results.append(
                    run_for_tenant(
                        runtime.engine,
                        job,
                        tenant_id,
                        local_date=day,
                        force=force,
                        send_digests=send,
                        settings=runtime.settings,
                        start_report=report_starter(runtime),
                    )
                )
                progress.advance(task)
    print_table(_results_table(f"{job}: {sum(r.ran for r in results)} ran", results))
    _report(problems)


def _enqueue(runtime: Runtime, job: str, tenant: str | None, day: date | None, force: bool) -> None:
    """One ``run_daily_job`` message per tenant, keyed as the tick's (unless forced)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.actors.schedule import run_daily_job
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.scheduling.run_messages import trigger_runs
    from gcmc_jobs.services.tenancy import utcnow

    with session_scope(runtime.engine) as session:
        result = trigger_runs(
            session,
            runtime.broker,
            run_daily_job.message_with_options,
            job,
            None if tenant is None else [_tenant_id(runtime.tables, tenant)],
            now=utcnow(),
            local_date=day,
            force=force,
        )
    console.print(
        f"enqueued {result.enqueued} {job} message(s)"
        + (f", {result.duplicates} already pending" if result.duplicates else "")
    )
    _report(result.problems)


@app.command("tick")
def tick_command(
    now: str | None = typer.Option(
        None, "--now", help="Tick as of this ISO 8601 instant (UTC without an offset)."
    ),
) -> None:
    """Run one scheduler tick: every daily run due at --now that has not run yet.

    With the stub broker the runs happen here; otherwise they are enqueued for the workers.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from dramatiq.brokers.stub import StubBroker

    from gcmc_jobs.actors.reports import report_starter
    from gcmc_jobs.actors.schedule import digests_of, tick_now
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.scheduling.due_runs import scan_due_runs
    from gcmc_jobs.scheduling.jobs import job_times, schedule_spread
    from gcmc_jobs.scheduling.runner import run_for_tenant
    from gcmc_jobs.scheduling.tick import catch_up_for

    instant = parse_now(now)
    with _configured() as runtime:
        times = job_times(runtime.settings)
        if not isinstance(runtime.broker, StubBroker):
            result = tick_now(runtime, instant)
            console.print(
                f"tick at {instant.isoformat()}: {len(result.due)} due, "
                f"{result.enqueued} enqueued, {result.duplicates} already pending"
            )
            _report(result.problems)
            return
        with session_scope(runtime.engine) as session:
            scan = scan_due_runs(
                session,
                instant,
                times,
                catch_up=catch_up_for(runtime.settings.scheduler_tick_minutes),
                spread=schedule_spread(runtime.settings),
            )
        send = digests_of(runtime)
        results = [
            run_for_tenant(
                runtime.engine,
                run.job,
                run.tenant_id,
                local_date=run.local_date,
                now=instant,
                scheduled_for=run.scheduled_for,
                send_digests=send,
                settings=runtime.settings,
                start_report=report_starter(runtime),
            )
            for run in scan.runs
        ]
    print_table(_results_table(f"tick at {instant.isoformat()}: {len(scan.runs)} due", results))
    _report(scan.problems)


@app.command("schedules")
def schedules_command(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant."),
    now: str | None = typer.Option(None, "--now", help="As of this ISO 8601 instant."),
    as_json: bool = JsonOption,
) -> None:
    """Each daily job's next run per tenant, in the tenant's local time and in UTC.

    The instant is the one the scheduler's tick enqueues the run from (DST-correct), the
    tenant's fixed offset into the spread window ("+min", GCMC_JOBS_SCHEDULE_SPREAD_MINUTES)
    after the job's time: today's until the ledger has a row for it, then tomorrow's. A run
    whose instant has passed and that has not run yet is shown as "due, not run yet" (the
    next tick enqueues it). "today" is the ledger status of the tenant's local today.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.scheduling.jobs import job_times, schedule_spread
    from gcmc_jobs.scheduling.ledger_view import next_runs

    instant = parse_now(now)
    current = settings()
    target = engine(current)
    only = None if tenant is None else _tenant_id(tables_of(target), tenant)
    try:
        with session_scope(target) as session:
            rows = next_runs(
                session,
                job_times(current),
                now=instant,
                tenant_id=only,
                spread=schedule_spread(current),
            )
    finally:
        target.dispose()
    if as_json:
        print_json([row.as_dict() for row in rows])
        return
    waiting = sum(row.waiting for row in rows)
    spread = current.schedule_spread_minutes
    table = Table(
        title=f"Daily runs as of {instant.isoformat(timespec='minutes')}"
        + (f": {waiting} due, waiting for the next tick" if waiting else ""),
        caption=f"each tenant runs a fixed +minutes into a {spread}-minute window after the "
        "job's time (GCMC_JOBS_SCHEDULE_SPREAD_MINUTES)"
        if spread
        else None,
    )
    columns = ("tenant", "timezone", "job", "at", "+min", "run local", "run UTC", "state", "today")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        local, utc = row.due_local, row.due_at
        if local is None:
            state = "[red]not scheduled[/]"
        elif row.waiting:
            state = "[yellow]due, not run yet[/]"
        else:
            state = "next"
        table.add_row(
            f"{row.tenant_name} (#{row.tenant_id})",
            row.timezone,
            row.job,
            row.at.strftime("%H:%M"),
            f"+{row.offset_minutes}",
            f"[red]{row.problem}[/]" if local is None else local.strftime("%Y-%m-%d %H:%M %Z"),
            "" if utc is None else utc.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            state,
            "-" if row.today_status is None else row.today_status.value,
        )
    print_table(table)


@app.command("runs")
def runs_command(
    job: str | None = typer.Option(None, "--job", help="Only this job."),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant."),
    since: str | None = typer.Option(None, "--since", help="Local dates from YYYY-MM-DD."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many first (paging)."),
    as_json: bool = JsonOption,
) -> None:
    """The run ledger: what ran, for whom, on which local date, how it went."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.scheduling.jobs import check_job
    from gcmc_jobs.scheduling.ledger_view import list_runs

    if job is not None:
        check_job(job)
    start = parse_date(since)
    target = engine(settings())
    only = None if tenant is None else _tenant_id(tables_of(target), tenant)
    try:
        with session_scope(target) as session:
            runs = list_runs(
                session, job=job, tenant_id=only, since=start, limit=limit, offset=offset
            )
    finally:
        target.dispose()
    if as_json:
        print_json([r.as_dict() for r in runs])
        return
    table = Table(title=f"{len(runs)} run(s)")
    for column in ("job", "tenant", "local date", "status", "started (UTC)", "ms", "stats"):
        table.add_column(column)
    for r in runs:
        stats = dict(r.stats)
        duration = stats.pop("duration_ms", None)
        stats.pop("tenants", None)
        colour = {"succeeded": "green", "failed": "red"}.get(r.status.value, "yellow")
        table.add_row(
            r.job,
            str(r.tenant_id),
            r.local_date.isoformat(),
            f"[{colour}]{r.status.value}[/]" + (f" {r.error}" if r.error else ""),
            r.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "",
            "" if duration is None else f"{duration:.0f}",
            ", ".join(f"{k}={v}" for k, v in stats.items()),
        )
    print_table(table)

"""``gcmc-jobs retention run``: delete what the retention settings say has expired."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gcmc_jobs.cli._app import JsonOption, app, console, engine, settings
from gcmc_jobs.cli._output import print_json, print_table

__all__ = ["retention_run_command"]

retention_app = typer.Typer(
    help="Retention: delete expired rows (GCMC_JOBS_RETENTION_*; the daily `retention` job "
    "does it per tenant)."
)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run_command(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would be deleted; delete nothing."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", help="Only this tenant's rows (and the replayed dead letters)."
    ),
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only this rule (repeatable): email_log, job_runs, ..."),
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Delete every expired row now, batch by batch (GCMC_JOBS_RETENTION_BATCH_SIZE rows per
    short transaction, so writers never wait long), with progress; print the count per rule.

    The rules and their periods: read notifications (90 days after read), unread ones (365
    days), email_log (400), job_runs (400 days after their local date), replayed dead
    letters (30 days after the replay), webhook events with their deliveries and the
    recipients of finished campaigns (90). --dry-run counts them instead.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from datetime import UTC, datetime

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.cli.schedule import _tenant_id
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.services.retention import RULES, RetentionPolicy, apply_retention

    only = only or []
    unknown = sorted(set(only) - set(RULES))
    if unknown:
        raise typer.BadParameter(
            f"unknown rule(s) {', '.join(unknown)}; the rules are {', '.join(RULES)}",
            param_hint="--only",
        )
    current = settings()
    target = engine(current)
    try:
        tables = tables_of(target)
        tenant_id = None if tenant is None else _tenant_id(tables, tenant)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task("counting" if dry_run else "deleting", total=None)

            def progress(rule: str, deleted: int) -> None:
                bar.update(task, description=f"{rule}: {deleted:,} deleted")

            counts = apply_retention(
                target,
                tables,
                RetentionPolicy.from_settings(current),
                now=datetime.now(UTC),
                tenant_id=tenant_id,
                dry_run=dry_run,
                batch_size=current.retention_batch_size,
                only=tuple(only) or None,
                progress=progress,
            )
    finally:
        target.dispose()
    if as_json:
        print_json({"dry_run": dry_run, "counts": counts})
        return
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"retention: {verb} {sum(counts.values()):,} row(s)")
    table.add_column("rule", no_wrap=True)
    table.add_column(verb, justify="right")
    for rule, count in counts.items():
        table.add_row(rule, f"{count:,}")
    print_table(table)

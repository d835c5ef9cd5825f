"""``gcmc-jobs report TENANT [--period YYYY-MM]`` and ``gcmc-jobs reports``: monthly
compliance reports on demand, and the record of those made.

With the in-process ``stub://`` broker (the default) ``report`` runs the chain in this
process (a Dramatiq worker is started for it) and prints the finished report; with Redis or
RabbitMQ it enqueues the chain for the workers and prints the first message's id.
"""

from __future__ import annotations

import typer
from rich.table import Table

from gcmc_jobs.cli._app import JsonOption, app, console, fail, print_json, print_table
from gcmc_jobs.cli.schedule import _configured, _tenant_id

__all__ = ["report_command", "reports_command"]


@app.command("report")
def report_command(
    tenant: str = typer.Argument(..., help="The tenant's id (a number, or a text id)."),
    period: str | None = typer.Option(
        None, "--period", help="The month, YYYY-MM (default: the month before the tenant's)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Make (and mail) the report again even if it was completed."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Make a tenant's monthly compliance report now: aggregate, render the PDF and CSV,
    email them to the tenant's owners and admins, record it (one job per step).

    A completed report is not made again without --force; a report whose chain is
    already queued is not queued twice.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from dramatiq.brokers.stub import StubBroker

    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.errors import InvalidPayload
    from gcmc_jobs.ops.reports import default_period, request_report
    from gcmc_jobs.services.reports import find_report, parse_period

    with _configured() as runtime:
        tenant_id = _tenant_id(runtime.tables, tenant)
        try:
            month = parse_period(period) if period else default_period(runtime, tenant_id)
            result = request_report(runtime, tenant_id, month, force=force)
        except InvalidPayload as exc:
            fail(str(exc))
        inline = isinstance(runtime.broker, StubBroker)
    if inline and result.status == "requested":  # the chain ran in this process
        with session_scope(runtime.engine) as session:
            state = find_report(session, tenant_id, month)
        document = result.as_dict() | {"report": state.as_dict() if state else None}
    else:
        document = result.as_dict()
    if as_json:
        print_json(document)
        return
    console.print(f"report of tenant {tenant} for {result.period}: {result.status}", markup=False)
    if result.message_id and not inline:
        console.print(f"first step enqueued as message {result.message_id}", markup=False)
    if document["report"]:
        print_table(_report_table(document["report"]))
    if result.status == "already_completed":
        console.print("(--force makes and mails it again)", markup=False)


def _report_table(report: dict[str, object]) -> Table:
    table = Table(title=f"report {report['id']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in ("status", "requested_at", "completed_at"):
        table.add_row(name, str(report[name]))
    for file in report["files"]:  # type: ignore[attr-defined]
        table.add_row("file", f"{file['name']} ({file['size']} bytes, sha256 {file['sha256']})")
    for person in report["recipients"]:  # type: ignore[attr-defined]
        table.add_row("recipient", f"{person.get('email', '?')}: {person['outcome']}")
    return table


@app.command("reports")
def reports_command(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many."),
    as_json: bool = JsonOption,
) -> None:
    """List the monthly compliance reports, newest month first: status, files, recipients."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.cli._app import engine, settings
    from gcmc_jobs.db.engine import session_scope
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.services.reports import list_reports

    made = engine(settings())
    try:
        tenant_id = _tenant_id(tables_of(made), tenant) if tenant is not None else None
        with session_scope(made) as session:
            found = [r.as_dict() for r in list_reports(session, tenant_id=tenant_id, limit=limit)]
    finally:
        made.dispose()
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{len(found)} report(s)")
    for column in ("id", "tenant", "period", "status", "files", "recipients", "completed"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r["id"]),
            str(r["tenant_id"]),
            r["period"],
            r["status"],
            ", ".join(f["name"] for f in r["files"]),
            str(sum(p["outcome"] == "sent" for p in r["recipients"])),
            r["completed_at"] or "",
        )
    print_table(table)

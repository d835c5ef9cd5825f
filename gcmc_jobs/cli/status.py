"""``gcmc-jobs status ID``: what became of a message (``gcmc_jobs.status``)."""

from __future__ import annotations

import typer
from rich.table import Table

from gcmc_jobs.cli._app import JsonOption, app, console, print_json, print_table, settings
from gcmc_jobs.cli._errors import EXIT_ERROR

__all__ = ["status_command"]


@app.command("status")
def status_command(
    message_id: str = typer.Argument(..., help="The message id send() returned."),
    as_json: bool = JsonOption,
) -> None:
    """Show a message's state (enqueued, delayed, running, retrying, succeeded, failed,
    dead_lettered), attempts, times and last error. Exit 1 when unknown: never sent, or
    its record expired (GCMC_JOBS_STATUS_TTL_MS). Needs Redis (GCMC_JOBS_REDIS_URL, or a
    redis:// broker)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.message_status import status, status_store_for

    store = status_store_for(settings())
    try:
        answer = status(message_id, store=store)
    finally:
        store.close()
    if as_json:
        print_json(answer.as_dict())
    elif not answer.known:
        console.print(
            f"[yellow]unknown[/]: no status for message {message_id} (never sent here, sent "
            "with status recording off, or expired after GCMC_JOBS_STATUS_TTL_MS)",
            markup=True,
            highlight=False,
        )
    else:
        table = Table(title=f"message {message_id}", show_header=False)
        table.add_column("field")
        table.add_column("value")
        for name, value in answer.as_dict().items():
            if name != "message_id" and value is not None:
                shown = value.isoformat() if hasattr(value, "isoformat") else str(value)
                table.add_row(name, shown)
        print_table(table)
    if not answer.known:
        raise typer.Exit(EXIT_ERROR)

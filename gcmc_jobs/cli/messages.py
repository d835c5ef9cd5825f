"""``gcmc-jobs messages``: the messages waiting in a queue: list, show, cancel, promote
(:mod:`gcmc_jobs.ops.live_messages`; Redis only)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    console,
    err_console,
    fail,
    print_json,
    print_table,
    settings,
)
from gcmc_jobs.cli._errors import EXIT_ERROR

if TYPE_CHECKING:
    from gcmc_jobs.ops.live_messages import LiveMessage
    from gcmc_jobs.settings import Settings

__all__ = ["messages_app"]

messages_app = typer.Typer(
    help="Messages waiting in a queue (ready or delayed): list, show, cancel, promote to "
    "ready. Redis only: RabbitMQ cannot read a queued message without consuming it "
    "(gcmc-jobs queues shows its counts)."
)
app.add_typer(messages_app, name="messages")

QueueArg = typer.Argument(..., help="The queue (gcmc-jobs queues lists them).")
ActorOpt = typer.Option(None, "--actor", help="Only this actor.")
TenantOpt = typer.Option(None, "--tenant", help="Only this tenant id (option or keyword).")
CancelIdsArg = typer.Argument(..., help="The message ids to cancel.")
PromoteIdsArg = typer.Argument(None, help="Delayed message ids (or --all).")
DryRunOpt = typer.Option(False, "--dry-run", help="Say what would happen; change nothing.")


def _settings() -> Settings:
    """The settings, refused on the stub broker: its queues live inside another process."""
    current = settings()
    if current.broker_kind == "stub":
        fail("the stub broker lives inside one process: set GCMC_JOBS_BROKER_URL to inspect it")
    return current


def _time(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _row(message: LiveMessage) -> list[str]:
    return [
        message.message_id,
        message.state,
        message.actor,
        "" if message.tenant_id is None else str(message.tenant_id),
        _time(message.enqueued_at),
        _time(message.due_at),
        str(message.retries),
    ]


@messages_app.command("list")
def list_command(
    queue: str = QueueArg,
    state: str | None = typer.Option(
        None, "--state", help="Only ready or only delayed messages; both by default."
    ),
    actor: str | None = ActorOpt,
    tenant: str | None = TenantOpt,
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Messages per page (50)."),
    cursor: str | None = typer.Option(
        None, "--cursor", help="Go on from a page: the next cursor the previous one printed."
    ),
    every: bool = typer.Option(False, "--all", help="Every page, not only the first."),
    as_json: bool = JsonOption,
) -> None:
    """List a queue's waiting messages: ready ones in the order workers take them, then
    delayed ones by due time (--json: one JSON list)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.live_messages import list_messages

    if state not in (None, "ready", "delayed"):
        raise typer.BadParameter(f"{state!r}: expected ready or delayed", param_hint="--state")
    current = _settings()
    shown: list[LiveMessage] = []
    page = None
    while True:
        try:
            page = list_messages(
                current,
                queue,
                state=state,  # type: ignore[arg-type]
                actor=actor,
                tenant_id=tenant,
                cursor=cursor,
                limit=limit,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        shown += page.messages
        cursor = page.next_cursor
        if not every or cursor is None:
            break
    if as_json:
        print_json([m.as_dict() for m in shown])
        return
    table = Table(
        title=f"{queue}: {page.ready} ready, {page.delayed} delayed; {len(shown)} shown",
        caption=f"next page: --cursor {cursor}" if cursor else None,
    )
    for column in ("message id", "state", "actor", "tenant", "enqueued", "due", "retries"):
        table.add_column(column, no_wrap=column == "message id")
    for message in shown:
        table.add_row(*_row(message))
    print_table(table)


@messages_app.command("show")
def show_command(
    queue: str = QueueArg,
    message_id: str = typer.Argument(..., help="The message id send() returned."),
    as_json: bool = JsonOption,
) -> None:
    """Show one waiting message: arguments and options (secrets masked), times, retries and
    its status record. Exit 1 when the queue does not hold it."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.errors import LiveMessageNotFound
    from gcmc_jobs.ops.live_messages import show_message

    try:
        found = show_message(_settings(), queue, message_id)
    except LiveMessageNotFound as exc:
        console.print(f"[yellow]unknown[/]: {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    if as_json:
        print_json(found.as_dict())
        return
    console.print_json(json.dumps(found.as_dict(), default=str))


@messages_app.command("cancel")
def cancel_command(
    queue: str = QueueArg,
    message_ids: list[str] = CancelIdsArg,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOption,
) -> None:
    """Cancel waiting messages by id. A message a worker has already fetched still runs
    (in_flight); a delayed one a worker holds is dropped when it falls due. Exit 1 when
    any id was not cancelled."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.live_messages import cancel_messages

    results = cancel_messages(_settings(), queue, message_ids, dry_run=dry_run)
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        table = Table(title=("dry run: " if dry_run else "") + f"cancel in {queue}")
        for column in ("message id", "result", "was", "actor"):
            table.add_column(column)
        for r in results:
            table.add_row(r.message_id, r.status, r.state or "", r.actor or "")
        print_table(table)
    _exit_unless_all(
        [r.message_id for r in results if r.status not in ("cancelled", "would_cancel")]
    )


@messages_app.command("promote")
def promote_command(
    queue: str = QueueArg,
    message_ids: list[str] | None = PromoteIdsArg,
    every: bool = typer.Option(
        False, "--all", help="Every delayed message matching --actor and --tenant."
    ),
    actor: str | None = ActorOpt,
    tenant: str | None = TenantOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOption,
) -> None:
    """Make delayed messages ready now (the back of the queue): the ids given, or --all.
    Exit 1 when any id given was not promoted."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.live_messages import promote_messages

    if bool(message_ids) == every:
        fail("give message ids, or --all (with --actor/--tenant filters), not both")
    if message_ids and (actor is not None or tenant is not None):
        fail("--actor and --tenant only apply with --all")
    results = promote_messages(
        _settings(), queue, message_ids or None, actor=actor, tenant_id=tenant, dry_run=dry_run
    )
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        table = Table(title=("dry run: " if dry_run else "") + f"promote in {queue}")
        for column in ("message id", "result", "actor"):
            table.add_column(column)
        for r in results:
            table.add_row(r.message_id, r.status, r.actor or "")
        print_table(table)
    _exit_unless_all(
        [r.message_id for r in results if r.status not in ("promoted", "would_promote")]
    )


def _exit_unless_all(missed: list[str]) -> None:
    if missed:
        err_console.print(
            f"[yellow]{len(missed)} id(s) not done[/] (unknown to the queue, in flight, or "
            "not delayed): see the table",
            markup=True,
            highlight=False,
        )
        raise typer.Exit(EXIT_ERROR)

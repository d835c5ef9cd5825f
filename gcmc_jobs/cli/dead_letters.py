"""``gcmc-jobs dead-letters``: list, show, replay and purge messages that failed for good."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
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

if TYPE_CHECKING:
    from gcmc_jobs.middleware.stores.dead_letters import SqlDeadLetterStore

__all__ = ["dead_letters_app", "parse_age", "parse_since"]

dead_letters_app = typer.Typer(
    help="Messages that failed for good: inspect them, replay them with fresh retries, purge."
)
app.add_typer(dead_letters_app, name="dead-letters")

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(value: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` as a timedelta; raises ``typer.BadParameter``."""
    match = _DURATION.match(value.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{value!r}: expected a duration such as 30m, 12h, 7d, 2w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_since(value: str | None) -> datetime | None:
    """A duration ago (``12h``) or an ISO 8601 time (UTC when no offset is given)."""
    if value is None:
        return None
    if _DURATION.match(value.strip().lower()):
        return datetime.now(UTC) - parse_age(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: expected a duration (12h, 7d) or an ISO time (2026-01-31T08:00)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _store() -> SqlDeadLetterStore:
    """The dead letters of the configured mapping (its package schema): the engine is
    ``_app.engine()``'s, bound to the mapping's tables as the runtime's is."""
    from gcmc_jobs.middleware.stores.dead_letters import SqlDeadLetterStore

    current = settings()
    configure_command_logging(current)
    return SqlDeadLetterStore(engine(current))


ActorOpt = typer.Option(None, "--actor", help="Only this actor.")
QueueOpt = typer.Option(None, "--queue", help="Only this queue.")
ErrorOpt = typer.Option(None, "--error", help="Only this error type (as listed).")
IdsArg = typer.Argument(None, help="Dead letter ids to replay.")
SinceOpt = typer.Option(None, "--since", help="Failed since: 12h, 7d, or an ISO time.")


@dead_letters_app.command("list")
def list_command(
    actor: str | None = ActorOpt,
    queue: str | None = QueueOpt,
    error: str | None = ErrorOpt,
    since: str | None = SinceOpt,
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List dead letters, newest first (--json: one JSON list, [] when there are none)."""
    from gcmc_jobs.ops import dead_letters as service

    records = service.list_dead_letters(
        _store(), actor=actor, queue=queue, error=error, since=parse_since(since), limit=limit
    )
    if as_json:
        rows = [record.as_dict() for record in records]
        print_json([{k: row[k] for k in _LIST_FIELDS} for row in rows])
        return
    table = Table(title=f"{len(records)} dead letter(s)")
    for column in ("id", "failed at", "actor", "queue", "error", "attempts", "replayed as"):
        table.add_column(column)
    for record in records:
        table.add_row(
            str(record.id),
            record.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
            record.actor,
            record.queue,
            record.error_type,
            str(record.attempts),
            record.replayed_as or "",
        )
    print_table(table)


_LIST_FIELDS = (
    "id", "message_id", "failed_at", "actor", "queue", "error_type", "attempts", "replayed_as"
)  # fmt: skip


@dead_letters_app.command("show")
def show_command(
    id: int = typer.Argument(..., help="The dead letter's id (from `list`)."),
    reveal: bool = typer.Option(
        False, "--reveal-secrets", help="Do not mask secret fields (tokens, passwords, links)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document, the traceback included as a field."
    ),
) -> None:
    """Show one dead letter: its whole call, error and traceback (secrets masked)."""
    from gcmc_jobs.ops import dead_letters as service

    record = service.show_dead_letter(_store(), id, masked=not reveal)
    if as_json:
        print_json(record)
        return
    traceback = record.pop("traceback")
    console.print_json(json.dumps(record, default=str))
    if traceback:
        console.print(traceback, markup=False, highlight=False)


@dead_letters_app.command("replay")
def replay_command(
    ids: list[int] = IdsArg,
    all_matching: bool = typer.Option(
        False, "--all-matching", help="Replay every not-yet-replayed one matching the filters."
    ),
    actor: str | None = ActorOpt,
    queue: str | None = QueueOpt,
    error: str | None = ErrorOpt,
    since: str | None = SinceOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be sent; send none."),
    again: bool = typer.Option(False, "--again", help="Also replay ids replayed before."),
) -> None:
    """Re-send dead letters with fresh retries (new message ids)."""
    from gcmc_jobs.ops import dead_letters as service

    if bool(ids) == all_matching:
        fail("give dead letter ids, or --all-matching with filters (not both)")
    if ids and any(x is not None for x in (actor, queue, error, since)):
        fail("filters only apply with --all-matching")
    store = _store()
    from gcmc_jobs.bootstrap import configured

    with configured(settings()) as runtime:
        results = service.replay_dead_letters(
            store,
            runtime.broker,
            ids=ids or None,
            actor=actor,
            queue=queue,
            error=error,
            since=parse_since(since),
            dry_run=dry_run,
            again=again,
        )
    table = Table(title=("dry run: " if dry_run else "") + f"{len(results)} dead letter(s)")
    for column in ("id", "actor", "status", "replayed as"):
        table.add_column(column)
    for result in results:
        table.add_row(str(result.id), result.actor, result.status, result.replayed_as or "")
    print_table(table)
    if any(r.status in ("unknown_actor", "duplicate") for r in results):
        raise typer.Exit(2)


@dead_letters_app.command("purge")
def purge_command(
    older_than: str = typer.Option(
        "30d", "--older-than", help="Delete those that failed longer ago than this (30d)."
    ),
    actor: str | None = ActorOpt,
    queue: str | None = QueueOpt,
    error: str | None = ErrorOpt,
) -> None:
    """Delete old dead letters."""
    from gcmc_jobs.ops import dead_letters as service

    count = service.purge_dead_letters(
        _store(), older_than=parse_age(older_than), actor=actor, queue=queue, error=error
    )
    console.print(f"purged {count} dead letter(s) older than {older_than}")

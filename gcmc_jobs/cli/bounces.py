"""``gcmc-jobs bounces ingest`` and ``gcmc-jobs suppressions list | add | remove | import |
history``: the bounce intake and the suppression list (issue 13)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    configure_command_logging,
    console,
    engine,
    err_console,
    fail,
    print_json,
    print_table,
    settings,
)

if TYPE_CHECKING:
    from gcmc_jobs.db.enums import SuppressionReason

__all__ = ["bounces_app", "suppressions_app"]

bounces_app = typer.Typer(help="Bounces and complaints: feed them to the suppression list.")
app.add_typer(bounces_app, name="bounces")
suppressions_app = typer.Typer(
    help="The suppression list: addresses never mailed again (hard bounces, complaints, "
    "repeated soft bounces, manual blocks). Every change is recorded with its actor."
)
app.add_typer(suppressions_app, name="suppressions")

PathArg = typer.Argument(
    ..., help="A .eml file, a directory of .eml files, a Maildir, or an mbox file."
)
AddressesArg = typer.Argument(..., help="Email addresses.")
CsvArg = typer.Argument(
    ..., help="A CSV of address[,reason] lines (a header line is optional).", exists=True
)
ReasonOpt = typer.Option(
    None, "--reason", help="hard_bounce, complaint, soft_bounce or manual (the default)."
)


def actor() -> str:
    """The actor of a change made from the command line: ``cli:<login name>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"cli:{user}"


@bounces_app.command("ingest")
def ingest_command(
    path: Path = PathArg,
    as_json: bool = JsonOption,
) -> None:
    """Read RFC 3464 delivery status notifications (DSNs) and record their events: hard
    bounces suppress the address, soft bounces count. Reading the same messages again
    records nothing twice."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.suppressions import ingest_dsns
    from gcmc_jobs.services.bounces import BouncePolicy

    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file or directory", param_hint="PATH")
    current = settings()
    configure_command_logging(current)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading messages")

        def advance(read: int) -> None:
            progress.update(task, description=f"{read} message(s) read")

        outcome = ingest_dsns(
            engine(current), path, policy=BouncePolicy.from_settings(current), progress=advance
        )
    if as_json:
        print_json(outcome.as_dict())
        return
    console.print(
        f"{outcome.messages} message(s): {outcome.messages - len(outcome.not_dsn)} DSN(s), "
        f"{outcome.events} event(s), {outcome.recorded} recorded, "
        f"{outcome.duplicates} already recorded; {len(outcome.suppressed)} address(es) "
        "suppressed"
    )
    for address, reason in sorted(outcome.suppressed.items()):
        console.print(f"  suppressed {address} ({reason})")
    for origin in outcome.not_dsn[:20]:
        err_console.print(f"skipped (not a DSN): {origin}", markup=False, highlight=False)


@suppressions_app.command("list")
def list_command(
    search: str | None = typer.Option(None, "--search", help="Part of the address."),
    reason: str | None = ReasonOpt,
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List suppressed addresses, newest first (--json: one JSON list)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services import suppressions

    wanted = _reason(reason) if reason else None
    current = settings()
    configure_command_logging(current)
    with engine(current).connect() as connection:
        found = suppressions.list_suppressions(
            connection, search=search, reason=wanted, limit=limit
        )
    if as_json:
        print_json([s.as_dict() for s in found])
        return
    table = Table(title=f"{len(found)} suppressed address(es)")
    for column in ("address", "reason", "since", "source", "event"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s.address,
            s.reason.value,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            s.source or "",
            s.event_id or "",
        )
    print_table(table)


@suppressions_app.command("add")
def add_command(
    addresses: list[str] = AddressesArg,
    reason: str | None = ReasonOpt,
) -> None:
    """Suppress addresses (recorded as made by cli:<your login name>)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.email.addresses import bare_address
    from gcmc_jobs.services import suppressions

    why = _reason(reason)
    entries = []
    for value in addresses:
        try:
            entries.append((bare_address(value), why))
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r}: {exc}", param_hint="ADDRESSES") from None
    current = settings()
    configure_command_logging(current)
    with engine(current).begin() as connection:
        added = suppressions.add(connection, entries, actor=actor())
    console.print(
        f"suppressed {len(added)} address(es) ({why.value}); "
        f"{len(entries) - len(added)} already suppressed"
    )


@suppressions_app.command("remove")
def remove_command(
    addresses: list[str] = AddressesArg,
) -> None:
    """Lift the suppression of addresses (those not suppressed are listed on stderr)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services import suppressions

    current = settings()
    configure_command_logging(current)
    with engine(current).begin() as connection:
        removed = suppressions.remove(connection, addresses, actor=actor())
    console.print(f"removed {len(removed)} suppression(s)")
    missing = {a.strip().lower() for a in addresses} - {a.lower() for a in removed}
    if missing:
        err_console.print(
            f"not suppressed (nothing to do): {', '.join(sorted(missing))}",
            markup=False,
            highlight=False,
        )


@suppressions_app.command("import")
def import_command(
    csv_file: Path = CsvArg,
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid rows even when some are invalid."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Suppress the addresses of a CSV file, in one transaction. An invalid row is reported
    with its line number, and then nothing is imported (unless --skip-invalid)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.suppressions import import_csv

    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{csv_file}: not UTF-8 text", param_hint="CSV_FILE") from None
    current = settings()
    configure_command_logging(current)
    outcome = import_csv(engine(current), text, actor=actor(), skip_invalid=skip_invalid)
    if as_json:
        print_json(outcome.as_dict())
    else:
        for error in outcome.errors:
            err_console.print(f"{csv_file}: {error}", markup=False, highlight=False)
        if outcome.applied:
            console.print(
                f"suppressed {len(outcome.added)} address(es); {outcome.already} already "
                f"suppressed; {len(outcome.errors)} invalid row(s) skipped"
            )
    if outcome.errors and not outcome.applied:
        fail(f"{len(outcome.errors)} invalid row(s): nothing imported (see --skip-invalid)")


@suppressions_app.command("history")
def history_command(
    address: str | None = typer.Option(None, "--address", help="Only this address."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """Who or what changed the suppression list, and when (newest first)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services import suppressions

    current = settings()
    configure_command_logging(current)
    with engine(current).connect() as connection:
        found = suppressions.changes(connection, address=address, limit=limit)
    if as_json:
        print_json([c.as_dict() for c in found])
        return
    table = Table(title=f"{len(found)} change(s)")
    for column in ("when", "address", "action", "reason", "actor", "event"):
        table.add_column(column)
    for c in found:
        table.add_row(
            c.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.address,
            c.action,
            c.reason or "",
            c.actor,
            c.event_id or "",
        )
    print_table(table)


def _reason(value: str | None) -> SuppressionReason:
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.ops.suppressions import parse_reason

    try:
        return parse_reason(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--reason") from None

"""``gcmc-jobs sms``: who gets alerts by SMS (opt-ins), the suppressed numbers, a test text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gcmc_jobs.cli._app import (
    JsonOption,
    app,
    console,
    engine,
    print_json,
    print_table,
    settings,
)

if TYPE_CHECKING:
    from gcmc_jobs.db.tables import Id, Tables

__all__ = ["sms_app"]

sms_app = typer.Typer(
    help="The SMS channel: opt users in to alerts by SMS, list and remove opt-ins, suppress "
    "numbers, send a test SMS."
)
app.add_typer(sms_app, name="sms")

TenantArg = Annotated[str, typer.Argument(help="The tenant's id.")]
UserArg = Annotated[str, typer.Argument(help="The user's id (a member of the tenant).")]
PhoneArg = Annotated[
    str, typer.Argument(help="The number in E.164: + and the country code (+15005550006).")
]
CategoryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--category",
        "-c",
        help="A category (documents, filings, tasks, service_requests, billing); repeat "
        "for several. Opt-in default: documents and filings (the alerts sent by SMS); "
        "opt-out default: every category.",
    ),
]


def _id(tables: Tables, value: str, what: str) -> Id:
    """``value`` as the mapping's id type: a number on integer ids, the text otherwise."""
    if tables.mapping.id_type != "integer":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: {what} ids are integers here") from None


def _phone(value: str) -> str:
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.errors import InvalidPhoneNumber
    from gcmc_jobs.sms.numbers import normalize_phone

    try:
        return normalize_phone(value)
    except InvalidPhoneNumber as exc:
        raise typer.BadParameter(str(exc), param_hint="PHONE") from None


@sms_app.command("opt-in")
def opt_in_command(
    tenant: TenantArg, user: UserArg, phone: PhoneArg, category: CategoryOpt = None
) -> None:
    """Opt USER of TENANT in to alerts by SMS at PHONE.

    A user has one number per tenant: their other opt-ins in the tenant move to PHONE too.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.sms.opt_ins import SMS_CATEGORIES, opt_in

    number = _phone(phone)
    bound = engine()
    tables = tables_of(bound)
    categories = category or [c.value for c in SMS_CATEGORIES]
    with bound.begin() as connection:
        opt_in(
            connection,
            tenant_id=_id(tables, tenant, "tenant"),
            user_id=_id(tables, user, "user"),
            phone=number,
            categories=categories,
        )
    console.print(f"user {user} of tenant {tenant}: SMS at {number} for {', '.join(categories)}")


@sms_app.command("opt-out")
def opt_out_command(tenant: TenantArg, user: UserArg, category: CategoryOpt = None) -> None:
    """Opt USER of TENANT out of alerts by SMS (every category unless --category)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.sms.opt_ins import opt_out

    bound = engine()
    tables = tables_of(bound)
    with bound.begin() as connection:
        removed = opt_out(
            connection,
            tenant_id=_id(tables, tenant, "tenant"),
            user_id=_id(tables, user, "user"),
            categories=category or None,
        )
    console.print(f"user {user} of tenant {tenant}: {removed} opt-in(s) removed")


@sms_app.command("list")
def list_command(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """List the SMS opt-ins: tenant, user, category, number."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.tables import tables_of
    from gcmc_jobs.sms.opt_ins import opt_ins

    bound = engine()
    wanted = None if tenant is None else _id(tables_of(bound), tenant, "tenant")
    with bound.connect() as connection:
        rows = opt_ins(connection, tenant_id=wanted)
    if as_json:
        print_json(
            [
                {
                    "tenant_id": r.tenant_id,
                    "user_id": r.user_id,
                    "category": r.category.value,
                    "phone": r.phone,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table("tenant", "user", "category", "phone", "since")
    for r in rows:
        table.add_row(
            str(r.tenant_id), str(r.user_id), r.category.value, r.phone, f"{r.created_at:%Y-%m-%d}"
        )
    print_table(table)


@sms_app.command("suppress")
def suppress_command(
    phone: PhoneArg,
    reason: Annotated[
        str, typer.Option("--reason", help="manual, stop (a STOP reply) or permanent_error.")
    ] = "manual",
    detail: Annotated[str | None, typer.Option("--detail", help="A note kept with it.")] = None,
) -> None:
    """Never text PHONE again (until unsuppress)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.db.enums import SmsSuppressionReason
    from gcmc_jobs.services import sms_log

    try:
        why = SmsSuppressionReason(reason)
    except ValueError:
        known = ", ".join(r.value for r in SmsSuppressionReason)
        raise typer.BadParameter(f"{reason!r}: one of {known}", param_hint="--reason") from None
    number = _phone(phone)
    with engine().begin() as connection:
        added = sms_log.suppress(connection, number, why, detail)
    console.print(f"{number}: {'suppressed' if added else 'already suppressed'}")


@sms_app.command("unsuppress")
def unsuppress_command(phone: PhoneArg) -> None:
    """Take PHONE off the suppression list."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services import sms_log

    number = _phone(phone)
    with engine().begin() as connection:
        removed = sms_log.unsuppress(connection, number)
    console.print(f"{number}: {'no longer suppressed' if removed else 'was not suppressed'}")


@sms_app.command("suppressions")
def suppressions_command(as_json: bool = JsonOption) -> None:
    """List the suppressed numbers, newest first (at most 1,000)."""
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.services import sms_log

    with engine().connect() as connection:
        rows = sms_log.suppressions(connection)
    if as_json:
        print_json(
            [
                {
                    "phone": r.phone,
                    "reason": r.reason.value,
                    "detail": r.detail,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table("phone", "reason", "since", "detail")
    for r in rows:
        table.add_row(r.phone, r.reason.value, f"{r.created_at:%Y-%m-%d %H:%M}", r.detail or "")
    print_table(table)


@sms_app.command("test")
def send_test_command(
    phone: PhoneArg,
    body: Annotated[
        str, typer.Option("--body", help="The text.")
    ] = "gcmc-jobs: a test SMS. No reply needed.",
) -> None:
    """Send one SMS to PHONE now, to check the provider's settings.

    Goes straight through the configured transport (GCMC_JOBS_SMS_URL), bypassing the queue,
    the delivery log and the suppressions.
    """
    # Imported on use, not at the top: the command line's start-up stays light (cli/_app.py).
    from gcmc_jobs.sms.bodies import check_body
    from gcmc_jobs.sms.transports import SmsMessage, from_settings

    number = _phone(phone)
    transport = from_settings(settings())
    try:
        provider_id = transport.send(SmsMessage(number, check_body(body), kind="test"))
    finally:
        transport.close()
    console.print(f"sent to {number}: {provider_id}")

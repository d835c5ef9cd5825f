"""Demo step: a welcome and a password-reset email through the real actors, shown as files."""

from __future__ import annotations

import secrets
from pathlib import Path

from rich.table import Table
from sqlalchemy import select

from gcmc_jobs.db.models import Client, EmailSuppression, Tenant, User
from gcmc_jobs.demo.context import DemoContext
from gcmc_jobs.email import PasswordReset, Welcome
from gcmc_jobs.sending import queue_password_reset_email, queue_welcome_email
from gcmc_jobs.services import email_log

__all__ = ["TITLE", "run"]

TITLE = "Transactional email"


def run(ctx: DemoContext) -> None:
    """Welcome the first tenant's first client and send a user a password reset; then show
    the ``email_log`` rows and where the messages went (``.eml`` files in ``./outbox`` with
    the default ``GCMC_JOBS_EMAIL_URL=file://./outbox``)."""
    settings = ctx.settings
    with ctx.session() as session:
        tenant = session.scalars(select(Tenant).order_by(Tenant.id).limit(1)).one()
        client = session.scalars(
            select(Client)
            .where(
                Client.tenant_id == tenant.id,
                Client.email.is_not(None),
                Client.email.not_in(select(EmailSuppression.address)),
            )
            .order_by(Client.id)
            .limit(1)
        ).first()
        user = session.scalars(select(User).order_by(User.id).limit(1)).first()
        tenant_id, tenant_name = tenant.id, tenant.name
        client_email, client_name = (client.email, client.name) if client else (None, None)
        user_email, user_name = (user.email, user.name) if user else (None, None)

    keys: list[tuple[str, str]] = []
    if client_email and client_name:
        welcome = Welcome(
            tenant_name=tenant_name,
            client_name=client_name,
            portal_url=settings.portal_url,
            support_email=settings.support_email,
        )
        message = queue_welcome_email(client_email, welcome, tenant_id=tenant_id)
        keys.append(("welcome", message.kwargs["dedup_key"]))
    if user_email and user_name:
        token = secrets.token_urlsafe(24)
        reset = PasswordReset(
            tenant_name=tenant_name,
            user_name=user_name,
            reset_url=f"{settings.portal_url}/reset?token={token}",
            expires_in_minutes=60,
        )
        message = queue_password_reset_email(user_email, reset, tenant_id=tenant_id)
        keys.append(("password_reset", message.kwargs["dedup_key"]))
    ctx.wait()

    table = Table(title="email_log")
    for column in ("kind", "to", "subject", "status", "attempts"):
        table.add_column(column)
    rows = []
    with ctx.engine.connect() as connection:
        for _kind, key in keys:
            entry = email_log.get(connection, key)
            if entry is not None:
                rows.append(entry)
                table.add_row(
                    entry.kind,
                    entry.to_address,
                    entry.subject,
                    entry.status.value,
                    str(entry.attempts),
                )
    ctx.facts["email"] = rows
    ctx.console.print(table)
    for entry in rows:
        ctx.console.print(
            f"  {entry.kind}: [bold]{entry.provider_message_id or entry.error}[/]",
            soft_wrap=True,
        )
    files = [Path(r.provider_message_id) for r in rows if r.provider_message_id]
    if any(path.suffix == ".eml" for path in files):
        ctx.console.print(
            "Open the [bold].eml[/] files above in any mail client. The welcome's dedup key is "
            "derived from its content, so running the demo again does not mail it twice; the "
            "reset carries a fresh token each run (never printed, never logged), and went "
            "through the [bold]gcmc_email_critical[/] queue."
        )

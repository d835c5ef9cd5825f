"""Small builders of rows for tests: plain functions over a session, no magic.

They insert with SQLAlchemy Core through the session's mapped tables
(:func:`~gcmc_jobs.db.tables.tables_of`), so the same calls build a world on the ``gcmc``
preset or on Prisma-shaped tables (text ids, camelCase columns, enum types, ``createdAt`` /
``updatedAt`` filled). Each returns a small frozen row object with the logical columns
(``.id``, ``.tenant_id``, ``.latest_version_id``…), in the session's transaction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, insert, text, update
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import (
    DocumentStatus,
    FilingStatus,
    NotificationCategory,
    Role,
    SuppressionReason,
)
from gcmc_jobs.db.tables import Id, tables_of

_counter = itertools.count(1)


@dataclass(frozen=True)
class TenantRow:
    id: Id
    name: str
    timezone: str
    is_active: bool


@dataclass(frozen=True)
class UserRow:
    id: Id
    email: str
    name: str
    is_active: bool


@dataclass(frozen=True)
class ClientRow:
    id: Id
    tenant_id: Id
    name: str
    email: str | None
    assigned_user_id: Id | None
    is_active: bool


@dataclass(frozen=True)
class DocumentRow:
    id: Id
    tenant_id: Id
    client_id: Id
    title: str
    document_type: str
    latest_version_id: Id | None


@dataclass(frozen=True)
class FilingRow:
    id: Id
    tenant_id: Id
    client_id: Id
    filing_type: str
    period_start: date
    period_end: date
    due_date: date
    status: FilingStatus
    assigned_user_id: Id | None


def _add(session: Session, table: str, **values: Any) -> dict[str, Any]:
    """Insert one row of logical ``table`` (with the mapping's bookkeeping columns); returns
    its logical columns, the id the database made included."""
    t = tables_of(session)
    target = t.table(table)
    now = t.instant(datetime.now(UTC))
    row = session.execute(
        insert(target).values(**values, **t.timestamps(table, now)).returning(*target.c)
    ).one()
    # RETURNING names the physical columns: read the row by position, keyed logically.
    extra = set(t.extra_columns.get(table, ()))
    return {c.key: value for c, value in zip(target.c, row, strict=True) if c.key not in extra}


def tenant(
    session: Session, name: str = "Acme CPA", timezone: str = "UTC", *, active: bool = True
) -> TenantRow:
    return TenantRow(**_add(session, "tenants", name=name, timezone=timezone, is_active=active))


def user(
    session: Session, *, email: str | None = None, active: bool = True, name: str | None = None
) -> UserRow:
    n = next(_counter)
    return UserRow(
        **_add(
            session,
            "users",
            email=email or f"user{n}@example.com",
            name=name or f"User {n}",
            is_active=active,
        )
    )


def membership(session: Session, tenant_row: TenantRow, person: UserRow, role: Role) -> None:
    """Make ``person`` a member of the tenant with ``role``."""
    _add(session, "tenant_users", tenant_id=tenant_row.id, user_id=person.id, role=role)


def member(session: Session, tenant_row: TenantRow, role: Role, **kwargs: Any) -> UserRow:
    person = user(session, **kwargs)
    membership(session, tenant_row, person, role)
    return person


def preference(
    session: Session,
    tenant_row: TenantRow,
    person: UserRow,
    category: NotificationCategory,
    *,
    in_app: bool,
    email: bool,
) -> None:
    """``person``'s notification preference for ``category`` in the tenant."""
    _add(
        session,
        "notification_preferences",
        user_id=person.id,
        tenant_id=tenant_row.id,
        category=category,
        in_app=in_app,
        email=email,
    )


def suppression(
    session: Session, address: str, reason: SuppressionReason = SuppressionReason.HARD_BOUNCE
) -> None:
    """Put ``address`` on the suppression list."""
    session.execute(
        insert(tables_of(session).email_suppressions).values(address=address, reason=reason)
    )


def client(
    session: Session,
    tenant_row: TenantRow,
    *,
    assigned: UserRow | None = None,
    active: bool = True,
    email: str | None = None,
    name: str | None = None,
) -> ClientRow:
    n = next(_counter)
    return ClientRow(
        **_add(
            session,
            "clients",
            tenant_id=tenant_row.id,
            name=name or f"Client {n}",
            email=email or f"client{n}@example.com",
            assigned_user_id=assigned.id if assigned else None,
            is_active=active,
        )
    )


def document(
    session: Session,
    client_row: ClientRow,
    *,
    status: DocumentStatus | None = DocumentStatus.APPROVED,
    expiry: date | None = None,
    title: str | None = None,
) -> DocumentRow:
    """A document with one version (or none when ``status`` is None)."""
    n = next(_counter)
    values = _add(
        session,
        "documents",
        tenant_id=client_row.tenant_id,
        client_id=client_row.id,
        title=title or f"Document {n}",
        document_type="license",
    )
    if status is not None:
        t = tables_of(session)
        version = _add(
            session,
            "document_versions",
            document_id=values["id"],
            status=status,
            expiry_date=expiry,
        )
        session.execute(
            update(t.documents)
            .where(t.documents.c.id == values["id"])
            .values(latest_version_id=version["id"])
        )
        values["latest_version_id"] = version["id"]
    return DocumentRow(**values)


def filing(
    session: Session,
    client_row: ClientRow,
    *,
    due: date,
    status: FilingStatus = FilingStatus.DRAFT,
    assigned: UserRow | None = None,
    filing_type: str = "vat_return",
    period_start: date | None = None,
    period_end: date | None = None,
) -> FilingRow:
    return FilingRow(
        **_add(
            session,
            "filings",
            tenant_id=client_row.tenant_id,
            client_id=client_row.id,
            filing_type=filing_type,
            period_start=period_start or date(due.year, 1, 1),
            period_end=period_end or due,
            due_date=due,
            status=status,
            assigned_user_id=assigned.id if assigned else None,
        )
    )


def empty_tables(engine: Engine) -> None:
    """Empty every table of the engine's mapping (PostgreSQL), for a test that builds
    several worlds on one database."""
    with engine.begin() as connection:
        quote = connection.dialect.identifier_preparer.format_table
        tables = tables_of(connection).metadata.sorted_tables
        names = ", ".join(quote(table) for table in tables)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

"""Small builders of rows for tests: plain functions over a session, no magic."""

from __future__ import annotations

import itertools
from datetime import date

from sqlalchemy.orm import Session

from gcmc_jobs.db.models import (
    Client,
    Document,
    DocumentStatus,
    DocumentVersion,
    Filing,
    FilingStatus,
    Role,
    Tenant,
    TenantUser,
    User,
)

_counter = itertools.count(1)


def tenant(session: Session, name: str = "Acme CPA", timezone: str = "UTC") -> Tenant:
    row = Tenant(name=name, timezone=timezone)
    session.add(row)
    session.flush()
    return row


def user(session: Session, *, email: str | None = None, active: bool = True) -> User:
    n = next(_counter)
    row = User(email=email or f"user{n}@example.com", name=f"User {n}", is_active=active)
    session.add(row)
    session.flush()
    return row


def member(session: Session, tenant_row: Tenant, role: Role, **kwargs: object) -> User:
    person = user(session, **kwargs)  # type: ignore[arg-type]
    session.add(TenantUser(tenant_id=tenant_row.id, user_id=person.id, role=role))
    session.flush()
    return person


def client(
    session: Session,
    tenant_row: Tenant,
    *,
    assigned: User | None = None,
    active: bool = True,
    email: str | None = None,
) -> Client:
    n = next(_counter)
    row = Client(
        tenant_id=tenant_row.id,
        name=f"Client {n}",
        email=email or f"client{n}@example.com",
        assigned_user_id=assigned.id if assigned else None,
        is_active=active,
    )
    session.add(row)
    session.flush()
    return row


def document(
    session: Session,
    client_row: Client,
    *,
    status: DocumentStatus | None = DocumentStatus.APPROVED,
    expiry: date | None = None,
    title: str | None = None,
) -> Document:
    """A document with one version (or none when ``status`` is None)."""
    n = next(_counter)
    row = Document(
        tenant_id=client_row.tenant_id,
        client_id=client_row.id,
        title=title or f"Document {n}",
        document_type="license",
    )
    session.add(row)
    session.flush()
    if status is not None:
        version = DocumentVersion(document_id=row.id, status=status, expiry_date=expiry)
        session.add(version)
        session.flush()
        row.latest_version_id = version.id
        session.flush()
    return row


def filing(
    session: Session,
    client_row: Client,
    *,
    due: date,
    status: FilingStatus = FilingStatus.DRAFT,
    assigned: User | None = None,
) -> Filing:
    row = Filing(
        tenant_id=client_row.tenant_id,
        client_id=client_row.id,
        filing_type="vat_return",
        period_start=date(due.year, 1, 1),
        period_end=due,
        due_date=due,
        status=status,
        assigned_user_id=assigned.id if assigned else None,
    )
    session.add(row)
    session.flush()
    return row

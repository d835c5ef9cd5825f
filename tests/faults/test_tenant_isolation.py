"""Scenario 9: tenant isolation, as a property over random multi-tenant data.

Hypothesis builds two or three tenants with overlapping people (a user may belong to
several tenants, with different roles), clients assigned to people of *another* tenant,
documents and filings on every status and around every warning day, preferences turned
off. Then every daily job runs for one tenant, A, and:

- nothing of any other tenant is written (every tenant-owned table compared row by row);
- every notification and digest of the run belongs to A, about A's documents and filings,
  and goes to a member of A (never to an assigned user who is not a member of A);
- no output carries another tenant's data (each tenant's names carry a marker).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import (
    Client,
    Document,
    DocumentStatus,
    DocumentVersion,
    Filing,
    FilingStatus,
    NotificationCategory,
    NotificationPreference,
    Role,
    Tenant,
    TenantUser,
    User,
)
from gcmc_jobs.scheduling.jobs import JOB_NAMES, SentDigests
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.services.digests import Digest
from tests.support.database import TableEmptier

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
#: Tables whose rows belong to one tenant, and the column that says which.
TENANT_TABLES = {
    "tenants": "id",
    "tenant_users": "tenant_id",
    "clients": "tenant_id",
    "documents": "tenant_id",
    "filings": "tenant_id",
    "compliance_scores": "tenant_id",
    "notifications": "tenant_id",
    "notification_preferences": "tenant_id",
    "email_log": "tenant_id",
    "job_runs": "tenant_id",
}
EXPIRY_OFFSETS = [None, -30, -1, 0, 1, 3, 5, 7, 8, 14, 29, 30, 31]
DUE_OFFSETS = [-9, -8, -7, -3, -1, 0, 3, 7, 8, 14, 15]

documents = st.tuples(st.sampled_from([None, *DocumentStatus]), st.sampled_from(EXPIRY_OFFSETS))
filings = st.tuples(
    st.sampled_from(list(FilingStatus)), st.sampled_from(DUE_OFFSETS), st.integers(-1, 5)
)
clients = st.fixed_dictionaries(
    {
        "assigned": st.integers(-1, 5),  # an index into the users, or -1 for nobody
        "active": st.sampled_from([True, True, False]),
        "documents": st.lists(documents, min_size=1, max_size=3),
        "filings": st.lists(filings, min_size=1, max_size=2),
    }
)
worlds = st.fixed_dictionaries(
    {
        # is_active, mostly
        "users": st.lists(st.sampled_from([True, True, True, False]), min_size=2, max_size=6),
        "tenants": st.lists(
            st.fixed_dictionaries(
                {
                    "roles": st.lists(st.sampled_from([None, *Role]), min_size=6, max_size=6),
                    "clients": st.lists(clients, min_size=1, max_size=3),
                    "opt_out": st.lists(
                        st.tuples(st.integers(0, 5), st.sampled_from(list(NotificationCategory))),
                        max_size=2,
                    ),
                }
            ),
            min_size=2,
            max_size=3,
        ),
    }
)


def _build(engine: Engine, world: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Insert the world; returns the tenant ids and the user ids."""
    with Session(engine) as session, session.begin():
        users = [
            User(email=f"u{n}@people.example", name=f"Person {n}", is_active=active)
            for n, active in enumerate(world["users"])
        ]
        session.add_all(users)
        session.flush()
        tenant_ids = []
        for t, spec in enumerate(world["tenants"]):
            tenant = Tenant(name=f"TENANT{t}MARK Firm")
            session.add(tenant)
            session.flush()
            tenant_ids.append(tenant.id)
            for user, role in zip(users, spec["roles"], strict=False):
                if role is not None:
                    session.add(TenantUser(tenant_id=tenant.id, user_id=user.id, role=role))
            for index, category in spec["opt_out"]:
                if index < len(users):
                    session.merge(
                        NotificationPreference(
                            user_id=users[index].id,
                            tenant_id=tenant.id,
                            category=category,
                            in_app=False,
                            email=False,
                        )
                    )
            for c, client_spec in enumerate(spec["clients"]):
                assigned = client_spec["assigned"]
                client = Client(
                    tenant_id=tenant.id,
                    name=f"TENANT{t}MARK Client {c}",
                    email=f"client{t}-{c}@clients.example",
                    assigned_user_id=users[assigned].id if 0 <= assigned < len(users) else None,
                    is_active=client_spec["active"],
                )
                session.add(client)
                session.flush()
                for d, (status, offset) in enumerate(client_spec["documents"]):
                    document = Document(
                        tenant_id=tenant.id,
                        client_id=client.id,
                        title=f"TENANT{t}MARK Document {c}-{d}",
                        document_type="license",
                    )
                    session.add(document)
                    session.flush()
                    if status is not None:
                        version = DocumentVersion(
                            document_id=document.id,
                            status=status,
                            expiry_date=None if offset is None else TODAY + timedelta(offset),
                        )
                        session.add(version)
                        session.flush()
                        document.latest_version_id = version.id
                for status, offset, who in client_spec["filings"]:
                    session.add(
                        Filing(
                            tenant_id=tenant.id,
                            client_id=client.id,
                            filing_type=f"TENANT{t}MARK vat",
                            period_start=TODAY - timedelta(90),
                            period_end=TODAY - timedelta(60),
                            due_date=TODAY + timedelta(offset),
                            status=status,
                            assigned_user_id=users[who].id if 0 <= who < len(users) else None,
                        )
                    )
        return tenant_ids, [u.id for u in users]


def _rows_of_others(engine: Engine, tenant_id: int) -> dict[str, set[tuple[Any, ...]]]:
    with engine.connect() as connection:
        snapshot = {
            table: set(
                map(
                    tuple,
                    connection.execute(
                        text(f"SELECT * FROM {table} WHERE {column} IS DISTINCT FROM :t"),
                        {"t": tenant_id},
                    ).all(),
                )
            )
            for table, column in TENANT_TABLES.items()
        }
        snapshot["users"] = set(map(tuple, connection.execute(text("SELECT * FROM users")).all()))
    return snapshot


@settings(max_examples=25)
@given(world=worlds)
def test_no_job_for_one_tenant_reads_writes_or_notifies_anything_of_another(
    world: dict[str, Any], gcmc_db: Engine, table_emptier: TableEmptier
) -> None:
    # Given random tenants that share people (in tables emptied of the previous example's)
    table_emptier.empty()
    tenant_ids, _ = _build(gcmc_db, world)
    tenant_a = tenant_ids[0]
    marker_a = "TENANT0MARK"
    before = _rows_of_others(gcmc_db, tenant_a)

    # When every daily job runs for tenant A
    digests: list[Digest] = []

    def capture(found: Any) -> SentDigests:
        digests.extend(found)
        return SentDigests(queued=len(found), duplicates=0)

    for job in JOB_NAMES:
        run_for_tenant(gcmc_db, job, tenant_a, local_date=TODAY, now=NOW, send_digests=capture)

    # Then nothing of any other tenant was written
    assert _rows_of_others(gcmc_db, tenant_a) == before

    # And everything the run produced belongs to A and reaches only A's members
    with Session(gcmc_db) as session:
        members_a = set(
            session.scalars(select(TenantUser.user_id).where(TenantUser.tenant_id == tenant_a))
        )
        emails = {row.id: row.email for row in session.execute(select(User.id, User.email))}
        documents_a = set(
            session.scalars(
                select(DocumentVersion.id)
                .join(Document, Document.id == DocumentVersion.document_id)
                .where(Document.tenant_id == tenant_a)
            )
        )
        filings_a = set(session.scalars(select(Filing.id).where(Filing.tenant_id == tenant_a)))
        notes = session.execute(
            text(
                "SELECT tenant_id, user_id, subject_type, subject_id, title, body "
                "FROM notifications"
            )
        ).all()
        scored = session.execute(
            text(
                "SELECT s.tenant_id, c.tenant_id FROM compliance_scores s "
                "JOIN clients c ON c.id = s.client_id"
            )
        ).all()
    event(f"notifications: {'some' if notes else 'none'}, digests: {'some' if digests else 'none'}")
    for note in notes:
        assert note.tenant_id == tenant_a
        assert note.user_id in members_a
        subjects = documents_a if note.subject_type == "document_version" else filings_a
        assert note.subject_id in subjects, note
        assert "MARK" not in (note.title + note.body).replace(marker_a, "")
    for digest in digests:
        assert digest.tenant_id == tenant_a
        assert digest.user_id in members_a
        assert digest.to == emails[digest.user_id]
        assert "MARK" not in repr([digest.tenant_name, digest.items]).replace(marker_a, "")
    assert all(score_tenant == client_tenant == tenant_a for score_tenant, client_tenant in scored)

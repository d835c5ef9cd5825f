"""Seed data: reproducible, covering every case the jobs handle, loadable twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import (
    Base,
    Client,
    Document,
    DocumentStatus,
    DocumentVersion,
    EmailSuppression,
    Filing,
    FilingStatus,
    NotificationPreference,
    Role,
    Tenant,
    TenantUser,
    User,
)
from gcmc_jobs.seeding import seed
from gcmc_jobs.seeding.generate import REMINDER_DAYS, WARNING_DAYS
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key))
            ]
            for table in Base.metadata.sorted_tables
        }


def test_the_same_seed_gives_the_same_data(gcmc_sqlite_db: Engine, tmp_path: object) -> None:
    other = make_engine(f"sqlite:///{tmp_path}/other.sqlite3")
    upgrade(other)
    try:
        for engine in (gcmc_sqlite_db, other):
            seed(engine, tenants=2, clients_per_tenant=5, seed=7, now=NOW)
        assert _dump(gcmc_sqlite_db) == _dump(other)
    finally:
        other.dispose()


def test_another_seed_gives_other_data(gcmc_sqlite_db: Engine, tmp_path: object) -> None:
    other = make_engine(f"sqlite:///{tmp_path}/other.sqlite3")
    upgrade(other)
    try:
        seed(gcmc_sqlite_db, tenants=1, clients_per_tenant=5, seed=1, now=NOW)
        seed(other, tenants=1, clients_per_tenant=5, seed=2, now=NOW)
        assert _dump(gcmc_sqlite_db)["filings"] != _dump(other)["filings"]
    finally:
        other.dispose()


def test_seed_covers_every_case_the_jobs_handle(gcmc_db: Engine) -> None:
    # When three tenants are seeded on PostgreSQL
    result = seed(gcmc_db, tenants=3, clients_per_tenant=20, seed=0, now=NOW)

    with Session(gcmc_db) as session:
        # Then the counts match what was reported
        for table in Base.metadata.sorted_tables:
            stored = session.scalar(select(func.count()).select_from(table))
            assert stored == result.rows.get(table.name, 0), table.name
        # tenants live in several timezones
        assert len(set(session.scalars(select(Tenant.timezone)))) == 3
        # every role, inactive users, and preferences turned off
        assert set(session.scalars(select(TenantUser.role))) == set(Role)
        assert session.scalar(select(func.count()).where(User.is_active.is_(False))) > 0
        preferences = session.scalars(select(NotificationPreference)).all()
        assert any(not (p.in_app and p.email) for p in preferences)
        assert session.scalar(select(func.count()).select_from(EmailSuppression)) > 0
        # clients: assigned staff, some inactive
        assert session.scalar(select(func.count()).where(Client.assigned_user_id.is_not(None)))
        assert session.scalar(select(func.count()).where(Client.is_active.is_(False))) > 0
        # documents: every latest status, documents with no version, older versions
        latest = (
            select(DocumentVersion.status, DocumentVersion.expiry_date, Tenant.timezone)
            .join(Document, Document.latest_version_id == DocumentVersion.id)
            .join(Tenant, Tenant.id == Document.tenant_id)
        )
        rows = session.execute(latest).all()
        assert {status for status, _, _ in rows} == set(DocumentStatus)
        assert session.scalar(select(func.count()).where(Document.latest_version_id.is_(None)))
        assert session.scalar(select(func.count()).select_from(DocumentVersion)) > len(rows)
        # expiries from long past to far future, and every warning day in each tenant
        offsets = {
            (expiry - NOW.astimezone(ZoneInfo(zone)).date()).days
            for _, expiry, zone in rows
            if expiry is not None
        }
        assert min(offsets) < -365
        assert max(offsets) > 365
        assert set(WARNING_DAYS) <= offsets
        # filings: every status, due dates around today, every reminder day
        assert set(session.scalars(select(Filing.status))) == set(FilingStatus)
        dues = session.execute(select(Filing.due_date, Tenant.timezone).join(Tenant)).all()
        filing_offsets = {(due - NOW.astimezone(ZoneInfo(z)).date()).days for due, z in dues}
        assert set(REMINDER_DAYS) <= filing_offsets


def test_seed_restores_constraints_and_sequences_on_postgresql(gcmc_db: Engine) -> None:
    before = _foreign_keys(gcmc_db)
    seed(gcmc_db, tenants=1, clients_per_tenant=3, now=NOW)

    # Then every foreign key is back
    assert _foreign_keys(gcmc_db) == before
    # and new rows get ids past the seeded ones
    with Session(gcmc_db) as session:
        largest = session.scalar(select(func.max(Document.id)))
        t = session.scalars(select(Tenant)).one()
        doc = f.document(session, f.client(session, t), expiry=NOW.date())
        assert largest is not None
        assert doc.id > largest
        session.commit()


def test_seeding_twice_adds_a_second_data_set(gcmc_db: Engine) -> None:
    first = seed(gcmc_db, tenants=1, clients_per_tenant=4, seed=3, now=NOW)
    second = seed(gcmc_db, tenants=1, clients_per_tenant=4, seed=3, now=NOW)
    with Session(gcmc_db) as session:
        documents = session.scalar(select(func.count()).select_from(Document))
        assert documents == first.rows["documents"] + second.rows["documents"]
        tenant_ids = session.scalars(select(Tenant.id).order_by(Tenant.id)).all()
        assert len(tenant_ids) == 2


def test_seeded_scores_spread_over_every_risk_level(gcmc_db: Engine) -> None:
    seed(gcmc_db, tenants=2, clients_per_tenant=60, seed=0, now=NOW)
    with Session(gcmc_db) as session:
        for tenant_id in session.scalars(select(Tenant.id)).all():
            refresh_tenant(session, tenant_id, now=NOW + timedelta(hours=1))
        session.commit()
        levels = session.execute(text("SELECT DISTINCT level FROM compliance_scores")).scalars()
        assert set(levels) == {"low", "medium", "high"}


def _foreign_keys(engine: Engine) -> set[tuple[str, str | None]]:
    inspector = inspect(engine)
    return {
        (table, fk["name"])
        for table in inspector.get_table_names()
        for fk in inspector.get_foreign_keys(table)
    }

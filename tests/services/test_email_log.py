"""email_log: the suppression lookup (case-insensitive, served by an index), and the log on
every preset."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import EmailStatus
from gcmc_jobs.db.models import EmailSuppression, SuppressionReason
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import UnknownTenant
from gcmc_jobs.services import email_log
from tests import factories as f


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_suppression_is_found_whatever_the_case_and_through_the_lower_index(
    database: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(
        "gcmc_db" if database == "postgresql" else "gcmc_sqlite_db"
    )
    address = f"Bounced.{database}@Example.COM"
    with engine.begin() as connection:
        connection.execute(
            insert(EmailSuppression).values(address=address, reason=SuppressionReason.HARD_BOUNCE)
        )
    try:
        with engine.connect() as connection:
            # Then the address in any case is suppressed
            for asked in (address, address.lower(), address.upper()):
                assert email_log.suppression_reason(connection, asked) is (
                    SuppressionReason.HARD_BOUNCE
                )
            # And the lookup's expression is the index's (migration 0002): usable by the
            # planner, not a scan of every suppression per email
            if database == "postgresql":
                connection.execute(text("SET LOCAL enable_seqscan = off"))
                plan_sql = (
                    "EXPLAIN SELECT reason FROM email_suppressions WHERE lower(address) = 'x'"
                )
            else:
                plan_sql = (
                    "EXPLAIN QUERY PLAN SELECT reason FROM email_suppressions"
                    " WHERE lower(address) = 'x'"
                )
            plan = " ".join(str(row) for row in connection.execute(text(plan_sql)).all())
            assert "ix_email_suppressions_address_lower" in plan, plan
            connection.rollback()
    finally:
        with engine.begin() as connection:
            connection.execute(
                EmailSuppression.__table__.delete().where(EmailSuppression.address == address)
            )


def test_the_log_checks_tenants_and_suppressions_on_every_preset(preset_db: Engine) -> None:
    # Given a tenant and a suppressed address, on the preset's tables (text ids on Prisma)
    with Session(preset_db) as session, session.begin():
        tenant = f.tenant(session)
        f.suppression(session, "Gone@Example.com")
    with preset_db.begin() as connection:
        # When an email of that tenant is queued, claimed and sent
        email_log.ensure_queued(
            connection,
            dedup_key="welcome:1",
            to_address="new@example.com",
            kind="welcome",
            subject="Hello",
            tenant_id=tenant.id,
        )
        assert email_log.claim(connection, "welcome:1")
        email_log.mark_sent(connection, "welcome:1", "<1@example.com>")
        # Then its row says so, with the tenant's id as the mapping types it
        entry = email_log.get(connection, "welcome:1")
        assert entry is not None
        assert (entry.status, entry.tenant_id, entry.attempts) == (EmailStatus.SENT, tenant.id, 1)
        assert not email_log.claim(connection, "welcome:1")
        # And the suppression list is read on that database too
        assert email_log.suppression_reason(connection, "gone@example.com") is (
            SuppressionReason.HARD_BOUNCE
        )
    # And an email for a tenant that does not exist is refused, naming the id
    unknown: Id = "no-such-tenant" if tables_of(preset_db).mapping.id_type == "text" else 999_999
    refused = pytest.raises(UnknownTenant, match=f"no tenant has id {unknown}")
    with refused, preset_db.begin() as connection:
        email_log.ensure_queued(
            connection,
            dedup_key="welcome:2",
            to_address="new@example.com",
            kind="welcome",
            subject="Hello",
            tenant_id=unknown,
        )

"""email_log's suppression lookup: case-insensitive, and served by an index."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, text

from gcmc_jobs.db.models import EmailSuppression, SuppressionReason
from gcmc_jobs.services import email_log


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

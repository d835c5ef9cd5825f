"""The compliance refresh: exact rules, one statement per tenant, atomic."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import ComplianceLevel, ComplianceScore, DocumentStatus, FilingStatus
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f

TODAY = date(2026, 3, 10)


def test_each_rule_counts_what_domain_md_says(gcmc_session: Session) -> None:
    # Given one client with one document or filing in each situation
    t = f.tenant(gcmc_session)
    c = f.client(gcmc_session, t)
    f.document(gcmc_session, c, status=DocumentStatus.PENDING_REVIEW)
    f.document(gcmc_session, c, status=DocumentStatus.REJECTED)
    f.document(gcmc_session, c, status=None)
    f.document(gcmc_session, c, expiry=TODAY - timedelta(days=1))
    f.document(gcmc_session, c, expiry=TODAY)
    f.document(gcmc_session, c, expiry=TODAY + timedelta(days=30))
    f.document(gcmc_session, c, expiry=TODAY + timedelta(days=31))
    f.filing(gcmc_session, c, due=TODAY - timedelta(days=1), status=FilingStatus.PREPARED)
    f.filing(gcmc_session, c, due=TODAY - timedelta(days=1), status=FilingStatus.SUBMITTED)
    f.filing(gcmc_session, c, due=TODAY)

    # When the tenant is refreshed
    refresh_tenant(gcmc_session, t.id, today=TODAY)

    # Then each count and the score follow the rules
    score = gcmc_session.scalars(select(ComplianceScore)).one()
    assert (score.missing_count, score.expired_count, score.expiring_count) == (3, 1, 2)
    assert score.overdue_count == 1
    assert score.score == 100 - 5 * 7
    assert score.level is ComplianceLevel.MEDIUM


def test_statements_do_not_grow_with_clients(gcmc_session: Session, gcmc_db: Engine) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    small, large = f.tenant(gcmc_session, "small"), f.tenant(gcmc_session, "large")
    for t, clients in ((small, 10), (large, 300)):
        for _ in range(clients):
            f.document(gcmc_session, f.client(gcmc_session, t), expiry=TODAY)
    gcmc_session.commit()

    event.listen(gcmc_db, "before_cursor_execute", count)
    try:
        refresh_tenant(gcmc_session, small.id)
        per_small = len(statements)
        refresh_tenant(gcmc_session, large.id)
        per_large = len(statements) - per_small
    finally:
        event.remove(gcmc_db, "before_cursor_execute", count)
    assert per_small == per_large == 2

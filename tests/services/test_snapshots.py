"""Daily compliance snapshots: written by each refresh, in its transaction, set-based."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import DocumentStatus
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.snapshots import SNAPSHOT_COLUMNS
from tests import factories as f
from tests.support.statements import recorded_statements

TODAY = date(2026, 11, 30)


def _snapshots(session: Session) -> list[dict[str, object]]:
    s = tables_of(session).compliance_snapshots
    return [dict(r._mapping) for r in session.execute(select(s).order_by(s.c.tenant_id, s.c.day))]


def test_a_refresh_records_the_tenants_day_once_and_replaces_it(preset_session: Session) -> None:
    # Given a tenant with a low-, a medium- and a high-risk client, an inactive client and
    # another tenant
    t, other = f.tenant(preset_session), f.tenant(preset_session, "Other")
    low = f.client(preset_session, t)
    f.document(preset_session, low, expiry=TODAY + timedelta(days=3))  # 1 expiring: 95
    medium = f.client(preset_session, t)
    for _ in range(5):
        f.filing(preset_session, medium, due=TODAY - timedelta(days=2))  # 5 overdue: 75
    high = f.client(preset_session, t)
    for _ in range(6):
        f.document(preset_session, high, status=DocumentStatus.REJECTED)  # 6 missing
    for _ in range(5):
        f.document(preset_session, high, expiry=TODAY - timedelta(days=1))  # 5 expired: 45
    gone = f.client(preset_session, t, active=False)
    f.document(preset_session, gone, status=None)
    f.client(preset_session, other)

    # When the tenant is refreshed twice on one local day
    refresh_tenant(preset_session, t.id, today=TODAY)
    refresh_tenant(preset_session, t.id, today=TODAY)

    # Then it has one snapshot of that day summing its active clients' scores
    [row] = _snapshots(preset_session)
    assert row["tenant_id"] == t.id
    assert row["day"] == TODAY
    assert (row["clients"], row["low"], row["medium"], row["high"]) == (3, 1, 1, 1)
    assert row["average_score"] == round((95 + 75 + 45) / 3, 2)
    assert (row["missing_count"], row["expired_count"]) == (6, 5)
    assert (row["expiring_count"], row["overdue_count"]) == (1, 5)

    # And a later day adds a row; the other tenant's is its own; a tenant with no active
    # client gets a row of zeros
    empty = f.tenant(preset_session, "Empty")
    refresh_tenant(preset_session, t.id, today=TODAY + timedelta(days=1))
    refresh_tenant(preset_session, other.id, today=TODAY)
    refresh_tenant(preset_session, empty.id, today=TODAY)
    rows = {(r["tenant_id"], r["day"]): r for r in _snapshots(preset_session)}
    assert set(rows) == {
        (t.id, TODAY),
        (t.id, TODAY + timedelta(days=1)),
        (other.id, TODAY),
        (empty.id, TODAY),
    }
    assert (rows[other.id, TODAY]["clients"], rows[other.id, TODAY]["average_score"]) == (1, 100)
    zeros = rows[empty.id, TODAY]
    assert [zeros[name] for name in SNAPSHOT_COLUMNS] == [0] * len(SNAPSHOT_COLUMNS)


def test_a_refresh_that_fails_leaves_no_snapshot(preset_session: Session) -> None:
    # Given a refresh whose transaction rolls back after the snapshot was written
    t = f.tenant(preset_session)
    f.client(preset_session, t)
    preset_session.commit()
    refresh_tenant(preset_session, t.id, today=TODAY)
    preset_session.rollback()

    # Then neither the scores nor the snapshot are there: one transaction
    assert _snapshots(preset_session) == []


def test_the_snapshot_is_one_statement_whatever_the_clients(
    preset_session: Session, preset_db: Engine
) -> None:
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    for t, clients in ((small, 5), (large, 200)):
        for _ in range(clients):
            f.document(preset_session, f.client(preset_session, t), expiry=TODAY)
    preset_session.commit()

    with recorded_statements(preset_db) as statements:
        refresh_tenant(preset_session, small.id, today=TODAY)
        per_small = list(statements)
        refresh_tenant(preset_session, large.id, today=TODAY)
    per_large = statements[len(per_small) :]
    assert len(per_small) == len(per_large) == 2  # the scores, then the snapshot
    assert "compliance_snapshots" in per_large[1]

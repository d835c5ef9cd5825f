"""The dashboard's database summaries: clients by risk per tenant, email by kind and status
(issue 16, item 3), on both mappings, in one statement each."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.services import email_log
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.overview import email_delivery, risk_distribution, risk_trend
from tests import factories as f
from tests.support.statements import recorded_statements


def _client_with_missing_documents(session: Session, tenant: f.TenantRow, missing: int) -> None:
    """A client whose score is 100 - 5 x ``missing`` (each document has no version)."""
    client = f.client(session, tenant)
    for _ in range(missing):
        f.document(session, client, status=None)


def _add_scored_tenant(session: Session, name: str, missing: list[int]) -> f.TenantRow:
    tenant = f.tenant(session, name)
    for count in missing:
        _client_with_missing_documents(session, tenant, count)
    refresh_tenant(session, tenant.id)
    return tenant


def test_risk_distribution_counts_each_tenants_clients_per_level(
    preset_db: Engine, preset_session: Session
) -> None:
    # Given two tenants with scored clients (0 missing: low, 7: medium, 11: high) and one
    # without any
    acme = _add_scored_tenant(preset_session, "Acme", [0, 0, 7, 11])
    zed = _add_scored_tenant(preset_session, "Zed", [11])
    empty = f.tenant(preset_session, "Empty")
    preset_session.commit()

    # Then each is listed by name with its clients per level, zeros included
    with preset_db.connect() as connection:
        found = risk_distribution(connection)
    assert [(r.id, r.name, r.levels) for r in found] == [
        (acme.id, "Acme", {"low": 2, "medium": 1, "high": 1}),
        (empty.id, "Empty", {"low": 0, "medium": 0, "high": 0}),
        (zed.id, "Zed", {"low": 0, "medium": 0, "high": 1}),
    ]


def test_email_delivery_counts_per_kind_and_status_since_a_time(
    preset_db: Engine, preset_session: Session
) -> None:
    tenant = f.tenant(preset_session, "Mail")
    preset_session.commit()
    with preset_db.begin() as connection:
        for n, (kind, outcome) in enumerate(
            [("digest", "sent"), ("digest", "sent"), ("digest", "failed"), ("reset", "queued")]
        ):
            key = f"k{n}"
            email_log.ensure_queued(
                connection,
                dedup_key=key,
                to_address=f"a{n}@example.com",
                kind=kind,
                subject="s",
                tenant_id=tenant.id,
            )
            if outcome == "sent":
                email_log.mark_sent(connection, key, f"<{n}@example.com>")
            elif outcome == "failed":
                email_log.mark_failed(connection, key, "550 no such user")

    with preset_db.connect() as connection:
        recent = email_delivery(connection, since=datetime.now(UTC) - timedelta(hours=1))
        future = email_delivery(connection, since=datetime.now(UTC) + timedelta(hours=1))
    assert [(d.kind, d.status, d.count) for d in recent] == [
        ("digest", "failed", 1),
        ("digest", "sent", 2),
        ("reset", "queued", 1),
    ]
    assert future == []


def test_each_summary_is_one_statement_whatever_the_tenants(
    gcmc_db: Engine, gcmc_session: Session
) -> None:
    counts: list[tuple[int, int]] = []
    for tenants in (1, 12):
        for n in range(tenants):
            _add_scored_tenant(gcmc_session, f"T{tenants}-{n}", [0, 11])
        gcmc_session.commit()
        with recorded_statements(gcmc_db) as risk, gcmc_db.connect() as connection:
            assert risk_distribution(connection)
        since = datetime.now(UTC) - timedelta(hours=1)
        with recorded_statements(gcmc_db) as email, gcmc_db.connect() as connection:
            email_delivery(connection, since=since)
        with recorded_statements(gcmc_db) as trend, gcmc_db.connect() as connection:
            assert risk_trend(connection, since=date(2000, 1, 1))
        counts.append((len(risk), len(email), len(trend)))
    assert counts == [(1, 1, 1), (1, 1, 1)]


def test_the_risk_trend_sums_the_tenants_snapshots_per_day(
    preset_db: Engine, preset_session: Session
) -> None:
    # Given two tenants refreshed on two days (each refresh writes that day's snapshot), one
    # client of the first becoming high risk on the second day
    day1, day2 = date(2026, 11, 30), date(2026, 12, 1)
    acme = f.tenant(preset_session, "Acme")
    f.client(preset_session, acme)
    worsening = f.client(preset_session, acme)
    zed = f.tenant(preset_session, "Zed")
    _client_with_missing_documents(preset_session, zed, 7)
    for tenant in (acme, zed):
        refresh_tenant(preset_session, tenant.id, today=day1)
    for _ in range(11):
        f.document(preset_session, worsening, status=None)
    for tenant in (acme, zed):
        refresh_tenant(preset_session, tenant.id, today=day2)
    preset_session.commit()

    # Then each day sums both tenants; a day before "since" is left out
    with preset_db.connect() as connection:
        trend = risk_trend(connection, since=day1)
        later = risk_trend(connection, since=day2)
    assert [(d.day, d.low, d.medium, d.high) for d in trend] == [
        (day1, 2, 1, 0),
        (day2, 1, 1, 1),
    ]
    assert [d.day for d in later] == [day2]

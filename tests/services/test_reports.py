"""The report's figures and recipients, set-based, on both mappings."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import DocumentStatus, FilingStatus, NotificationCategory, Role
from gcmc_jobs.services import reports
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f
from tests.support.statements import recorded_statements

PERIOD = date(2026, 11, 1)
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_the_report_holds_the_distribution_trend_top_clients_and_overdue_filings(
    preset_session: Session,
) -> None:
    # Given 25 active clients (client n has n % 6 rejected documents), an inactive one,
    # snapshots on three days of two months, and filings around the period's end
    t = f.tenant(preset_session, "Porto Ledger")
    clients = []
    for n in range(25):
        c = f.client(preset_session, t, name=f"Client {n:02d}")
        for _ in range(n % 6):
            f.document(preset_session, c, status=DocumentStatus.REJECTED)
        clients.append(c)
    gone = f.client(preset_session, t, active=False, name="Gone")
    f.filing(preset_session, gone, due=date(2026, 11, 1))
    f.filing(preset_session, clients[0], due=date(2026, 11, 30), filing_type="due_on_last_day")
    f.filing(preset_session, clients[1], due=date(2026, 12, 1), filing_type="due_after")
    f.filing(preset_session, clients[2], due=date(2026, 10, 1), filing_type="long_overdue")
    f.filing(
        preset_session,
        clients[3],
        due=date(2026, 10, 1),
        status=FilingStatus.SUBMITTED,
        filing_type="submitted",
    )
    for day in (date(2026, 9, 30), date(2026, 11, 2), date(2026, 11, 29)):
        refresh_tenant(preset_session, t.id, today=day)

    # When November's report is aggregated
    state = reports.aggregate(preset_session, t.id, PERIOD, now=NOW)
    data = state.data

    # Then the distribution counts every active client once
    distribution = data["distribution"]
    assert distribution["clients"] == 25
    assert distribution["low"] + distribution["medium"] + distribution["high"] == 25
    # And the 20 highest-risk clients come lowest score first
    top = data["top_clients"]
    assert len(top) == 20
    assert [c["score"] for c in top] == sorted(c["score"] for c in top)
    assert top[0]["score"] == min(c["score"] for c in data["clients"])
    # And the trend has twelve months, the last snapshot of each, none where there is none
    trend = {month["month"]: month for month in data["trend"]}
    assert list(trend) == [f"2025-{m:02d}" for m in (12,)] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert trend["2026-11"]["day"] == "2026-11-29"
    assert trend["2026-09"]["day"] == "2026-09-30"
    assert trend["2026-10"]["day"] is None
    # And the overdue filings are the open ones of active clients due by the period's end
    overdue = {row["filing_type"]: row for row in data["overdue_filings"]}
    assert set(overdue) == {"due_on_last_day", "long_overdue"}
    assert overdue["long_overdue"]["days_overdue"] == 60
    # And the CSV's rows are every active client
    assert {c["name"] for c in data["clients"]} == {f"Client {n:02d}" for n in range(25)}


def test_aggregating_is_a_constant_number_of_statements(
    preset_session: Session, preset_db: Engine
) -> None:
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    for t, count in ((small, 3), (large, 120)):
        for _ in range(count):
            c = f.client(preset_session, t)
            f.filing(preset_session, c, due=date(2026, 11, 5))
        refresh_tenant(preset_session, t.id, today=date(2026, 11, 30))
    preset_session.commit()

    with recorded_statements(preset_db) as statements:
        reports.aggregate(preset_session, small.id, PERIOD, now=NOW)
        per_small = len(statements)
        reports.aggregate(preset_session, large.id, PERIOD, now=NOW)
    assert per_small == len(statements) - per_small == 6


def test_recipients_are_active_owners_and_admins_with_the_documents_email_on(
    preset_session: Session,
) -> None:
    t, other = f.tenant(preset_session), f.tenant(preset_session, "Other")
    owner = f.member(preset_session, t, Role.OWNER, name="A Owner")
    admin = f.member(preset_session, t, Role.ADMIN, name="B Admin")
    f.member(preset_session, t, Role.MANAGER)
    f.member(preset_session, t, Role.ADMIN, active=False)
    muted = f.member(preset_session, t, Role.OWNER)
    f.preference(preset_session, t, muted, NotificationCategory.DOCUMENTS, in_app=True, email=False)
    filings_off = f.member(preset_session, t, Role.ADMIN, name="C Admin")
    f.preference(
        preset_session, t, filings_off, NotificationCategory.FILINGS, in_app=True, email=False
    )
    bounced = f.member(preset_session, t, Role.OWNER)
    f.suppression(preset_session, bounced.email.upper())
    f.member(preset_session, other, Role.OWNER)

    found = reports.report_recipients(preset_session, t.id)
    assert [(r.user_id, r.email) for r in found] == [
        (owner.id, owner.email),
        (admin.id, admin.email),
        (filings_off.id, filings_off.email),
    ]

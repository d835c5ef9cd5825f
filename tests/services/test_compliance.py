"""The compliance refresh: exact rules, one statement per tenant, atomic."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import (
    Client,
    ComplianceLevel,
    ComplianceScore,
    Document,
    DocumentStatus,
    DocumentVersion,
    FilingStatus,
)
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f

TODAY = date(2026, 3, 10)


def test_each_rule_counts_what_domain_md_says(preset_session: Session) -> None:
    # Given one client with one document or filing in each situation
    t = f.tenant(preset_session)
    c = f.client(preset_session, t)
    f.document(preset_session, c, status=DocumentStatus.PENDING_REVIEW)
    f.document(preset_session, c, status=DocumentStatus.REJECTED)
    f.document(preset_session, c, status=None)
    f.document(preset_session, c, expiry=TODAY - timedelta(days=1))
    f.document(preset_session, c, expiry=TODAY)
    f.document(preset_session, c, expiry=TODAY + timedelta(days=30))
    f.document(preset_session, c, expiry=TODAY + timedelta(days=31))
    f.filing(preset_session, c, due=TODAY - timedelta(days=1), status=FilingStatus.PREPARED)
    f.filing(preset_session, c, due=TODAY - timedelta(days=1), status=FilingStatus.SUBMITTED)
    f.filing(preset_session, c, due=TODAY)

    # When the tenant is refreshed
    refresh_tenant(preset_session, t.id, today=TODAY)

    # Then each count and the score follow the rules
    score = preset_session.execute(select(tables_of(preset_session).compliance_scores)).one()
    assert (score.missing_count, score.expired_count, score.expiring_count) == (3, 1, 2)
    assert score.overdue_count == 1
    assert score.score == 100 - 5 * 7
    assert score.level is ComplianceLevel.MEDIUM


def test_statements_do_not_grow_with_clients(preset_session: Session, preset_db: Engine) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    for t, clients in ((small, 10), (large, 300)):
        for _ in range(clients):
            f.document(preset_session, f.client(preset_session, t), expiry=TODAY)
    preset_session.commit()

    event.listen(preset_db, "before_cursor_execute", count)
    try:
        refresh_tenant(preset_session, small.id)
        per_small = len(statements)
        refresh_tenant(preset_session, large.id)
        per_large = len(statements) - per_small
    finally:
        event.remove(preset_db, "before_cursor_execute", count)
    assert per_small == per_large == 3  # timezone, scores, snapshot


# -- Property: every stored score equals a plain-Python computation of DOMAIN.md -------------

ZONES = (
    "UTC",
    "Pacific/Kiritimati",  # UTC+14: already tomorrow for most of the UTC day
    "Pacific/Pago_Pago",  # UTC-11: still yesterday
    "Europe/London",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Sydney",
)
# Offsets in days from the UTC date of `now`: the edges of every rule, and a spread around.
day_offsets = st.one_of(
    st.sampled_from([-32, -31, -30, -2, -1, 0, 1, 2, 29, 30, 31, 32]),
    st.integers(min_value=-400, max_value=400),
)
versions = st.lists(
    st.tuples(st.sampled_from(list(DocumentStatus)), st.none() | day_offsets), max_size=3
)
documents = st.tuples(versions, st.integers(min_value=0, max_value=2))
filings = st.tuples(st.sampled_from(list(FilingStatus)), day_offsets)
clients = st.fixed_dictionaries(
    {
        "active": st.booleans(),
        "previous_score": st.booleans(),
        "documents": st.lists(documents, max_size=6),
        "filings": st.lists(filings, max_size=4),
    }
)
tenants = st.fixed_dictionaries(
    {
        "timezone": st.sampled_from(ZONES),
        "now": st.datetimes(
            min_value=datetime(2020, 1, 1),
            max_value=datetime(2035, 12, 31),
            timezones=st.just(UTC),
        ),
        "clients": st.lists(clients, min_size=1, max_size=6),
    }
)


@dataclass
class Expected:
    missing: int = 0
    expired: int = 0
    expiring: int = 0
    overdue: int = 0

    @property
    def score(self) -> int:
        return max(0, 100 - 5 * (self.missing + self.expired + self.expiring + self.overdue))

    @property
    def level(self) -> str:
        return "low" if self.score >= 80 else "medium" if self.score >= 50 else "high"


def expected_counts(
    today: date,
    latest_versions: list[tuple[DocumentStatus, date | None] | None],
    filing_rows: list[tuple[FilingStatus, date]],
) -> Expected:
    """DOMAIN.md's rules, written out in plain Python (independent of the SQL)."""
    counts = Expected()
    for latest in latest_versions:
        if latest is None:  # a document with no version: nothing valid on file
            counts.missing += 1
            continue
        status, expiry = latest
        if status in (DocumentStatus.PENDING_REVIEW, DocumentStatus.REJECTED):
            counts.missing += 1
        if expiry is not None and expiry < today:
            counts.expired += 1
        if expiry is not None and today <= expiry <= today + timedelta(days=30):
            counts.expiring += 1
    for status, due in filing_rows:
        if status in (FilingStatus.DRAFT, FilingStatus.PREPARED) and due < today:
            counts.overdue += 1
    return counts


STALE = datetime(2000, 1, 1, tzinfo=UTC)


def check_tenant(session: Session, spec: dict[str, Any]) -> None:
    """Store the tenant ``spec`` describes, refresh it, and compare every score."""
    now: datetime = spec["now"]
    base = now.date()  # offsets are relative to the UTC date, so the zone matters
    today = now.astimezone(ZoneInfo(spec["timezone"])).date()
    t = f.tenant(session, timezone=spec["timezone"])
    expected: dict[int, Expected | None] = {}
    for client_spec in spec["clients"]:
        c = f.client(session, t, active=client_spec["active"])
        latest_versions: list[tuple[DocumentStatus, date | None] | None] = []
        for version_specs, latest_index in client_spec["documents"]:
            doc = Document(tenant_id=t.id, client_id=c.id, title="d", document_type="license")
            session.add(doc)
            session.flush()
            rows = [
                DocumentVersion(
                    document_id=doc.id,
                    status=status,
                    expiry_date=None if offset is None else base + timedelta(days=offset),
                )
                for status, offset in version_specs
            ]
            session.add_all(rows)
            session.flush()
            if rows:
                latest = rows[latest_index % len(rows)]
                doc.latest_version_id = latest.id
                latest_versions.append((latest.status, latest.expiry_date))
            else:
                latest_versions.append(None)
        filing_rows = []
        for status, offset in client_spec["filings"]:
            due = base + timedelta(days=offset)
            f.filing(session, c, due=due, status=status)
            filing_rows.append((status, due))
        if client_spec["previous_score"]:
            session.add(
                ComplianceScore(
                    client_id=c.id,
                    tenant_id=t.id,
                    score=42,
                    level=ComplianceLevel.MEDIUM,
                    missing_count=1,
                    expired_count=2,
                    expiring_count=3,
                    overdue_count=4,
                    computed_at=STALE,
                )
            )
        if client_spec["active"]:
            expected[c.id] = expected_counts(today, latest_versions, filing_rows)
        else:  # inactive clients keep their last score (or have none)
            expected[c.id] = None
    session.flush()

    result = refresh_tenant(session, t.id, now=now)

    assert result.today == today
    assert result.clients == sum(1 for e in expected.values() if e is not None)
    stored = {
        row.client_id: row
        for row in session.scalars(select(ComplianceScore).where(ComplianceScore.tenant_id == t.id))
    }
    for client_id, want in expected.items():
        row = stored.get(client_id)
        if want is None:
            assert row is None or (row.score, row.overdue_count) == (42, 4)
            continue
        assert row is not None
        got = (row.missing_count, row.expired_count, row.expiring_count, row.overdue_count)
        assert got == (want.missing, want.expired, want.expiring, want.overdue)
        assert (row.score, row.level.value) == (want.score, want.level)
        assert row.computed_at.replace(tzinfo=row.computed_at.tzinfo or UTC) == now


@given(spec=tenants)
@settings(max_examples=40)
def test_scores_match_the_rules_on_postgresql(gcmc_db: Engine, spec: dict[str, Any]) -> None:
    with Session(gcmc_db) as session:
        try:
            check_tenant(session, spec)
        finally:
            session.rollback()


@given(spec=tenants)
@settings(max_examples=40)
def test_scores_match_the_rules_on_sqlite(gcmc_sqlite_db: Engine, spec: dict[str, Any]) -> None:
    with Session(gcmc_sqlite_db) as session:
        try:
            check_tenant(session, spec)
        finally:
            session.rollback()


# -- Atomicity --------------------------------------------------------------------------------


def test_a_failure_part_way_leaves_the_previous_scores_intact(gcmc_db: Engine) -> None:
    # Given a tenant whose three clients were scored yesterday
    with session_scope(gcmc_db) as session:
        t = f.tenant(session)
        first, doomed, last = (f.client(session, t) for _ in range(3))
        refresh_tenant(session, t.id, today=TODAY)
        ids = (t.id, first.id, doomed.id, last.id)
    tenant_id, first_id, doomed_id, last_id = ids
    before = _scores(gcmc_db, tenant_id)
    assert set(before) == {first_id, doomed_id, last_id}

    # and new problems for every client today, and a database that refuses one client's row
    with session_scope(gcmc_db) as session:
        for client_id in (first_id, doomed_id, last_id):
            c = session.get(Client, client_id)
            assert c is not None
            f.document(session, c, status=DocumentStatus.REJECTED)
    trigger = f"gcmc_test_fail_{uuid.uuid4().hex[:8]}"
    with gcmc_db.begin() as connection:
        connection.execute(
            text(
                f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'injected failure'; END $$"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON compliance_scores "
                f"FOR EACH ROW WHEN (NEW.client_id = {doomed_id}) EXECUTE FUNCTION {trigger}()"
            )
        )
    try:
        # When the refresh fails part-way
        with pytest.raises(DBAPIError, match="injected failure"), session_scope(gcmc_db) as s:
            refresh_tenant(s, tenant_id, today=TODAY + timedelta(days=1))
    finally:
        with gcmc_db.begin() as connection:
            connection.execute(text(f"DROP TRIGGER {trigger} ON compliance_scores"))
            connection.execute(text(f"DROP FUNCTION {trigger}()"))

    # Then no client's score changed, not even those written before the failure
    assert _scores(gcmc_db, tenant_id) == before


def _scores(engine: Engine, tenant_id: int) -> dict[int, tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(ComplianceScore).where(ComplianceScore.tenant_id == tenant_id)
        ).all()
        return {r.client_id: (r.score, r.missing_count, r.computed_at.isoformat()) for r in rows}


def test_computed_at_is_the_instant_whatever_the_database_time_zone(
    preset_session: Session,
) -> None:
    # Given a scored client, refreshed by a database session whose time zone is not UTC
    t = f.tenant(preset_session)
    f.client(preset_session, t)
    preset_session.execute(text("SET LOCAL TimeZone = 'Asia/Kathmandu'"))
    now = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)

    refresh_tenant(preset_session, t.id, today=TODAY, now=now)

    # Then computed_at is that instant: aware on timestamptz, naive UTC on Prisma's columns
    score = preset_session.execute(select(tables_of(preset_session).compliance_scores)).one()
    assert score.computed_at.replace(tzinfo=score.computed_at.tzinfo or UTC) == now
    if "updated_at" in tables_of(preset_session).compliance_scores.c:
        assert score.updated_at == datetime(2026, 3, 10, 8, 0)

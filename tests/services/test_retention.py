"""Retention (issue 15, item 4): each rule deletes what has expired and nothing else, batch
by batch, on both mappings; the daily ``retention`` job records its counts; ``gcmc-jobs
retention run --dry-run`` counts without deleting."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.enums import (
    CampaignRecipientStatus,
    CampaignStatus,
    EmailStatus,
    JobRunStatus,
)
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.services.retention import RULES, RetentionPolicy, apply_retention
from gcmc_jobs.settings import Settings
from tests import factories as f
from tests.support.statements import recorded_statements

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
POLICY = RetentionPolicy()  # the defaults: 90, 365, 400, 400, 30 days
#: Per rule, what the world below holds expired for the first tenant (the second tenant's
#: rows mirror it; the dead letters belong to no tenant).
EXPIRED = {
    "read_notifications": 1,
    "unread_notifications": 1,
    "email_log": 2,
    "job_runs": 1,
    "dead_letters": 1,
    "webhook_events": 1,
    "campaign_recipients": 2,
}


def _world(session: Session, tenant: f.TenantRow, now: datetime = NOW, runs: bool = True) -> None:
    """For ``tenant``: rows on either side of every rule's line at ``now``."""

    def _ago(days: float) -> datetime:
        return now - timedelta(days=days)

    user = f.member(session, tenant, f.Role.OWNER)
    t = tables_of(session)

    def notification(created: datetime, read: datetime | None) -> None:
        f._add(
            session,
            "notifications",
            tenant_id=tenant.id,
            user_id=user.id,
            kind="filing_due_soon",
            subject_type="filing",
            subject_id=tenant.id,
            title="t",
            body="b",
            dedup_key=uuid.uuid4().hex,
            created_at=t.instant(created),
            read_at=None if read is None else t.instant(read),
        )

    notification(_ago(200), _ago(91))  # read 91 days ago: expired
    notification(_ago(200), _ago(89))  # read 89 days ago: kept
    notification(_ago(366), None)  # unread, 366 days old: expired
    notification(_ago(364), None)  # unread, 364 days: kept
    for days in (401, 500, 399):  # two expired, one kept
        session.execute(
            insert(t.email_log).values(
                dedup_key=uuid.uuid4().hex,
                tenant_id=tenant.id,
                to_address="a@example.com",
                kind="welcome",
                subject="s",
                status=EmailStatus.SENT,
                attempts=1,
                created_at=_ago(days),
            )
        )
    for days in (401, 399) if runs else ():
        session.execute(
            insert(t.job_runs).values(
                job="filing_reminders",
                tenant_id=tenant.id,
                local_date=(now - timedelta(days=days)).date(),
                status=JobRunStatus.SUCCEEDED,
                stats={},
            )
        )


def _deliveries(session: Session, tenant: f.TenantRow, now: datetime = NOW) -> None:
    """For ``tenant``: webhook events (one fanned out 91 days ago: expired, with a delivery
    and an attempt; one 89 days; one 91 days old never fanned out) and campaigns (one
    finished 91 days ago with two recipients: expired; one running with one)."""
    t = tables_of(session)

    def _ago(days: float) -> datetime:
        return now - timedelta(days=days)

    for days, fanned in ((91, True), (89, True), (91, False)):
        event = session.execute(
            insert(t.webhook_events)
            .values(
                event_id=uuid.uuid4().hex,
                tenant_id=tenant.id,
                event_type="filing.overdue",
                dedup_key=uuid.uuid4().hex,
                payload={},
                created_at=_ago(days),
                fanned_out_at=_ago(days) if fanned else None,
            )
            .returning(t.webhook_events.c.id)
        ).scalar_one()
        if days == 91 and fanned:
            endpoint = session.execute(
                insert(t.webhook_endpoints)
                .values(
                    tenant_id=tenant.id,
                    url="https://hooks.example.com/x",
                    secret="whsec_x",
                    event_types="*",
                )
                .returning(t.webhook_endpoints.c.id)
            ).scalar_one()
            delivery = session.execute(
                insert(t.webhook_deliveries)
                .values(
                    event_id=event, endpoint_id=endpoint, tenant_id=tenant.id, status="succeeded"
                )
                .returning(t.webhook_deliveries.c.id)
            ).scalar_one()
            session.execute(
                insert(t.webhook_attempts).values(
                    delivery_id=delivery, attempted_at=_ago(days), status_code=200, latency_ms=3.0
                )
            )
    for status, finished, addresses in (
        (CampaignStatus.FINISHED, _ago(91), ("a@example.com", "b@example.com")),
        (CampaignStatus.RUNNING, None, ("c@example.com",)),
    ):
        campaign = session.execute(
            insert(t.campaigns)
            .values(
                tenant_id=tenant.id,
                name="news",
                subject_template="s",
                body_template="b",
                segment="clients",
                status=status,
                rate_per_second=10,
                created_by="test",
                created_at=_ago(120),
                updated_at=_ago(120),
                finished_at=finished,
            )
            .returning(t.campaigns.c.id)
        ).scalar_one()
        for address in addresses:
            session.execute(
                insert(t.campaign_recipients).values(
                    campaign_id=campaign, address=address, status=CampaignRecipientStatus.SENT
                )
            )


def _dead_letters(session: Session) -> None:
    t = tables_of(session)

    def _ago(days: float) -> datetime:
        return NOW - timedelta(days=days)

    for replayed in (_ago(31), _ago(29), None):  # expired, kept, never replayed: kept
        session.execute(
            insert(t.dead_letters).values(
                message_id=uuid.uuid4().hex,
                queue="q",
                actor="a",
                args=[],
                kwargs={},
                options={},
                error_type="E",
                error="e",
                attempts=1,
                failed_at=_ago(400),
                replayed_at=replayed,
            )
        )


def _count(engine: Engine, name: str, **where: Any) -> int:
    table = tables_of(engine).table(name)
    conditions = [table.c[k] == v for k, v in where.items()]
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(table).where(*conditions)
        ).scalar_one()


@pytest.fixture
def two_tenants(preset_session: Session) -> tuple[Id, Id]:
    first, second = f.tenant(preset_session, "First"), f.tenant(preset_session, "Second")
    _world(preset_session, first)
    _world(preset_session, second)
    _deliveries(preset_session, first)
    _deliveries(preset_session, second)
    _dead_letters(preset_session)
    preset_session.commit()
    return first.id, second.id


def test_each_rule_deletes_what_expired_and_nothing_else(
    preset_db: Engine, two_tenants: tuple[Id, Id]
) -> None:
    tables = tables_of(preset_db)
    logs = ("notifications", "email_log", "job_runs", "webhook_events", "campaign_recipients")
    before = {name: _count(preset_db, name) for name in logs}

    # A dry run counts, for both tenants, and deletes nothing
    counted = apply_retention(preset_db, tables, POLICY, now=NOW, dry_run=True)
    tenant_rules = {k: v for k, v in EXPIRED.items() if k != "dead_letters"}
    assert counted == {**{k: 2 * v for k, v in tenant_rules.items()}, "dead_letters": 1}
    assert {n: _count(preset_db, n) for n in before} == before

    # The run deletes exactly those, two rows a batch
    assert apply_retention(preset_db, tables, POLICY, now=NOW, batch_size=2) == counted
    assert _count(preset_db, "notifications") == before["notifications"] - 4
    assert _count(preset_db, "email_log") == before["email_log"] - 4
    assert _count(preset_db, "job_runs") == before["job_runs"] - 2
    assert _count(preset_db, "dead_letters") == 2
    assert _count(preset_db, "webhook_events") == before["webhook_events"] - 2
    assert _count(preset_db, "webhook_deliveries") == 0  # with their event
    assert _count(preset_db, "webhook_attempts") == 0
    assert _count(preset_db, "campaign_recipients") == before["campaign_recipients"] - 4
    # and what is left is what the rules keep
    assert apply_retention(preset_db, tables, POLICY, now=NOW, dry_run=True) == dict.fromkeys(
        RULES, 0
    )


def test_one_tenants_run_leaves_the_other_tenants_rows(
    preset_db: Engine, two_tenants: tuple[Id, Id]
) -> None:
    first, second = two_tenants
    counts = apply_retention(preset_db, tables_of(preset_db), POLICY, now=NOW, tenant_id=first)
    assert counts == EXPIRED
    assert _count(preset_db, "email_log", tenant_id=second) == 3
    assert _count(preset_db, "email_log", tenant_id=first) == 1
    assert _count(preset_db, "webhook_events", tenant_id=second) == 3
    assert _count(preset_db, "campaign_recipients") == 4  # the first's 2 expired of 6


def test_batches_are_separate_statements_bounded_by_the_batch_size(
    gcmc_db: Engine, gcmc_session: Session
) -> None:
    tenant = f.tenant(gcmc_session)
    for _ in range(5):
        _world(gcmc_session, tenant, runs=False)  # 10 expired email_log rows
    gcmc_session.commit()
    with recorded_statements(gcmc_db) as seen:
        counts = apply_retention(
            gcmc_db, tables_of(gcmc_db), POLICY, now=NOW, batch_size=4, only=("email_log",)
        )
    assert counts == {"email_log": 10}
    deletes = [s for s in seen if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3  # 4 + 4 + 2
    assert all("LIMIT" in s.upper() and "SKIP LOCKED" in s.upper() for s in deletes)


def test_the_daily_retention_job_records_its_counts_in_the_ledger(
    gcmc_db: Engine, gcmc_session: Session, gcmc_settings: Settings
) -> None:
    tenant = f.tenant(gcmc_session)
    _world(gcmc_session, tenant)
    gcmc_session.commit()
    result = run_for_tenant(
        gcmc_db, "retention", tenant.id, local_date=date(2026, 6, 10), now=NOW,
        settings=gcmc_settings,
    )  # fmt: skip
    assert result.ran
    with Session(gcmc_db) as session:
        t = tables_of(session)
        stats = session.execute(
            select(t.job_runs.c.stats).where(t.job_runs.c.job == "retention")
        ).scalar_one()
    none = ("dead_letters", "webhook_events", "campaign_recipients")  # none in this world
    assert {k: v for k, v in stats.items() if k.startswith("deleted_")} == {
        f"deleted_{name}": 0 if name in none else count for name, count in EXPIRED.items()
    }


def test_the_command_counts_with_dry_run_then_deletes(
    gcmc_db: Engine, gcmc_session: Session, gcmc_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = f.tenant(gcmc_session)
    _world(gcmc_session, tenant, now=datetime.now(UTC))  # the command's clock
    gcmc_session.commit()
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_RETENTION_EMAIL_LOG_DAYS", "450")  # one of the two expired
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "run", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"]["email_log"] == 1
    assert _count(gcmc_db, "email_log") == 3
    run = runner.invoke(app, ["retention", "run", "--only", "email_log"])
    assert run.exit_code == 0, run.output
    assert "deleted 1 row(s)" in run.stdout
    assert _count(gcmc_db, "email_log") == 2
    bad = runner.invoke(app, ["retention", "run", "--only", "emails"])
    assert bad.exit_code == 2
    assert "unknown rule(s) emails" in bad.output

"""The campaign service's SQL on each mapping: the segment expands in one statement whatever
the tenant's size, the dispatcher and the progress take a constant number, and the
dispatcher paces and finishes a campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import CampaignRecipientStatus, CampaignStatus, Role
from gcmc_jobs.services import campaigns as service
from tests import factories as f
from tests.support.statements import recorded_statements

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _tenant_with(engine: Engine, clients: int, staff: int) -> f.TenantRow:
    with Session(engine) as session:
        tenant = f.tenant(session, f"Firm of {clients}")
        for _ in range(clients):
            f.client(session, tenant)
        for _ in range(staff):
            f.member(session, tenant, Role.STAFF)
        session.commit()
    return tenant


def _campaign(engine: Engine, tenant: f.TenantRow, segment: str, rate: float = 50.0) -> int:
    with engine.begin() as connection:
        return service.create(
            connection,
            tenant_id=tenant.id,
            name="News",
            subject_template="News",
            body_template="Hello",
            segment=service.parse_segment(segment),
            created_by="test",
            rate_per_second=rate,
            now=NOW,
        )


def test_expansion_dispatch_and_progress_take_constant_statements(preset_db: Engine) -> None:
    counts: dict[str, set[int]] = {"start": set(), "next_batch": set(), "progress": set()}
    for clients in (3, 120):
        tenant = _tenant_with(preset_db, clients, staff=clients // 3)
        for segment in ("clients", "staff"):
            campaign = _campaign(preset_db, tenant, segment)
            with recorded_statements(preset_db) as seen, preset_db.begin() as connection:
                inserted = service.start(connection, campaign, dispatcher="d1", now=NOW)
            assert inserted == (clients if segment == "clients" else clients // 3)
            counts["start"].add(len(seen))
            with recorded_statements(preset_db) as seen, preset_db.begin() as connection:
                batch = service.next_batch(
                    connection, campaign, dispatcher="d1", limit=200, now=NOW
                )
            assert batch.state == "dispatch"
            assert len(batch.recipients) == min(50, inserted)
            counts["next_batch"].add(len(seen))
            with recorded_statements(preset_db) as seen, preset_db.connect() as connection:
                info = service.get(connection, campaign)
            assert info.progress.queued == inserted
            counts["progress"].add(len(seen))
    # One UPDATE and one INSERT … SELECT, whatever the size; the dispatcher and the progress
    # the same few statements for 3 recipients and for 120
    assert counts == {"start": {2}, "next_batch": {3}, "progress": {3}}


def test_the_dispatcher_paces_by_rate_waits_for_in_flight_and_finishes(
    preset_db: Engine,
) -> None:
    tenant = _tenant_with(preset_db, 7, staff=0)
    campaign = _campaign(preset_db, tenant, "clients", rate=2.0)
    with preset_db.begin() as connection:
        service.start(connection, campaign, dispatcher="d1", now=NOW)

    def batch(dispatcher: str = "d1", now: datetime = NOW) -> service.Batch:
        with preset_db.begin() as connection:
            return service.next_batch(
                connection, campaign, dispatcher=dispatcher, limit=100, now=now
            )

    # Two per second at 2/s, back in one second; two batches in flight at most
    first, second, third = batch(), batch(), batch()
    assert (len(first.recipients), first.period_ms) == (2, 1_000)
    assert len(second.recipients) == 2
    assert third.recipients == []
    # Another dispatcher chain (an older one, after a resume) does nothing
    assert batch(dispatcher="old").state == "stop"
    # Sent ones make room; when every row is done the campaign finishes
    with preset_db.begin() as connection:
        for rid, _address, _n in first.recipients + second.recipients:
            service.mark_recipient(connection, rid, CampaignRecipientStatus.SENT, now=NOW)
    rest = []
    while (step := batch()).state == "dispatch":
        assert step.recipients, "a dispatch step with nothing in flight hands out recipients"
        rest += step.recipients
        with preset_db.begin() as connection:
            for rid, _address, _n in step.recipients:
                service.mark_recipient(connection, rid, CampaignRecipientStatus.SENT, now=NOW)
    assert len(rest) == 3
    assert step.state == "finished"
    with preset_db.connect() as connection:
        info = service.get(connection, campaign)
    assert info.status is CampaignStatus.FINISHED
    assert (info.progress.sent, info.progress.queued) == (7, 0)


@pytest.mark.parametrize("preset_db", ["gcmc"], indirect=True)
def test_a_recipient_whose_message_was_lost_is_handed_out_again(preset_db: Engine) -> None:
    tenant = _tenant_with(preset_db, 1, staff=0)
    campaign = _campaign(preset_db, tenant, "clients")
    with preset_db.begin() as connection:
        service.start(connection, campaign, dispatcher="d1", now=NOW)
        [(rid, _, n)] = service.next_batch(
            connection, campaign, dispatcher="d1", limit=10, now=NOW
        ).recipients
        assert (
            service.next_batch(connection, campaign, dispatcher="d1", limit=10, now=NOW).recipients
            == []
        )
        later = NOW + service.REDISPATCH_AFTER + timedelta(seconds=1)
        again = service.next_batch(connection, campaign, dispatcher="d1", limit=10, now=later)
    # A new dispatch number: a new dedup claim; email_log still keeps it to one email
    assert [(r[0], r[2]) for r in again.recipients] == [(rid, n + 1)]

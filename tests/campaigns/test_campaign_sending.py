"""Campaigns end to end on each mapping: a segment expanded, each address mailed once through a
real SMTP server with the RFC 8058 one-click headers, progress counted, pause/resume and
cancel midway."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from gcmc_jobs.db.enums import CampaignStatus, Role, SuppressionReason
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.email.unsubscribe import verify_token
from gcmc_jobs.errors import CampaignStateError, InvalidPayload, UnknownTenant
from gcmc_jobs.ops import campaigns as ops
from gcmc_jobs.services import campaigns as service
from gcmc_jobs.services import email_log
from gcmc_jobs.testing import wait_until
from tests import factories as f
from tests.campaigns.conftest import SECRET, UNSUBSCRIBE_URL, CampaignWorld

BODY = "Dear {{ recipient_name }},\n\nOur office moves on Monday.\n\n{{ tenant_name }}"


def _create(world: CampaignWorld, *, segment: str = "clients", start: bool = True, **kw: object):
    options: dict[str, object] = {
        "tenant_id": world.tenant.id,
        "name": "Office move",
        "subject": "{{ tenant_name }} moves, {{ recipient_name }}",
        "body": BODY,
        "segment": segment,
        "created_by": "ops@acme.example",
        "start": start,
    }
    options.update(kw)
    return ops.create_campaign(world.runtime, **options)  # type: ignore[arg-type]


def _unsubscribe_url(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    first = header.split(",")[0].strip()
    assert first.startswith("<")
    assert first.endswith(">")
    return first[1:-1]


def test_each_client_gets_one_email_with_one_click_unsubscribe_headers(
    world: CampaignWorld,
) -> None:
    # Given three active clients (one twice, in another case), an inactive one, and staff
    def fill(session, tenant):
        f.client(session, tenant, email="ann@example.com", name="Ann")
        f.client(session, tenant, email="bob@example.com", name="Bob")
        f.client(session, tenant, email="Ann@Example.com", name="Ann again")
        f.client(session, tenant, email="gone@example.com", active=False)
        f.member(session, tenant, Role.OWNER, email="owner@example.com")

    world.build(fill)

    # When a campaign to every active client runs
    campaign = _create(world)
    world.join()

    # Then each active client's address got exactly one email, and nobody else any
    assert world.sink.per_recipient() == {"ann@example.com": 1, "bob@example.com": 1}
    info = ops.get_campaign(world.runtime, campaign.id)
    assert info.status is CampaignStatus.FINISHED
    assert info.progress.as_dict() | {"opt_outs": 0} == {
        "total": 2,
        "queued": 0,
        "sent": 2,
        "failed": 0,
        "suppressed": 0,
        "unsubscribed": 0,
        "opt_outs": 0,
    }
    # And each carries RFC 8058's headers, with a token signed for its own address
    for message in world.sink.messages:
        address = str(message["To"]).lower()
        url = _unsubscribe_url(message)
        assert url.startswith(UNSUBSCRIBE_URL + "/")
        token = verify_token(SECRET, url.rsplit("/", 1)[1])
        assert (token.tenant_id, token.campaign_id, token.address) == (
            str(world.tenant.id),
            campaign.id,
            address,
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["X-GCMC-Kind"] == "campaign"
        assert message["Subject"].startswith("Acme CPA moves, ")
        text = message.get_body(("plain",))
        assert text is not None
        assert url in text.get_content()
    # And the delivery record has one sent row per address, keyed by campaign and address
    with world.engine.connect() as connection:
        row = email_log.get(connection, f"campaign:{campaign.id}:ann@example.com")
    assert row is not None
    assert row.status.value == "sent"
    assert row.kind == "campaign"


def test_a_staff_segment_by_role_reaches_only_those_roles(world: CampaignWorld) -> None:
    def fill(session, tenant):
        f.member(session, tenant, Role.OWNER, email="owner@example.com")
        f.member(session, tenant, Role.ADMIN, email="admin@example.com")
        f.member(session, tenant, Role.STAFF, email="staff@example.com")
        f.member(session, tenant, Role.ADMIN, email="inactive@example.com", active=False)
        other = f.tenant(session, "Other firm")
        f.member(session, other, Role.OWNER, email="elsewhere@example.com")
        f.client(session, tenant, email="client@example.com")

    world.build(fill)

    _create(world, segment="staff:owner,admin")
    world.join()

    assert world.sink.per_recipient() == {"owner@example.com": 1, "admin@example.com": 1}


def test_progress_counts_suppressed_unsubscribed_and_refused_addresses(
    world: CampaignWorld,
) -> None:
    # Given clients of whom one is suppressed (any case), one opted out of the tenant's
    # campaigns, one whose mailbox does not exist, and one the platform stored unusable
    def fill(session, tenant):
        for name in ("ok1", "ok2", "bounced", "optout", "nobody"):
            f.client(session, tenant, email=f"{name}@example.com")
        f.client(session, tenant, email='"x"@[127.0.0.1]')
        f.suppression(session, "Bounced@Example.com", SuppressionReason.HARD_BOUNCE)

    world.build(fill)
    with world.engine.begin() as connection:
        service.record_unsubscribe(
            connection,
            tenant_id=world.tenant.id,
            address="optout@example.com",
            campaign_id=None,
            now=_now(),
        )
    world.sink.reject("nobody@example.com")

    # When the campaign runs
    campaign = _create(world)
    world.join()

    # Then only the two good addresses were mailed, and the progress says what happened
    assert world.sink.per_recipient() == {"ok1@example.com": 1, "ok2@example.com": 1}
    progress = ops.get_campaign(world.runtime, campaign.id).progress
    assert (progress.sent, progress.failed, progress.suppressed, progress.unsubscribed) == (
        2,
        2,
        1,
        1,
    )
    assert progress.queued == 0
    assert progress.total == 6
    assert ops.get_campaign(world.runtime, campaign.id).status is CampaignStatus.FINISHED


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _clients(world: CampaignWorld, n: int) -> list[str]:
    addresses = [f"c{i:03}@example.com" for i in range(n)]

    def fill(session, tenant):
        for address in addresses:
            f.client(session, tenant, email=address)

    world.build(fill)
    return addresses


@pytest.fixture
def campaign_overrides() -> dict[str, object]:
    # Small batches: the dispatcher queues 3 at a time, so a pause finds most still queued.
    return {"campaign_batch_size": 3}


# The status logic is the same on every mapping (the sending path runs on both in the tests
# above): on the gcmc preset only, to keep the suite short.
@pytest.mark.parametrize("world", ["gcmc"], indirect=True)
def test_pause_midway_holds_the_rest_and_resume_sends_each_exactly_once(
    world: CampaignWorld,
) -> None:
    # Given a running campaign to 12 clients whose first emails the server holds
    addresses = _clients(world, 12)
    world.sink.hold()
    campaign = _create(world)
    wait_until(world.sink.holding.is_set, what="the first campaign email at the server")

    # When it is paused while those emails are in flight, and the server then answers
    paused = ops.pause_campaign(world.runtime, campaign.id)
    world.sink.release()
    world.join()

    # Then what was in flight was sent, the rest waits, queued, and nothing more goes out
    assert paused.status is CampaignStatus.PAUSED
    midway = ops.get_campaign(world.runtime, campaign.id)
    sent = world.sink.count()
    assert 1 <= sent < 12
    assert (midway.progress.sent, midway.progress.queued) == (sent, 12 - sent)
    assert midway.status is CampaignStatus.PAUSED

    # When it is resumed
    ops.resume_campaign(world.runtime, campaign.id)
    world.join()

    # Then it continues where it stopped: every address mailed exactly once
    assert world.sink.per_recipient() == dict.fromkeys(addresses, 1)
    done = ops.get_campaign(world.runtime, campaign.id)
    assert done.status is CampaignStatus.FINISHED
    assert (done.progress.sent, done.progress.queued) == (12, 0)


# Mapping-independent (the status logic): on the gcmc preset only, to keep the suite short.
@pytest.mark.parametrize("world", ["gcmc"], indirect=True)
def test_cancel_midway_stops_for_good(world: CampaignWorld) -> None:
    _clients(world, 12)
    world.sink.hold()
    campaign = _create(world)
    wait_until(world.sink.holding.is_set, what="the first campaign email at the server")

    cancelled = ops.cancel_campaign(world.runtime, campaign.id)
    world.sink.release()
    world.join()

    assert cancelled.status is CampaignStatus.CANCELLED
    sent = world.sink.count()
    info = ops.get_campaign(world.runtime, campaign.id)
    assert 1 <= sent < 12
    assert (info.progress.sent, info.progress.queued) == (sent, 12 - sent)
    with pytest.raises(CampaignStateError, match="cancelled"):
        ops.resume_campaign(world.runtime, campaign.id)
    world.join()
    assert world.sink.count() == sent


# Mapping-independent (the status logic): on the gcmc preset only, to keep the suite short.
@pytest.mark.parametrize("world", ["gcmc"], indirect=True)
def test_bad_input_is_refused_in_the_caller_and_nothing_is_stored(world: CampaignWorld) -> None:
    with pytest.raises(InvalidPayload, match="unknown field"):
        _create(world, body="Hello {{ password }}")
    with pytest.raises(InvalidPayload, match="line 1"):
        _create(world, subject="{% if %}")
    with pytest.raises(InvalidPayload, match="segment"):
        _create(world, segment="everyone")
    with pytest.raises(InvalidPayload, match="segment"):
        _create(world, segment="staff:boss")
    unknown = "999999" if world.preset == "gcmc" else "cknotatenant"
    with pytest.raises(UnknownTenant):
        _create(world, tenant_id=int(unknown) if world.preset == "gcmc" else unknown)
    with world.engine.connect() as connection:
        campaigns = tables_of(connection).campaigns
        assert connection.execute(select(campaigns.c.id)).all() == []

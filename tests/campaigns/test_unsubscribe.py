"""One-click unsubscribe through the admin app's public endpoint, on each mapping: GET only
confirms, POST records (idempotent), a forged or altered token changes nothing, and the
opt-out is honoured by the tenant's later campaigns but not by transactional mail."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.email.unsubscribe import make_token, verify_token
from gcmc_jobs.errors import InvalidUnsubscribeToken
from gcmc_jobs.http import create_app
from gcmc_jobs.ops import campaigns as ops
from gcmc_jobs.sending import queue_custom_email
from tests import factories as f
from tests.campaigns.conftest import SECRET, CampaignWorld


@pytest.fixture
def app(world: CampaignWorld) -> Iterator[TestClient]:
    """The admin app on the world's runtime, with no admin token sent."""
    with TestClient(create_app(world.runtime.settings)) as client:
        yield client


def _run(world: CampaignWorld, name: str) -> int:
    info = ops.create_campaign(
        world.runtime,
        tenant_id=world.tenant.id,
        name=name,
        subject="News from {{ tenant_name }}",
        body="Hello {{ recipient_name }}",
        segment="clients",
        created_by="test",
        start=True,
    )
    world.join()
    return info.id


def _link(world: CampaignWorld, address: str) -> str:
    [message] = [m for m in world.sink.messages if str(m["To"]).lower() == address]
    url = str(message["List-Unsubscribe"]).split(",")[0].strip()[1:-1]
    return urlsplit(url).path


def _opt_outs(world: CampaignWorld) -> list[tuple[str, int | None]]:
    with world.engine.connect() as connection:
        u = tables_of(connection).email_unsubscribes
        return [tuple(row) for row in connection.execute(select(u.c.address, u.c.campaign_id))]


def test_one_click_post_records_the_opt_out_once_and_later_campaigns_skip_it(
    world: CampaignWorld, app: TestClient
) -> None:
    # Given a campaign mailed to two clients
    world.build(
        lambda s, t: (
            f.client(s, t, email="ann@example.com"),
            f.client(s, t, email="bob@example.com"),
        )
    )
    first = _run(world, "First")
    path = _link(world, "ann@example.com")

    # When Ann's link is fetched (a scanner, or Ann reading the page): nothing changes
    page = app.get(path)
    assert page.status_code == 200
    assert "ann@example.com" in page.text
    assert 'method="post"' in page.text
    assert _opt_outs(world) == []

    # When her mail client POSTs the one-click request, twice
    answers = [
        app.post(path, data={"List-Unsubscribe": "One-Click"}),
        app.post(path, data={"List-Unsubscribe": "One-Click"}),
    ]

    # Then it is recorded once, for this campaign, and both answers say so
    assert [a.status_code for a in answers] == [200, 200]
    assert all("unsubscribed" in a.text for a in answers)
    assert _opt_outs(world) == [("ann@example.com", first)]
    assert ops.get_campaign(world.runtime, first).progress.opt_outs == 1

    # And the tenant's next campaign skips her, counted as unsubscribed
    mailed_before = world.sink.count()
    second = _run(world, "Second")
    new = [str(m["To"]).lower() for m in world.sink.messages[mailed_before:]]
    assert new == ["bob@example.com"]
    progress = ops.get_campaign(world.runtime, second).progress
    assert (progress.sent, progress.unsubscribed) == (1, 1)

    # But transactional mail still reaches her
    queue_custom_email(
        "ann@example.com",
        {"tenant_name": "Acme CPA", "subject": "Your invoice", "body": "Attached."},
        tenant_id=world.tenant.id,
    )
    world.join()
    assert str(world.sink.messages[-1]["To"]).lower() == "ann@example.com"
    assert world.sink.messages[-1]["Subject"] == "Your invoice"


# The token check runs before any SQL: on the gcmc preset only, to keep the suite short.
@pytest.mark.parametrize("world", ["gcmc"], indirect=True)
def test_forged_or_altered_tokens_are_refused_and_change_nothing(
    world: CampaignWorld, app: TestClient
) -> None:
    world.build(lambda s, t: f.client(s, t, email="ann@example.com"))
    campaign = _run(world, "First")
    path = _link(world, "ann@example.com")
    token = path.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    # Ann's signature on Mallory's address: the token names the address it was signed for
    other = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b"ann@", b"mal@")
    ).rstrip(b"=")
    forged = {
        "another address, same signature": f"{other.decode()}.{mac}",
        "another secret": make_token(
            "not-the-secret-0123456789",
            tenant_id=world.tenant.id,
            campaign_id=campaign,
            address="mal@example.com",
        ),
        "garbage": "not-a-token",
        "truncated signature": token[:-3],
    }
    for what, bad in forged.items():
        for answer in (app.get(f"/unsubscribe/{bad}"), app.post(f"/unsubscribe/{bad}")):
            assert answer.status_code == 400, what
            assert "not valid" in answer.text
        with pytest.raises(InvalidUnsubscribeToken):
            verify_token(SECRET, bad)
    assert _opt_outs(world) == []

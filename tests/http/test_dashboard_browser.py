"""The dashboard in a real headless Chromium: sign in, see a dead letter, replay it, and see
the message requeued and processed by a worker thread on the same broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dramatiq
import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import DeadLetter
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.http import create_app
from gcmc_jobs.middleware.stores.mail_circuit import RedisCircuitStore
from gcmc_jobs.scheduling.jobs import schedule_spread
from gcmc_jobs.scheduling.ledger_view import next_runs
from gcmc_jobs.services import suppressions
from gcmc_jobs.settings import Settings
from tests import factories
from tests.http.browser import chromium, fresh_page, serving, sign_in
from tests.support import wait_until


@pytest.fixture
def server_url(gcmc_settings: Settings, gcmc_broker: dramatiq.Broker) -> Iterator[str]:
    """The admin app served by uvicorn on a free loopback port, in a thread."""
    with serving(create_app(gcmc_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module's tests (each gets a context of its own)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with fresh_page(browser) as page:
        yield page


def test_replaying_a_dead_letter_from_the_dashboard_runs_it(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    server_url: str,
    page: Page,
) -> None:
    # Given a message that failed for good (a permanent error on its first run) ...
    runs: list[str] = []

    @dramatiq.actor(
        broker=gcmc_broker, queue_name="gcmc_email", max_retries=0, throws=(PermanentError,)
    )
    def greet(name: str) -> None:
        if not runs:
            runs.append("failed")
            raise PermanentError("the mail server said no")
        runs.append(name)

    greet.send("Ada")

    def dead_letters() -> int:
        with gcmc_db.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
            )

    wait_until(
        lambda: dead_letters() == 1,
        timeout_s=30,
        what="the failed message in dead_letters",
        diagnose=lambda: f"runs: {runs}, dead letters: {dead_letters()}",
    )

    # ... when an operator signs in to the dashboard
    sign_in(page, server_url)

    # Then the queues and the dead letter are shown
    expect(page.locator('#queues tr[data-queue="gcmc_email"]')).to_be_visible()
    row = page.locator("#dead-letters tbody tr").first
    expect(row).to_contain_text("greet")
    expect(row).to_contain_text("the mail server said no")

    # When they replay it
    row.get_by_role("button", name="replay").click()

    # Then the row shows the new message's id, and the worker has run the call
    expect(row.locator(".replayed-as")).not_to_have_text("-")
    gcmc_broker.join("gcmc_email", fail_fast=False)  # the first, failed run is expected
    assert runs == ["failed", "Ada"]
    replayed_as = row.locator(".replayed-as").inner_text()
    with gcmc_db.connect() as connection:
        stored = connection.execute(select(DeadLetter.replayed_as)).scalar_one()
    assert stored == replayed_as


def test_the_dashboard_refuses_a_wrong_token(server_url: str, page: Page) -> None:
    sign_in(page, server_url, token="not-the-token")
    expect(page.locator("#login-error")).to_have_text("wrong bearer token")
    expect(page.locator("#main")).to_be_hidden()


def test_the_dashboard_shows_each_jobs_next_run_as_the_scheduler_computes_it(
    gcmc_session: Session, gcmc_settings: Settings, server_url: str, page: Page
) -> None:
    # Given a tenant in Paris
    tenant = factories.tenant(gcmc_session, "Paris", timezone="Europe/Paris")
    gcmc_session.commit()

    # When an operator signs in
    sign_in(page, server_url)

    # Then every job's row shows the next run the ledger read model computes (stable while
    # the page loads: a run stays "next" until the ledger has its row)
    expected = next_runs(
        gcmc_session,
        gcmc_settings.job_times,
        now=datetime.now(UTC),
        spread=schedule_spread(gcmc_settings),
    )
    for run in expected:
        assert run.due_at is not None
        row = page.locator(f'#schedules tr[data-tenant="{tenant.id}"][data-job="{run.job}"]')
        expect(row.locator(".next-utc")).to_have_text(run.due_at.strftime("%Y-%m-%d %H:%M:%SZ"))
        local = run.due_at.astimezone(ZoneInfo("Europe/Paris")).isoformat(sep=" ")
        expect(row.locator(".next-local")).to_have_text(local)


def test_the_dashboard_marks_a_run_due_but_not_run_yet(
    gcmc_session: Session, server_url: str, page: Page
) -> None:
    # Given a tenant in a zone where it is now between 03:00 and 22:59, so its 02:00
    # compliance refresh (the default time) is due and, with an empty ledger, has not run
    now = datetime.now(UTC)
    zone = next(
        name
        for name in ("UTC", "Etc/GMT-12", "Etc/GMT+12")
        if 3 <= now.astimezone(ZoneInfo(name)).hour <= 22
    )
    tenant = factories.tenant(gcmc_session, "Waiting", timezone=zone)
    gcmc_session.commit()

    sign_in(page, server_url)

    # Then its row says the run is due and not run yet
    row = page.locator(f'#schedules tr[data-tenant="{tenant.id}"][data-job="compliance_refresh"]')
    expect(row.locator("td.waiting")).to_have_text("due, not run yet")


def test_the_dashboard_adds_searches_and_removes_a_suppression(
    gcmc_db: Engine, server_url: str, page: Page
) -> None:
    sign_in(page, server_url)

    # When an operator suppresses an address as a complaint
    page.fill("#suppress-address", "Blocked@Example.com")
    page.select_option("#suppress-reason", "complaint")
    page.click("#suppress button[type=submit]")

    # Then it is listed, and the change is recorded as made through the API
    row = page.locator('#suppressions tr[data-address="blocked@example.com"]')
    expect(row).to_contain_text("complaint")
    expect(page.locator("#suppression-changes tbody tr").first).to_contain_text("api")
    page.fill("#suppression-search", "nobody-matches")
    expect(page.locator("#suppressions tbody tr")).to_have_count(0)
    page.fill("#suppression-search", "blocked")
    expect(row).to_be_visible()

    # When they remove it: gone from the list and from the database
    row.get_by_role("button", name="remove").click()
    expect(page.locator("#suppressions tbody tr")).to_have_count(0)
    with gcmc_db.connect() as connection:
        assert suppressions.list_suppressions(connection) == []
        assert [c.action for c in suppressions.changes(connection)] == ["removed", "added"]


def test_the_dashboard_shows_an_open_mail_circuit_breaker_and_closes_it(
    gcmc_settings: Settings, server_url: str, page: Page
) -> None:
    # Given the mail server failed deliveries until the workers' breaker opened
    client = redis.Redis.from_url(gcmc_settings.store_redis_url or "")
    store = RedisCircuitStore(client, namespace=gcmc_settings.namespace)
    for _ in range(gcmc_settings.mail_breaker_failures):
        store.record_failure(
            now_ms=int(datetime.now(UTC).timestamp() * 1000),
            threshold=gcmc_settings.mail_breaker_failures,
            min_backoff_ms=5_000,
            max_backoff_ms=60_000,
            error="TransientDeliveryError: 421 try later",
        )

    # When an operator signs in, the badge says email is held, and why
    sign_in(page, server_url)
    badge = page.locator("#mail-circuit-state")
    expect(badge).to_have_text("open: email held")
    expect(page.locator("#mail-circuit-detail")).to_contain_text("421 try later")

    # When they close it by hand, it shows closed, and so does the shared state
    page.locator("#mail-circuit-reset").click()
    expect(badge).to_have_text("closed")
    expect(page.locator("#mail-circuit-reset")).to_be_hidden()
    assert store.state().state == "closed"
    client.close()


def test_the_dashboard_shows_a_campaigns_progress_and_pauses_it(
    gcmc_db: Engine, server_url: str, page: Page
) -> None:
    # Given a running campaign to two clients, one already mailed
    from gcmc_jobs.db.enums import CampaignRecipientStatus
    from gcmc_jobs.services import campaigns

    with Session(gcmc_db) as session:
        tenant = factories.tenant(session, "Acme CPA")
        factories.client(session, tenant, email="ann@example.com")
        factories.client(session, tenant, email="bob@example.com")
        session.commit()
    now = datetime.now(UTC)
    with gcmc_db.begin() as connection:
        campaign = campaigns.create(
            connection,
            tenant_id=tenant.id,
            name="Spring news",
            subject_template="News",
            body_template="Hello",
            segment=campaigns.parse_segment("clients"),
            created_by="test",
            rate_per_second=1,
            now=now,
        )
        campaigns.start(connection, campaign, dispatcher="d", now=now)
        [(first, _, _)] = campaigns.next_batch(
            connection, campaign, dispatcher="d", limit=1, now=now
        ).recipients
        campaigns.mark_recipient(connection, first, CampaignRecipientStatus.SENT, now=now)

    # When an operator signs in and pauses it
    sign_in(page, server_url)
    row = page.locator(f'#campaigns tr[data-campaign="{campaign}"]')
    expect(row.locator(".sent")).to_have_text("1 / 2")
    expect(row.locator(".queued")).to_have_text("1")
    expect(row.locator(".campaign-status")).to_have_text("running")
    row.get_by_role("button", name="pause").click()

    # Then the page and the database say paused
    expect(row.locator(".campaign-status")).to_have_text("paused")
    page.goto("about:blank")  # stop the page's refreshes before the server shuts down
    with gcmc_db.connect() as connection:
        assert campaigns.get(connection, campaign).status.value == "paused"

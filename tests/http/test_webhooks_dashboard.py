"""The dashboard's webhooks section in a real headless Chromium: add an endpoint (its secret
shown once), test it through a worker to a real receiver, see the delivery succeed."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook

from gcmc_jobs.db.models import Tenant
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.webhooks import WebhookReceiver
from tests.http.conftest import TOKEN
from tests.http.test_dashboard_browser import browser, page, server_url  # noqa: F401  (fixtures)
from tests.support import wait_until


@pytest.fixture
def gcmc_settings(gcmc_settings: Settings) -> Settings:
    return gcmc_settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def test_add_and_test_an_endpoint_from_the_dashboard(
    gcmc_tenant: Tenant,
    gcmc_worker: dramatiq.Worker,
    server_url: str,  # noqa: F811
    page: Page,  # noqa: F811
    receiver: WebhookReceiver,
) -> None:
    page.goto(f"{server_url}/dashboard")
    page.fill("#token", TOKEN)
    page.click("#login button[type=submit]")

    # When an operator adds an endpoint for the tenant
    page.fill("#webhook-tenant", str(gcmc_tenant.id))
    page.fill("#webhook-url", receiver.url())
    page.click("#webhook-add button[type=submit]")

    # Then its secret is shown once, and the endpoint listed
    expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
    secret = page.locator("#webhook-secret").inner_text().rsplit(" ", 1)[1]
    row = page.locator("#webhook-endpoints tbody tr").first
    expect(row).to_contain_text(receiver.url())

    # When they test it, the worker delivers a signed event and the delivery shows it
    row.get_by_role("button", name="test").click()
    wait_until(lambda: len(receiver.requests) == 1, timeout_s=30, what="the test delivery")
    request = receiver.requests[0]
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"
    expect(page.locator("#webhook-deliveries tbody tr").first.locator(".status")).to_have_text(
        "succeeded"
    )

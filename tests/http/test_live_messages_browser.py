"""The dashboard's live-messages and workers sections in a real headless Chromium, on the real
Redis broker with a worker running in this process: see the waiting messages, cancel one,
run a delayed one now, see the worker's figures. Saves a screenshot (``dashboard-live.png``
in the test's directory) for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from playwright.sync_api import Page, expect

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.http import create_app
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from tests.http.browser import chromium_page, serving, sign_in


@pytest.fixture
def redis_runtime(gcmc_settings: Settings, gcmc_redis_url: str) -> Iterator[Runtime]:
    settings = gcmc_settings.model_copy(
        update={
            "broker_url": gcmc_redis_url,
            "outbox_relay": False,
            "worker_stats_interval_ms": 200,
        }
    )
    with configured(settings) as runtime:
        yield runtime


@pytest.fixture
def served(redis_runtime: Runtime) -> Iterator[str]:
    with serving(create_app(redis_runtime.settings)) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(viewport={"width": 1400, "height": 1100}) as page:
        yield page


def test_an_operator_cancels_and_promotes_live_messages_and_sees_the_worker(
    redis_runtime: Runtime, served: str, page: Page, tmp_path: Path
) -> None:
    broker = redis_runtime.broker

    # Given two messages waiting in gcmc_email (no worker consumes it), one of them delayed,
    @dramatiq.actor(broker=broker, queue_name="gcmc_email")
    def dash_mail(n: int) -> None: ...

    @dramatiq.actor(broker=broker, queue_name="dash_other")
    def dash_other(n: int) -> None: ...

    ready = dash_mail.send(1)
    delayed = dash_mail.send_with_options(args=(2,), delay=3_600_000)
    # and a worker of this process running 3 messages of another queue
    worker = dramatiq.Worker(broker, queues={"dash_other"}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        for n in range(3):
            dash_other.send(n)
        broker.join("dash_other", timeout=30_000)

        # When an operator signs in and picks the queue
        sign_in(page, served)
        expect(page.locator('#live-queue option[value="gcmc_email"]')).to_have_count(1)
        page.select_option("#live-queue", "gcmc_email")

        # Then both messages are listed, and the worker with its figures
        expect(page.locator(f'#live tr[data-id="{ready.message_id}"]')).to_be_visible()
        expect(page.locator(f'#live tr[data-id="{delayed.message_id}"] .state')).to_have_text(
            "delayed"
        )
        worker_row = page.locator(f'#workers tr[data-pid="{os.getpid()}"]')
        expect(worker_row.locator(".processed")).to_have_text("3")
        expect(page.locator("#redis")).to_contain_text("MB used")
        page.screenshot(path=str(tmp_path / "dashboard-live.png"), full_page=True)

        # When they cancel the ready one and run the delayed one now
        page.locator(f'#live tr[data-id="{ready.message_id}"]').get_by_role(
            "button", name="cancel"
        ).click()
        expect(page.locator(f'#live tr[data-id="{ready.message_id}"]')).to_have_count(0)
        page.locator(f'#live tr[data-id="{delayed.message_id}"]').get_by_role(
            "button", name="run now"
        ).click()

        # Then only the promoted one is left, ready
        expect(page.locator(f'#live tr[data-id="{delayed.message_id}"] .state')).to_have_text(
            "ready"
        )
        expect(page.locator("#live tbody tr")).to_have_count(1)
    finally:
        worker.stop()

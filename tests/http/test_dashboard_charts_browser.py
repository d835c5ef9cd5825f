"""The dashboard's charts in a real headless Chromium (issue 16, item 3): a worker on real
Redis runs messages and its periodic report feeds the throughput and queue-depth charts; the
database feeds the risk and email charts; dead letters open on their traceback; job runs show
tenant names and readable stats; the layout holds on a narrow window. Screenshots are saved
for a person to look at (their paths are printed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dramatiq
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from gcmc_jobs import configured
from gcmc_jobs.db.enums import JobRunStatus
from gcmc_jobs.db.models import DeadLetter
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.http import create_app
from gcmc_jobs.ops.activity import activity
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.services import email_log
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.settings import Settings
from tests import factories as f
from tests.http.browser import chromium_page, serving, sign_in
from tests.http.conftest import TOKEN
from tests.support import wait_until


@pytest.fixture
def redis_settings(gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str) -> Settings:
    """The admin app's settings on real Redis, its workers reporting every 100 ms."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:dash{uuid.uuid4().hex[:8]}",
        email_url="memory://",
        log_format="json",
        admin_token=TOKEN,
        worker_stats_interval_ms=100,
    )


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page() as page:
        yield page


@pytest.fixture
def runtime(redis_settings: Settings, gcmc_db: Engine) -> Iterator[Runtime]:
    with configured(redis_settings, engine=gcmc_db) as runtime:
        yield runtime


@pytest.fixture
def server_url(redis_settings: Settings, runtime: Runtime) -> Iterator[str]:
    with serving(create_app(redis_settings)) as url:
        yield url


def _platform_data(session: Session, engine: Engine) -> f.TenantRow:
    """A tenant "Acme" with a low- and a high-risk client, a finished job run with stats, and
    three digests (two sent, one failed)."""
    tenant = f.tenant(session, "Acme")
    f.client(session, tenant)
    risky = f.client(session, tenant)
    for _ in range(11):
        f.document(session, risky, status=None)
    refresh_tenant(session, tenant.id)
    session.execute(
        insert(tables_of(session).job_runs).values(
            job="compliance_refresh",
            tenant_id=tenant.id,
            local_date=date(2026, 12, 1),
            started_at=datetime.now(UTC),
            finished_at=datetime.now(UTC),
            status=JobRunStatus.SUCCEEDED,
            stats={"clients": 2, "high_risk": 1},
        )
    )
    session.commit()
    with engine.begin() as connection:
        for n, outcome in enumerate(("sent", "sent", "failed")):
            key = f"digest-{n}"
            email_log.ensure_queued(
                connection,
                dedup_key=key,
                to_address=f"p{n}@example.com",
                kind="digest",
                subject="Your digest",
                tenant_id=tenant.id,
            )
            if outcome == "sent":
                email_log.mark_sent(connection, key, f"<{n}@example.com>")
            else:
                email_log.mark_failed(connection, key, "550 no such user")
    return tenant


def _screenshot(page: Page, directory: Path, name: str) -> None:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"dashboard screenshot: {path}")


def test_the_charts_draw_the_workers_and_the_databases_figures(
    runtime: Runtime,
    redis_settings: Settings,
    gcmc_db: Engine,
    gcmc_session: Session,
    server_url: str,
    page: Page,
    tmp_path: Path,
) -> None:
    # Given a worker on real Redis that ran 8 messages, 3 of which failed for good ...
    @dramatiq.actor(
        broker=runtime.broker, queue_name="gcmc_email", max_retries=0, throws=(PermanentError,)
    )
    def deliver(n: int) -> None:
        if n % 3 == 0:
            raise PermanentError(f"mailbox {n} refused")

    worker = dramatiq.Worker(runtime.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        for n in range(8):
            deliver.send(n)

        def totals() -> tuple[int, int]:
            found = activity(redis_settings, datetime.now(UTC), minutes=5)
            return sum(v or 0 for v in found.processed), sum(v or 0 for v in found.failed)

        def dead_letters() -> int:
            with gcmc_db.connect() as connection:
                count = select(func.count()).select_from(DeadLetter)
                return int(connection.execute(count).scalar_one())

        wait_until(lambda: totals() == (8, 3), timeout_s=30, what="8 processed, 3 failed")
        wait_until(lambda: dead_letters() == 3, timeout_s=30, what="3 dead letters")
        # ... and a tenant with scored clients, a job run and some email
        tenant = _platform_data(gcmc_session, gcmc_db)
        f.tenant(gcmc_session, "Unscored")
        gcmc_session.commit()

        # When an operator signs in
        page.set_viewport_size({"width": 1280, "height": 900})
        sign_in(page, server_url)

        # Then the throughput chart plots the worker's minutes: 8 processed, 3 failed
        page.wait_for_function(
            "() => window.gcmcCharts && window.gcmcCharts.throughput &&"
            " window.gcmcCharts.throughput.data[1].reduce((a, v) => a + (v || 0), 0) === 8"
        )
        drawn = page.evaluate(
            """() => {
              const u = window.gcmcCharts.throughput;
              const sum = (i) => u.data[i].reduce((a, v) => a + (v || 0), 0);
              const c = u.ctx.canvas;
              const px = u.ctx.getImageData(0, 0, c.width, c.height).data;
              let painted = 0;
              for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
              return {points: u.data[0].length, processed: sum(1), failed: sum(2), painted,
                      series: u.series.slice(1).map((s) => s.label)};
            }"""
        )
        assert drawn["points"] == 1440  # a point per minute over 24 h
        assert (drawn["processed"], drawn["failed"]) == (8, 3)
        assert drawn["series"] == ["processed", "failed"]
        assert drawn["painted"] > 0
        # ... the queue-depth chart has a series for the worker's queue, with reported points
        depth = page.evaluate(
            """() => { const u = window.gcmcCharts.depth;
                       return u.series.slice(1).map((s, i) => [s.label,
                         u.data[i + 1].filter((v) => v !== null).length]); }"""
        )
        assert dict(depth)["gcmc_email"] > 0
        # ... the risk chart: Acme's one low- and one high-risk client
        risk = page.locator(f'#risk tr[data-tenant="{tenant.id}"]')
        expect(risk).to_contain_text("Acme")
        expect(risk.locator(".low-count")).to_have_text("1")
        expect(risk.locator(".high-count")).to_have_text("1")
        expect(risk.locator(".seg-high")).to_have_attribute("data-count", "1")
        # ... the risk trend: today's snapshot, written by the refresh
        trend = page.evaluate(
            """() => { const u = window.gcmcCharts.trend;
                       return [u.series.slice(1).map((s) => s.label),
                               u.data.slice(1).map((values) => values[values.length - 1])]; }"""
        )
        assert trend == [["low", "medium", "high"], [1, 0, 1]]
        # ... and of one tenant chosen by name: one without snapshots has no point
        page.select_option("#trend-tenant", label="Unscored")
        page.wait_for_function("() => window.gcmcCharts.trend.data[0].length === 0")
        expect(page.locator("#trend-summary")).to_contain_text("no compliance snapshot")
        page.select_option("#trend-tenant", label="Acme")
        page.wait_for_function("() => window.gcmcCharts.trend.data[0].length === 1")
        # ... email delivery by kind and status
        digest = page.locator('#email tr[data-kind="digest"]')
        expect(digest.locator(".sent-count")).to_have_text("2")
        expect(digest.locator(".failed-count")).to_have_text("1")
        expect(digest.locator(".seg-sent")).to_have_attribute("data-count", "2")
        # ... the job run with its tenant's name and its stats as "key: value"
        run = page.locator(f'#runs tr[data-tenant="{tenant.id}"]')
        expect(run.locator(".tenant")).to_have_text("Acme")
        expect(run.locator("dl.stats dt")).to_have_text(["clients", "high risk"])
        expect(run.locator("dl.stats dd")).to_have_text(["2", "1"])
        # ... number columns and their headers right-aligned; the purge box a sane default
        aligned = page.evaluate(
            """() => [...document.querySelectorAll('#workers th.n, #queues th.n, #queues td.n')]
                 .map((e) => getComputedStyle(e).textAlign)"""
        )
        assert len(aligned) > 10
        assert set(aligned) == {"right"}
        expect(page.locator("#purge-days")).to_have_value("30")
        _screenshot(page, tmp_path, "dashboard-wide")

        # Every control is reachable with the Tab key, in the page's order (refreshes keep the
        # focus in place)
        key = """(e) => JSON.stringify([e.closest('tr') ? e.closest('tr').dataset : null,
                                        e.tagName, e.id, e.textContent.trim().slice(0, 60)])"""
        controls = page.evaluate(
            f"""() => [...document.querySelectorAll(
                   '#main a[href], #main button, #main summary, #main input, #main select')]
                 .filter((e) => e.offsetParent !== null && !e.disabled).map({key})"""
        )
        page.locator("#logout").focus()
        reached = []
        for _ in range(len(controls) + 5):
            reached.append(page.evaluate(f"() => ({key})(document.activeElement)"))
            page.keyboard.press("Tab")
        assert len(controls) > 20
        assert set(controls) <= set(reached), set(controls) - set(reached)

        # When they open a dead letter's error by keyboard: its traceback is shown
        letter_id = page.locator("#dead-letters tbody tr").first.get_attribute("data-id")
        letter = page.locator(f'#dead-letters tr[data-id="{letter_id}"]')
        letter.locator("summary").focus()
        page.keyboard.press("Enter")
        expect(letter.locator("pre.traceback")).to_contain_text("Traceback")
        expect(letter.locator("pre.traceback")).to_contain_text("PermanentError")
        # ... and it stays open across the next refresh (the 5 s one)
        before = page.locator("#status").inner_text()
        page.wait_for_function(
            "(before) => document.getElementById('status').textContent !== before", arg=before
        )
        expect(letter.locator("details")).to_have_attribute("open", "")
        # When they replay it by keyboard: its row shows the new message's id (which fails
        # again, and is listed as a new dead letter)
        letter.get_by_role("button", name="replay").focus()
        page.keyboard.press("Enter")
        expect(letter.locator(".replayed-as")).not_to_have_text("-")
        _screenshot(page, tmp_path, "dashboard-traceback")

        # On a phone-sized window the page does not scroll sideways (tables scroll in place)
        # and the charts shrink to fit
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function(
            "() => [window.gcmcCharts.throughput, window.gcmcCharts.depth]"
            ".every((c) => c.width <= window.innerWidth)"
        )
        fits = page.evaluate(
            """() => ({page: document.documentElement.scrollWidth, view: window.innerWidth,
                       wide: [...document.querySelectorAll('body *')]
                         .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
                                        && !e.closest('.scroll'))
                         .slice(0, 5).map((e) => e.tagName + '.' + e.className)})"""
        )
        assert fits["page"] <= fits["view"], fits["wide"]
        _screenshot(page, tmp_path, "dashboard-narrow")
    finally:
        worker.stop()

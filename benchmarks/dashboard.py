"""The dashboard's first paint and time to data, next to the dashboard before issue 16 item 3.

One command (the test suite's PostgreSQL and Redis; its own database and Redis namespace,
removed at the end; Debian's chromium driven by Playwright)::

    .venv/bin/python benchmarks/dashboard.py [--tenants 100] [--messages 10000] [--rounds 5]

Set-up: ``--tenants`` tenants of 20 clients each (``gcmc-jobs seed``), their compliance
refreshed (so the risk chart has every tenant), 5,000 ``email_log`` rows, a full 24 h of
per-minute activity (1,440 minutes, as the workers' reports write it) and ``--messages``
live messages waiting on a Redis queue. The admin app runs under uvicorn in this process.

Compared in the same run, alternating, each in a fresh browser context already signed in
(the token in ``sessionStorage``):

1. ours: ``/dashboard`` (charts, risk, email, every table);
2. the baseline: the dashboard as it was before (the files of commit ``BASELINE``, read with
   ``git show`` and served by the same app under ``/baseline/dashboard``): tables only.

Printed per page, median over the rounds: first contentful paint (Chromium's ``paint``
performance entry) and time to data (``performance.now()`` when the page first says
"updated": every API call answered and drawn), the ratio ours / baseline, the load average
before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import redis
import structlog
import uvicorn
from dramatiq.brokers.redis import RedisBroker
from fastapi.responses import HTMLResponse, Response
from playwright.sync_api import sync_playwright
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs import configured
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.enums import EmailStatus
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.http import create_app
from gcmc_jobs.middleware.activity import MINUTE_MS, record_activity
from gcmc_jobs.seeding.load import seed
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.settings import Settings

#: The commit whose dashboard is the baseline (main before issue 16 item 3).
BASELINE = "3ac2506"
TOKEN = "bench-admin-token"  # noqa: S105 (a throwaway token of this run)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
QUEUE = "gcmc_email"

#: Run before the page's scripts: keeps the token (signed in) and notes when the status
#: first says "updated".
INIT_SCRIPT = (
    "sessionStorage.setItem('gcmc-jobs-token', TOKEN);"
    "window.__dataAt = null;"
    "document.addEventListener('DOMContentLoaded', () => {"
    "  const status = document.getElementById('status');"
    "  new MutationObserver(() => {"
    "    if (window.__dataAt === null && status.textContent.startsWith('updated'))"
    "      window.__dataAt = performance.now();"
    "  }).observe(status, {childList: true, characterData: true, subtree: true});"
    "});"
).replace("TOKEN", repr(TOKEN))


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def baseline_files() -> tuple[str, str]:
    root = Path(__file__).resolve().parent.parent

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{BASELINE}:gcmc_jobs/http/static/{path}"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    html = show("dashboard.html").replace("{{BASE}}/dashboard/app.js", "/baseline/dashboard/app.js")
    return html.replace("{{BASE}}", ""), show("dashboard.js")


def prepare(settings: Settings, engine_url: str, tenants: int, messages: int) -> None:
    engine = make_engine(engine_url)
    upgrade(engine)
    started = time.perf_counter()
    seed(engine, tenants=tenants, clients_per_tenant=20)
    t = tables_of(engine)
    with Session(engine) as session:
        for tenant_id in session.execute(select(t.tenants.c.id)).scalars():
            refresh_tenant(session, tenant_id)
        session.commit()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        tenant_ids = list(connection.execute(select(t.tenants.c.id)).scalars())
        connection.execute(
            insert(t.email_log),
            [
                {
                    "dedup_key": f"bench-{n}",
                    "tenant_id": tenant_ids[n % len(tenant_ids)],
                    "to_address": f"p{n}@example.com",
                    "kind": ("digest", "reminder", "password_reset")[n % 3],
                    "subject": "s",
                    "status": (EmailStatus.SENT, EmailStatus.SENT, EmailStatus.FAILED)[n % 3],
                    "attempts": 1,
                    "created_at": now - timedelta(minutes=n % 1_200),
                }
                for n in range(5_000)
            ],
        )
    engine.dispose()
    client = redis.Redis.from_url(settings.broker_url.get_secret_value())
    now_ms = int(now.timestamp() * 1000)
    for minute in range(1_440):
        record_activity(
            client,
            settings.namespace,
            now_ms=now_ms - minute * MINUTE_MS,
            processed=100 + minute % 60,
            failed=minute % 7,
            queues=[QUEUE],
        )
    broker = RedisBroker(url=settings.broker_url.get_secret_value(), namespace=settings.namespace)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def deliver(tenant_id: object, n: int) -> None:  # never run: the messages wait
        pass

    for n in range(messages):
        deliver.send(tenant_ids[n % len(tenant_ids)], n)
    broker.close()
    client.close()
    print(
        f"set-up: {tenants} tenants x 20 clients, 5,000 emails, 1,440 minutes of activity, "
        f"{messages:,} live messages in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def measure(url: str, rounds: int) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {
        page: {"fcp": [], "data": []} for page in ("ours", "baseline")
    }
    paths = {"ours": "/dashboard", "baseline": "/baseline/dashboard"}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            for round_no in range(rounds + 1):  # round 0 warms both up, not counted
                order = ["ours", "baseline"] if round_no % 2 else ["baseline", "ours"]
                for name in order:
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.add_init_script(INIT_SCRIPT)
                    page.goto(url + paths[name])
                    page.wait_for_function("() => window.__dataAt !== null", timeout=60_000)
                    fcp = page.evaluate(
                        "() => (performance.getEntriesByName('first-contentful-paint')[0]"
                        " || {}).startTime"
                    )
                    data = page.evaluate("() => window.__dataAt")
                    if name == "ours":
                        drawn = page.evaluate(
                            "() => window.gcmcCharts.throughput.data[1].filter(v => v).length"
                        )
                        # 1,439 when a minute turned while loading
                        assert drawn >= 1_439, f"the throughput chart drew {drawn} minutes"
                    context.close()
                    if round_no:
                        figures[name]["fcp"].append(float(fcp))
                        figures[name]["data"].append(float(data))
        finally:
            browser.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--postgres", default=os.environ.get("GCMC_JOBS_TEST_POSTGRES_URL",
                                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    parser.add_argument(
        "--redis", default=os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(f"before: {load()}", flush=True)

    namespace = f"gcmc_bench_dashboard_{uuid.uuid4().hex[:10]}"
    with bench_database(args.postgres, "dashboard") as engine:
        url = engine.url.render_as_string(hide_password=False)
        settings = Settings(
            database_url=url,
            broker_url=args.redis,
            namespace=namespace,
            email_url="memory://",
            log_format="json",
            log_level="WARNING",
            admin_token=TOKEN,
        )
        server = None
        thread = None
        try:
            prepare(settings, url, args.tenants, args.messages)
            old_html, old_js = baseline_files()
            with configured(settings):
                app = create_app(settings)
                app.add_api_route("/baseline/dashboard", lambda: HTMLResponse(old_html))
                app.add_api_route(
                    "/baseline/dashboard/app.js",
                    lambda: Response(old_js, media_type="text/javascript"),
                )
                server = uvicorn.Server(
                    uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
                )
                thread = threading.Thread(target=server.run, daemon=True)
                thread.start()
                while not server.started:
                    time.sleep(0.05)
                port = server.servers[0].sockets[0].getsockname()[1]
                figures = measure(f"http://127.0.0.1:{port}", args.rounds)
        finally:
            if server is not None and thread is not None:
                server.should_exit = True
                thread.join(timeout=10)
            client = redis.Redis.from_url(args.redis)
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])

    median = {n: {k: statistics.median(v) for k, v in f.items()} for n, f in figures.items()}
    print(f"\n{args.rounds} rounds, median (ms):")
    print(f"{'page':<10} {'first paint':>12} {'data shown':>12}")
    for page_name, m in median.items():
        print(f"{page_name:<10} {m['fcp']:>12.0f} {m['data']:>12.0f}")
    ours, base = median["ours"], median["baseline"]
    print(
        f"ratio ours / baseline: first paint {ours['fcp'] / base['fcp']:.2f},"
        f" data shown {ours['data'] / base['data']:.2f}"
    )
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the dashboard's browser tests share: Debian's headless Chromium driven by Playwright,
the admin app served by uvicorn in a thread, and an operator signing in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from tests.http.conftest import TOKEN
from tests.support import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on exit. Launching one costs seconds on a busy machine:
    a module of several tests shares one and gives each test a :func:`fresh_page`."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(browser: Browser, **options: Any) -> Iterator[Page]:
    """A page in a new browser context of its own (``options`` go to
    ``browser.new_context``): no cookie, storage or cache of another test's, as in a
    browser of its own; the context is closed on exit."""
    context = browser.new_context(**options)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def chromium_page(**options: Any) -> Iterator[Page]:
    """A new page (``options`` go to ``browser.new_context``) in a headless Chromium of its
    own, closed on exit: for a module with one browser test."""
    with chromium() as browser, fresh_page(browser, **options) as page:
        yield page


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout_s=30, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sign_in(page: Page, base_url: str, token: str = TOKEN) -> None:
    """Open the dashboard at ``base_url`` and sign in with ``token``."""
    page.goto(f"{base_url}/dashboard")
    page.fill("#token", token)
    page.click("#login button[type=submit]")

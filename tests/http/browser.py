"""What the dashboard's browser tests share: Debian's headless Chromium driven by Playwright,
the admin app served by uvicorn in a thread, and an operator signing in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from playwright.sync_api import Page, sync_playwright

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
def chromium_page(**options: Any) -> Iterator[Page]:
    """A new page (``options`` go to ``browser.new_page``) in a headless Chromium, closed on
    exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser.new_page(**options)
        finally:
            browser.close()


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

"""``gcmc-jobs demo --serve``: after the demo, the dashboard on what the demo left behind.

The demo's own broker and worker stop when it ends; :func:`demo_dashboard` configures
gcmc-jobs again on the same settings (the same database: its runs, dead letters, tenants),
starts an in-process worker so that replays and triggered jobs run, and gives the admin
application with a token to sign in with: the configured ``GCMC_JOBS_ADMIN_TOKEN`` (never
printed), or a random one made for this session (printed, so a newcomer can sign in).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dramatiq
from pydantic import SecretStr

from gcmc_jobs.bootstrap import configured, start_worker
from gcmc_jobs.settings import Settings

__all__ = ["DemoDashboard", "demo_dashboard"]


@dataclass(frozen=True)
class DemoDashboard:
    """The admin ASGI application to serve, and the token that opens it.

    ``generated`` is False when the token is the configured ``GCMC_JOBS_ADMIN_TOKEN``
    (a secret the operator already has: never print it).
    """

    app: Any
    token: str
    generated: bool


@contextmanager
def demo_dashboard(settings: Settings, *, worker_threads: int = 2) -> Iterator[DemoDashboard]:
    """Configure gcmc-jobs on ``settings`` with an in-process worker, for the dashboard.

    Needs the ``[server]`` extra. On exit the worker stops, the runtime closes and the
    process's previous configuration is restored.
    """
    # Deferred on purpose: the admin application needs the optional [server] extra (FastAPI).
    from gcmc_jobs.http import create_app

    generated = settings.admin_token is None
    token = (
        secrets.token_urlsafe(18)
        if settings.admin_token is None
        else settings.admin_token.get_secret_value()
    )
    settings = settings.model_copy(update={"admin_token": SecretStr(token)})
    with configured(settings) as runtime:
        runtime.broker.emit_after("process_boot")
        worker = start_worker(
            dramatiq.Worker(runtime.broker, worker_timeout=100, worker_threads=worker_threads)
        )
        try:
            yield DemoDashboard(app=create_app(settings), token=token, generated=generated)
        finally:
            worker.stop()

"""``gcmc-jobs demo``: the jobs end to end, in-process, on a machine with nothing running."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from gcmc_jobs.cli._app import app, console, fail, settings

if TYPE_CHECKING:
    from gcmc_jobs.settings import Settings


@contextmanager
def _demo_logging(current: Settings, verbose: bool) -> Iterator[None]:
    """Log only warnings (all events with ``--verbose``) while the demo runs, then restore
    the previous configuration, so the demo leaves a host process as it found it."""
    import structlog

    from gcmc_jobs.logging import configure_logging

    previous = structlog.get_config()
    root = logging.getLogger()
    previous_level = root.level
    level = current.log_level if verbose else "WARNING"
    configure_logging(current.model_copy(update={"log_level": level}), cache=False)
    try:
        yield
    finally:
        structlog.configure(**previous)
        root.setLevel(previous_level)


@app.command("demo")
def demo_command(
    reset: bool = typer.Option(False, "--reset", help="Drop every table first: start empty."),
    tenants: int = typer.Option(3, "--tenants", min=1, help="Tenants to seed (empty DB)."),
    clients_per_tenant: int = typer.Option(
        20, "--clients-per-tenant", min=1, help="Clients per seeded tenant."
    ),
    seed_value: int = typer.Option(0, "--seed", help="Random seed of the seeded data."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every job's log events."),
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Then serve the dashboard on localhost until Ctrl-C (needs the server extra).",
    ),
    port: int = typer.Option(8000, "--port", help="Port of the dashboard with --serve."),
) -> None:
    """Seed a small data set and run the jobs through the real actors and an in-process worker.

    With no settings: a SQLite file in the working directory, the in-process broker, email
    written to ./outbox. With GCMC_JOBS_DATABASE_URL and GCMC_JOBS_BROKER_URL set, the same
    demo runs on PostgreSQL and Redis (or RabbitMQ); the worker still runs in this process.
    """
    from gcmc_jobs.demo import run_demo

    current = settings()
    started = time.perf_counter()
    with _demo_logging(current, verbose):
        run_demo(
            current,
            tenants=tenants,
            clients_per_tenant=clients_per_tenant,
            seed_value=seed_value,
            reset=reset,
            console=console,
        )
    console.print(f"[bold green]demo finished[/] in {time.perf_counter() - started:.1f} s")
    if serve:
        _serve_dashboard(current, port)


def _serve_dashboard(current: Settings, port: int) -> None:
    """Serve the dashboard on 127.0.0.1:``port`` over what the demo left, until Ctrl-C."""
    try:
        # Deferred on purpose: the dashboard needs the optional server extra (uvicorn).
        import uvicorn
    except ImportError:
        fail("--serve needs the server extra: pip install 'gcmc-jobs\\[server]'")
    from gcmc_jobs.demo.serve import demo_dashboard

    with demo_dashboard(current) as dashboard:
        token = dashboard.token if dashboard.generated else "the one in GCMC_JOBS_ADMIN_TOKEN"
        console.print(
            f"[bold]dashboard[/]: http://127.0.0.1:{port}/dashboard  "
            f"[bold]token[/]: {token}  (Ctrl-C stops)"
        )
        uvicorn.run(dashboard.app, host="127.0.0.1", port=port, log_level="warning")

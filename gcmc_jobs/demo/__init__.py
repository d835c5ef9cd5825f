"""The embedded demo behind ``gcmc-jobs demo``: the jobs, end to end, in seconds.

:func:`run_demo` migrates the configured database (a SQLite file in the working directory by
default), seeds a small data set when it holds no tenant yet, configures gcmc-jobs on the
configured broker (the in-process ``stub://`` by default; Redis or RabbitMQ when
``GCMC_JOBS_BROKER_URL`` says so), starts a Dramatiq worker in this process, and runs each
step of :data:`STEPS` in order. Each step sends real actor messages through the real
middleware and prints what happened.

Adding a step
-------------

1. Write a module ``gcmc_jobs/demo/<name>.py`` holding ``TITLE = "…"`` and a function
   ``run(ctx: DemoContext) -> None``. It sends actors with ``ctx.send_and_wait(actor, ...)``
   (or ``actor.send(...)`` then ``ctx.wait()``), reads the database with ``ctx.session()``,
   prints with ``ctx.console`` (rich), and may leave results in ``ctx.facts[<name>]`` for
   later steps and for tests. See :mod:`gcmc_jobs.demo.compliance`.
2. Add one line, its module name, to :data:`STEPS` below, where it belongs in the story.

Steps run in one process, in a :func:`gcmc_jobs.configured` block: the worker stops, the
runtime closes (broker, engine, transport, stores) and the process's previous configuration
comes back when the demo ends, even if a step fails.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast

import dramatiq
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import Engine, func, inspect, make_url, select, text

from gcmc_jobs.bootstrap import configured, start_worker
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Base, Tenant
from gcmc_jobs.demo.context import DemoContext
from gcmc_jobs.seeding import seed
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.settings import Settings

__all__ = ["STEPS", "DemoContext", "run_demo"]

#: The demo's steps, in order: one module name each (see "Adding a step" above).
STEPS: list[str] = [
    "gcmc_jobs.demo.compliance",
    "gcmc_jobs.demo.email",
    "gcmc_jobs.demo.schedule",
]


class Step(Protocol):
    """What a step module provides."""

    TITLE: str

    def run(self, ctx: DemoContext) -> None: ...


def load_steps(names: list[str] | None = None) -> list[Step]:
    """The step modules named in ``names`` (default :data:`STEPS`), imported."""
    return [cast(Step, importlib.import_module(name)) for name in (names or STEPS)]


def reset_database(engine: Engine) -> None:
    """Drop every gcmc-jobs table and the migration record: the next upgrade starts afresh."""
    Base.metadata.drop_all(engine)
    if "alembic_version" in inspect(engine).get_table_names():
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))


def _absolute_sqlite(settings: Settings) -> Settings:
    """``settings`` with a relative SQLite path made absolute, so the demo's database is the
    one in the current directory even in a process whose engines outlive a ``chdir``."""
    url = make_url(settings.database_url.get_secret_value())
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return settings
    absolute = url.set(database=str(Path(url.database).resolve()))
    return settings.model_copy(
        update={"database_url": SecretStr(absolute.render_as_string(hide_password=False))}
    )


def run_demo(
    settings: Settings | None = None,
    *,
    tenants: int = 3,
    clients_per_tenant: int = 20,
    seed_value: int = 0,
    reset: bool = False,
    console: Console | None = None,
    steps: list[str] | None = None,
    worker_threads: int = 4,
    now: datetime | None = None,
) -> DemoContext:
    """Run the demo's steps against ``settings`` (default: from ``GCMC_JOBS_*``).

    ``reset`` drops every table first. A database that already holds tenants is used as it
    is; an empty one gets ``tenants`` x ``clients_per_tenant`` seeded clients (``seed_value``
    picks the data). Returns the context, whose ``facts`` hold what each step found.
    """
    settings = _absolute_sqlite(settings if settings is not None else Settings())
    console = console if console is not None else Console()
    now = now or utcnow()
    with configured(settings) as runtime:
        worker: dramatiq.Worker | None = None
        try:
            engine = runtime.engine
            console.print(
                f"[bold]gcmc-jobs demo[/]: database [cyan]{engine.url.render_as_string()}[/], "
                f"broker [cyan]{type(runtime.broker).__name__}[/]"
            )
            if reset:
                reset_database(engine)
                console.print("  database reset")
            upgrade(engine)
            with engine.connect() as connection:
                existing = connection.scalar(select(func.count()).select_from(Tenant)) or 0
            if existing:
                console.print(f"  using the {existing} tenants already there (--reset starts over)")
            else:
                result = seed(
                    engine,
                    tenants=tenants,
                    clients_per_tenant=clients_per_tenant,
                    seed=seed_value,
                    now=now,
                )
                console.print(
                    f"  seeded {tenants} tenants x {clients_per_tenant} clients "
                    f"({result.total:,} rows)"
                )
            runtime.broker.emit_after("process_boot")
            worker = start_worker(
                dramatiq.Worker(runtime.broker, worker_timeout=100, worker_threads=worker_threads)
            )
            ctx = DemoContext(
                settings=settings,
                runtime=runtime,
                worker=worker,
                console=console,
                now=now,
                tenants=tenants,
                clients_per_tenant=clients_per_tenant,
                seed=seed_value,
            )
            for step in load_steps(steps):
                console.rule(f"[bold]{step.TITLE}")
                step.run(ctx)
            return ctx
        finally:
            if worker is not None:
                worker.stop()

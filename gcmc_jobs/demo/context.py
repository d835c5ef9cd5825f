"""What every demo step receives: the configured runtime, an in-process worker, a console."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dramatiq
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings

__all__ = ["DemoContext"]

#: How long :meth:`DemoContext.wait` waits for one queue to drain, ms.
WAIT_TIMEOUT_MS = 120_000


@dataclass
class DemoContext:
    """The demo's state, handed to each step's ``run(ctx)``.

    ``facts`` is where a step leaves what it found (the compliance step stores its
    per-tenant summary under ``"compliance"``), for later steps and for tests.
    """

    settings: Settings
    runtime: Runtime
    worker: dramatiq.Worker
    console: Console
    now: datetime
    tenants: int
    clients_per_tenant: int
    seed: int
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def broker(self) -> dramatiq.Broker:
        """The broker the actors are bound to (stub, Redis or RabbitMQ)."""
        return self.runtime.broker

    @property
    def engine(self) -> Engine:
        """The database engine the actors use."""
        return self.runtime.engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction on the demo's database (committed when the block ends)."""
        with session_scope(self.engine) as session:
            yield session

    def wait(self, *, timeout_ms: int = WAIT_TIMEOUT_MS) -> None:
        """Block until every declared queue is empty and the in-process worker is idle.

        Messages that actors send while running (a fan-out) are waited for too: a queue
        counts as busy until its messages are acknowledged.
        """
        for _ in range(2):  # a second pass catches messages sent into an already-joined queue
            for queue_name in sorted(self.broker.get_declared_queues()):
                self.broker.join(queue_name, timeout=timeout_ms)
            self.worker.join()

    def send_and_wait(self, actor: dramatiq.Actor[Any, Any], *args: Any, **kwargs: Any) -> None:
        """Send ``actor(*args, **kwargs)`` through the broker and wait until all is done."""
        actor.send(*args, **kwargs)
        self.wait()

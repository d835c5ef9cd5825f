"""What the outbox scenarios' ``dramatiq`` workers load next to ``gcmc_jobs.worker``: one
actor that records each committed run in PostgreSQL (``outbox_probe_runs``), so a scenario
can count how many times each message ran."""

from __future__ import annotations

import dramatiq
from sqlalchemy import text

import gcmc_jobs

QUEUE = "outbox_probe"
ACTOR = "outbox_probe"
RUNS_DDL = "CREATE TABLE IF NOT EXISTS outbox_probe_runs (n integer NOT NULL)"


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=3, min_backoff=100)
def outbox_probe(n: int) -> None:
    with gcmc_jobs.current().engine.begin() as connection:
        connection.execute(text("INSERT INTO outbox_probe_runs (n) VALUES (:n)"), {"n": n})

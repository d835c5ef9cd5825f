"""A host application using gcmc-jobs: configure once at start-up, then send actors.

Run it with the defaults (the in-process broker, a SQLite file here)::

    python examples/host_app.py

or against real services::

    GCMC_JOBS_BROKER_URL=redis://127.0.0.1:6379/0 \\
    GCMC_JOBS_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/gcmc \\
    python examples/host_app.py

and process what it sent with ``dramatiq gcmc_jobs.worker`` (same environment).
"""

from __future__ import annotations

import gcmc_jobs
from gcmc_jobs.actors import refresh_compliance


def start() -> gcmc_jobs.Runtime:
    """At start-up: read GCMC_JOBS_* and bind gcmc-jobs' actors (connects to nothing yet)."""
    return gcmc_jobs.configure()


def on_document_reviewed(tenant_id: int) -> str:
    """A request handler: the tenant's scores changed, refresh them in the background."""
    message = refresh_compliance.send(tenant_id)
    return message.message_id


if __name__ == "__main__":
    runtime = start()
    message_id = on_document_reviewed(tenant_id=1)
    print(f"sent refresh_compliance {message_id} on {type(runtime.broker).__name__}")

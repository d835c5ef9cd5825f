"""A host application using gcmc-jobs: configure once at start-up, send the package's actors
and its own (:mod:`host_app.actors`), and register its own daily job (:mod:`host_app.jobs`).

Run it with the defaults (the in-process broker, a SQLite file here), from ``examples/``::

    python -m host_app

or against real services, with workers that load the host's modules too::

    export GCMC_JOBS_BROKER_URL=redis://127.0.0.1:6379/0
    export GCMC_JOBS_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/gcmc
    export GCMC_JOBS_HOST_MODULES=host_app.actors,host_app.jobs
    python -m host_app
    dramatiq gcmc_jobs.worker        # runs gcmc-jobs' actors and the host's
    periodiq gcmc_jobs.worker        # the scheduler tick: the host's daily job included
"""

from __future__ import annotations

import gcmc_jobs
from gcmc_jobs.actors import refresh_compliance


def start() -> gcmc_jobs.Runtime:
    """At start-up: read GCMC_JOBS_* and bind the actors, gcmc-jobs' and (through
    GCMC_JOBS_HOST_MODULES) the host's; connects to nothing yet."""
    return gcmc_jobs.configure()


def on_document_reviewed(tenant_id: int) -> str:
    """A request handler: the tenant's scores changed, refresh them in the background."""
    message = refresh_compliance.send(tenant_id)
    return message.message_id

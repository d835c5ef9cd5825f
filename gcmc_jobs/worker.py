"""What the ``dramatiq`` and ``periodiq`` command lines load.

::

    dramatiq gcmc_jobs.worker            # process every gcmc-jobs queue
    periodiq gcmc_jobs.worker            # send the periodic scheduler tick and alert watch

Importing this module reads ``GCMC_JOBS_*`` settings, configures logging, builds the broker
and makes it Dramatiq's global broker: it is an entry point, not a library module.

It also compares the database with the schema mapping (``gcmc-jobs db check``) and refuses
to start on a mismatch, raising :class:`~gcmc_jobs.errors.SchemaMismatch` (a
``ConfigurationError``) that names every problem, rather than failing later inside a job
(``GCMC_JOBS_SCHEMA_CHECK=false`` skips it). A database it cannot reach (or a SQLite file
that does not exist yet) is not a mismatch: the worker starts as it did before the check
existed, logs ``schema.check_skipped`` with the reason, and its jobs retry until the
database is back.
"""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

import gcmc_jobs.ops.alerts  # noqa: F401  (declares watch_operations, the operator alerts)
from gcmc_jobs.actors.schedule import log_scheduler_plan
from gcmc_jobs.bootstrap import configure
from gcmc_jobs.db.check import require_schema
from gcmc_jobs.errors import NoDatabaseFile
from gcmc_jobs.logging import configure_logging
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.ops.failures import explain
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.settings import Settings


def _check_schema(runtime: Runtime) -> None:
    """The boot check (module docstring)."""
    try:
        require_schema(runtime.engine, runtime.tables)
    except (OperationalError, InterfaceError, NoDatabaseFile) as exc:
        get_logger("gcmc_jobs.worker").warning(
            "schema.check_skipped", reason=explain(exc, runtime.settings).message
        )
    except BaseException:
        runtime.close()
        raise


settings = Settings()
configure_logging(settings, buffer_ms=settings.log_buffer_ms)
runtime = configure(settings, set_global=True)
if settings.schema_check:
    _check_schema(runtime)
broker = runtime.broker
log_scheduler_plan(runtime, utcnow())

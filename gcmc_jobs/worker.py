"""What the ``dramatiq`` and ``periodiq`` command lines load.

::

    dramatiq gcmc_jobs.worker            # process every gcmc-jobs queue
    periodiq gcmc_jobs.worker            # send the periodic scheduler tick

Importing this module reads ``GCMC_JOBS_*`` settings, configures logging, builds the broker
and makes it Dramatiq's global broker: it is an entry point, not a library module.
"""

from __future__ import annotations

from gcmc_jobs.actors.schedule import log_scheduler_plan
from gcmc_jobs.bootstrap import configure
from gcmc_jobs.logging import configure_logging
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.settings import Settings

settings = Settings()
configure_logging(settings, buffer_ms=settings.log_buffer_ms)
runtime = configure(settings, set_global=True)
broker = runtime.broker
log_scheduler_plan(runtime, utcnow())

"""gcmc-jobs: the background jobs of the GCMC compliance platform, as Dramatiq actors.

Importing this package opens no connection and leaves Dramatiq's global broker alone. A host
application calls :func:`configure` once at start-up, then sends actors::

    import gcmc_jobs
    from gcmc_jobs.actors import refresh_compliance

    gcmc_jobs.configure()              # reads GCMC_JOBS_* settings
    refresh_compliance.send(tenant_id=42)

or, for a block that leaves the process as it found it (scripts, tests)::

    with gcmc_jobs.configured(settings) as runtime:
        refresh_compliance.send(tenant_id=42)
"""

from __future__ import annotations

from gcmc_jobs.bootstrap import configure, configured
from gcmc_jobs.brokers import actor
from gcmc_jobs.errors import (
    ConfigurationError,
    GcmcJobsError,
    InvalidPayload,
    NotConfiguredError,
    PermanentError,
    TransientError,
)
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.settings import Settings

__version__ = "0.1.0.dev0"

__all__ = [
    # Errors
    "ConfigurationError",
    "GcmcJobsError",
    "InvalidPayload",
    "NotConfiguredError",
    "PermanentError",
    # Configuration
    "Runtime",
    "Settings",
    "TransientError",
    "__version__",
    "actor",  # host actors, on the package's broker with its middleware
    "configure",
    "configured",
    "current",
]

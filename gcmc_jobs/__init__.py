"""gcmc-jobs: the background jobs of the GCMC compliance platform, as Dramatiq actors.

Importing this package opens no connection and leaves Dramatiq's global broker alone. A host
application calls :func:`configure` once at start-up, then sends actors::

    import gcmc_jobs
    from gcmc_jobs.actors import refresh_compliance

    gcmc_jobs.configure()              # reads GCMC_JOBS_* settings
    refresh_compliance.send(tenant_id=42)
"""

from __future__ import annotations

from gcmc_jobs.errors import (
    ConfigurationError,
    GcmcJobsError,
    InvalidPayload,
    NotConfiguredError,
    PermanentError,
    TransientError,
)
from gcmc_jobs.runtime import Runtime, configure, current
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
    "configure",
    "current",
]

"""gcmc-jobs: the background jobs of the GCMC compliance platform, as Dramatiq actors.

Importing this package opens no connection and leaves Dramatiq's global broker alone. A host
application calls :func:`configure` once at start-up, then sends actors::

    import gcmc_jobs
    from gcmc_jobs.actors import refresh_compliance

    gcmc_jobs.configure()              # reads GCMC_JOBS_* settings
    refresh_compliance.send(tenant_id=42)

and asks what became of a message (``gcmc_jobs.status(message.message_id)``), or, for a block
that leaves the process as it found it (scripts, tests)::

    with gcmc_jobs.configured(settings) as runtime:
        refresh_compliance.send(tenant_id=42)

Importing the package is light: its public names are loaded on first use (a module
``__getattr__``), so ``import gcmc_jobs`` (and the ``gcmc-jobs`` command line) pulls in
neither the database models, nor the broker, nor the middleware stack until a name that
needs them is used. ``tests/test_imports.py`` pins what it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcmc_jobs._lazy import exports

if TYPE_CHECKING:
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
    from gcmc_jobs.ops.message_status import MessageStatus, status
    from gcmc_jobs.runtime import Runtime, current
    from gcmc_jobs.settings import Settings

__version__ = "0.1.0.dev0"

__all__ = [
    # Errors
    "ConfigurationError",
    "GcmcJobsError",
    "InvalidPayload",
    # Message status
    "MessageStatus",
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
    "status",  # what became of a sent message
]

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__ = exports(
    __name__,
    {
        "configure": "gcmc_jobs.bootstrap",
        "configured": "gcmc_jobs.bootstrap",
        "actor": "gcmc_jobs.brokers",
        "ConfigurationError": "gcmc_jobs.errors",
        "GcmcJobsError": "gcmc_jobs.errors",
        "InvalidPayload": "gcmc_jobs.errors",
        "NotConfiguredError": "gcmc_jobs.errors",
        "PermanentError": "gcmc_jobs.errors",
        "TransientError": "gcmc_jobs.errors",
        "MessageStatus": "gcmc_jobs.ops.message_status",
        "status": "gcmc_jobs.ops.message_status",
        "Runtime": "gcmc_jobs.runtime",
        "current": "gcmc_jobs.runtime",
        "Settings": "gcmc_jobs.settings",
    },
)

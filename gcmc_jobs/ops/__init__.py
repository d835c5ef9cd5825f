"""Operating gcmc-jobs: queue statistics, pausing queues, health checks, and saying which
setting a failure comes from (:mod:`.failures`).

Each module is importable alone and opens no connection at import; the HTTP application
(:mod:`gcmc_jobs.http`, optional extra ``[server]``) and the ``gcmc-jobs`` command line are
thin layers over these functions.
"""

from __future__ import annotations

__all__: list[str] = []

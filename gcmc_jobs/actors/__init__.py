"""gcmc-jobs' actors. Importing this package declares every one of them."""

from __future__ import annotations

from gcmc_jobs.actors.compliance import refresh_all_compliance, refresh_compliance

__all__ = ["refresh_all_compliance", "refresh_compliance"]

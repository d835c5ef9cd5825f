"""Seed data for demos, benchmarks and manual testing (``gcmc-jobs seed``).

=============  ==========================================================================
module         what it holds
=============  ==========================================================================
``generate``   the data generator: whole tenants' rows as plain tuples, reproducible
``load``       the bulk loader: ``COPY`` on PostgreSQL, ``executemany`` on SQLite, in one
               transaction; :func:`seed` generates and loads
=============  ==========================================================================

Not domain logic (that is :mod:`gcmc_jobs.services`): nothing here runs in a job.
"""

from __future__ import annotations

from gcmc_jobs.seeding.generate import TIMEZONES
from gcmc_jobs.seeding.load import SeedResult, seed

__all__ = ["TIMEZONES", "SeedResult", "seed"]

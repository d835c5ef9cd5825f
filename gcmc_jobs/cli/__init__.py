"""The ``gcmc-jobs`` command line: one Typer application, one module per command group.

Every command reads ``GCMC_JOBS_*`` settings (see ``gcmc-jobs --help``); each module below
adds its commands to :data:`app`.
"""

from __future__ import annotations

from gcmc_jobs.cli import config as _config  # noqa: F401  (registers its commands)
from gcmc_jobs.cli import db as _db  # noqa: F401
from gcmc_jobs.cli import dead_letters as _dead_letters  # noqa: F401
from gcmc_jobs.cli import demo as _demo  # noqa: F401
from gcmc_jobs.cli import email as _email  # noqa: F401
from gcmc_jobs.cli import ops as _ops  # noqa: F401
from gcmc_jobs.cli import schedule as _schedule  # noqa: F401
from gcmc_jobs.cli import seed as _seed  # noqa: F401
from gcmc_jobs.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``gcmc-jobs`` console script."""
    app()

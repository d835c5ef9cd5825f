"""gcmc-jobs' actors. Importing this package declares every one of them."""

from __future__ import annotations

from gcmc_jobs.actors.compliance import refresh_all_compliance, refresh_compliance
from gcmc_jobs.actors.email import send_email, send_security_email
from gcmc_jobs.actors.schedule import run_daily_job, scheduler_tick
from gcmc_jobs.actors.sms import send_sms

__all__ = [
    "refresh_all_compliance",
    "refresh_compliance",
    "run_daily_job",
    "scheduler_tick",
    "send_email",
    "send_security_email",
    "send_sms",
]

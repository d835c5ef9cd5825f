"""gcmc-jobs' actors. Importing this package declares every one of them."""

from __future__ import annotations

from gcmc_jobs.actors.campaigns import dispatch_campaign, send_campaign_email
from gcmc_jobs.actors.compliance import refresh_all_compliance, refresh_compliance
from gcmc_jobs.actors.email import send_email, send_security_email
from gcmc_jobs.actors.reports import aggregate_report, email_report, record_report, render_report
from gcmc_jobs.actors.schedule import run_daily_job, scheduler_tick
from gcmc_jobs.actors.sms import send_sms
from gcmc_jobs.actors.webhooks import deliver_webhook, dispatch_webhooks

__all__ = [
    "aggregate_report",
    "deliver_webhook",
    "dispatch_campaign",
    "dispatch_webhooks",
    "email_report",
    "record_report",
    "refresh_all_compliance",
    "refresh_compliance",
    "render_report",
    "run_daily_job",
    "scheduler_tick",
    "send_campaign_email",
    "send_email",
    "send_security_email",
    "send_sms",
]

"""Names of the queues gcmc-jobs' actors use, in one place.

Each is its own Dramatiq queue (and Redis list / RabbitMQ queue), so an operator can run a
worker for one of them alone (``dramatiq gcmc_jobs.worker -Q gcmc_email_critical``).
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "CAMPAIGNS",
    "COMPLIANCE",
    "EMAIL",
    "EMAIL_CRITICAL",
    "REPORTS",
    "SCHEDULED",
    "SCHEDULER",
    "SMS",
    "WEBHOOKS",
]

#: Per-tenant compliance refreshes.
COMPLIANCE = "gcmc_compliance"
#: Transactional and digest email.
EMAIL = "gcmc_email"
#: Security mail (password resets): a separate queue so a bulk backlog cannot delay it.
EMAIL_CRITICAL = "gcmc_email_critical"
#: Text messages (the SMS channel): their own queue, so a provider outage backs up SMS only.
SMS = "gcmc_sms"
#: Per-tenant daily jobs the scheduler enqueues (notifications, reminders, digests).
SCHEDULED = "gcmc_scheduled"
#: The scheduler's own short periodic tick.
SCHEDULER = "gcmc_scheduler"

#: The steps of the monthly compliance report chain (aggregate, render, email, record).
REPORTS = "gcmc_reports"

#: Outbound webhooks: the dispatcher and one message per delivery attempt.
WEBHOOKS = "gcmc_webhooks"

#: Campaign email and its dispatcher: low priority, paced by each campaign's rate, apart
#: from transactional mail so a campaign never delays it.
CAMPAIGNS = "gcmc_campaigns"

ALL = (EMAIL_CRITICAL, SCHEDULER, COMPLIANCE, SCHEDULED, EMAIL, SMS, REPORTS, WEBHOOKS, CAMPAIGNS)

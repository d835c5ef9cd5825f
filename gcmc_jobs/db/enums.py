"""The logical enums of the domain (DOMAIN.md), as Python ``StrEnum``s.

These are the values the code speaks; a :class:`~gcmc_jobs.db.mapping.SchemaMapping` says how
each is stored (``owner`` here may be ``OWNER`` in a Prisma enum type).
"""

from __future__ import annotations

import enum

__all__ = [
    "ALERT_ROLES",
    "OPEN_FILING_STATUSES",
    "CampaignRecipientStatus",
    "CampaignStatus",
    "ComplianceLevel",
    "DocumentStatus",
    "EmailEventKind",
    "EmailStatus",
    "FilingStatus",
    "JobRunStatus",
    "NotificationCategory",
    "Role",
    "SmsStatus",
    "SmsSuppressionReason",
    "SuppressionReason",
]


class Role(enum.StrEnum):
    """A member's role in a tenant. ``viewer`` never receives compliance alerts."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    STAFF = "staff"
    VIEWER = "viewer"


#: Roles that receive every compliance alert of their tenant (DOMAIN.md, recipients).
ALERT_ROLES = (Role.OWNER, Role.ADMIN, Role.MANAGER)


class DocumentStatus(enum.StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class FilingStatus(enum.StrEnum):
    DRAFT = "draft"
    PREPARED = "prepared"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: A filing is open while it is still being worked on.
OPEN_FILING_STATUSES = (FilingStatus.DRAFT, FilingStatus.PREPARED)


class ComplianceLevel(enum.StrEnum):
    """Risk level of a client: ``low`` risk when the score is ≥ 80, ``medium`` ≥ 50."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class NotificationCategory(enum.StrEnum):
    DOCUMENTS = "documents"
    FILINGS = "filings"
    TASKS = "tasks"
    SERVICE_REQUESTS = "service_requests"
    BILLING = "billing"


class EmailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    #: Soft bounces reached ``GCMC_JOBS_BOUNCE_SOFT_THRESHOLD`` within the window.
    SOFT_BOUNCE = "soft_bounce"


class EmailEventKind(enum.StrEnum):
    """What a provider, a DSN or the SMTP server said happened to one email
    (``email_events``; :mod:`gcmc_jobs.services.bounces`)."""

    DELIVERED = "delivered"
    #: Hard (``permanent``) or soft; a hard bounce suppresses the address at once.
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    #: Delivery delayed; the provider keeps trying.
    DEFERRED = "deferred"


class SmsStatus(enum.StrEnum):
    """Where one logical SMS is (``sms_log.status``): the states of :class:`EmailStatus`."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class SmsSuppressionReason(enum.StrEnum):
    """Why a phone number is on ``sms_suppressions``: the person replied STOP (the provider
    says so), the provider refused the number for good, or an operator blocked it."""

    STOP = "stop"
    PERMANENT_ERROR = "permanent_error"
    MANUAL = "manual"


class JobRunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CampaignStatus(enum.StrEnum):
    """A campaign's life (``gcmc_jobs.services.campaigns``): ``draft`` until started;
    ``running`` while it sends; ``paused`` holds it (resume continues); ``cancelled`` stops it
    for good; ``finished`` once no recipient is left queued."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"


class CampaignRecipientStatus(enum.StrEnum):
    """One address of a campaign: ``queued`` until it is mailed (``sent``), refused
    (``failed``), or skipped because the address is on the suppression list (``suppressed``)
    or opted out of the tenant's campaigns (``unsubscribed``)."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    UNSUBSCRIBED = "unsubscribed"

"""Transactional email: eight typed kinds, Jinja2 templates, transports, delivery.

This package is the email domain: it knows nothing of Dramatiq. The actors that deliver
are in :mod:`gcmc_jobs.actors.email`; the helpers a host application calls to send are above
them, in :mod:`gcmc_jobs.sending`::

    import gcmc_jobs
    from gcmc_jobs.sending import queue_welcome_email

    gcmc_jobs.configure()
    queue_welcome_email(
        "jane@example.com",
        {"tenant_name": "Acme CPA", "client_name": "Jane Doe",
         "portal_url": "https://portal.example/acme", "support_email": "help@acme.example"},
        tenant_id=42,
    )

Modules: :mod:`.addresses` (bare, normalised addresses; IDNA and SMTPUTF8), :mod:`.kinds`
(payload models, each stating its kind's name and whether it is critical), :mod:`.registry`
(kind → model, templates, path, derived from the models), :mod:`.rendering` (sandboxed
Jinja2), :mod:`.mime` (the MIME message), :mod:`.transports` (SMTP, file, memory),
:mod:`.dedup_keys` (deterministic dedup keys), :mod:`.delivery` (send once per key).
"""

from __future__ import annotations

from gcmc_jobs.email.addresses import normalize_address
from gcmc_jobs.email.dedup_keys import email_dedup_key
from gcmc_jobs.email.kinds import (
    PAYLOADS,
    Custom,
    DocumentExpiryItem,
    DocumentExpiryWarning,
    EmailPayload,
    FilingReminder,
    FilingReminderItem,
    Invoice,
    PasswordReset,
    RiskLevelChange,
    ServiceRequestUpdate,
    TaskAssignment,
    Welcome,
)
from gcmc_jobs.email.registry import KINDS, EmailKind, get_kind, validate_payload
from gcmc_jobs.email.rendering import RenderedEmail, render

__all__ = [
    "KINDS",
    "PAYLOADS",
    "Custom",
    "DocumentExpiryItem",
    "DocumentExpiryWarning",
    "EmailKind",
    "EmailPayload",
    "FilingReminder",
    "FilingReminderItem",
    "Invoice",
    "PasswordReset",
    "RenderedEmail",
    "RiskLevelChange",
    "ServiceRequestUpdate",
    "TaskAssignment",
    "Welcome",
    "email_dedup_key",
    "get_kind",
    "normalize_address",
    "render",
    "validate_payload",
]

"""Transactional email: eight typed kinds, Jinja2 templates, transports, and the helpers a
host application calls.

::

    import gcmc_jobs
    from gcmc_jobs.email import queue_welcome_email

    gcmc_jobs.configure()
    queue_welcome_email(
        "jane@example.com",
        {"tenant_name": "Acme CPA", "client_name": "Jane Doe",
         "portal_url": "https://portal.example/acme", "support_email": "help@acme.example"},
        tenant_id=42,
    )

Modules: :mod:`.kinds` (payload models), :mod:`.registry` (kind → model, templates, path),
:mod:`.rendering` (sandboxed Jinja2), :mod:`.mime` (the MIME message), :mod:`.transports`
(SMTP, file, memory), :mod:`.keys` (dedup keys), :mod:`.delivery` (send once per key),
:mod:`.queueing` (the helpers below). The actors are in :mod:`gcmc_jobs.actors.email`.
"""

from __future__ import annotations

from gcmc_jobs.email.keys import email_dedup_key
from gcmc_jobs.email.kinds import (
    Custom,
    DocumentExpiryItem,
    DocumentExpiryWarning,
    EmailPayload,
    FilingReminder,
    FilingReminderItem,
    Invoice,
    PasswordReset,
    ServiceRequestUpdate,
    TaskAssignment,
    Welcome,
)
from gcmc_jobs.email.queueing import (
    build_message,
    queue_custom_email,
    queue_document_expiry_warning,
    queue_email,
    queue_filing_reminder,
    queue_invoice_email,
    queue_password_reset_email,
    queue_service_request_update_email,
    queue_task_assignment_email,
    queue_welcome_email,
)
from gcmc_jobs.email.registry import KINDS, EmailKind, get_kind, validate_payload
from gcmc_jobs.email.rendering import RenderedEmail, render

__all__ = [
    "KINDS",
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
    "ServiceRequestUpdate",
    "TaskAssignment",
    "Welcome",
    "build_message",
    "email_dedup_key",
    "get_kind",
    "queue_custom_email",
    "queue_document_expiry_warning",
    "queue_email",
    "queue_filing_reminder",
    "queue_invoice_email",
    "queue_password_reset_email",
    "queue_service_request_update_email",
    "queue_task_assignment_email",
    "queue_welcome_email",
    "render",
    "validate_payload",
]

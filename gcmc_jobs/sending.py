"""Sending email from a host application: typed helpers and :func:`build_message`.

Every helper validates in the caller (:class:`~gcmc_jobs.errors.InvalidPayload`, nothing
enqueued), derives a deterministic dedup key unless one is given, and returns the
``dramatiq.Message`` (for a duplicate key still taken: the message, not enqueued, for which
:func:`is_duplicate` is true). Each
``queue_<kind>`` helper takes its kind's name from the payload class (``Welcome.kind``).

These helpers sit above the email actors they call (:mod:`gcmc_jobs.actors.email`), which
sit above the email domain (:mod:`gcmc_jobs.email`: kinds, rendering, transports, delivery),
so they live here, outside that package: ``from gcmc_jobs.sending import queue_welcome_email``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq

from gcmc_jobs.actors.email import email_call, email_message, is_duplicate, send_email
from gcmc_jobs.actors.sms import send_sms
from gcmc_jobs.email import kinds

__all__ = [
    "build_message",
    "is_duplicate",
    "queue_custom_email",
    "queue_document_expiry_warning",
    "queue_email",
    "queue_filing_reminder",
    "queue_invoice_email",
    "queue_password_reset_email",
    "queue_service_request_update_email",
    "queue_sms",
    "queue_task_assignment_email",
    "queue_welcome_email",
]

Data = kinds.EmailPayload | Mapping[str, Any]


def build_message(
    kind: str,
    to: str,
    payload: Data,
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A validated, ready-to-enqueue email message, **not** enqueued (for bulk senders).

    ``kind`` is one of :data:`gcmc_jobs.email.KINDS`; ``payload`` its model or a mapping of
    its fields; ``tenant_id`` the tenant the email belongs to (``email_log.tenant_id``);
    ``dedup_key`` names the logical email, once ever (default: a hash of kind, recipient,
    payload and tenant, recorded per dedup-TTL window, see the README's "Duplicates of an
    email"; a daily digest should pass its own, e.g. ``f"digest:docs:{tenant}:{user}:{day}"``);
    ``correlation_id`` ties the email to the operation that caused it in the logs.

    Raises :class:`~gcmc_jobs.errors.InvalidPayload` at once for an invalid call. The
    message carries everything the middleware read (``dedup_key``, ``tenant_id``,
    ``rate_limit_key``, ``rate_limit_class``) and is routed to its queue
    (``message.queue_name``: ``gcmc_email``, or ``gcmc_email_critical`` for password
    resets). Enqueue it with ``broker.enqueue(message)`` (or a pipeline), after
    ``Deduplication.claim_many`` if you batch. Requires the actors to be declared (import of
    :mod:`gcmc_jobs.actors`); the broker need not be configured to *build* a message.
    """
    return email_message(
        kind, to, payload, tenant_id=tenant_id, dedup_key=dedup_key, correlation_id=correlation_id
    )


def queue_email(
    kind: str,
    to: str,
    data: Data,
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """Validate and enqueue an email of ``kind`` (what every ``queue_*`` helper calls)."""
    kwargs, options = email_call(kind, to, data, tenant_id, dedup_key, correlation_id)
    message: dramatiq.Message[Any] = send_email.send_with_options(kwargs=kwargs, **options)
    return message


def queue_welcome_email(
    to: str,
    data: kinds.Welcome | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """Welcome a new client (:class:`~gcmc_jobs.email.kinds.Welcome`)."""
    return queue_email(
        kinds.Welcome.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_document_expiry_warning(
    to: str,
    data: kinds.DocumentExpiryWarning | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A digest of expiring documents and of the day's risk-level changes
    (:class:`~gcmc_jobs.email.kinds.DocumentExpiryWarning`)."""
    return queue_email(
        kinds.DocumentExpiryWarning.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_filing_reminder(
    to: str,
    data: kinds.FilingReminder | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A digest of filings due or overdue (:class:`~gcmc_jobs.email.kinds.FilingReminder`)."""
    return queue_email(
        kinds.FilingReminder.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_task_assignment_email(
    to: str,
    data: kinds.TaskAssignment | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A task was assigned (:class:`~gcmc_jobs.email.kinds.TaskAssignment`)."""
    return queue_email(
        kinds.TaskAssignment.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_service_request_update_email(
    to: str,
    data: kinds.ServiceRequestUpdate | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A service request changed status (:class:`~gcmc_jobs.email.kinds.ServiceRequestUpdate`)."""
    return queue_email(
        kinds.ServiceRequestUpdate.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_password_reset_email(
    to: str,
    data: kinds.PasswordReset | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A password-reset link (:class:`~gcmc_jobs.email.kinds.PasswordReset`), on the
    critical queue; the link travels in the ``secrets`` option, never in the arguments."""
    return queue_email(
        kinds.PasswordReset.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_invoice_email(
    to: str,
    data: kinds.Invoice | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """An invoice (:class:`~gcmc_jobs.email.kinds.Invoice`)."""
    return queue_email(
        kinds.Invoice.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_custom_email(
    to: str,
    data: kinds.Custom | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """Any other message: a subject and a text body (:class:`~gcmc_jobs.email.kinds.Custom`)."""
    return queue_email(
        kinds.Custom.kind,
        to,
        data,
        tenant_id=tenant_id,
        dedup_key=dedup_key,
        correlation_id=correlation_id,
    )


def queue_sms(
    to: str,
    body: str,
    *,
    kind: str = "custom",
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """Text ``body`` to ``to`` through ``send_sms`` on the ``gcmc_sms`` queue.

    The number must be E.164 (checked here: :class:`~gcmc_jobs.errors.InvalidPhoneNumber`,
    nothing enqueued); the same dedup, rate limit, suppressions and delivery record
    (``sms_log``) as the SMS alerts. Consent is the host's to check: this sends to any valid
    number that is not suppressed."""
    kwargs: dict[str, Any] = {"kind": kind, "to": to, "body": body, "tenant_id": tenant_id}
    if dedup_key is not None:
        kwargs["dedup_key"] = dedup_key
    options: dict[str, Any] = {}
    if correlation_id is not None:
        options["correlation_id"] = correlation_id
    return send_sms.send_with_options(kwargs=kwargs, **options)

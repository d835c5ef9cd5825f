"""The email API, pinned: a change here is a change for every host application."""

from __future__ import annotations

from _pytest.fixtures import FixtureFunctionDefinition

import gcmc_jobs.email
import gcmc_jobs.sending
import gcmc_jobs.testing
from gcmc_jobs.actors import send_email, send_security_email

PUBLIC = {
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
}


SENDING = {
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
}


def test_the_sending_helpers_export_exactly_their_public_names() -> None:
    assert set(gcmc_jobs.sending.__all__) == SENDING
    for name in SENDING:
        assert hasattr(gcmc_jobs.sending, name), name


def test_the_email_package_exports_exactly_its_public_names() -> None:
    assert set(gcmc_jobs.email.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(gcmc_jobs.email, name), name


def test_the_eight_kinds_are_registered() -> None:
    assert set(gcmc_jobs.email.KINDS) == {
        "welcome",
        "document_expiry_warning",
        "filing_reminder",
        "task_assignment",
        "service_request_update",
        "password_reset",
        "invoice",
        "custom",
    }


def test_the_email_actors_state_their_policy() -> None:
    assert (send_email.queue_name, send_security_email.queue_name) == (
        "gcmc_email",
        "gcmc_email_critical",
    )
    for actor in (send_email, send_security_email):
        assert {"max_retries", "min_backoff", "max_backoff", "time_limit", "throws"} <= set(
            actor.options
        )
    assert send_security_email.priority < send_email.priority


def test_the_pytest_plugin_exports_the_email_fixtures() -> None:
    for name in ("smtp_server", "gcmc_outbox"):
        assert name in gcmc_jobs.testing.__all__
        assert isinstance(getattr(gcmc_jobs.testing, name), FixtureFunctionDefinition), name

"""Payload models: every kind validates its sample; bad input is refused in the caller."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from gcmc_jobs import sending
from gcmc_jobs.email import KINDS, PAYLOADS, EmailPayload, PasswordReset, validate_payload
from gcmc_jobs.email.dedup_keys import windowed_key
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.sending import build_message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_valid_sample(kind: str) -> None:
    sample = KINDS[kind].model.sample()
    assert validate_payload(kind, sample.model_dump()) == sample


@pytest.mark.parametrize("bad", ["Jane\r\nBcc: evil@example.com", "Jane\nDoe", "Jane\x00"])
def test_a_control_character_in_a_subject_bound_field_is_refused(bad: str) -> None:
    data = KINDS["welcome"].model.sample().model_dump() | {"client_name": bad}
    with pytest.raises(InvalidPayload, match="client_name"):
        validate_payload("welcome", data)


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(InvalidPayload, match="known kinds: welcome"):
        validate_payload("newsletter", {})


def test_an_unknown_field_is_refused() -> None:
    data = KINDS["invoice"].model.sample().model_dump() | {"clientName": "Jane"}
    with pytest.raises(InvalidPayload, match="clientName"):
        validate_payload("invoice", data)


def test_a_digest_needs_at_least_one_item() -> None:
    data = KINDS["filing_reminder"].model.sample().model_dump() | {"items": []}
    with pytest.raises(InvalidPayload, match="items"):
        validate_payload("filing_reminder", data)


@pytest.mark.usefixtures("gcmc_broker")
def test_a_document_digest_needs_a_document_or_a_risk_change_refused_at_send() -> None:
    sample = KINDS["document_expiry_warning"].model.sample().model_dump(mode="json")
    # Documents only (a payload from before risk_changes), or risk changes only: valid
    del sample["risk_changes"]
    assert validate_payload("document_expiry_warning", sample).risk_changes == []  # type: ignore[attr-defined]
    changes_only = sample | {
        "items": [],
        "risk_changes": [
            {"client_name": "Jane Doe LLC", "previous_level": "low", "level": "high", "score": 45}
        ],
    }
    assert sending.queue_document_expiry_warning("sam@example.com", changes_only)
    # Neither: refused in the caller, saying what is missing
    with pytest.raises(InvalidPayload, match="at least one item or one risk change"):
        sending.queue_document_expiry_warning("sam@example.com", sample | {"items": []})
    bad = changes_only["risk_changes"][0] | {"level": "critical"}
    with pytest.raises(InvalidPayload, match=r"risk_changes\.0\.level"):
        validate_payload("document_expiry_warning", changes_only | {"risk_changes": [bad]})


def test_a_reset_link_never_prints() -> None:
    reset = PasswordReset.sample()
    token = reset.reset_url.get_secret_value()
    assert token not in repr(reset)
    assert token not in str(reset)
    assert "reset_url" not in reset.public_data()
    assert reset.secret_data() == {"reset_url": token}


def test_an_invalid_reset_link_error_does_not_echo_it() -> None:
    with pytest.raises(InvalidPayload) as caught:
        validate_payload(
            "password_reset",
            {"tenant_name": "Acme", "user_name": "Sam", "reset_url": "not-a-url-s3cr3t"},
        )
    assert "s3cr3t" not in str(caught.value)


def test_build_message_routes_a_password_reset_to_the_critical_queue() -> None:
    message = build_message(
        "password_reset", "Sam@Example.com", PasswordReset.sample(), tenant_id=7
    )
    assert message.queue_name == "gcmc_email_critical"
    assert message.actor_name == "send_security_email"
    assert message.options["rate_limit_key"] == "sam@example.com"
    assert message.options["rate_limit_class"] == "security"
    assert message.options["tenant_id"] == 7
    assert message.kwargs["dedup_key"].startswith(message.options["dedup_key"] + ":")
    assert "reset_url" not in message.kwargs["payload"]
    assert "token=" not in str(message)


def test_build_message_derives_the_same_key_for_the_same_email() -> None:
    data = KINDS["welcome"].model.sample()
    first = build_message("welcome", "jane@example.com", data, tenant_id=1)
    again = build_message("welcome", "JANE@example.com", data.model_dump(mode="json"), tenant_id=1)
    other = build_message("welcome", "jane@example.com", data, tenant_id=2)
    assert first.queue_name == "gcmc_email"
    assert first.options["rate_limit_class"] == "default"
    assert first.options["dedup_key"] == again.options["dedup_key"]
    assert first.options["dedup_key"] != other.options["dedup_key"]


def test_build_message_refuses_an_invalid_address() -> None:
    with pytest.raises(InvalidPayload, match=r"to: .*must be a bare email address"):
        build_message("welcome", "jane@", KINDS["welcome"].model.sample())


def test_the_registry_is_derived_from_the_payload_classes() -> None:
    assert list(KINDS) == [model.kind for model in PAYLOADS]
    for model in PAYLOADS:
        entry = KINDS[model.kind]
        assert (entry.name, entry.model, entry.critical) == (model.kind, model, model.critical)
    assert [name for name, entry in KINDS.items() if entry.critical] == ["password_reset"]


HELPERS = {
    "welcome": sending.queue_welcome_email,
    "document_expiry_warning": sending.queue_document_expiry_warning,
    "filing_reminder": sending.queue_filing_reminder,
    "task_assignment": sending.queue_task_assignment_email,
    "service_request_update": sending.queue_service_request_update_email,
    "password_reset": sending.queue_password_reset_email,
    "invoice": sending.queue_invoice_email,
    "custom": sending.queue_custom_email,
}


@pytest.mark.usefixtures("gcmc_broker")
@pytest.mark.parametrize("model", PAYLOADS, ids=lambda model: model.kind)
def test_each_helper_sends_its_payload_classs_kind_on_the_route_the_class_states(
    model: type[EmailPayload],
) -> None:
    message = HELPERS[model.kind]("jane@example.com", model.sample())

    assert message.kwargs["kind"] == model.kind
    expected = ("send_security_email", "gcmc_email_critical", "security")
    if not model.critical:
        expected = ("send_email", "gcmc_email", "default")
    assert (
        message.actor_name,
        message.queue_name,
        message.options["rate_limit_class"],
    ) == expected


@pytest.mark.parametrize(
    "bad",
    ["\x80", "\x85", "\x9b", "\x9f", "\u2028", "\u2029"],
    ids=["U+0080", "U+0085", "U+009B", "U+009F", "U+2028", "U+2029"],
)
def test_a_c1_control_or_a_unicode_line_separator_is_refused_in_every_text_field(
    bad: str,
) -> None:
    # Given a single-line field (subject-bound) and a free-text one, each with the character
    custom = KINDS["custom"].model.sample().model_dump()
    for field in ("subject", "body", "tenant_name"):
        # Then each is refused at validation, naming the field
        with pytest.raises(InvalidPayload, match=field):
            validate_payload("custom", custom | {field: f"Office{bad}closed"})
    item = KINDS["filing_reminder"].model.sample().model_dump()
    item["items"][0]["client_name"] = f"Jane{bad}Doe"
    with pytest.raises(InvalidPayload, match=r"items\.0\.client_name"):
        validate_payload("filing_reminder", item)


@pytest.mark.parametrize(
    "address",
    [
        '"a@b.c" <evil@x.com>',
        "Jane Doe <jane@example.com>",
        "<jane@example.com>",
        "jane@example.com, evil@x.com",
        '"jane doe"@example.com',
        "jane@[127.0.0.1]",
    ],
)
def test_only_a_bare_address_is_taken_as_a_recipient_naming_the_field(address: str) -> None:
    with pytest.raises(InvalidPayload, match=r"to: .*must be a bare email address"):
        build_message("welcome", address, KINDS["welcome"].model.sample())


def test_only_a_bare_address_is_taken_inside_a_payload_naming_the_field() -> None:
    data = KINDS["welcome"].model.sample().model_dump()
    with pytest.raises(InvalidPayload, match=r"support_email: .*bare email address"):
        validate_payload("welcome", data | {"support_email": '"a@b.c" <evil@x.com>'})
    with pytest.raises(InvalidPayload, match="support_email"):
        build_message(
            "welcome", "jane@example.com", data | {"support_email": "Help <help@acme.example>"}
        )


def test_addresses_are_normalised_once_lowercased_in_the_message_and_its_keys() -> None:
    # Given the same address written in two cases, with blanks around one
    payload = KINDS["welcome"].model.sample()
    upper = build_message("welcome", "  Mixed.Case@Example.COM ", payload)
    lower = build_message("welcome", "mixed.case@example.com", payload)
    # Then both messages carry the one normalised form, as recipient and in every key
    assert upper.kwargs["to"] == lower.kwargs["to"] == "mixed.case@example.com"
    assert upper.options["rate_limit_key"] == "mixed.case@example.com"
    assert upper.options["dedup_key"] == lower.options["dedup_key"]
    support = validate_payload(
        "welcome", payload.model_dump() | {"support_email": "Help@ACME.example"}
    )
    assert support.support_email == "help@acme.example"  # type: ignore[attr-defined]


def test_windowed_key_names_the_utc_start_of_its_window() -> None:
    day = 86_400_000
    noon = 1_764_590_400_000  # 2025-12-01T12:00:00Z
    assert windowed_key("k", now_ms=noon, window_ms=day) == "k:20251201T000000Z"
    assert windowed_key("k", now_ms=noon + 11 * 3_600_000, window_ms=day) == ("k:20251201T000000Z")
    assert windowed_key("k", now_ms=noon + 12 * 3_600_000, window_ms=day) == ("k:20251202T000000Z")
    assert windowed_key("k", now_ms=noon, window_ms=3_600_000) == "k:20251201T120000Z"


def test_the_default_key_is_recorded_per_window_and_an_explicit_key_once_ever() -> None:
    data = KINDS["custom"].model.sample()
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):
        first = build_message("custom", "jane@example.com", data)
        explicit = build_message("custom", "jane@example.com", data, dedup_key="notice:1")
    with time_machine.travel(datetime(2026, 12, 1, 23, 0, tzinfo=UTC), tick=False):
        same_day = build_message("custom", "jane@example.com", data)
    with time_machine.travel(datetime(2027, 1, 1, 9, 0, tzinfo=UTC), tick=False):
        month_later = build_message("custom", "jane@example.com", data)
        explicit_later = build_message("custom", "jane@example.com", data, dedup_key="notice:1")
    # The enqueue-time claim is the content's key, whenever it is sent
    assert first.options["dedup_key"] == same_day.options["dedup_key"]
    assert first.options["dedup_key"] == month_later.options["dedup_key"]
    # The logical email (email_log) is that key in its 24 h window (the default dedup TTL)
    assert first.kwargs["dedup_key"] == first.options["dedup_key"] + ":20261201T000000Z"
    assert same_day.kwargs["dedup_key"] == first.kwargs["dedup_key"]
    assert month_later.kwargs["dedup_key"] != first.kwargs["dedup_key"]
    # An explicit key is both, whenever: once ever
    for message in (explicit, explicit_later):
        assert message.options["dedup_key"] == message.kwargs["dedup_key"] == "notice:1"

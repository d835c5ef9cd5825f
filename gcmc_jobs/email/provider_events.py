"""The event webhooks of email providers, parsed into delivery events (issue 13, item 1).

One function per provider turns a request body that was already authenticated
(:mod:`gcmc_jobs.http.provider_signatures`) into :class:`~gcmc_jobs.services.bounces.
DeliveryEvent` values; :func:`gcmc_jobs.services.bounces.record_events` applies them.

=============  ==================================  =====================================
provider       hard bounce / complaint             soft bounce / deferred / delivered
=============  ==================================  =====================================
``ses``        ``Bounce`` ``Permanent``,           ``Bounce`` ``Transient`` /
               ``Complaint``                       ``Undetermined``, ``DeliveryDelay``,
                                                   ``Delivery``
``postmark``   ``HardBounce``, ``BadEmailAddress``,  other bounce types (``SoftBounce``,
               ``SpamComplaint``                   ``Transient``, ``DnsError``, …),
                                                   ``Delivery``
``sendgrid``   ``bounce`` (type ``bounce``),       ``bounce`` type ``blocked``,
               ``spamreport``                      ``deferred``, ``delivered``
``mailgun``    ``failed`` severity ``permanent``,  ``failed`` ``temporary`` (deferred),
               ``complained``                      ``delivered``
=============  ==================================  =====================================

Event ids: SES the SNS ``MessageId`` plus the recipient, Postmark its bounce ``ID`` (a
delivery has none: its ``MessageID`` plus the recipient), SendGrid ``sg_event_id``, Mailgun
``event-data.id``. Events a provider sends that say nothing about delivery (opens, clicks,
unsubscribes) are ignored. A body that is not what the provider sends raises
:class:`~gcmc_jobs.errors.InvalidPayload` naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gcmc_jobs.db.enums import EmailEventKind
from gcmc_jobs.email.bounce_codes import mailbox_does_not_exist
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.services.bounces import DeliveryEvent

__all__ = [
    "PARSERS",
    "PROVIDERS",
    "mailgun_events",
    "postmark_events",
    "sendgrid_events",
    "ses_events",
    "source_of",
]

#: The providers ``POST /hooks/email/{provider}`` accepts.
PROVIDERS = ("ses", "postmark", "sendgrid", "mailgun")

_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_POSTMARK_IGNORED = {"Subscribe", "Unsubscribe", "AutoResponder", "AddressChange", "OpenRelayTest"}


def source_of(provider: str) -> str:
    """The ``email_events.source`` of a provider's events (``provider:ses``)."""
    return f"provider:{provider}"


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayload(f"{what} must be a JSON object")
    return value


def _sub(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is an object, else an empty one (optional parts)."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{what} must be a non-empty string")
    return value


def _iso(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidPayload(f"{value!r} is not a time") from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _strip_id(value: Any) -> str | None:
    return value.strip().strip("<>").strip() or None if isinstance(value, str) else None


def _message_id(value: Any) -> str | None:
    """A Message-ID as ``email_log.provider_message_id`` holds it (with angle brackets)."""
    bare = _strip_id(value)
    return f"<{bare}>" if bare else None


# -- Amazon SES (through SNS) ------------------------------------------------------------------


def ses_events(notification: dict[str, Any]) -> list[DeliveryEvent]:
    """The events of one SNS ``Notification`` whose ``Message`` is an SES event
    (notifications, ``notificationType``, or event publishing, ``eventType``)."""
    sns_id = _str(notification.get("MessageId"), "MessageId")
    try:
        message = _obj(json.loads(_str(notification.get("Message"), "Message")), "Message")
    except ValueError:
        raise InvalidPayload("Message is not JSON") from None
    kind = message.get("notificationType") or message.get("eventType")
    mail = _sub(message, "mail")
    headers = {
        str(h.get("name", "")).lower(): h.get("value")
        for h in mail.get("headers") or []
        if isinstance(h, dict)
    }
    common = _sub(mail, "commonHeaders")
    dedup_key = headers.get("x-gcmc-dedup-key")
    message_id = _message_id(common.get("messageId") or headers.get("message-id"))

    def event(address: Any, kind: EmailEventKind, when: Any, **extra: Any) -> DeliveryEvent:
        addr = _str(address, "a recipient address").lower()
        return DeliveryEvent(
            source=source_of("ses"),
            event_id=f"{sns_id}:{addr}",
            address=addr,
            kind=kind,
            occurred_at=_iso(when),
            dedup_key=dedup_key if isinstance(dedup_key, str) else None,
            message_id=message_id,
            **extra,
        )

    if kind == "Bounce":
        bounce = _obj(message.get("bounce"), "bounce")
        hard = bounce.get("bounceType") == "Permanent"
        return [
            event(
                r.get("emailAddress"),
                EmailEventKind.BOUNCED,
                bounce.get("timestamp"),
                permanent=hard,
                detail=r.get("diagnosticCode") or r.get("status") or bounce.get("bounceSubType"),
            )
            for r in bounce.get("bouncedRecipients") or []
            if isinstance(r, dict)
        ]
    if kind == "Complaint":
        complaint = _obj(message.get("complaint"), "complaint")
        return [
            event(
                r.get("emailAddress"),
                EmailEventKind.COMPLAINED,
                complaint.get("timestamp"),
                detail=complaint.get("complaintFeedbackType"),
            )
            for r in complaint.get("complainedRecipients") or []
            if isinstance(r, dict)
        ]
    if kind == "Delivery":
        delivery = _obj(message.get("delivery"), "delivery")
        return [
            event(a, EmailEventKind.DELIVERED, delivery.get("timestamp"), detail=None)
            for a in delivery.get("recipients") or []
        ]
    if kind == "DeliveryDelay":
        delay = _obj(message.get("deliveryDelay"), "deliveryDelay")
        return [
            event(
                r.get("emailAddress"),
                EmailEventKind.DEFERRED,
                delay.get("timestamp"),
                detail=r.get("diagnosticCode") or delay.get("delayType"),
            )
            for r in delay.get("delayedRecipients") or []
            if isinstance(r, dict)
        ]
    return []


# -- Postmark ---------------------------------------------------------------------------------


def postmark_events(body: Any) -> list[DeliveryEvent]:
    """The event of one Postmark webhook (``RecordType`` ``Bounce``, ``SpamComplaint`` or
    ``Delivery``; others are ignored)."""
    record = _obj(body, "the body")
    record_type = record.get("RecordType")
    message_id = _strip_id(record.get("MessageID"))
    metadata = _sub(record, "Metadata")
    dedup_key = metadata.get("dedup_key") if isinstance(metadata.get("dedup_key"), str) else None
    if record_type == "Delivery":
        address = _str(record.get("Recipient"), "Recipient").lower()
        return [
            DeliveryEvent(
                source=source_of("postmark"),
                event_id=f"delivery:{message_id}:{address}",
                address=address,
                kind=EmailEventKind.DELIVERED,
                occurred_at=_iso(record.get("DeliveredAt")),
                detail=record.get("Details") or None,
                dedup_key=dedup_key,
                message_id=message_id,
            )
        ]
    if record_type not in ("Bounce", "SpamComplaint"):
        return []
    bounce_type = str(record.get("Type") or "")
    if bounce_type in _POSTMARK_IGNORED:
        return []
    complaint = record_type == "SpamComplaint" or bounce_type == "SpamComplaint"
    address = _str(record.get("Email"), "Email").lower()
    return [
        DeliveryEvent(
            source=source_of("postmark"),
            event_id=str(record.get("ID") or f"{record_type}:{message_id}:{address}"),
            address=address,
            kind=EmailEventKind.COMPLAINED if complaint else EmailEventKind.BOUNCED,
            occurred_at=_iso(record.get("BouncedAt")),
            permanent=None if complaint else bounce_type in _POSTMARK_HARD,
            detail=(record.get("Details") or record.get("Description") or bounce_type) or None,
            dedup_key=dedup_key,
            message_id=message_id,
        )
    ]


# -- SendGrid ---------------------------------------------------------------------------------


def sendgrid_events(body: Any) -> list[DeliveryEvent]:
    """The events of one SendGrid Event Webhook POST (a JSON array)."""
    if not isinstance(body, list):
        raise InvalidPayload("a SendGrid event webhook body is a JSON array")
    events = []
    for item in body:
        record = _obj(item, "each event")
        name = record.get("event")
        if name == "bounce":
            blocked = record.get("type") == "blocked"
            kind, permanent = EmailEventKind.BOUNCED, not blocked
        elif name == "spamreport":
            kind, permanent = EmailEventKind.COMPLAINED, None
        elif name == "deferred":
            kind, permanent = EmailEventKind.DEFERRED, None
        elif name == "delivered":
            kind, permanent = EmailEventKind.DELIVERED, None
        else:
            continue
        dedup_key = record.get("dedup_key")
        events.append(
            DeliveryEvent(
                source=source_of("sendgrid"),
                event_id=_str(record.get("sg_event_id"), "sg_event_id"),
                address=_str(record.get("email"), "email").lower(),
                kind=kind,
                occurred_at=_iso(record.get("timestamp")),
                permanent=permanent,
                detail=" ".join(str(x) for x in (record.get("status"), record.get("reason")) if x)
                or None,
                dedup_key=dedup_key if isinstance(dedup_key, str) else None,
                message_id=_message_id(record.get("smtp-id")),
            )
        )
    return events


# -- Mailgun ----------------------------------------------------------------------------------


def mailgun_events(body: Any) -> list[DeliveryEvent]:
    """The event of one Mailgun webhook (``{"signature": …, "event-data": …}``)."""
    data = _obj(_obj(body, "the body").get("event-data"), "event-data")
    name = data.get("event")
    if name == "failed":
        if data.get("severity") == "permanent":
            kind, permanent = EmailEventKind.BOUNCED, True
        else:
            kind, permanent = EmailEventKind.DEFERRED, None
    elif name == "complained":
        kind, permanent = EmailEventKind.COMPLAINED, None
    elif name == "delivered":
        kind, permanent = EmailEventKind.DELIVERED, None
    else:
        return []
    message = _sub(data, "message")
    headers = _sub(message, "headers")
    variables = _sub(data, "user-variables")
    status = _sub(data, "delivery-status")
    detail = " ".join(
        str(x)
        for x in (status.get("code"), status.get("message") or status.get("description"))
        if x
    )
    if permanent and status.get("code") is not None:
        # Mailgun says "permanent" for any 5xx: a full mailbox is a soft bounce here too.
        code = status.get("code")
        permanent = mailbox_does_not_exist(code if isinstance(code, int) else None, detail) or (
            data.get("reason") in ("bounce", "suppress-bounce")
        )
    dedup_key = variables.get("dedup_key")
    return [
        DeliveryEvent(
            source=source_of("mailgun"),
            event_id=_str(data.get("id"), "event-data.id"),
            address=_str(data.get("recipient"), "event-data.recipient").lower(),
            kind=kind,
            occurred_at=_iso(data.get("timestamp")),
            permanent=permanent,
            detail=detail or None,
            dedup_key=dedup_key if isinstance(dedup_key, str) else None,
            message_id=_message_id(headers.get("message-id")),
        )
    ]


#: Each provider's parser of an authenticated body (already decoded from JSON; for SES the SNS
#: envelope).
PARSERS: dict[str, Callable[[Any], list[DeliveryEvent]]] = {
    "ses": ses_events,
    "postmark": postmark_events,
    "sendgrid": sendgrid_events,
    "mailgun": mailgun_events,
}

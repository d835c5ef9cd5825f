"""Turn digests into validated email messages and enqueue them in bulk.

Each :class:`~gcmc_jobs.services.digests.Digest` becomes one ``document_expiry_warning`` or
``filing_reminder`` message built by the :data:`EmailMessageFactory` the caller passes (the
actors layer passes :func:`gcmc_jobs.actors.email.email_message`: the payload is validated
here, in the scheduler, not later in a worker), keyed by the digest's dedup key, and all of a
run's messages go out in one :func:`gcmc_jobs.brokers.bulk.enqueue_many` call. Scheduling
receives that factory rather than importing the actors, which sit above it.

A digest longer than the email kinds accept (1,000 items, or 1,000 risk-level changes) is
split into parts; each part after the first has its own dedup key (``…:part2``), so a re-run
still sends each part once. A ``document_expiry_warning`` digest's risk-level changes
(``Digest.risk_changes``) travel as the payload's ``risk_changes``, each linking to its
client in the portal (``<portal_url>/clients/<id>``); a digest of changes only is one email
whose ``items`` is empty.

An SMS digest (``digest.channel`` SMS: the same alerts for those who opted in to them by
text) becomes one ``send_sms`` message, its body a summary of the items
(:func:`gcmc_jobs.sms.bodies.alert_body`), built by the :data:`SmsMessageFactory` given
(``sms_message`` of the actors); without one, SMS digests are refused
(:class:`~gcmc_jobs.errors.ConfigurationError`), never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import dramatiq

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.scheduling.jobs import DigestSender, SentDigests
from gcmc_jobs.services.digests import Digest
from gcmc_jobs.services.recipients import Channel
from gcmc_jobs.sms.bodies import alert_body

__all__ = [
    "MAX_ITEMS_PER_EMAIL",
    "EmailMessageFactory",
    "SmsMessageFactory",
    "digest_messages",
    "digest_sender",
]

#: Items one digest email may list (the email kinds' limit).
MAX_ITEMS_PER_EMAIL = 1_000


def _document_item(item: dict[str, Any], portal_url: str) -> dict[str, Any]:
    return {
        "title": item["title"],
        "client_name": item["client_name"],
        "document_type": item["document_type"],
        "expiry_date": item["expiry_date"],
        "days_left": item["days_left"],
        "url": f"{portal_url}/documents/{item['document_id']}",
    }


def _filing_item(item: dict[str, Any], portal_url: str) -> dict[str, Any]:
    return {
        "filing_type": item["filing_type"],
        "client_name": item["client_name"],
        "due_date": item["due_date"],
        "days_until_due": item["days_left"],
        "period_end": item["period_end"],
        "url": f"{portal_url}/filings/{item['filing_id']}",
    }


def _risk_change(change: dict[str, Any], portal_url: str) -> dict[str, Any]:
    return {
        "client_name": change["client_name"],
        "previous_level": change["previous_level"],
        "level": change["level"],
        "score": change["score"],
        "url": f"{portal_url}/clients/{change['client_id']}",
    }


_ITEMS = {"document_expiry_warning": _document_item, "filing_reminder": _filing_item}


class EmailMessageFactory(Protocol):
    """Builds a validated, not yet enqueued email message (``email_message`` of the actors)."""

    def __call__(
        self,
        kind: str,
        to: str,
        payload: dict[str, Any],
        *,
        tenant_id: int | str | None = None,
        dedup_key: str | None = None,
    ) -> dramatiq.Message[Any]: ...


class SmsMessageFactory(Protocol):
    """Builds a validated, not yet enqueued SMS message (``sms_message`` of the actors);
    ``check_phone=False`` leaves the number to the worker, which fails that SMS alone when
    the number is invalid."""

    def __call__(
        self,
        kind: str,
        to: str,
        body: str,
        *,
        tenant_id: int | str | None = None,
        dedup_key: str | None = None,
        check_phone: bool = True,
    ) -> dramatiq.Message[Any]: ...


def digest_messages(
    digests: Sequence[Digest],
    *,
    portal_url: str,
    build_message: EmailMessageFactory,
    build_sms: SmsMessageFactory | None = None,
) -> list[dramatiq.Message[Any]]:
    """One validated, not yet enqueued, email message per digest (or per part), and one SMS
    message per SMS digest."""
    portal_url = portal_url.rstrip("/")
    messages = []
    for digest in digests:
        if digest.channel is Channel.SMS:
            if build_sms is None:
                raise ConfigurationError("SMS digests need an SMS message factory (build_sms)")
            body = alert_body(
                digest.kind,
                tenant_name=digest.tenant_name,
                items=digest.items,
                portal_url=portal_url,
                risk_changes=len(digest.risk_changes),
            )
            messages.append(
                build_sms(
                    digest.kind,
                    digest.to,
                    body,
                    tenant_id=digest.tenant_id,
                    dedup_key=digest.dedup_key,
                    check_phone=False,
                )
            )
            continue
        to_item = _ITEMS[digest.kind]
        items = [to_item(item, portal_url) for item in digest.items]
        changes = [_risk_change(change, portal_url) for change in digest.risk_changes]
        longest = max(len(items), len(changes), 1)
        for part, start in enumerate(range(0, longest, MAX_ITEMS_PER_EMAIL), start=1):
            payload: dict[str, Any] = {
                "tenant_name": digest.tenant_name,
                "recipient_name": digest.name,
                "portal_url": portal_url,
                "items": items[start : start + MAX_ITEMS_PER_EMAIL],
            }
            if changes[start : start + MAX_ITEMS_PER_EMAIL]:
                payload["risk_changes"] = changes[start : start + MAX_ITEMS_PER_EMAIL]
            key = digest.dedup_key if part == 1 else f"{digest.dedup_key}:part{part}"
            messages.append(
                build_message(
                    digest.kind, digest.to, payload, tenant_id=digest.tenant_id, dedup_key=key
                )
            )
    return messages


def digest_sender(
    broker: dramatiq.Broker,
    *,
    portal_url: str,
    build_message: EmailMessageFactory,
    build_sms: SmsMessageFactory | None = None,
) -> DigestSender:
    """A :data:`~gcmc_jobs.scheduling.jobs.DigestSender` that builds each digest's message
    with ``build_message`` (an SMS digest's with ``build_sms``) and bulk-enqueues them on
    ``broker``."""

    def send(digests: Sequence[Digest]) -> SentDigests:
        messages = digest_messages(
            digests, portal_url=portal_url, build_message=build_message, build_sms=build_sms
        )
        result = enqueue_many(broker, messages)
        return SentDigests(queued=len(result.enqueued), duplicates=result.duplicates)

    return send

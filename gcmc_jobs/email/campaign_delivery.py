"""Sending one campaign email, at most once per campaign and address: the domain side of the
campaign actor.

In one transaction, holding the recipient's row: read the campaign and the recipient
(:func:`~gcmc_jobs.services.campaigns.load_for_send`); stop unless the campaign is
``running`` (a ``paused`` one puts the row back to waiting, so a resume sends it); skip an
address that opted out or is suppressed (counted as such); render; record and claim the
``email_log`` row of the key ``campaign:<id>:<address>`` (:mod:`gcmc_jobs.services.email_log`,
the mechanism every email uses: a key that was sent is never mailed again, whichever message
carries it); hand the message to the transport; record the outcome on both rows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from gcmc_jobs.db.enums import CampaignRecipientStatus, CampaignStatus
from gcmc_jobs.email.addresses import normalize_address
from gcmc_jobs.email.campaigns import KIND, build_campaign_mime, render_campaign
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.email.unsubscribe import make_token
from gcmc_jobs.errors import (
    InvalidPayload,
    PermanentDeliveryError,
    PermanentError,
    TransientError,
)
from gcmc_jobs.services import campaigns, email_log

__all__ = ["CampaignOutcome", "CampaignSender", "campaign_email_key", "deliver_campaign_email"]

_R = CampaignRecipientStatus


class CampaignOutcome(enum.StrEnum):
    """What :func:`deliver_campaign_email` did."""

    SENT = "sent"
    #: The recipient was already done (sent, skipped, or a failure recorded).
    ALREADY_DONE = "already_done"
    #: The campaign is paused: nothing sent, the recipient waits for a resume.
    HELD = "held"
    #: The campaign is cancelled or finished (or gone): nothing sent.
    STOPPED = "stopped"
    SUPPRESSED = "suppressed"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class CampaignSender:
    """What a campaign email needs from the settings: the From address, the unsubscribe
    secret and URLs, the portal and support addresses, the templates override."""

    sender: str
    secret: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None = None
    portal_url: str = ""
    support_email: str = ""
    templates_dir: str | None = None


def campaign_email_key(campaign_id: int, address: str) -> str:
    """The ``email_log`` key of a campaign's email to ``address``: once ever."""
    return f"campaign:{campaign_id}:{address.lower()}"[:255]


def deliver_campaign_email(
    engine: Engine,
    transport: Transport,
    sender: CampaignSender,
    *,
    campaign_id: int,
    recipient_id: int,
    final_attempt: bool = True,
    now: datetime | None = None,
) -> CampaignOutcome:
    """Send recipient ``recipient_id`` of ``campaign_id`` its email (see the module docstring).

    Raises :class:`~gcmc_jobs.errors.TransientDeliveryError` (the row stays ``queued``,
    unless ``final_attempt``: then ``failed``) or a permanent error (the row is ``failed``).
    """
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            row = campaigns.load_for_send(connection, campaign_id, recipient_id)
            if row is None:
                return CampaignOutcome.STOPPED
            if row.status not in (_R.QUEUED, _R.FAILED):
                return CampaignOutcome.ALREADY_DONE
            if row.campaign_status is CampaignStatus.PAUSED:
                campaigns.release_recipient(connection, recipient_id)
                transaction.commit()
                return CampaignOutcome.HELD
            if row.campaign_status is not CampaignStatus.RUNNING:
                return CampaignOutcome.STOPPED
            if row.unsubscribed or row.suppressed:
                status = _R.UNSUBSCRIBED if row.unsubscribed else _R.SUPPRESSED
                campaigns.mark_recipient(connection, recipient_id, status)
                transaction.commit()
                return CampaignOutcome(status.value)
            key = campaign_email_key(campaign_id, row.address)
            try:
                to = normalize_address(row.address, field="address")
                token = make_token(
                    sender.secret,
                    tenant_id=row.tenant_id,
                    campaign_id=campaign_id,
                    address=to,
                )
                url = f"{sender.unsubscribe_url.rstrip('/')}/{token}"
                rendered = render_campaign(
                    row.subject_template,
                    row.body_template,
                    {
                        "recipient_name": row.name or to,
                        "recipient_email": to,
                        "tenant_name": row.tenant_name,
                        "campaign_name": row.campaign_name,
                        "portal_url": sender.portal_url,
                        "support_email": sender.support_email,
                        "unsubscribe_url": url,
                    },
                    templates_dir=sender.templates_dir,
                )
                message = build_campaign_mime(
                    rendered,
                    to=to,
                    sender=sender.sender,
                    dedup_key=key,
                    unsubscribe_url=url,
                    unsubscribe_mailto=sender.unsubscribe_mailto,
                )
            except (InvalidPayload, PermanentError) as exc:
                # A client's address the platform took but we cannot mail (a display name,
                # an IP literal), or a template that fails on this recipient's data: this
                # recipient fails, the campaign goes on.
                campaigns.mark_recipient(
                    connection, recipient_id, _R.FAILED, error=f"{type(exc).__name__}: {exc}"
                )
                transaction.commit()
                return CampaignOutcome.ALREADY_DONE
            email_log.ensure_queued(
                connection,
                dedup_key=key,
                to_address=to,
                kind=KIND,
                subject=rendered.subject,
                tenant_id=row.tenant_id,
            )
            if not email_log.claim(connection, key):
                campaigns.mark_recipient(connection, recipient_id, _R.SENT, now=now)
                transaction.commit()
                return CampaignOutcome.ALREADY_DONE
            try:
                provider_id = transport.send(message)
            except (PermanentError, PermanentDeliveryError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                email_log.mark_failed(connection, key, error)
                campaigns.mark_recipient(connection, recipient_id, _R.FAILED, error=error)
                transaction.commit()
                raise
            except TransientError as exc:
                error = f"{type(exc).__name__}: {exc}"
                email_log.note_error(connection, key, error, final_attempt=final_attempt)
                if final_attempt:
                    campaigns.mark_recipient(connection, recipient_id, _R.FAILED, error=error)
                transaction.commit()
                raise
            email_log.mark_sent(connection, key, provider_id)
            campaigns.mark_recipient(connection, recipient_id, _R.SENT, now=now)
            transaction.commit()
            return CampaignOutcome.SENT
        finally:
            if transaction.is_active:
                transaction.rollback()

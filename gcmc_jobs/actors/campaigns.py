"""The campaign actors, both on their own low-priority queue ``queues.CAMPAIGNS``:

* ``dispatch_campaign(campaign_id, dispatcher)``: the campaign's pacer. Each run hands out
  one second's worth of recipients at the campaign's rate
  (:func:`~gcmc_jobs.services.campaigns.next_batch`), enqueues their messages in bulk
  (:func:`~gcmc_jobs.brokers.bulk.enqueue_many`) and sends itself again, delayed by the time
  those take at the rate. It stops when the campaign is no longer ``running``, or when a
  newer chain (a resume) took over (``dispatcher`` is the chain's id, kept on the campaign).
* ``send_campaign_email(campaign_id, recipient_id, dispatch)``: one email
  (:func:`~gcmc_jobs.email.campaign_delivery.deliver_campaign_email`), which checks the
  campaign's status before sending. Its dedup key names the dispatch
  (``campaign:<id>:<recipient>:<n>``), so a recipient held back by a pause is dispatched
  again after the resume; the ``email_log`` key ``campaign:<id>:<address>`` keeps it from
  being mailed twice.

Transactional mail keeps priority: campaign mail is on another queue, with the lowest
actor priority (200: the email actors have 100 and 0), and at most two batches of it wait
in the queue at any time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import dramatiq

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.attempts import counted, current_options, is_final_attempt
from gcmc_jobs.brokers import actor
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.email.campaign_delivery import CampaignSender, deliver_campaign_email
from gcmc_jobs.errors import ConfigurationError, PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware.metrics import email_sent
from gcmc_jobs.runtime import current
from gcmc_jobs.services import campaigns
from gcmc_jobs.settings import Settings

__all__ = ["campaign_sender", "dispatch_campaign", "send_campaign_email"]

logger = get_logger("gcmc_jobs.actors.campaigns")


def campaign_sender(settings: Settings) -> CampaignSender:
    """What campaign email needs from ``settings``; a
    :class:`~gcmc_jobs.errors.ConfigurationError` when ``GCMC_JOBS_CAMPAIGN_SECRET`` is unset."""
    if settings.campaign_secret is None:
        raise ConfigurationError(
            "GCMC_JOBS_CAMPAIGN_SECRET is not set: campaign email carries signed unsubscribe "
            "links and cannot be sent without it (at least 16 characters)"
        )
    return CampaignSender(
        sender=settings.email_from,
        secret=settings.campaign_secret.get_secret_value(),
        unsubscribe_url=settings.campaign_unsubscribe_url,
        unsubscribe_mailto=settings.campaign_unsubscribe_mailto,
        portal_url=settings.portal_url,
        support_email=settings.support_email,
        templates_dir=settings.email_templates_dir,
    )


def _dispatch(campaign_id: int, dispatcher: str) -> None:
    runtime = current()
    now = datetime.now(UTC)
    broker = runtime.broker
    with runtime.engine.begin() as connection:
        batch = campaigns.next_batch(
            connection,
            campaign_id,
            dispatcher=dispatcher,
            limit=runtime.settings.campaign_batch_size,
            now=now,
        )
        messages = [
            send_campaign_email.message_with_options(
                kwargs={"campaign_id": campaign_id, "recipient_id": rid, "dispatch": n},
                dedup_key=f"campaign:{campaign_id}:{rid}:{n}",
                rate_limit_key=address,
                tenant_id=batch.tenant_id,
            )
            for rid, address, n in batch.recipients
        ]
        # Enqueued before the rows' dispatch commits: a failure rolls the batch back and
        # this message is retried; a commit that fails after leaves messages whose rows are
        # handed out again later, and email_log keeps each address to one email.
        if messages:
            enqueue_many(broker, messages)
    log = logger.bind(campaign_id=campaign_id, dispatched=len(messages))
    if batch.state == "dispatch":
        dispatch_campaign.send_with_options(args=(campaign_id, dispatcher), delay=batch.period_ms)
        log.debug("campaign_dispatched", next_in_ms=batch.period_ms)
    else:
        log.info("campaign_" + ("finished" if batch.state == "finished" else "dispatch_stopped"))


def _send(campaign_id: int, recipient_id: int, dispatch: int = 1) -> None:
    runtime = current()
    declared = runtime.broker.get_actor(SEND_ACTOR)
    log = logger.bind(campaign_id=campaign_id, recipient_id=recipient_id, dispatch=dispatch)
    with counted(
        partial(email_sent, "campaign"),
        log,
        failed="campaign_email_failed",
        retry="campaign_email_retry",
    ):
        outcome = deliver_campaign_email(
            runtime.engine,
            runtime.email_transport,
            campaign_sender(runtime.settings),
            campaign_id=campaign_id,
            recipient_id=recipient_id,
            final_attempt=is_final_attempt(current_options(), declared),
        )
    email_sent("campaign", outcome.value)
    log.debug("campaign_email_" + outcome.value)


DISPATCH_ACTOR = "dispatch_campaign"
SEND_ACTOR = "send_campaign_email"

#: The pacer: quick retries (a database hiccup must not stall a campaign for long).
dispatch_campaign: dramatiq.Actor[Any, Any] = actor(
    actor_name=DISPATCH_ACTOR,
    queue_name=queues.CAMPAIGNS,
    priority=150,
    max_retries=20,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
    throws=(PermanentError,),
)(_dispatch)

#: One campaign email: retried like bulk email (8 retries, 5 s to 10 min), never a
#: permanent error (a 5xx: the recipient is ``failed`` and the message dead-lettered).
send_campaign_email: dramatiq.Actor[Any, Any] = actor(
    actor_name=SEND_ACTOR,
    queue_name=queues.CAMPAIGNS,
    priority=200,
    max_retries=8,
    min_backoff=5_000,
    max_backoff=600_000,
    time_limit=120_000,
    throws=(PermanentError,),
)(_send)

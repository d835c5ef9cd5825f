"""Webhook actors: the dispatcher (every minute, and after a change that wrote events) and one
delivery attempt per message.

``dispatch_webhooks`` fans new events out to their endpoints' deliveries
(:func:`~gcmc_jobs.services.webhook_deliveries.fan_out`), frees the deliveries of workers
that died mid-attempt, and sends one ``deliver_webhook`` message per due delivery. Each
``deliver_webhook`` claims its delivery (so a duplicate message does nothing), POSTs it,
records the attempt, and schedules the next attempt as a delayed message of its own; the
dispatcher finds a retry whose message was lost when it falls due. A delivery that fails for
the whole retry window (``GCMC_JOBS_WEBHOOK_RETRY_WINDOW_MS``, 3 days) disables its
endpoint, and the tenant's owners get an email and an in-app notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from periodiq import cron

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.email import email_call, send_email
from gcmc_jobs.brokers import actor
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.services import webhook_deliveries as deliveries
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.webhooks.delivery import AttemptResult, attempt_delivery

__all__ = ["DispatchResult", "deliver_webhook", "dispatch", "dispatch_webhooks", "retry_policy"]

log = get_logger("gcmc_jobs.webhooks")

#: Events fanned out, and due deliveries sent, per dispatcher transaction.
BATCH = 1_000


@dataclass(frozen=True)
class DispatchResult:
    """What one :func:`dispatch` did."""

    deliveries_created: int
    released: int
    sent: int


def retry_policy(runtime: Runtime) -> deliveries.RetryPolicy:
    """The retry schedule of ``runtime``'s settings."""
    s = runtime.settings
    return deliveries.RetryPolicy(
        base_ms=s.webhook_retry_base_ms, window_ms=s.webhook_retry_window_ms
    )


def dispatch(runtime: Runtime, *, now: datetime | None = None) -> DispatchResult:
    """Fan out every pending event, free expired claims, and send one ``deliver_webhook``
    message per due delivery. A constant number of statements per batch of
    :data:`BATCH`."""
    created = released = 0
    with session_scope(runtime.engine) as session:
        released = deliveries.release_expired(session, now=now)
    while True:
        with session_scope(runtime.engine) as session:
            made = deliveries.fan_out(session, now=now, limit=BATCH)
        created += made
        if made < BATCH:
            break
    with session_scope(runtime.engine) as session:
        due = deliveries.due_deliveries(session, now=now, limit=10 * BATCH)
    for delivery_id in due:
        deliver_webhook.send(delivery_id)
    result = DispatchResult(created, released, len(due))
    if created or released or due:
        log.info("webhooks.dispatched", **result.__dict__)
    return result


@actor(
    queue_name=queues.WEBHOOKS,
    periodic=cron("* * * * *"),
    max_retries=0,  # the next minute's run replaces a failed one
    time_limit=120_000,
)
def dispatch_webhooks() -> None:
    """Fan out new webhook events and send their due deliveries (every minute; also sent
    after a change that wrote events)."""
    dispatch(current())


@actor(
    queue_name=queues.WEBHOOKS,
    # Retries here cover a database error around the attempt; the HTTP failures are the
    # delivery schedule's (a delayed message of its own), not Dramatiq's.
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=120_000,
    throws=(PermanentError,),
)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt of webhook delivery ``delivery_id``, if it is due and nobody else has it."""
    runtime = current()
    result = attempt_delivery(
        runtime.engine, runtime.webhook_client, delivery_id, policy=retry_policy(runtime)
    )
    after_attempt(runtime, result)


def after_attempt(runtime: Runtime, result: AttemptResult) -> None:
    """Log an attempt, schedule its retry, and email the owners when it disabled the
    endpoint."""
    delivery, outcome, response = result.delivery, result.outcome, result.response
    if delivery is None or outcome is None:
        return
    bound = log.bind(
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        tenant_id=delivery.tenant_id,
        event_type=delivery.event_type,
        status=outcome.status,
    )
    if response is not None:
        bound = bound.bind(
            status_code=response.status, latency_ms=response.latency_ms, error=response.error
        )
    if outcome.retry_at is not None:
        delay = max(0, int((outcome.retry_at - utcnow()).total_seconds() * 1000))
        deliver_webhook.send_with_options(args=(delivery.id,), delay=delay)
        bound.info("webhooks.retry_scheduled", retry_at=outcome.retry_at.isoformat())
    elif outcome.status == deliveries.SUCCEEDED:
        bound.info("webhooks.delivered")
    else:
        bound.warning("webhooks.failed")
    if outcome.endpoint_disabled:
        _email_owners(runtime, delivery, outcome)


def _email_owners(
    runtime: Runtime, delivery: deliveries.Delivery, outcome: deliveries.Outcome
) -> None:
    body = deliveries.disabled_email_text(delivery)
    for address, name in outcome.owners:
        kwargs, options = email_call(
            "custom",
            address,
            {
                "tenant_name": outcome.tenant_name or "",
                "subject": "A webhook endpoint was disabled",
                "body": body,
                "recipient_name": name or None,
            },
            delivery.tenant_id,
            f"webhook_endpoint_disabled:{delivery.endpoint_id}:{delivery.id}:{address}",
            None,
        )
        send_email.send_with_options(kwargs=kwargs, **options)
    log.warning(
        "webhooks.endpoint_disabled",
        endpoint_id=delivery.endpoint_id,
        tenant_id=delivery.tenant_id,
        owners_emailed=len(outcome.owners),
    )

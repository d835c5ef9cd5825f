"""One attempt of one webhook delivery: claim it, sign and POST it, record what happened.

The HTTP request runs between two short transactions (the claim, then the record), never
inside one: a slow endpoint holds no database connection. The signature is made at each
attempt (its ``webhook-timestamp`` is the attempt's), with the event's ``webhook-id`` and
the same body every time.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.services import webhook_deliveries as deliveries
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.webhooks.client import Response, WebhookClient
from gcmc_jobs.webhooks.signing import signed_headers

__all__ = ["AttemptResult", "attempt_delivery"]


@dataclass(frozen=True)
class AttemptResult:
    """What :func:`attempt_delivery` did: nothing (``delivery`` None: not due or taken by
    another worker), or one attempt with its response and outcome."""

    delivery: deliveries.Delivery | None
    response: Response | None = None
    outcome: deliveries.Outcome | None = None


def attempt_delivery(
    engine: Engine,
    client: WebhookClient,
    delivery_id: int,
    *,
    policy: deliveries.RetryPolicy,
    now: datetime | None = None,
    lease_ms: int = 600_000,
) -> AttemptResult:
    """Claim delivery ``delivery_id`` if it is due, POST it, record the attempt."""
    with session_scope(engine) as session:
        delivery = deliveries.claim(session, delivery_id, now=now or utcnow(), lease_ms=lease_ms)
    if delivery is None:
        return AttemptResult(None)
    if not delivery.endpoint_enabled:
        with session_scope(engine) as session:
            outcome = deliveries.fail_without_attempt(session, delivery, "endpoint disabled")
        return AttemptResult(delivery, None, outcome)
    body = deliveries.body_of(delivery)
    headers = signed_headers(delivery.secret, delivery.event_id, int(_time.time()), body)
    response = client.post(delivery.url, body, headers)
    with session_scope(engine) as session:
        outcome = deliveries.record_attempt(
            session,
            delivery,
            status_code=response.status,
            latency_ms=response.latency_ms,
            response_body=response.kept_body if response.status is not None else None,
            error=response.error,
            policy=policy,
            now=utcnow() if now is None else now,
        )
    return AttemptResult(delivery, response, outcome)

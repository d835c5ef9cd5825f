"""Webhook deliveries: fan-out, claims, the record of every attempt, retries, replay.

A delivery is one (event, endpoint) pair; its ``status``:

- ``pending``: due at ``next_attempt_at`` (a new delivery: at once; a retry: later);
- ``sending``: claimed by one worker until ``next_attempt_at`` (a lease: a worker that died
  leaves it to be claimed again, :func:`release_expired`);
- ``succeeded``: the endpoint answered 2xx;
- ``failed``: given up (retried for the retry window, about three days, or its endpoint
  was disabled). :func:`replay` makes failed deliveries pending again.

Every HTTP attempt is a ``webhook_attempts`` row (status code, latency, the first 1,024
bytes of the response body or the error). The retry schedule is :class:`RetryPolicy`:
exponential, times 4 from ``base_ms`` and capped at 12 hours, until the window since the first
attempt is spent; then the endpoint is disabled and the tenant's owners told (in-app here,
by email from the actor: :class:`Outcome` lists them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    String,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import concat, insert_for
from gcmc_jobs.db.enums import Role
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import UnknownWebhookEndpoint
from gcmc_jobs.services.notifications import insert_notifications
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.services.webhook_endpoints import get_endpoint
from gcmc_jobs.services.webhook_events import new_event_id

__all__ = [
    "Attempt",
    "Delivery",
    "Outcome",
    "RetryPolicy",
    "attempts_of",
    "body_of",
    "claim",
    "counts_by_status",
    "create_test_delivery",
    "disabled_email_text",
    "due_deliveries",
    "fail_without_attempt",
    "fan_out",
    "get_delivery",
    "list_deliveries",
    "record_attempt",
    "release_expired",
    "replay",
]

PENDING, SENDING, SUCCEEDED, FAILED = "pending", "sending", "succeeded", "failed"
#: The delivery statuses, in their order of life.
STATUSES = (PENDING, SENDING, SUCCEEDED, FAILED)

#: The longest wait between two attempts.
MAX_DELAY = timedelta(hours=12)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failing delivery again: ``base_ms`` * 4^(n-1) after the n-th failure,
    capped at 12 hours, while the next attempt falls within ``window_ms`` of the first."""

    base_ms: int = 5_000
    window_ms: int = 259_200_000  # 3 days

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failed attempt (1 = the first)."""
        exponent = min(max(failures - 1, 0), 30)
        return min(timedelta(milliseconds=self.base_ms * 4**exponent), MAX_DELAY)

    def next_attempt(self, first: datetime, now: datetime, failures: int) -> datetime | None:
        """When to try again, or None: give up (the window since ``first`` is spent)."""
        at = now + self.delay(failures)
        return at if at - first <= timedelta(milliseconds=self.window_ms) else None


@dataclass(frozen=True)
class Delivery:
    """One delivery with what sending it needs (the secret included: never show it)."""

    id: int
    tenant_id: Id
    endpoint_id: int
    url: str
    secret: str
    endpoint_enabled: bool
    event_id: str
    event_type: str
    payload: dict[str, Any]
    event_created_at: datetime
    status: str
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the secret."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "endpoint_id": self.endpoint_id,
            "url": self.url,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Attempt:
    """One recorded HTTP attempt of a delivery."""

    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response_body: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "attempted_at": _iso(self.attempted_at),
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "response_body": self.response_body,
            "error": self.error,
        }


@dataclass(frozen=True)
class Outcome:
    """What :func:`record_attempt` decided."""

    status: str
    #: When the next attempt is due (a retry), else None.
    retry_at: datetime | None = None
    #: True when this failure disabled the endpoint (the owners were notified in-app).
    endpoint_disabled: bool = False
    #: The active owners to email about the disabled endpoint: (address, name).
    owners: list[tuple[str, str]] = field(default_factory=list)
    tenant_name: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def body_of(delivery: Delivery) -> bytes:
    """The request body: ``{"type", "timestamp", "data"}`` (Standard Webhooks' payload
    shape), compact JSON; the same bytes on every attempt."""
    created = delivery.event_created_at
    return json.dumps(
        {
            "type": delivery.event_type,
            "timestamp": created.isoformat().replace("+00:00", "Z"),
            "data": delivery.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    ).encode()


def fan_out(session: Session, *, now: datetime | None = None, limit: int = 1_000) -> int:
    """Make one ``pending`` delivery per (event not yet fanned out, enabled endpoint of its
    tenant subscribed to its type), for up to ``limit`` events; returns the deliveries made.
    Two statements whatever the numbers: mark the events (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, so two dispatchers take different events), then one ``INSERT … SELECT``.
    """
    now = now or utcnow()
    t = tables_of(session)
    events, endpoints, deliveries = t.webhook_events, t.webhook_endpoints, t.webhook_deliveries
    batch = (
        select(events.c.id)
        .where(events.c.fanned_out_at.is_(None))
        .order_by(events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = session.scalars(
        update(events)
        .where(events.c.id.in_(batch.scalar_subquery()))
        .values(fanned_out_at=now)
        .returning(events.c.id)
    ).all()
    if not ids:
        return 0
    subscribed = or_(
        endpoints.c.event_types == "*",
        concat(" ", endpoints.c.event_types, " ").like(concat("% ", events.c.event_type, " %")),
    )
    rows = (
        select(
            events.c.id,
            endpoints.c.id,
            events.c.tenant_id,
            literal(PENDING, String),
            literal(now, deliveries.c.next_attempt_at.type),
            literal(now, deliveries.c.created_at.type),
        )
        .select_from(events)
        .join(
            endpoints,
            and_(
                endpoints.c.tenant_id == events.c.tenant_id,
                endpoints.c.enabled.is_(true()),
                subscribed,
            ),
        )
        .where(events.c.id.in_(ids))
    )
    result = session.execute(
        insert_for(session)(deliveries)
        .from_select(
            [
                deliveries.c.event_id,
                deliveries.c.endpoint_id,
                deliveries.c.tenant_id,
                deliveries.c.status,
                deliveries.c.next_attempt_at,
                deliveries.c.created_at,
            ],
            rows,
            include_defaults=False,
        )
        .on_conflict_do_nothing(index_elements=[deliveries.c.event_id, deliveries.c.endpoint_id])
        .returning(deliveries.c.id)
    )
    return len(result.all())


def release_expired(session: Session, *, now: datetime | None = None) -> int:
    """Make ``sending`` deliveries whose lease ended (their worker died) ``pending`` again;
    returns how many. One statement."""
    d = tables_of(session).webhook_deliveries
    result = session.execute(
        update(d)
        .where(d.c.status == SENDING, d.c.next_attempt_at <= (now or utcnow()))
        .values(status=PENDING)
        .returning(d.c.id)
    )
    return len(result.all())


def due_deliveries(
    session: Session, *, now: datetime | None = None, limit: int = 1_000
) -> list[int]:
    """The ids of up to ``limit`` pending deliveries due at ``now``, oldest due first."""
    d = tables_of(session).webhook_deliveries
    return list(
        session.scalars(
            select(d.c.id)
            .where(d.c.status == PENDING, d.c.next_attempt_at <= (now or utcnow()))
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
    )


def _delivery_query(session: Session) -> Any:
    t = tables_of(session)
    d, e, ep = t.webhook_deliveries, t.webhook_events, t.webhook_endpoints
    return (
        select(
            d.c.id,
            d.c.tenant_id,
            d.c.endpoint_id,
            ep.c.url,
            ep.c.secret,
            ep.c.enabled.label("endpoint_enabled"),
            e.c.event_id,
            e.c.event_type,
            e.c.payload,
            e.c.created_at.label("event_created_at"),
            d.c.status,
            d.c.attempts,
            d.c.first_attempt_at,
            d.c.next_attempt_at,
            d.c.last_status_code,
            d.c.last_error,
        )
        .select_from(d)
        .join(e, e.c.id == d.c.event_id)
        .join(ep, ep.c.id == d.c.endpoint_id)
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(**row._mapping)


def claim(
    session: Session, delivery_id: int, *, now: datetime | None = None, lease_ms: int = 600_000
) -> Delivery | None:
    """Take a due ``pending`` delivery for one attempt (``sending`` until the lease ends);
    None when it is not pending or not due (another worker has it, or it is done). Two
    statements."""
    now = now or utcnow()
    d = tables_of(session).webhook_deliveries
    taken = session.execute(
        update(d)
        .where(d.c.id == delivery_id, d.c.status == PENDING, d.c.next_attempt_at <= now)
        .values(status=SENDING, next_attempt_at=now + timedelta(milliseconds=lease_ms))
        .returning(d.c.id)
    ).first()
    if taken is None:
        return None
    row = session.execute(_delivery_query(session).where(d.c.id == delivery_id)).one()
    return _delivery(row)


def get_delivery(session: Session, delivery_id: int, *, tenant_id: Id | None = None) -> Delivery:
    """One delivery; raises :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint`."""
    d = tables_of(session).webhook_deliveries
    query = _delivery_query(session).where(d.c.id == delivery_id)
    if tenant_id is not None:
        query = query.where(d.c.tenant_id == tenant_id)
    row = session.execute(query).first()
    if row is None:
        raise UnknownWebhookEndpoint(f"unknown webhook delivery {delivery_id}")
    return _delivery(row)


def list_deliveries(
    session: Session,
    *,
    tenant_id: Id | None = None,
    endpoint_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Deliveries, newest first, filtered by tenant, endpoint and status."""
    d = tables_of(session).webhook_deliveries
    query = _delivery_query(session).order_by(d.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(d.c.tenant_id == tenant_id)
    if endpoint_id is not None:
        query = query.where(d.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(d.c.status == status)
    return [_delivery(row) for row in session.execute(query)]


def attempts_of(session: Session, delivery_id: int) -> list[Attempt]:
    """Every attempt of one delivery, oldest first."""
    a = tables_of(session).webhook_attempts.c
    rows = session.execute(
        select(a.attempted_at, a.status_code, a.latency_ms, a.response_body, a.error)
        .where(a.delivery_id == delivery_id)
        .order_by(a.id)
    )
    return [Attempt(**row._mapping) for row in rows]


def record_attempt(
    session: Session,
    delivery: Delivery,
    *,
    status_code: int | None,
    latency_ms: float,
    response_body: str | None,
    error: str | None,
    policy: RetryPolicy,
    now: datetime | None = None,
) -> Outcome:
    """Record one attempt of ``delivery`` and decide what follows: ``succeeded`` on a 2xx; a
    retry at :meth:`RetryPolicy.next_attempt`; or, the window spent, ``failed`` for good:
    the endpoint is disabled, its other pending deliveries fail with it, and the tenant's
    active owners get an in-app notification (the returned :class:`Outcome` lists them
    for the email)."""
    now = now or utcnow()
    t = tables_of(session)
    d = t.webhook_deliveries
    session.execute(
        insert(t.webhook_attempts).values(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=status_code,
            latency_ms=latency_ms,
            response_body=response_body,
            error=error,
        )
    )
    first = delivery.first_attempt_at or now
    succeeded = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    last_error = None if succeeded else (error or f"HTTP {status_code}")
    common: dict[str, Any] = {
        "attempts": attempts,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "last_status_code": status_code,
        "last_error": last_error,
    }
    if succeeded:
        session.execute(update(d).where(d.c.id == delivery.id).values(status=SUCCEEDED, **common))
        return Outcome(SUCCEEDED)
    retry_at = policy.next_attempt(first, now, attempts)
    if retry_at is not None:
        session.execute(
            update(d)
            .where(d.c.id == delivery.id)
            .values(status=PENDING, next_attempt_at=retry_at, **common)
        )
        return Outcome(PENDING, retry_at=retry_at)
    session.execute(
        update(d).where(d.c.id == delivery.id).values(status=FAILED, next_attempt_at=None, **common)
    )
    return _disable_endpoint(session, delivery, now, last_error)


def _disable_endpoint(
    session: Session, delivery: Delivery, now: datetime, error: str | None
) -> Outcome:
    t = tables_of(session)
    ep, d = t.webhook_endpoints, t.webhook_deliveries
    changed = session.execute(
        update(ep)
        .where(ep.c.id == delivery.endpoint_id, ep.c.enabled.is_(true()))
        .values(
            enabled=False,
            disabled_at=now,
            disabled_reason=f"deliveries failed for the whole retry window (last: {error})",
        )
        .returning(ep.c.id)
    ).first()
    session.execute(
        update(d)
        .where(d.c.endpoint_id == delivery.endpoint_id, d.c.status.in_([PENDING, SENDING]))
        .values(status=FAILED, next_attempt_at=None, last_error="endpoint disabled")
    )
    if changed is None:
        return Outcome(FAILED)
    owners, tenant_name = _notify_owners(session, delivery, now)
    return Outcome(FAILED, endpoint_disabled=True, owners=owners, tenant_name=tenant_name)


def _notify_owners(
    session: Session, delivery: Delivery, now: datetime
) -> tuple[list[tuple[str, str]], str]:
    """In-app notifications to the tenant's active owners (one statement) and their
    addresses (one more), for the email."""
    t = tables_of(session)
    member, person, tenant = t.tenant_users, t.users, t.tenants
    notifications = t.notifications
    owners = (
        select(person.c.id, person.c.email, person.c.name)
        .select_from(member)
        .join(person, person.c.id == member.c.user_id)
        .where(
            member.c.tenant_id == delivery.tenant_id,
            member.c.role == Role.OWNER,
            person.c.is_active.is_(true()),
        )
    )
    stamp = now.strftime("%Y%m%dT%H%M%S")
    sub = owners.subquery("owner")
    rows = select(
        literal(delivery.tenant_id, notifications.c.tenant_id.type),
        sub.c.id,
        literal("webhook_endpoint_disabled", String),
        # The subject is the tenant (the endpoint's id may not fit the platform's id type);
        # the dedup key names the endpoint.
        literal("tenant", String),
        literal(delivery.tenant_id, notifications.c.subject_id.type),
        literal("Webhook endpoint disabled", String),
        literal(_disabled_text(delivery), String),
        concat(f"webhook_endpoint_disabled:{delivery.endpoint_id}:{stamp}:", sub.c.id),
    ).select_from(sub)
    session.execute(insert_notifications(insert_for(session), t, rows, t.instant(now)))
    found = session.execute(
        owners.add_columns(tenant.c.name.label("tenant_name")).join(
            tenant, tenant.c.id == member.c.tenant_id
        )
    ).all()
    tenant_name = found[0].tenant_name if found else ""
    return [(row.email, row.name) for row in found], tenant_name


def _disabled_text(delivery: Delivery) -> str:
    return (
        f"The webhook endpoint {delivery.url} was disabled: its deliveries failed for about "
        "three days. Fix the receiver, enable the endpoint again and replay the failed "
        "deliveries (gcmc-jobs webhooks enable / replay, or the admin API)."
    )


def disabled_email_text(delivery: Delivery) -> str:
    """The body of the email the owners get when ``delivery`` disabled its endpoint."""
    return _disabled_text(delivery) + f" Last error: {delivery.last_error or 'none recorded'}."


def fail_without_attempt(
    session: Session, delivery: Delivery, reason: str, *, now: datetime | None = None
) -> Outcome:
    """Mark a claimed delivery ``failed`` without sending it (its endpoint is disabled)."""
    d = tables_of(session).webhook_deliveries
    session.execute(
        update(d)
        .where(d.c.id == delivery.id)
        .values(status=FAILED, next_attempt_at=None, last_error=reason)
    )
    return Outcome(FAILED)


def create_test_delivery(
    session: Session, endpoint_id: int, *, tenant_id: Id | None = None, now: datetime | None = None
) -> int:
    """A ``webhook.test`` event for one endpoint only, with its pending delivery; returns the
    delivery's id (``gcmc-jobs webhooks test``, ``POST /api/webhooks/endpoints/{id}/test``).
    Raises :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint`."""

    now = now or utcnow()
    endpoint = get_endpoint(session, endpoint_id, tenant_id=tenant_id)
    t = tables_of(session)
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    event = session.execute(
        insert(t.webhook_events)
        .values(
            event_id=new_event_id(),
            tenant_id=endpoint.tenant_id,
            event_type="webhook.test",
            subject_type="webhook_endpoint",
            subject_id=str(endpoint.id),
            dedup_key=f"webhook.test:{endpoint.id}:{stamp}",
            payload={"endpoint_id": endpoint.id, "message": "a test event from gcmc-jobs"},
            created_at=now,
            fanned_out_at=now,  # never fanned out: it is for this endpoint only
        )
        .returning(t.webhook_events.c.id)
    ).scalar_one()
    delivery: int = session.execute(
        insert(t.webhook_deliveries)
        .values(
            event_id=event,
            endpoint_id=endpoint.id,
            tenant_id=endpoint.tenant_id,
            status=PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(t.webhook_deliveries.c.id)
    ).scalar_one()
    return delivery


def replay(
    session: Session,
    *,
    delivery_id: int | None = None,
    tenant_id: Id | None = None,
    endpoint_id: int | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Make one delivery (``delivery_id``, whatever its status but ``sending``), or every
    ``failed`` delivery of a tenant or endpoint, pending now with a new retry window;
    returns their ids. Raises :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint` for an unknown
    delivery. The endpoint must be enabled to receive them (a disabled endpoint's replays
    fail at once). One statement."""
    now = now or utcnow()
    d = tables_of(session).webhook_deliveries
    if delivery_id is not None:
        get_delivery(session, delivery_id, tenant_id=tenant_id)
        condition: Any = and_(d.c.id == delivery_id, d.c.status != SENDING)
    else:
        condition = d.c.status == FAILED
        if tenant_id is not None:
            condition = and_(condition, d.c.tenant_id == tenant_id)
        if endpoint_id is not None:
            condition = and_(condition, d.c.endpoint_id == endpoint_id)
    result = session.execute(
        update(d)
        .where(condition)
        .values(status=PENDING, next_attempt_at=now, first_attempt_at=None, last_error=None)
        .returning(d.c.id)
    )
    return sorted(row[0] for row in result.all())


def counts_by_status(session: Session, tenant_id: Id | None = None) -> dict[str, int]:
    """How many deliveries are in each status (of ``tenant_id`` when given)."""
    d = tables_of(session).webhook_deliveries
    query = select(d.c.status, func.count()).group_by(d.c.status)
    if tenant_id is not None:
        query = query.where(d.c.tenant_id == tenant_id)
    found = dict.fromkeys(STATUSES, 0)
    found.update({row[0]: int(row[1]) for row in session.execute(query)})
    return found

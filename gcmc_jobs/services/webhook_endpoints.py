"""A tenant's webhook endpoints: register, list, enable, disable, remove (issue 14, item 1).

An endpoint is a URL, the event types it wants (:data:`EVENT_TYPES`, or ``*`` for all), an
enabled flag and a signing secret ``whsec_<base64 of 32 random bytes>`` that the package
generates. The secret is returned once, by :func:`add_endpoint`, and stored: the delivery
signs with it (Standard Webhooks), and :class:`Endpoint` never shows it again (``repr``,
the CLI's ``list``, the admin API's listings leave it out).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload, UnknownWebhookEndpoint
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "EVENT_TYPES",
    "Endpoint",
    "add_endpoint",
    "get_endpoint",
    "list_endpoints",
    "new_secret",
    "parse_event_types",
    "remove_endpoint",
    "set_enabled",
]

#: Every event type an endpoint may subscribe to (``*`` subscribes to all).
EVENT_TYPES: tuple[str, ...] = (
    "compliance.level_changed",
    "document.expiring",
    "filing.due_soon",
    "filing.overdue",
    "job_run.failed",
    "email.bounced",
    # What ``gcmc-jobs webhooks test`` sends: only to the endpoint it names.
    "webhook.test",
)


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_event_types(types: Iterable[str] | str) -> str:
    """The stored form of ``types`` (space-separated, sorted; ``*`` for every type).
    Raises :class:`~gcmc_jobs.errors.InvalidPayload` naming an unknown type."""
    items = types.replace(",", " ").split() if isinstance(types, str) else list(types)
    wanted = {item.strip() for item in items if item.strip()}
    if not wanted:
        raise InvalidPayload(f"no event type given; known: * or {', '.join(EVENT_TYPES)}")
    if "*" in wanted:
        return "*"
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise InvalidPayload(
            f"unknown event type(s) {', '.join(unknown)}; known: * or {', '.join(EVENT_TYPES)}"
        )
    return " ".join(sorted(wanted))


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPayload(f"webhook URL must be http:// or https:// with a host; got {url!r}")
    if parts.username or parts.password:
        raise InvalidPayload(
            "webhook URL must not hold credentials: the signature proves the sender"
        )
    if len(url) > 2000:
        raise InvalidPayload("webhook URL longer than 2,000 characters")
    return url.strip()


@dataclass(frozen=True)
class Endpoint:
    """One webhook endpoint, without its secret."""

    id: int
    tenant_id: Id
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    created_at: datetime | None
    disabled_at: datetime | None

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type``."""
        return "*" in self.event_types or event_type in self.event_types

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secret)."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "description": self.description,
            "disabled_reason": self.disabled_reason,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=tuple(row.event_types.split()),
        enabled=row.enabled,
        description=row.description,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _columns(session: Session) -> list[Any]:
    e = tables_of(session).webhook_endpoints.c
    return [
        e.id,
        e.tenant_id,
        e.url,
        e.event_types,
        e.enabled,
        e.description,
        e.disabled_reason,
        e.created_at,
        e.disabled_at,
    ]


def add_endpoint(
    session: Session,
    tenant_id: Id,
    url: str,
    event_types: Iterable[str] | str,
    *,
    description: str | None = None,
) -> tuple[Endpoint, str]:
    """Register an enabled endpoint; returns it and its new secret (shown this once).

    Raises :class:`~gcmc_jobs.errors.InvalidPayload` for a URL that is not http(s), an
    unknown event type or an unknown tenant; nothing is written then.
    """
    t = tables_of(session)
    url = _check_url(url)
    types = parse_event_types(event_types)
    tenant = session.scalar(select(t.tenants.c.id).where(t.tenants.c.id == tenant_id))
    if tenant is None:
        raise InvalidPayload(f"no tenant {tenant_id!r}")
    secret = new_secret()
    endpoint_id = session.execute(
        insert(t.webhook_endpoints)
        .values(
            tenant_id=tenant_id,
            url=url,
            secret=secret,
            event_types=types,
            description=description,
            enabled=True,
        )
        .returning(t.webhook_endpoints.c.id)
    ).scalar_one()
    return get_endpoint(session, endpoint_id), secret


def get_endpoint(session: Session, endpoint_id: int, *, tenant_id: Id | None = None) -> Endpoint:
    """The endpoint ``endpoint_id`` (of ``tenant_id`` when given); raises
    :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint`."""
    e = tables_of(session).webhook_endpoints.c
    query = select(*_columns(session)).where(e.id == endpoint_id)
    if tenant_id is not None:
        query = query.where(e.tenant_id == tenant_id)
    row = session.execute(query).first()
    if row is None:
        raise UnknownWebhookEndpoint(f"unknown webhook endpoint {endpoint_id}")
    return _endpoint(row)


def list_endpoints(session: Session, tenant_id: Id | None = None) -> list[Endpoint]:
    """Every endpoint (of ``tenant_id`` when given), by id."""
    e = tables_of(session).webhook_endpoints.c
    query = select(*_columns(session)).order_by(e.id)
    if tenant_id is not None:
        query = query.where(e.tenant_id == tenant_id)
    return [_endpoint(row) for row in session.execute(query)]


def remove_endpoint(session: Session, endpoint_id: int, *, tenant_id: Id | None = None) -> None:
    """Delete an endpoint with its deliveries and their attempts; raises
    :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint`."""
    get_endpoint(session, endpoint_id, tenant_id=tenant_id)
    t = tables_of(session)
    deliveries = t.webhook_deliveries.c
    ids = select(deliveries.id).where(deliveries.endpoint_id == endpoint_id)
    # Explicit, not ON DELETE CASCADE alone: SQLite enforces foreign keys only when asked.
    session.execute(delete(t.webhook_attempts).where(t.webhook_attempts.c.delivery_id.in_(ids)))
    session.execute(delete(t.webhook_deliveries).where(deliveries.endpoint_id == endpoint_id))
    session.execute(delete(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id))


def set_enabled(
    session: Session,
    endpoint_id: int,
    enabled: bool,
    *,
    reason: str | None = None,
    tenant_id: Id | None = None,
    now: datetime | None = None,
) -> bool:
    """Enable or disable an endpoint; True when that changed it. Raises
    :class:`~gcmc_jobs.errors.UnknownWebhookEndpoint`. Disabling records ``reason``;
    enabling clears it."""
    get_endpoint(session, endpoint_id, tenant_id=tenant_id)
    e = tables_of(session).webhook_endpoints
    values: dict[str, Any] = (
        {"enabled": True, "disabled_reason": None, "disabled_at": None}
        if enabled
        else {"enabled": False, "disabled_reason": reason, "disabled_at": now or utcnow()}
    )
    result = session.execute(
        update(e)
        .where(e.c.id == endpoint_id, e.c.enabled.is_(not enabled))
        .values(**values)
        .returning(e.c.id)
    )
    return result.first() is not None

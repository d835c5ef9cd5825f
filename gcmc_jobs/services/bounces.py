"""What a delivery event does: recorded against its email, and bounces and complaints fed to
the suppression list, set-based (issue 13, item 2).

Events come from the providers' webhooks (:mod:`gcmc_jobs.email.provider_events`), RFC 3464
delivery status notifications (:mod:`gcmc_jobs.email.dsn`) and the SMTP server's own refusal
of a recipient that does not exist (:func:`gcmc_jobs.email.delivery.deliver`). All of them go
through :func:`record_events`, in the caller's transaction:

1. each event is inserted into ``email_events`` once: a second copy of the same
   ``(source, event_id)`` (a webhook the provider sends again) is ignored; the event is tied
   to its ``email_log`` row when it names the email (its ``X-GCMC-Dedup-Key`` or its
   ``Message-ID``);
2. a hard bounce or a complaint adds its address to ``email_suppressions`` (reason
   ``hard_bounce`` or ``complaint``, the source and the event id), unless it is there;
3. a soft bounce counts: when an address has ``soft_threshold`` soft bounces within
   ``soft_window`` it is suppressed with reason ``soft_bounce``;
4. every suppression added is written to ``email_suppression_changes`` with its actor (the
   event's source: ``provider:ses``, ``dsn``, ``smtp``);
5. :func:`on_bounces_recorded` is called with the bounces and complaints just recorded.

The number of statements is constant (four at most), whatever the number of events: the
batch travels as one JSON parameter (:mod:`gcmc_jobs.services.json_batch`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, DateTime, Integer, String, bindparam, insert, select, text
from sqlalchemy.sql.elements import TextClause

from gcmc_jobs.db.enums import EmailEventKind, SuppressionReason
from gcmc_jobs.db.tables import Tables, tables_of
from gcmc_jobs.services import json_batch
from gcmc_jobs.services.webhook_events import emit_emails_bounced

__all__ = [
    "BouncePolicy",
    "DeliveryEvent",
    "IngestResult",
    "RecordedEvent",
    "events_of",
    "on_bounces_recorded",
    "record_events",
    "record_suppression_changes",
]

logger = structlog.get_logger("gcmc_jobs.bounces")

_DETAIL_MAX = 2_000


@dataclass(frozen=True)
class DeliveryEvent:
    """One thing that happened to one email at one recipient.

    Attributes:
      source: who reported it: ``provider:ses``, ``provider:postmark``,
        ``provider:sendgrid``, ``provider:mailgun``, ``dsn`` or ``smtp``.
      event_id: the reporter's id of the event (unique per source): what makes a second
        delivery of the same webhook a no-op.
      address: the recipient.
      kind: delivered, bounced, complained or deferred.
      occurred_at: when the reporter says it happened (aware).
      permanent: for a bounce, hard (True) or soft (False).
      detail: the diagnostic (an SMTP reply, a status code), for people.
      dedup_key: the email's ``X-GCMC-Dedup-Key`` when the event carries its headers.
      message_id: the email's ``Message-ID`` (``email_log.provider_message_id``).
    """

    source: str
    event_id: str
    address: str
    kind: EmailEventKind
    occurred_at: datetime
    permanent: bool | None = None
    detail: str | None = None
    dedup_key: str | None = None
    message_id: str | None = None

    @property
    def is_hard(self) -> bool:
        """A hard bounce or a complaint: suppresses the address at once."""
        return self.kind is EmailEventKind.COMPLAINED or (
            self.kind is EmailEventKind.BOUNCED and bool(self.permanent)
        )


@dataclass(frozen=True)
class BouncePolicy:
    """When soft bounces suppress an address: ``soft_threshold`` of them within
    ``soft_window`` (settings ``GCMC_JOBS_BOUNCE_SOFT_THRESHOLD``, default 3, and
    ``GCMC_JOBS_BOUNCE_SOFT_WINDOW_MS``, default 7 days)."""

    soft_threshold: int = 3
    soft_window: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Any) -> BouncePolicy:
        """The policy of a :class:`~gcmc_jobs.settings.Settings`."""
        return cls(
            soft_threshold=settings.bounce_soft_threshold,
            soft_window=timedelta(milliseconds=settings.bounce_soft_window_ms),
        )


@dataclass(frozen=True)
class RecordedEvent:
    """An event :func:`record_events` recorded (not a duplicate), with its row id and the
    ``email_log`` row it names (None when the event did not name a known email)."""

    id: int
    source: str
    event_id: str
    address: str
    kind: EmailEventKind
    permanent: bool | None
    email_log_id: int | None


@dataclass(frozen=True)
class IngestResult:
    """What one call of :func:`record_events` did."""

    received: int
    recorded: list[RecordedEvent] = field(default_factory=list)
    #: Addresses added to the suppression list, with their reason.
    suppressed: dict[str, SuppressionReason] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        """Events already recorded before (same source and event id), ignored."""
        return self.received - len(self.recorded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "recorded": len(self.recorded),
            "duplicates": self.duplicates,
            "suppressed": {a: r.value for a, r in sorted(self.suppressed.items())},
        }


_COLUMNS: dict[str, json_batch.ColumnType] = {
    "source": "text",
    "event_id": "text",
    "address": "text",
    "kind": "text",
    "permanent": "boolean",
    "detail": "text",
    "occurred_at": "timestamptz",
    "dedup_key": "text",
    "message_id": "text",
}


def record_events(
    connection: Connection,
    events: Sequence[DeliveryEvent],
    *,
    policy: BouncePolicy | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Record ``events`` and apply them to the suppression list (module docstring), in the
    caller's transaction, with a constant number of statements."""
    if not events:
        return IngestResult(received=0)
    policy = policy or BouncePolicy()
    now = now or datetime.now(UTC)
    t = tables_of(connection)
    batch_id = str(uuid.uuid4())
    rows = [
        {
            "source": e.source[:64],
            "event_id": e.event_id[:255],
            "address": e.address.strip().lower()[:320],
            "kind": EmailEventKind(e.kind).value,
            "permanent": e.permanent if e.kind is EmailEventKind.BOUNCED else None,
            "detail": e.detail[:_DETAIL_MAX] if e.detail else None,
            "occurred_at": json_batch.instant(connection, e.occurred_at),
            "dedup_key": e.dedup_key,
            "message_id": e.message_id,
        }
        for e in events
    ]
    recorded = [
        RecordedEvent(
            id=r.id,
            source=r.source,
            event_id=r.event_id,
            address=r.address,
            kind=EmailEventKind(r.kind),
            permanent=None if r.permanent is None else bool(r.permanent),
            email_log_id=r.email_log_id,
        )
        for r in connection.execute(
            _insert_events(connection, t),
            {"batch": json_batch.encode(rows), "batch_id": batch_id, "now": now},
        )
    ]
    added: list[tuple[str, str, str | None, str | None]] = []
    if any(r.kind is EmailEventKind.COMPLAINED or r.permanent for r in recorded):
        added += _tuples(
            connection.execute(_suppress_hard(connection, t), {"batch_id": batch_id, "now": now})
        )
    if any(r.kind is EmailEventKind.BOUNCED and r.permanent is False for r in recorded):
        added += _tuples(
            connection.execute(
                _suppress_soft(connection, t),
                {
                    "batch_id": batch_id,
                    "now": now,
                    "since": now - policy.soft_window,
                    "threshold": policy.soft_threshold,
                },
            )
        )
    record_suppression_changes(
        connection,
        [
            {"address": a, "action": "added", "reason": reason, "actor": source, "event_id": eid}
            for a, reason, source, eid in added
        ],
        now=now,
    )
    result = IngestResult(
        received=len(events),
        recorded=recorded,
        suppressed={a: SuppressionReason(reason) for a, reason, _, _ in added},
    )
    bounces = [r for r in recorded if r.kind in (EmailEventKind.BOUNCED, EmailEventKind.COMPLAINED)]
    if bounces:
        on_bounces_recorded(connection, bounces)
    return result


def on_bounces_recorded(connection: Connection, bounces: Sequence[RecordedEvent]) -> None:
    """Called by :func:`record_events` with every bounce and complaint it just recorded (never a
    duplicate), in the same transaction, after the suppression list is updated.

    **The one place to react to a bounce**: an outbound ``email.bounced`` webhook event, a
    metric, a notification to the tenant. Work added here must stay set-based (one statement
    for the whole list) and must not commit. It writes one ``email.bounced`` webhook event
    per hard-bounced or complained email of a tenant
    (:func:`gcmc_jobs.services.webhook_events.emit_emails_bounced`, one statement; soft
    bounces and events naming no known email emit nothing) and logs one line.
    """
    reasons = {
        b.email_log_id: "complaint" if b.kind is EmailEventKind.COMPLAINED else "hard_bounce"
        for b in bounces
        if b.email_log_id is not None
        and (
            b.kind is EmailEventKind.COMPLAINED
            or (b.kind is EmailEventKind.BOUNCED and b.permanent)
        )
    }
    emit_emails_bounced(connection, reasons)
    logger.info(
        "email_bounces_recorded",
        bounces=sum(1 for b in bounces if b.kind is EmailEventKind.BOUNCED),
        complaints=sum(1 for b in bounces if b.kind is EmailEventKind.COMPLAINED),
    )


def record_suppression_changes(
    connection: Connection, changes: Sequence[dict[str, Any]], *, now: datetime | None = None
) -> None:
    """Append ``changes`` (``address``, ``action`` ``added``/``removed``, ``reason``,
    ``actor``, ``event_id``) to ``email_suppression_changes`` in one statement (none when
    empty)."""
    if not changes:
        return
    now = now or datetime.now(UTC)
    table = tables_of(connection).email_suppression_changes
    connection.execute(
        insert(table),
        [
            {
                "address": c["address"],
                "action": c["action"],
                "reason": c.get("reason"),
                "actor": c["actor"][:200],
                "event_id": c.get("event_id"),
                "changed_at": now,
            }
            for c in changes
        ],
    )


def events_of(connection: Connection, dedup_key: str) -> list[dict[str, Any]]:
    """The delivery events of the email ``dedup_key``, oldest first (kind, permanent, source,
    event id, detail, occurred_at)."""
    t = tables_of(connection)
    e, log = t.email_events, t.email_log
    query = (
        select(e.c.kind, e.c.permanent, e.c.source, e.c.event_id, e.c.detail, e.c.occurred_at)
        .join(log, log.c.id == e.c.email_log_id)
        .where(log.c.dedup_key == dedup_key)
        .order_by(e.c.occurred_at, e.c.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def _tuples(result: Any) -> list[tuple[str, str, str | None, str | None]]:
    return [(row[0], row[1], row[2], row[3]) for row in result]


# -- the statements ---------------------------------------------------------------------------


def _name(connection: Connection, table: Any) -> str:
    return connection.dialect.identifier_preparer.format_table(table)


def _insert_events(connection: Connection, t: Tables) -> TextClause:
    events, log = _name(connection, t.email_events), _name(connection, t.email_log)
    source = json_batch.rows_source(connection, _COLUMNS, "v")
    # "WHERE true": SQLite needs it between INSERT … SELECT and ON CONFLICT.
    return text(
        f"INSERT INTO {events} (source, event_id, email_log_id, address, kind, permanent, "
        "detail, occurred_at, recorded_at, batch_id) "
        "SELECT v.source, v.event_id, coalesce("
        f"(SELECT l.id FROM {log} l WHERE l.dedup_key = v.dedup_key), "
        f"(SELECT min(m.id) FROM {log} m WHERE m.provider_message_id = v.message_id)), "
        "v.address, v.kind, v.permanent, v.detail, v.occurred_at, :now, :batch_id "
        f"FROM {source} WHERE true "
        "ON CONFLICT (source, event_id) DO NOTHING "
        "RETURNING id, source, event_id, address, kind, permanent, email_log_id"
    ).bindparams(
        bindparam("batch", type_=String()),
        bindparam("batch_id", type_=String()),
        bindparam("now", type_=DateTime(timezone=True)),
    )


def _suppress(connection: Connection, t: Tables, reason: str, where: str, having: str) -> str:
    suppressions = _name(connection, t.email_suppressions)
    events = _name(connection, t.email_events)
    return (
        f"INSERT INTO {suppressions} (address, reason, created_at, source, event_id) "
        f"SELECT lower(e.address), {reason}, :now, max(e.source), "
        "max(e.source || ':' || e.event_id) "
        f"FROM {events} e WHERE {where} "
        f"AND NOT EXISTS (SELECT 1 FROM {suppressions} s "
        "WHERE lower(s.address) = lower(e.address)) "
        f"GROUP BY lower(e.address) {having} "
        "ON CONFLICT (address) DO NOTHING "
        "RETURNING address, reason, source, event_id"
    )


def _suppress_hard(connection: Connection, t: Tables) -> TextClause:
    reason = (
        "CASE WHEN max(CASE WHEN e.kind = 'complained' THEN 1 ELSE 0 END) = 1 "
        "THEN 'complaint' ELSE 'hard_bounce' END"
    )
    where = (
        "e.batch_id = :batch_id AND (e.kind = 'complained' OR (e.kind = 'bounced' AND e.permanent))"
    )
    return text(_suppress(connection, t, reason, where, "")).bindparams(
        bindparam("batch_id", type_=String()),
        bindparam("now", type_=DateTime(timezone=True)),
    )


def _suppress_soft(connection: Connection, t: Tables) -> TextClause:
    events = _name(connection, t.email_events)
    where = (
        "e.kind = 'bounced' AND NOT e.permanent AND e.occurred_at >= :since "
        f"AND lower(e.address) IN (SELECT lower(b.address) FROM {events} b "
        "WHERE b.batch_id = :batch_id AND b.kind = 'bounced' AND NOT b.permanent)"
    )
    return text(
        _suppress(connection, t, "'soft_bounce'", where, "HAVING count(*) >= :threshold")
    ).bindparams(
        bindparam("batch_id", type_=String()),
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("since", type_=DateTime(timezone=True)),
        bindparam("threshold", type_=Integer()),
    )

"""Webhook events: written in the transaction of the change they report (an outbox).

Every function here inserts into ``webhook_events`` on the caller's session or connection,
so an event exists exactly when its change commits; the dispatcher
(:func:`gcmc_jobs.services.webhook_deliveries.fan_out`, run by the
``dispatch_webhooks`` actor) then makes one delivery per subscribed, enabled endpoint. Each
event has a ``dedup_key`` naming the logical event: emitting it again (a retry, a forced
re-run) inserts nothing (``ON CONFLICT DO NOTHING``).

- ``compliance.level_changed``: the compliance refresh
  (:mod:`gcmc_jobs.services.level_changes`), once per client and local day;
- ``document.expiring``: the ``document_expiry_notifications`` daily job, once per version;
- ``filing.due_soon`` and ``filing.overdue``: the ``filing_reminders`` daily job, once per
  filing and type;
- ``job_run.failed``: the run ledger, when a run fails for good, once per job, tenant, day;
- ``email.bounced``: the email actor on a permanent failure (:func:`emit_email_bounced`,
  which a provider's bounce ingestion calls too), once per logical email.

The set-based emitters are one ``INSERT … SELECT`` each, whatever the number of rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, and_, case, cast, func, literal, select, true
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from gcmc_jobs.db.dialect import concat
from gcmc_jobs.db.enums import OPEN_FILING_STATUSES, ComplianceLevel
from gcmc_jobs.db.tables import Id, Tables, new_text_id, tables_of
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "EVENT_COLUMNS",
    "emit",
    "emit_document_expiring",
    "emit_email_bounced",
    "emit_emails_bounced",
    "emit_filing_reminders",
    "emit_job_run_failed",
    "emit_rows",
    "json_object",
    "new_event_id",
]

#: The columns a row of :func:`emit_rows`' SELECT fills, in order.
EVENT_COLUMNS = ("tenant_id", "subject_type", "subject_id", "local_date", "dedup_key", "payload")

#: A document expiring in [today, today + this] is ``document.expiring`` (the in-app rule).
DOCUMENT_EXPIRING_WITHIN_DAYS = 7
#: An open filing due in [today, today + this] is ``filing.due_soon``.
FILING_DUE_WITHIN_DAYS = 7


def new_event_id() -> ColumnElement[str]:
    """A new ``webhook-id`` made by the database: ``msg_`` and 32 hex digits."""
    return concat("msg_", new_text_id())


def json_object(dialect: str, *pairs: tuple[str, Any]) -> ColumnElement[Any]:
    """A JSON object built in SQL from ``(key, expression)`` pairs, on ``dialect``."""
    arguments: list[Any] = []
    for key, value in pairs:
        arguments.extend((literal(key, String), value))
    if dialect == "postgresql":
        return func.json_build_object(*arguments)
    return func.json(func.json_object(*arguments))


def _dialect(bind: Session | Connection) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


def emit(
    connection: Session | Connection,
    tenant_id: Id,
    event_type: str,
    data: dict[str, Any],
    *,
    dedup_key: str,
    subject_type: str | None = None,
    subject_id: Any = None,
    local_date: date | None = None,
    now: datetime | None = None,
) -> bool:
    """Write one event in ``connection``'s transaction; False when ``dedup_key`` already
    names one (nothing written). ``data`` is the JSON the endpoints receive as ``data``.
    One statement."""
    t = tables_of(connection)
    events = t.webhook_events
    insert = _insert(connection)
    result: CursorResult[Any] = connection.execute(  # type: ignore[assignment]
        insert(events)
        .values(
            event_id=new_event_id(),
            tenant_id=tenant_id,
            event_type=event_type,
            subject_type=subject_type,
            subject_id=None if subject_id is None else str(subject_id),
            local_date=local_date,
            dedup_key=dedup_key,
            payload=data,
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[events.c.dedup_key]),
        execution_options={"preserve_rowcount": True},
    )
    return bool(result.rowcount)


def _insert(connection: Session | Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if _dialect(connection) == "postgresql" else sqlite.insert


def emit_rows(
    connection: Session | Connection,
    event_type: str,
    rows: Select[Any],
    *,
    now: datetime | None = None,
) -> int:
    """Write one ``event_type`` event per row of ``rows`` (a SELECT of
    :data:`EVENT_COLUMNS`, in order), skipping dedup keys already written; returns how many
    were written. One statement."""
    t = tables_of(connection)
    events = t.webhook_events
    source = rows.add_columns(
        new_event_id().label("event_id"),
        literal(event_type, String).label("event_type"),
        literal(now or utcnow(), events.c.created_at.type).label("created_at"),
    )
    statement = (
        _insert(connection)(events)
        .from_select(
            [
                *(events.c[name] for name in EVENT_COLUMNS),
                events.c.event_id,
                events.c.event_type,
                events.c.created_at,
            ],
            source,
            include_defaults=False,
        )
        .on_conflict_do_nothing(index_elements=[events.c.dedup_key])
    )
    result: CursorResult[Any] = connection.execute(  # type: ignore[assignment]
        statement, execution_options={"preserve_rowcount": True}
    )
    return int(result.rowcount or 0)


def _text(value: Any) -> ColumnElement[str]:
    return cast(value, String)


def emit_document_expiring(
    session: Session, tenant_id: Id, today: date, *, now: datetime | None = None
) -> int:
    """``document.expiring`` for each active client's document whose latest version expires
    in [today, today + 7], once per version. One statement."""
    t = tables_of(session)
    dialect = _dialect(session)
    document, version, client = t.documents, t.document_versions, t.clients
    payload = json_object(
        dialect,
        ("document_id", document.c.id),
        ("document_version_id", version.c.id),
        ("title", document.c.title),
        ("document_type", document.c.document_type),
        ("client_id", client.c.id),
        ("client_name", client.c.name),
        ("expiry_date", _text(version.c.expiry_date)),
    )
    rows = (
        select(
            literal(tenant_id, t.webhook_events.c.tenant_id.type),
            literal("document_version", String),
            _text(version.c.id),
            literal(today, t.webhook_events.c.local_date.type),
            concat("document.expiring:", version.c.id),
            payload,
        )
        .select_from(document)
        .join(version, version.c.id == document.c.latest_version_id)
        .join(client, and_(client.c.id == document.c.client_id, client.c.tenant_id == tenant_id))
        .where(
            document.c.tenant_id == tenant_id,
            client.c.is_active.is_(true()),
            version.c.expiry_date.between(
                today, today + timedelta(days=DOCUMENT_EXPIRING_WITHIN_DAYS)
            ),
        )
    )
    return emit_rows(session, "document.expiring", rows, now=now)


def emit_filing_reminders(
    session: Session, tenant_id: Id, today: date, *, now: datetime | None = None
) -> int:
    """``filing.due_soon`` (open, due in [today, today + 7]) and ``filing.overdue`` (open,
    past due) for each active client's filing, once per filing and type. Two statements."""
    t = tables_of(session)
    dialect = _dialect(session)
    filing, client = t.filings, t.clients
    written = 0
    for event_type, condition in (
        (
            "filing.due_soon",
            filing.c.due_date.between(today, today + timedelta(days=FILING_DUE_WITHIN_DAYS)),
        ),
        ("filing.overdue", filing.c.due_date < today),
    ):
        payload = json_object(
            dialect,
            ("filing_id", filing.c.id),
            ("filing_type", filing.c.filing_type),
            ("client_id", client.c.id),
            ("client_name", client.c.name),
            ("period_start", _text(filing.c.period_start)),
            ("period_end", _text(filing.c.period_end)),
            ("due_date", _text(filing.c.due_date)),
        )
        rows = (
            select(
                literal(tenant_id, t.webhook_events.c.tenant_id.type),
                literal("filing", String),
                _text(filing.c.id),
                literal(today, t.webhook_events.c.local_date.type),
                concat(event_type + ":", filing.c.id),
                payload,
            )
            .select_from(filing)
            .join(client, and_(client.c.id == filing.c.client_id, client.c.tenant_id == tenant_id))
            .where(
                filing.c.tenant_id == tenant_id,
                client.c.is_active.is_(true()),
                filing.c.status.in_(OPEN_FILING_STATUSES),
                condition,
            )
        )
        written += emit_rows(session, event_type, rows, now=now)
    return written


def emit_job_run_failed(
    connection: Session | Connection,
    *,
    job: str,
    tenant_id: Id,
    local_date: date,
    error: str,
    now: datetime | None = None,
) -> bool:
    """``job_run.failed``: the daily ``job`` of ``tenant_id`` for ``local_date`` failed for
    good (its retries are spent). Once per (job, tenant, day). One statement."""
    return emit(
        connection,
        tenant_id,
        "job_run.failed",
        {
            "job": job,
            "tenant_id": tenant_id,
            "local_date": local_date.isoformat(),
            "error": error[:1000],
        },
        dedup_key=f"job_run.failed:{job}:{tenant_id}:{local_date.isoformat()}",
        subject_type="job_run",
        subject_id=job,
        local_date=local_date,
        now=now,
    )


def emit_emails_bounced(
    connection: Session | Connection,
    reasons: dict[int, str],
    *,
    now: datetime | None = None,
) -> int:
    """``email.bounced`` for each ``email_log`` row id of ``reasons`` (id → ``hard_bounce``
    or ``complaint``) that belongs to a tenant: what a provider's or a DSN's bounces and
    complaints report (:func:`gcmc_jobs.services.bounces.on_bounces_recorded`). The same
    dedup key as :func:`emit_email_bounced`, so an email refused by the server and then
    reported by the provider bounces once. One statement whatever the number of emails."""
    if not reasons:
        return 0
    t = tables_of(connection)
    log = t.email_log
    dialect = _dialect(connection)
    complaints = [email_id for email_id, why in reasons.items() if why == "complaint"]
    reason = case(
        (log.c.id.in_(complaints), literal("complaint", String)),
        else_=literal("hard_bounce", String),
    )
    rows = select(
        log.c.tenant_id,
        literal("email", String).label("subject_type"),
        func.substr(log.c.dedup_key, 1, 64).label("subject_id"),
        literal(None, t.webhook_events.c.local_date.type).label("local_date"),
        func.substr(concat("email.bounced:", log.c.dedup_key), 1, 255).label("dedup_key"),
        json_object(
            dialect,
            ("address", log.c.to_address),
            ("kind", log.c.kind),
            ("reason", reason),
            ("error", log.c.error),
            ("email_dedup_key", log.c.dedup_key),
        ).label("payload"),
    ).where(log.c.id.in_(list(reasons)), log.c.tenant_id.is_not(None))
    return emit_rows(connection, "email.bounced", rows, now=now)


def emit_email_bounced(
    connection: Session | Connection,
    *,
    tenant_id: Id,
    address: str,
    email_dedup_key: str,
    kind: str | None = None,
    reason: str = "hard_bounce",
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """``email.bounced``: an email to ``address`` failed for good because the address
    cannot receive mail. Call it in the transaction that records the failure (the email
    actor does, on a permanent failure; a provider's bounce ingestion can too).
    ``email_dedup_key`` is the ``email_log`` key of the email, so one email bounces once.
    No event for mail without a tenant (nobody to tell). One statement."""
    return emit(
        connection,
        tenant_id,
        "email.bounced",
        {
            "address": address,
            "kind": kind,
            "reason": reason,
            "error": (error or "")[:1000] or None,
            "email_dedup_key": email_dedup_key,
        },
        dedup_key=f"email.bounced:{email_dedup_key}"[:255],
        subject_type="email",
        subject_id=email_dedup_key[:64],
        now=now,
    )


def level_names(level: ColumnElement[Any], t: Tables) -> ColumnElement[str]:
    """The logical name (``low``, ``medium``, ``high``) of a ``compliance_scores.level``
    expression, whatever the mapping stores."""

    level_type = t.compliance_scores.c.level.type
    return case(
        *[
            (level == literal(member, level_type), literal(member.value, String))
            for member in ComplianceLevel
        ],
        else_=literal(None, String),
    )

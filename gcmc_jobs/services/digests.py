"""Daily email digests: one email per recipient per day listing all their items (DOMAIN.md 4, 5).

The audited job queued one email per (document, user, warning period). Here one ``SELECT``
per tenant finds every (item, recipient) pair that hits a warning day, and the rows are
grouped per recipient into one :class:`Digest` each. The digest's dedup key names the tenant,
the recipient, the kind and the local date, so a re-run the same day sends nothing new.

- ``document_expiry_warning``: documents whose latest version expires exactly today + 30,
  14, 7, 3 or 1 days;
- ``filing_reminder``: open filings due in exactly 14, 7, 3 or 0 days, or 1 to 7 days
  overdue.

The ``document_expiry_warning`` digest also lists the day's risk-level changes
(``Digest.risk_changes``, issue 14): the ``compliance.level_changed`` events the refresh wrote
for the tenant's local ``today`` (:mod:`gcmc_jobs.services.level_changes`), each to the
compliance-alert recipients of its client (the ``documents`` category, as for the documents),
found by a second statement. A recipient with changes but no expiring document still gets
the digest; it stays one per recipient per day (the same dedup key), so each change reaches
a recipient once: the event is already once per client per day. A change written after the
digest ran (a manual refresh later that day) is not mailed: the next day's digest lists that
day's changes only.

Recipients follow :mod:`gcmc_jobs.services.recipients` with the email channel (preferences
and the suppression list apply). With ``channel=Channel.SMS`` the same statement finds the
SMS alerts instead: the same items and recipients, narrowed to those who opted in to the
category by SMS (``sms_opt_ins``), ``to`` being their number; one SMS per recipient per day
summarises the digest (:mod:`gcmc_jobs.sms.bodies`). The statements run on the session's
mapped tables (:func:`~gcmc_jobs.db.tables.tables_of`); ids are the mapping's (integers or text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, or_, select, true
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import OPEN_FILING_STATUSES, NotificationCategory
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.services.level_changes import EVENT_TYPE as LEVEL_CHANGED
from gcmc_jobs.services.recipients import (
    Channel,
    Rows,
    assignee_or_fallback,
    join_recipients,
    join_sms_recipients,
)

__all__ = [
    "DOCUMENT_WARNING_DAYS",
    "FILING_OVERDUE_DAYS",
    "FILING_WARNING_DAYS",
    "Digest",
    "digest_key",
    "document_expiry_digests",
    "filing_reminder_digests",
]

#: Days before expiry on which a document is in the digest.
DOCUMENT_WARNING_DAYS = (30, 14, 7, 3, 1)
#: Days before its due date on which an open filing is in the digest (0 = due today).
FILING_WARNING_DAYS = (14, 7, 3, 0)
#: An open filing 1 to this many days overdue is in the digest every day.
FILING_OVERDUE_DAYS = 7


@dataclass(frozen=True)
class Digest:
    """One email (or, ``channel`` SMS, one text message summarising it) to one recipient
    listing every item of one kind for one local day.

    ``items`` are JSON-ready dicts (dates as ``YYYY-MM-DD``), sorted by date then title
    (documents) or by due date (filings). Ids are the mapping's: ints or strs. ``to`` is the
    address, or the phone number for SMS. ``risk_changes`` (``document_expiry_warning``
    only): the day's risk-level changes of the recipient's clients, by client name, each
    ``client_id``, ``client_name``, ``previous_level``, ``level``, ``score``; ``items`` may
    be empty when they are not.
    """

    kind: str
    tenant_id: Id
    user_id: Id
    to: str
    name: str
    tenant_name: str
    local_date: date
    items: list[dict[str, Any]] = field(default_factory=list)
    channel: Channel = Channel.EMAIL
    risk_changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dedup_key(self) -> str:
        """The key naming this logical email (or SMS: ``sms:digest:…``): one per (tenant,
        recipient, kind, day)."""
        key = digest_key(self.kind, self.tenant_id, self.user_id, self.local_date)
        return f"sms:{key}" if self.channel is Channel.SMS else key


def digest_key(kind: str, tenant_id: Id, user_id: Id, local_date: date) -> str:
    """``digest:<kind>:<tenant>:<user>:<YYYY-MM-DD>``."""
    return f"digest:{kind}:{tenant_id}:{user_id}:{local_date.isoformat()}"


def _group(
    kind: str,
    tenant_id: Id,
    today: date,
    rows: Any,
    channel: Channel = Channel.EMAIL,
    *,
    into: dict[Id, Digest] | None = None,
    section: str = "items",
) -> dict[Id, Digest]:
    """``rows`` (a recipient's columns, then an item's) appended to their recipient's digest
    in ``into`` (made when missing), in the list named ``section``."""
    digests: dict[Id, Digest] = {} if into is None else into
    for row in rows:
        values = dict(row._mapping)
        user_id, to, name = values.pop("user_id"), values.pop("to"), values.pop("name")
        tenant_name = values.pop("tenant_name")
        digest = digests.get(user_id)
        if digest is None:
            digest = digests[user_id] = Digest(
                kind, tenant_id, user_id, to, name, tenant_name, today, channel=channel
            )
        getattr(digest, section).append(
            {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
        )
    return digests


def _recipients(
    query: Rows,
    *,
    tables: Any,
    tenant_id: Id,
    assigned_user_id: Any,
    category: NotificationCategory,
    channel: Channel,
) -> tuple[Rows, Any, Any]:
    """``query`` joined to its recipients on ``channel``: the query, ``person`` and the
    column each is reached at (the email address, or the SMS opt-in's number)."""
    if channel is Channel.SMS:
        return join_sms_recipients(
            query,
            tables=tables,
            tenant_id=tenant_id,
            assigned_user_id=assigned_user_id,
            category=category,
        )
    query, person = join_recipients(
        query,
        tables=tables,
        tenant_id=tenant_id,
        assigned_user_id=assigned_user_id,
        category=category,
        channel=channel,
    )
    return query, person, person.c.email


def document_expiry_digests(
    session: Session, tenant_id: Id, today: date, channel: Channel = Channel.EMAIL
) -> list[Digest]:
    """One digest per recipient of documents expiring exactly 30/14/7/3/1 days from
    ``today`` (``channel``: email, or the SMS opt-ins), and of the risk-level changes of
    ``today`` (:func:`_risk_changes`). Two statements."""
    t = tables_of(session)
    document, version, client, tenant = t.documents, t.document_versions, t.clients, t.tenants
    days = [today + timedelta(days=n) for n in DOCUMENT_WARNING_DAYS]
    query: Rows = (
        select(document.c.id)
        .select_from(document)
        .join(version, version.c.id == document.c.latest_version_id)
        .join(client, and_(client.c.id == document.c.client_id, client.c.tenant_id == tenant_id))
        .join(tenant, tenant.c.id == document.c.tenant_id)
        .where(
            document.c.tenant_id == tenant_id,
            client.c.is_active.is_(true()),
            version.c.expiry_date.in_(days),
        )
    )
    query, person, to = _recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=client.c.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=channel,
    )
    query = query.with_only_columns(
        person.c.id.label("user_id"),
        to.label("to"),
        person.c.name.label("name"),
        tenant.c.name.label("tenant_name"),
        document.c.id.label("document_id"),
        version.c.id.label("version_id"),
        document.c.title.label("title"),
        document.c.document_type.label("document_type"),
        client.c.id.label("client_id"),
        client.c.name.label("client_name"),
        version.c.expiry_date.label("expiry_date"),
    ).order_by(person.c.id, version.c.expiry_date, document.c.title, document.c.id)
    rows = session.execute(query).all()
    digests = _group("document_expiry_warning", tenant_id, today, rows, channel)
    for digest in digests.values():
        for item in digest.items:
            item["days_left"] = (date.fromisoformat(item["expiry_date"]) - today).days
    changes = _risk_changes(session, tenant_id, today, channel)
    _group(
        "document_expiry_warning",
        tenant_id,
        today,
        changes,
        channel,
        into=digests,
        section="risk_changes",
    )
    return list(digests.values())


def _risk_changes(session: Session, tenant_id: Id, today: date, channel: Channel) -> Any:
    """The rows (recipient, change) of ``today``'s risk-level changes of ``tenant_id``'s
    active clients, to each client's compliance-alert recipients on ``channel`` (the
    ``documents`` category: DOMAIN.md, "Events and reports"), by recipient then client
    name. One statement, on the ``compliance.level_changed`` events the refresh wrote."""
    t = tables_of(session)
    events, client, tenant = t.webhook_events, t.clients, t.tenants
    query: Rows = (
        select(events.c.id)
        .select_from(events)
        .join(
            client,
            and_(
                cast(client.c.id, String) == events.c.subject_id,
                client.c.tenant_id == tenant_id,
            ),
        )
        .join(tenant, tenant.c.id == client.c.tenant_id)
        .where(
            events.c.tenant_id == tenant_id,
            events.c.event_type == LEVEL_CHANGED,
            events.c.local_date == today,
            client.c.is_active.is_(true()),
        )
    )
    query, person, to = _recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=client.c.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=channel,
    )
    payload = events.c.payload
    query = query.with_only_columns(
        person.c.id.label("user_id"),
        to.label("to"),
        person.c.name.label("name"),
        tenant.c.name.label("tenant_name"),
        client.c.id.label("client_id"),
        client.c.name.label("client_name"),
        payload["previous_level"].as_string().label("previous_level"),
        payload["level"].as_string().label("level"),
        payload["score"].as_integer().label("score"),
    ).order_by(person.c.id, client.c.name, client.c.id)
    return session.execute(query).all()


def filing_reminder_digests(
    session: Session, tenant_id: Id, today: date, channel: Channel = Channel.EMAIL
) -> list[Digest]:
    """One digest per recipient of open filings due exactly 14/7/3/0 days from ``today``
    or 1 to 7 days overdue (``channel``: email, or the SMS opt-ins). One statement."""
    t = tables_of(session)
    filing, client, tenant = t.filings, t.clients, t.tenants
    days = [today + timedelta(days=n) for n in FILING_WARNING_DAYS]
    query: Rows = (
        select(filing.c.id)
        .select_from(filing)
        .join(client, and_(client.c.id == filing.c.client_id, client.c.tenant_id == tenant_id))
        .join(tenant, tenant.c.id == filing.c.tenant_id)
        .where(
            filing.c.tenant_id == tenant_id,
            client.c.is_active.is_(true()),
            filing.c.status.in_(OPEN_FILING_STATUSES),
            or_(
                filing.c.due_date.in_(days),
                filing.c.due_date.between(
                    today - timedelta(days=FILING_OVERDUE_DAYS), today - timedelta(days=1)
                ),
            ),
        )
    )
    query, person, to = _recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=assignee_or_fallback(
            t, tenant_id, filing.c.assigned_user_id, client.c.assigned_user_id
        ),
        category=NotificationCategory.FILINGS,
        channel=channel,
    )
    query = query.with_only_columns(
        person.c.id.label("user_id"),
        to.label("to"),
        person.c.name.label("name"),
        tenant.c.name.label("tenant_name"),
        filing.c.id.label("filing_id"),
        filing.c.filing_type.label("filing_type"),
        client.c.id.label("client_id"),
        client.c.name.label("client_name"),
        filing.c.period_start.label("period_start"),
        filing.c.period_end.label("period_end"),
        filing.c.due_date.label("due_date"),
        filing.c.status.label("status"),
    ).order_by(person.c.id, filing.c.due_date, filing.c.id)
    rows = session.execute(query).all()
    digests = list(_group("filing_reminder", tenant_id, today, rows, channel).values())
    for digest in digests:
        for item in digest.items:
            # The logical value ("draft"), whatever the mapping stores ("DRAFT" on Prisma).
            item["status"] = str(item["status"])
            item["days_left"] = (date.fromisoformat(item["due_date"]) - today).days
    return digests

"""Risk-level changes, detected inside the compliance refresh (issue 14, item 2).

A client's level changed when the refresh's new ``compliance_scores.level`` differs from
the one before it. On PostgreSQL the detection is part of the refresh's own statement: the
upsert becomes a data-modifying CTE next to a CTE reading the levels before it (every
sub-statement of one ``WITH`` sees the same snapshot, so ``levels_before`` holds the old
values), and the ``compliance.level_changed`` events are inserted by the same statement::

    WITH levels_before AS (SELECT client_id, level FROM compliance_scores WHERE tenant_id = :t),
         upserted AS (INSERT INTO compliance_scores … ON CONFLICT …
                      RETURNING client_id, level, score),
         changed AS (INSERT INTO webhook_events … SELECT … FROM upserted JOIN levels_before …
                     WHERE levels_before.level <> upserted.level ON CONFLICT DO NOTHING RETURNING 1)
    SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM changed)

So a refresh with no change costs no statement more than one without detection; a refresh
with changes costs one more: the in-app notifications of the compliance-alert recipients
(:func:`notify_level_changes`). A client that first gets a score has no "before" and is not a
change. Each change is once per client per local day (the event's dedup key
``compliance.level_changed:<client>:<day>``, and the notification's, which adds the
recipient): a second change the same day is not reported again.

SQLite (the demo) has no data-modifying CTE: there the levels before are read first, the
levels after once the upsert ran, and the events inserted in one statement (four in all,
still none per client).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, literal, select, true
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gcmc_jobs.db.dialect import concat, insert_for
from gcmc_jobs.db.enums import NotificationCategory
from gcmc_jobs.db.tables import Id, Tables, new_text_id, tables_of
from gcmc_jobs.services.recipients import Channel, Rows, join_recipients
from gcmc_jobs.services.webhook_events import json_object, level_names, new_event_id

__all__ = ["EVENT_TYPE", "detecting_statement", "notify_level_changes", "sqlite_detect"]

EVENT_TYPE = "compliance.level_changed"
#: The notification ``kind`` of a level change (in-app).
NOTIFICATION_KIND = "compliance_level_changed"

_STATEMENTS: dict[tuple[int, int], Any] = {}


def _event_rows(
    t: Tables, dialect: str, new: Any, before: Any, tenant_id: Any, today: Any, now: Any
) -> Rows:
    """One event row per client of ``new`` (client_id, level, score) whose level differs
    from ``before`` (client_id, level)."""
    client = t.clients
    payload = json_object(
        dialect,
        ("client_id", client.c.id),
        ("client_name", client.c.name),
        ("previous_level", level_names(before.c.level, t)),
        ("level", level_names(new.c.level, t)),
        ("score", new.c.score),
        ("local_date", cast(today, String)),
    )
    return (
        select(
            tenant_id.label("tenant_id"),
            literal("client", String).label("subject_type"),
            cast(client.c.id, String).label("subject_id"),
            today.label("local_date"),
            concat(EVENT_TYPE + ":", client.c.id, ":", today).label("dedup_key"),
            payload.label("payload"),
            new_event_id().label("event_id"),
            literal(EVENT_TYPE, String).label("event_type"),
            now.label("created_at"),
        )
        .select_from(new)
        .join(before, before.c.client_id == new.c.client_id)
        .join(client, client.c.id == new.c.client_id)
        .where(before.c.level != new.c.level)
    )


_EVENT_COLUMNS = (
    "tenant_id",
    "subject_type",
    "subject_id",
    "local_date",
    "dedup_key",
    "payload",
    "event_id",
    "event_type",
    "created_at",
)


def detecting_statement(upsert: Any, t: Tables) -> Any:
    """PostgreSQL: the refresh's ``upsert`` (bound parameters ``tenant_id``, ``today``,
    ``now``…) wrapped so that the same statement writes the level-change events; it returns
    one row ``(clients, changes)``. Built once per upsert and tables."""
    key = (id(upsert), id(t))
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = _build(upsert, t)
    return statement


def _build(upsert: Any, t: Tables) -> Any:
    from sqlalchemy.dialects import postgresql

    scores, events = t.compliance_scores, t.webhook_events
    tenant_id = bindparam("tenant_id", type_=scores.c.tenant_id.type)
    today = bindparam("today", type_=events.c.local_date.type)
    now = bindparam("now", type_=scores.c.computed_at.type)
    before = (
        select(scores.c.client_id, scores.c.level)
        .where(scores.c.tenant_id == tenant_id)
        .cte("levels_before")
    )
    upserted = upsert.returning(scores.c.client_id, scores.c.level, scores.c.score).cte("upserted")
    rows = _event_rows(
        t,
        "postgresql",
        upserted,
        before,
        cast(tenant_id, events.c.tenant_id.type),
        today,
        cast(now, events.c.created_at.type),
    )
    changed = (
        postgresql.insert(events)
        .from_select([events.c[name] for name in _EVENT_COLUMNS], rows, include_defaults=False)
        .on_conflict_do_nothing(index_elements=[events.c.dedup_key])
        .returning(events.c.id)
        .cte("changed")
    )
    return select(
        select(func.count()).select_from(upserted).scalar_subquery().label("clients"),
        select(func.count()).select_from(changed).scalar_subquery().label("changes"),
    )


def sqlite_levels_before(session: Session, tenant_id: Id) -> Any:
    """SQLite: the tenant's levels before the upsert, as a VALUES-free temporary snapshot
    (a list of (client_id, level) rows)."""
    scores = tables_of(session).compliance_scores
    return session.execute(
        select(scores.c.client_id, scores.c.level).where(scores.c.tenant_id == tenant_id)
    ).all()


def sqlite_detect(session: Session, tenant_id: Id, before: Any, today: date, now: datetime) -> int:
    """SQLite: insert the events of the clients whose level differs from ``before`` (read
    by :func:`sqlite_levels_before`); returns how many. Two statements: the levels after,
    then one multi-row insert (SQLite, the demo's database, has no data-modifying CTE and
    no column list on a ``VALUES`` alias; the comparison is made here)."""
    from sqlalchemy.dialects import sqlite

    old = {row[0]: row[1] for row in before}
    if not old:
        return 0
    t = tables_of(session)
    scores, client, events = t.compliance_scores, t.clients, t.webhook_events
    after = session.execute(
        select(scores.c.client_id, scores.c.level, scores.c.score, client.c.name)
        .join(client, client.c.id == scores.c.client_id)
        .where(scores.c.tenant_id == tenant_id)
    ).all()
    rows = [
        {
            "event_id": f"msg_{uuid.uuid4().hex}",
            "tenant_id": tenant_id,
            "event_type": EVENT_TYPE,
            "subject_type": "client",
            "subject_id": str(row.client_id),
            "local_date": today,
            "dedup_key": f"{EVENT_TYPE}:{row.client_id}:{today.isoformat()}",
            "payload": {
                "client_id": row.client_id,
                "client_name": row.name,
                "previous_level": str(old[row.client_id]),
                "level": str(row.level),
                "score": row.score,
                "local_date": today.isoformat(),
            },
            "created_at": now,
        }
        for row in after
        if row.client_id in old and old[row.client_id] != row.level
    ]
    if not rows:
        return 0
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        sqlite.insert(events)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[events.c.dedup_key]),
        execution_options={"preserve_rowcount": True},
    )
    return int(result.rowcount or 0)


_NOTIFY: dict[tuple[str, int], Any] = {}


def notify_level_changes(session: Session, tenant_id: Id, today: date, now: datetime) -> int:
    """In-app notifications of ``today``'s level changes of ``tenant_id`` to each client's
    compliance-alert recipients (DOMAIN.md: owners, admins and managers of the tenant plus the
    client's assigned user, active, with the ``documents`` in-app preference on), once per
    (client, day, recipient). Returns how many were created. One statement (built once per
    dialect and mapping: only its bound parameters change)."""
    t = tables_of(session)
    dialect = session.get_bind().dialect.name
    key = (dialect, id(t))
    statement = _NOTIFY.get(key)
    if statement is None:
        statement = _NOTIFY[key] = _build_notify(session, t)
    instant = t.instant(now)
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement,
        {"tenant_id": tenant_id, "today": today, "now": instant},
        execution_options={"preserve_rowcount": True},
    )
    return int(result.rowcount or 0)


def _build_notify(session: Session, t: Tables) -> Any:
    events, client, scores = t.webhook_events, t.clients, t.compliance_scores
    notifications = t.notifications
    tenant_id = bindparam("tenant_id", type_=client.c.tenant_id.type)
    today = bindparam("today", type_=events.c.local_date.type)
    now = bindparam("now", type_=notifications.c.created_at.type)
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
        .join(scores, scores.c.client_id == client.c.id)
        .where(
            events.c.tenant_id == tenant_id,
            events.c.event_type == EVENT_TYPE,
            events.c.local_date == today,
            client.c.is_active.is_(true()),
        )
    )
    query, person = join_recipients(
        query,
        tables=t,
        tenant_id=tenant_id,  # type: ignore[arg-type]
        assigned_user_id=client.c.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=Channel.IN_APP,
    )
    previous = events.c.payload["previous_level"].as_string()
    current = events.c.payload["level"].as_string()
    stamped = ("created_at", *t.extra_columns.get("notifications", ()))
    extra: dict[str, ColumnElement[Any]] = dict.fromkeys(stamped, now)
    if t.mapping.id_type == "text":
        extra["id"] = new_text_id()
    rows = query.with_only_columns(
        cast(tenant_id, notifications.c.tenant_id.type).label("tenant_id"),
        person.c.id.label("user_id"),
        literal(NOTIFICATION_KIND, String).label("kind"),
        literal("client", String).label("subject_type"),
        client.c.id.label("subject_id"),
        concat("Risk level changed: ", client.c.name).label("title"),
        concat(
            client.c.name,
            " moved from ",
            previous,
            " to ",
            current,
            " risk (score ",
            scores.c.score,
            ").",
        ).label("body"),
        concat(NOTIFICATION_KIND + ":", client.c.id, ":", today, ":", person.c.id).label(
            "dedup_key"
        ),
        *(value.label(name) for name, value in extra.items()),
    )
    columns = [
        "tenant_id",
        "user_id",
        "kind",
        "subject_type",
        "subject_id",
        "title",
        "body",
        "dedup_key",
        *extra,
    ]
    return (
        insert_for(session)(notifications)
        .from_select([notifications.c[name] for name in columns], rows, include_defaults=False)
        .on_conflict_do_nothing(index_elements=[notifications.c.dedup_key])
    )

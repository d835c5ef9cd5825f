"""Risk-level changes, detected inside the compliance refresh (issue 14, item 2).

A client's level changed when the refresh's new ``compliance_scores.level`` differs from
the one before it. On PostgreSQL the detection is part of the refresh's own statement: the
upsert becomes a data-modifying CTE next to a CTE reading the levels before it (every
sub-statement of one ``WITH`` sees the same snapshot, so ``levels_before`` holds the old
values), and the ``compliance.level_changed`` events are inserted by the same statement::

    WITH upserted AS (INSERT INTO compliance_scores … ON CONFLICT …
                      RETURNING client_id, level, score),
         levels_before AS (SELECT client_id, level FROM compliance_scores WHERE tenant_id = :t),
         level_moves AS MATERIALIZED (SELECT … FROM upserted JOIN levels_before …
                                      WHERE levels_before.level <> upserted.level),
         changed AS (INSERT INTO webhook_events … SELECT … FROM level_moves JOIN clients …
                     ON CONFLICT DO NOTHING RETURNING id, subject_id, payload),
         notified AS (INSERT INTO notifications … SELECT … FROM changed JOIN clients …
                      <the compliance-alert recipients> ON CONFLICT DO NOTHING)
    SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM changed)

So the detection costs no statement more than a refresh without it, with or without
changes: the in-app notifications of the compliance-alert recipients are made from the
events the statement itself inserted (``changed``'s ``RETURNING``: a sub-statement cannot
see another's rows otherwise), with the client's name, levels and score from the event's
payload (``compliance_scores`` read inside the statement would give the old score). A client
that first gets a score has no "before" and is not a change. Each change is once per client
per local day (the event's dedup key ``compliance.level_changed:<client>:<day>``, and the
notification's, which adds the recipient): a second change the same day inserts no event,
so it is not reported again.

SQLite (the demo) has no data-modifying CTE: there the levels before are read first, the
levels after once the upsert ran, the events inserted in one statement and, when there are
some, the notifications in one more (:func:`notify_level_changes`; five in all, still none
per client).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, literal, select, true
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import concat, insert_for
from gcmc_jobs.db.enums import NotificationCategory
from gcmc_jobs.db.tables import Id, Tables, tables_of
from gcmc_jobs.services.notifications import insert_notifications
from gcmc_jobs.services.recipients import Channel, Rows, join_recipients
from gcmc_jobs.services.webhook_events import json_object, level_names, new_event_id

__all__ = ["EVENT_TYPE", "detecting_statement", "notify_level_changes", "sqlite_detect"]

EVENT_TYPE = "compliance.level_changed"
#: The notification ``kind`` of a level change (in-app).
NOTIFICATION_KIND = "compliance_level_changed"

_STATEMENTS: dict[tuple[int, int], Any] = {}


def _event_rows(t: Tables, dialect: str, moves: Any, tenant_id: Any, today: Any, now: Any) -> Rows:
    """One event row per client of ``moves`` (client_id, previous_level, level, score)."""
    client = t.clients
    payload = json_object(
        dialect,
        ("client_id", client.c.id),
        ("client_name", client.c.name),
        ("previous_level", level_names(moves.c.previous_level, t)),
        ("level", level_names(moves.c.level, t)),
        ("score", moves.c.score),
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
        .select_from(moves)
        # The tenant's condition bounds the join to its clients whatever the plan (without
        # it, a misestimate of the moves hashed the whole clients table for each tenant).
        .join(client, and_(client.c.id == moves.c.client_id, client.c.tenant_id == tenant_id))
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
    # The clients whose level moved, compared first and on their own (MATERIALIZED: the
    # planner does not fold the comparison into the joins that build the events), so the
    # client rows and the JSON are made only for the few that moved.
    moves = (
        select(
            upserted.c.client_id,
            before.c.level.label("previous_level"),
            upserted.c.level,
            upserted.c.score,
        )
        .join(before, before.c.client_id == upserted.c.client_id)
        .where(before.c.level != upserted.c.level)
        .cte("level_moves")
        .prefix_with("MATERIALIZED")
    )
    rows = _event_rows(
        t,
        "postgresql",
        moves,
        cast(tenant_id, events.c.tenant_id.type),
        today,
        cast(now, events.c.created_at.type),
    )
    changed = (
        postgresql.insert(events)
        .from_select([events.c[name] for name in _EVENT_COLUMNS], rows, include_defaults=False)
        .on_conflict_do_nothing(index_elements=[events.c.dedup_key])
        .returning(events.c.id, events.c.subject_id, events.c.payload)
        .cte("changed")
    )
    # Executed to its end although nothing selects from it (PostgreSQL runs every
    # data-modifying sub-statement of a WITH exactly once).
    notified = (
        _notifications_insert(
            postgresql.insert,
            t,
            changed,
            tenant_id,
            today,
            cast(now, t.notifications.c.created_at.type),
            only_level_changes=True,
        )
        .returning(literal(1))
        .cte("notified")
    )
    return select(
        select(func.count()).select_from(upserted).scalar_subquery().label("clients"),
        select(func.count()).select_from(changed).scalar_subquery().label("changes"),
    ).add_cte(notified)


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
    events = t.webhook_events
    tenant_id = bindparam("tenant_id", type_=events.c.tenant_id.type)
    today = bindparam("today", type_=events.c.local_date.type)
    now = bindparam("now", type_=t.notifications.c.created_at.type)
    todays = (
        select(events.c.id, events.c.subject_id, events.c.payload)
        .where(
            events.c.tenant_id == tenant_id,
            events.c.event_type == EVENT_TYPE,
            events.c.local_date == today,
        )
        .subquery("todays_changes")
    )
    return _notifications_insert(insert_for(session), t, todays, tenant_id, today, now)


def _notifications_insert(
    insert: Any,
    t: Tables,
    changes: Any,
    tenant_id: Any,
    today: Any,
    now: Any,
    *,
    only_level_changes: bool = False,
) -> Any:
    """``INSERT INTO notifications … ON CONFLICT DO NOTHING``: one in-app notification per
    (level change of ``changes``, compliance-alert recipient). ``changes`` has the columns
    ``subject_id`` (the client's id, text) and ``payload`` (the event's).
    ``only_level_changes``: every row of ``changes`` is a level change, so its
    ``subject_id`` converts to a client id (a lookup by primary key); otherwise the client's
    id is compared as text (another event type's subject may not be a number)."""
    client, notifications = t.clients, t.notifications
    same_client = (
        client.c.id == cast(changes.c.subject_id, client.c.id.type)
        if only_level_changes
        else cast(client.c.id, String) == changes.c.subject_id
    )
    query: Rows = (
        select(changes.c.subject_id)
        .select_from(changes)
        .join(client, and_(same_client, client.c.tenant_id == tenant_id))
        .where(client.c.is_active.is_(true()))
    )
    query, person = join_recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=client.c.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=Channel.IN_APP,
    )
    payload = changes.c.payload
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
            payload["previous_level"].as_string(),
            " to ",
            payload["level"].as_string(),
            " risk (score ",
            payload["score"].as_string(),
            ").",
        ).label("body"),
        concat(NOTIFICATION_KIND + ":", client.c.id, ":", today, ":", person.c.id).label(
            "dedup_key"
        ),
    )
    return insert_notifications(insert, t, rows, now)

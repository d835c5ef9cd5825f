"""Who receives a compliance alert, as SQL joins (DOMAIN.md, "Who receives what").

A document's or filing's recipients are the members of its tenant with role ``owner``,
``admin`` or ``manager``, plus its assigned user whatever their role (a document: the
client's ``assigned_user_id``; a filing: its own, falling back to the client's whenever the
filing's cannot receive alerts: null, inactive, or not a member of the tenant; see
:func:`assignee_or_fallback`), minus
inactive users and users whose preference turns the channel off for the category; for
email, also minus addresses on the suppression list (any reason). SMS is opt-in: only users
with an ``sms_opt_ins`` row for the tenant and category receive it, at that row's number,
minus numbers on ``sms_suppressions`` (:func:`join_sms_recipients`). A ``viewer`` receives only
what is assigned to them, and an assigned user who is not a member of the tenant receives
nothing: every recipient is found through ``tenant_users`` of the subject's own tenant.

The functions here return join conditions and filters that the jobs add to one
``SELECT``, so finding the recipients of every document of a tenant is part of the one
statement that finds the documents: never a query per document. They are written on the
mapped Core tables (:class:`~gcmc_jobs.db.tables.Tables`), so the same SQL runs on every
schema mapping; roles and categories bind through the mapped enum types.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true
from sqlalchemy.sql import Select
from sqlalchemy.sql.selectable import NamedFromClause

from gcmc_jobs.db.enums import ALERT_ROLES, NotificationCategory
from gcmc_jobs.db.tables import Id, Tables

#: A SELECT of any columns (SQLAlchemy 2.1 types a Select by its column types).
Rows = Select[*tuple[Any, ...]]

__all__ = ["Channel", "Rows", "assignee_or_fallback", "join_recipients", "join_sms_recipients"]


class Channel(enum.StrEnum):
    """How an alert reaches a person: a notification in the app, email, or SMS."""

    IN_APP = "in_app"
    EMAIL = "email"
    #: Opt-in (``sms_opt_ins``): the platform's preferences have no SMS column.
    SMS = "sms"


def assignee_or_fallback(
    tables: Tables,
    tenant_id: Id,
    assigned: ColumnElement[Any],
    fallback: ColumnElement[Any],
) -> ColumnElement[Any]:
    """``assigned`` when that user can receive the tenant's alerts (an active member of the
    tenant), else ``fallback`` (DOMAIN.md: a filing's alerts go to the client's assigned
    user when the filing's is null, inactive or not a member of the tenant).

    A correlated ``EXISTS`` inside the caller's one ``SELECT``: no statement per row. A
    preference that turns a channel off is the user's choice, not an inability: it does
    not move the alert to someone else.
    """
    member = tables.tenant_users.alias("assignee_member")
    person = tables.users.alias("assignee_person")
    can_receive = exists(
        select(member.c.user_id)
        .join(person, person.c.id == member.c.user_id)
        .where(
            member.c.tenant_id == tenant_id,
            member.c.user_id == assigned,
            person.c.is_active.is_(true()),
        )
    )
    return case((can_receive, assigned), else_=fallback)


def join_recipients(
    query: Rows,
    *,
    tables: Tables,
    tenant_id: Id,
    assigned_user_id: ColumnElement[Any],
    category: NotificationCategory,
    channel: Channel,
) -> tuple[Rows, NamedFromClause]:
    """Join ``query`` (one row per subject) to one row per (subject, recipient).

    ``assigned_user_id`` is the subject's assigned user column (or expression). Returns the
    joined query and the aliased ``users`` table (``person``), to select its ``id``,
    ``email`` and ``name`` from.
    """
    member = tables.tenant_users.alias("member")
    person = tables.users.alias("person")
    preference = tables.notification_preferences.alias("preference")
    query = (
        query.join(
            member,
            and_(
                member.c.tenant_id == tenant_id,
                or_(member.c.role.in_(ALERT_ROLES), member.c.user_id == assigned_user_id),
            ),
        )
        .join(person, and_(person.c.id == member.c.user_id, person.c.is_active.is_(true())))
        .outerjoin(
            preference,
            and_(
                preference.c.user_id == person.c.id,
                preference.c.tenant_id == tenant_id,
                preference.c.category == category,
            ),
        )
    )
    if channel is Channel.SMS:  # the opt-in is the preference: join_sms_recipients
        return query, person
    enabled = preference.c.in_app if channel is Channel.IN_APP else preference.c.email
    query = query.where(func.coalesce(enabled, true()).is_(true()))
    if channel is Channel.EMAIL:
        suppressions = tables.email_suppressions
        query = query.where(
            ~exists(
                select(suppressions.c.address).where(
                    func.lower(suppressions.c.address) == func.lower(person.c.email)
                )
            )
        )
    return query, person


def join_sms_recipients(
    query: Rows,
    *,
    tables: Tables,
    tenant_id: Id,
    assigned_user_id: ColumnElement[Any],
    category: NotificationCategory,
) -> tuple[Rows, NamedFromClause, ColumnElement[Any]]:
    """:func:`join_recipients` for SMS: the same people (roles, assignee, active members),
    narrowed to those with an ``sms_opt_ins`` row for ``tenant_id`` and ``category``, minus
    numbers on ``sms_suppressions``. Returns the joined query, ``person`` and the opt-in's
    ``phone`` column. Joins only: still one statement for every subject of a tenant."""
    query, person = join_recipients(
        query,
        tables=tables,
        tenant_id=tenant_id,
        assigned_user_id=assigned_user_id,
        category=category,
        channel=Channel.SMS,
    )
    opt_in = tables.sms_opt_ins.alias("sms_opt_in")
    suppressions = tables.sms_suppressions
    query = query.join(
        opt_in,
        and_(
            opt_in.c.tenant_id == tenant_id,
            opt_in.c.user_id == person.c.id,
            opt_in.c.category == category,
        ),
    ).where(~exists(select(suppressions.c.phone).where(suppressions.c.phone == opt_in.c.phone)))
    return query, person, opt_in.c.phone

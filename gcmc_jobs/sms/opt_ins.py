"""Who wants which alerts by SMS, at which number: the ``sms_opt_ins`` table.

The platform's ``notification_preferences`` has only ``in_app`` and ``email`` columns and its
``users`` no phone number, so SMS is **opt-in**, kept by the package: one row per (tenant,
user, category) with the user's number in E.164. No row, no SMS. ``gcmc-jobs sms opt-in``
and ``opt-out`` call these functions; a host may call them from its own settings page.

A user has one number per tenant: opting in again with another number moves every category
of that user in that tenant to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gcmc_jobs.db.enums import NotificationCategory
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.sms.numbers import normalize_phone

__all__ = ["SMS_CATEGORIES", "OptIn", "opt_in", "opt_ins", "opt_out"]

#: The categories whose alerts go by SMS today: document expiry and filing reminders.
SMS_CATEGORIES = (NotificationCategory.DOCUMENTS, NotificationCategory.FILINGS)


@dataclass(frozen=True)
class OptIn:
    """One ``sms_opt_ins`` row."""

    tenant_id: Id
    user_id: Id
    category: NotificationCategory
    phone: str
    created_at: datetime


def _categories(categories: Iterable[str | NotificationCategory]) -> list[NotificationCategory]:
    chosen: list[NotificationCategory] = []
    for value in categories:
        try:
            category = NotificationCategory(value)
        except ValueError:
            known = ", ".join(c.value for c in NotificationCategory)
            raise InvalidPayload(f"unknown category {value!r}; known: {known}") from None
        if category not in chosen:
            chosen.append(category)
    if not chosen:
        raise InvalidPayload("name at least one category")
    return chosen


def opt_in(
    connection: Connection,
    *,
    tenant_id: Id,
    user_id: Id,
    phone: str,
    categories: Iterable[str | NotificationCategory] = SMS_CATEGORIES,
) -> str:
    """Opt ``user_id`` in to ``categories``' alerts by SMS in ``tenant_id``, at ``phone``;
    returns the number in E.164. Two statements whatever the number of categories.

    Raises :class:`~gcmc_jobs.errors.InvalidPhoneNumber` for a number that is not valid
    E.164, :class:`~gcmc_jobs.errors.InvalidPayload` for an unknown category or a user who
    is not a member of the tenant (nothing is written then).
    """
    number = normalize_phone(phone)
    chosen = _categories(categories)
    t = tables_of(connection)
    member = t.tenant_users
    known = connection.scalar(
        select(exists().where(and_(member.c.tenant_id == tenant_id, member.c.user_id == user_id)))
    )
    if not known:
        raise InvalidPayload(f"user {user_id} is not a member of tenant {tenant_id}")
    table = t.sms_opt_ins
    rows = [
        {"tenant_id": tenant_id, "user_id": user_id, "category": c, "phone": number} for c in chosen
    ]
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(table)
    )
    connection.execute(
        insert.values(rows).on_conflict_do_nothing(
            index_elements=["tenant_id", "user_id", "category"]
        )
    )
    connection.execute(
        update(table)
        .where(table.c.tenant_id == tenant_id, table.c.user_id == user_id)
        .values(phone=number)
    )
    return number


def opt_out(
    connection: Connection,
    *,
    tenant_id: Id,
    user_id: Id,
    categories: Iterable[str | NotificationCategory] | None = None,
) -> int:
    """Opt ``user_id`` out of ``categories`` (None: every category) in ``tenant_id``;
    returns the rows removed."""
    table = tables_of(connection).sms_opt_ins
    statement = delete(table).where(table.c.tenant_id == tenant_id, table.c.user_id == user_id)
    if categories is not None:
        statement = statement.where(table.c.category.in_(_categories(categories)))
    return connection.execute(statement).rowcount


def opt_ins(connection: Connection, *, tenant_id: Id | None = None) -> list[OptIn]:
    """The opt-ins (of one tenant, or all), by tenant, user and category."""
    table = tables_of(connection).sms_opt_ins
    query = select(table).order_by(table.c.tenant_id, table.c.user_id, table.c.category)
    if tenant_id is not None:
        query = query.where(table.c.tenant_id == tenant_id)
    return [
        OptIn(r.tenant_id, r.user_id, NotificationCategory(r.category), r.phone, r.created_at)
        for r in connection.execute(query).all()
    ]

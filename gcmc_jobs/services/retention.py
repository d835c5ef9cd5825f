"""Retention: delete what has outlived its use, in bounded batches, never holding a lock long.

The tables the package writes grow without bound otherwise. Each :class:`Rule` names a table
and which of its rows have expired at an instant (DOMAIN.md's defaults, each a setting):

==========================  ===============================================  ===============
rule                        expired rows                                     default
==========================  ===============================================  ===============
``read_notifications``      ``notifications`` read more than N days ago      90 days
``unread_notifications``    ``notifications`` unread, created N days ago     365 days
``email_log``               ``email_log`` created more than N days ago       400 days
``job_runs``                ``job_runs`` of a local date N days back         400 days
``dead_letters``            ``dead_letters`` replayed more than N days ago   30 days
``webhook_events``          webhook events fanned out more than N days ago   90 days
                            (their deliveries and attempts go with them)
``campaign_recipients``     the per-address log of campaigns finished or     90 days
                            cancelled more than N days ago
==========================  ===============================================  ===============

(The outbox needs no rule: the relay deletes each row as it enqueues it.)

:func:`apply_retention` deletes each rule's rows ``batch_size`` at a time, each batch its own
short transaction (``DELETE … WHERE id IN (SELECT id … LIMIT n)``; on PostgreSQL the inner
select takes ``FOR UPDATE SKIP LOCKED``, so a row another transaction holds is left for the
next run instead of waited for): a concurrent writer waits at most for one batch, never for
the whole purge, and the table is never rewritten. ``dry_run`` counts instead (one ``SELECT
count(*)`` per rule). Statements: one per batch, so they grow with the rows deleted, never
with the number of clients or tenants.

Per tenant (the daily job) the tenant-scoped rules are narrowed to that tenant's rows; the
dead letters, which belong to no tenant, are swept by every tenant's run (after the first of
the day the sweep finds nothing: one indexed query).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, func, select

from gcmc_jobs.db.enums import CampaignStatus
from gcmc_jobs.db.tables import Id, Tables
from gcmc_jobs.settings import Settings

__all__ = ["RULES", "RetentionPolicy", "Rule", "apply_retention", "rules"]

#: Every rule's name, in the order they run.
RULES = (
    "read_notifications",
    "unread_notifications",
    "email_log",
    "job_runs",
    "dead_letters",
    "webhook_events",
    "campaign_recipients",
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days (:class:`~gcmc_jobs.settings.Settings`'
    ``retention_*``)."""

    read_notifications_days: int = 90
    unread_notifications_days: int = 365
    email_log_days: int = 400
    job_runs_days: int = 400
    dead_letters_days: int = 30
    delivery_logs_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy of ``settings``."""
        return cls(
            read_notifications_days=settings.retention_read_notifications_days,
            unread_notifications_days=settings.retention_unread_notifications_days,
            email_log_days=settings.retention_email_log_days,
            job_runs_days=settings.retention_job_runs_days,
            dead_letters_days=settings.retention_dead_letters_days,
            delivery_logs_days=settings.retention_delivery_logs_days,
        )


@dataclass(frozen=True)
class Rule:
    """One table's expired rows: ``where`` them, deleted by ``key`` (its primary key);
    ``of_tenant(tenant_id)`` narrows them to one tenant's (None: the rows belong to no
    tenant)."""

    name: str
    table: Table
    key: Any
    where: ColumnElement[bool]
    of_tenant: Callable[[Id], ColumnElement[bool]] | None


def rules(tables: Tables, policy: RetentionPolicy, now: datetime) -> list[Rule]:
    """The rules of ``policy`` at the aware instant ``now``, in :data:`RULES` order."""
    n, log, runs, dead = (
        tables.notifications,
        tables.email_log,
        tables.job_runs,
        tables.dead_letters,
    )
    events, campaigns, recipients = (
        tables.webhook_events,
        tables.campaigns,
        tables.campaign_recipients,
    )

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    def platform_ago(days: int) -> datetime:
        # The platform's timestamps may be naive UTC (Prisma's timestamp(3)).
        return tables.instant(ago(days))

    today: date = now.date()
    return [
        Rule(
            "read_notifications",
            n,
            n.c.id,
            n.c.read_at < platform_ago(policy.read_notifications_days),
            _column_is(n.c.tenant_id),
        ),
        Rule(
            "unread_notifications",
            n,
            n.c.id,
            n.c.read_at.is_(None)
            & (n.c.created_at < platform_ago(policy.unread_notifications_days)),
            _column_is(n.c.tenant_id),
        ),
        Rule(
            "email_log",
            log,
            log.c.id,
            log.c.created_at < ago(policy.email_log_days),
            _column_is(log.c.tenant_id),
        ),
        Rule(
            "job_runs",
            runs,
            runs.c.id,
            runs.c.local_date < today - timedelta(days=policy.job_runs_days),
            _column_is(runs.c.tenant_id),
        ),
        Rule(
            "dead_letters",
            dead,
            dead.c.id,
            dead.c.replayed_at < ago(policy.dead_letters_days),
            None,
        ),
        # An event's deliveries and their attempts go with it (ON DELETE CASCADE); the
        # retry window (3 days) is long over by then.
        Rule(
            "webhook_events",
            events,
            events.c.id,
            events.c.fanned_out_at.is_not(None)
            & (events.c.created_at < ago(policy.delivery_logs_days)),
            _column_is(events.c.tenant_id),
        ),
        Rule(
            "campaign_recipients",
            recipients,
            recipients.c.id,
            recipients.c.campaign_id.in_(
                select(campaigns.c.id).where(
                    campaigns.c.status.in_([CampaignStatus.FINISHED, CampaignStatus.CANCELLED]),
                    func.coalesce(campaigns.c.finished_at, campaigns.c.updated_at)
                    < ago(policy.delivery_logs_days),
                )
            ),
            lambda tenant: recipients.c.campaign_id.in_(
                select(campaigns.c.id).where(campaigns.c.tenant_id == tenant)
            ),
        ),
    ]


def _column_is(column: Any) -> Callable[[Id], ColumnElement[bool]]:
    def of_tenant(tenant_id: Id) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = column == tenant_id
        return condition

    return of_tenant


#: Told after each batch: (rule name, rows deleted so far by that rule).
Progress = Callable[[str, int], None]


def apply_retention(
    engine: Engine,
    tables: Tables,
    policy: RetentionPolicy,
    *,
    now: datetime,
    tenant_id: Id | None = None,
    dry_run: bool = False,
    batch_size: int = 2_000,
    only: tuple[str, ...] | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Delete (or, ``dry_run``, count) the rows of every rule (``only`` these) expired at
    ``now``; per rule, how many. ``tenant_id`` narrows the tenant-scoped rules to that
    tenant's rows (the others run whole). Each batch of ``batch_size`` rows is its own
    transaction on ``engine``: call it outside any transaction of yours."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts: dict[str, int] = {}
    for rule in rules(tables, policy, now):
        if only is not None and rule.name not in only:
            continue
        where = [rule.where]
        if tenant_id is not None and rule.of_tenant is not None:
            where.append(rule.of_tenant(tenant_id))
        if dry_run:
            with engine.connect() as connection:
                counts[rule.name] = connection.execute(
                    select(func.count()).select_from(rule.table).where(*where)
                ).scalar_one()
            continue
        counts[rule.name] = _delete_in_batches(engine, rule, where, batch_size, progress)
    return counts


def _delete_in_batches(
    engine: Engine,
    rule: Rule,
    where: list[ColumnElement[bool]],
    batch_size: int,
    progress: Progress | None,
) -> int:
    batch = select(rule.key).where(*where).limit(batch_size)
    if engine.dialect.name == "postgresql":
        batch = batch.with_for_update(skip_locked=True)
    statement = delete(rule.table).where(rule.key.in_(batch.scalar_subquery()))
    deleted = 0
    while True:
        with engine.begin() as connection:
            gone = connection.execute(statement).rowcount
        deleted += gone
        if progress is not None and gone:
            progress(rule.name, deleted)
        if gone < batch_size:
            return deleted

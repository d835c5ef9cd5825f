"""Campaigns as set-based SQL: the ``campaigns`` row, its recipients, the tenant's opt-outs.

A campaign's life::

    draft ──start──▶ running ──pause──▶ paused ──resume──▶ running ──(none queued)──▶ finished
                        └──────────────────┴──cancel──▶ cancelled

:func:`start` expands the segment into ``campaign_recipients`` with **one**
``INSERT … SELECT`` (one row per lowercased address; an address on the suppression list is
inserted ``suppressed``, one that opted out of the tenant's campaigns ``unsubscribed``), so
its statements do not grow with the tenant's size. The dispatcher
(:func:`next_batch`) hands out ``queued`` rows in id order, a bounded batch at a time; the
send (:func:`load_for_send`, :func:`mark_recipient`) checks the campaign's status in the
transaction that mails, so a paused or cancelled campaign sends nothing more.

Every function takes a SQLAlchemy ``Connection`` (the caller's transaction) and runs on the
connection's mapped tables (:func:`~gcmc_jobs.db.tables.tables_of`): the package's three
campaign tables, the platform's ``tenants``, ``clients``, ``users`` and ``tenant_users``
wherever the mapping puts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select

from gcmc_jobs.db.enums import CampaignRecipientStatus, CampaignStatus, Role
from gcmc_jobs.db.tables import Id, Tables, tables_of
from gcmc_jobs.errors import (
    CampaignNotFound,
    CampaignStateError,
    InvalidPayload,
    UnknownTenant,
)

__all__ = [
    "REDISPATCH_AFTER",
    "Batch",
    "CampaignInfo",
    "Progress",
    "Segment",
    "SendRow",
    "cancel",
    "create",
    "get",
    "is_unsubscribed",
    "list_campaigns",
    "mark_recipient",
    "next_batch",
    "parse_segment",
    "pause",
    "record_unsubscribe",
    "release_recipient",
    "resume",
    "start",
]

#: A recipient handed to the queue this long ago and still ``queued`` (its message was lost:
#: dropped past its age limit, purged with its queue) is handed out again; the
#: ``email_log`` record of its key still keeps it from being mailed twice.
REDISPATCH_AFTER = timedelta(hours=1)

_R = CampaignRecipientStatus
_S = CampaignStatus


@dataclass(frozen=True)
class Segment:
    """Who a campaign mails in its tenant: ``clients`` (every active client with an email
    address) or ``staff`` (every active member, or only those of ``roles``). Written as
    ``clients``, ``staff`` or ``staff:owner,admin``."""

    kind: str
    roles: tuple[Role, ...] = ()

    def __str__(self) -> str:
        if self.roles:
            return f"{self.kind}:{','.join(role.value for role in self.roles)}"
        return self.kind


def parse_segment(text: str) -> Segment:
    """The :class:`Segment` ``text`` names; :class:`~gcmc_jobs.errors.InvalidPayload` saying
    what is accepted otherwise."""
    kind, _, roles = text.strip().partition(":")
    accepted = "segment must be 'clients', 'staff' or 'staff:ROLE,ROLE' (roles: " + ", ".join(
        role.value for role in Role
    )
    if kind == "clients" and not roles:
        return Segment("clients")
    if kind == "staff":
        names = [name.strip() for name in roles.split(",") if name.strip()] if roles else []
        try:
            parsed = tuple(sorted({Role(name) for name in names}, key=list(Role).index))
        except ValueError:
            raise InvalidPayload(f"{accepted}); got {text!r}") from None
        if roles and not parsed:
            raise InvalidPayload(f"{accepted}); got {text!r}")
        return Segment("staff", parsed)
    raise InvalidPayload(f"{accepted}); got {text!r}")


@dataclass(frozen=True)
class Progress:
    """A campaign's recipients by status, and the opt-outs its links recorded."""

    queued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    opt_outs: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.failed + self.suppressed + self.unsubscribed

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "unsubscribed": self.unsubscribed,
            "opt_outs": self.opt_outs,
        }


@dataclass(frozen=True)
class CampaignInfo:
    """One campaign and its progress."""

    id: int
    tenant_id: Id
    name: str
    segment: str
    status: CampaignStatus
    rate_per_second: float
    created_by: str
    subject_template: str
    body_template: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress = field(default_factory=Progress)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "segment": self.segment,
            "status": self.status.value,
            "rate_per_second": self.rate_per_second,
            "created_by": self.created_by,
            "subject_template": self.subject_template,
            "body_template": self.body_template,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress.as_dict(),
        }


def create(
    connection: Connection,
    *,
    tenant_id: Id,
    name: str,
    subject_template: str,
    body_template: str,
    segment: Segment,
    created_by: str,
    rate_per_second: float,
    now: datetime,
) -> int:
    """Insert a ``draft`` campaign and return its id (templates are checked by the caller:
    :func:`gcmc_jobs.email.campaigns.check_templates`). Raises
    :class:`~gcmc_jobs.errors.UnknownTenant` when no tenant has ``tenant_id``."""
    t = tables_of(connection)
    if not name.strip() or len(name) > 200 or not name.isprintable():
        raise InvalidPayload("name must be 1 to 200 printable characters")
    if not created_by.strip() or len(created_by) > 200 or not created_by.isprintable():
        raise InvalidPayload("created_by must be 1 to 200 printable characters")
    if not 0.001 <= rate_per_second <= 1_000_000:
        raise InvalidPayload(
            f"rate_per_second must be from 0.001 to 1,000,000 a second, got {rate_per_second}"
        )
    found = connection.scalar(select(t.tenants.c.id).where(t.tenants.c.id == tenant_id))
    if found is None:
        raise UnknownTenant(f"no tenant has id {tenant_id}: the campaign is not created")
    campaign_id: int = connection.execute(
        insert(t.campaigns)
        .values(
            tenant_id=tenant_id,
            name=name,
            subject_template=subject_template,
            body_template=body_template,
            segment=str(segment),
            status=_S.DRAFT,
            rate_per_second=float(rate_per_second),
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        .returning(t.campaigns.c.id)
    ).scalar_one()
    return campaign_id


def _segment_rows(t: Tables, tenant_id: Id, segment: Segment) -> Select[Any]:
    """One row per lowercased address of the segment: ``(address, name)``."""
    if segment.kind == "clients":
        c = t.clients
        address = func.lower(func.trim(c.c.email))
        return (
            select(address.label("address"), func.min(c.c.name).label("name"))
            .where(
                c.c.tenant_id == tenant_id,
                c.c.is_active.is_(true()),
                c.c.email.like("%_@_%"),
            )
            .group_by(address)
        )
    member, person = t.tenant_users, t.users
    address = func.lower(func.trim(person.c.email))
    query = (
        select(address.label("address"), func.min(person.c.name).label("name"))
        .select_from(member.join(person, person.c.id == member.c.user_id))
        .where(
            member.c.tenant_id == tenant_id,
            person.c.is_active.is_(true()),
            person.c.email.like("%_@_%"),
        )
        .group_by(address)
    )
    if segment.roles:
        query = query.where(member.c.role.in_(segment.roles))
    return query


def start(connection: Connection, campaign_id: int, *, dispatcher: str, now: datetime) -> int:
    """``draft`` → ``running``: expand the segment into recipients (one ``INSERT …
    SELECT``) and name the dispatcher chain allowed to run. Returns the recipients
    inserted. Two statements, whatever the tenant's size."""
    t = tables_of(connection)
    c = t.campaigns
    row = connection.execute(
        update(c)
        .where(c.c.id == campaign_id, c.c.status == _S.DRAFT)
        .values(status=_S.RUNNING, started_at=now, updated_at=now, dispatcher=dispatcher)
        .returning(c.c.tenant_id, c.c.segment)
    ).first()
    if row is None:
        raise _state_error(connection, campaign_id, "start", (_S.DRAFT,))
    tenant_id, segment = row
    source = _segment_rows(t, tenant_id, parse_segment(segment)).subquery("segment")
    suppressions, opt_outs = t.email_suppressions, t.email_unsubscribes
    status = case(
        (
            exists(
                select(suppressions.c.address).where(
                    func.lower(suppressions.c.address) == source.c.address
                )
            ),
            literal(_R.SUPPRESSED.value),
        ),
        (
            exists(
                select(opt_outs.c.address).where(
                    opt_outs.c.tenant_id == tenant_id, opt_outs.c.address == source.c.address
                )
            ),
            literal(_R.UNSUBSCRIBED.value),
        ),
        else_=literal(_R.QUEUED.value),
    )
    r = t.campaign_recipients
    result = connection.execute(
        insert(r).from_select(
            ["campaign_id", "address", "name", "status", "dispatches"],
            select(
                literal(campaign_id, r.c.campaign_id.type),
                source.c.address,
                func.substr(source.c.name, 1, 200),
                status,
                literal(0),
            ),
        ),
        execution_options={"preserve_rowcount": True},
    )
    return int(result.rowcount)


def _state_error(
    connection: Connection, campaign_id: int, action: str, allowed: tuple[CampaignStatus, ...]
) -> Exception:
    c = tables_of(connection).campaigns
    current = connection.scalar(select(c.c.status).where(c.c.id == campaign_id))
    if current is None:
        return CampaignNotFound(f"unknown campaign {campaign_id}: no campaign has this id")
    wanted = " or ".join(s.value for s in allowed)
    return CampaignStateError(
        f"campaign {campaign_id} is {CampaignStatus(current).value}: only a {wanted} campaign "
        f"can {action}"
    )


def _transition(
    connection: Connection,
    campaign_id: int,
    action: str,
    allowed: tuple[CampaignStatus, ...],
    now: datetime,
    **values: Any,
) -> None:
    c = tables_of(connection).campaigns
    done = connection.execute(
        update(c)
        .where(c.c.id == campaign_id, c.c.status.in_(allowed))
        .values(updated_at=now, **values)
        .returning(c.c.id)
    ).first()
    if done is None:
        raise _state_error(connection, campaign_id, action, allowed)


def pause(connection: Connection, campaign_id: int, *, now: datetime) -> None:
    """``running`` → ``paused``: the dispatcher stops, and queued messages that reach a
    worker send nothing and go back to waiting (:func:`release_recipient`)."""
    _transition(connection, campaign_id, "pause", (_S.RUNNING,), now, status=_S.PAUSED)


def resume(connection: Connection, campaign_id: int, *, dispatcher: str, now: datetime) -> None:
    """``paused`` → ``running`` with a new dispatcher chain (an older one that is still
    scheduled finds another id and stops): it continues with the rows still ``queued``."""
    _transition(
        connection,
        campaign_id,
        "resume",
        (_S.PAUSED,),
        now,
        status=_S.RUNNING,
        dispatcher=dispatcher,
    )


def cancel(connection: Connection, campaign_id: int, *, now: datetime) -> None:
    """``draft``, ``running`` or ``paused`` → ``cancelled``, for good: what is still
    ``queued`` is never sent (it stays ``queued`` in the progress)."""
    _transition(
        connection,
        campaign_id,
        "be cancelled",
        (_S.DRAFT, _S.RUNNING, _S.PAUSED),
        now,
        status=_S.CANCELLED,
        finished_at=now,
        dispatcher=None,
    )


def _progress(connection: Connection, ids: list[int]) -> dict[int, Progress]:
    """Progress of each campaign of ``ids``: two ``GROUP BY`` statements, whatever their
    number."""
    if not ids:
        return {}
    t = tables_of(connection)
    r, u = t.campaign_recipients, t.email_unsubscribes
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    for campaign_id, status, count in connection.execute(
        select(r.c.campaign_id, r.c.status, func.count())
        .where(r.c.campaign_id.in_(ids))
        .group_by(r.c.campaign_id, r.c.status)
    ):
        counts[campaign_id][CampaignRecipientStatus(status).value] = count
    for campaign_id, count in connection.execute(
        select(u.c.campaign_id, func.count())
        .where(u.c.campaign_id.in_(ids))
        .group_by(u.c.campaign_id)
    ):
        counts[campaign_id]["opt_outs"] = count
    return {i: Progress(**found) for i, found in counts.items()}


def _info(row: Any, progress: Progress) -> CampaignInfo:
    values = dict(row._mapping)
    del values["dispatcher"]  # the chain allowed to run: internal to the dispatcher
    return CampaignInfo(
        **{**values, "status": CampaignStatus(values["status"]), "progress": progress}
    )


def get(connection: Connection, campaign_id: int, *, tenant_id: Id | None = None) -> CampaignInfo:
    """The campaign and its progress (three statements); :class:`CampaignNotFound` when no
    campaign has ``campaign_id`` (of ``tenant_id``, when given)."""
    c = tables_of(connection).campaigns
    query = select(c).where(c.c.id == campaign_id)
    if tenant_id is not None:
        query = query.where(c.c.tenant_id == tenant_id)
    row = connection.execute(query).first()
    if row is None:
        raise CampaignNotFound(f"unknown campaign {campaign_id}: no campaign has this id")
    return _info(row, _progress(connection, [campaign_id])[campaign_id])


def list_campaigns(
    connection: Connection,
    *,
    tenant_id: Id | None = None,
    status: CampaignStatus | None = None,
    limit: int = 100,
) -> list[CampaignInfo]:
    """Campaigns, newest first, with their progress: three statements for any number."""
    c = tables_of(connection).campaigns
    query = select(c).order_by(c.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(c.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(c.c.status == status)
    rows = connection.execute(query).all()
    progress = _progress(connection, [row.id for row in rows])
    return [_info(row, progress[row.id]) for row in rows]


@dataclass(frozen=True)
class Batch:
    """What the dispatcher does next: ``state`` is ``dispatch`` (send ``recipients``, each
    ``(recipient_id, address, dispatch number)``, then come back in ``period_ms``),
    ``finished`` (nothing left: the campaign is now ``finished``) or ``stop`` (not running,
    or another chain's turn)."""

    state: str
    recipients: list[tuple[int, str, int]] = field(default_factory=list)
    tenant_id: Id | None = None
    period_ms: int = 1_000


def _for_update(query: Any, connection: Connection, **kwargs: Any) -> Any:
    # SQLite locks the whole database for a write transaction: no row locks to ask for.
    return query.with_for_update(**kwargs) if connection.dialect.name == "postgresql" else query


def next_batch(
    connection: Connection, campaign_id: int, *, dispatcher: str, limit: int, now: datetime
) -> Batch:
    """Hand out the next waiting recipients of a running campaign (mark them dispatched):
    one second's worth at its rate (at least one, at most ``limit``), to come back when
    that many are due (:attr:`Batch.period_ms`), fewer while earlier ones are still in
    flight: at most two batches are in the queue at once, so a pause takes effect within
    them and a slow worker is never flooded. Finishes the campaign when no recipient is
    left ``queued``. Three statements, whatever the campaign's size."""
    t = tables_of(connection)
    c, r = t.campaigns, t.campaign_recipients
    campaign = connection.execute(
        _for_update(
            select(c.c.status, c.c.dispatcher, c.c.tenant_id, c.c.rate_per_second).where(
                c.c.id == campaign_id
            ),
            connection,
        )
    ).first()
    if campaign is None or campaign.status != _S.RUNNING or campaign.dispatcher != dispatcher:
        return Batch("stop")
    stale = now - REDISPATCH_AFTER
    waiting = and_(
        r.c.campaign_id == campaign_id,
        r.c.status == _R.QUEUED,
        or_(r.c.dispatched_at.is_(None), r.c.dispatched_at < stale),
    )
    in_flight = connection.scalar(
        select(func.count()).where(
            r.c.campaign_id == campaign_id,
            r.c.status == _R.QUEUED,
            r.c.dispatched_at >= stale,
        )
    )
    rate = float(campaign.rate_per_second)
    per_tick = max(1, min(limit, math.ceil(rate)))
    room = min(per_tick, max(0, 2 * per_tick - int(in_flight or 0)))
    picked: list[tuple[int, str, int]] = []
    if room:
        chosen = _for_update(
            select(r.c.id).where(waiting).order_by(r.c.id).limit(room),
            connection,
            skip_locked=True,
        ).scalar_subquery()
        picked = [
            (row.id, row.address, row.dispatches)
            for row in connection.execute(
                update(r)
                .where(r.c.id.in_(chosen))
                .values(dispatched_at=now, dispatches=r.c.dispatches + 1)
                .returning(r.c.id, r.c.address, r.c.dispatches)
            )
        ]
    if not picked and not in_flight:
        finished = connection.execute(
            update(c)
            .where(
                c.c.id == campaign_id,
                c.c.status == _S.RUNNING,
                ~exists(
                    select(r.c.id).where(r.c.campaign_id == campaign_id, r.c.status == _R.QUEUED)
                ),
            )
            .values(status=_S.FINISHED, finished_at=now, updated_at=now, dispatcher=None)
            .returning(c.c.id)
        ).first()
        if finished is not None:
            return Batch("finished", tenant_id=campaign.tenant_id)
    return Batch(
        "dispatch",
        sorted(picked),
        tenant_id=campaign.tenant_id,
        period_ms=max(1, round(1000 * per_tick / rate)),
    )


@dataclass(frozen=True)
class SendRow:
    """What sending one campaign email needs, read in one statement."""

    campaign_id: int
    tenant_id: Id
    tenant_name: str
    campaign_name: str
    campaign_status: CampaignStatus
    subject_template: str
    body_template: str
    recipient_id: int
    address: str
    name: str | None
    status: CampaignRecipientStatus
    unsubscribed: bool
    suppressed: bool


def load_for_send(connection: Connection, campaign_id: int, recipient_id: int) -> SendRow | None:
    """The campaign, the recipient (row-locked on PostgreSQL: a second message for it waits),
    the tenant's name, and whether the address opted out or is suppressed: one statement.
    None when the row is gone (the campaign was deleted)."""
    t = tables_of(connection)
    c, r, tenants = t.campaigns, t.campaign_recipients, t.tenants
    opt_outs, suppressions = t.email_unsubscribes, t.email_suppressions
    query = (
        select(
            c.c.id.label("campaign_id"),
            c.c.tenant_id,
            tenants.c.name.label("tenant_name"),
            c.c.name.label("campaign_name"),
            c.c.status.label("campaign_status"),
            c.c.subject_template,
            c.c.body_template,
            r.c.id.label("recipient_id"),
            r.c.address,
            r.c.name,
            r.c.status,
            exists(
                select(opt_outs.c.address).where(
                    opt_outs.c.tenant_id == c.c.tenant_id, opt_outs.c.address == r.c.address
                )
            ).label("unsubscribed"),
            exists(
                select(suppressions.c.address).where(
                    func.lower(suppressions.c.address) == r.c.address
                )
            ).label("suppressed"),
        )
        .select_from(
            r.join(c, c.c.id == r.c.campaign_id).join(tenants, tenants.c.id == c.c.tenant_id)
        )
        .where(r.c.id == recipient_id, r.c.campaign_id == campaign_id)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=r)
    row = connection.execute(query).first()
    if row is None:
        return None
    v = row._mapping
    return SendRow(
        **{
            **v,
            "campaign_status": CampaignStatus(v["campaign_status"]),
            "status": CampaignRecipientStatus(v["status"]),
            "unsubscribed": bool(v["unsubscribed"]),
            "suppressed": bool(v["suppressed"]),
        }
    )


def mark_recipient(
    connection: Connection,
    recipient_id: int,
    status: CampaignRecipientStatus,
    *,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record a recipient's outcome (``sent_at`` = ``now`` when ``sent``)."""
    r = tables_of(connection).campaign_recipients
    values: dict[str, Any] = {"status": status, "error": error[:2_000] if error else None}
    if status is _R.SENT:
        values["sent_at"] = now
    connection.execute(update(r).where(r.c.id == recipient_id).values(**values))


def release_recipient(connection: Connection, recipient_id: int) -> None:
    """Put a recipient whose message found its campaign paused back to waiting: the
    dispatcher hands it out again after a resume."""
    r = tables_of(connection).campaign_recipients
    connection.execute(
        update(r).where(r.c.id == recipient_id, r.c.status == _R.QUEUED).values(dispatched_at=None)
    )


def is_unsubscribed(connection: Connection, tenant_id: Id, address: str) -> bool:
    """Whether ``address`` opted out of ``tenant_id``'s campaigns."""
    u = tables_of(connection).email_unsubscribes
    return bool(
        connection.scalar(
            select(exists().where(u.c.tenant_id == tenant_id, u.c.address == address.lower()))
        )
    )


def record_unsubscribe(
    connection: Connection, *, tenant_id: Id, address: str, campaign_id: int | None, now: datetime
) -> bool:
    """Record that ``address`` opted out of ``tenant_id``'s campaigns (idempotent: the first
    opt-out is kept; returns whether this one was new), and skip it in the tenant's campaigns
    that have not mailed it yet. Two statements."""
    t = tables_of(connection)
    u, c, r = t.email_unsubscribes, t.campaigns, t.campaign_recipients
    address = address.lower()
    origin = (
        select(c.c.id).where(c.c.id == campaign_id, c.c.tenant_id == tenant_id).scalar_subquery()
        if campaign_id is not None
        else None
    )
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "address": address,
        "campaign_id": origin,
        "unsubscribed_at": now,
    }
    statement: postgresql.Insert | sqlite.Insert
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(u).values(values)
    else:
        statement = sqlite.insert(u).values(values)
    result = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["tenant_id", "address"]),
        execution_options={"preserve_rowcount": True},
    )
    connection.execute(
        update(r)
        .where(
            r.c.address == address,
            r.c.status == _R.QUEUED,
            r.c.campaign_id.in_(
                select(c.c.id).where(
                    c.c.tenant_id == tenant_id,
                    c.c.status.in_((_S.DRAFT, _S.RUNNING, _S.PAUSED)),
                )
            ),
        )
        .values(status=_R.UNSUBSCRIBED)
    )
    return int(result.rowcount) == 1

"""The compliance refresh: every active client's score, in one statement per tenant.

For each active client of the tenant, with "today" the tenant's local date (DOMAIN.md):

- ``missing_count``: documents whose latest version is ``pending_review`` or ``rejected``,
  or that have no version at all (nothing valid is on file: the document is missing);
- ``expired_count``: latest version's ``expiry_date`` before today;
- ``expiring_count``: latest version's ``expiry_date`` in [today, today + 30];
- ``overdue_count``: open filings (``draft``, ``prepared``) with ``due_date`` before today;
- ``score = max(0, 100 - 5 * (missing + expired + expiring + overdue))``;
- ``level``: ``low`` risk when score ≥ 80, ``medium`` when ≥ 50, else ``high``.

The whole tenant is computed and upserted by a single ``INSERT … SELECT … GROUP BY … ON
CONFLICT DO UPDATE``, so the number of statements does not grow with the number of clients
(the audited loop made 4 per client) and the refresh is atomic: it either rewrites every
score of the tenant or none. Inactive clients keep their last score. In the same
transaction, :func:`~gcmc_jobs.services.snapshots.record_snapshot` then writes the tenant's
daily snapshot (one more statement).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gcmc_jobs.db.enums import (
    OPEN_FILING_STATUSES,
    ComplianceLevel,
    DocumentStatus,
)
from gcmc_jobs.db.tables import Id, Tables, tables_of
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.services import level_changes
from gcmc_jobs.services.snapshots import record_snapshot
from gcmc_jobs.services.tenancy import local_today, utcnow

__all__ = ["EXPIRING_WITHIN_DAYS", "RefreshResult", "level_for", "refresh_tenant", "score_for"]

#: A document expiring within this many days of today counts as ``expiring``.
EXPIRING_WITHIN_DAYS = 30
#: Points a client loses per open issue.
POINTS_PER_ISSUE = 5


def score_for(missing: int, expired: int, expiring: int, overdue: int) -> int:
    """The score of a client with these counts (the rule the SQL implements)."""
    return max(0, 100 - POINTS_PER_ISSUE * (missing + expired + expiring + overdue))


def level_for(score: int) -> ComplianceLevel:
    """The risk level of a score."""
    if score >= 80:
        return ComplianceLevel.LOW
    if score >= 50:
        return ComplianceLevel.MEDIUM
    return ComplianceLevel.HIGH


@dataclass(frozen=True)
class RefreshResult:
    """What one tenant's refresh did."""

    tenant_id: Id
    today: date
    clients: int
    #: Clients whose risk level changed (``compliance.level_changed`` events written);
    #: 0 when detection was off.
    level_changes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as an actor returns and ``job_runs.stats`` stores it."""
        data = asdict(self)
        data["today"] = self.today.isoformat()
        return data


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


#: The upsert, built once per dialect and mapping: only its bound parameters change between
#: tenants. (Building this statement costs several milliseconds of Python per call, more
#: than the database takes to run it for a small tenant.) Keyed by the id of the
#: :class:`Tables`, which :func:`~gcmc_jobs.db.tables.build_tables` keeps for the process.
_UPSERTS: dict[tuple[str, int], Any] = {}


def _upsert_statement(dialect: str, t: Tables) -> Any:
    """The refresh's ``INSERT … SELECT … ON CONFLICT`` for ``dialect`` on tables ``t``, with
    the bound parameters ``tenant_id``, ``today``, ``expiring_until`` and ``now``."""
    key = (dialect, id(t))
    statement = _UPSERTS.get(key)
    if statement is None:
        statement = _UPSERTS[key] = _build_upsert(dialect, t)
    return statement


def _build_upsert(dialect: str, t: Tables) -> Any:
    document, document_version, filing = t.documents.c, t.document_versions.c, t.filings.c
    client, scores = t.clients.c, t.compliance_scores
    tenant_id = bindparam("tenant_id", type_=client.tenant_id.type)
    today = bindparam("today", type_=Date())
    expiring_until = bindparam("expiring_until", type_=Date())
    now = bindparam("now", type_=scores.c.computed_at.type)
    version: Any
    if dialect == "postgresql":
        # Each document's latest version by primary key, one index lookup per document: a
        # plain join lets PostgreSQL hash the whole document_versions table once per tenant
        # (measured: a sequential scan of every tenant's versions for each refresh).
        version = (
            select(document_version.id, document_version.status, document_version.expiry_date)
            .where(document_version.id == document.latest_version_id)
            .limit(1)  # keeps the planner from flattening the subquery back into a join
            .lateral("latest_version")
        )
        onclause: Any = true()
    else:  # SQLite has no LATERAL; its planner looks the version up by key anyway.
        version = t.document_versions
        onclause = version.c.id == document.latest_version_id
    documents = (
        select(
            document.client_id.label("client_id"),
            _count_if(
                or_(
                    version.c.id.is_(None),
                    version.c.status.in_([DocumentStatus.PENDING_REVIEW, DocumentStatus.REJECTED]),
                )
            ).label("missing"),
            _count_if(version.c.expiry_date < today).label("expired"),
            _count_if(version.c.expiry_date.between(today, expiring_until)).label("expiring"),
        )
        .select_from(t.documents)
        .outerjoin(version, onclause)
        .where(document.tenant_id == tenant_id)
        .group_by(document.client_id)
        .subquery("documents_by_client")
    )
    filings = (
        select(filing.client_id.label("client_id"), func.count().label("overdue"))
        .where(
            filing.tenant_id == tenant_id,
            filing.status.in_(OPEN_FILING_STATUSES),
            filing.due_date < today,
        )
        .group_by(filing.client_id)
        .subquery("filings_by_client")
    )
    missing = func.coalesce(documents.c.missing, 0)
    expired = func.coalesce(documents.c.expired, 0)
    expiring = func.coalesce(documents.c.expiring, 0)
    overdue = func.coalesce(filings.c.overdue, 0)
    raw = 100 - POINTS_PER_ISSUE * (missing + expired + expiring + overdue)
    score = cast(case((raw < 0, 0), else_=raw), Integer)
    # Literals of the level column's type bind as the mapping's stored values; the CASE is
    # cast to the column's type (a native enum on Prisma: text does not convert implicitly).
    level_type = scores.c.level.type
    level = cast(
        case(
            (score >= 80, literal(ComplianceLevel.LOW, level_type)),
            (score >= 50, literal(ComplianceLevel.MEDIUM, level_type)),
            else_=literal(ComplianceLevel.HIGH, level_type),
        ),
        level_type,
    )
    rows = (
        select(
            client.id,
            client.tenant_id,
            score,
            level,
            missing,
            expired,
            expiring,
            overdue,
            now,
            *[now for _ in t.extra_columns.get("compliance_scores", ())],
        )
        .select_from(t.clients)
        .outerjoin(documents, documents.c.client_id == client.id)
        .outerjoin(filings, filings.c.client_id == client.id)
        # SQLite needs a WHERE in an INSERT … SELECT … ON CONFLICT (parser ambiguity).
        .where(and_(client.tenant_id == tenant_id, client.is_active.is_(True)))
    )
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - guarded by the settings' supported URLs
        raise ConfigurationError(f"unsupported database {dialect!r}: use PostgreSQL or SQLite")
    columns = [
        "client_id",
        "tenant_id",
        "score",
        "level",
        "missing_count",
        "expired_count",
        "expiring_count",
        "overdue_count",
        "computed_at",
        # The platform's bookkeeping columns (Prisma's createdAt/updatedAt), when mapped.
        *t.extra_columns.get("compliance_scores", ()),
    ]
    statement = insert(scores).from_select(
        [scores.c[name] for name in columns], rows, include_defaults=False
    )
    return statement.on_conflict_do_update(
        index_elements=[scores.c.client_id],
        # A client's tenant never changes: leaving tenant_id out of the update spares a
        # foreign-key check per row.
        set_={
            scores.c[name]: statement.excluded[name]
            for name in columns
            if name not in ("client_id", "tenant_id", "created_at")
        },
    )


def refresh_tenant(
    session: Session,
    tenant_id: Id,
    *,
    today: date | None = None,
    now: datetime | None = None,
    detect_level_changes: bool = True,
) -> RefreshResult:
    """Recompute and store the scores of every active client of one tenant.

    ``today`` defaults to the tenant's local date at ``now`` (default: this instant). Runs
    in the caller's transaction: three statements when ``today`` is not given (the tenant's
    timezone, the upsert, the day's snapshot), two when it is, whatever the number of
    clients.

    ``detect_level_changes`` (default on): the same upsert statement also writes a
    ``compliance.level_changed`` event for each client whose level changed
    (:mod:`gcmc_jobs.services.level_changes`) and notifies their compliance-alert
    recipients in-app (on SQLite, the demo's database: two to three statements more).
    """
    now = now or utcnow()
    if today is None:
        today = local_today(session, tenant_id, now)
    # psycopg resets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it.
    # Core execution on the session's connection (same transaction): the ORM would take a
    # parameter dictionary on an INSERT for a bulk insert.
    connection = session.connection()
    t = tables_of(session)
    parameters = {
        "tenant_id": tenant_id,
        "today": today,
        "expiring_until": today + timedelta(days=EXPIRING_WITHIN_DAYS),
        # Naive UTC on Prisma's timestamps without time zone (Tables.instant).
        "now": t.instant(now),
    }
    upsert = _upsert_statement(connection.dialect.name, t)
    changes = 0
    if detect_level_changes:
        clients, changes = _upsert_detecting_level_changes(
            session, upsert, t, parameters, tenant_id, today, now
        )
    else:
        result: CursorResult[Any] = connection.execute(
            upsert, parameters, execution_options={"preserve_rowcount": True}
        )
        clients = int(result.rowcount or 0)
    # A separate step, after the scores: the tenant's daily snapshot, from the scores just
    # written, in the same transaction (gcmc_jobs.services.snapshots).
    record_snapshot(connection, t, tenant_id, day=today, now=now)
    return RefreshResult(tenant_id, today, clients, changes)


# -- step: risk-level changes (issue 14) ------------------------------------------------------


def _upsert_detecting_level_changes(
    session: Session,
    upsert: Any,
    t: Tables,
    parameters: dict[str, Any],
    tenant_id: Id,
    today: date,
    now: datetime,
) -> tuple[int, int]:
    """Run the refresh's ``upsert`` so that it also writes the level-change events, then
    notify the changes in-app; returns (clients refreshed, level changes). See
    :mod:`gcmc_jobs.services.level_changes`."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One statement: the upsert, the events and their in-app notifications.
        row = connection.execute(level_changes.detecting_statement(upsert, t), parameters).one()
        return int(row.clients), int(row.changes)
    before = level_changes.sqlite_levels_before(session, tenant_id)
    result: CursorResult[Any] = connection.execute(
        upsert, parameters, execution_options={"preserve_rowcount": True}
    )
    clients = int(result.rowcount or 0)
    changes = level_changes.sqlite_detect(session, tenant_id, before, today, now)
    if changes:
        level_changes.notify_level_changes(session, tenant_id, today, now)
    return clients, changes

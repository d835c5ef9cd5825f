"""Data for the fault scenarios, and a ledger that counts committed refreshes.

The refresh rewrites the same scores when it runs twice, so the scores alone cannot tell
"ran once" from "ran twice". :func:`install_refresh_ledger` adds a trigger (test-only, in
the scenario's own database) that records, per committed transaction, which tenant's scores
it wrote: a rolled-back attempt leaves no trace, a duplicate leaves two rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, Engine, bindparam, insert, text, update

from gcmc_jobs.db.models import (
    Client,
    Document,
    DocumentStatus,
    DocumentVersion,
    Filing,
    FilingStatus,
    Role,
    Tenant,
    TenantUser,
    User,
)

LEDGER_DDL = [
    """
    CREATE TABLE faults_refresh_ledger (
        txid bigint NOT NULL,
        tenant_id bigint NOT NULL,
        rows_written integer NOT NULL DEFAULT 1,
        computed_at timestamptz NOT NULL,
        PRIMARY KEY (txid, tenant_id)
    )
    """,
    """
    CREATE FUNCTION faults_record_refresh() RETURNS trigger AS $$
    BEGIN
        INSERT INTO faults_refresh_ledger (txid, tenant_id, computed_at)
        VALUES (txid_current(), NEW.tenant_id, NEW.computed_at)
        ON CONFLICT (txid, tenant_id)
        DO UPDATE SET rows_written = faults_refresh_ledger.rows_written + 1;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER faults_refresh_ledger AFTER INSERT OR UPDATE ON compliance_scores
    FOR EACH ROW EXECUTE FUNCTION faults_record_refresh()
    """,
]


def install_refresh_ledger(engine: Engine) -> None:
    """Record every committed write of ``compliance_scores`` per (transaction, tenant)."""
    with engine.begin() as connection:
        for statement in LEDGER_DDL:
            connection.execute(text(statement))


def refreshes_per_tenant(engine: Engine) -> dict[int, int]:
    """How many committed refresh transactions wrote each tenant's scores."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT tenant_id, count(*) FROM faults_refresh_ledger GROUP BY tenant_id")
        ).all()
    return {int(tenant): int(count) for tenant, count in rows}


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_tenants` wrote."""

    tenant_ids: list[int]
    clients_per_tenant: int


def seed_tenants(
    engine: Engine, *, tenants: int, clients_per_tenant: int, today: date, owners: bool = False
) -> Seeded:
    """Tenants whose every active client scores 85: one rejected document (missing), one
    approved document expiring in 10 days (expiring) and one open filing past due (overdue).

    Set-based (a handful of executemany statements whatever the size), so a scenario can
    seed hundreds of tenants in well under a second.
    """
    with engine.begin() as connection:
        tenant_ids = list(
            connection.scalars(
                insert(Tenant).returning(Tenant.id, sort_by_parameter_order=True),
                [{"name": f"Firm {n}", "timezone": "UTC"} for n in range(tenants)],
            )
        )
        if owners:  # one owner per tenant, who receives the tenant's compliance alerts
            user_ids = list(
                connection.scalars(
                    insert(User).returning(User.id, sort_by_parameter_order=True),
                    [
                        {"email": f"owner{t}@firm{t}.example", "name": f"Owner {t}"}
                        for t in tenant_ids
                    ],
                )
            )
            connection.execute(
                insert(TenantUser),
                [
                    {"tenant_id": t, "user_id": u, "role": Role.OWNER}
                    for t, u in zip(tenant_ids, user_ids, strict=True)
                ],
            )
        client_rows = [
            {"tenant_id": t, "name": f"Client {t}-{n}", "email": f"c{t}-{n}@client.example"}
            for t in tenant_ids
            for n in range(clients_per_tenant)
        ]
        client_ids = list(
            connection.scalars(
                insert(Client).returning(Client.id, sort_by_parameter_order=True), client_rows
            )
        )
        tenant_of = [row["tenant_id"] for row in client_rows]
        document_rows = [
            {
                "tenant_id": tenant_of[i],
                "client_id": client_id,
                "title": f"Doc {kind} {client_id}",
                "document_type": "license",
            }
            for i, client_id in enumerate(client_ids)
            for kind in ("rejected", "expiring")
        ]
        document_ids = list(
            connection.scalars(
                insert(Document).returning(Document.id, sort_by_parameter_order=True),
                document_rows,
            )
        )
        version_rows = [
            {
                "document_id": document_id,
                "status": (DocumentStatus.REJECTED if n % 2 == 0 else DocumentStatus.APPROVED),
                "expiry_date": None if n % 2 == 0 else today + timedelta(days=10),
            }
            for n, document_id in enumerate(document_ids)
        ]
        version_ids = list(
            connection.scalars(
                insert(DocumentVersion).returning(DocumentVersion.id, sort_by_parameter_order=True),
                version_rows,
            )
        )
        connection.execute(
            update(Document)
            .where(Document.id == bindparam("doc_id"))
            .values(latest_version_id=bindparam("version_id")),
            [
                {"doc_id": d, "version_id": v}
                for d, v in zip(document_ids, version_ids, strict=True)
            ],
        )
        connection.execute(
            insert(Filing),
            [
                {
                    "tenant_id": tenant_of[i],
                    "client_id": client_id,
                    "filing_type": "vat_return",
                    "period_start": today - timedelta(days=90),
                    "period_end": today - timedelta(days=60),
                    "due_date": today - timedelta(days=3),
                    "status": FilingStatus.DRAFT,
                }
                for i, client_id in enumerate(client_ids)
            ],
        )
    return Seeded(tenant_ids=tenant_ids, clients_per_tenant=clients_per_tenant)


#: The score every seeded client gets: 100 - 5 * (1 missing + 1 expiring + 1 overdue).
SEEDED_SCORE = 85


class ScoresLock:
    """Hold a lock that makes every refresh's upsert wait: the test decides when jobs
    that are already running may finish, so "in flight" is a state, not a race."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def __enter__(self) -> ScoresLock:
        self.connection = self.engine.connect()
        self.connection.execute(text("LOCK TABLE compliance_scores IN SHARE ROW EXCLUSIVE MODE"))
        return self

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None

    def lost(self) -> None:
        """The server went away under the lock: forget the dead connection."""
        if self.connection is not None:
            self.connection.invalidate()
            self.connection = None

    def __exit__(self, *exc: object) -> None:
        self.release()

    def waiting(self) -> int:
        """How many refresh upserts are waiting on the lock right now."""
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        # the upsert, alone or inside the refresh's level-change detecting
                        # statement (WITH … upserted AS (INSERT INTO compliance_scores …)
                        "AND query LIKE '%INSERT INTO compliance_scores%'"
                    )
                )
                or 0
            )


def email_statuses(engine: Engine) -> dict[str, str]:
    """``email_log``: status per dedup key (one row per logical email)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT dedup_key, status FROM email_log")).all()
    return {str(key): str(status) for key, status in rows}


def custom_email(n: int, *, prefix: str) -> dict[str, object]:
    """A small ``custom`` email payload, numbered."""
    return {
        "tenant_name": "Acme CPA",
        "subject": f"Notice {prefix} {n}",
        "body": f"Message number {n} of the {prefix} batch.",
        "recipient_name": f"Person {n}",
    }

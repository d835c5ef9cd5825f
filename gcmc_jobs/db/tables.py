"""The SQLAlchemy Core tables of one :class:`~gcmc_jobs.db.mapping.SchemaMapping`.

:func:`build_tables` turns a mapping into :class:`Tables`: every column is declared
``Column("<physical name>", type, key="<logical name>")``, so the SQL of the jobs writes
``t.clients.c.tenant_id`` and renders ``"Client"."tenantId"`` on the Prisma preset; enum
columns are :class:`MappedEnum`, which binds the logical value (``Role.OWNER``) as the
physical one (``'OWNER'``) and reads it back as the logical member; id columns take the
mapping's id type. The package's own tables keep their names; their tenant and user id
columns take the same id type.

Which tables a job's session uses is bound to its engine (:func:`bind`, which the runtime
calls for the engine it owns or is given); :func:`tables_of` finds them from a session or a
connection, and falls back to the ``gcmc`` preset for an engine nobody bound.

Where a row points at another tenant-owned row, the foreign key includes ``tenant_id``
(``(tenant_id, client_id) → clients (tenant_id, id)``), so a database the package creates
refuses a document of tenant A filed under a client of tenant B. Day columns
(``expiry_date``, ``due_date``, ``local_date``) are DATEs and are compared with the tenant's
local calendar date, never with a timestamp.
"""

from __future__ import annotations

import enum
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    true,
)
from sqlalchemy import Enum as SaEnum
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from gcmc_jobs.db.enums import (
    CampaignRecipientStatus,
    CampaignStatus,
    ComplianceLevel,
    DocumentStatus,
    EmailEventKind,
    EmailStatus,
    FilingStatus,
    JobRunStatus,
    NotificationCategory,
    Role,
    SmsStatus,
    SmsSuppressionReason,
    SuppressionReason,
)
from gcmc_jobs.db.mapping import GCMC, OWN_TABLES, PLATFORM_TABLES, SchemaMapping

__all__ = [
    "NAMING_CONVENTION",
    "Id",
    "MappedEnum",
    "Tables",
    "bind",
    "build_tables",
    "tables_of",
]

#: A platform id as the code holds it: an int (``integer`` ids) or a str (``uuid``, ``text``).
Id = int | str

#: Constraint names are stable so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT identities on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")


class new_text_id(FunctionElement[str]):
    """A new random text id, made by the database for each row (Prisma makes ``cuid()``s in
    the client, so its text ids have no database default: rows the package inserts need
    one)."""

    type = Text()
    inherit_cache = True


@compiles(new_text_id, "postgresql")
def _new_text_id_pg(element: new_text_id, compiler: SQLCompiler, **kw: Any) -> str:
    return "replace(gen_random_uuid()::text, '-', '')"


@compiles(new_text_id)
def _new_text_id_default(element: new_text_id, compiler: SQLCompiler, **kw: Any) -> str:
    return "lower(hex(randomblob(16)))"


class MappedEnum(TypeDecorator[enum.StrEnum]):
    """An enum column storing the physical values of a logical ``StrEnum``.

    Binds a member (or its logical value) as its physical value, and reads a physical value
    back as the member, so the code compares with ``Role.OWNER`` on every mapping.
    """

    impl = SaEnum
    cache_ok = True

    def __init__(
        self,
        logical: type[enum.StrEnum],
        type_name: str,
        native: bool,
        values: tuple[tuple[str, str], ...],
        schema: str | None = None,
    ) -> None:
        self.logical = logical
        self.type_name = type_name
        self.native = native
        self.values = values
        self.schema = schema
        self._to_physical = dict(values)
        self._to_logical = {p: logical(v) for v, p in values}
        super().__init__(
            *[p for _, p in values],
            name=type_name,
            native_enum=native,
            create_constraint=not native,
            length=32,
            schema=schema if native else None,
            validate_strings=True,
        )

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return self._to_physical[self.logical(value).value]

    def process_result_value(self, value: Any, dialect: Any) -> enum.StrEnum | None:
        if value is None:
            return None
        return self._to_logical[value]

    def physical(self, value: enum.StrEnum | str) -> str:
        """The stored form of logical ``value``."""
        return self._to_physical[self.logical(value).value]

    @property
    def python_type(self) -> type[Any]:
        return self.logical


@dataclass(frozen=True)
class Tables:
    """Every table of one mapping, by logical name (``tables.clients``)."""

    mapping: SchemaMapping
    metadata: MetaData
    managed: bool
    tenants: Table
    users: Table
    tenant_users: Table
    clients: Table
    documents: Table
    document_versions: Table
    filings: Table
    compliance_scores: Table
    notifications: Table
    notification_preferences: Table
    email_log: Table
    email_suppressions: Table
    dead_letters: Table
    job_runs: Table
    outbox_messages: Table
    scheduled_tenants: Table
    sms_opt_ins: Table
    sms_suppressions: Table
    sms_log: Table
    email_events: Table
    email_suppression_changes: Table
    import_keys: Table
    compliance_snapshots: Table
    reports: Table
    report_files: Table
    webhook_endpoints: Table
    webhook_events: Table
    webhook_deliveries: Table
    webhook_attempts: Table
    campaigns: Table
    campaign_recipients: Table
    email_unsubscribes: Table
    extra_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def table(self, logical: str) -> Table:
        """The table of logical name ``logical``."""
        table: Table = getattr(self, logical)
        return table

    @property
    def platform(self) -> list[Table]:
        """The platform's tables (DOMAIN.md: it owns and migrates them)."""
        return [self.table(name) for name in PLATFORM_TABLES]

    @property
    def own(self) -> list[Table]:
        """The package's own tables."""
        return [self.table(name) for name in OWN_TABLES]

    def enum_type(self, table: str, column: str) -> MappedEnum:
        """The :class:`MappedEnum` of ``table.column``."""
        column_type = self.table(table).c[column].type
        assert isinstance(column_type, MappedEnum)
        return column_type

    def timestamps(self, table: str, now: Any) -> dict[str, Any]:
        """Values for the platform's bookkeeping columns of ``table`` (Prisma's
        ``createdAt`` / ``updatedAt``) on a row the package writes; empty when the mapping has
        none."""
        return dict.fromkeys(self.extra_columns.get(table, ()), now)

    def instant(self, now: datetime) -> datetime:
        """``now`` as the platform's timestamp columns take it: unchanged for ``timestamptz``;
        naive UTC for a ``timestamp`` without time zone (Prisma's, read back as UTC), since
        PostgreSQL would store an aware value in the database session's time zone."""
        if self.mapping.timestamp_with_time_zone or now.tzinfo is None:
            return now
        return now.astimezone(UTC).replace(tzinfo=None)


_BUILT: dict[tuple[str, bool], Tables] = {}
_BUILD_LOCK = threading.Lock()


def build_tables(mapping: SchemaMapping = GCMC, *, managed: bool = True) -> Tables:
    """The tables of ``mapping`` (built once per mapping and mode, then shared).

    ``managed`` False (the platform owns its tables): the package's own tables get no
    foreign key to the platform's, so the platform's migrations stay free to change them.
    """
    key = (mapping.model_dump_json(), managed)
    with _BUILD_LOCK:
        tables = _BUILT.get(key)
        if tables is None:
            tables = _BUILT[key] = _Builder(mapping, managed).build()
        return tables


class _Builder:
    def __init__(self, mapping: SchemaMapping, managed: bool) -> None:
        self.m = mapping
        self.managed = managed
        self.metadata = MetaData(naming_convention=NAMING_CONVENTION)
        self.extra: dict[str, tuple[str, ...]] = {}

    # -- types ---------------------------------------------------------------------------

    def id_type(self) -> TypeEngine[Any]:
        if self.m.id_type == "integer":
            return BigId
        if self.m.id_type == "uuid":
            return Uuid(as_uuid=False)
        return Text()

    def id_column(self, table: str, name: str = "id") -> Column[Any]:
        kwargs: dict[str, Any] = {"primary_key": True}
        if self.m.id_type == "integer":
            kwargs["autoincrement"] = True
        elif self.m.id_type == "uuid":
            kwargs["server_default"] = func.gen_random_uuid()
        else:
            kwargs["default"] = new_text_id()
        return self.col(table, name, self.id_type(), **kwargs)

    def timestamp(self) -> TypeEngine[Any]:
        tz = self.m.timestamp_with_time_zone
        base = DateTime(timezone=tz)
        if self.m.timestamp_precision is None:
            return base
        return base.with_variant(
            postgresql.TIMESTAMP(timezone=tz, precision=self.m.timestamp_precision), "postgresql"
        )

    def mapped_enum(self, name: str, logical: type[enum.StrEnum]) -> MappedEnum:
        mapped = self.m.enum(name)
        values = tuple((v.value, mapped.values.get(v.value, v.value)) for v in logical)
        schema = self.m.db_schema if mapped.native else None
        return MappedEnum(logical, mapped.type_name, mapped.native, values, schema)

    def own_enum(self, logical: type[enum.StrEnum]) -> SaEnum:
        """The package's own enums: a VARCHAR plus a CHECK, storing the member's value."""
        return SaEnum(
            logical,
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
            name=logical.__name__.lower(),
        )

    # -- columns and tables --------------------------------------------------------------

    def col(self, table: str, name: str, type_: Any, *args: Any, **kwargs: Any) -> Column[Any]:
        kwargs.setdefault("nullable", False)
        return Column(self.m.column_name(table, name), type_, *args, key=name, **kwargs)

    def platform_table(self, name: str, *items: Any) -> Table:
        extra = []
        present = {getattr(i, "key", None) for i in items}
        for logical, physical in self.m.timestamps.items():
            if logical in present:
                continue
            default = func.current_timestamp()
            extra.append(
                Column(
                    physical,
                    self.timestamp(),
                    key=logical,
                    nullable=False,
                    default=default,
                    server_default=default if logical == "created_at" else None,
                    onupdate=default if logical == "updated_at" else None,
                )
            )
        self.extra[name] = tuple(c.key for c in extra)
        return Table(
            self.m.table_name(name), self.metadata, *items, *extra, schema=self.m.db_schema
        )

    def own_table(self, name: str, *items: Any) -> Table:
        return Table(name, self.metadata, *items, schema=self.m.package_schema)

    def tenant_ref(self, tenants: Table, ondelete: str) -> list[Any]:
        """A foreign key to the tenants from an own table (none when the platform owns them)."""
        return [ForeignKey(tenants.c.id, ondelete=ondelete)] if self.managed else []

    def tenant_column(
        self, tenants: Table, ondelete: str = "CASCADE", **options: Any
    ) -> Column[Any]:
        """An own table's ``tenant_id``: the mapping's id type, referencing the tenants
        (:meth:`tenant_ref`); ``options`` as ``Column``'s (``nullable``, ``index``…)."""
        return Column("tenant_id", self.id_type(), *self.tenant_ref(tenants, ondelete), **options)

    def build(self) -> Tables:
        col, ts = self.col, self.timestamp
        tenants = self.platform_table(
            "tenants",
            self.id_column("tenants"),
            col("tenants", "name", String(200)),
            col("tenants", "timezone", String(64), default="UTC", server_default="UTC"),
            col("tenants", "is_active", Boolean, default=True, server_default=true()),
        )
        users = self.platform_table(
            "users",
            self.id_column("users"),
            col("users", "email", String(320), unique=True),
            col("users", "name", String(200)),
            col("users", "is_active", Boolean, default=True, server_default=true()),
        )
        idt = self.id_type
        tenant_users = self.platform_table(
            "tenant_users",
            col(
                "tenant_users",
                "tenant_id",
                idt(),
                ForeignKey(tenants.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            col(
                "tenant_users",
                "user_id",
                idt(),
                ForeignKey(users.c.id, ondelete="CASCADE"),
                primary_key=True,
                index=True,
            ),
            col("tenant_users", "role", self.mapped_enum("role", Role)),
        )
        Index("ix_tenant_users_tenant_role", tenant_users.c.tenant_id, tenant_users.c.role)
        clients = self.platform_table(
            "clients",
            self.id_column("clients"),
            col(
                "clients",
                "tenant_id",
                idt(),
                ForeignKey(tenants.c.id, ondelete="CASCADE"),
                index=True,
            ),
            col("clients", "name", String(200)),
            col("clients", "email", String(320), nullable=True),
            col(
                "clients",
                "assigned_user_id",
                idt(),
                ForeignKey(users.c.id, ondelete="SET NULL"),
                nullable=True,
            ),
            col("clients", "is_active", Boolean, default=True, server_default=true()),
        )
        # Target of the tenant-aware foreign keys below.
        clients.append_constraint(UniqueConstraint(clients.c.tenant_id, clients.c.id))
        Index("ix_clients_tenant_active", clients.c.tenant_id, clients.c.is_active)
        documents = self.platform_table(
            "documents",
            self.id_column("documents"),
            col("documents", "tenant_id", idt(), ForeignKey(tenants.c.id, ondelete="CASCADE")),
            col("documents", "client_id", idt()),
            col("documents", "title", String(300)),
            col("documents", "document_type", String(100)),
            # latest_version_id's foreign key is added below: the two tables refer to each
            # other, so it is created after both (use_alter).
            col("documents", "latest_version_id", idt(), nullable=True),
        )
        documents.append_constraint(
            ForeignKeyConstraint(
                [documents.c.tenant_id, documents.c.client_id],
                [clients.c.tenant_id, clients.c.id],
                ondelete="CASCADE",
            )
        )
        Index("ix_documents_tenant_client", documents.c.tenant_id, documents.c.client_id)
        versions = self.platform_table(
            "document_versions",
            self.id_column("document_versions"),
            col(
                "document_versions",
                "document_id",
                idt(),
                ForeignKey(documents.c.id, ondelete="CASCADE"),
                index=True,
            ),
            col("document_versions", "status", self.mapped_enum("document_status", DocumentStatus)),
            col("document_versions", "expiry_date", Date, nullable=True, index=True),
        )
        documents.append_constraint(
            ForeignKeyConstraint(
                [documents.c.latest_version_id],
                [versions.c.id],
                use_alter=True,
                ondelete="SET NULL",
                name="fk_documents_latest_version_id_document_versions",
            )
        )
        filings = self.platform_table(
            "filings",
            self.id_column("filings"),
            col("filings", "tenant_id", idt(), ForeignKey(tenants.c.id, ondelete="CASCADE")),
            col("filings", "client_id", idt()),
            col("filings", "filing_type", String(100)),
            col("filings", "period_start", Date),
            col("filings", "period_end", Date),
            col("filings", "due_date", Date),
            col("filings", "status", self.mapped_enum("filing_status", FilingStatus)),
            col(
                "filings",
                "assigned_user_id",
                idt(),
                ForeignKey(users.c.id, ondelete="SET NULL"),
                nullable=True,
            ),
        )
        filings.append_constraint(
            ForeignKeyConstraint(
                [filings.c.tenant_id, filings.c.client_id],
                [clients.c.tenant_id, clients.c.id],
                ondelete="CASCADE",
            )
        )
        Index(
            "ix_filings_tenant_status_due",
            filings.c.tenant_id,
            filings.c.status,
            filings.c.due_date,
        )
        Index("ix_filings_tenant_client", filings.c.tenant_id, filings.c.client_id)
        scores = self.platform_table(
            "compliance_scores",
            col(
                "compliance_scores",
                "client_id",
                idt(),
                ForeignKey(clients.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            col(
                "compliance_scores",
                "tenant_id",
                idt(),
                ForeignKey(tenants.c.id, ondelete="CASCADE"),
                index=True,
            ),
            col("compliance_scores", "score", Integer),
            col(
                "compliance_scores", "level", self.mapped_enum("compliance_level", ComplianceLevel)
            ),
            col("compliance_scores", "missing_count", Integer),
            col("compliance_scores", "expired_count", Integer),
            col("compliance_scores", "expiring_count", Integer),
            col("compliance_scores", "overdue_count", Integer),
            col("compliance_scores", "computed_at", ts()),
        )
        notifications = self.platform_table(
            "notifications",
            self.id_column("notifications"),
            col(
                "notifications",
                "tenant_id",
                idt(),
                ForeignKey(tenants.c.id, ondelete="CASCADE"),
                index=True,
            ),
            col("notifications", "user_id", idt(), ForeignKey(users.c.id, ondelete="CASCADE")),
            col("notifications", "kind", String(64)),
            col("notifications", "subject_type", String(64)),
            col("notifications", "subject_id", idt()),
            col("notifications", "title", String(300)),
            col("notifications", "body", Text),
            col("notifications", "dedup_key", String(255), unique=True),
            col(
                "notifications",
                "created_at",
                ts(),
                default=func.current_timestamp(),
                server_default=func.current_timestamp(),
            ),
            col("notifications", "read_at", ts(), nullable=True),
        )
        Index("ix_notifications_user_unread", notifications.c.user_id, notifications.c.read_at)
        preferences = self.platform_table(
            "notification_preferences",
            col(
                "notification_preferences",
                "user_id",
                idt(),
                ForeignKey(users.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            col(
                "notification_preferences",
                "tenant_id",
                idt(),
                ForeignKey(tenants.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            col(
                "notification_preferences",
                "category",
                self.mapped_enum("notification_category", NotificationCategory),
                primary_key=True,
            ),
            col("notification_preferences", "in_app", Boolean, default=True, server_default=true()),
            col("notification_preferences", "email", Boolean, default=True, server_default=true()),
        )
        own = self.build_own(tenants)
        return Tables(
            mapping=self.m,
            metadata=self.metadata,
            managed=self.managed,
            tenants=tenants,
            users=users,
            tenant_users=tenant_users,
            clients=clients,
            documents=documents,
            document_versions=versions,
            filings=filings,
            compliance_scores=scores,
            notifications=notifications,
            notification_preferences=preferences,
            extra_columns=self.extra,
            **own,
        )

    def build_own(self, tenants: Table) -> dict[str, Table]:
        """The package's own tables (their names never change)."""
        tz = DateTime(timezone=True)
        dead_letters = self.own_table(
            "dead_letters",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("message_id", String(64), nullable=False, unique=True),
            Column("queue", String(200), nullable=False, index=True),
            Column("actor", String(200), nullable=False),
            Column("args", Json, nullable=False),
            Column("kwargs", Json, nullable=False),
            Column("options", Json, nullable=False),
            Column("error_type", String(200), nullable=False),
            Column("error", Text, nullable=False),
            Column("traceback", Text),
            Column("attempts", Integer, nullable=False),
            Column("failed_at", tz, nullable=False),
            Column("replayed_at", tz),
            Column("replayed_as", String(64)),
        )
        Index("ix_dead_letters_actor_failed", dead_letters.c.actor, dead_letters.c.failed_at)
        suppressions = self.own_table(
            "email_suppressions",
            Column("address", String(320), primary_key=True),
            Column("reason", self.own_enum(SuppressionReason), nullable=False),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            # Who or what added it: "provider:ses", "dsn", "smtp", "api", "cli:<user>"; and
            # the event that did (``<source>:<event id>``), for bounces and complaints.
            Column("source", String(200)),
            Column("event_id", String(300)),
        )
        # Addresses are compared case-insensitively (lower() on both sides): this index serves
        # that lookup, once per email (gcmc_jobs.services.email_log.suppression_reason).
        Index("ix_email_suppressions_address_lower", func.lower(suppressions.c.address))
        email_log = self.own_table(
            "email_log",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("dedup_key", String(255), nullable=False, unique=True),
            self.tenant_column(tenants, "SET NULL", index=True),
            Column("to_address", String(320), nullable=False),
            Column("kind", String(64), nullable=False),
            Column("subject", String(998), nullable=False),
            Column("status", self.own_enum(EmailStatus), nullable=False),
            Column("provider_message_id", String(998)),
            Column("error", Text),
            Column("attempts", Integer, nullable=False, default=0, server_default="0"),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            Column("sent_at", tz),
        )
        Index("ix_email_log_to_created", email_log.c.to_address, email_log.c.created_at)
        Index("ix_email_log_created_at", email_log.c.created_at)  # retention's batches
        # Provider events name an email by its Message-ID (gcmc_jobs.services.bounces).
        Index("ix_email_log_provider_message_id", email_log.c.provider_message_id)
        job_runs = self.own_table(
            "job_runs",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("job", String(64), nullable=False),
            self.tenant_column(tenants, nullable=False, index=True),
            Column("local_date", Date, nullable=False),
            Column("scheduled_for", tz),
            Column("started_at", tz),
            Column("finished_at", tz),
            Column("status", self.own_enum(JobRunStatus), nullable=False),
            Column("stats", Json, nullable=False, default=dict),
            Column("error", Text),
            UniqueConstraint("job", "tenant_id", "local_date"),
        )
        Index("ix_job_runs_local_date", job_runs.c.local_date)  # retention's batches
        # The transactional outbox (gcmc_jobs.outbox): no foreign key, whatever the ids.
        outbox_messages = self.own_table(
            "outbox_messages",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("message_id", String(64), nullable=False, unique=True),
            Column("queue_name", String(200), nullable=False),
            Column("actor_name", String(200), nullable=False),
            Column("body", Text, nullable=False),
            Column("not_before_ms", BigInteger),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
        )
        # When the scheduler's tick first found each active tenant (gcmc_jobs.scheduling.
        # seen_tenants): a day before it is not overdue. No foreign key (a row outliving its
        # tenant is harmless: readers join it to the tenants), whatever the platform's ids.
        scheduled_tenants = self.own_table(
            "scheduled_tenants",
            Column("tenant_id", self.id_type(), primary_key=True),
            Column("first_seen_at", tz, nullable=False),
        )
        campaigns = self.own_table(
            "campaigns",
            Column("id", BigId, primary_key=True, autoincrement=True),
            self.tenant_column(tenants, nullable=False, index=True),
            Column("name", String(200), nullable=False),
            Column("subject_template", Text, nullable=False),
            Column("body_template", Text, nullable=False),
            Column("segment", String(200), nullable=False),
            Column("status", self.own_enum(CampaignStatus), nullable=False),
            # Numeric, not a float: the same type family on every database (db check).
            Column("rate_per_second", Numeric(12, 3, asdecimal=False), nullable=False),
            # The message id of the dispatcher chain allowed to run (start and resume set a
            # new one; an older chain that finds another id here stops).
            Column("dispatcher", String(64)),
            Column("created_by", String(200), nullable=False),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            Column("updated_at", tz, server_default=func.current_timestamp(), nullable=False),
            Column("started_at", tz),
            Column("finished_at", tz),
            CheckConstraint("rate_per_second > 0", name="rate_positive"),
        )
        campaign_recipients = self.own_table(
            "campaign_recipients",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column(
                "campaign_id",
                BigId,
                ForeignKey(campaigns.c.id, ondelete="CASCADE"),
                nullable=False,
            ),
            Column("address", String(320), nullable=False),
            Column("name", String(200)),
            Column("status", self.own_enum(CampaignRecipientStatus), nullable=False),
            # Times handed to the queue (a dispatch's dedup key names it), and when the last
            # one was: NULL while the row waits for the dispatcher.
            Column("dispatches", Integer, nullable=False, default=0, server_default="0"),
            Column("dispatched_at", tz),
            Column("error", Text),
            Column("sent_at", tz),
            UniqueConstraint("campaign_id", "address"),
        )
        Index(
            "ix_campaign_recipients_campaign_status",
            campaign_recipients.c.campaign_id,
            campaign_recipients.c.status,
        )
        # One opt-out per tenant and address (lowercased), honoured by every later campaign of
        # the tenant; transactional mail ignores it. ``campaign_id``: where the link was.
        email_unsubscribes = self.own_table(
            "email_unsubscribes",
            Column("tenant_id", self.id_type(), primary_key=True),
            Column("address", String(320), primary_key=True),
            Column("campaign_id", BigId, ForeignKey(campaigns.c.id, ondelete="SET NULL")),
            Column("unsubscribed_at", tz, server_default=func.current_timestamp(), nullable=False),
        )
        events, changes = self.build_bounce_tables(email_log)
        return {
            "email_events": events,
            "email_suppression_changes": changes,
            "campaigns": campaigns,
            "campaign_recipients": campaign_recipients,
            "email_unsubscribes": email_unsubscribes,
            "email_log": email_log,
            "email_suppressions": suppressions,
            "dead_letters": dead_letters,
            "job_runs": job_runs,
            "outbox_messages": outbox_messages,
            "scheduled_tenants": scheduled_tenants,
            **self.build_sms(tenants),
            **self.build_reporting(tenants),
            "import_keys": self.build_import_keys(),
            **self.build_webhooks(tenants),
        }

    def build_import_keys(self) -> Table:
        """Which platform row each imported external id became (:mod:`gcmc_jobs.services.
        imports`): the platform's tables have no external-id column, so re-importing a file
        finds its rows here. No foreign key, whatever the ids (a key whose row the platform
        deleted is stale: the next import of that id inserts a new row and moves the key)."""
        return self.own_table(
            "import_keys",
            Column("tenant_id", self.id_type(), primary_key=True),
            Column("entity", String(32), primary_key=True),
            Column("external_id", String(200), primary_key=True),
            Column("row_id", self.id_type(), nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )

    def build_sms(self, tenants: Table) -> dict[str, Table]:
        """The SMS channel's tables (:mod:`gcmc_jobs.sms`): who opted in to which alerts by
        SMS, the numbers never to text again, and the delivery record."""
        tz = DateTime(timezone=True)
        # The platform's notification_preferences has no SMS column and its users no phone:
        # the opt-in (a number per user and tenant, one row per category) is the package's.
        opt_ins = self.own_table(
            "sms_opt_ins",
            self.tenant_column(tenants, primary_key=True),
            Column("user_id", self.id_type(), primary_key=True),
            Column("category", self.own_enum(NotificationCategory), primary_key=True),
            Column("phone", String(16), nullable=False),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
        )
        suppressions = self.own_table(
            "sms_suppressions",
            Column("phone", String(16), primary_key=True),
            Column("reason", self.own_enum(SmsSuppressionReason), nullable=False),
            Column("detail", Text),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
        )
        log = self.own_table(
            "sms_log",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("dedup_key", String(255), nullable=False, unique=True),
            self.tenant_column(tenants, "SET NULL", index=True),
            Column("to_phone", String(64), nullable=False),
            Column("kind", String(64), nullable=False),
            Column("body", Text, nullable=False),
            Column("status", self.own_enum(SmsStatus), nullable=False),
            Column("provider_message_id", String(64)),
            Column("error", Text),
            Column("attempts", Integer, nullable=False, default=0, server_default="0"),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            Column("sent_at", tz),
        )
        Index("ix_sms_log_to_created", log.c.to_phone, log.c.created_at)
        return {"sms_opt_ins": opt_ins, "sms_suppressions": suppressions, "sms_log": log}

    def build_bounce_tables(self, email_log: Table) -> tuple[Table, Table]:
        """``email_events`` (what happened to each email after the send) and
        ``email_suppression_changes`` (who changed the suppression list), issue 13."""
        tz = DateTime(timezone=True)
        events = self.own_table(
            "email_events",
            Column("id", BigId, primary_key=True, autoincrement=True),
            # "provider:ses", "provider:postmark", …, "dsn", "smtp": who reported it.
            Column("source", String(64), nullable=False),
            # The reporter's id of the event: a redelivered webhook is recorded once.
            Column("event_id", String(255), nullable=False),
            Column(
                "email_log_id",
                BigId,
                ForeignKey(email_log.c.id, ondelete="SET NULL"),
                index=True,
            ),
            Column("address", String(320), nullable=False),
            Column("kind", self.own_enum(EmailEventKind), nullable=False),
            # Bounces: hard (True) or soft (False); None for the other kinds.
            Column("permanent", Boolean),
            Column("detail", Text),
            Column("occurred_at", tz, nullable=False),
            Column("recorded_at", tz, nullable=False),
            # The ingest call that recorded it (set-based follow-up statements select it).
            Column("batch_id", String(36), nullable=False, index=True),
            UniqueConstraint("source", "event_id"),
        )
        # Soft bounces of one address within the window (case-insensitive).
        Index(
            "ix_email_events_address_lower",
            func.lower(events.c.address),
            events.c.occurred_at,
        )
        changes = self.own_table(
            "email_suppression_changes",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("address", String(320), nullable=False, index=True),
            Column("action", String(16), nullable=False),  # "added" or "removed"
            Column("reason", String(32)),
            Column("actor", String(200), nullable=False),
            Column("event_id", String(300)),
            Column("changed_at", tz, nullable=False),
        )
        return events, changes

    def build_reporting(self, tenants: Table) -> dict[str, Table]:
        """The tables of compliance snapshots and monthly reports (issue 15, items 1-2)."""
        tz = DateTime(timezone=True)
        # One row per tenant and local day, written by each compliance refresh in its
        # transaction (gcmc_jobs.services.snapshots): the trends read it, never the history.
        compliance_snapshots = self.own_table(
            "compliance_snapshots",
            self.tenant_column(tenants),
            Column("day", Date, nullable=False),
            Column("clients", Integer, nullable=False),
            Column("low", Integer, nullable=False),
            Column("medium", Integer, nullable=False),
            Column("high", Integer, nullable=False),
            Column("average_score", Numeric(5, 2, asdecimal=False), nullable=False),
            Column("missing_count", Integer, nullable=False),
            Column("expired_count", Integer, nullable=False),
            Column("expiring_count", Integer, nullable=False),
            Column("overdue_count", Integer, nullable=False),
            Column("computed_at", tz, nullable=False),
            PrimaryKeyConstraint("tenant_id", "day"),
        )
        # One row per tenant and month: the report chain's state and its record
        # (gcmc_jobs.services.reports); the files between the steps are report_files rows.
        reports = self.own_table(
            "reports",
            Column("id", BigId, primary_key=True, autoincrement=True),
            self.tenant_column(tenants, nullable=False),
            Column("period", Date, nullable=False),
            Column("status", String(16), nullable=False),
            Column("data", Json, nullable=False),
            Column("files", Json, nullable=False, default=list),
            Column("recipients", Json, nullable=False, default=list),
            Column("requested_at", tz, nullable=False),
            Column("aggregated_at", tz),
            Column("rendered_at", tz),
            Column("emailed_at", tz),
            Column("completed_at", tz),
            UniqueConstraint("tenant_id", "period"),
        )
        report_files = self.own_table(
            "report_files",
            Column(
                "report_id",
                BigId,
                ForeignKey(reports.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            Column("name", String(200), primary_key=True),
            Column("content_type", String(100), nullable=False),
            Column("size", Integer, nullable=False),
            Column("sha256", String(64), nullable=False),
            Column("content", LargeBinary, nullable=False),
        )
        return {
            "compliance_snapshots": compliance_snapshots,
            "reports": reports,
            "report_files": report_files,
        }

    def build_webhooks(self, tenants: Table) -> dict[str, Table]:
        """The outbound webhooks' tables (:mod:`gcmc_jobs.services.webhooks`): a tenant's
        endpoints, the events (an outbox written in the transaction of the change), one
        delivery per (event, endpoint) and every attempt of it."""
        tz = DateTime(timezone=True)
        endpoints = self.own_table(
            "webhook_endpoints",
            Column("id", BigId, primary_key=True, autoincrement=True),
            self.tenant_column(tenants, nullable=False, index=True),
            Column("url", String(2000), nullable=False),
            # whsec_<base64>: the signing key, shown once when the endpoint is added.
            Column("secret", String(200), nullable=False),
            # Space-separated event types, or "*" for every type.
            Column("event_types", Text, nullable=False),
            Column("description", String(200)),
            Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
            Column("disabled_reason", Text),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            Column("disabled_at", tz),
        )
        events = self.own_table(
            "webhook_events",
            Column("id", BigId, primary_key=True, autoincrement=True),
            # The Standard Webhooks ``webhook-id``: the same on every retry and replay.
            Column("event_id", String(64), nullable=False, unique=True),
            self.tenant_column(tenants, nullable=False),
            Column("event_type", String(64), nullable=False),
            Column("subject_type", String(64)),
            Column("subject_id", String(64)),
            # The tenant's local date the event belongs to (the digest reads a day's events).
            Column("local_date", Date),
            # Names the logical event: the same change emitted twice is one event.
            Column("dedup_key", String(255), nullable=False, unique=True),
            Column("payload", Json, nullable=False),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            # When the dispatcher made its deliveries (null: not yet).
            Column("fanned_out_at", tz),
        )
        Index("ix_webhook_events_pending", events.c.fanned_out_at, events.c.id)
        Index(
            "ix_webhook_events_tenant_type_date",
            events.c.tenant_id,
            events.c.event_type,
            events.c.local_date,
        )
        deliveries = self.own_table(
            "webhook_deliveries",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("event_id", BigId, ForeignKey(events.c.id, ondelete="CASCADE"), nullable=False),
            Column(
                "endpoint_id",
                BigId,
                ForeignKey(endpoints.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            Column("tenant_id", self.id_type(), nullable=False),
            # pending | sending | succeeded | failed (for good) | cancelled (endpoint disabled)
            Column("status", String(16), nullable=False),
            Column("attempts", Integer, nullable=False, default=0, server_default="0"),
            Column("next_attempt_at", tz),
            Column("first_attempt_at", tz),
            Column("last_attempt_at", tz),
            Column("last_status_code", Integer),
            Column("last_error", Text),
            Column("created_at", tz, server_default=func.current_timestamp(), nullable=False),
            UniqueConstraint("event_id", "endpoint_id"),
        )
        Index("ix_webhook_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)
        attempts = self.own_table(
            "webhook_attempts",
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column(
                "delivery_id",
                BigId,
                ForeignKey(deliveries.c.id, ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            Column("attempted_at", tz, nullable=False),
            Column("status_code", Integer),
            Column("latency_ms", Float, nullable=False),
            # The first bytes of the response body (1,024 at most), decoded leniently.
            Column("response_body", Text),
            Column("error", Text),
        )
        return {
            "webhook_endpoints": endpoints,
            "webhook_events": events,
            "webhook_deliveries": deliveries,
            "webhook_attempts": attempts,
        }


# -- which tables an engine's database has ---------------------------------------------------

_BOUND: weakref.WeakKeyDictionary[Engine, Tables] = weakref.WeakKeyDictionary()


def bind(engine: Engine, tables: Tables) -> None:
    """Declare that the database behind ``engine`` has ``tables`` (the runtime calls it for
    its engine; a test or a host calls it for an engine it passes to the services)."""
    _BOUND[engine] = tables


def tables_of(bind_: Session | Connection | Engine) -> Tables:
    """The tables bound to the engine behind ``bind_`` (:func:`bind`), or the ``gcmc``
    preset's."""
    target: Any = bind_.get_bind() if isinstance(bind_, Session) else bind_
    engine = target.engine if isinstance(target, Connection) else target
    found = _BOUND.get(engine)
    return found if found is not None else build_tables(GCMC)

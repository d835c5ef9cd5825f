"""The schema mapping: loading it, and the compliance refresh on Prisma-shaped tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import ComplianceLevel, DocumentStatus
from gcmc_jobs.db.mapping import GCMC, PRISMA, SchemaMapping, load_mapping
from gcmc_jobs.db.tables import Tables, build_tables, tables_of
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.services.compliance import refresh_tenant

#: Used by the ``module:attribute`` test.
CUSTOM = SchemaMapping(name="custom", tables={"tenants": {"name": "organisations"}})


def test_the_presets_load_by_name() -> None:
    assert load_mapping("gcmc") is GCMC
    assert load_mapping("prisma") is PRISMA


def test_a_toml_file_names_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(
        'name = "acme"\nid_type = "uuid"\n[tables.tenants]\nname = "organisations"\n'
        'columns = { is_active = "active" }\n'
    )
    mapping = load_mapping(str(path))
    assert mapping.table_name("tenants") == "organisations"
    assert mapping.column_name("tenants", "is_active") == "active"
    assert mapping.column_name("tenants", "timezone") == "timezone"
    assert mapping.table_name("clients") == "clients"


def test_a_module_attribute_is_loaded() -> None:
    assert load_mapping("tests.db.test_mapping:CUSTOM") is CUSTOM


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "must be one of gcmc, prisma"),
        ("/nowhere/mapping.json", "cannot read"),
        ("tests.db.test_mapping:MISSING", "cannot import"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_it(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="GCMC_JOBS_SCHEMA_MAPPING") as caught:
        load_mapping(spec)
    assert message in str(caught.value)


def test_an_unknown_column_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text('{"tables": {"clients": {"name": "Client", "columns": {"colour": "c"}}}}')
    with pytest.raises(ConfigurationError, match=r"unknown column.*colour.*assigned_user_id"):
        load_mapping(str(path))


def test_the_prisma_preset_renders_prisma_names() -> None:
    t = build_tables(PRISMA)
    statement = select(t.clients.c.id).where(
        t.clients.c.tenant_id == "t1", t.clients.c.is_active.is_(True)
    )
    sql = str(statement.compile(dialect=postgresql.dialect()))
    assert '"Client"."tenantId"' in sql
    assert '"Client"."isActive"' in sql
    assert t.enum_type("tenant_users", "role").physical("owner") == "OWNER"


def test_the_compliance_refresh_runs_on_prisma_shaped_tables(
    prisma_db: tuple[Engine, Tables],
) -> None:
    # Given a tenant with one client, one pending document, one expired and one overdue filing
    engine, t = prisma_db
    today = date(2026, 12, 1)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    stamps = {"created_at": now, "updated_at": now}
    with Session(engine) as session, session.begin():
        assert tables_of(session) is t
        session.execute(insert(t.tenants).values(id="ten1", name="Acme", **stamps))
        session.execute(insert(t.clients).values(id="cli1", tenant_id="ten1", name="C", **stamps))
        for n, (status, expiry) in enumerate(
            [(DocumentStatus.PENDING_REVIEW, None), (DocumentStatus.APPROVED, today - timedelta(1))]
        ):
            session.execute(
                insert(t.documents).values(
                    id=f"doc{n}",
                    tenant_id="ten1",
                    client_id="cli1",
                    title="T",
                    document_type="license",
                    **stamps,
                )
            )
            session.execute(
                insert(t.document_versions).values(
                    id=f"ver{n}", document_id=f"doc{n}", status=status, expiry_date=expiry, **stamps
                )
            )
            session.execute(
                t.documents.update()
                .where(t.documents.c.id == f"doc{n}")
                .values(latest_version_id=f"ver{n}")
            )
        # When the tenant is refreshed
        result = refresh_tenant(session, "ten1", today=today, now=now)
    # Then the score row is written with Prisma's names and enum values, read back logically
    assert result.clients == 1
    with engine.connect() as connection:
        row = connection.execute(select(t.compliance_scores)).one()
        stored = connection.execute(
            text(f'SELECT level::text FROM "{t.mapping.db_schema}"."ComplianceScore"')
        ).scalar()
    assert (row.client_id, row.missing_count, row.expired_count, row.score) == ("cli1", 1, 1, 90)
    assert row.level is ComplianceLevel.LOW
    assert stored == "LOW"

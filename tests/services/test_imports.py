"""CSV imports (gcmc_jobs.services.imports): validated, idempotent on external_id, set-based,
all or nothing per file, on both mappings."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import FilingStatus, Role
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.errors import InvalidPayload, UnknownTenant
from gcmc_jobs.services.imports import RowError, import_csv, write_error_report
from tests import factories as f
from tests.support.statements import recorded_statements

CLIENTS = (
    "external_id,name,email,assigned_user_email,is_active\n"
    "c-1,Alpha Ltd,alpha@example.com,OWNER@example.com,true\n"
    "c-2,Beta LLC,,,\n"
    "c-3,Gamma plc,gamma@example.com,,no\n"
)


def world(engine: Engine) -> tuple[f.TenantRow, f.TenantRow, f.UserRow]:
    with Session(engine) as session:
        tenant = f.tenant(session, "Importer")
        other = f.tenant(session, "Other")
        owner = f.member(session, tenant, Role.OWNER, email="owner@example.com")
        f.member(session, other, Role.OWNER, email="stranger@example.com")
        session.commit()
    return tenant, other, owner


def clients_of(engine: Engine, tenant_id: object) -> dict[str, tuple[object, ...]]:
    t = tables_of(engine)
    c, k = t.clients.c, t.import_keys.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(k.external_id, c.name, c.email, c.assigned_user_id, c.is_active)
            .join(t.clients, c.id == k.row_id)
            .where(k.tenant_id == tenant_id, k.entity == "clients", c.tenant_id == tenant_id)
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def test_clients_import_then_reimport_changes_nothing_and_a_changed_row_updates(
    preset_db: Engine,
) -> None:
    tenant, _, owner = world(preset_db)

    first = import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    assert (first.ok, first.rows, first.inserted, first.updated) == (True, 3, 3, 0)
    assert clients_of(preset_db, tenant.id) == {
        "c-1": ("Alpha Ltd", "alpha@example.com", owner.id, True),
        "c-2": ("Beta LLC", None, None, True),
        "c-3": ("Gamma plc", "gamma@example.com", None, False),
    }

    again = import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)

    changed = CLIENTS.replace("Beta LLC", "Beta Holdings") + "c-4,Delta,,,\n"
    third = import_csv(preset_db, io.StringIO(changed), tenant_id=tenant.id, entity="clients")
    assert (third.inserted, third.updated, third.unchanged) == (1, 1, 2)
    imported = clients_of(preset_db, tenant.id)
    assert imported["c-2"][0] == "Beta Holdings"
    assert len(imported) == 4
    t = tables_of(preset_db)
    with preset_db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(t.clients)) == 4


def test_one_invalid_row_writes_nothing_and_reports_every_problem(preset_db: Engine) -> None:
    tenant, _, _ = world(preset_db)
    bad = (
        "external_id,name,email,assigned_user_email,is_active\n"
        "c-1,Alpha,alpha@example.com,,\n"
        ",No id,not-an-email,,maybe\n"
        "c-1,Again,,,\n"
        "c-9,Stranger's,,stranger@example.com,\n"
    )
    result = import_csv(preset_db, io.StringIO(bad), tenant_id=tenant.id, entity="clients")

    assert not result.ok
    assert (result.inserted, result.updated) == (0, 0)
    assert [(e.row, e.column) for e in result.errors] == [
        (3, "email"),
        (3, "external_id"),
        (3, "is_active"),
        (4, "external_id"),
    ]
    assert clients_of(preset_db, tenant.id) == {}
    # The file's fields fixed: the member of another tenant is refused, in SQL.
    fixed = bad.replace(",No id,not-an-email,,maybe", "c-2,No id,,,").replace("c-1,Again", "c-3,A")
    second = import_csv(preset_db, io.StringIO(fixed), tenant_id=tenant.id, entity="clients")
    assert second.errors == [
        RowError(
            5,
            "assigned_user_email",
            "no member of this tenant has the e-mail 'stranger@example.com'",
        )
    ]
    assert clients_of(preset_db, tenant.id) == {}
    report = io.StringIO()
    write_error_report(second.errors, report)
    assert report.getvalue().splitlines()[0] == "row,column,error"


def test_documents_and_filings_point_at_imported_clients(preset_db: Engine) -> None:
    tenant, other, owner = world(preset_db)
    import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    documents = (
        "external_id,client_external_id,title,document_type\n"
        "d-1,c-1,Engagement letter,letter\n"
        "d-2,c-2,ID,passport\n"
    )
    filings = (
        "external_id,client_external_id,filing_type,period_start,period_end,due_date,status,"
        "assigned_user_email\n"
        "f-1,c-1,VAT,2026-01-01,2026-03-31,2026-04-30,Draft,owner@example.com\n"
        "f-2,c-3,Annual,2025-01-01,2025-12-31,2026-06-30,submitted,\n"
    )
    assert (
        import_csv(
            preset_db, io.StringIO(documents), tenant_id=tenant.id, entity="documents"
        ).inserted
        == 2
    )
    assert (
        import_csv(preset_db, io.StringIO(filings), tenant_id=tenant.id, entity="filings").inserted
        == 2
    )
    t = tables_of(preset_db)
    fl, k = t.filings.c, t.import_keys.c
    with preset_db.connect() as connection:
        rows = connection.execute(
            select(k.external_id, fl.status, fl.due_date, fl.assigned_user_id)
            .join(t.filings, fl.id == k.row_id)
            .where(k.entity == "filings")
            .order_by(k.external_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("f-1", FilingStatus.DRAFT, date(2026, 4, 30), owner.id),
        ("f-2", FilingStatus.SUBMITTED, date(2026, 6, 30), None),
    ]
    # Another tenant cannot point at this tenant's clients.
    refused = import_csv(preset_db, io.StringIO(documents), tenant_id=other.id, entity="documents")
    assert [(e.row, e.column) for e in refused.errors] == [
        (2, "client_external_id"),
        (3, "client_external_id"),
    ]


def test_the_number_of_statements_does_not_grow_with_the_file(gcmc_db: Engine) -> None:
    tenant, _, _ = world(gcmc_db)

    def run(rows: int) -> int:
        header = "external_id,name,email,assigned_user_email,is_active\n"
        body = "".join(
            f"x-{rows}-{i},Client {i},c{i}@example.com,owner@example.com,\n" for i in range(rows)
        )
        with recorded_statements(gcmc_db) as seen:
            assert (
                import_csv(
                    gcmc_db, io.StringIO(header + body), tenant_id=tenant.id, entity="clients"
                ).inserted
                == rows
            )
        return len(seen)

    assert run(5) == run(500)


def test_a_key_whose_record_was_deleted_inserts_the_row_again_and_moves_the_key(
    preset_db: Engine,
) -> None:
    tenant, _, _ = world(preset_db)
    import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    t = tables_of(preset_db)
    c, k = t.clients.c, t.import_keys.c
    key_of_c2 = select(k.row_id).where(k.tenant_id == tenant.id, k.external_id == "c-2")
    with preset_db.begin() as connection:
        deleted = connection.scalar(key_of_c2)
        connection.execute(t.clients.delete().where(c.id == deleted))  # by the platform

    again = import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")

    assert (again.inserted, again.updated, again.unchanged) == (1, 0, 2)
    assert clients_of(preset_db, tenant.id)["c-2"][0] == "Beta LLC"
    with preset_db.connect() as connection:
        assert connection.scalar(key_of_c2) != deleted
        assert connection.scalar(select(func.count()).select_from(t.import_keys)) == 3
    # The key now names the new record: a third import finds every row.
    third = import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    assert (third.inserted, third.updated, third.unchanged) == (0, 0, 3)


def test_an_address_two_members_share_but_for_case_names_one_of_them(preset_db: Engine) -> None:
    tenant, _, owner = world(preset_db)
    with Session(preset_db) as session:
        twin = f.member(session, tenant, Role.ADMIN, email="OWNER@example.com")
        session.commit()
    rows = CLIENTS.splitlines()[:2]  # c-1, assigned to OWNER@example.com

    result = import_csv(
        preset_db, io.StringIO("\n".join(rows) + "\n"), tenant_id=tenant.id, entity="clients"
    )

    assert (result.ok, result.inserted) == (True, 1)
    # The lowest id of the two (Prisma's text ids are random: either may be lower).
    first = min(owner.id, twin.id)
    assert clients_of(preset_db, tenant.id) == {
        "c-1": ("Alpha Ltd", "alpha@example.com", first, True)
    }


def test_records_and_keys_are_written_by_one_statement(preset_db: Engine) -> None:
    """The statements of an import: the tenant found and locked, the stage created, one
    check per reference, the new ids' sequence (integer ids), then one merge that writes
    the records and the keys (nothing updates the stage)."""
    tenant, _, _ = world(preset_db)
    with recorded_statements(preset_db) as seen:
        result = import_csv(preset_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="clients")
    assert result.inserted == 3

    t = tables_of(preset_db)
    sequence = [s for s in seen if s.startswith("SELECT pg_get_serial_sequence")]
    assert len(sequence) == (0 if t.mapping.id_type in ("text", "uuid") else 1)
    assert len(seen) - len(sequence) == 4
    writes = [s for s in seen if "INSERT INTO" in s or "UPDATE" in s]
    assert len(writes) == 1
    merge = " ".join(writes[0].split()).replace('"', "")
    for part in (
        f"INSERT INTO {t.clients.fullname}",
        f"UPDATE {t.clients.fullname}",
        f"INSERT INTO {t.import_keys.fullname}",
        f"UPDATE {t.import_keys.fullname}",
    ):
        assert part in merge


def test_bad_calls_fail_in_the_caller(gcmc_db: Engine) -> None:
    tenant, _, _ = world(gcmc_db)
    with pytest.raises(InvalidPayload, match="clients, documents, filings"):
        import_csv(gcmc_db, io.StringIO(CLIENTS), tenant_id=tenant.id, entity="invoices")
    with pytest.raises(UnknownTenant):
        import_csv(gcmc_db, io.StringIO(CLIENTS), tenant_id=987654, entity="clients")
    missing = import_csv(
        gcmc_db, io.StringIO("external_id,nom\nx,y\n"), tenant_id=tenant.id, entity="clients"
    )
    assert [(e.row, e.column) for e in missing.errors] == [(1, "nom"), (1, "name")]

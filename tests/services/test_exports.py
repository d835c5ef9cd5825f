"""CSV exports (gcmc_jobs.services.exports): the columns, and memory that stays flat."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, date, datetime

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import ComplianceLevel, FilingStatus
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.exports import export_csv
from gcmc_jobs.services.imports import import_csv
from tests import factories as f


def exported(engine: Engine, tenant_id: object, what: str) -> list[dict[str, str]]:
    out = io.StringIO()
    rows = export_csv(engine, out, tenant_id=tenant_id, what=what)  # type: ignore[arg-type]
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows == len(parsed)
    return parsed


def test_scores_and_filings_export_in_logical_form_and_one_tenant_only(
    preset_db: Engine,
) -> None:
    with Session(preset_db) as session:
        tenant, other = f.tenant(session, "Mine"), f.tenant(session, "Theirs")
        client = f.client(session, tenant, name="Alpha")
        f.client(session, other, name="Not mine")
        f.filing(session, client, due=date(2026, 4, 30), status=FilingStatus.PREPARED)
        t = tables_of(session)
        session.execute(
            insert(t.compliance_scores).values(
                client_id=client.id,
                tenant_id=tenant.id,
                score=85,
                level=ComplianceLevel.LOW,
                missing_count=1,
                expired_count=0,
                expiring_count=2,
                overdue_count=0,
                computed_at=t.instant(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)),
                **t.timestamps("compliance_scores", t.instant(datetime.now(UTC))),
            )
        )
        session.commit()

    scores = exported(preset_db, tenant.id, "scores")
    filings = exported(preset_db, tenant.id, "filings")
    clients = exported(preset_db, tenant.id, "clients")

    assert [(s["client_name"], s["score"], s["level"], s["expiring_count"]) for s in scores] == [
        ("Alpha", "85", "low", "2")
    ]
    assert [(x["status"], x["due_date"], x["external_id"]) for x in filings] == [
        ("prepared", "2026-04-30", "")
    ]
    assert [c["name"] for c in clients] == ["Alpha"]


def test_an_export_streams_in_constant_memory(gcmc_db: Engine) -> None:
    # Given a tenant with 4,000 clients (made in SQL: the test is about the export)
    with Session(gcmc_db) as session:
        tenant = f.tenant(session)
        session.commit()
    with gcmc_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO clients (tenant_id, name, email, is_active) SELECT :t, "
                "'Client ' || n, 'client' || n || '@example.com', true "
                "FROM generate_series(1, 4000) n"
            ),
            {"t": tenant.id},
        )

    class Sink(io.TextIOBase):
        written = 0

        def write(self, s: str) -> int:
            self.written += len(s)
            return len(s)

    def peak_of(limit: str) -> tuple[int, int, int]:
        sink = Sink()
        tracemalloc.start()
        try:
            rows = export_csv(gcmc_db, sink, tenant_id=tenant.id, what="clients")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return rows, sink.written, peak

    # When it is exported to a sink that keeps nothing (once to warm the caches), then once
    # more with a tenant five times larger, memory traced
    peak_of("warm-up")
    small = peak_of("small")
    with gcmc_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO clients (tenant_id, name, email, is_active) SELECT :t, "
                "'Client ' || n, 'client' || n || '@example.com', true "
                "FROM generate_series(1, 16000) n"
            ),
            {"t": tenant.id},
        )
    large = peak_of("large")

    # Then every row went out, and the peak did not grow with the export
    assert (small[0], large[0]) == (4_000, 20_000)
    assert large[1] > 4 * small[1]
    assert large[2] < 1.5 * small[2], (small, large)
    print(f"peak {small[2]:,} B for {small[1]:,} B, {large[2]:,} B for {large[1]:,} B")


def test_an_import_export_round_trip_keeps_the_external_ids(gcmc_db: Engine) -> None:
    with Session(gcmc_db) as session:
        tenant = f.tenant(session)
        session.commit()
    source = "external_id,name,email,assigned_user_email,is_active\nk-1,Kappa,,,true\n"
    assert import_csv(gcmc_db, io.StringIO(source), tenant_id=tenant.id, entity="clients").ok

    out = io.StringIO()
    export_csv(gcmc_db, out, tenant_id=tenant.id, what="clients")
    again = import_csv(gcmc_db, io.StringIO(out.getvalue()), tenant_id=tenant.id, entity="clients")

    assert (again.ok, again.unchanged, again.inserted) == (True, 1, 0)

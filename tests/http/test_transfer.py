"""Imports and exports through the admin API: a multipart CSV in, a streamed CSV out."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import Role
from tests import factories as f
from tests.support.prisma import SplitSchemas

CLIENTS = (
    "external_id,name,email,assigned_user_email,is_active\n"
    "c-1,Alpha Ltd,alpha@example.com,owner@example.com,true\n"
    "c-2,Beta LLC,,,false\n"
)


def test_import_then_export_on_prisma_tables_round_trips(
    prisma_api: TestClient, prisma_split_db: SplitSchemas
) -> None:
    # Given a tenant of the Prisma-shaped tables (text ids, the package's tables apart)
    with Session(prisma_split_db.engine) as session:
        tenant = f.tenant(session, "Acme")
        f.member(session, tenant, Role.OWNER, email="owner@example.com")
        session.commit()

    # When a CSV of clients is posted, twice
    url = f"/api/tenants/{tenant.id}/imports/clients"
    first = prisma_api.post(url, files={"file": ("clients.csv", CLIENTS, "text/csv")})
    again = prisma_api.post(url, files={"file": ("clients.csv", CLIENTS, "text/csv")})

    # Then the first inserts, the second changes nothing, and the export streams them back
    assert first.status_code == 200, first.text
    assert (first.json()["inserted"], again.json()["unchanged"]) == (2, 2)
    exported = prisma_api.get(f"/api/tenants/{tenant.id}/exports/clients")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(
        (r["external_id"], r["name"], r["assigned_user_email"], r["is_active"]) for r in rows
    ) == [
        ("c-1", "Alpha Ltd", "owner@example.com", "true"),
        ("c-2", "Beta LLC", "", "false"),
    ]
    assert all(r["id"] for r in rows)
    unknown = prisma_api.get("/api/tenants/cknotatenant/exports/clients")
    assert unknown.status_code == 404


def test_an_invalid_file_is_a_422_with_the_error_report(api: TestClient, gcmc_db: Engine) -> None:
    with Session(gcmc_db) as session:
        tenant = f.tenant(session)
        session.commit()
    bad = CLIENTS.replace("alpha@example.com", "alpha-at-example")
    url = f"/api/tenants/{tenant.id}/imports/clients"

    as_json = api.post(url, files={"file": ("c.csv", bad, "text/csv")})
    as_csv = api.post(
        url, files={"file": ("c.csv", bad, "text/csv")}, headers={"Accept": "text/csv"}
    )

    assert as_json.status_code == 422
    assert [(e["row"], e["column"]) for e in as_json.json()["errors"]] == [(2, "email")]
    assert as_csv.status_code == 422
    assert as_csv.text.splitlines()[:2] == [
        "row,column,error",
        "2,email,'alpha-at-example' is not an e-mail address",
    ]
    exported = api.get(f"/api/tenants/{tenant.id}/exports/clients")
    assert exported.text.splitlines() == ["id,external_id,name,email,assigned_user_email,is_active"]

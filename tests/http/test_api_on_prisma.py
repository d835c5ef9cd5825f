"""The admin API on the ``prisma`` preset: text tenant ids in and out, the ledger and the dead
letters read from the package's own schema; and a clear 422 for a non-number where the ids
are integers."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from gcmc_jobs.middleware.stores.dead_letters import DeadLetterRecord, SqlDeadLetterStore
from gcmc_jobs.scheduling.clock import local_date
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.services.tenancy import tenant_zone
from tests import factories as f
from tests.support.prisma import SplitSchemas

JOB = "filing_reminders"


def test_text_tenant_ids_trigger_list_runs_and_schedules(
    prisma_api: TestClient, prisma_split_db: SplitSchemas
) -> None:
    # Given a tenant of the Prisma-shaped tables (a text id) and one run of it in the ledger
    engine = prisma_split_db.engine
    with Session(engine) as session:
        tenant = f.tenant(session, "Tokyo", timezone="Asia/Tokyo")
        session.commit()
    assert isinstance(tenant.id, str)
    today = local_date(datetime.now(UTC), tenant_zone("Asia/Tokyo"))
    assert run_for_tenant(engine, JOB, tenant.id, local_date=today).ran

    # When the API is asked about it by its text id
    runs = prisma_api.get("/api/runs", params={"tenant_id": tenant.id})
    schedules = prisma_api.get("/api/schedules", params={"tenant_id": tenant.id})
    triggered = prisma_api.post(
        f"/api/jobs/{JOB}/run", json={"tenant_id": tenant.id, "force": True}
    )

    # Then it answers with the tenant's text id: the run read from the package's schema,
    # each job's next run, and the enqueued trigger
    assert runs.status_code == 200, runs.text
    assert [(r["job"], r["tenant_id"], r["status"]) for r in runs.json()] == [
        (JOB, tenant.id, "succeeded")
    ]
    assert schedules.status_code == 200, schedules.text
    assert {(s["tenant_id"], s["tenant"]) for s in schedules.json()} == {(tenant.id, "Tokyo")}
    assert triggered.status_code == 200, triggered.text
    assert (triggered.json()["tenant_id"], triggered.json()["local_date"]) == (
        tenant.id,
        today.isoformat(),
    )
    # And an unknown text id is a 404 naming it
    unknown = prisma_api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": "cknotatenant"})
    assert unknown.status_code == 404
    assert "cknotatenant" in unknown.json()["detail"]


def test_a_non_number_is_a_clear_422_where_the_ids_are_integers(api: TestClient) -> None:
    for response, loc in (
        (api.get("/api/runs", params={"tenant_id": "ck1"}), ["query", "tenant_id"]),
        (api.get("/api/schedules", params={"tenant_id": "ck1"}), ["query", "tenant_id"]),
        (api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": "ck1"}), ["body", "tenant_id"]),
    ):
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == loc
        assert "ids are integers" in error["msg"]
    # And a number is still taken as one (as a JSON number or as text)
    assert api.get("/api/runs", params={"tenant_id": "7"}).status_code == 200
    assert api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": 99999}).status_code == 404


def test_the_dead_letter_routes_and_the_health_report_read_the_package_schema(
    prisma_api: TestClient, prisma_split_db: SplitSchemas
) -> None:
    # Given a dead letter stored in the package's own schema
    SqlDeadLetterStore(prisma_split_db.engine).add(
        DeadLetterRecord(
            message_id="dead-on-prisma",
            queue="gcmc_compliance",
            actor="refresh_compliance",
            args=["cknotatenant"],
            kwargs={},
            options={},
            error_type="gcmc_jobs.errors.InvalidPayload",
            error="no tenant with id cknotatenant",
            traceback=None,
            attempts=1,
        )
    )
    with prisma_split_db.engine.connect() as connection:
        stored = connection.execute(
            text(f'SELECT message_id FROM "{prisma_split_db.package_schema}".dead_letters')
        ).scalars()
        assert list(stored) == ["dead-on-prisma"]

    # Then the API lists it, shows it, and the health report counts it waiting
    (listed,) = prisma_api.get("/api/dead-letters").json()
    assert listed["message_id"] == "dead-on-prisma"
    shown = prisma_api.get(f"/api/dead-letters/{listed['id']}").json()
    assert shown["args"] == ["cknotatenant"]
    health = prisma_api.get("/api/health").json()
    assert health["checks"]["dead_letters"]["waiting"] == 1

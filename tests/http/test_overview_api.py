"""``/api/overview`` and ``/api/activity``: what the dashboard's charts draw (issue 16,
item 3)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f
from tests.support.prisma import SplitSchemas


def _scored_tenant(session: Session, name: str) -> f.TenantRow:
    """A tenant with one low-risk client and one high-risk client (11 missing documents)."""
    tenant = f.tenant(session, name)
    f.client(session, tenant)
    risky = f.client(session, tenant)
    for _ in range(11):
        f.document(session, risky, status=None)
    refresh_tenant(session, tenant.id)
    session.commit()
    return tenant


def test_the_overview_names_each_tenant_with_its_clients_by_risk(
    api: TestClient, gcmc_session: Session
) -> None:
    tenant = _scored_tenant(gcmc_session, "Acme")
    body = api.get("/api/overview").json()
    assert body["risk"] == [
        {"tenant_id": tenant.id, "tenant": "Acme", "levels": {"low": 1, "medium": 0, "high": 1}}
    ]
    assert body["email"] == []
    # the refresh wrote today's snapshot: the trend's last day
    assert body["trend"][-1] | {"day": None} == {"day": None, "low": 1, "medium": 0, "high": 1}


def test_the_trend_of_one_tenant_counts_its_clients_alone(
    api: TestClient, gcmc_session: Session
) -> None:
    acme = _scored_tenant(gcmc_session, "Acme")
    other = _scored_tenant(gcmc_session, "Other")
    every = api.get("/api/overview").json()["trend"][-1]
    assert (every["low"], every["high"]) == (2, 2)  # both tenants summed
    for tenant in (acme, other):
        [day] = api.get(f"/api/overview?tenant_id={tenant.id}").json()["trend"]
        assert (day["low"], day["medium"], day["high"]) == (1, 0, 1)
    unknown = api.get("/api/overview?tenant_id=999999").json()
    assert unknown["trend"] == []  # no snapshot of that tenant
    assert api.get("/api/overview?tenant_id=abc").status_code == 422


def test_the_overview_on_the_prisma_mapping_has_text_ids(
    prisma_api: TestClient, prisma_split_db: SplitSchemas
) -> None:
    with Session(prisma_split_db.engine) as session:
        tenant = _scored_tenant(session, "Tokyo")
    risk = prisma_api.get("/api/overview").json()["risk"]
    assert risk == [
        {"tenant_id": tenant.id, "tenant": "Tokyo", "levels": {"low": 1, "medium": 0, "high": 1}}
    ]
    assert isinstance(risk[0]["tenant_id"], str)


def test_activity_refuses_a_range_beyond_24_hours(api: TestClient) -> None:
    for minutes in (0, 1441):
        response = api.get(f"/api/activity?minutes={minutes}")
        assert response.status_code == 422, response.text


def test_activity_on_a_stub_broker_is_empty(api: TestClient) -> None:
    assert api.get("/api/activity?minutes=5").json() == {
        "minutes": [],
        "processed": [],
        "failed": [],
        "depth": {},
    }


def test_the_overview_refuses_an_hours_range_out_of_bounds(api: TestClient) -> None:
    assert api.get("/api/overview?hours=0").status_code == 422

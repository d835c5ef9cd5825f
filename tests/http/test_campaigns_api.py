"""The campaigns of the admin API: create, list, show, start, pause, resume, cancel, with
the errors a caller can fix (422, 404, 409) and the token required."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import Role
from gcmc_jobs.db.models import Tenant
from tests import factories as f


def _new(tenant_id: object, **changes: object) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "name": "Spring newsletter",
        "subject": "News from {{ tenant_name }}",
        "body": "Hello {{ recipient_name }}",
        "segment": "staff:owner",
        "created_by": "ops@acme.example",
        **changes,
    }


def test_a_campaign_is_created_listed_started_paused_resumed_and_cancelled(
    api: TestClient, gcmc_tenant: Tenant, gcmc_db: object
) -> None:
    with Session(gcmc_db) as session:  # type: ignore[arg-type]
        f.membership(
            session, f.TenantRow(gcmc_tenant.id, "T", "UTC", True), f.user(session), Role.OWNER
        )
        session.commit()
    created = api.post("/api/campaigns", json=_new(gcmc_tenant.id, rate_per_second=5))
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["rate_per_second"]) == ("draft", 5)
    cid = campaign["id"]

    listed = api.get("/api/campaigns", params={"tenant_id": gcmc_tenant.id}).json()
    assert [c["id"] for c in listed] == [cid]
    assert api.post(f"/api/campaigns/{cid}/pause").status_code == 409

    started = api.post(f"/api/campaigns/{cid}/start").json()
    assert started["status"] == "running"
    assert started["progress"] == {
        "total": 1,
        "queued": 1,
        "sent": 0,
        "failed": 0,
        "suppressed": 0,
        "unsubscribed": 0,
        "opt_outs": 0,
    }
    assert api.post(f"/api/campaigns/{cid}/start").status_code == 409
    assert api.post(f"/api/campaigns/{cid}/pause").json()["status"] == "paused"
    assert api.post(f"/api/campaigns/{cid}/resume").json()["status"] == "running"
    assert api.post(f"/api/campaigns/{cid}/cancel").json()["status"] == "cancelled"
    refused = api.post(f"/api/campaigns/{cid}/resume")
    assert refused.status_code == 409
    assert "cancelled" in refused.json()["detail"]
    assert api.get(f"/api/campaigns/{cid}").json()["status"] == "cancelled"
    assert api.get("/api/campaigns", params={"status": "running"}).json() == []


def test_bad_campaigns_are_refused_with_a_reason(
    api: TestClient, gcmc_tenant: Tenant, bare_api: TestClient
) -> None:
    bad_template = api.post("/api/campaigns", json=_new(gcmc_tenant.id, body="{{ secret }}"))
    assert bad_template.status_code == 422
    assert "unknown field" in bad_template.json()["detail"]
    bad_segment = api.post("/api/campaigns", json=_new(gcmc_tenant.id, segment="all"))
    assert bad_segment.status_code == 422
    assert api.post("/api/campaigns", json=_new(424242)).status_code == 404
    assert api.get("/api/campaigns/424242").status_code == 404
    assert api.post("/api/campaigns/424242/pause").status_code == 404
    assert bare_api.get("/api/campaigns").status_code == 401

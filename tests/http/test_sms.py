"""``/api/sms/opt-ins``: opt a member in to alerts by SMS, list, opt out. (The functions it
calls run on both mappings in ``tests/sms/test_alerts.py``; the fuzz test runs it on text
ids.)"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.enums import Role
from tests import factories as f


def _member(engine: Engine) -> tuple[object, object, object]:
    with session_scope(engine) as session:
        tenant = f.tenant(session, "Acme CPA")
        owner = f.member(session, tenant, Role.OWNER)
        stranger = f.user(session)
    return tenant.id, owner.id, stranger.id


def _round_trip(api: TestClient, tenant: object, owner: object, stranger: object) -> None:
    put = api.put(
        "/api/sms/opt-ins",
        json={"tenant_id": tenant, "user_id": owner, "phone": "+1 415 555 2671"},
    )
    assert put.status_code == 200, put.text
    assert [(r["category"], r["phone"]) for r in put.json()] == [
        ("documents", "+14155552671"),
        ("filings", "+14155552671"),
    ]
    listed = api.get("/api/sms/opt-ins", params={"tenant_id": tenant}).json()
    assert [r["user_id"] for r in listed] == [owner, owner]

    bad = api.put(
        "/api/sms/opt-ins", json={"tenant_id": tenant, "user_id": owner, "phone": "+44123"}
    )
    assert bad.status_code == 422
    assert "not a valid number" in bad.json()["detail"]
    stranger_in = api.put(
        "/api/sms/opt-ins",
        json={"tenant_id": tenant, "user_id": stranger, "phone": "+14155552671"},
    )
    assert stranger_in.status_code == 422
    assert "is not a member" in stranger_in.json()["detail"]

    out = api.delete(
        "/api/sms/opt-ins", params={"tenant_id": tenant, "user_id": owner, "category": "filings"}
    )
    assert out.json() == {"removed": 1}
    assert [r["category"] for r in api.get("/api/sms/opt-ins").json()] == ["documents"]


def test_opt_in_list_and_opt_out(api: TestClient, gcmc_db: Engine, gcmc_session: Session) -> None:
    _round_trip(api, *_member(gcmc_db))

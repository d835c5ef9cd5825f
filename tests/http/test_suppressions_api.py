"""``/api/suppressions``: list, add, remove, import a CSV, history; behind the admin token;
every change recorded with actor ``api``; on the prisma mapping too."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_the_suppression_api_needs_the_admin_token(bare_api: TestClient) -> None:
    assert bare_api.get("/api/suppressions").status_code == 401
    assert bare_api.post("/api/suppressions", json={"address": "a@example.com"}).status_code == 401


def test_add_list_remove_and_history_through_the_api(api: TestClient) -> None:
    added = api.post("/api/suppressions", json={"address": "Blocked@Example.com"})
    again = api.post("/api/suppressions", json={"address": "blocked@example.com"})
    complaint = api.post(
        "/api/suppressions", json={"address": "angry@example.com", "reason": "complaint"}
    )
    assert (added.status_code, added.json()) == (
        201,
        {"address": "blocked@example.com", "added": True},
    )
    assert again.json()["added"] is False
    assert complaint.json()["added"] is True

    listed = api.get("/api/suppressions", params={"search": "BLOCK"}).json()
    assert [(s["address"], s["reason"], s["source"]) for s in listed] == [
        ("blocked@example.com", "manual", "api")
    ]
    assert len(api.get("/api/suppressions", params={"reason": "complaint"}).json()) == 1

    assert api.delete("/api/suppressions/BLOCKED@example.com").json()["removed"] is True
    assert api.delete("/api/suppressions/blocked@example.com").status_code == 404
    history = api.get("/api/suppressions/changes").json()
    assert [(c["address"], c["action"], c["actor"]) for c in history] == [
        ("blocked@example.com", "removed", "api"),
        ("angry@example.com", "added", "api"),
        ("blocked@example.com", "added", "api"),
    ]


def test_a_bad_address_or_reason_is_a_clear_422(api: TestClient) -> None:
    bad = api.post("/api/suppressions", json={"address": "not an address"})
    reason = api.post("/api/suppressions", json={"address": "a@example.com", "reason": "x"})
    assert bad.status_code == 422
    assert "address" in bad.json()["detail"]
    assert reason.status_code == 422


def test_a_csv_with_an_invalid_row_imports_nothing_and_names_the_line(api: TestClient) -> None:
    csv = "address,reason\nok@example.com,manual\nnot-an-address\nx@example.com,bogus\n"
    refused = api.post(
        "/api/suppressions/import", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert refused.status_code == 422
    errors = refused.json()["detail"]["errors"]
    assert [(e["line"], e["value"]) for e in errors] == [
        (3, "not-an-address"),
        (4, "x@example.com"),
    ]
    assert "unknown reason 'bogus'" in errors[1]["error"]
    assert api.get("/api/suppressions").json() == []

    applied = api.post(
        "/api/suppressions/import",
        content=csv,
        params={"skip_invalid": True},
        headers={"Content-Type": "text/csv"},
    )
    assert applied.json()["added"] == 1
    assert [s["address"] for s in api.get("/api/suppressions").json()] == ["ok@example.com"]


def test_the_suppression_api_on_the_prisma_mapping(prisma_api: TestClient) -> None:
    assert prisma_api.post("/api/suppressions", json={"address": "p@example.com"}).json()["added"]
    assert [s["address"] for s in prisma_api.get("/api/suppressions").json()] == ["p@example.com"]
    assert prisma_api.delete("/api/suppressions/p@example.com").status_code == 200

"""``gcmc-jobs demo --serve``: the dashboard's app over the demo's database, with a token."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gcmc_jobs import runtime
from gcmc_jobs.demo.serve import demo_dashboard
from gcmc_jobs.settings import Settings


def test_demo_dashboard_serves_the_api_with_a_fresh_token_and_restores_the_process(
    gcmc_sqlite_db: Engine, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=gcmc_sqlite_db.url.render_as_string(hide_password=False),
        broker_url="stub://",
        email_url="memory://",
        namespace="gcmc_demo_serve_test",
    )
    before = runtime._current
    with demo_dashboard(settings) as dashboard:
        assert len(dashboard.token) >= 20
        client = TestClient(dashboard.app)
        assert client.get("/dashboard").status_code == 200
        headers = {"Authorization": f"Bearer {dashboard.token}"}
        assert client.get("/api/queues", headers=headers).status_code == 200
        assert client.get("/api/runs", headers=headers).json() == []
        assert client.get("/api/queues", headers={"Authorization": "Bearer x"}).status_code == 403
    assert runtime._current is before

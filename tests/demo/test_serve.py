"""``gcmc-jobs demo --serve``: the dashboard's app over the demo's database, with a token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs import runtime
from gcmc_jobs.cli import app
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
    before = runtime.installed()
    with demo_dashboard(settings) as dashboard:
        assert len(dashboard.token) >= 20
        assert dashboard.generated is True
        client = TestClient(dashboard.app)
        assert client.get("/dashboard").status_code == 200
        headers = {"Authorization": f"Bearer {dashboard.token}"}
        assert client.get("/api/queues", headers=headers).status_code == 200
        assert client.get("/api/runs", headers=headers).json() == []
        assert client.get("/api/queues", headers={"Authorization": "Bearer x"}).status_code == 403
    assert runtime.installed() is before


def test_demo_serve_prints_the_url_and_serves_what_the_demo_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a fresh machine (no GCMC_JOBS_* variable, an empty directory), where uvicorn's
    # blocking server is replaced by a check of the app it was given
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GCMC_JOBS_ADMIN_TOKEN", "demo-admin-token")
    served: dict[str, Any] = {}

    def fake_run(app: Any, *, host: str, port: int, log_level: str) -> None:
        # what a browser would see while the server runs: the demo's job runs
        headers = {"Authorization": "Bearer demo-admin-token"}
        served.update(host=host, port=port, runs=TestClient(app).get("/api/runs", headers=headers))

    monkeypatch.setattr(uvicorn, "run", fake_run)

    # When the demo runs with --serve
    result = CliRunner().invoke(
        app, ["demo", "--tenants", "1", "--clients-per-tenant", "3", "--serve", "--port", "8123"]
    )

    # Then it printed where to go and the token, and the app showed the demo's job runs
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "http://127.0.0.1:8123/dashboard" in output
    assert "token: the one in GCMC_JOBS_ADMIN_TOKEN" in output
    assert "demo-admin-token" not in result.output  # a configured secret is never printed
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    runs = served["runs"]
    assert runs.status_code == 200
    assert {r["job"] for r in runs.json()} >= {"compliance_refresh"}
    # and the process is left unconfigured
    assert runtime.installed() is None

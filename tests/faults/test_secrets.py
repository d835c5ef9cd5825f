"""Scenario 10: secrets never leak.

Every credential is real and distinctive: PostgreSQL is reached with a user and password,
Redis with ``requirepass``, the mail server with SMTP AUTH, the admin API with a bearer
token. Then a full ``gcmc-jobs demo --verbose`` runs against them (it sends a password
reset), a worker dead-letters a second password reset the mail server refuses for good,
and the dead letter is looked at through ``gcmc-jobs dead-letters list/show`` and the
admin API. No log line, command output, dead-letter display or API response contains a
password-reset token, the SMTP password, the database password or the Redis password.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.http.app import create_app
from gcmc_jobs.sending import queue_password_reset_email
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests.faults.conftest import TEMPLATE_DB, unique_namespace
from tests.support import PostgresCluster, RedisServer, dramatiq_worker, wait_until

GCMC_JOBS = str(Path(sys.executable).with_name("gcmc-jobs"))


@pytest.fixture
def secret() -> dict[str, str]:
    return {name: f"{name}-{secrets.token_hex(8)}" for name in ("pg", "redis", "smtp", "admin")}


@pytest.fixture
def secret_env(
    pg_cluster: PostgresCluster, fault_dir: Path, secret: dict[str, str]
) -> Iterator[tuple[dict[str, str], SmtpSink]]:
    """Services that need their credentials, and the GCMC_JOBS_* environment to reach them."""
    name = f"faults_secrets_{uuid.uuid4().hex[:8]}"
    user = f"app_{uuid.uuid4().hex[:6]}"
    admin = make_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{secret['pg']}'"))
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {user} TEMPLATE "{TEMPLATE_DB}"'))
    redis_server = RedisServer(fault_dir / "redis-secret", password=secret["redis"])
    redis_server.start()
    sink = SmtpSink(credentials=("mailer", secret["smtp"]))
    sink.reject("refused@example.com")
    sink.start()
    env = {
        "GCMC_JOBS_DATABASE_URL": pg_cluster.url(name).replace(
            "postgres@", f"{user}:{secret['pg']}@"
        ),
        "GCMC_JOBS_BROKER_URL": redis_server.url,
        "GCMC_JOBS_NAMESPACE": unique_namespace(),
        "GCMC_JOBS_EMAIL_URL": sink.url,
        "GCMC_JOBS_ADMIN_TOKEN": secret["admin"],
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_LOG_LEVEL": "DEBUG",
    }
    try:
        yield env, sink
    finally:
        sink.stop()
        redis_server.kill()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f"DROP ROLE IF EXISTS {user}"))
        admin.dispose()


def _run(env: dict[str, str], cwd: Path, *args: str) -> str:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    result = subprocess.run(
        [GCMC_JOBS, *args],
        env={**environment, **env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@contextlib.contextmanager
def _configured(env: dict[str, str]) -> Iterator[Settings]:
    settings = Settings(**{k.removeprefix("GCMC_JOBS_").lower(): v for k, v in env.items()})
    with configured(settings):
        yield settings


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_no_log_line_output_dead_letter_or_api_response_contains_a_secret(
    secret_env: tuple[dict[str, str], SmtpSink], secret: dict[str, str], fault_dir: Path
) -> None:
    env, sink = secret_env

    # Given a full demo run against the real services, every event logged
    demo_output = _run(env, fault_dir, "demo", "--verbose", "--tenants", "2")
    resets = [d for d in sink.deliveries if d.message.get("X-GCMC-Kind") == "password_reset"]
    assert resets, "the demo sent no password reset"
    body = "".join(
        str(part.get_payload(decode=True), "utf-8", "replace")
        for part in resets[0].message.walk()
        if part.get_content_maintype() == "text"
    )
    demo_token = re.search(r"token=([A-Za-z0-9_\-]+)", body)
    assert demo_token is not None, body
    assert sink.logins, "the demo did not authenticate to the mail server"

    # And a password reset that the mail server refuses for good, dead-lettered by a worker
    refused_token = f"tok-{secrets.token_urlsafe(16)}"
    with _configured(env) as settings:
        reset = queue_password_reset_email(
            "refused@example.com",
            {
                "tenant_name": "Acme CPA",
                "user_name": "Sam",
                "reset_url": f"https://portal.example/reset?token={refused_token}",
            },
        )
        worker = dramatiq_worker(
            env,
            fault_dir / "worker-secrets.log",
            threads=2,
            shutdown_timeout_ms=30_000,
            cwd=fault_dir,
        )
        with worker:
            engine = make_engine(env["GCMC_JOBS_DATABASE_URL"])
            dead_id = wait_until(
                lambda: _dead_letter_id(engine),
                timeout_s=90,
                what="the refused reset in dead_letters",
                diagnose=worker.log_tail,
            )
            engine.dispose()
        worker_log = worker.output()

        # When the dead letter is looked at, by command and by API
        listed = _run(env, fault_dir, "dead-letters", "list")
        shown = _run(env, fault_dir, "dead-letters", "show", str(dead_id))
        client = TestClient(create_app(settings))
        auth = {"Authorization": f"Bearer {secret['admin']}"}
        api = {
            path: client.get(path, headers=auth)
            for path in (
                "/api/dead-letters",
                f"/api/dead-letters/{dead_id}",
                "/api/health",
                "/api/queues",
                "/api/runs",
                f"/api/messages/{reset.message_id}",  # its status record
            )
        }

    # Then the dead letter is there to see, masked
    assert str(dead_id) in listed
    assert "refused@example.com" in shown
    assert api[f"/api/dead-letters/{dead_id}"].status_code == 200
    assert "PermanentDeliveryError" in api[f"/api/dead-letters/{dead_id}"].text

    # And no secret appears anywhere
    places = {
        "demo output": demo_output,
        "worker log": worker_log,
        "dead-letters list": listed,
        "dead-letters show": shown,
        **{f"GET {path}": response.text for path, response in api.items()},
    }
    needles = {
        "reset token (demo)": demo_token.group(1),
        "reset token (dead letter)": refused_token,
        "database password": secret["pg"],
        "SMTP password": secret["smtp"],
        "Redis password": secret["redis"],
        "admin token": secret["admin"],
    }
    leaks = [
        f"{what} in {where}"
        for where, haystack in places.items()
        for what, needle in needles.items()
        if needle in haystack
    ]
    print(
        f"\n[scenario 10] places_checked={len(places)} "
        f"lines_checked={sum(h.count(chr(10)) + 1 for h in places.values())} "
        f"secrets={len(needles)} leaks={len(leaks)}"
    )
    assert not leaks, [
        (
            leak,
            [
                line
                for line in places[leak.split(" in ", 1)[1]].splitlines()
                if any(n in line for n in needles.values())
            ][:3],
        )
        for leak in leaks
    ]
    assert all(r.status_code == 200 for r in api.values()), {
        p: r.status_code for p, r in api.items()
    }


def _dead_letter_id(engine: object) -> int | None:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        return connection.scalar(  # type: ignore[no-any-return]
            text("SELECT id FROM dead_letters WHERE kwargs->>'to' = 'refused@example.com'")
        )

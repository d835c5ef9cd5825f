"""Fixtures of the email tests: settings pointing at a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid

import pytest

from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink


@pytest.fixture
def gcmc_settings(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, smtp_server: SmtpSink
) -> Settings:
    """The stub broker, this test's own Redis namespace (fresh dedup keys and rate limits),
    and email delivered over SMTP to ``smtp_server`` with no wait between in-attempt tries."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}",
        email_url=smtp_server.url,
        email_retry_max_wait_ms=0,
        log_format="json",
    )


@pytest.fixture
def recipient() -> str:
    """An address of this test alone."""
    return f"user-{uuid.uuid4().hex[:10]}@example.com"

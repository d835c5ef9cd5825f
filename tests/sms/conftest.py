"""Fixtures of the SMS tests: settings pointing at a local server that answers as Twilio."""

from __future__ import annotations

import uuid

import pytest

from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import TwilioSink


@pytest.fixture
def gcmc_settings(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, twilio_server: TwilioSink
) -> Settings:
    """The stub broker, this test's own Redis namespace (fresh dedup keys and rate limits),
    and SMS sent through Twilio's API to ``twilio_server``."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}",
        email_url="memory://",
        log_format="json",
        **twilio_server.settings(),
    )

"""Fixtures of the campaign tests: the package configured on the stub broker with a worker,
email over SMTP to a real aiosmtpd server, on each schema mapping in turn (the ``gcmc``
preset, and Prisma's tables with the package's in a schema of their own)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs import configured
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink, join_all
from tests import factories as f
from tests.conftest import PRESET_NAMES
from tests.support.prisma import SplitSchemas

SECRET = "campaign-test-secret-0123456789"
UNSUBSCRIBE_URL = "https://jobs.acme.example/unsubscribe"


@dataclass
class CampaignWorld:
    """A configured runtime with a started worker, its engine, the SMTP sink, and a tenant."""

    runtime: Runtime
    worker: dramatiq.Worker
    engine: Engine
    sink: SmtpSink
    tenant: f.TenantRow
    preset: str

    def join(self, *, fail_fast: bool = False) -> None:
        """Wait until every queue is empty and the worker idle (bounded: 30 s)."""
        join_all(self.runtime.broker, self.worker, timeout_ms=30_000, fail_fast=fail_fast)

    def build(self, fill: Callable[[Session, f.TenantRow], Any]) -> Any:
        """Run ``fill(session, tenant)`` and commit."""
        with Session(self.engine) as session:
            result = fill(session, self.tenant)
            session.commit()
        return result


def campaign_settings(base: dict[str, Any], sink: SmtpSink, **overrides: Any) -> Settings:
    """Settings of a campaign test: SMTP to ``sink``, the secret, a fast rate."""
    return Settings(
        **base,
        broker_url="stub://",
        email_url=sink.url,
        email_retry_max_wait_ms=0,
        log_format="json",
        campaign_secret=SECRET,
        campaign_unsubscribe_url=UNSUBSCRIBE_URL,
        campaign_rate_per_second=1_000,
        **overrides,
    )


@pytest.fixture
def campaign_overrides() -> dict[str, Any]:
    """Settings a test module changes (override this fixture)."""
    return {}


@pytest.fixture(params=PRESET_NAMES)
def world(
    request: pytest.FixtureRequest,
    smtp_server: SmtpSink,
    gcmc_redis_url: str,
    gcmc_namespace: str,
    campaign_overrides: dict[str, Any],
) -> Iterator[CampaignWorld]:
    """A campaign world on each preset in turn."""
    namespace = f"{gcmc_namespace}:camp{uuid.uuid4().hex[:8]}"
    base: dict[str, Any] = {"redis_url": gcmc_redis_url, "namespace": namespace}
    if request.param == "gcmc":
        engine: Engine = request.getfixturevalue("gcmc_db")
        base["database_url"] = request.getfixturevalue("gcmc_postgres_url")
    else:
        split: SplitSchemas = request.getfixturevalue("prisma_split_db")
        engine = split.engine
        base |= {
            "database_url": split.url,
            "schema_mapping": str(split.mapping_path),
            "platform_tables": "external",
        }
    settings = campaign_settings(base, smtp_server, **campaign_overrides)
    with configured(settings, engine=engine) as runtime:
        broker = runtime.broker
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
        worker.start()
        try:
            with Session(engine) as session:
                tenant = f.tenant(session, "Acme CPA")
                session.commit()
            yield CampaignWorld(runtime, worker, engine, smtp_server, tenant, request.param)
        finally:
            smtp_server.release()
            worker.stop()
            broker.flush_all()

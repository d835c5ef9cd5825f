"""Fixtures of the admin API tests: the app on the stub broker, a client with the token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gcmc_jobs import configured
from gcmc_jobs.http import create_app
from gcmc_jobs.middleware.stores.dead_letters import DeadLetterRecord, SqlDeadLetterStore
from gcmc_jobs.settings import Settings
from tests.support.prisma import SplitSchemas

TOKEN = "test-admin-token"
#: A deployment that serves campaigns sets their secret (without it, starting one is a 503).
CAMPAIGN_SECRET = "test-campaign-secret-0123456789"


@pytest.fixture
def gcmc_settings(gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str) -> Settings:
    """The plugin's settings, plus an admin token, in a namespace of this test alone (so a
    queue a test pauses can never stay paused for another)."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:http{uuid.uuid4().hex[:8]}",
        email_url="memory://",
        log_format="json",
        admin_token=TOKEN,
        campaign_secret=CAMPAIGN_SECRET,
    )


@pytest.fixture
def api(gcmc_settings: Settings, gcmc_broker: dramatiq.Broker) -> Iterator[TestClient]:
    """A client of the app, sending the admin token."""
    with TestClient(
        create_app(gcmc_settings), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


@pytest.fixture
def prisma_settings(prisma_split_db: SplitSchemas) -> Iterator[Settings]:
    """Settings of the app on the ``prisma`` mapping (text ids), the package's tables in a
    schema of their own, with the runtime configured on that database (stub broker)."""
    settings = Settings(
        database_url=prisma_split_db.url,
        broker_url="stub://",
        email_url="memory://",
        log_format="json",
        admin_token=TOKEN,
        campaign_secret=CAMPAIGN_SECRET,
        schema_mapping=str(prisma_split_db.mapping_path),
        platform_tables="external",
    )
    with configured(settings, engine=prisma_split_db.engine):
        yield settings


@pytest.fixture
def prisma_api(prisma_settings: Settings) -> Iterator[TestClient]:
    """A client of the app on ``prisma_settings``, sending the admin token."""
    with TestClient(
        create_app(prisma_settings), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


@pytest.fixture
def bare_api(gcmc_settings: Settings) -> Iterator[TestClient]:
    """A client of the app with no database or broker prepared: for what auth refuses."""
    with TestClient(create_app(gcmc_settings)) as client:
        yield client


def add_dead_letter(engine: Engine, **fields: object) -> int:
    """Store one dead letter of ``refresh_compliance`` and return its id."""
    store = SqlDeadLetterStore(engine)
    values: dict[str, object] = {
        "message_id": "dead-1",
        "queue": "gcmc_compliance",
        "actor": "refresh_compliance",
        "args": [1],
        "kwargs": {},
        "options": {"retries": 5},
        "error_type": "OperationalError",
        "error": "database went away",
        "traceback": "Traceback ...",
        "attempts": 6,
        **fields,
    }
    store.add(DeadLetterRecord(**values))  # type: ignore[arg-type]
    [record] = store.get([_last_id(engine)])
    assert record.id is not None
    return record.id


def _last_id(engine: Engine) -> int:
    from sqlalchemy import func, select

    from gcmc_jobs.db.models import DeadLetter

    with engine.connect() as connection:
        return int(connection.execute(select(func.max(DeadLetter.id))).scalar_one())

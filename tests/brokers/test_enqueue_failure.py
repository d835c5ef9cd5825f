"""A failed enqueue releases the dedup keys it claimed and logs nothing as enqueued.

The broker runs on a Redis of the test's own, which it stops; the middleware's stores stay
on the shared Redis (``GCMC_JOBS_REDIS_URL``), so the dedup claims succeed while the
messages cannot be written: the review's scenario of a tick during a broker outage.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import Engine
from structlog.testing import capture_logs

from gcmc_jobs import redis_keys
from gcmc_jobs.actors import run_daily_job
from gcmc_jobs.actors.schedule import tick_now
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings
from tests import factories as f
from tests.support import RedisServer

NOON = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def settings(
    own_redis: RedisServer, gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str
) -> Settings:
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=own_redis.url,
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}",
        email_url="memory://",
        log_format="json",
    )


def _claimed(settings: Settings, gcmc_redis_url: str) -> list[bytes]:
    client = redis.Redis.from_url(gcmc_redis_url)
    try:
        pattern = redis_keys.dedup_key(settings.namespace, "*")
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def test_a_tick_while_the_broker_is_down_releases_its_keys_and_the_next_tick_enqueues(
    settings: Settings, own_redis: RedisServer, gcmc_db: Engine, gcmc_redis_url: str
) -> None:
    # Given a tenant whose five daily runs are due at noon, and the broker's Redis down
    with session_scope(gcmc_db) as session:
        f.tenant(session, "t")
    own_redis.stop()
    with configured(settings, engine=gcmc_db) as runtime:
        # When the scheduler ticks
        with capture_logs() as logs, pytest.raises(redis.ConnectionError):
            tick_now(runtime, NOON)

        # Then nothing is logged as enqueued, the failure is, and no key stays claimed
        events = [e["event"] for e in logs]
        assert "enqueued" not in events
        assert "enqueued_many" not in events
        [failed] = [e for e in logs if e["event"] == "bulk.enqueue_failed"]
        assert (failed["enqueued"], failed["not_enqueued"]) == (0, len(DEFAULT_JOB_TIMES))
        assert _claimed(settings, gcmc_redis_url) == []

        # When the broker is back, the next tick enqueues every run
        own_redis.start()
        with capture_logs() as logs:
            result = tick_now(runtime, NOON)
        assert (result.enqueued, result.duplicates) == (len(DEFAULT_JOB_TIMES), 0)
        # (a bulk enqueue logs each written chunk once: count and ids, not one per message)
        [enqueued] = [e for e in logs if e["event"] == "enqueued_many"]
        assert enqueued["messages"] == len(DEFAULT_JOB_TIMES)
        assert len(set(enqueued["message_ids"])) == len(DEFAULT_JOB_TIMES)
        assert "enqueued" not in [e["event"] for e in logs]
        assert len(_claimed(settings, gcmc_redis_url)) == len(DEFAULT_JOB_TIMES)


def test_a_single_keyed_send_while_the_broker_is_down_releases_its_key(
    settings: Settings, own_redis: RedisServer, gcmc_db: Engine, gcmc_redis_url: str
) -> None:
    with session_scope(gcmc_db) as session:
        tenant_id = f.tenant(session, "t").id
    kwargs = {"job": "filing_reminders", "tenant_id": tenant_id, "local_date": "2026-06-01"}
    own_redis.stop()
    with configured(settings, engine=gcmc_db):
        with capture_logs() as logs, pytest.raises(redis.ConnectionError):
            run_daily_job.send_with_options(kwargs=kwargs, dedup_key="run:k")
        assert "enqueued" not in [e["event"] for e in logs]
        assert _claimed(settings, gcmc_redis_url) == []

        own_redis.start()
        sent = run_daily_job.send_with_options(kwargs=kwargs, dedup_key="run:k")
        assert sent.options["dedup_key"] == "run:k"
        assert len(_claimed(settings, gcmc_redis_url)) == 1

"""Worker figures from a real ``dramatiq`` worker process, and Redis's own figures, as the
``workers`` and ``redis`` health checks report them (issue 16, item 2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from gcmc_jobs.ops.health import check_health
from gcmc_jobs.ops.live_workers import live_workers
from gcmc_jobs.redis_keys import heartbeats_key
from gcmc_jobs.settings import Settings
from tests.support import RedisServer, dramatiq_worker, wait_until


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_a_worker_reports_its_figures_and_is_gone_once_its_heartbeat_is_too_old(
    redis_settings: Settings, gcmc_db: Engine, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a real worker process (2 threads) writing its figures every 200 ms
    env = {
        "GCMC_JOBS_BROKER_URL": redis_settings.broker_url.get_secret_value(),
        "GCMC_JOBS_NAMESPACE": redis_settings.namespace,
        "GCMC_JOBS_DATABASE_URL": redis_settings.database_url.get_secret_value(),
        "GCMC_JOBS_OUTBOX_RELAY": "false",
        "GCMC_JOBS_WORKER_STATS_INTERVAL_MS": "200",
    }
    worker = dramatiq_worker(
        env,
        tmp_path / "worker.log",
        modules=("tests.ops.pause_worker_app",),
        processes=1,
        threads=2,
        queues=("ops_held", "ops_flowing"),
    )
    sender = RedisBroker(
        url=redis_settings.broker_url.get_secret_value(), namespace=redis_settings.namespace
    )
    with worker:
        worker.wait_ready()

        # When it runs 25 messages
        for n in range(25):
            sender.enqueue(Message("ops_flowing", "flowing", (n,), {}, {}))

        def reported() -> dict[str, Any] | None:
            report = check_health(redis_settings, engine=gcmc_db, checks=["workers"])
            workers = report.checks["workers"].data["workers"]
            done = [w for w in workers if (w["stats"] or {}).get("processed") == 25]
            return done[0] if done else None

        entry = wait_until(
            reported, what="the worker's figures after 25 messages", diagnose=worker.describe
        )

        # Then health lists its queues, threads and figures
        stats = entry["stats"]
        assert entry["queues"] == ["ops_flowing", "ops_held"]
        assert entry["threads"] == 2
        assert stats["failed"] == 0
        assert 0 <= stats["busy"] <= 2
        assert stats["samples"] == 25
        assert stats["mean_ms"] is not None
        assert 0 < stats["mean_ms"] <= stats["p95_ms"]
        assert stats["rss_bytes"] > 10 * 1024 * 1024
        assert stats["window_ms"] == redis_settings.worker_stats_window_ms

        # When the worker is killed (no shutdown: its registry entry stays behind)
        worker.kill()
    sender.close()
    last = int(redis_client.zscore(heartbeats_key(redis_settings.namespace), entry["id"]))

    # Then it is listed until its last heartbeat is heartbeat-timeout old, never after
    timeout = redis_settings.broker_heartbeat_timeout_ms
    before = live_workers(redis_settings, _at(last + timeout - 1)).workers
    after = live_workers(redis_settings, _at(last + timeout + 1)).workers
    assert [w["id"] for w in before] == [entry["id"]]
    assert after == []


def test_redis_health_gives_memory_evictions_clients_and_keys(
    redis_settings: Settings, gcmc_db: Engine, redis_client: redis.Redis
) -> None:
    redis_client.set(f"{redis_settings.namespace}:figure", "1")

    result = check_health(redis_settings, engine=gcmc_db, checks=["redis"]).checks["redis"]

    data = result.data
    assert data["used_memory_bytes"] > 0
    assert data["maxmemory_bytes"] >= 0
    assert data["evicted_keys"] >= 0
    assert data["connected_clients"] >= 1
    assert data["keys"]["db0"]["keys"] >= 1


def test_a_redis_near_its_maxmemory_is_a_warning(
    own_redis: RedisServer, gcmc_db: Engine, ops_namespace: str
) -> None:
    client = own_redis.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(int(used / 0.95)))
    client.close()
    settings = Settings(broker_url=own_redis.url, namespace=ops_namespace)

    result = check_health(settings, engine=gcmc_db, checks=["redis"]).checks["redis"]

    assert result.status == "warning", result
    assert "of its maxmemory" in result.detail
    assert result.data["maxmemory_bytes"] == int(used / 0.95)

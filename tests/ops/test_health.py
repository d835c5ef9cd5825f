"""Health checks against real Redis (our own server, stopped and restarted) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import DeadLetter, JobRun, JobRunStatus, Tenant
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.ops.pauses import pause_store_for
from gcmc_jobs.scheduling.seen_tenants import record_seen_tenants
from gcmc_jobs.settings import Settings
from tests.support import RedisServer, WorkerProcess, wait_until


def settings_on(url: str, database_url: str, namespace: str, **extra: object) -> Settings:
    return Settings(broker_url=url, database_url=database_url, namespace=namespace, **extra)


def test_health_turns_unhealthy_when_redis_stops_and_healthy_when_it_returns(
    own_redis: RedisServer, gcmc_db: Engine, gcmc_postgres_url: str, ops_namespace: str
) -> None:
    settings = settings_on(own_redis.url, gcmc_postgres_url, ops_namespace, health_timeout_ms=1_000)

    # Given a healthy deployment (persistence is off on our server: only a warning)
    report = check_health(settings, engine=gcmc_db)
    assert report.healthy, report.to_json()
    assert report.checks["redis"].status == "warning"
    assert report.checks["broker"].status == "ok"

    # When Redis stops, health is unhealthy and says which checks failed
    own_redis.stop()
    report = check_health(settings, engine=gcmc_db)
    assert not report.healthy
    assert report.checks["broker"].status == "unhealthy"
    assert report.checks["redis"].status == "unhealthy"
    assert report.checks["database"].status == "ok"

    # When it returns, health is healthy again
    own_redis.start()
    report = check_health(settings, engine=gcmc_db)
    assert report.healthy, report.to_json()


def test_an_evicting_redis_is_unhealthy(
    own_redis: RedisServer, gcmc_db: Engine, gcmc_postgres_url: str, ops_namespace: str
) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.close()
    settings = settings_on(own_redis.url, gcmc_postgres_url, ops_namespace)

    report = check_health(settings, engine=gcmc_db, checks=["redis"])

    assert report.status == "unhealthy"
    assert "allkeys-lru" in report.checks["redis"].detail


def test_persistence_on_and_noeviction_is_ok(
    own_redis: RedisServer, gcmc_db: Engine, gcmc_postgres_url: str, ops_namespace: str
) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.config_set("save", "3600 1")
    client.close()
    settings = settings_on(own_redis.url, gcmc_postgres_url, ops_namespace)
    assert check_health(settings, engine=gcmc_db, checks=["redis"]).status == "ok"


def test_a_deep_or_old_queue_is_unhealthy_and_a_paused_one_a_warning(
    redis_settings: Settings, gcmc_db: Engine, gcmc_redis_url: str
) -> None:
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=gcmc_redis_url, namespace=redis_settings.namespace)
    import dramatiq

    from gcmc_jobs import queue_names as queues

    send = dramatiq.actor(lambda: None, actor_name="x", queue_name=queues.EMAIL, broker=broker)
    for _ in range(3):
        send.send()
    strict = Settings(**{**_plain(redis_settings), "health_max_ready": 2})
    report = check_health(strict, engine=gcmc_db, checks=["queues"])
    assert report.status == "unhealthy"
    assert "gcmc_email: 3 ready > 2" in report.checks["queues"].detail

    pause_store_for(strict).pause(queues.EMAIL)
    report = check_health(strict, engine=gcmc_db, checks=["queues"])
    assert report.status == "warning"
    broker.close()


def test_dead_letters_waiting_are_a_warning(
    redis_settings: Settings, gcmc_db: Engine, gcmc_session: Session
) -> None:
    gcmc_session.add(
        DeadLetter(
            message_id="m1",
            queue="gcmc_email",
            actor="send_email",
            args=[],
            kwargs={},
            options={},
            error_type="X",
            error="boom",
            failed_at=datetime.now(UTC),
            traceback=None,
            attempts=6,
        )
    )
    gcmc_session.commit()
    report = check_health(redis_settings, engine=gcmc_db, checks=["dead_letters"])
    assert report.status == "warning"
    assert report.checks["dead_letters"].data == {"waiting": 1}


def test_a_daily_job_missing_after_its_time_and_grace_is_overdue(
    redis_settings: Settings, gcmc_db: Engine, gcmc_session: Session
) -> None:
    # Given a tenant in Paris, known to the scheduler since March 1, whose compliance
    # refresh ran yesterday, not today
    tenant = Tenant(name="Firm", timezone="Europe/Paris")
    gcmc_session.add(tenant)
    gcmc_session.flush()
    record_seen_tenants(gcmc_session, datetime(2026, 3, 1, tzinfo=UTC))
    for job in redis_settings.job_times:
        gcmc_session.add(
            JobRun(
                job=job,
                tenant_id=tenant.id,
                local_date=date(2026, 3, 9),
                status=JobRunStatus.SUCCEEDED,
                stats={},
            )
        )
    gcmc_session.commit()
    settings = Settings(**{**_plain(redis_settings), "job_times": {"compliance_refresh": time(2)}})

    # At 03:30 Paris (02:30 UTC) on the 10th, within the 2 h grace: nothing overdue
    early = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    assert check_health(settings, engine=gcmc_db, checks=["daily_jobs"], now=early).healthy

    # At 05:00 Paris, past 02:00 + 2 h: today's compliance refresh is overdue
    late = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    report = check_health(settings, engine=gcmc_db, checks=["daily_jobs"], now=late)
    assert report.status == "unhealthy"
    [row] = report.checks["daily_jobs"].data["jobs"]["compliance_refresh"]
    assert row["overdue"] is True
    assert row["last_success_date"] == "2026-03-09"
    assert row["due_date"] == "2026-03-10"


def _plain(settings: Settings) -> dict[str, object]:
    return {
        name: (value.get_secret_value() if hasattr(value, "get_secret_value") else value)
        for name, value in settings.model_dump().items()
        if value is not None
    }


def test_health_lists_live_workers_and_their_queues(
    redis_settings: Settings, gcmc_db: Engine, worker_process: WorkerProcess
) -> None:
    # Given a real worker (2 processes) consuming two queues: each registers them, then
    # heartbeats
    def both_listed() -> Any:
        result = check_health(redis_settings, engine=gcmc_db, checks=["workers"])
        return result if len(result.checks["workers"].data["workers"]) == 2 else None

    result = wait_until(
        both_listed,
        timeout_s=30,
        interval_s=0.1,
        what="a heartbeat from both worker processes",
        diagnose=worker_process.describe,
    )

    workers = result.checks["workers"].data["workers"]
    assert result.status == "ok"
    assert [w["queues"] for w in workers] == [["ops_flowing", "ops_held"]] * 2
    assert len({w["pid"] for w in workers}) == 2


def test_a_process_that_only_sends_is_not_counted_as_a_worker(
    redis_settings: Settings, gcmc_db: Engine, gcmc_redis_url: str, worker_process: WorkerProcess
) -> None:
    # Issue 11, item 12: Dramatiq writes a heartbeat on every enqueue, so a host process
    # that only sends looked like a live worker.
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    sender = RedisBroker(url=gcmc_redis_url, namespace=redis_settings.namespace)

    def send() -> None:
        sender.enqueue(Message("ops_nobody", "nothing", (), {}, {}))

    def consuming_workers() -> dict[str, Any]:
        return (
            check_health(redis_settings, engine=gcmc_db, checks=["workers"]).checks["workers"].data
        )

    try:
        # Given the real worker's two processes registered and a host process sending
        wait_until(
            lambda: len(consuming_workers()["workers"]) == 2,
            timeout_s=30,
            interval_s=0.1,
            what="both worker processes listed",
            diagnose=worker_process.describe,
        )
        send()

        # Then the sender is counted apart, and only the two consuming processes are workers
        data = consuming_workers()
        assert len(data["workers"]) == 2, data
        assert sender.broker_id not in {w["id"] for w in data["workers"]}
        assert data["not_consuming"] == 1

        # When every worker stops (their heartbeats are still fresh) and the host still sends
        assert worker_process.stop() == 0, worker_process.describe()
        send()
        result = check_health(redis_settings, engine=gcmc_db, checks=["workers"])

        # Then no live worker is reported: a warning, not "ok, N live worker(s)"
        workers = result.checks["workers"]
        assert workers.status == "warning", workers
        assert workers.data["workers"] == []
        assert workers.data["not_consuming"] == 3  # the sender and the two stopped processes
    finally:
        sender.close()

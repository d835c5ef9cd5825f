"""Message status with two real ``dramatiq`` worker processes on Redis: what a host process
reads with gcmc_jobs.status while other processes run its messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

import gcmc_jobs
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.ops.message_status import MessageStatus
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import WorkerProcess, wait_until
from tests.middleware.status_app import declare, gate_key

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str) -> Settings:
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:status",
        email_url="memory://",
        log_format="json",
    )


@pytest.fixture
def sender(settings: Settings, gcmc_db: Engine) -> Iterator[dict[str, Any]]:
    """This test process as a host: configured on the shared Redis, with the test actors."""
    with configured(settings, engine=gcmc_db) as runtime:
        actors = declare(
            runtime.broker,
            redis_url=settings.broker_url.get_secret_value(),
            namespace=settings.namespace,
        )
        yield {"broker": runtime.broker, **actors}


@pytest.fixture
def workers(
    settings: Settings, gcmc_worker_process: Callable[..., WorkerProcess]
) -> Iterator[WorkerProcess]:
    """Two worker processes, two threads each, with the test actors; killed when the test
    ends (the plugin's own teardown would wait ~4 s for a graceful stop nobody checks)."""
    worker = gcmc_worker_process(
        settings,
        processes=2,
        threads=2,
        modules=("tests.middleware.status_app",),
        env={"GCMC_JOBS_STATUS_TEST_WORKER": "1"},
    )
    yield worker
    worker.kill()


def _settled(message_id: str, states: tuple[str, ...]) -> Callable[[], MessageStatus | None]:
    def check() -> MessageStatus | None:
        answer = gcmc_jobs.status(message_id)
        return answer if answer.state in states else None

    return check


def test_statuses_of_messages_run_by_two_worker_processes(
    sender: dict[str, Any], workers: WorkerProcess
) -> None:
    # Given messages sent one by one, in bulk, delayed, and one that always fails
    ok = sender["status_ok"].send(1)
    bulk = enqueue_many(sender["broker"], [sender["status_ok"].message(n) for n in (2, 3, 4)])
    later = sender["status_ok"].send_with_options(args=(5,), delay=3_600_000)
    broken = sender["status_broken"].send(6)

    # Then each one's status follows it through the workers
    for message in [ok, *bulk.enqueued]:
        done = wait_until(
            _settled(message.message_id, ("succeeded",)),
            timeout_s=60,
            what=f"{message.message_id} succeeded",
            diagnose=workers.describe,
        )
        assert (done.actor, done.queue, done.attempts) == ("status_ok", "status_test", 1)
        assert done.started_at is not None
        assert done.finished_at is not None
    dead = wait_until(
        _settled(broken.message_id, ("dead_lettered", "failed")),
        timeout_s=60,
        what="the failing message dead-lettered",
        diagnose=workers.describe,
    )
    assert (dead.state, dead.attempts) == ("dead_lettered", 3)
    assert (dead.error_type, dead.error) == ("RuntimeError", "status_broken(6) always fails")
    assert gcmc_jobs.status(later.message_id).state == "delayed"
    assert workers.stop() == 0, workers.describe()


def test_a_message_a_worker_process_is_running_reports_running(
    sender: dict[str, Any], workers: WorkerProcess, settings: Settings, gcmc_redis_url: str
) -> None:
    # Given a message whose actor runs until the test opens its gate
    message = sender["status_gate"].send("g1")

    # Then, while it runs in a worker process, it is running, attempt 1
    running = wait_until(
        _settled(message.message_id, ("running",)),
        timeout_s=60,
        what="the gated message running",
        diagnose=workers.describe,
    )
    assert (running.attempts, running.finished_at) == (1, None)
    assert running.started_at is not None

    # And once the gate opens, it succeeds
    client = redis.Redis.from_url(gcmc_redis_url)
    client.set(gate_key(settings.namespace, "g1"), 1)
    client.close()
    done = wait_until(
        _settled(message.message_id, ("succeeded", "failed", "dead_lettered")),
        timeout_s=60,
        what="the gated message finished",
        diagnose=workers.describe,
    )
    assert done.state == "succeeded"
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.finished_at >= done.started_at

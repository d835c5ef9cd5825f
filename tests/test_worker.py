"""``gcmc_jobs.worker``: what ``dramatiq`` and ``periodiq`` load, run as real processes."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.brokers import build_broker
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import ComplianceScore, DocumentStatus
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from tests import factories as f
from tests.support import WorkerProcess, dramatiq_worker, periodiq_scheduler, wait_until

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

pytestmark = pytest.mark.slow


@pytest.fixture
def broker_env(
    request: pytest.FixtureRequest, gcmc_redis_url: str, gcmc_namespace: str, gcmc_postgres_url: str
) -> dict[str, str]:
    """Worker settings for the broker named by the test's parameter."""
    url = gcmc_redis_url if request.param == "redis" else RABBITMQ_URL
    return {
        "GCMC_JOBS_BROKER_URL": url,
        "GCMC_JOBS_REDIS_URL": gcmc_redis_url,
        "GCMC_JOBS_NAMESPACE": f"{gcmc_namespace}_cli",
        "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
        "GCMC_JOBS_EMAIL_URL": "memory://",
    }


@pytest.fixture
def producer(gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str) -> Iterator[Runtime]:
    """This test process configured as a host application on the real Redis broker."""
    settings = Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}_send",
        email_url="memory://",
    )
    with configured(settings) as runtime:
        yield runtime


def test_a_refresh_sent_from_one_process_is_processed_by_a_dramatiq_worker(
    gcmc_db: Engine, producer: Runtime, gcmc_worker_process: Callable[..., WorkerProcess]
) -> None:
    # Given a tenant with a client missing a document, in PostgreSQL
    with session_scope(gcmc_db) as session:
        t = f.tenant(session, timezone="Pacific/Kiritimati")
        c = f.client(session, t)
        f.document(session, c, status=DocumentStatus.PENDING_REVIEW)
        tenant_id, client_id = t.id, c.id
    # and a worker process on this process's settings (the plugin's fixture)
    worker = gcmc_worker_process(producer.settings, threads=1)

    # When this process sends the refresh over Redis
    refresh_compliance.send(tenant_id)

    # Then the worker process stores the score in PostgreSQL
    def scored() -> ComplianceScore | None:
        with Session(gcmc_db) as session:
            return session.get(ComplianceScore, client_id)

    score = wait_until(scored, timeout_s=60, what="the score", diagnose=worker.describe)
    assert (score.missing_count, score.score) == (1, 95)
    # and SIGTERM stops it cleanly
    assert worker.stop() == 0, worker.describe()
    assert "Traceback" not in worker.output()


@pytest.mark.parametrize("broker_env", ["redis"], indirect=True)
def test_a_dramatiq_worker_boots_without_alembic_log_lines(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    # Importing the package once configured Alembic's plugins, logging seven INFO lines in
    # every worker process; only migrating should touch Alembic.
    with dramatiq_worker(broker_env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        assert worker.stop() == 0, worker.describe()
    assert "Worker process is ready" in worker.output()
    assert "alembic" not in worker.output().lower()


# On Redis, the test above already starts a worker and stops it with SIGTERM.
@pytest.mark.parametrize("broker_env", ["rabbitmq"], indirect=True)
def test_dramatiq_worker_starts_and_stops_cleanly_on_sigterm(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    with dramatiq_worker(broker_env, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        assert worker.stop() == 0, worker.describe()
    assert "Traceback" not in worker.output()


@pytest.mark.parametrize("broker_env", ["redis", "rabbitmq"], indirect=True)
def test_periodiq_starts_and_stops_on_sigterm(broker_env: dict[str, str], tmp_path: Path) -> None:
    try:
        with periodiq_scheduler(broker_env, tmp_path / "periodiq.log") as scheduler:
            scheduler.wait_ready()
            # The readiness line opens periodiq's list of actors: the tick's line may follow.
            scheduler.wait_for_output("scheduler_tick")
            # periodiq keeps no state and installs no SIGTERM handler: it ends by the signal's
            # default action (exit status 143), which process managers count as a clean stop.
            assert scheduler.stop() in (0, -signal.SIGTERM), scheduler.describe()
        assert "Traceback" not in scheduler.output()
        assert "alembic" not in scheduler.output().lower()  # no migration machinery at boot
    finally:
        # The scheduler may have sent a tick: RabbitMQ queues have no namespace, so leave
        # the shared one empty (Redis keys go with the test session's namespace).
        if broker_env["GCMC_JOBS_BROKER_URL"].startswith("amqp"):
            rabbit = build_broker(Settings(broker_url=RABBITMQ_URL), Stores.stubs())
            rabbit.declare_queue(queues.SCHEDULER)
            rabbit.flush(queues.SCHEDULER)
            rabbit.close()

"""Scenario: Redis runs under Sentinel, and its primary crashes while a worker processes a
stream of messages.

A primary, one replica and three Sentinels (quorum 2, ``down-after-milliseconds`` 1,000)
run on spare ports; the worker and the producer are given only the ``redis+sentinel://``
URL. The primary is SIGKILLed mid-stream; the Sentinels promote the replica; the worker
and the producer must follow by themselves (no restart, no new URL) and every message sent
after the failover must run.

Redis replicates asynchronously: what the primary acknowledged in the last moments before
the crash may never have reached the replica. The scenario counts those messages (sent,
acknowledged by the old primary, never run) and prints the figure; it does not assert it
is zero, because it need not be (README "Guarantees").

The probe actor (``tests/faults/sentinel_app.py``) records each run in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, text

from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.redis_urls import redis_from_url
from tests.support import SentinelGroup, dramatiq_worker, wait_until

# Not imported from tests.faults.sentinel_app: declaring its actor in this process would
# add it to the package's actors (tests/middleware/test_retry_policy.py lists them).
QUEUE = "sentinel_probe"
ACTOR = "sentinel_probe"
RUNS_DDL = "CREATE TABLE IF NOT EXISTS sentinel_probe_runs (n integer NOT NULL)"
#: Messages sent (and run) before the crash, and sent after the failover.
BEFORE = 150
AFTER = 150
#: Pause between two sends of the stream, seconds (a steady stream), except in the burst
#: of BURST messages right before the crash, sent as fast as one thread can.
PACE_S = 0.004
BURST = 200


def runs(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT n, count(*) FROM sentinel_probe_runs GROUP BY n"))
        return {int(n): int(count) for n, count in found}


class Stream:
    """Sends probe ``n`` for n = 0, 1, 2, ... in a thread, through a broker on the
    Sentinel URL, and records which sends the primary acknowledged and which raised (while
    no primary could be reached)."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self.acknowledged: list[int] = []
        self.refused: list[int] = []
        self.next = 0
        self.pace_s = PACE_S
        self.stop_at: int | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.is_set() and (self.stop_at is None or self.next < self.stop_at):
            n = self.next
            message = dramatiq.Message(
                queue_name=QUEUE, actor_name=ACTOR, args=(n,), kwargs={}, options={}
            )
            try:
                self.broker.enqueue(message)
            except (redis.RedisError, dramatiq.errors.BrokerConnectionError):
                self.refused.append(n)
            else:
                self.acknowledged.append(n)
            self.next += 1
            if self.pace_s:
                time.sleep(self.pace_s)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    started = SentinelGroup(tmp_path / "sentinel").start()
    try:
        yield started
    finally:
        started.stop()


def test_a_worker_follows_a_sentinel_failover_by_itself(
    gcmc_db: Engine,
    gcmc_postgres_url: str,
    gcmc_redis_url: str,
    group: SentinelGroup,
    tmp_path: Path,
) -> None:
    # Given a worker and a producer that know Redis only by its Sentinel URL
    with gcmc_db.begin() as connection:
        connection.execute(text(RUNS_DDL))
        connection.execute(text("TRUNCATE sentinel_probe_runs"))
    namespace = f"gcmc_sentinel_{uuid.uuid4().hex[:10]}"
    env = {
        "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
        "GCMC_JOBS_BROKER_URL": group.url,
        "GCMC_JOBS_NAMESPACE": namespace,
        "GCMC_JOBS_MIN_BACKOFF_MS": "100",
        "GCMC_JOBS_MAX_BACKOFF_MS": "1000",
        "GCMC_JOBS_LOG_FORMAT": "json",
    }
    worker = dramatiq_worker(
        env, tmp_path / "worker.log", modules=("gcmc_jobs.worker", "tests.faults.sentinel_app"),
        processes=1, threads=4, cwd=tmp_path,
    )  # fmt: skip
    producer = RedisBroker(  # type: ignore[no-untyped-call]
        client=redis_from_url(group.url, socket_timeout=2, socket_connect_timeout=2),
        namespace=namespace,
        middleware=[],
    )
    first_primary = group.primary_port()
    assert first_primary == group.primary.port
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(worker.kill)
        worker.start()
        worker.wait_ready()
        cleanup.callback(producer.client.close)
        stream = Stream(producer).start()
        cleanup.callback(stream.stop)

        # And a stream of messages being processed
        wait_until(
            lambda: len(runs(gcmc_db)) >= BEFORE,
            timeout_s=60,
            what=f"the first {BEFORE} probes to run",
            diagnose=worker.describe,
        )

        # When the primary crashes (SIGKILL) in the middle of a burst of sends
        burst_from = stream.next
        stream.pace_s = 0
        wait_until(lambda: stream.next >= burst_from + BURST, timeout_s=30, what="the burst")
        sent_before_kill = stream.next
        group.kill_primary()
        killed_at = time.monotonic()
        stream.pace_s = PACE_S

        # Then the Sentinels promote the replica
        wait_until(
            lambda: group.primary_port() == group.replica.port,
            timeout_s=30,
            what="the Sentinels to promote the replica",
        )
        promoted_s = time.monotonic() - killed_at
        # And the messages sent after the failover all run, on the worker that never
        # restarted
        promoted_at = stream.next
        stream.stop_at = promoted_at + AFTER
        wait_until(
            lambda: stream.next >= promoted_at + AFTER,
            timeout_s=60,
            what=f"{AFTER} more sends after the failover",
        )
        stream.stop()
        after_failover = [n for n in stream.acknowledged if n >= promoted_at]
        wait_until(
            lambda: set(after_failover) <= set(runs(gcmc_db)),
            timeout_s=60,
            what="every probe sent after the failover to run",
            diagnose=worker.describe,
        )
        caught_up_s = time.monotonic() - killed_at
        assert worker.alive(), worker.describe()

    counts = runs(gcmc_db)
    acknowledged = set(stream.acknowledged)
    lost = sorted(acknowledged - set(counts))
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(
        f"\n[sentinel failover] sent={stream.next} acknowledged={len(acknowledged)} "
        f"refused_during_failover={len(stream.refused)} "
        f"burst_before_kill={sent_before_kill - burst_from} (ids {burst_from}-"
        f"{sent_before_kill - 1}) lost={len(lost)} (ids {lost[:20]}) duplicates={duplicates} "
        f"after_failover={len(after_failover)} promoted_after={promoted_s:.1f}s "
        f"all_run_after={caught_up_s:.1f}s"
    )
    # The producer followed the failover too: most sends after it were acknowledged
    assert len(after_failover) >= AFTER // 2
    # Nothing sent after the failover was lost: what was lost (if anything) had been
    # acknowledged by the old primary before the Sentinels promoted the replica
    assert all(n < promoted_at for n in lost)
    # Nothing ran that was never sent
    assert set(counts) <= acknowledged | set(stream.refused)
    # And no connection went around the Sentinels to a default Redis (localhost:6379)
    shared = redis_from_url(gcmc_redis_url)
    assert not list(shared.scan_iter(match=f"{namespace}:*", count=1000))
    shared.close()

"""StatusTracking and gcmc_jobs.status: what became of a message, on the stub broker."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
import redis

import gcmc_jobs
from gcmc_jobs import redis_keys
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.middleware import (
    DeadLetters,
    RedisStatusStore,
    SqlDeadLetterStore,
    StatusTracking,
    StubStatusStore,
)
from gcmc_jobs.middleware.stores.status import sequence
from gcmc_jobs.settings import Settings
from tests.middleware.conftest import middleware_of

SECRET = "Tok3nThatMustNeverBeStored"
RESET_LINK = f"https://portal.gcmc.example/reset/{SECRET}"


@pytest.fixture
def stub_broker(gcmc_settings: Settings, gcmc_broker: dramatiq.Broker) -> dramatiq.Broker:
    """``gcmc_broker`` whose StatusTracking writes to an in-process stub store (its
    :attr:`~StubStatusStore.history` lists every state a message went through)."""
    tracking = middleware_of(gcmc_broker, StatusTracking)
    tracking.store = gcmc_jobs.current().stores.status = StubStatusStore()
    return gcmc_broker


@pytest.fixture
def one_thread(stub_broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    """A worker with one thread: an attempt's outcome is recorded before the next attempt
    can start (with more threads, a retry due in 1 ms may start on another thread first, and
    the late "retrying" is then rightly dropped as older)."""
    worker = dramatiq.Worker(stub_broker, worker_timeout=20, worker_threads=1)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def _history(broker: dramatiq.Broker, message_id: str) -> list[str]:
    store = middleware_of(broker, StatusTracking).store
    assert isinstance(store, StubStatusStore)
    return store.history.get(message_id, [])


def test_a_message_goes_enqueued_running_succeeded(stub_broker: dramatiq.Broker) -> None:
    @dramatiq.actor(broker=stub_broker, queue_name="status_q")
    def fine(n: int) -> None:
        assert gcmc_jobs.status(running.message_id).state == "running"

    # Given a message sent while no worker runs
    running = fine.send(1)
    assert gcmc_jobs.status(running.message_id).state == "enqueued"

    # When a worker processes it
    worker = dramatiq.Worker(stub_broker, worker_timeout=20, worker_threads=1)
    worker.start()
    try:
        stub_broker.join("status_q")
        worker.join()
    finally:
        worker.stop()

    assert _history(stub_broker, running.message_id) == ["enqueued", "running", "succeeded"]
    answer = gcmc_jobs.status(running.message_id)
    assert (answer.state, answer.actor, answer.queue, answer.attempts) == (
        "succeeded",
        "fine",
        "status_q",
        1,
    )
    assert answer.known
    assert answer.enqueued_at is not None
    assert answer.started_at is not None
    assert answer.finished_at is not None
    assert answer.enqueued_at <= answer.started_at <= answer.finished_at
    assert (answer.error_type, answer.error, answer.due_at) == (None, None, None)


def test_a_failing_message_goes_retrying_then_dead_lettered(
    stub_broker: dramatiq.Broker, one_thread: dramatiq.Worker
) -> None:
    @dramatiq.actor(broker=stub_broker, max_retries=2, min_backoff=1, max_backoff=2)
    def broken(n: int) -> None:
        raise RuntimeError(f"attempt failed for {n}")

    message = broken.send(5)
    stub_broker.join(broken.queue_name, fail_fast=False)
    one_thread.join()

    assert _history(stub_broker, message.message_id) == [
        "enqueued",
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "dead_lettered",
    ]
    answer = gcmc_jobs.status(message.message_id)
    assert (answer.state, answer.attempts) == ("dead_lettered", 3)
    assert (answer.error_type, answer.error) == ("RuntimeError", "attempt failed for 5")


def test_a_message_the_dead_letter_store_cannot_take_is_failed(
    stub_broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    dead_letters = middleware_of(stub_broker, DeadLetters)
    # its database is down (nothing listens on port 1)
    dead_letters.store = SqlDeadLetterStore(
        make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    )

    @dramatiq.actor(broker=stub_broker, max_retries=0)
    def doomed() -> None:
        raise ValueError("no way")

    message = doomed.send()
    stub_broker.join(doomed.queue_name, fail_fast=False)
    worker.join()

    answer = gcmc_jobs.status(message.message_id)
    assert (answer.state, answer.attempts, answer.error_type) == ("failed", 1, "ValueError")


def test_a_delayed_message_reports_delayed_with_when_it_is_due(
    stub_broker: dramatiq.Broker,
) -> None:
    @dramatiq.actor(broker=stub_broker)
    def later() -> None:
        pass

    message = later.send_with_options(delay=3_600_000)

    answer = gcmc_jobs.status(message.message_id)
    assert (answer.state, answer.attempts) == ("delayed", 1)
    assert answer.due_at is not None
    assert answer.enqueued_at is not None
    assert answer.due_at > answer.enqueued_at


def test_an_unknown_message_id_is_answered_unknown(stub_broker: dramatiq.Broker) -> None:
    answer = gcmc_jobs.status("00000000-0000-4000-8000-000000000000")
    assert (answer.state, answer.known, answer.actor, answer.attempts) == (
        "unknown",
        False,
        None,
        0,
    )


@pytest.mark.parametrize("bad", ["", "has space", "x" * 201, "semi;colon", 42])
def test_something_that_is_not_a_message_id_is_refused_clearly(
    stub_broker: dramatiq.Broker, bad: object
) -> None:
    with pytest.raises(InvalidPayload, match="not a message id"):
        gcmc_jobs.status(bad)  # type: ignore[arg-type]


def test_an_expired_record_is_unknown() -> None:
    now = [1_000.0]
    store = StubStatusStore(clock=lambda: now[0])
    store.record("m-1", sequence("enqueued", 1), {"state": "enqueued"}, 60_000)
    assert gcmc_jobs.status("m-1", store=store).state == "enqueued"

    now[0] += 61

    assert gcmc_jobs.status("m-1", store=store).state == "unknown"


# -- on Redis (the plugin's settings name the test Redis) -----------------------------------


@pytest.fixture
def client(gcmc_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gcmc_redis_url)
    yield client
    client.close()


def test_the_record_is_a_redis_hash_with_the_configured_ttl(
    gcmc_broker: dramatiq.Broker, gcmc_settings: Settings, client: redis.Redis
) -> None:
    assert isinstance(middleware_of(gcmc_broker, StatusTracking).store, RedisStatusStore)

    @dramatiq.actor(broker=gcmc_broker)
    def kept() -> None:
        pass

    message = kept.send()

    key = redis_keys.status_key(gcmc_settings.namespace, message.message_id)
    assert client.hget(key, "state") == b"enqueued"
    assert 0 < client.pttl(key) <= gcmc_settings.status_ttl_ms
    assert gcmc_jobs.status(message.message_id).state == "enqueued"


def test_a_ttl_of_zero_records_nothing(
    gcmc_settings: Settings, gcmc_db: object, client: redis.Redis
) -> None:
    settings = gcmc_settings.model_copy(update={"status_ttl_ms": 0})
    with configured(settings) as runtime:

        @dramatiq.actor(broker=runtime.broker)
        def untracked() -> None:
            pass

        message = untracked.send()

        key = redis_keys.status_key(settings.namespace, message.message_id)
        assert client.exists(key) == 0
        assert gcmc_jobs.status(message.message_id).state == "unknown"


@pytest.mark.parametrize("kind", ["stub", "redis"])
def test_a_late_write_never_turns_the_answer_back(
    kind: str, gcmc_redis_url: str, gcmc_namespace: str, client: redis.Redis
) -> None:
    # A sender's "enqueued" reaching the store after a fast worker's "running".
    store = (
        StubStatusStore()
        if kind == "stub"
        else RedisStatusStore(client, namespace=f"{gcmc_namespace}:order")
    )
    assert store.record("m-2", sequence("running", 1), {"state": "running"}, 60_000)

    assert not store.record("m-2", sequence("enqueued", 1), {"state": "enqueued"}, 60_000)
    assert gcmc_jobs.status("m-2", store=store).state == "running"
    # and the next attempt's writes do replace the failed one's "retrying"
    assert store.record("m-2", sequence("retrying", 1), {"state": "retrying"}, 60_000)
    assert store.record("m-2", sequence("running", 2), {"state": "running"}, 60_000)
    assert gcmc_jobs.status("m-2", store=store).state == "running"


def test_secrets_are_never_stored_in_the_status_record(
    gcmc_broker: dramatiq.Broker, gcmc_settings: Settings, worker: dramatiq.Worker,
    client: redis.Redis,
) -> None:  # fmt: skip
    # Given an actor whose reset link travels in its arguments and a secret option, and whose
    # error names the link
    @dramatiq.actor(broker=gcmc_broker, max_retries=0)
    def reset_mail(to: str, reset_link: str) -> None:
        raise RuntimeError(f"could not mail {reset_link} to {to}")

    message = reset_mail.send_with_options(
        kwargs={"to": "a@example.com", "reset_link": RESET_LINK},
        secrets={"reset_link": RESET_LINK, "password": SECRET},
    )
    gcmc_broker.join(reset_mail.queue_name, fail_fast=False)
    worker.join()

    # Then the record says what happened, and holds no trace of the secret
    key = redis_keys.status_key(gcmc_settings.namespace, message.message_id)
    stored = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    assert stored["state"] == "dead_lettered"
    assert "could not mail" in stored["error"]
    assert not [v for v in stored.values() if SECRET in v]
    assert set(stored) <= {
        "seq", "state", "actor", "queue", "attempts", "enqueued_at", "started_at",
        "finished_at", "due_at", "updated_at", "error_type", "error",
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["stub", "redis"])
def test_a_batch_of_writes_keeps_the_order_rule_per_message(
    kind: str, gcmc_namespace: str, client: redis.Redis
) -> None:
    store = (
        StubStatusStore()
        if kind == "stub"
        else RedisStatusStore(client, namespace=f"{gcmc_namespace}:batch")
    )
    store.record("m-3", sequence("running", 1), {"state": "running"}, 60_000)

    store.record_many(
        [
            ("m-3", sequence("enqueued", 1), {"state": "enqueued"}),  # older: dropped
            ("m-4", sequence("running", 1), {"state": "running", "actor": "a"}),
            ("m-4", sequence("succeeded", 1), {"state": "succeeded", "error": "x\x1fy"}),
            ("m-4", sequence("succeeded", 1), {"actor": "", "error_type": "E"}),
        ],
        60_000,
    )

    assert gcmc_jobs.status("m-3", store=store).state == "running"
    four = gcmc_jobs.status("m-4", store=store)
    # an empty value clears the field
    assert (four.state, four.actor, four.error_type) == ("succeeded", None, "E")
    # Redis's batch joins fields with byte 31: inside a value it becomes a space
    assert four.error == ("x\x1fy" if kind == "stub" else "x y")


def test_a_worker_s_changes_are_written_in_batches_and_flushed() -> None:
    store = StubStatusStore()
    tracking = StatusTracking(store, batch_ms=50)
    message = dramatiq.Message(queue_name="q", actor_name="batched", args=(), kwargs={}, options={})

    tracking.before_process_message(None, message)  # type: ignore[arg-type]
    tracking.after_process_message(None, message)  # type: ignore[arg-type]
    tracking.flush()

    # "succeeded" takes the place of "running" when it is still in the unwritten batch (most
    # often: test_status_tracking_batches pins both cases)
    assert store.history[message.message_id] in (["succeeded"], ["running", "succeeded"])
    assert gcmc_jobs.status(message.message_id, store=store).state == "succeeded"


@pytest.mark.parametrize("kind", ["stub", "redis"])
def test_records_sharing_their_fields_are_written_at_once_keeping_the_order_rule(
    kind: str, gcmc_namespace: str, client: redis.Redis
) -> None:
    store = (
        StubStatusStore()
        if kind == "stub"
        else RedisStatusStore(client, namespace=f"{gcmc_namespace}:each")
    )
    store.record("m-5", sequence("running", 1), {"state": "running"}, 60_000)

    # When three records share their fields but each has its own enqueued_at
    shared = {"state": "enqueued", "actor": "a", "queue": "q", "due_at": "", "note": "x\x1fy"}
    store.record_each(
        ["m-5", "m-6", "m-7"], sequence("enqueued", 1), shared, "enqueued_at", [5, 6, 7], 60_000
    )

    # Then the older one is dropped and the others hold the shared fields and their own value
    assert gcmc_jobs.status("m-5", store=store).state == "running"
    for n in (6, 7):
        record = store.get(f"m-{n}")
        assert record is not None
        assert (record["state"], record["actor"], record["enqueued_at"]) == (
            "enqueued",
            "a",
            str(n),
        )
        assert "due_at" not in record  # an empty value clears the field
        assert record["note"] == ("x\x1fy" if kind == "stub" else "x y")
    with pytest.raises(ValueError, match="one value per message id"):
        store.record_each(["m-8"], 10, shared, "enqueued_at", [], 60_000)

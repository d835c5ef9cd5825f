"""RedisStatusStore.record_many merges the writes of one message in a batch into one: the
record it leaves is exactly the one the writes made one by one would (real Redis)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dramatiq
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

import gcmc_jobs
from gcmc_jobs import redis_keys
from gcmc_jobs.middleware import RedisStatusStore, StatusTracking, StubStatusStore
from gcmc_jobs.middleware.stores.status import PHASES, sequence
from gcmc_jobs.testing import wait_until
from gcmc_jobs.testing.logs import capture_events
from gcmc_jobs.testing.ports import free_port

TTL_MS = 60_000


@pytest.fixture
def client(gcmc_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gcmc_redis_url)
    yield client
    client.close()


def _stored(client: redis.Redis, namespace: str, message_id: str) -> dict[bytes, bytes]:
    return client.hgetall(redis_keys.status_key(namespace, message_id))  # type: ignore[return-value]


class _Spy:
    """Calls the store's batch script through, keeping the keys of each call."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.calls: list[list[str]] = []

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        self.calls.append(list(keys))
        return self.runner(keys, args)


_NAMES = ["state", "actor", "attempts", "started_at", "finished_at", "error"]
_VALUES = st.one_of(st.sampled_from(["", "x", "a b", "é"]), st.integers(0, 10**13))
_FIELDS = st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=4)
_SEQ = st.builds(
    lambda state, attempt, redelivered: sequence(state, attempt, redelivered=redelivered),
    st.sampled_from(sorted(PHASES)),
    st.integers(1, 3),
    st.booleans(),
)
_RECORDS = st.lists(st.tuples(st.sampled_from(["m1", "m2"]), _SEQ, _FIELDS), max_size=8)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(st.tuples(st.sampled_from(["m1", "m2"]), _SEQ, _FIELDS), max_size=2),
    records=_RECORDS,
)
def test_a_batch_leaves_the_records_its_writes_one_by_one_would(
    client: redis.Redis,
    gcmc_namespace: str,
    before: list[tuple[str, int, dict[str, str | int]]],
    records: list[tuple[str, int, dict[str, str | int]]],
) -> None:
    run = uuid.uuid4().hex[:8]
    batched = RedisStatusStore(client, namespace=f"{gcmc_namespace}:{run}:batched")
    single = RedisStatusStore(client, namespace=f"{gcmc_namespace}:{run}:single")
    for store in (batched, single):  # what the records held before the batch
        for message_id, seq, fields in before:
            store.record(message_id, seq, fields, TTL_MS)

    batched.record_many(records, TTL_MS)
    for message_id, seq, fields in records:
        single.record(message_id, seq, fields, TTL_MS)

    for message_id in ("m1", "m2"):
        expected = _stored(client, single.namespace, message_id)
        assert _stored(client, batched.namespace, message_id) == expected
        if expected:
            assert client.pttl(redis_keys.status_key(batched.namespace, message_id)) > 0
        assert batched.get(message_id) == single.get(message_id)


def test_a_message_s_writes_in_one_batch_are_one_record_of_the_script(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    store = RedisStatusStore(client, namespace=f"{gcmc_namespace}:merged")
    spy = store._record_many = _Spy(store._record_many)  # type: ignore[method-assign]
    running = {"state": "running", "attempts": 1, "started_at": 5, "finished_at": ""}
    succeeded = {"state": "succeeded", "attempts": 1, "finished_at": 7}

    store.record_many(
        [
            ("m1", sequence("running", 1), running),
            ("m2", sequence("running", 1), running),
            ("m1", sequence("succeeded", 1), succeeded),
        ],
        TTL_MS,
    )

    assert spy.calls == [
        [redis_keys.status_key(store.namespace, "m1"), redis_keys.status_key(store.namespace, "m2")]
    ]
    assert store.get("m1") == {
        "seq": "13", "state": "succeeded", "attempts": "1", "started_at": "5", "finished_at": "7"
    }  # fmt: skip


def test_an_earlier_write_merged_into_a_later_one_is_still_dropped_when_older(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    # A redelivered message whose "succeeded" was recorded before it ran again: the new
    # "running" is older and dropped, its started_at with it; the "succeeded" applies.
    store = RedisStatusStore(client, namespace=f"{gcmc_namespace}:older")
    store.record("m1", sequence("succeeded", 1), {"state": "succeeded", "started_at": 1}, TTL_MS)

    store.record_many(
        [
            ("m1", sequence("running", 1), {"state": "running", "started_at": 5}),
            ("m1", sequence("succeeded", 1), {"state": "succeeded", "finished_at": 7}),
        ],
        TTL_MS,
    )

    assert store.get("m1") == {
        "seq": "13", "state": "succeeded", "started_at": "1", "finished_at": "7"
    }  # fmt: skip


def test_a_worker_s_batch_reads_as_its_writes_one_by_one(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    store = RedisStatusStore(client, namespace=f"{gcmc_namespace}:worker")
    tracking = StatusTracking(store, batch_ms=50, clock=lambda: 1_700_000_000.0)
    message = dramatiq.Message(
        queue_name="q", actor_name="batched", args=(), kwargs={}, options={}, message_timestamp=5
    )

    tracking.before_process_message(None, message)  # type: ignore[arg-type]
    tracking.after_process_message(None, message)  # type: ignore[arg-type]
    tracking.after_ack(None, message)  # type: ignore[arg-type]
    tracking.flush()

    assert store.get(message.message_id) == {
        "seq": "13", "state": "succeeded", "actor": "batched", "queue": "q", "attempts": "1",
        "enqueued_at": "5", "updated_at": "1700000000000", "started_at": "1700000000000",
        "finished_at": "1700000000000",
    }  # fmt: skip
    assert gcmc_jobs.status(message.message_id, store=store).state == "succeeded"


def test_a_batch_takes_a_record_without_fields_and_refuses_an_empty_field_name(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    store = RedisStatusStore(client, namespace=f"{gcmc_namespace}:edges")
    store.record("m1", sequence("running", 1), {"state": "running"}, TTL_MS)

    store.record_many([("m1", sequence("succeeded", 1), {})], TTL_MS)  # the seq alone

    assert store.get("m1") == {"seq": "13", "state": "running"}
    with pytest.raises(ValueError, match="empty"):  # "" marks a merged write's earlier fields
        store.record_many([("m2", sequence("running", 1), {"": "x"})], TTL_MS)
    assert store.get("m2") is None


class _WritesKept(StubStatusStore):
    """The stub store, keeping each write as it was given (fields in their order)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int, list[tuple[str, str | int]]]] = []

    def record(
        self, message_id: str, seq: int, fields: Mapping[str, str | int], ttl_ms: int
    ) -> bool:
        self.writes.append((message_id, seq, list(fields.items())))
        return super().record(message_id, seq, fields, ttl_ms)


def test_a_worker_s_records_are_its_fields_in_order_with_one_clock_reading_each() -> None:
    # Given a clock that moves 1 s at each reading, and a third attempt read from a
    # delayed queue's name, each change written at once
    store = _WritesKept()
    ticks = iter(range(1, 100))
    tracking = StatusTracking(store, batch_ms=0, clock=lambda: float(next(ticks)))
    third = dramatiq.Message(
        queue_name="q.DQ", actor_name="a", args=(), kwargs={}, options={"retries": 2},
        message_timestamp=5.9,
    )  # fmt: skip
    other = dramatiq.Message(
        queue_name="q", actor_name="b", args=(), kwargs={}, options={}, message_timestamp=6
    )
    # When it runs, then a message this thread did not start ends
    tracking.before_process_message(None, third)  # type: ignore[arg-type]
    tracking.after_process_message(None, third)  # type: ignore[arg-type]
    tracking.after_process_message(None, other)  # type: ignore[arg-type]
    # Then each record holds its fields in order, the time of the change the time it
    # started (or finished), and "succeeded" also the time its run started
    common = [("actor", "a"), ("queue", "q"), ("attempts", 3), ("enqueued_at", 5)]
    assert store.writes == [
        (third.message_id, sequence("running", 3), [
            ("state", "running"), *common, ("updated_at", 1000), ("started_at", 1000),
            ("finished_at", ""),
        ]),
        (third.message_id, sequence("succeeded", 3), [
            ("state", "succeeded"), *common, ("updated_at", 2000), ("finished_at", 2000),
            ("started_at", 1000),
        ]),
        (other.message_id, sequence("succeeded", 1), [
            ("state", "succeeded"), ("actor", "b"), ("queue", "q"), ("attempts", 1),
            ("enqueued_at", 6), ("updated_at", 3000), ("finished_at", 3000),
        ]),
    ]  # fmt: skip


class _GatedStore(RedisStatusStore):
    """The Redis store, keeping the records of each batch it is given, whose batch writes
    wait for :attr:`gate` (the test holds the batch thread in a write while it runs hooks)."""

    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        super().__init__(client, namespace=namespace)
        self.gate = threading.Event()
        self.batches: list[list[tuple[str, int, dict[str, str | int]]]] = []

    def record_many(
        self, records: Sequence[tuple[str, int, Mapping[str, str | int]]], ttl_ms: int
    ) -> None:
        self.batches.append([(m, seq, dict(fields)) for m, seq, fields in records])
        self.gate.wait(10)
        super().record_many(records, ttl_ms)


def _message(actor: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name="q", actor_name=actor, args=(), kwargs={}, options={}, message_timestamp=5
    )


def test_a_succeeded_takes_the_place_of_its_running_still_in_the_batch(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    # Given a worker whose batch thread is busy writing an earlier batch
    store = _GatedStore(client, namespace=f"{gcmc_namespace}:coalesced")
    ticks = iter(range(1_700_000_000, 1_700_000_100))
    tracking = StatusTracking(store, batch_ms=1, clock=lambda: float(next(ticks)))
    earlier, message = _message("earlier"), _message("quick")
    tracking.before_process_message(None, earlier)  # type: ignore[arg-type]
    wait_until(lambda: store.batches, what="the batch thread in its first write", interval_s=0.001)
    # When a message runs and succeeds before its "running" is taken out of the batch
    tracking.before_process_message(None, message)  # type: ignore[arg-type]
    tracking.after_process_message(None, message)  # type: ignore[arg-type]
    store.gate.set()
    tracking.flush()

    # Then one record of it is written, not two: "succeeded" with the time it started
    assert store.batches[1] == [
        (message.message_id, sequence("succeeded", 1), {
            "state": "succeeded", "actor": "quick", "queue": "q", "attempts": 1,
            "enqueued_at": 5, "updated_at": 1_700_000_002_000, "finished_at": 1_700_000_002_000,
            "started_at": 1_700_000_001_000,
        }),
    ]  # fmt: skip
    # And the stored record is the one the two writes one by one made before
    single = RedisStatusStore(client, namespace=f"{gcmc_namespace}:one_by_one")
    base = {"actor": "quick", "queue": "q", "attempts": 1, "enqueued_at": 5}
    single.record(message.message_id, sequence("running", 1), {
        "state": "running", **base, "updated_at": 1_700_000_001_000,
        "started_at": 1_700_000_001_000, "finished_at": "",
    }, TTL_MS)  # fmt: skip
    single.record(message.message_id, sequence("succeeded", 1), {
        "state": "succeeded", **base, "updated_at": 1_700_000_002_000,
        "finished_at": 1_700_000_002_000,
    }, TTL_MS)  # fmt: skip
    expected = _stored(client, single.namespace, message.message_id)
    assert _stored(client, store.namespace, message.message_id) == expected
    assert store.get(message.message_id) == {
        "seq": "13", "state": "succeeded", "actor": "quick", "queue": "q", "attempts": "1",
        "enqueued_at": "5", "updated_at": "1700000002000", "started_at": "1700000001000",
        "finished_at": "1700000002000",
    }  # fmt: skip


def test_a_message_still_running_when_its_batch_is_written_reads_running(
    client: redis.Redis, gcmc_namespace: str
) -> None:
    store = _GatedStore(client, namespace=f"{gcmc_namespace}:long")
    store.gate.set()
    ticks = iter(range(1_700_000_000, 1_700_000_100))
    tracking = StatusTracking(store, batch_ms=1, clock=lambda: float(next(ticks)))
    message = _message("long")

    # When its batch is written while it runs
    tracking.before_process_message(None, message)  # type: ignore[arg-type]
    tracking.flush()
    # Then it reads "running"
    running = store.get(message.message_id)
    assert running is not None
    assert (running["state"], running["started_at"]) == ("running", "1700000000000")
    # And once it succeeds, "succeeded" is written on its own, holding all the same
    tracking.after_process_message(None, message)  # type: ignore[arg-type]
    tracking.flush()
    assert [len(batch) for batch in store.batches] == [1, 1]
    assert store.get(message.message_id) == {
        "seq": "13", "state": "succeeded", "actor": "long", "queue": "q", "attempts": "1",
        "enqueued_at": "5", "updated_at": "1700000001000", "started_at": "1700000000000",
        "finished_at": "1700000001000",
    }  # fmt: skip


def test_a_batch_that_cannot_be_written_is_logged_and_dropped_never_the_message() -> None:
    # Given a worker's records for a Redis nobody listens on (Redis down)
    down = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    tracking = StatusTracking(RedisStatusStore(down, namespace="down"), batch_ms=1)
    message, long = _message("quick"), _message("long")
    with capture_events() as events:
        # When messages run and succeed, one with its running batch gone before it ends
        tracking.before_process_message(None, long)  # type: ignore[arg-type]
        tracking.flush()
        tracking.before_process_message(None, message)  # type: ignore[arg-type]
        tracking.after_process_message(None, message)  # type: ignore[arg-type]
        tracking.after_process_message(None, long)  # type: ignore[arg-type]
        tracking.flush()
    # Then the hooks went on, and each batch that failed was logged and dropped
    failed = [e for e in events if e["event"] == "batch_write_failed"]
    # (the first: long's "running"; the second: quick's "succeeded" in place of its
    # "running", and long's "succeeded")
    assert [e["items"] for e in failed] == [1, 2]
    assert all("ConnectionError" in e["error"] for e in failed)
    down.close()

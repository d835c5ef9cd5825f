"""Live messages on the real Redis (and what the real RabbitMQ answers instead): list, show,
cancel, promote (issue 16, item 1)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker

import gcmc_jobs
from gcmc_jobs import configured
from gcmc_jobs.errors import DuplicateMessage, LiveMessageNotFound, UnsupportedByBroker
from gcmc_jobs.ops.live_messages import (
    cancel_messages,
    list_messages,
    promote_messages,
    show_message,
)
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import wait_until

QUEUE = "live_q"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def live_settings(redis_settings: Settings) -> Settings:
    """The ops Redis settings, without an outbox relay (no outbox table is needed)."""
    return redis_settings.model_copy(update={"outbox_relay": False})


@pytest.fixture
def runtime(live_settings: Settings) -> Iterator[Runtime]:
    """gcmc-jobs configured on the real Redis broker (the whole middleware stack)."""
    with configured(live_settings) as configured_runtime:
        yield configured_runtime


@pytest.fixture
def actors(runtime: Runtime) -> dict[str, Any]:
    """Two actors of the test queue; ``ran`` collects what ``work`` ran."""
    ran: list[int] = []

    @dramatiq.actor(broker=runtime.broker, queue_name=QUEUE, max_retries=0)
    def work(n: int, tenant_id: int | None = None, password: str | None = None) -> None:
        ran.append(n)

    @dramatiq.actor(broker=runtime.broker, queue_name=QUEUE, dedup_key="other:{n}")
    def other(n: int) -> None:
        ran.append(-n)

    return {"work": work, "other": other, "ran": ran}


def _ids(page: Any) -> list[str]:
    return [m.message_id for m in page.messages]


def _all(settings: Settings, **filters: Any) -> list[Any]:
    found, cursor = [], None
    while True:
        page = list_messages(settings, QUEUE, cursor=cursor, limit=2, **filters)
        found += page.messages
        cursor = page.next_cursor
        if cursor is None:
            return found


def test_pages_list_ready_messages_in_queue_order_then_delayed_ones_by_due_time(
    live_settings: Settings, actors: dict[str, Any]
) -> None:
    # Given 3 ready messages and 2 delayed ones (the later-due one sent first)
    ready = [actors["work"].send(n) for n in range(3)]
    late = actors["work"].send_with_options(args=(8,), delay=120_000)
    soon = actors["work"].send_with_options(args=(9,), delay=60_000)

    # When the queue is listed 2 at a time
    first = list_messages(live_settings, QUEUE, limit=2)
    found = _all(live_settings)

    # Then the pages hold every message once: ready in order, then delayed by due time
    assert (first.ready, first.delayed) == (3, 2)
    assert _ids(first) == [m.message_id for m in ready[:2]]
    assert first.next_cursor is not None
    assert [m.message_id for m in found] == [
        *(m.message_id for m in ready),
        soon.message_id,
        late.message_id,
    ]
    assert [m.state for m in found] == ["ready"] * 3 + ["delayed"] * 2
    assert found[3].due_at is not None
    assert found[3].due_at < found[4].due_at
    assert found[0].args == []
    assert found[0].kwargs == {}


def test_filters_by_actor_state_and_tenant(live_settings: Settings, actors: dict[str, Any]) -> None:
    tenant_1 = [actors["work"].send(n, tenant_id=1) for n in range(2)]
    actors["work"].send(5, tenant_id=2)
    other = actors["other"].send(n=1)
    delayed = actors["work"].send_with_options(kwargs={"n": 7, "tenant_id": 1}, delay=60_000)

    by_tenant = [m.message_id for m in _all(live_settings, tenant_id="1")]
    by_actor = [m.message_id for m in _all(live_settings, actor="other")]
    only_delayed = list_messages(live_settings, QUEUE, state="delayed")

    assert by_tenant == [*(m.message_id for m in tenant_1), delayed.message_id]
    assert by_actor == [other.message_id]
    assert _ids(only_delayed) == [delayed.message_id]
    assert list_messages(live_settings, QUEUE, state="ready", limit=10).next_cursor is None


def test_an_empty_queue_lists_nothing(live_settings: Settings) -> None:
    page = list_messages(live_settings, "live_never_used")
    assert (page.messages, page.next_cursor, page.ready, page.delayed) == ([], None, 0, 0)


def test_a_ready_page_goes_on_after_workers_took_messages_off_the_head(
    live_settings: Settings, runtime: Runtime, actors: dict[str, Any]
) -> None:
    sent = [actors["work"].send(n) for n in range(6)]
    first = list_messages(live_settings, QUEUE, state="ready", limit=2)

    # When a worker fetches 3 messages (the 2 shown and the next) before the next page
    consumer = runtime.broker.consume(QUEUE, prefetch=3, timeout=100)
    try:
        fetched = [next(consumer).message_id for _ in range(3)]
        second = list_messages(live_settings, QUEUE, state="ready", cursor=first.next_cursor)
    finally:
        consumer.close()

    # Then the next page starts at the first message still waiting: none skipped, none twice
    assert fetched == [m.message_id for m in sent[:3]]
    assert _ids(second) == [m.message_id for m in sent[3:]]


def test_show_masks_secrets_and_gives_times_options_and_status(
    live_settings: Settings, actors: dict[str, Any]
) -> None:
    message = actors["work"].send_with_options(
        kwargs={"n": 1, "tenant_id": 4, "password": "hunter2"},
        reset_link="https://app.example/reset/abc123",
    )

    shown = show_message(live_settings, QUEUE, message.message_id)

    assert shown.state == "ready"
    assert shown.actor == "work"
    assert shown.tenant_id == 4
    assert shown.kwargs == {"n": 1, "tenant_id": 4, "password": "***"}
    assert shown.options["reset_link"] == "***"
    assert "hunter2" not in repr(shown)
    assert "abc123" not in repr(shown)
    assert int(shown.enqueued_at.timestamp() * 1000) == message.message_timestamp
    assert shown.retries == 0
    assert shown.status is not None
    assert shown.status["state"] == "enqueued"


def test_show_of_a_fetched_message_says_in_flight_and_of_an_unknown_one_raises(
    live_settings: Settings, runtime: Runtime, actors: dict[str, Any]
) -> None:
    message = actors["work"].send(1)
    consumer = runtime.broker.consume(QUEUE, prefetch=1, timeout=100)
    try:
        assert next(consumer).message_id == message.message_id
        assert show_message(live_settings, QUEUE, message.message_id).state == "in_flight"
    finally:
        consumer.close()
    with pytest.raises(LiveMessageNotFound, match="gcmc-jobs status"):
        show_message(live_settings, QUEUE, str(uuid.uuid4()))


def test_cancel_removes_ready_and_delayed_messages_and_frees_their_dedup_keys(
    live_settings: Settings, actors: dict[str, Any]
) -> None:
    keyed = actors["other"].send(n=1)
    delayed = actors["work"].send_with_options(args=(2,), delay=60_000)
    kept = actors["work"].send(3)
    with pytest.raises(DuplicateMessage):
        actors["other"].send(n=1)
    unknown = str(uuid.uuid4())

    results = cancel_messages(live_settings, QUEUE, [keyed.message_id, delayed.message_id, unknown])

    assert [(r.status, r.state) for r in results] == [
        ("cancelled", "ready"),
        ("cancelled", "delayed"),
        ("not_found", None),
    ]
    assert _ids(list_messages(live_settings, QUEUE)) == [kept.message_id]
    [stats] = queue_stats(live_settings, [QUEUE])
    assert (stats.ready, stats.delayed, stats.in_flight) == (1, 0, 0)
    assert gcmc_jobs.status(keyed.message_id).state == "cancelled"
    assert gcmc_jobs.status(delayed.message_id).state == "cancelled"
    actors["other"].send(n=1)  # its dedup key was released: a new send is no duplicate


def test_a_dry_run_changes_nothing(live_settings: Settings, actors: dict[str, Any]) -> None:
    ready = actors["work"].send(1)
    delayed = actors["work"].send_with_options(args=(2,), delay=60_000)

    cancel = cancel_messages(live_settings, QUEUE, [ready.message_id], dry_run=True)
    promote = promote_messages(live_settings, QUEUE, [delayed.message_id], dry_run=True)

    assert [r.status for r in cancel] == ["would_cancel"]
    assert [r.status for r in promote] == ["would_promote"]
    page = list_messages(live_settings, QUEUE)
    assert [(m.message_id, m.state) for m in page.messages] == [
        (ready.message_id, "ready"),
        (delayed.message_id, "delayed"),
    ]
    assert gcmc_jobs.status(ready.message_id).state == "enqueued"


def test_cancel_leaves_a_message_a_worker_fetched_in_flight(
    live_settings: Settings, runtime: Runtime, actors: dict[str, Any]
) -> None:
    message = actors["work"].send(1)
    consumer = runtime.broker.consume(QUEUE, prefetch=1, timeout=100)
    try:
        fetched = next(consumer)
        [result] = cancel_messages(live_settings, QUEUE, [message.message_id])

        # Then it is reported in flight and left alone: the worker's ack still works
        assert (result.status, result.state) == ("in_flight", "in_flight")
        consumer.ack(fetched)
    finally:
        consumer.close()
    [stats] = queue_stats(live_settings, [QUEUE])
    assert (stats.ready, stats.in_flight) == (0, 0)


def test_cancelling_while_a_worker_fetches_never_both_runs_and_cancels_a_message(
    live_settings: Settings, runtime: Runtime, actors: dict[str, Any], redis_client: redis.Redis
) -> None:
    # Given 300 ready messages, and a consumer fetching them one at a time in a thread
    sent = {actors["work"].send(n).message_id for n in range(300)}
    fetched: list[str] = []
    stop = threading.Event()

    def fetch() -> None:
        consumer = runtime.broker.consume(QUEUE, prefetch=1, timeout=50)
        try:
            while not stop.is_set():
                message = next(consumer)
                if message is None:
                    continue
                fetched.append(message.message_id)
                consumer.ack(message)
                time.sleep(0.01)  # a worker's pace: the cancel below meets it mid-queue
        finally:
            consumer.close()

    thread = threading.Thread(target=fetch)
    thread.start()
    try:
        wait_until(lambda: len(fetched) >= 5, what="the consumer fetching", timeout_s=30)
        # When every message is cancelled at the same time
        results = cancel_messages(live_settings, QUEUE, sorted(sent))
    finally:
        stop.set()
        thread.join(timeout=30)

    # Then each message was fetched or cancelled, never both, and none was lost
    cancelled = {r.message_id for r in results if r.status == "cancelled"}
    gone = {r.message_id for r in results if r.status in ("not_found", "in_flight")}
    assert cancelled, "the consumer fetched everything first: the race was not exercised"
    assert not cancelled & set(fetched)
    assert cancelled | set(fetched) == sent
    assert gone <= set(fetched)
    assert redis_client.llen(f"{live_settings.namespace}:{QUEUE}") == 0
    assert redis_client.hlen(f"{live_settings.namespace}:{QUEUE}.msgs") == 0


def test_a_delayed_message_a_worker_holds_is_dropped_when_due_once_cancelled(
    live_settings: Settings, runtime: Runtime, actors: dict[str, Any], redis_client: redis.Redis
) -> None:
    # Given two delayed messages fetched from the delay queue by a running worker
    cancelled = actors["work"].send_with_options(args=(1,), delay=800)
    kept = actors["work"].send_with_options(args=(2,), delay=800)
    delay_list = f"{live_settings.namespace}:{QUEUE}.DQ"
    worker = dramatiq.Worker(runtime.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_until(lambda: redis_client.llen(delay_list) == 0, what="the worker holding both")

        # When one is cancelled while the worker holds it
        [result] = cancel_messages(live_settings, QUEUE, [cancelled.message_id])
        assert (result.status, result.state) == ("cancelled", "delayed")

        # Then, once both fell due, only the other one ran
        wait_until(lambda: actors["ran"] == [2], what="the kept message to run", timeout_s=30)
        runtime.broker.join(QUEUE, timeout=30_000)
        wait_until(
            lambda: not list(redis_client.scan_iter(f"{live_settings.namespace}:__acks__*DQ")),
            what="the worker to acknowledge both delayed messages",
            timeout_s=30,
        )
    finally:
        worker.stop()
    assert actors["ran"] == [2]
    assert gcmc_jobs.status(kept.message_id).state == "succeeded"
    assert gcmc_jobs.status(cancelled.message_id).state == "cancelled"


def test_promote_makes_a_delayed_message_ready_with_the_same_id(
    live_settings: Settings, actors: dict[str, Any], redis_client: redis.Redis
) -> None:
    delayed = actors["work"].send_with_options(args=(1,), delay=3_600_000)
    ready = actors["work"].send(2)

    results = promote_messages(live_settings, QUEUE, [delayed.message_id, ready.message_id])

    assert [r.status for r in results] == ["promoted", "not_delayed"]
    page = list_messages(live_settings, QUEUE)
    assert [(m.message_id, m.state) for m in page.messages] == [
        (ready.message_id, "ready"),
        (delayed.message_id, "ready"),
    ]
    assert page.delayed == 0
    assert show_message(live_settings, QUEUE, delayed.message_id).options.get("eta") is None
    assert gcmc_jobs.status(delayed.message_id).state == "enqueued"


def test_promote_all_takes_the_delayed_messages_matching_the_filters(
    live_settings: Settings, actors: dict[str, Any]
) -> None:
    first = actors["work"].send_with_options(kwargs={"n": 1, "tenant_id": 7}, delay=60_000)
    second = actors["work"].send_with_options(kwargs={"n": 2, "tenant_id": 7}, delay=90_000)
    other = actors["work"].send_with_options(kwargs={"n": 3, "tenant_id": 8}, delay=60_000)

    results = promote_messages(live_settings, QUEUE, None, tenant_id=7)

    assert [(r.message_id, r.status) for r in results] == [
        (first.message_id, "promoted"),
        (second.message_id, "promoted"),
    ]
    assert _ids(list_messages(live_settings, QUEUE, state="delayed")) == [other.message_id]


def test_a_bad_cursor_or_limit_is_a_clear_error(live_settings: Settings) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        list_messages(live_settings, QUEUE, cursor="garbage")
    with pytest.raises(ValueError, match="limit"):
        list_messages(live_settings, QUEUE, limit=0)


def test_rabbitmq_says_what_amqp_cannot_do_and_gives_the_queue_counts(
    redis_settings: Settings,
) -> None:
    queue = f"live_rabbit_{uuid.uuid4().hex[:8]}"
    broker = RabbitmqBroker(url=RABBITMQ_URL, confirm_delivery=True)
    settings = Settings(broker_url=RABBITMQ_URL, namespace=redis_settings.namespace)
    try:

        @dramatiq.actor(broker=broker, queue_name=queue)
        def noop(n: int) -> None: ...

        for n in range(3):
            noop.send(n)

        for call in (
            lambda: list_messages(settings, queue),
            lambda: show_message(settings, queue, str(uuid.uuid4())),
            lambda: cancel_messages(settings, queue, [str(uuid.uuid4())]),
            lambda: promote_messages(settings, queue, None),
        ):
            with pytest.raises(UnsupportedByBroker) as raised:
                call()
            assert "AMQP reads a message only by taking it off its queue" in str(raised.value)
            assert f"{queue!r} holds 3 ready, 0 delayed" in str(raised.value)
    finally:
        broker.close()
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


def test_on_the_stub_broker_the_runtimes_queues_are_listed_cancelled_and_promoted(
    gcmc_db: Any,
) -> None:
    # The in-process stub broker (tests, the demo): the configured runtime's queues
    settings = Settings(broker_url="stub://", namespace=f"stub{uuid.uuid4().hex[:6]}")
    with configured(settings, engine=gcmc_db) as stub_runtime:
        ran: list[int] = []

        @dramatiq.actor(broker=stub_runtime.broker, queue_name=QUEUE)
        def stub_work(n: int, password: str = "") -> None:
            ran.append(n)

        ready = [stub_work.send(n, password="hunter2") for n in range(3)]
        delayed = stub_work.send_with_options(args=(9,), delay=3_600_000)

        page = list_messages(settings, QUEUE, limit=2)
        rest = list_messages(settings, QUEUE, cursor=page.next_cursor)
        shown = show_message(settings, QUEUE, ready[0].message_id)
        cancelled = cancel_messages(settings, QUEUE, [ready[1].message_id])
        promoted = promote_messages(settings, QUEUE, None)

        assert (page.ready, page.delayed) == (3, 1)
        assert _ids(page) + _ids(rest) == [m.message_id for m in (*ready, delayed)]
        assert shown.kwargs == {"password": "***"}
        assert shown.status is not None
        assert shown.status["state"] == "enqueued"
        assert [r.status for r in cancelled] == ["cancelled"]
        assert [r.status for r in promoted] == ["promoted"]
        assert gcmc_jobs.status(ready[1].message_id).state == "cancelled"

        # and a worker then runs what is left, the promoted one now: join returns
        worker = dramatiq.Worker(stub_runtime.broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            stub_runtime.broker.join(QUEUE, timeout=30_000)
        finally:
            worker.stop()
        assert sorted(ran) == [0, 2, 9]

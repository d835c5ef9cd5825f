"""RateLimits: over the limit a message is deferred to a later window, never dropped."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import SkipMessage
from structlog.testing import capture_logs

from gcmc_jobs.middleware import RateLimits, StubDeadLetterStore, StubRateLimitStore
from gcmc_jobs.middleware.dead_letters import DeadLetters
from gcmc_jobs.middleware.stores.rate_limits import Booking, BookingRequest
from gcmc_jobs.testing import capture_events, wait_until
from tests.middleware.conftest import FakeClock, Probe, middleware_of, release_due

HOUR_MS = 3_600_000


def _email_actor(broker: dramatiq.Broker, runs: list[str], **options: Any) -> Any:
    @dramatiq.actor(broker=broker, rate_limit_key=lambda m: m.kwargs["to"].lower(), **options)
    def mw_send_email(kind: str, to: str, payload: dict[str, Any]) -> None:
        runs.append(to)

    return mw_send_email


def test_25_emails_to_one_address_under_10_per_hour_give_10_now_and_15_deferred(
    gcmc_broker: dramatiq.Broker,
    worker: dramatiq.Worker,
    clock: FakeClock,
    probe: Probe,
    unique: str,
) -> None:
    # Given a limit of 10 emails per address per hour
    limits = middleware_of(gcmc_broker, RateLimits)
    limits.limit, limits.window = 10, HOUR_MS
    runs: list[str] = []
    send_email = _email_actor(gcmc_broker, runs)
    hot, other = f"Hot-{unique}@Example.com", f"other-{unique}@example.com"
    queue = gcmc_broker.queues[send_email.queue_name]

    # When 25 go to one address and 3 to another
    with capture_events() as events:
        for n in range(25):
            send_email.send(kind="notice", to=hot, payload={"n": n})
        for n in range(3):
            send_email.send(kind="notice", to=other, payload={"n": n})
        queue.join()

    # Then 10 ran now, 15 were deferred (10 to the next hour, 5 to the one after), the
    # other address was unaffected, and nothing failed
    assert runs.count(hot) == 10
    assert runs.count(other) == 3
    deferred = probe.deferred()
    assert len(deferred) == 15
    first_window = int(clock() * 1000) // HOUR_MS
    windows = sorted(m.options["rate_limit_window"] - first_window for m in deferred)
    assert windows == [1] * 10 + [2] * 5
    assert probe.nacked == []
    limited = [e for e in events if e["event"] == "rate_limited"]
    assert len(limited) == 15
    assert all(e["delay_ms"] > 0 and e["limit_class"] == "default" for e in limited)
    assert not [e for e in events if e["event"] in ("retried", "failed")]

    # When their windows come: an hour later the 10 run and 5 wait again, then the 5 run
    clock.advance(3600)
    release_due(gcmc_broker, deferred)
    queue.join()
    assert runs.count(hot) == 20
    again = probe.deferred()[15:]
    assert len(again) == 5
    clock.advance(3600)
    release_due(gcmc_broker, again)
    queue.join()

    # Then all 25 ran, none was lost or failed
    assert runs.count(hot) == 25
    assert probe.nacked == []


def test_security_mail_has_its_own_limit_and_counter(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, clock: FakeClock, probe: Probe,
    unique: str,
) -> None:  # fmt: skip
    limits = middleware_of(gcmc_broker, RateLimits)
    limits.limit, limits.limits = 2, {"security": 1}
    runs: list[str] = []
    send_email = _email_actor(gcmc_broker, runs)
    to = f"sec-{unique}@example.com"
    for _ in range(3):
        send_email.send(kind="notice", to=to, payload={})
    for _ in range(2):
        send_email.send_with_options(
            kwargs={"kind": "password_reset", "to": to, "payload": {}},
            rate_limit_class="security",
        )
    gcmc_broker.queues[send_email.queue_name].join()
    assert len(runs) == 3  # 2 default + 1 security
    assert len(probe.deferred()) == 2


def test_a_message_deferred_past_the_maximum_is_dead_lettered_with_its_reason(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, clock: FakeClock, probe: Probe,
    unique: str,
) -> None:  # fmt: skip
    limits = middleware_of(gcmc_broker, RateLimits)
    limits.limit, limits.window, limits.max_deferral = 1, HOUR_MS, HOUR_MS
    store = StubDeadLetterStore()
    middleware_of(gcmc_broker, DeadLetters).store = store
    runs: list[str] = []
    send_email = _email_actor(gcmc_broker, runs)
    to = f"max-{unique}@example.com"
    for _ in range(3):
        send_email.send(kind="notice", to=to, payload={})
    wait_until(  # after DeadLetters stored it
        lambda: len(probe.nacked) == 1, timeout_s=30, what="one nack", diagnose=probe.describe
    )
    gcmc_broker.queues[send_email.queue_name].join()
    assert len(runs) == 1
    assert len(probe.deferred()) == 1
    (record,) = store.find()
    assert record.error_type == "RateLimitDeferralExceeded"
    assert record.options["dead_letter_reason"] == "rate_limit_max_deferral"


def test_a_deferral_that_cannot_be_enqueued_is_retried_not_acked(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, clock: FakeClock, probe: Probe,
    unique: str,
) -> None:  # fmt: skip
    limits = middleware_of(gcmc_broker, RateLimits)
    limits.limit = 1
    runs: list[str] = []
    send_email = _email_actor(gcmc_broker, runs, min_backoff=1, max_backoff=1)
    to = f"down-{unique}@example.com"
    refused: list[str] = []

    def refuse_first_deferral(message: Any, delay: int | None) -> bool:
        if "rate_limit_deferrals" in message.options and not refused:
            refused.append(message.message_id)
            return True
        return False

    probe.fail_enqueue_when = refuse_first_deferral
    with capture_events() as events:
        for _ in range(2):
            send_email.send(kind="notice", to=to, payload={})
        wait_until(
            lambda: len(probe.deferred()) == 1,
            timeout_s=30,
            what="one deferral",
            diagnose=probe.describe,
        )
        gcmc_broker.queues[send_email.queue_name].join()

    # The message over the limit could not be deferred: that counted as a failed attempt and
    # was retried (not acked and lost), and its retry was deferred.
    assert len(runs) == 1
    (over,) = refused
    assert [e["event"] for e in events if e["message_id"] == over].count("retried") == 1
    assert [m.message_id for m in probe.deferred()] == [over]
    assert probe.nacked == []


@pytest.mark.parametrize("reserved", [None, 500_001])
def test_the_stub_store_books_like_the_redis_store(
    gcmc_broker: dramatiq.Broker, reserved: int | None, unique: str
) -> None:
    redis_store = middleware_of(gcmc_broker, RateLimits).store
    stub = StubRateLimitStore()
    now = 500_000 * HOUR_MS + 10
    for store in (redis_store, stub):
        got = [
            store.book(
                "default",
                f"k-{unique}",
                now_ms=now,
                window_ms=HOUR_MS,
                limit=2,
                latest_ms=now + 2 * HOUR_MS,
                reserved=reserved,
            )
            for _ in range(7)
        ]
        if reserved is None:
            assert got == [
                Booking(0, 500_000), Booking(0, 500_000),
                Booking(HOUR_MS - 10, 500_001), Booking(HOUR_MS - 10, 500_001),
                Booking(2 * HOUR_MS - 10, 500_002), Booking(2 * HOUR_MS - 10, 500_002),
                Booking(0, None),
            ]  # fmt: skip
        else:
            assert set(got) == {Booking(HOUR_MS - 10, 500_001)}


def test_the_redis_store_books_on_after_its_connection_is_killed(
    gcmc_broker: dramatiq.Broker, unique: str
) -> None:
    # The store sends its script on a connection of its own; Redis dropping it (restart,
    # client kill, idle timeout) must cost no booking and no error.
    store = middleware_of(gcmc_broker, RateLimits).store
    now = 500_000 * HOUR_MS + 10

    def book() -> Booking:
        return store.book(
            "default", f"k-{unique}", now_ms=now, window_ms=HOUR_MS, limit=2,
            latest_ms=now + HOUR_MS,
        )  # fmt: skip

    assert book() == Booking(0, 500_000)
    own = store._book.connection()
    own.send_command("CLIENT", "ID")
    store.client.client_kill_filter(_id=own.read_response())
    assert book() == Booking(0, 500_000)
    assert book() == Booking(HOUR_MS - 10, 500_001)


def _fetched(n: int, key: str, **options: Any) -> list[Any]:
    """``n`` messages to ``key`` as a Redis consumer hands them out (``MessageProxy``)."""
    return [
        MessageProxy(
            dramatiq.Message(
                queue_name="mw_fetched", actor_name="mw_fetched", args=(i,), kwargs={},
                options={"rate_limit_key": key, **options},
            )
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def fetch_stack() -> tuple[StubBroker, RateLimits, StubRateLimitStore, FakeClock]:
    """RateLimits (2 an hour, 1.5 h of deferral at most) on a bare stub broker, at the start
    of a window, as a Redis worker's consumer drives it."""
    broker = StubBroker()
    broker.declare_queue("mw_fetched")
    store, clock = StubRateLimitStore(), FakeClock(now=500_000 * HOUR_MS / 1000)
    limits = RateLimits(store, limit=2, window=HOUR_MS, max_deferral=HOUR_MS * 3 // 2, clock=clock)
    return broker, limits, store, clock


def _runs(broker: StubBroker, limits: RateLimits, message: Any) -> bool:
    """True when ``message`` may run now; False when it was deferred or dead-lettered."""
    try:
        limits.before_process_message(broker, message)
    except SkipMessage:
        return False
    return True


def test_a_fetched_batch_is_booked_at_once_by_the_consumer(
    fetch_stack: tuple[StubBroker, RateLimits, StubRateLimitStore, FakeClock],
) -> None:
    # Given a batch of 5 to one key (limit 2 an hour, at most 1.5 h of deferral)
    broker, limits, store, _ = fetch_stack
    batch = _fetched(5, "k")

    # When the consumer fetches it, every slot of the batch is booked: 2 now, 2 next hour,
    # none left for the fifth
    limits.after_fetch(broker, batch)
    assert store.counts == {("default", "k", 500_000): 2, ("default", "k", 500_001): 2}
    assert _runs(broker, limits, batch[0])

    # Then the others use those slots (no booking more): 1 runs, 2 are deferred to the next
    # hour, the fifth is dead-lettered
    assert [_runs(broker, limits, m) for m in batch[1:]] == [True, False, False, False]
    assert store.counts == {("default", "k", 500_000): 2, ("default", "k", 500_001): 2}
    assert broker.queues["mw_fetched.DQ"].qsize() == 2
    assert batch[4].failed
    assert batch[4].options["dead_letter_reason"] == "rate_limit_max_deferral"


def test_a_slot_booked_in_a_window_that_ended_before_its_message_ran_is_booked_again(
    fetch_stack: tuple[StubBroker, RateLimits, StubRateLimitStore, FakeClock],
) -> None:
    # Given a batch of two whose first runs, booking both, in the last ms of a window
    broker, limits, store, clock = fetch_stack
    clock.advance(3600 - 0.001)
    first, second = _fetched(2, "late")
    limits.after_fetch(broker, [first, second])
    assert _runs(broker, limits, first)

    # When the second runs after that window ended (it waited in the worker's prefetch)
    clock.advance(1)

    # Then it runs on a slot of the window it runs in; the first one stays spent
    assert _runs(broker, limits, second)
    assert store.counts == {("default", "late", 500_000): 2, ("default", "late", 500_001): 1}


def test_a_message_skipped_before_its_slot_is_taken_is_left_out_or_gives_it_back(
    fetch_stack: tuple[StubBroker, RateLimits, StubRateLimitStore, FakeClock],
) -> None:
    # Given a batch of three
    broker, limits, store, _ = fetch_stack
    early, ran, late = _fetched(3, "skip")
    limits.after_fetch(broker, [early, ran, late])

    # When one is skipped before it runs (a paused queue, a duplicate…), one runs, one is
    # skipped after that, and the one that ran is skipped by a later middleware
    assert store.counts == {("default", "skip", 500_000): 2, ("default", "skip", 500_001): 1}
    limits.after_skip_message(broker, early)
    assert _runs(broker, limits, ran)
    limits.after_skip_message(broker, late)
    limits.after_skip_message(broker, ran)

    # Then the first and the third gave their slots back, the second keeps its
    assert store.counts == {("default", "skip", 500_000): 1, ("default", "skip", 500_001): 0}


class _DownOnce(StubRateLimitStore):
    """A store whose first batch booking fails, as when Redis cannot be reached."""

    down = True

    def book_many(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            self.down = False
            raise ConnectionError("store unreachable")
        return super().book_many(*args, **kwargs)


def test_a_batch_the_consumer_could_not_book_is_booked_by_the_first_of_it_to_run() -> None:
    # Given a store that cannot be reached while the consumer fetches a batch of 3
    broker = StubBroker()
    broker.declare_queue("mw_fetched")
    store, clock = _DownOnce(), FakeClock(now=500_000 * HOUR_MS / 1000)
    limits = RateLimits(store, limit=2, window=HOUR_MS, max_deferral=HOUR_MS, clock=clock)
    batch = _fetched(3, "down")
    with capture_logs() as logs:
        limits.after_fetch(broker, batch)
    assert store.counts == {}
    assert [(e["event"], e["messages"]) for e in logs] == [("rate_limit_batch_not_booked", 3)]

    # When they run, the store being back, the first books them all and each uses its slot
    assert [_runs(broker, limits, m) for m in batch] == [True, True, False]
    assert store.counts == {("default", "down", 500_000): 2, ("default", "down", 500_001): 1}


def test_redis_books_a_batch_like_one_booking_after_another(
    gcmc_broker: dramatiq.Broker, unique: str
) -> None:
    redis_store = middleware_of(gcmc_broker, RateLimits).store
    now = 500_000 * HOUR_MS + 10
    requests = [
        BookingRequest("default", f"a-{unique}", 2, now + 2 * HOUR_MS),
        BookingRequest("default", f"b-{unique}", 1, now),
        *[BookingRequest("default", f"a-{unique}", 2, now + 2 * HOUR_MS)] * 5,
        BookingRequest("default", f"b-{unique}", 1, now),
        BookingRequest("security", f"a-{unique}", 1, now),
    ]
    stub = StubRateLimitStore()
    for store in (redis_store, stub):
        got = store.book_many(requests, now_ms=now, window_ms=HOUR_MS)
        assert got == [
            Booking(0, 500_000), Booking(0, 500_000),
            Booking(0, 500_000), Booking(HOUR_MS - 10, 500_001), Booking(HOUR_MS - 10, 500_001),
            Booking(2 * HOUR_MS - 10, 500_002), Booking(2 * HOUR_MS - 10, 500_002),
            Booking(0, None), Booking(0, 500_000),
        ]  # fmt: skip
        # A refund frees one slot of that window, and never goes below zero
        store.refund("default", f"b-{unique}", 500_000)
        store.refund("default", f"b-{unique}", 500_000)
        assert store.book_many(requests[1:2], now_ms=now, window_ms=HOUR_MS) == [
            Booking(0, 500_000)
        ]
        assert store.book_many([], now_ms=now, window_ms=HOUR_MS) == []


def test_a_fetched_copy_already_deferred_is_booked_only_up_to_what_is_left_of_its_deferral(
    fetch_stack: tuple[StubBroker, RateLimits, StubRateLimitStore, FakeClock],
) -> None:
    # Given a full hour for one key (limit 2), and a batch of two copies of it fetched with
    # no window held: one deferred 1 h of its 1.5 h already, one never deferred
    broker, limits, store, _ = fetch_stack
    store.counts[("default", "left", 500_000)] = 2
    tired, *_ = _fetched(1, "left", rate_limit_deferred_ms=HOUR_MS)
    fresh, *_ = _fetched(1, "left")

    # When the consumer books them
    limits.after_fetch(broker, [tired, fresh])

    # Then the one deferred already may not wait an hour more: it is dead-lettered; the
    # other is deferred to the next hour
    assert not _runs(broker, limits, tired)
    assert tired.options["dead_letter_reason"] == "rate_limit_max_deferral"
    assert not _runs(broker, limits, fresh)
    assert not fresh.failed
    assert store.counts[("default", "left", 500_001)] == 1

"""MailCircuit: the mail server's circuit breaker, its state machine on Redis and in process,
and its hooks (hold, probe, critical first). The outage with real processes and a real SMTP
server is tests/faults/test_smtp_outage_breaker.py."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import SkipMessage

from gcmc_jobs import queue_names as queues
from gcmc_jobs.errors import PermanentDeliveryError, TransientDeliveryError
from gcmc_jobs.middleware.mail_circuit import MailCircuit
from gcmc_jobs.middleware.stores.mail_circuit import (
    CircuitStore,
    RedisCircuitStore,
    StubCircuitStore,
)
from tests.middleware.conftest import FakeClock, middleware_of

T0 = 1_800_000_000_000


@pytest.fixture
def redis_store(
    gcmc_redis_url: str, gcmc_namespace: str, unique: str
) -> Iterator[RedisCircuitStore]:
    client = redis.Redis.from_url(gcmc_redis_url)
    store = RedisCircuitStore(client, namespace=f"{gcmc_namespace}:{unique}")
    yield store
    store.reset()
    client.close()


@pytest.fixture(params=["redis", "stub"])
def store(request: pytest.FixtureRequest) -> CircuitStore:
    if request.param == "stub":
        return StubCircuitStore()
    redis_store: RedisCircuitStore = request.getfixturevalue("redis_store")
    return redis_store


def _fail(store: CircuitStore, now: int) -> Any:
    return store.record_failure(
        now_ms=now, threshold=3, min_backoff_ms=1_000, max_backoff_ms=4_000, error="421 later"
    )


def test_the_state_machine_opens_probes_with_doubling_backoff_and_closes(
    store: CircuitStore,
) -> None:
    # Two failures in a row keep it closed; the third opens it, first probe 1 s later
    assert _fail(store, T0).state == "closed"
    assert _fail(store, T0).failures == 2
    opened = _fail(store, T0 + 10)
    assert (opened.state, opened.next_probe_ms, opened.trips) == ("open", T0 + 1_010, 1)
    assert opened.last_error == "421 later"
    assert _fail(store, T0 + 20).state == "open"  # more failures change nothing

    # The probe is not due yet; when it is, exactly one claim wins and the backoff doubles
    assert store.claim_probe(now_ms=T0 + 500, max_backoff_ms=4_000)[0] is False
    won, state = store.claim_probe(now_ms=T0 + 1_010, max_backoff_ms=4_000)
    assert won is True
    assert (state.next_probe_ms, state.backoff_ms, state.probes) == (T0 + 3_010, 2_000, 1)
    assert store.claim_probe(now_ms=T0 + 1_010, max_backoff_ms=4_000)[0] is False
    assert store.probe_failed(error="refused").state == "open"

    # The next probe succeeds: half open; a failure then opens it again, backoff doubled
    # and capped
    assert store.claim_probe(now_ms=T0 + 3_010, max_backoff_ms=4_000)[0] is True
    half = store.probe_succeeded(now_ms=T0 + 3_020)
    assert (half.state, half.half_open_at_ms, half.failures) == ("half_open", T0 + 3_020, 0)
    again = _fail(store, T0 + 3_030)
    assert (again.state, again.backoff_ms, again.next_probe_ms) == ("open", 4_000, T0 + 7_030)
    assert again.trips == 1  # reopened from half open: not a new trip

    # A probe succeeds, an email is delivered: closed, the run of failures forgotten
    assert store.claim_probe(now_ms=T0 + 7_030, max_backoff_ms=4_000)[0] is True
    store.probe_succeeded(now_ms=T0 + 7_040)
    closed = store.record_success(now_ms=T0 + 7_050)
    assert (closed.state, closed.failures, closed.next_probe_ms) == ("closed", 0, None)
    assert closed.probes == 3
    assert store.state() == closed


def _message(queue: str, **options: Any) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue, actor_name="mw_email", args=(), kwargs={}, options=dict(options)
    )


class Prober:
    """A probe of the mail server that answers as told, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.up = False

    def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise TransientDeliveryError("cannot connect: 421")


@pytest.fixture
def broker() -> StubBroker:
    broker = StubBroker()
    for queue in (queues.EMAIL, queues.EMAIL_CRITICAL, queues.COMPLIANCE):
        broker.declare_queue(queue)
    return broker


def _circuit(store: CircuitStore, clock: FakeClock, prober: Prober) -> MailCircuit:
    return MailCircuit(
        store,
        threshold=3,
        probe_min_ms=1_000,
        probe_max_ms=8_000,
        hold_ms=10_000,
        critical_hold_ms=500,
        half_open_ms=2_000,
        refresh_ms=0,
        probe=prober,
        clock=clock,
    )


def _held(broker: StubBroker, queue: str) -> list[dramatiq.Message[Any]]:
    return [dramatiq.Message.decode(m) for m in broker.queues[f"{queue}.DQ"].queue]


def _trip(circuit: MailCircuit, broker: StubBroker) -> None:
    for _ in range(3):
        circuit.after_process_message(
            broker, _message(queues.EMAIL), exception=TransientDeliveryError("421")
        )


def test_an_open_breaker_holds_email_without_an_attempt_and_one_probe_per_backoff(
    broker: StubBroker, redis_store: RedisCircuitStore
) -> None:
    clock, prober = FakeClock(T0 / 1000), Prober()
    circuit = _circuit(redis_store, clock, prober)
    bulk = _message(queues.EMAIL, retries=1)

    # Given three delivery failures in a row: the breaker is open
    _trip(circuit, broker)
    assert redis_store.state().state == "open"

    # When an email is picked up: it is put back with the hold delay, as it was (same id,
    # same retry count: no attempt was spent), and skipped; nothing probes yet
    with pytest.raises(SkipMessage):
        circuit.before_process_message(broker, bulk)
    (held,) = _held(broker, queues.EMAIL)
    assert held.message_id == bulk.message_id
    assert held.options["retries"] == 1
    assert held.options["eta"] >= held.message_timestamp
    assert prober.calls == 0

    # And other queues are not held
    circuit.before_process_message(broker, _message(queues.COMPLIANCE))

    # When the probe is due: the first email picked up probes (the server is still down),
    # is held; the next one does not probe again until the doubled backoff has passed
    clock.advance(1.0)
    with pytest.raises(SkipMessage):
        circuit.before_process_message(broker, _message(queues.EMAIL))
    with pytest.raises(SkipMessage):
        circuit.before_process_message(broker, _message(queues.EMAIL_CRITICAL))
    assert prober.calls == 1
    assert redis_store.state().last_error == "TransientDeliveryError: cannot connect: 421"
    clock.advance(2.0)
    with pytest.raises(SkipMessage):
        circuit.before_process_message(broker, _message(queues.EMAIL))
    assert prober.calls == 2
    assert len(_held(broker, queues.EMAIL_CRITICAL)) == 1


def test_half_open_lets_critical_mail_first_then_everything_once_delivered(
    broker: StubBroker, redis_store: RedisCircuitStore
) -> None:
    clock, prober = FakeClock(T0 / 1000), Prober()
    circuit = _circuit(redis_store, clock, prober)
    _trip(circuit, broker)

    # When the server answers the probe: half open
    prober.up = True
    clock.advance(1.0)
    with pytest.raises(SkipMessage):  # bulk mail waits while critical mail goes first
        circuit.before_process_message(broker, _message(queues.EMAIL))
    assert redis_store.state().state == "half_open"
    critical = _message(queues.EMAIL_CRITICAL)
    circuit.before_process_message(broker, critical)  # runs
    circuit.after_process_message(broker, critical)
    assert redis_store.state().state == "half_open"  # critical mail's turn goes on

    # Then once the half-open time is over, bulk runs, and its delivery closes the breaker
    clock.advance(2.0)
    bulk = _message(queues.EMAIL)
    circuit.before_process_message(broker, bulk)
    circuit.after_process_message(broker, bulk)
    assert redis_store.state().state == "closed"
    circuit.before_process_message(broker, _message(queues.EMAIL))
    assert prober.calls == 1


def test_only_delivery_failures_in_a_row_open_it(
    broker: StubBroker, redis_store: RedisCircuitStore
) -> None:
    circuit = _circuit(redis_store, FakeClock(T0 / 1000), Prober())
    failure = TransientDeliveryError("421")
    for exception in (failure, failure, None, failure, failure):  # a success ends the run
        circuit.after_process_message(broker, _message(queues.EMAIL), exception=exception)
    for other in (PermanentDeliveryError("550"), ValueError("bug")):
        circuit.after_process_message(broker, _message(queues.EMAIL), exception=other)
    circuit.after_process_message(broker, _message(queues.COMPLIANCE), exception=failure)
    assert redis_store.state().state == "closed"
    assert redis_store.state().failures == 2


def test_two_workers_share_one_breaker_and_only_one_probes(
    broker: StubBroker, gcmc_redis_url: str, redis_store: RedisCircuitStore
) -> None:
    # Given two worker processes (each its own middleware and Redis connection)
    clock, prober = FakeClock(T0 / 1000), Prober()
    other_client = redis.Redis.from_url(gcmc_redis_url)
    other_store = RedisCircuitStore(other_client, namespace=redis_store.key.rsplit(":gcmc:", 1)[0])
    first, second = _circuit(redis_store, clock, prober), _circuit(other_store, clock, prober)

    # When the first sees the failures: the second holds email too
    _trip(first, broker)
    with pytest.raises(SkipMessage):
        second.before_process_message(broker, _message(queues.EMAIL))

    # When the probe is due, eight threads of both pick up email at once: one probe
    clock.advance(1.0)
    start = threading.Barrier(8)

    def pick_up(circuit: MailCircuit) -> None:
        start.wait()
        with contextlib.suppress(SkipMessage):
            circuit.before_process_message(broker, _message(queues.EMAIL))

    threads = [threading.Thread(target=pick_up, args=(c,)) for c in [first, second] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert prober.calls == 1
    other_client.close()


def test_the_runtime_gives_the_breaker_its_transport_to_probe(gcmc_broker: dramatiq.Broker) -> None:
    circuit = middleware_of(gcmc_broker, MailCircuit)
    assert circuit.enabled is True
    assert circuit.probe is not None
    circuit.probe()  # memory:// always takes mail

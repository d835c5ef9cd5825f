"""Fixtures of the middleware tests: a stub broker with the whole stack, a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.common import q_name
from dramatiq.middleware import Middleware, MiddlewareError

from gcmc_jobs.middleware import DeadLetters, Deduplication, RateLimits


class FakeClock:
    """A clock tests move by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def middleware_of(broker: dramatiq.Broker, kind: type[Any]) -> Any:
    """The one middleware of type ``kind`` in ``broker``'s stack."""
    (found,) = [m for m in broker.middleware if isinstance(m, kind)]
    return found


class Probe(Middleware):
    """A real middleware recording what was enqueued (with its delay) and what was nacked."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[Any, int | None]] = []
        self.nacked: list[Any] = []
        self.fail_enqueue_when: Callable[[Any, int | None], bool] = lambda message, delay: False

    def describe(self) -> str:
        """What it saw so far: the diagnosis of a wait that timed out."""
        return (
            f"enqueued: {[(m.actor_name, delay) for m, delay in self.enqueued]}\n"
            f"nacked: {[m.message_id for m in self.nacked]}"
        )

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        if self.fail_enqueue_when(message, delay):
            raise ProbeEnqueueError("enqueue refused by the test")

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        self.enqueued.append((message, delay))

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.nacked.append(message)

    def deferred(self) -> list[Any]:
        """Messages enqueued with a delay by the rate limiter."""
        return [m for m, delay in self.enqueued if delay and "rate_limit_window" in m.options]


class ProbeEnqueueError(MiddlewareError):
    """The broker refused an enqueue (injected by :class:`Probe`)."""


@pytest.fixture
def probe(gcmc_broker: dramatiq.Broker) -> Probe:
    """A :class:`Probe` added to the broker (first on ``before_enqueue``)."""
    probe = Probe()
    gcmc_broker.middleware.insert(0, probe)
    return probe


def release_due(broker: dramatiq.Broker, messages: list[Any]) -> None:
    """Put delayed ``messages`` on their queue now, as the broker does when their eta passes."""
    for message in messages:
        broker.enqueue(
            dramatiq.Message(
                queue_name=q_name(message.queue_name),
                actor_name=message.actor_name,
                args=message.args,
                kwargs=message.kwargs,
                options={k: v for k, v in message.options.items() if k != "eta"},
                message_id=message.message_id,
                message_timestamp=message.message_timestamp,
            )
        )


@pytest.fixture
def unique() -> str:
    """A string no other test uses (dedup and rate-limit keys live in a shared namespace)."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def clock(gcmc_broker: dramatiq.Broker) -> FakeClock:
    """A fake clock driving the broker's RateLimits, at the start of a window."""
    fake = FakeClock()
    middleware_of(gcmc_broker, RateLimits).clock = fake
    return fake


@pytest.fixture
def worker(gcmc_broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    """A started worker (four threads) on the stub broker."""
    worker = dramatiq.Worker(gcmc_broker, worker_timeout=20, worker_threads=4)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


__all__ = ["DeadLetters", "Deduplication", "FakeClock", "Probe", "middleware_of", "release_due"]

"""Fixtures of the middleware tests: a stub broker with the whole stack, a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

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


__all__ = ["DeadLetters", "Deduplication", "FakeClock", "middleware_of"]

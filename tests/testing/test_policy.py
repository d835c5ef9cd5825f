"""The plugin's test policy caps retries for the test and gives every actor its own back."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from gcmc_jobs.actors import refresh_compliance, scheduler_tick
from gcmc_jobs.testing import TestPolicy
from gcmc_jobs.testing.policy import applied


def test_the_policy_caps_every_actors_retries_and_restores_them_after() -> None:
    broker = StubBroker(middleware=[Retries(max_retries=20, min_backoff=15_000)])
    stated = dramatiq.actor(broker=broker, max_retries=9, min_backoff=5_000)(lambda: None)
    unstated = dramatiq.actor(broker=broker, actor_name="unstated")(lambda: None)
    never = dramatiq.actor(broker=broker, actor_name="never", max_retries=0)(lambda: None)

    with applied(broker, TestPolicy(max_retries=2, min_backoff_ms=10, max_backoff_ms=100)):
        assert {k: stated.options[k] for k in ("max_retries", "min_backoff", "max_backoff")} == {
            "max_retries": 2,
            "min_backoff": 10,
            "max_backoff": 100,
        }
        assert unstated.options["max_retries"] == 2  # the middleware's 20, capped
        assert never.options["max_retries"] == 0  # an actor stating fewer keeps its own

    assert stated.options == {"max_retries": 9, "min_backoff": 5_000}
    assert unstated.options == {}


def test_under_gcmc_broker_the_package_actors_retry_little(
    gcmc_broker: dramatiq.Broker,
) -> None:
    # Under gcmc_broker: capped; the module-level actors are restored after each test
    # (the retry-policy table test reads them outside any fixture).
    assert refresh_compliance.options["max_retries"] == 2
    assert scheduler_tick.options["max_retries"] == 0

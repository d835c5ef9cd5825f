"""The plugin's test policy: few, fast retries for every actor, and joins that end.

In production ``send_email`` retries eight times, up to ten minutes apart, and Dramatiq's
``StubBroker.join`` waits for the delayed retries too: a test whose email fails would hang for
hours, silently. Under the plugin (:func:`applied`, used by the ``gcmc_broker`` fixture) every
actor declared on the broker, gcmc-jobs' and the host's, retries at most
:attr:`TestPolicy.max_retries` times with backoffs capped at :attr:`TestPolicy.max_backoff_ms`,
and every join is bounded by :attr:`TestPolicy.join_timeout_ms`, failing with what is still
pending (:mod:`gcmc_jobs.testing.joining`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dramatiq

__all__ = ["TestPolicy", "applied"]


@dataclass(frozen=True)
class TestPolicy:
    """What the plugin changes for a test (the ``gcmc_test_policy`` fixture's value).

    Attributes:
      max_retries: retries of any actor at most (an actor stating fewer keeps its own: 0
        stays 0). Default 2.
      min_backoff_ms: the first retry's delay at most, ms. Default 10.
      max_backoff_ms: any retry's delay at most, ms. Default 100.
      join_timeout_ms: the bound on ``gcmc_broker.join``, ``gcmc_worker.join`` and
        ``gcmc_join()`` when they are given none, ms. Default 30,000.
    """

    __test__ = False  # a class named Test* that pytest must not collect

    max_retries: int = 2
    min_backoff_ms: int = 10
    max_backoff_ms: int = 100
    join_timeout_ms: int = 30_000


#: Actor option -> the TestPolicy attribute that caps it.
_CAPS = {
    "max_retries": "max_retries",
    "min_backoff": "min_backoff_ms",
    "max_backoff": "max_backoff_ms",
}


def _capped(
    actor: dramatiq.Actor[Any, Any], policy: TestPolicy, defaults: dict[str, int]
) -> dict[str, int]:
    return {
        option: min(actor.options.get(option, defaults[option]), getattr(policy, cap))
        for option, cap in _CAPS.items()
    }


@contextmanager
def applied(broker: dramatiq.Broker, policy: TestPolicy) -> Iterator[TestPolicy]:
    """Cap the retry options of every actor declared on ``broker`` by ``policy`` for the
    block, then restore each actor's own options. Message options still win over them
    (``send_with_options(max_retries=...)``), as in production. Actors declared inside the
    block keep the options they state."""
    retries = next(
        (m for m in broker.middleware if isinstance(m, dramatiq.middleware.Retries)), None
    )
    defaults = {
        "max_retries": getattr(retries, "max_retries", 20),
        "min_backoff": getattr(retries, "min_backoff", 15_000),
        "max_backoff": getattr(retries, "max_backoff", 604_800_000),
    }
    saved = {name: dict(actor.options) for name, actor in broker.actors.items()}
    for actor in broker.actors.values():
        actor.options.update(_capped(actor, policy, defaults))
    try:
        yield policy
    finally:
        for name, options in saved.items():
            declared = broker.actors.get(name)
            if declared is not None:
                declared.options.clear()
                declared.options.update(options)

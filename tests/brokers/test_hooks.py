"""gcmc_jobs.brokers.hooks: the one filter of which middleware implement a hook, shared by
gcmc-jobs' RedisBroker and bulk enqueue."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.brokers.hooks import implementing


class _Overrides(dramatiq.Middleware):
    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None: ...


class _Silent(dramatiq.Middleware):
    """Implements no hook: Dramatiq's defaults only."""


def test_only_the_middleware_that_implement_a_hook_are_listed_in_stack_order() -> None:
    first, silent, assigned, last = _Overrides(), _Silent(), _Silent(), _Overrides()
    assigned.before_enqueue = lambda broker, message, delay: None  # type: ignore[method-assign]

    hooks = implementing([first, silent, assigned, last], "before_enqueue")

    assert [getattr(h, "__self__", assigned) for h in hooks] == [first, assigned, last]
    assert implementing([first, silent, last], "after_ack") == ()


def test_bulk_enqueue_on_redis_calls_a_hook_assigned_on_an_instance_as_dramatiq_does(
    gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    # Given Dramatiq's own Redis broker, whose middleware got its hook on the instance
    broker = RedisBroker(url=gcmc_redis_url, namespace=f"{gcmc_namespace}:hooks")
    seen: list[Any] = []
    middleware = _Silent()
    middleware.before_enqueue = lambda b, message, delay: seen.append(message.args)  # type: ignore[method-assign]
    broker.add_middleware(middleware)

    @dramatiq.actor(broker=broker, queue_name="hooks", actor_name="hooked")
    def hooked(n: int) -> None: ...

    try:
        # When messages are enqueued one by one by Dramatiq and in bulk (pipelined)
        hooked.send(0)
        result = enqueue_many(broker, [hooked.message(n) for n in (1, 2)])

        # Then the hook saw every one of them
        assert len(result.enqueued) == 2
        assert seen == [(0,), (1,), (2,)]
    finally:
        broker.flush_all()
        broker.close()

"""Dramatiq's ``RabbitmqBroker``, releasing the dedup key of a message it failed to publish,
whose workers hand messages to their threads through gcmc-jobs' work queue, with the Redis
broker's hook selection.

Imported only when the broker URL is ``amqp://`` (it loads pika).
"""

from __future__ import annotations

from typing import Any

from dramatiq import Message, Middleware
from dramatiq.brokers.rabbitmq import RabbitmqBroker as _DramatiqRabbitmqBroker
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.brokers.bulk import release_unsent
from gcmc_jobs.brokers.hooks import SelectingEmitter
from gcmc_jobs.brokers.work_queue import with_work_queues

__all__ = ["RabbitmqBroker"]


class RabbitmqBroker(SelectingEmitter, _DramatiqRabbitmqBroker):
    """Dramatiq's ``RabbitmqBroker``, whose hooks are emitted as the Redis broker's are
    (:class:`~gcmc_jobs.brokers.hooks.SelectingEmitter`: only the middleware that implement
    a hook, and of the per-message hooks only those that can act on the message's shape);
    when publishing fails (RabbitMQ unreachable), the
    dedup key the message's ``before_enqueue`` claimed is released before the error
    propagates, so a later send of that key is not dropped as a duplicate. Its middleware
    list starts with a :class:`~gcmc_jobs.brokers.work_queue.WorkQueues`: a Dramatiq
    ``Worker`` booting on it gets a :class:`~gcmc_jobs.brokers.work_queue.WorkQueue`
    (``before_worker_boot``, before its threads exist), and so does each of its consumer
    threads as its ``delay_queue`` (``after_consumer_thread_boot``)."""

    def __init__(self, *, middleware: list[Middleware] | None = None, **options: Any) -> None:
        """Dramatiq's ``RabbitmqBroker(url=..., middleware=..., ...)``; ``middleware`` (None:
        Dramatiq's default stack) gets a ``WorkQueues`` first."""
        super().__init__(middleware=with_work_queues(middleware), **options)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        try:
            return super().enqueue(message, delay=delay)
        except MiddlewareError:
            raise
        except Exception:
            release_unsent(self, [message])
            raise

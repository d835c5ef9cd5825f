"""Dramatiq's ``RabbitmqBroker``, releasing the dedup key of a message it failed to publish,
whose workers hand messages to their threads through gcmc-jobs' work queue.

Imported only when the broker URL is ``amqp://`` (it loads pika).
"""

from __future__ import annotations

from typing import Any

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker as _DramatiqRabbitmqBroker
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.brokers.bulk import PLAIN_EMITTERS, release_unsent
from gcmc_jobs.brokers.work_queue import install_delay_queue, install_work_queue

__all__ = ["RabbitmqBroker"]


class RabbitmqBroker(_DramatiqRabbitmqBroker):
    """Dramatiq's ``RabbitmqBroker``; when publishing fails (RabbitMQ unreachable), the
    dedup key the message's ``before_enqueue`` claimed is released before the error
    propagates, so a later send of that key is not dropped as a duplicate. A Dramatiq
    ``Worker`` booting on it gets a :class:`~gcmc_jobs.brokers.work_queue.WorkQueue`
    (``before_worker_boot``, before its threads exist), and so does each of its consumer
    threads as its ``delay_queue`` (``after_consumer_thread_boot``)."""

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "worker_boot":
            install_work_queue(self, *args)
        super().emit_before(signal, *args, **kwargs)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "consumer_thread_boot":
            install_delay_queue(self, *args)
        super().emit_after(signal, *args, **kwargs)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        try:
            return super().enqueue(message, delay=delay)
        except MiddlewareError:
            raise
        except Exception:
            release_unsent(self, [message])
            raise


# Its emit_* are Dramatiq's for every signal bulk enqueue emits.
PLAIN_EMITTERS.update((RabbitmqBroker.emit_before, RabbitmqBroker.emit_after))

"""Dramatiq's ``RabbitmqBroker``, releasing the dedup key of a message it failed to publish.

Imported only when the broker URL is ``amqp://`` (it loads pika).
"""

from __future__ import annotations

from typing import Any

from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker as _DramatiqRabbitmqBroker
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.brokers.bulk import release_unsent

__all__ = ["RabbitmqBroker"]


class RabbitmqBroker(_DramatiqRabbitmqBroker):
    """Dramatiq's ``RabbitmqBroker``; when publishing fails (RabbitMQ unreachable), the
    dedup key the message's ``before_enqueue`` claimed is released before the error
    propagates, so a later send of that key is not dropped as a duplicate."""

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        try:
            return super().enqueue(message, delay=delay)
        except MiddlewareError:
            raise
        except Exception:
            release_unsent(self, [message])
            raise

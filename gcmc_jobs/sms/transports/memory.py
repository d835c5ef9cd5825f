"""An in-memory SMS transport for tests and the demo: every message lands in a list."""

from __future__ import annotations

import itertools
import threading

from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport

__all__ = ["MemorySmsTransport", "outbox"]

#: Every message a ``memory://`` SMS transport sent in this process, in order.
outbox: list[SmsMessage] = []
_lock = threading.Lock()
_ids = itertools.count(1)


class MemorySmsTransport(SmsTransport):
    """Appends each message to :data:`outbox` (or to the list given); the provider id is
    ``memory-<n>``."""

    def __init__(self, messages: list[SmsMessage] | None = None) -> None:
        self.messages = outbox if messages is None else messages

    def send(self, message: SmsMessage) -> str:
        with _lock:
            self.messages.append(message)
            return f"memory-{next(_ids)}"

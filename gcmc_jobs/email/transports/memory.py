"""An in-memory transport for tests: every message lands in a per-process list."""

from __future__ import annotations

import threading
from email.message import EmailMessage

from gcmc_jobs.email.transports.base import Transport

__all__ = ["MemoryTransport", "outbox"]

#: Every message a ``memory://`` transport sent in this process, in order.
outbox: list[EmailMessage] = []
_lock = threading.Lock()


class MemoryTransport(Transport):
    """Appends each message to :data:`outbox` (or to the list given)."""

    def __init__(self, messages: list[EmailMessage] | None = None) -> None:
        self.messages = outbox if messages is None else messages

    def send(self, message: EmailMessage) -> str:
        with _lock:
            self.messages.append(message)
        return str(message["Message-ID"])

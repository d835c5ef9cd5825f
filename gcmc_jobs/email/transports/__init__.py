"""Email transports, chosen by ``settings.email_url``.

=========================  ===================================================================
URL                        transport
=========================  ===================================================================
``smtp://…``, ``smtps://…``  :class:`SmtpTransport` (see :mod:`.smtp` for every URL form)
``file://DIR``             :class:`FileTransport`: one ``.eml`` file per email in ``DIR``
                           (``file://./outbox`` is relative to the working directory)
``memory://``              :class:`MemoryTransport`: appended to :data:`memory.outbox`, per process
=========================  ===================================================================

:func:`from_url` builds a transport; the process's :class:`~gcmc_jobs.runtime.Runtime` keeps
the one of ``settings.email_url`` (``runtime.email_transport``), so that SMTP connections are
reused across messages, and closes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gcmc_jobs.email.transports import memory
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.email.transports.file import FileTransport
from gcmc_jobs.email.transports.memory import MemoryTransport
from gcmc_jobs.email.transports.smtp import SmtpTransport
from gcmc_jobs.errors import ConfigurationError

__all__ = [
    "FileTransport",
    "MemoryTransport",
    "SmtpTransport",
    "Transport",
    "from_url",
    "memory",
]


def from_url(
    url: str,
    *,
    timeout_ms: int = 10_000,
    retry_attempts: int = 3,
    retry_max_wait_ms: int = 1_000,
    sleep: Callable[[float], None] = time.sleep,
) -> Transport:
    """A new transport for ``url``; :class:`ConfigurationError` for an unknown scheme."""
    if url.startswith(("smtp://", "smtps://")):
        return SmtpTransport(
            url,
            timeout_ms=timeout_ms,
            retry_attempts=retry_attempts,
            retry_max_wait_ms=retry_max_wait_ms,
            sleep=sleep,
        )
    if url.startswith("file://"):
        directory = url.removeprefix("file://")
        if not directory:
            raise ConfigurationError("a file email URL names a directory: file://./outbox")
        return FileTransport(directory)
    if url.startswith("memory://"):
        return MemoryTransport()
    raise ConfigurationError(
        "GCMC_JOBS_EMAIL_URL must start with smtp://, smtps://, file:// or memory://, "
        f"got {url.partition(':')[0]!r}"
    )

"""Email transports, chosen by ``settings.email_url``.

=========================  ===================================================================
URL                        transport
=========================  ===================================================================
``smtp://…``, ``smtps://…``  :class:`SmtpTransport` (see :mod:`.smtp` for every URL form)
``file://DIR``             :class:`FileTransport`: one ``.eml`` file per email in ``DIR``
                           (``file://./outbox`` is relative to the working directory)
``memory://``              :class:`MemoryTransport`: appended to :data:`memory.outbox`, per process
=========================  ===================================================================

:func:`for_settings` returns one transport per process and configuration, so that SMTP
connections are reused across messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gcmc_jobs.email.transports import memory
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.email.transports.file import FileTransport
from gcmc_jobs.email.transports.memory import MemoryTransport
from gcmc_jobs.email.transports.smtp import SmtpTransport
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.settings import Settings

__all__ = [
    "FileTransport",
    "MemoryTransport",
    "SmtpTransport",
    "Transport",
    "close_all",
    "for_settings",
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


_cache: dict[tuple[str, int, int, int], Transport] = {}
_cache_lock = threading.Lock()


def for_settings(settings: Settings) -> Transport:
    """The process-wide transport for ``settings`` (built on first use, then reused)."""
    key = (
        settings.email_url.get_secret_value(),
        settings.email_timeout_ms,
        settings.email_retry_attempts,
        settings.email_retry_max_wait_ms,
    )
    with _cache_lock:
        transport = _cache.get(key)
        if transport is None:
            transport = _cache[key] = from_url(
                key[0],
                timeout_ms=settings.email_timeout_ms,
                retry_attempts=settings.email_retry_attempts,
                retry_max_wait_ms=settings.email_retry_max_wait_ms,
            )
        return transport


def close_all() -> None:
    """Close and forget every transport :func:`for_settings` built (worker shutdown, tests)."""
    with _cache_lock:
        transports = list(_cache.values())
        _cache.clear()
    for transport in transports:
        transport.close()

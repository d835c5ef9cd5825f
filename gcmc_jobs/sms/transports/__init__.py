"""SMS transports, chosen by ``settings.sms_url``.

==================  ============================================================================
URL                 transport
==================  ============================================================================
``twilio://``       :class:`TwilioTransport`: Twilio's Messages API (``GCMC_JOBS_SMS_TWILIO_*``,
                    ``GCMC_JOBS_SMS_FROM``)
``file://DIR``      :class:`FileSmsTransport`: one JSON file per SMS in ``DIR`` (the default,
                    ``file://./sms-outbox``)
``memory://``       :class:`MemorySmsTransport`: appended to :data:`memory.outbox`, per process
==================  ============================================================================

The process's :class:`~gcmc_jobs.runtime.Runtime` keeps the one of its settings
(``runtime.sms_transport``), so Twilio's connections are reused, and closes it.
"""

from __future__ import annotations

from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.settings import Settings
from gcmc_jobs.sms.transports import memory
from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport
from gcmc_jobs.sms.transports.file import FileSmsTransport
from gcmc_jobs.sms.transports.memory import MemorySmsTransport
from gcmc_jobs.sms.transports.twilio import TwilioTransport

__all__ = [
    "FileSmsTransport",
    "MemorySmsTransport",
    "SmsMessage",
    "SmsTransport",
    "TwilioTransport",
    "from_settings",
    "memory",
]


def from_settings(settings: Settings) -> SmsTransport:
    """A new SMS transport for ``settings.sms_url``; :class:`ConfigurationError` when it
    cannot work (an unknown scheme, Twilio without credentials or sender)."""
    url = settings.sms_url
    if url.startswith("twilio://"):
        token = settings.sms_twilio_auth_token
        return TwilioTransport(
            account_sid=settings.sms_twilio_account_sid or "",
            auth_token=token.get_secret_value() if token is not None else "",
            sender=settings.sms_from or "",
            base_url=settings.sms_twilio_base_url,
            timeout_ms=settings.sms_timeout_ms,
        )
    if url.startswith("file://"):
        return FileSmsTransport(url.removeprefix("file://"))
    if url.startswith("memory://"):
        return MemorySmsTransport()
    raise ConfigurationError(
        f"GCMC_JOBS_SMS_URL must start with twilio://, file:// or memory://, got {url!r}"
    )

"""The SMS transport interface: something that hands one text message to a provider."""

from __future__ import annotations

import abc
from dataclasses import dataclass

__all__ = ["SmsMessage", "SmsTransport"]


@dataclass(frozen=True)
class SmsMessage:
    """One text message: ``to`` in E.164, its ``body``, and what names it in our records
    (``kind``, ``dedup_key``: written by the file and memory transports, not sent)."""

    to: str
    body: str
    kind: str = "custom"
    dedup_key: str = ""


class SmsTransport(abc.ABC):
    """Delivers SMS. Implementations are safe to share between threads."""

    @abc.abstractmethod
    def send(self, message: SmsMessage) -> str:
        """Hand ``message`` to the provider; return the provider's id of it (Twilio's
        message SID ``SM…``).

        Raises :class:`~gcmc_jobs.errors.TransientDeliveryError` when trying again later may
        work (a timeout, a 429, a 5xx), :class:`~gcmc_jobs.errors.SmsRejected` when the
        provider refused this message for good (saying whether the number should be
        suppressed).
        """

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections and files. The default does nothing."""

"""The transport interface: something that delivers one MIME message and names it."""

from __future__ import annotations

import abc
from email.message import EmailMessage

__all__ = ["Transport"]


class Transport(abc.ABC):
    """Delivers MIME messages. Implementations are safe to share between threads."""

    @abc.abstractmethod
    def send(self, message: EmailMessage) -> str:
        """Deliver ``message`` (its envelope recipient is its ``To``); return the provider's
        id of it (our ``Message-ID`` unless the provider names it otherwise).

        Raises :class:`~gcmc_jobs.errors.TransientDeliveryError` when trying again later may
        work, :class:`~gcmc_jobs.errors.PermanentDeliveryError` when it cannot.
        """

    def probe(self) -> None:  # noqa: B027  (optional hook)
        """Check that the transport can take mail now, without sending any; raise
        :class:`~gcmc_jobs.errors.TransientDeliveryError` when it cannot. The mail circuit
        breaker calls it while the breaker is open. The default (a transport that needs no
        server: files, memory) always can."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections and files. The default does nothing."""

"""A transport writing each email to an ``.eml`` file (the demo's default: ``./outbox``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from gcmc_jobs.email.mime import needs_utf8, to_bytes
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.errors import TransientDeliveryError

__all__ = ["FileTransport"]


class FileTransport(Transport):
    """Writes ``<directory>/<UTC timestamp>-<kind>-<message id>.eml``, created atomically
    (written to a temporary name, then renamed), so a reader never sees half a file.

    The provider id returned is the file's absolute path: what a person wants to open.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, message: EmailMessage) -> Path:
        """The file ``message`` is (or will be) written to."""
        local = str(message["Message-ID"]).strip("<>").partition("@")[0]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        kind = str(message.get("X-GCMC-Kind", "email"))
        return self.directory / f"{stamp}-{kind}-{local}.eml"

    def send(self, message: EmailMessage) -> str:
        path = self.path_for(message)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(to_bytes(message, utf8=needs_utf8(message)))
            temporary.replace(path)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write {path}: {exc}") from exc
        return str(path.resolve())

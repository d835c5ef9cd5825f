"""An SMS transport writing each message to a JSON file (the demo's default: ``./sms-outbox``)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from gcmc_jobs.errors import TransientDeliveryError
from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport

__all__ = ["FileSmsTransport"]


class FileSmsTransport(SmsTransport):
    """Writes ``<directory>/<UTC timestamp>-<kind>-<id>.json`` (``to``, ``body``, ``kind``,
    ``dedup_key``), created atomically (a temporary name, then a rename). The provider id
    returned is the file's absolute path."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, message: SmsMessage) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{message.kind}-{uuid.uuid4().hex[:12]}.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(asdict(message), ensure_ascii=False), "utf-8")
            temporary.replace(path)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write {path}: {exc}") from exc
        return str(path.resolve())

"""What became of a message: :func:`status` reads the record
:class:`~gcmc_jobs.middleware.status_tracking.StatusTracking` keeps of it
(``gcmc_jobs.status``, ``gcmc-jobs status``, ``GET /api/messages/{id}``).

A message id that was never sent, was sent with status recording off
(``GCMC_JOBS_STATUS_TTL_MS=0``) or whose record expired is answered with the state
``unknown``, not an exception: the record is kept ``status_ttl_ms`` after its last change.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gcmc_jobs.errors import ConfigurationError, InvalidPayload
from gcmc_jobs.middleware.stores.status import RedisStatusStore, StatusStore
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.runtime import current, installed
from gcmc_jobs.settings import Settings

__all__ = ["MessageState", "MessageStatus", "status", "status_store_for"]

#: The states a message can be in (``unknown``: no record, see the module docstring).
MessageState = Literal[
    "enqueued",
    "delayed",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "dead_lettered",
    "cancelled",
    "unknown",
]
STATES: tuple[str, ...] = MessageState.__args__  # type: ignore[attr-defined]

#: What a message id may look like: Dramatiq's are uuid4 strings.
MESSAGE_ID = r"^[A-Za-z0-9_.:-]{1,200}$"
_MESSAGE_ID = re.compile(MESSAGE_ID)


@dataclass(frozen=True)
class MessageStatus:
    """The last known state of one message.

    ``attempts`` counts the attempts started so far (0 before the first); ``due_at`` is when
    a ``delayed`` message or the next attempt of a ``retrying`` one falls due; ``error_type``
    and ``error`` (redacted, at most 200 characters) are those of the last failed attempt.
    Times are UTC. Every field but ``message_id`` and ``state`` is None when ``unknown``.
    """

    message_id: str
    state: MessageState
    actor: str | None = None
    queue: str | None = None
    attempts: int = 0
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    due_at: datetime | None = None
    updated_at: datetime | None = None
    error_type: str | None = None
    error: str | None = None

    @property
    def known(self) -> bool:
        """False when no record of the message exists (never sent, or expired)."""
        return self.state != "unknown"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (datetimes kept)."""
        return asdict(self)

    @classmethod
    def from_record(cls, message_id: str, record: dict[str, str] | None) -> MessageStatus:
        """The status a store's record (None: none) stands for."""
        if record is None:
            return cls(message_id=message_id, state="unknown")
        state = record.get("state", "unknown")
        return cls(
            message_id=message_id,
            state=state if state in STATES else "unknown",  # type: ignore[arg-type]
            actor=record.get("actor"),
            queue=record.get("queue"),
            attempts=int(record.get("attempts", 0)),
            enqueued_at=_time(record.get("enqueued_at")),
            started_at=_time(record.get("started_at")),
            finished_at=_time(record.get("finished_at")),
            due_at=_time(record.get("due_at")),
            updated_at=_time(record.get("updated_at")),
            error_type=record.get("error_type"),
            error=record.get("error"),
        )


def _time(ms: str | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def check_message_id(message_id: object) -> str:
    """``message_id`` when it looks like one (1-200 letters, digits, ``_.:-``); else
    :class:`~gcmc_jobs.errors.InvalidPayload` saying what is expected."""
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        raise InvalidPayload(
            f"not a message id: {str(message_id)[:40]!r} (expected the id send() returned, "
            "such as 0f6d2c1e-8a44-4b4e-9d1f-3c5e2a7b9d10)"
        )
    return message_id


def status(message_id: str, *, store: StatusStore | None = None) -> MessageStatus:
    """The last known state of message ``message_id`` (the ``message_id`` of the message
    ``send()`` returned), from ``store`` or the configured runtime's
    (:func:`gcmc_jobs.configure`); state ``unknown`` when there is no record.

    Raises :class:`~gcmc_jobs.errors.InvalidPayload` for something that is not a message
    id, :class:`~gcmc_jobs.errors.NotConfiguredError` without ``store`` before
    ``configure()``.
    """
    message_id = check_message_id(message_id)
    found = (store if store is not None else current().stores.status).get(message_id)
    return MessageStatus.from_record(message_id, found)


def status_store_for(settings: Settings) -> StatusStore:
    """The status store ``settings`` call for: Redis on ``settings.store_redis_url`` (every
    call bounded by ``settings.health_timeout_ms``), else the in-process store of the
    configured runtime on the same namespace (the embedded demo). Without either,
    :class:`~gcmc_jobs.errors.ConfigurationError`: the records live in the processes that
    ran the messages."""
    url = settings.store_redis_url
    if url is not None:
        client = redis_client(url, timeout_ms=settings.health_timeout_ms)
        return RedisStatusStore(client, namespace=settings.namespace)
    runtime = installed()
    if runtime is not None and runtime.settings.namespace == settings.namespace:
        return runtime.stores.status
    raise ConfigurationError(
        "message statuses are kept in Redis: set GCMC_JOBS_REDIS_URL (or a redis:// "
        f"GCMC_JOBS_BROKER_URL); with the {settings.broker_kind} broker and no Redis they live "
        "only inside the process that ran the messages"
    )

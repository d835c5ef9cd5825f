"""Dead letters as plain functions: list, show (secrets masked), replay, purge.

Used by ``gcmc-jobs dead-letters`` and the admin HTTP API. They take a
:class:`~gcmc_jobs.middleware.stores.DeadLetterStore` (``SqlDeadLetterStore(engine)`` in
production) and, to replay, the broker; they return dataclasses and dicts, print nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dramatiq

from gcmc_jobs.errors import DeadLetterNotFound, DuplicateMessage
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware.stores.dead_letters import (
    DeadLetterFilter,
    DeadLetterRecord,
    DeadLetterStore,
)
from gcmc_jobs.redaction import redact

__all__ = [
    "REPLAY_STRIPPED_OPTIONS",
    "ReplayResult",
    "list_dead_letters",
    "purge_dead_letters",
    "replay_dead_letters",
    "replay_message",
    "show_dead_letter",
]

logger = get_logger("gcmc_jobs.ops.dead_letters")

#: Options a replay drops: the old run's retry count and traceback, broker bookkeeping,
#: rate-limit deferral state, dedup claim marker, failure reason. Everything else (the
#: dedup and rate-limit keys, tenant, correlation id, per-message policy) is kept.
REPLAY_STRIPPED_OPTIONS = frozenset(
    {
        "retries",
        "traceback",
        "requeue_timestamp",
        "eta",
        "redis_message_id",
        "rate_limit_window",
        "rate_limit_deferred_ms",
        "rate_limit_deferrals",
        "dead_letter_reason",
        "dedup_claimed",
        "logged_delayed",
        "gcmc_from_delay_queue",  # gcmc_jobs.brokers.redis_broker.FROM_DELAY_QUEUE
    }
)

ReplayStatus = Literal["replayed", "would_replay", "already_replayed", "duplicate", "unknown_actor"]


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one dead letter did.

    ``status``: ``replayed`` (sent as ``replayed_as``), ``would_replay`` (dry run),
    ``already_replayed`` (skipped: replayed before; pass ``again=True``), ``duplicate`` (its
    dedup key is taken by another message: nothing sent), ``unknown_actor`` (no such actor
    on this broker).
    """

    id: int
    message_id: str
    actor: str
    status: ReplayStatus
    replayed_as: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return asdict(self)


def list_dead_letters(
    store: DeadLetterStore,
    *,
    actor: str | None = None,
    queue: str | None = None,
    error: str | None = None,
    since: datetime | None = None,
    replayed: bool | None = None,
    limit: int | None = 100,
) -> list[DeadLetterRecord]:
    """Dead letters, newest first, filtered by actor, queue, error type, failure time."""
    where = DeadLetterFilter(actor=actor, queue=queue, error=error, since=since, replayed=replayed)
    return store.find(where, limit=limit)


def show_dead_letter(store: DeadLetterStore, id: int, *, masked: bool = True) -> dict[str, Any]:
    """One dead letter as a dict; secret fields and URL credentials masked unless
    ``masked=False``. Raises :class:`~gcmc_jobs.errors.DeadLetterNotFound`."""
    found = store.get([id])
    if not found:
        raise DeadLetterNotFound(f"no dead letter with id {id}")
    record = found[0].as_dict()
    if masked:
        for field in ("args", "kwargs", "options", "error", "traceback"):
            record[field] = redact(record[field])
    return record


def replay_message(record: DeadLetterRecord) -> dramatiq.Message[Any]:
    """A fresh message (new id, no retries) making the same call as ``record``.

    Its ``replay_of`` option names the dead message's id.
    """
    options = {k: v for k, v in record.options.items() if k not in REPLAY_STRIPPED_OPTIONS}
    options["replay_of"] = record.message_id
    return dramatiq.Message(
        queue_name=record.queue,
        actor_name=record.actor,
        args=tuple(record.args),
        kwargs=dict(record.kwargs),
        options=options,
    )


def replay_dead_letters(
    store: DeadLetterStore,
    broker: dramatiq.Broker,
    *,
    ids: Sequence[int] | None = None,
    actor: str | None = None,
    queue: str | None = None,
    error: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    again: bool = False,
) -> list[ReplayResult]:
    """Re-send dead letters with fresh retries and record ``replayed_at``/``replayed_as``.

    Either ``ids`` (missing ids raise :class:`~gcmc_jobs.errors.DeadLetterNotFound`) or every
    not-yet-replayed dead letter matching the filters. ``dry_run`` sends nothing and says
    what would be sent. ``again`` replays ids that were replayed before.
    """
    if ids is not None:
        records = store.get(ids)
        missing = sorted(set(ids) - {r.id for r in records})
        if missing:
            raise DeadLetterNotFound(f"no dead letter with id {', '.join(map(str, missing))}")
    else:
        where = DeadLetterFilter(actor=actor, queue=queue, error=error, since=since, replayed=False)
        records = sorted(store.find(where), key=lambda r: r.id or 0)
    return [_replay_one(store, broker, r, dry_run=dry_run, again=again) for r in records]


def _replay_one(
    store: DeadLetterStore,
    broker: dramatiq.Broker,
    record: DeadLetterRecord,
    *,
    dry_run: bool,
    again: bool,
) -> ReplayResult:
    assert record.id is not None

    def result(status: ReplayStatus, replayed_as: str | None = None) -> ReplayResult:
        assert record.id is not None
        return ReplayResult(record.id, record.message_id, record.actor, status, replayed_as)

    if record.replayed_at is not None and not again:
        return result("already_replayed")
    try:
        broker.get_actor(record.actor)
    except dramatiq.errors.ActorNotFound:
        return result("unknown_actor")
    if dry_run:
        return result("would_replay")
    try:
        sent = broker.enqueue(replay_message(record))
    except DuplicateMessage:
        return result("duplicate")
    store.mark_replayed(record.id, as_message_id=sent.message_id, at=datetime.now(UTC))
    logger.info(
        "dead_letter_replayed",
        dead_letter_id=record.id,
        message_id=sent.message_id,
        replay_of=record.message_id,
        actor=record.actor,
    )
    return result("replayed", sent.message_id)


def purge_dead_letters(
    store: DeadLetterStore,
    *,
    older_than: timedelta,
    actor: str | None = None,
    queue: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> int:
    """Delete dead letters that failed more than ``older_than`` ago; returns how many."""
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    cutoff = (now or datetime.now(UTC)) - older_than
    return store.purge(DeadLetterFilter(actor=actor, queue=queue, error=error, before=cutoff))

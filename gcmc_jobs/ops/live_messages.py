"""Live messages on Redis: list a queue's ready and delayed messages, show one, cancel them,
promote delayed ones to ready (``gcmc-jobs messages``, ``/api/queues/{queue}/messages``).

Where they are (Dramatiq's Redis layout, :mod:`gcmc_jobs.redis_keys`): a *ready* message is
an id in the list ``{ns}:{q}`` with its body in the hash ``{ns}:{q}.msgs``; a *delayed* one
(a ``send(delay=...)``, a retry's backoff, a rate-limit or pause deferral) has its body in
``{ns}:{q}.DQ.msgs``, its id in the list ``{ns}:{q}.DQ`` until a worker fetches it (workers
fetch delayed messages long before they are due and hold them in memory). Ids in Redis are
per enqueue (``redis_message_id``); the functions here take and return Dramatiq's message
id, the one ``send()`` returned and ``gcmc_jobs.status`` knows.

Cancelling is safe against a worker fetching at the same moment: one Lua call per batch
takes a ready message out of the list *and* its body out of the hash only if it is still in
the list (a worker's fetch pops the list in its own atomic call, so exactly one of the two
wins). What happens to a message a worker already holds:

- **ready, already fetched** (at most a worker's prefetch: threads x 2 per process): it is
  *in flight*, it runs; cancel answers ``in_flight`` and changes nothing;
- **delayed, held by a worker until due**: its body is removed from ``.DQ.msgs``; when it
  falls due the worker's enqueue of the ready copy finds it gone and drops it
  (:data:`gcmc_jobs.brokers.redis_broker.DUE_LUA`, atomic too): cancelled for real.

A cancelled message's dedup key is released (owner-checked) so it can be sent again, and its
status becomes ``cancelled``. Promoting moves a delayed message to the back of the ready
list in one Lua call (same message id; its ``eta`` dropped); a worker holding it drops its
copy when it falls due, as above.

Costs: a ready page reads the list from the previous page's last id (``LPOS``), a batch at
a time; a delayed page, and locating messages by id (show, cancel, promote), read the whole
delay hash (or ready hash) with ``HSCAN``: O(messages in the queue), meant for operators,
not for a hot path. RabbitMQ cannot do any of this (:class:`UnsupportedByBroker` says what
it can count instead). On the in-process stub broker (tests, the demo) the same functions
read the configured runtime's queues (the ``_stub_*`` functions at the end of this module).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from dramatiq import Message

from gcmc_jobs.errors import LiveMessageNotFound, UnsupportedByBroker
from gcmc_jobs.middleware.stores.dedup import DedupStore, RedisDedupStore
from gcmc_jobs.middleware.stores.status import RedisStatusStore, StatusStore, sequence
from gcmc_jobs.ops.message_status import MessageStatus, check_message_id
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redaction import redact
from gcmc_jobs.redis_keys import messages_key, queue_key
from gcmc_jobs.runtime import current
from gcmc_jobs.settings import Settings

__all__ = [
    "CancelResult",
    "LiveMessage",
    "LivePage",
    "PromoteResult",
    "cancel_messages",
    "list_messages",
    "promote_messages",
    "show_message",
]

LiveState = Literal["ready", "delayed", "in_flight"]
#: Page size when none is given, and the largest one allowed.
DEFAULT_LIMIT, MAX_LIMIT = 50, 1_000
_BATCH = 500

# KEYS: ready list, ready hash, delay list, delay hash. ARGV: dry ("1"/"0"), then pairs of
# (kind "r"/"d", redis id). Per pair: 1 cancelled (or would be), 2 in flight, 0 gone.
_CANCEL_LUA = """
local dry = ARGV[1] == '1'
local out = {}
for i = 2, #ARGV, 2 do
  local kind, id = ARGV[i], ARGV[i + 1]
  local result = 0
  if kind == 'r' then
    if dry then
      if redis.call('lpos', KEYS[1], id) then result = 1
      elseif redis.call('hexists', KEYS[2], id) == 1 then result = 2 end
    elseif redis.call('lrem', KEYS[1], 1, id) == 1 then
      redis.call('hdel', KEYS[2], id)
      result = 1
    elseif redis.call('hexists', KEYS[2], id) == 1 then result = 2 end
  else
    if dry then
      result = redis.call('hexists', KEYS[4], id)
    elseif redis.call('hdel', KEYS[4], id) == 1 then
      redis.call('lrem', KEYS[3], 1, id)
      result = 1
    end
  end
  out[#out + 1] = result
end
return out
"""

# KEYS: ready list, ready hash, delay list, delay hash. ARGV: triples (delayed redis id, new
# ready redis id, ready body). Per triple: 1 promoted, 0 gone (ran, cancelled, promoted).
_PROMOTE_LUA = """
local out = {}
for i = 1, #ARGV, 3 do
  local result = 0
  if redis.call('hdel', KEYS[4], ARGV[i]) == 1 then
    redis.call('lrem', KEYS[3], 1, ARGV[i])
    redis.call('hset', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    redis.call('rpush', KEYS[1], ARGV[i + 1])
    result = 1
  end
  out[#out + 1] = result
end
return out
"""


@dataclass(frozen=True)
class LiveMessage:
    """One waiting message. ``state``: ``ready`` (in the queue's list), ``delayed`` (waiting
    for ``due_at``), ``in_flight`` (fetched by a worker: only :func:`show_message` reports
    it). ``retries``: failed attempts so far. ``args``, ``kwargs`` and ``options`` have their
    secrets masked (:func:`gcmc_jobs.redaction.redact`). ``status``: the message-status
    record (:func:`gcmc_jobs.status`), filled by :func:`show_message` only."""

    message_id: str
    queue: str
    state: LiveState
    actor: str
    tenant_id: int | str | None
    enqueued_at: datetime
    due_at: datetime | None
    retries: int
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (datetimes kept)."""
        return asdict(self)


@dataclass(frozen=True)
class LivePage:
    """A page of :func:`list_messages`: ``next_cursor`` continues it (None: the end);
    ``ready`` and ``delayed`` count the whole queue, unfiltered."""

    messages: list[LiveMessage]
    next_cursor: str | None
    ready: int
    delayed: int


CancelStatus = Literal["cancelled", "would_cancel", "in_flight", "not_found"]
PromoteStatus = Literal["promoted", "would_promote", "not_delayed", "not_found"]


@dataclass(frozen=True)
class CancelResult:
    """What cancelling one id did: ``cancelled``; ``would_cancel`` (dry run); ``in_flight``
    (a worker has fetched it: it runs, nothing changed); ``not_found`` (not waiting in the
    queue: ran, cancelled, or never there). ``state``: where it was (None: not found)."""

    message_id: str
    status: CancelStatus
    state: LiveState | None = None
    actor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return asdict(self)


@dataclass(frozen=True)
class PromoteResult:
    """What promoting one id did: ``promoted`` (now at the back of the ready list);
    ``would_promote`` (dry run); ``not_delayed`` (it is ready or in flight already);
    ``not_found``."""

    message_id: str
    status: PromoteStatus
    actor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return asdict(self)


# -- Where the messages are ------------------------------------------------------------


def _require_redis(settings: Settings, queue: str) -> None:
    kind = settings.broker_kind
    if kind in ("redis", "stub"):
        return
    if kind == "amqp":
        raise UnsupportedByBroker(
            "RabbitMQ cannot list, show, cancel or promote queued messages: AMQP reads a "
            "message only by taking it off its queue (basic.get; a requeue puts it back at "
            "the end, redelivered) and has no command to delete one message by id. What it "
            f"can tell is counted per queue: {_rabbitmq_counts(settings, queue)} "
            "(gcmc-jobs queues, GET /api/queues; GCMC_JOBS_BROKER_URL is an amqp:// URL)"
        )
    raise UnsupportedByBroker(f"live messages are listed on Redis, not on a {kind} broker")


def _rabbitmq_counts(settings: Settings, queue: str) -> str:
    # Imported here: queue_stats loads what a RabbitMQ broker needs only on that path.
    from gcmc_jobs.ops.queue_stats import queue_stats

    # An unreachable RabbitMQ raises here: that is the first thing to fix.
    [stats] = queue_stats(settings, [queue], paused=(), timeout_ms=settings.health_timeout_ms)
    return (
        f"{queue!r} holds {stats.ready} ready, {stats.delayed} delayed, {stats.dead} in its "
        f"dead-letter queue, {stats.consumers} consumer(s)"
    )


class _Queue:
    """The four keys of a queue and a client on the broker's Redis."""

    def __init__(self, settings: Settings, queue: str) -> None:
        _require_redis(settings, queue)
        self.settings = settings
        self.name = queue
        ns = settings.namespace
        self.ready = queue_key(ns, queue)
        self.ready_msgs = messages_key(ns, queue)
        self.delayed = queue_key(ns, f"{queue}.DQ")
        self.delayed_msgs = messages_key(ns, f"{queue}.DQ")
        self.url = settings.broker_url.get_secret_value()
        self.client = redis_client(self.url, timeout_ms=settings.health_timeout_ms)
        self._stores: Any = None

    @property
    def keys(self) -> list[str]:
        return [self.ready, self.ready_msgs, self.delayed, self.delayed_msgs]

    @property
    def stores(self) -> Any:
        """A client on the stores' Redis (status records, dedup keys): the broker's own
        client unless ``GCMC_JOBS_REDIS_URL`` names another Redis."""
        url = self.settings.store_redis_url or self.url
        if url == self.url:
            return self.client
        if self._stores is None:
            self._stores = redis_client(url, timeout_ms=self.settings.health_timeout_ms)
        return self._stores

    def close(self) -> None:
        self.client.close()
        if self._stores is not None:
            self._stores.close()

    def scan(self, key: str, wanted: set[bytes] | None = None) -> Iterator[tuple[bytes, bytes]]:
        """``(redis id, body)`` of every message of the hash ``key``; with ``wanted``, only
        bodies holding one of those message ids (a byte search before any decoding)."""
        for redis_id, body in self.client.hscan_iter(key, count=_BATCH):
            if wanted is None or any(w in body for w in wanted):
                yield redis_id, body


def _decode(body: bytes) -> Message[Any] | None:
    try:
        return Message.decode(body)
    except Exception:  # not a Dramatiq message: the worker dead-letters it when fetched
        return None


def _tenant(message: Message[Any]) -> int | str | None:
    tenant = message.options.get("tenant_id")
    if tenant is None:
        tenant = message.kwargs.get("tenant_id")
    return tenant if isinstance(tenant, int | str) else None


def _ms(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _live(message: Message[Any], queue: str, state: LiveState, *, full: bool) -> LiveMessage:
    return LiveMessage(
        message_id=message.message_id,
        queue=queue,
        state=state,
        actor=message.actor_name,
        tenant_id=_tenant(message),
        enqueued_at=_ms(message.message_timestamp) or datetime.fromtimestamp(0, tz=UTC),
        due_at=_ms(message.options.get("eta")) if state == "delayed" else None,
        retries=int(message.options.get("retries") or 0),
        args=redact(list(message.args)) if full else [],
        kwargs=redact(dict(message.kwargs)) if full else {},
        options=redact(dict(message.options)) if full else {},
    )


def _due_key(message: Message[Any]) -> list[Any]:
    """Where a delayed message sorts: its due time (ms), then its id."""
    return [int(message.options.get("eta") or 0), message.message_id]


def _matches(message: Message[Any], actor: str | None, tenant_id: int | str | None) -> bool:
    if actor is not None and message.actor_name != actor:
        return False
    return tenant_id is None or str(_tenant(message)) == str(tenant_id)


# -- Listing ---------------------------------------------------------------------------


def _cursor(phase: str, position: Any) -> str:
    raw = json.dumps([phase, position]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str | None) -> tuple[str, Any]:
    if not cursor:
        return "ready", None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        phase, position = json.loads(base64.urlsafe_b64decode(padded))
    except Exception:
        phase, position = None, None
    if phase in ("ready", "delayed"):
        return str(phase), position
    raise ValueError(f"not a cursor of this list: {cursor[:40]!r} (pass next_cursor as given)")


def list_messages(
    settings: Settings,
    queue: str,
    *,
    state: Literal["ready", "delayed"] | None = None,
    actor: str | None = None,
    tenant_id: int | str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> LivePage:
    """A page of ``queue``'s waiting messages, ready ones first (in the order workers take
    them), then delayed ones (by due time); ``state`` keeps one kind only. ``actor`` and
    ``tenant_id`` (the ``tenant_id`` option or keyword argument) filter. ``cursor``: the
    previous page's ``next_cursor``; a ready page goes on after the last message shown
    even while workers take messages off the head. ``limit``: 1-1,000 (50).

    Raises :class:`~gcmc_jobs.errors.UnsupportedByBroker` on RabbitMQ or the stub broker,
    ``ValueError`` for a bad limit or cursor.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    phase, position = _parse_cursor(cursor)
    if state == "delayed" and phase == "ready":
        phase, position = "delayed", None
    if settings.broker_kind == "stub":
        return _stub_listing(
            settings,
            queue,
            state=state,
            actor=actor,
            tenant_id=tenant_id,
            phase=phase,
            position=position,
            limit=limit,
        )
    q = _Queue(settings, queue)
    try:
        page: list[LiveMessage] = []
        next_cursor = None
        if phase == "ready" and state in (None, "ready"):
            page, last = _ready_page(q, position, actor, tenant_id, limit)
            if last is not None:
                next_cursor = _cursor("ready", last)
            elif state is None:
                phase, position = "delayed", None
        if next_cursor is None and phase == "delayed" and state in (None, "delayed"):
            more, after = _delayed_page(q, position, actor, tenant_id, limit - len(page))
            page += more
            if after is not None:
                next_cursor = _cursor("delayed", after)
        ready, delayed = q.client.llen(q.ready), q.client.hlen(q.delayed_msgs)
    finally:
        q.close()
    return LivePage(page, next_cursor, int(ready), int(delayed))


def _ready_page(
    q: _Queue, after: Any, actor: str | None, tenant_id: int | str | None, limit: int
) -> tuple[list[LiveMessage], str | None]:
    """Up to ``limit`` ready messages after the redis id ``after``, and the redis id to go
    on from (None: the list is done). The list only loses ids at its head (fetches) and
    gains them at its tail, so an id gone from it means every id before it is gone too."""
    start = 0
    if after is not None:
        found = q.client.lpos(q.ready, str(after))
        start = 0 if found is None else int(found) + 1
    page: list[LiveMessage] = []
    while True:
        ids = q.client.lrange(q.ready, start, start + _BATCH - 1)
        if not ids:
            return page, None
        bodies = q.client.hmget(q.ready_msgs, ids)
        for redis_id, body in zip(ids, bodies, strict=True):
            message = _decode(body) if body else None  # no body: fetched and done meanwhile
            if message is None or not _matches(message, actor, tenant_id):
                continue
            page.append(_live(message, q.name, "ready", full=False))
            if len(page) == limit:
                return page, redis_id.decode()
        start += len(ids)


def _delayed_page(
    q: _Queue, after: Any, actor: str | None, tenant_id: int | str | None, limit: int
) -> tuple[list[LiveMessage], list[Any] | None]:
    """Up to ``limit`` delayed messages after the position ``after`` (``[eta, message
    id]``) in due-time order, and the position to go on from (None: done)."""
    if limit <= 0:
        return [], [0, ""]
    found = []
    for _, body in q.scan(q.delayed_msgs):
        message = _decode(body)
        if message is None or not _matches(message, actor, tenant_id):
            continue
        key = _due_key(message)
        if after is None or key > list(after):
            found.append((key, message))
    found.sort(key=lambda item: item[0])
    page = [_live(m, q.name, "delayed", full=False) for _, m in found[:limit]]
    return page, (found[limit - 1][0] if len(found) > limit else None)


# -- One message -------------------------------------------------------------------------


def _locate(
    q: _Queue, message_ids: Sequence[str]
) -> dict[str, tuple[Literal["r", "d"], bytes, Message[Any]]]:
    """Where each of ``message_ids`` waits: ``("r" or "d", redis id, message)``; absent
    when neither the ready nor the delay hash holds it."""
    wanted = {m.encode() for m in message_ids}
    found: dict[str, tuple[Literal["r", "d"], bytes, Message[Any]]] = {}
    places: tuple[tuple[Literal["r", "d"], str], ...] = (
        ("d", q.delayed_msgs),
        ("r", q.ready_msgs),
    )
    for kind, key in places:
        for redis_id, body in q.scan(key, wanted):
            message = _decode(body)
            if message is not None and message.message_id in message_ids:
                found[message.message_id] = (kind, redis_id, message)
    return found


def show_message(settings: Settings, queue: str, message_id: str) -> LiveMessage:
    """One waiting (or in-flight) message of ``queue``: its arguments and options with
    secrets masked, enqueue time, due time, retries, and its status record (when statuses
    are kept in Redis). Raises :class:`~gcmc_jobs.errors.LiveMessageNotFound` when the queue
    does not hold it, ``InvalidPayload`` for something that is not a message id."""
    message_id = check_message_id(message_id)
    missing = LiveMessageNotFound(
        f"no waiting message {message_id} in queue {queue!r}: it ran, is running, was "
        "cancelled, or never was there (gcmc-jobs status ID tells what became of it)"
    )
    if settings.broker_kind == "stub":
        found = _stub_show(settings, queue, message_id)
        if found is None:
            raise missing
        record = current().stores.status.get(message_id)
        live = _live(found[1], queue, found[0], full=True)
        status = MessageStatus.from_record(message_id, record).as_dict()
        return LiveMessage(**{**live.as_dict(), "status": status})
    q = _Queue(settings, queue)
    try:
        where = _locate(q, [message_id]).get(message_id)
        if where is None:
            raise missing
        kind, redis_id, message = where
        state: LiveState = "delayed"
        if kind == "r":
            state = "ready" if q.client.lpos(q.ready, redis_id) is not None else "in_flight"
        record = RedisStatusStore(q.stores, namespace=settings.namespace).get(message_id)
    finally:
        q.close()
    status = MessageStatus.from_record(message_id, record).as_dict()
    live = _live(message, queue, state, full=True)
    return LiveMessage(**{**live.as_dict(), "status": status})


# -- Cancel and promote --------------------------------------------------------------------


def cancel_messages(
    settings: Settings, queue: str, message_ids: Sequence[str], *, dry_run: bool = False
) -> list[CancelResult]:
    """Cancel the waiting messages ``message_ids`` of ``queue`` (see the module docstring for
    what happens to one a worker holds), one result per id in the order given. Atomic per
    message against workers (one Lua call for all). Each cancelled message's dedup key is
    released and its status recorded ``cancelled``. ``dry_run``: change nothing, say what
    would happen."""
    ids = list(dict.fromkeys(check_message_id(m) for m in message_ids))
    if settings.broker_kind == "stub":
        return _stub_cancel(settings, queue, ids, dry_run=dry_run)
    q = _Queue(settings, queue)
    try:
        where = _locate(q, ids)
        located = [m for m in ids if m in where]
        args: list[Any] = ["1" if dry_run else "0"]
        for m in located:
            args += [where[m][0], where[m][1]]
        codes = q.client.eval(_CANCEL_LUA, 4, *q.keys, *args) if located else []
        outcome = dict(zip(located, (int(c) for c in codes), strict=True))
        results = []
        cancelled = []
        for m in ids:
            code = outcome.get(m, 0)
            kind, _, message = where.get(m, ("r", b"", None))
            if message is None or code == 0:
                results.append(CancelResult(m, "not_found"))
                continue
            state: LiveState = "delayed" if kind == "d" else "ready"
            if code == 2:
                results.append(CancelResult(m, "in_flight", "in_flight", message.actor_name))
                continue
            status: CancelStatus = "would_cancel" if dry_run else "cancelled"
            results.append(CancelResult(m, status, state, message.actor_name))
            if not dry_run:
                cancelled.append(message)
        if cancelled:
            namespace = settings.namespace
            dedup = RedisDedupStore(q.stores, namespace=namespace)
            _after_cancel(
                settings, dedup, RedisStatusStore(q.stores, namespace=namespace), cancelled
            )
    finally:
        q.close()
    return results


def _after_cancel(
    settings: Settings, dedup: DedupStore, status: StatusStore, messages: list[Message[Any]]
) -> None:
    """Release the cancelled messages' dedup keys (each only if the message still owns it)
    and record them ``cancelled``."""
    for message in messages:
        key = message.options.get("dedup_key")
        if isinstance(key, str):
            dedup.release(key, message.message_id)
    record_state(settings, status, messages, "cancelled")


def record_state(
    settings: Settings,
    store: StatusStore,
    messages: list[Message[Any]],
    state: Literal["cancelled", "enqueued"],
) -> None:
    """Record ``messages`` in ``state`` in the status store (one call), as the worker's
    ``StatusTracking`` would; nothing when statuses are off (``status_ttl_ms`` 0)."""
    if not messages or not settings.status_ttl_ms:
        return
    now = int(datetime.now(UTC).timestamp() * 1000)
    records = []
    for message in messages:
        attempt = int(message.options.get("retries") or 0) + 1
        fields: dict[str, str | int] = {
            "state": state,
            "actor": message.actor_name,
            "queue": message.queue_name.removesuffix(".DQ"),
            "enqueued_at": int(message.message_timestamp),
            "due_at": "",
            "updated_at": now,
        }
        if state == "cancelled":  # the attempts that ran stay as recorded
            fields["finished_at"] = now
            seq = sequence(state, attempt)
        else:  # promoted: as StatusTracking records a message a middleware put back
            fields["attempts"] = attempt
            seq = sequence(state, attempt, redelivered=True)
        records.append((message.message_id, seq, fields))
    store.record_many(records, settings.status_ttl_ms)


def promote_messages(
    settings: Settings,
    queue: str,
    message_ids: Sequence[str] | None = None,
    *,
    actor: str | None = None,
    tenant_id: int | str | None = None,
    dry_run: bool = False,
) -> list[PromoteResult]:
    """Move delayed messages of ``queue`` to the back of its ready list, now: those of
    ``message_ids``, or (``message_ids`` None) every delayed one matching ``actor`` and
    ``tenant_id``. Same message id, its ``eta`` dropped; atomic per message (one Lua call
    for all); a worker holding one drops its own copy when it falls due. ``dry_run``: change
    nothing."""
    if settings.broker_kind == "stub":
        chosen = None
        if message_ids is not None:
            chosen = list(dict.fromkeys(check_message_id(i) for i in message_ids))
        return _stub_promote(
            settings, queue, chosen, actor=actor, tenant_id=tenant_id, dry_run=dry_run
        )
    q = _Queue(settings, queue)
    try:
        where: dict[str, tuple[Literal["r", "d"], bytes, Message[Any]]]
        if message_ids is None:
            where = {}
            for redis_id, body in q.scan(q.delayed_msgs):
                found = _decode(body)
                if found is not None and _matches(found, actor, tenant_id):
                    where[found.message_id] = ("d", redis_id, found)
            ids = sorted(where, key=lambda i: int(where[i][2].options.get("eta") or 0))
        else:
            ids = list(dict.fromkeys(check_message_id(i) for i in message_ids))
            where = _locate(q, ids)
        results: dict[str, PromoteResult] = {}
        delayed: list[str] = []
        for i in ids:
            if i not in where:
                results[i] = PromoteResult(i, "not_found")
            elif where[i][0] != "d":
                results[i] = PromoteResult(i, "not_delayed", where[i][2].actor_name)
            else:
                delayed.append(i)
        if dry_run:
            for i in delayed:
                alive = q.client.hexists(q.delayed_msgs, where[i][1])
                status: PromoteStatus = "would_promote" if alive else "not_found"
                results[i] = PromoteResult(i, status, where[i][2].actor_name)
            return [results[i] for i in ids]
        args: list[Any] = []
        for i in delayed:
            args += [where[i][1], *_ready_copy(where[i][2], queue)]
        codes = q.client.eval(_PROMOTE_LUA, 4, *q.keys, *args) if delayed else []
        promoted = []
        for i, code in zip(delayed, codes, strict=True):
            status = "promoted" if int(code) else "not_found"
            results[i] = PromoteResult(i, status, where[i][2].actor_name)
            if int(code):
                promoted.append(where[i][2])
        if promoted:
            status_store = RedisStatusStore(q.stores, namespace=settings.namespace)
            record_state(settings, status_store, promoted, "enqueued")
    finally:
        q.close()
    return [results[i] for i in ids]


def _ready_copy(message: Message[Any], queue: str) -> tuple[str, bytes]:
    """The redis id and body of the ready copy of a delayed message, as a worker would
    enqueue it when due (its ``eta`` dropped, a new redis id)."""
    redis_id = str(uuid4())
    options = {k: v for k, v in message.options.items() if k != "eta"}
    options["redis_message_id"] = redis_id
    ready: Message[Any] = Message(**{**message.asdict(), "queue_name": queue, "options": options})
    return redis_id, ready.encode()


# -- the in-process stub broker ----------------------------------------------------------------
#
# Live messages on the stub broker (tests, the demo): the same answers as on Redis, read from
# the stub broker's queues of the configured runtime. It keeps each queue as a ``queue.Queue``
# of encoded messages (``<queue>.DQ`` for the delayed ones); a worker thread takes a message
# off it when it fetches it, so a message is found here only while it waits in its queue (a
# fetched one, ready or delayed, is ``not_found``, never ``in_flight``). Changes are made
# under the queue's own lock, with its count of unfinished tasks kept right, so
# ``broker.join`` still returns.


def _stub_queues(name: str) -> tuple[Any, Any]:
    queues: dict[str, Any] = getattr(current().broker, "queues", {})
    return queues.get(name), queues.get(f"{name}.DQ")


def _stub_waiting(queue: Any) -> list[Message[Any]]:
    if queue is None:
        return []
    with queue.mutex:
        bodies = list(queue.queue)
    return [m for body in bodies if (m := _decode(body)) is not None]


def _stub_listing(
    settings: Settings,
    name: str,
    *,
    state: Literal["ready", "delayed"] | None,
    actor: str | None,
    tenant_id: int | str | None,
    phase: str,
    position: Any,
    limit: int,
) -> LivePage:
    """:func:`gcmc_jobs.ops.live_messages.list_messages` on the stub broker."""
    ready_queue, delayed_queue = _stub_queues(name)
    ready = _stub_waiting(ready_queue)
    delayed = sorted(_stub_waiting(delayed_queue), key=_due_key)
    page: list[LiveMessage] = []
    next_cursor = None
    if phase == "ready" and state in (None, "ready"):
        ids = [m.message_id for m in ready]
        start = ids.index(position) + 1 if position in ids else 0
        for message in ready[start:]:
            if _matches(message, actor, tenant_id):
                page.append(_live(message, name, "ready", full=False))
                if len(page) == limit:
                    next_cursor = _cursor("ready", message.message_id)
                    break
        if next_cursor is None:
            phase, position = "delayed", None
    if next_cursor is None and phase == "delayed" and state in (None, "delayed"):
        found = [
            m
            for m in delayed
            if _matches(m, actor, tenant_id) and (position is None or _due_key(m) > list(position))
        ]
        shown = found[: limit - len(page)]
        page += [_live(m, name, "delayed", full=False) for m in shown]
        if shown and len(found) > len(shown):
            next_cursor = _cursor("delayed", _due_key(shown[-1]))
    return LivePage(page, next_cursor, len(ready), len(delayed))


def _stub_locate(name: str, message_id: str) -> tuple[LiveState, Message[Any]] | None:
    ready_queue, delayed_queue = _stub_queues(name)
    places: tuple[tuple[LiveState, Any], ...] = (
        ("ready", ready_queue),
        ("delayed", delayed_queue),
    )
    for state, queue in places:
        for message in _stub_waiting(queue):
            if message.message_id == message_id:
                return state, message
    return None


def _stub_show(
    settings: Settings, name: str, message_id: str
) -> tuple[LiveState, Message[Any]] | None:
    """Where ``message_id`` waits in ``name`` and the message, or None."""
    return _stub_locate(name, message_id)


def _stub_take(queue: Any, message_id: str) -> Message[Any] | None:
    """Remove ``message_id`` from ``queue`` (under its lock); the message, or None."""
    if queue is None:
        return None
    with queue.mutex:
        for body in list(queue.queue):
            message = _decode(body)
            if message is not None and message.message_id == message_id:
                queue.queue.remove(body)
                queue.unfinished_tasks -= 1
                if queue.unfinished_tasks <= 0:
                    queue.all_tasks_done.notify_all()
                queue.not_full.notify()
                return message
    return None


def _stub_cancel(
    settings: Settings, name: str, message_ids: Sequence[str], *, dry_run: bool
) -> list[CancelResult]:
    """:func:`gcmc_jobs.ops.live_messages.cancel_messages` on the stub broker."""
    ready_queue, delayed_queue = _stub_queues(name)
    results = []
    cancelled = []
    for message_id in message_ids:
        found = _stub_locate(name, message_id)
        if found is None:
            results.append(CancelResult(message_id, "not_found"))
            continue
        state, message = found
        if not dry_run:
            taken = _stub_take(ready_queue if state == "ready" else delayed_queue, message_id)
            if taken is None:  # a worker fetched it meanwhile
                results.append(CancelResult(message_id, "not_found"))
                continue
            cancelled.append(taken)
        status: CancelStatus = "would_cancel" if dry_run else "cancelled"
        results.append(CancelResult(message_id, status, state, message.actor_name))
    if cancelled:
        stores = current().stores
        _after_cancel(settings, stores.dedup, stores.status, cancelled)
    return results


def _stub_promote(
    settings: Settings,
    name: str,
    message_ids: Sequence[str] | None,
    *,
    actor: str | None,
    tenant_id: int | str | None,
    dry_run: bool,
) -> list[PromoteResult]:
    """:func:`gcmc_jobs.ops.live_messages.promote_messages` on the stub broker."""
    ready_queue, delayed_queue = _stub_queues(name)
    if message_ids is None:
        chosen = [
            m
            for m in sorted(_stub_waiting(delayed_queue), key=_due_key)
            if _matches(m, actor, tenant_id)
        ]
        message_ids = [m.message_id for m in chosen]
    results = []
    promoted = []
    for message_id in message_ids:
        found = _stub_locate(name, message_id)
        if found is None:
            results.append(PromoteResult(message_id, "not_found"))
            continue
        state, message = found
        if state != "delayed":
            results.append(PromoteResult(message_id, "not_delayed", message.actor_name))
            continue
        if dry_run:
            results.append(PromoteResult(message_id, "would_promote", message.actor_name))
            continue
        taken = _stub_take(delayed_queue, message_id)
        if taken is None:
            results.append(PromoteResult(message_id, "not_found"))
            continue
        ready_queue.put(_ready_copy(taken, name)[1])
        promoted.append(taken)
        results.append(PromoteResult(message_id, "promoted", message.actor_name))
    if promoted:
        record_state(settings, current().stores.status, promoted, "enqueued")
    return results

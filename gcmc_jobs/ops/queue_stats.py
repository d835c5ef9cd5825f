"""Per-queue statistics on Redis, RabbitMQ and the stub broker.

What each broker can tell, without touching a message:

============  ======================================  =====================================
 field         Redis (Dramatiq's key layout)           RabbitMQ (passive ``queue_declare``)
============  ======================================  =====================================
 ready         ``LLEN {ns}:{q}``                       ``message_count`` of ``q``
 delayed       ``HLEN {ns}:{q}.DQ.msgs`` (waiting in    ``message_count`` of ``q.DQ`` (those a
               Redis or held by a worker until eta)    worker already holds are not counted)
 in_flight     ``HLEN {ns}:{q}.msgs`` - ready           None: AMQP does not expose unacked
 dead          ``ZCARD {ns}:{q}.XQ``                   ``message_count`` of ``q.XQ``
 oldest_age    now - head message's ready time         None: AMQP cannot peek without a get
 consumers     None (see worker heartbeats)            ``consumer_count`` of ``q``
============  ======================================  =====================================

"Dead" is the broker's own dead-letter queue (Dramatiq keeps failed messages there for
7 days); gcmc-jobs' durable, replayable dead letters are the ``dead_letters`` table.
The Redis numbers are read by one Lua script, so they are one consistent snapshot.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gcmc_jobs import queue_names
from gcmc_jobs.ops.light_redis import LightRedis, RedisAddress
from gcmc_jobs.redis_keys import dead_queue_key, messages_key, paused_key, queue_key, workers_key

if TYPE_CHECKING:
    from dramatiq import Broker

    from gcmc_jobs.settings import Settings

# This module is what `gcmc-jobs queues` loads (issue 17: the command starts within 0.3 s of
# `import dramatiq`): Dramatiq, redis-py, the settings and the runtime are imported where they
# are used, not here. tests/test_imports.py checks what the command loads.

__all__ = ["QueueStats", "queue_stats", "redis_queue_stats"]

# KEYS: none; ARGV: per queue, its ready list, messages hash, delay queue's messages hash and
# dead set keys (gcmc_jobs.redis_keys). Returns, per queue:
# ready, messages (ready + in flight), delayed, dead, head message data (or false).
_STATS_LUA = """
local out = {}
for i = 1, #ARGV, 4 do
    local q, msgs = ARGV[i], ARGV[i + 1]
    local head = redis.call("lindex", q, 0)
    local data = false
    if head then data = redis.call("hget", msgs, head) end
    table.insert(out, {
        redis.call("llen", q),
        redis.call("hlen", msgs),
        redis.call("hlen", ARGV[i + 2]),
        redis.call("zcard", ARGV[i + 3]),
        data,
    })
end
return out
"""


@dataclass(frozen=True)
class QueueStats:
    """One queue's numbers; None where the broker cannot tell (see the module docstring).

    ``oldest_age_ms`` is how long the message at the head of the queue has been ready to
    run, ms (since it was sent, or since its delay ended); None when the queue is empty.
    """

    name: str
    ready: int
    delayed: int | None
    in_flight: int | None
    dead: int | None
    oldest_age_ms: int | None
    consumers: int | None = None
    paused: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The stats as plain JSON values."""
        return asdict(self)


def queue_stats(
    settings: Settings,
    queues: Sequence[str] | None = None,
    *,
    broker: Broker | None = None,
    paused: Iterable[str] | None = None,
    timeout_ms: int = 2_000,
    now_ms: int | None = None,
) -> list[QueueStats]:
    """Statistics of ``queues`` (default: :func:`known_queues`) on the configured broker.

    ``broker`` is needed only for the in-process stub broker (default: the configured
    runtime's). ``paused`` names the queues to flag as paused (default: read from
    :func:`~gcmc_jobs.ops.pauses.paused_queues`). Each network call gives up
    after ``timeout_ms`` (default 2,000 ms) and raises the client's error.
    """
    # Imported on use: `gcmc-jobs queues` loads this module and must stay light (see above).
    from gcmc_jobs.ops.known_queues import known_queues
    from gcmc_jobs.ops.pauses import paused_queues
    from gcmc_jobs.runtime import current

    names = list(queues) if queues is not None else known_queues(settings)
    paused = set(paused if paused is not None else paused_queues(settings))
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    url = settings.broker_url.get_secret_value()
    kind = settings.broker_kind
    if kind == "redis":
        stats = _redis_stats(url, settings.namespace, names, timeout_ms, now_ms)
    elif kind == "amqp":
        stats = _rabbitmq_stats(url, names, timeout_ms)
    else:
        stats = _stub_stats(broker if broker is not None else current().broker, names, now_ms)
    return [QueueStats(**{**s.as_dict(), "paused": s.name in paused}) for s in stats]


def redis_queue_stats(
    broker: RedisAddress,
    namespace: str,
    *,
    stores: RedisAddress | None = None,
    timeout_ms: int = 2_000,
    now_ms: int | None = None,
) -> list[QueueStats]:
    """:func:`queue_stats` of a Redis broker, read with
    :class:`~gcmc_jobs.ops.light_redis.LightRedis` (no redis-py, no Dramatiq, no
    :class:`~gcmc_jobs.settings.Settings`): the known queues (the package's and those of
    the registered workers), flagged paused from the pause set on ``stores`` (the stores'
    Redis; default: the broker's), in two round trips when both are one Redis.
    ``gcmc-jobs queues`` uses it when the URLs allow
    (:func:`~gcmc_jobs.ops.light_redis.parse_url`)."""
    stores = stores or broker
    with LightRedis(broker, timeout_ms=timeout_ms) as client:
        if stores == broker:
            workers, paused = client.execute(
                ["HVALS", workers_key(namespace)], ["SMEMBERS", paused_key(namespace)]
            )
        else:
            [workers] = client.execute(["HVALS", workers_key(namespace)])
            with LightRedis(stores, timeout_ms=timeout_ms) as other:
                [paused] = other.execute(["SMEMBERS", paused_key(namespace)])
        names = set(queue_names.ALL)
        for raw in workers:
            names.update(json.loads(raw).get("queues", []))
        names_list = sorted(names)
        [rows] = client.execute(["EVAL", _STATS_LUA, 0, *_stats_keys(namespace, names_list)])
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    flagged = {p.decode() for p in paused}
    return [
        QueueStats(**{**s.as_dict(), "paused": s.name in flagged})
        for s in _from_rows(names_list, rows, now_ms)
    ]


def _ready_since(data: bytes | None) -> int | None:
    if not data:
        return None
    with contextlib.suppress(Exception):
        fields = json.loads(data)  # Dramatiq's default encoder: JSON
        eta = fields["options"].get("eta")
        return max(int(fields["message_timestamp"]), int(eta or 0))
    # Another encoder (dramatiq.set_encoder): Dramatiq's own decoding.
    from dramatiq import Message

    try:
        message = Message.decode(data)
        eta = message.options.get("eta")
        return max(int(message.message_timestamp), int(eta or 0))
    except Exception:  # a body that is not a Dramatiq message: counted, but has no age
        return None


def _age(data: bytes | None, now_ms: int) -> int | None:
    since = _ready_since(data)
    return None if since is None else max(0, now_ms - since)


def _stats_keys(namespace: str, names: list[str]) -> list[str]:
    return [
        key
        for name in names
        for key in (
            queue_key(namespace, name),
            messages_key(namespace, name),
            messages_key(namespace, f"{name}.DQ"),
            dead_queue_key(namespace, name),
        )
    ]


def _redis_stats(
    url: str, namespace: str, names: list[str], timeout_ms: int, now_ms: int
) -> list[QueueStats]:
    # Imported on use: `gcmc-jobs queues` loads this module and must stay light (see above).
    from gcmc_jobs.ops.redis_client import redis_client

    keys = _stats_keys(namespace, names)
    client = redis_client(url, timeout_ms=timeout_ms)
    try:
        rows = client.eval(_STATS_LUA, 0, *keys) if names else []
    finally:
        client.close()
    return _from_rows(names, rows, now_ms)


def _from_rows(names: list[str], rows: list[Any], now_ms: int) -> list[QueueStats]:
    return [
        QueueStats(
            name=name,
            ready=int(ready),
            delayed=int(delayed),
            in_flight=max(0, int(messages) - int(ready)),
            dead=int(dead),
            oldest_age_ms=_age(head or None, now_ms),
        )
        for name, (ready, messages, delayed, dead, head) in zip(names, rows, strict=True)
    ]


def _rabbitmq_stats(url: str, names: list[str], timeout_ms: int) -> list[QueueStats]:
    # Deferred on purpose: the RabbitMQ client is loaded only for a RabbitMQ broker.
    import pika
    from pika.exceptions import ChannelClosedByBroker

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout_ms / 1000
    parameters.blocked_connection_timeout = timeout_ms / 1000
    parameters.connection_attempts = 1
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()

        def declare(queue: str) -> tuple[int, int]:
            nonlocal channel
            try:
                ok = channel.queue_declare(queue, passive=True).method
                return int(ok.message_count), int(ok.consumer_count)
            except ChannelClosedByBroker:  # 404: the queue was never declared
                channel = connection.channel()
                return 0, 0

        stats = []
        for name in names:
            ready, consumers = declare(name)
            delayed, _ = declare(f"{name}.DQ")
            dead, _ = declare(f"{name}.XQ")
            stats.append(
                QueueStats(
                    name=name,
                    ready=ready,
                    delayed=delayed,
                    in_flight=None,
                    dead=dead,
                    oldest_age_ms=None,
                    consumers=consumers,
                )
            )
        return stats
    finally:
        connection.close()


def _stub_stats(broker: Broker, names: list[str], now_ms: int) -> list[QueueStats]:
    queues: dict[str, Any] = getattr(broker, "queues", {})
    dead_letters: dict[str, list[Any]] = getattr(broker, "dead_letters_by_queue", {})
    stats = []
    for name in names:
        queue, delay_queue = queues.get(name), queues.get(f"{name}.DQ")
        ready = queue.qsize() if queue is not None else 0
        in_flight = queue.unfinished_tasks - ready if queue is not None else 0
        head = queue.queue[0] if queue is not None and ready else None
        stats.append(
            QueueStats(
                name=name,
                ready=ready,
                delayed=delay_queue.unfinished_tasks if delay_queue is not None else 0,
                in_flight=max(0, in_flight),
                dead=len(dead_letters.get(name, [])),
                oldest_age_ms=_age(head, now_ms),
            )
        )
    return stats

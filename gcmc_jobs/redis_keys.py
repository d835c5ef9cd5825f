"""Every Redis key name gcmc-jobs writes or reads, in one place.

All keys start with the deployment's namespace (``Settings.namespace``), so two deployments
can share one Redis and a test session can delete exactly its own keys
(:func:`namespace_pattern`).

=========================================  =================================================
key                                        what it holds (who writes it)
=========================================  =================================================
``{ns}:dedup:{key}``                       a dedup claim, ``p:``/``d:`` + message id
                                           (``RedisDedupStore``)
``{ns}:ratelimit:{class}:{key}:{window}``  one entity's bookings in one window
                                           (``RedisRateLimitStore``)
``{ns}:gcmc:paused``                       set of paused queue names (``RedisPauseStore``)
``{ns}:gcmc:workers``                      hash broker id -> the queues a worker consumes,
                                           its threads and figures (``WorkerRegistry``)
``{ns}:gcmc:mail_circuit``                 hash: the mail server's circuit breaker (state,
                                           failures, next probe; ``RedisCircuitStore``)
``{ns}:gcmc:provider_rate``                hash: the provider-wide token bucket (tokens,
                                           last refill, waiting; ``RedisTokenBucket``)
``{ns}:gcmc:activity:{minute}``            hash for one minute (epoch minutes): messages
                                           processed and failed, each queue's depth
                                           (``depth:{queue}``); expires after 25 h
                                           (``WorkerRegistry``, ``record_activity``)
``{ns}:status:{message id}``               hash: a message's last known state, attempts,
                                           times, last error (``RedisStatusStore``)
``{ns}:outbox:relayed:{message id}``       the outbox relay enqueued this message (written
                                           atomically with the enqueue; ``OutboxRelay``)
``{ns}:__heartbeats__``                    sorted set broker id -> last contact, ms
                                           (Dramatiq's Redis broker)
``{ns}:{queue}``                           list of ready message ids (Dramatiq)
``{ns}:{queue}.msgs``                      hash message id -> encoded message (Dramatiq)
``{ns}:{queue}.DQ``, ``.DQ.msgs``          the queue's delay queue, same layout (Dramatiq)
``{ns}:{queue}.XQ``                        sorted set of dead message ids (Dramatiq)
``{ns}:__acks__.{broker id}.{queue}``      set of message ids one worker fetched and has
                                           not acknowledged (Dramatiq)
=========================================  =================================================

The Dramatiq names are those of Dramatiq 2.2's ``dispatch.lua``; ``tests/test_dramatiq_contract.py``
checks that the installed Dramatiq still uses them.
"""

from __future__ import annotations

__all__ = [
    "acks_key",
    "activity_key",
    "alert_key",
    "dead_queue_key",
    "dedup_key",
    "heartbeats_key",
    "mail_circuit_key",
    "messages_key",
    "namespace_pattern",
    "outbox_relayed_key",
    "paused_key",
    "provider_rate_key",
    "queue_key",
    "rate_limit_key",
    "status_key",
    "workers_key",
]


def alert_key(namespace: str, name: str) -> str:
    """Operator-alert state (:mod:`gcmc_jobs.ops.alerts`): ``sent:<cause>`` (the last alert
    of a cause, expiring after the alert interval) and ``since:<condition>`` (when a
    condition was first seen)."""
    return f"{namespace}:alerts:{name}"


def dedup_key(namespace: str, key: str) -> str:
    """The string key holding ``p:<message id>`` (pending) or ``d:<message id>`` (done)."""
    return f"{namespace}:dedup:{key}"


def rate_limit_key(namespace: str, limit_class: str, key: str) -> str:
    """The prefix of one rate-limited entity's counters; the script appends ``:<window no>``."""
    return f"{namespace}:ratelimit:{limit_class}:{key}"


def paused_key(namespace: str) -> str:
    """The Redis set holding the names of the paused queues."""
    return f"{namespace}:gcmc:paused"


def mail_circuit_key(namespace: str) -> str:
    """The Redis hash of the mail server's circuit breaker, shared by every worker."""
    return f"{namespace}:gcmc:mail_circuit"


def provider_rate_key(namespace: str) -> str:
    """The Redis hash of the provider-wide send-rate token bucket, shared by every worker."""
    return f"{namespace}:gcmc:provider_rate"


def activity_key(namespace: str, minute: int) -> str:
    """The Redis hash of one minute's activity (``minute``: epoch ms // 60,000)."""
    return f"{namespace}:gcmc:activity:{minute}"


def workers_key(namespace: str) -> str:
    """The Redis hash of registered workers."""
    return f"{namespace}:gcmc:workers"


def outbox_relayed_key(namespace: str, message_id: str) -> str:
    """Set by the outbox relay in the same ``MULTI`` as the enqueue of ``message_id``: the
    relay's own dedup key, so that a relay killed before deleting the row never sends the
    message again."""
    return f"{namespace}:outbox:relayed:{message_id}"


def status_key(namespace: str, message_id: str) -> str:
    """The hash holding the status record of ``message_id`` (expires after the status TTL)."""
    return f"{namespace}:status:{message_id}"


def heartbeats_key(namespace: str) -> str:
    """Dramatiq's sorted set of worker (broker id) heartbeats, scored in ms."""
    return f"{namespace}:__heartbeats__"


def queue_key(namespace: str, queue: str) -> str:
    """Dramatiq's list of ready message ids of ``queue`` (a ``.DQ`` name for its delay
    queue)."""
    return f"{namespace}:{queue}"


def messages_key(namespace: str, queue: str) -> str:
    """Dramatiq's hash of the encoded messages of ``queue``, by message id."""
    return f"{queue_key(namespace, queue)}.msgs"


def dead_queue_key(namespace: str, queue: str) -> str:
    """Dramatiq's sorted set of ``queue``'s dead message ids."""
    return f"{queue_key(namespace, queue)}.XQ"


def acks_key(namespace: str, broker_id: str, queue: str) -> str:
    """Dramatiq's set of ``queue``'s message ids fetched, not yet acknowledged, by one
    worker (``broker_id``)."""
    return f"{namespace}:__acks__.{broker_id}.{queue}"


def namespace_pattern(namespace: str) -> str:
    """A ``SCAN MATCH`` pattern of every key of ``namespace``."""
    return f"{namespace}*"

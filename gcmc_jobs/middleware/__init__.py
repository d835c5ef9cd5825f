"""Dramatiq middleware of gcmc-jobs, each usable by any Dramatiq application.

One middleware per module, named for what it does:

=========================  =====================================================================
module                     middleware
=========================  =====================================================================
``dead_letters``           :class:`DeadLetters`: a message that failed for good is written to a
                           :class:`DeadLetterStore` (SQL ``dead_letters`` table, or a stub)
``deduplication``          :class:`Deduplication`: one message per dedup key per TTL
``rate_limits``            :class:`RateLimits`: per-key (per-recipient) limit per window,
                           cluster-wide; over the limit a message is deferred, not failed
``structured_logging``     :class:`StructuredLogging`: one structlog event per message state
``metrics``                :class:`Metrics`: Prometheus counters and histograms
``pause``                  :class:`Pause`: hold back the messages of paused queues
``mail_circuit``           :class:`MailCircuit`: the mail server's circuit breaker: holds email
                           while the server fails, probes it, resumes by itself
``provider_rate``          :class:`ProviderRate`: provider-wide emails per second, cluster-wide;
                           over it email is deferred, critical email keeps a reserved share
``worker_registry``        :class:`WorkerRegistry`: a Redis worker records the queues it consumes
                           and its figures
``worker_stats``           :class:`WorkerStats`: a worker process's figures, kept in process
``outbox_relay``           :class:`OutboxRelay`: moves committed outbox rows to the broker
``status_tracking``        :class:`StatusTracking`: records each message's state changes
                           (:func:`gcmc_jobs.status` reads them)
``selection``              the ``wants_<hook>`` protocol: a middleware tells gcmc-jobs'
                           brokers which shapes of message a per-message hook can act on
                           (:class:`~gcmc_jobs.middleware.selection.MessageShape`,
                           :class:`~gcmc_jobs.middleware.selection.SelectionInput`)
``stores``                 the Redis/SQL/stub backends of deduplication, rate limits, dead
                           letters, pauses and statuses (every Redis key name:
                           :mod:`gcmc_jobs.redis_keys`)
=========================  =====================================================================

The contract: options the middleware read
-----------------------------------------

Precedence everywhere: **message option > actor option > middleware default**.

Message options (``actor.send_with_options(..., <option>=...)`` or set by a custom actor
class in ``message_with_options``); they travel in ``message.options``:

=====================  ==========  ===============================================================
option                 type        meaning
=====================  ==========  ===============================================================
``dedup_key``          str         the message's deduplication key (already resolved). ``None``
                                   or absent: the actor option decides; no key anywhere: no
                                   deduplication.
``dedup_ttl``          int, ms     how long the key stays taken after the message succeeded
                                   (default ``Deduplication(ttl=...)``, 24 h in gcmc-jobs).
``correlation_id``     str         ties log events of one business operation together. Absent
                                   at enqueue: taken from the sender's structlog contextvars
                                   (``correlation_id``), else a new random 32-hex-digit id.
``tenant_id``          int         logged on every event; also read from ``kwargs["tenant_id"]``
                                   when the option is absent.
``rate_limit_key``     str         the rate-limited entity, e.g. the lowercased recipient
                                   address. Absent everywhere: not rate limited.
``rate_limit_class``   str         ``"default"`` or ``"security"`` (security mail has its own,
                                   separate limit and counter).
=====================  ==========  ===============================================================

Actor options (declared by the middleware, so ``@actor(dedup_key=...)`` is accepted):

=====================  ===========================  =============================================
option                 type                         meaning
=====================  ===========================  =============================================
``dedup_key``          str template or callable     ``"reset:{user_id}"`` is ``str.format``-ed
                                                    over the message's kwargs (a missing kwarg
                                                    raises ``KeyTemplateError``, a KeyError,
                                                    at send time); a
                                                    callable gets the ``Message`` and returns a
                                                    key or ``None`` (no deduplication).
``dedup_ttl``          int, ms                      as the message option.
``rate_limit_key``     str template or callable     as ``dedup_key``.
``rate_limit_class``   str                          as the message option.
=====================  ===========================  =============================================

Options the middleware WRITE (internal; replay strips them, never set them yourself):
``retries``, ``traceback``, ``requeue_timestamp`` (Dramatiq's ``Retries``);
``rate_limit_window`` (the window slot a deferred message reserved), ``rate_limit_deferred_ms``
(total deferral so far), ``rate_limit_deferrals`` (how many times); ``dedup_claimed`` (the
key was claimed at enqueue); ``logged_delayed`` (a delayed message was logged when sent);
``dead_letter_reason`` (why a middleware failed the message, e.g.
``"rate_limit_max_deferral"``). A replay sets ``replay_of`` (the dead message's id).

Duplicates at enqueue time
--------------------------

``Deduplication.before_enqueue`` claims the key (Redis ``SET NX PX``, owner = the message id)
and, when another message owns it, raises :class:`DuplicateMessage` (a Dramatiq
``MiddlewareError``): ``actor.send(...)`` raises it, carrying ``.message`` and ``.key``, and
nothing is enqueued. It is the only way a Dramatiq middleware can stop an enqueue, and a loud
error is what a plain Dramatiq user expects from a uniqueness violation (like a database's
unique constraint). Callers wanting "send unless already sent" catch it, or declare their actor
with ``actor_class=DeduplicatedActor``, whose ``send``/``send_with_options`` return the
(not enqueued) message instead of raising. A process-time check (same Lua script, owner = the
message id, so the original never skips itself) catches what slips through (expired claims,
messages enqueued by another broker).

Bulk enqueue: ``Deduplication.claim_many(messages) -> list[bool]`` claims every key in ONE Lua
call and remembers the winners in-process, so the following per-message ``before_enqueue`` of
those messages costs no round trip; enqueue only the messages whose flag is ``True``.

Other hooks for other engineers
-------------------------------

- ``gcmc_jobs.middleware.metrics.email_sent(kind, status)`` counts an email;
  ``gcmc_jobs.middleware.metrics.REGISTRY`` is the ``CollectorRegistry`` to expose at
  ``/metrics``.
- ``gcmc_jobs.brokers.build_middleware`` holds a documented slot for ``Pause`` before
  ``Deduplication``/``RateLimits``.
- ``gcmc_jobs.ops.dead_letters`` (list/show/replay/purge) returns plain dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcmc_jobs._lazy import exports

if TYPE_CHECKING:
    from gcmc_jobs.errors import DuplicateMessage, RateLimitDeferralFailed
    from gcmc_jobs.middleware.dead_letters import DeadLetters
    from gcmc_jobs.middleware.deduplication import DeduplicatedActor, Deduplication
    from gcmc_jobs.middleware.mail_circuit import MailCircuit
    from gcmc_jobs.middleware.metrics import Metrics
    from gcmc_jobs.middleware.outbox_relay import OutboxRelay
    from gcmc_jobs.middleware.pause import Pause
    from gcmc_jobs.middleware.provider_rate import ProviderRate
    from gcmc_jobs.middleware.rate_limits import RateLimits
    from gcmc_jobs.middleware.status_tracking import StatusTracking
    from gcmc_jobs.middleware.stores import (
        ClaimResult,
        DeadLetterFilter,
        DeadLetterRecord,
        DeadLetterStore,
        DedupStore,
        OutboxRow,
        OutboxStore,
        PauseStore,
        RateLimitStore,
        RedisDedupStore,
        RedisPauseStore,
        RedisRateLimitStore,
        RedisStatusStore,
        SqlDeadLetterStore,
        SqlOutboxStore,
        StatusStore,
        Stores,
        StubDeadLetterStore,
        StubDedupStore,
        StubOutboxStore,
        StubPauseStore,
        StubRateLimitStore,
        StubStatusStore,
    )
    from gcmc_jobs.middleware.structured_logging import StructuredLogging
    from gcmc_jobs.middleware.worker_registry import WorkerRegistry
    from gcmc_jobs.middleware.worker_stats import WorkerStats

__all__ = [
    # Stores
    "ClaimResult",
    "DeadLetterFilter",
    "DeadLetterRecord",
    "DeadLetterStore",
    # Middleware
    "DeadLetters",
    "DedupStore",
    # Actor class and errors
    "DeduplicatedActor",
    "Deduplication",
    "DuplicateMessage",
    "MailCircuit",
    "Metrics",
    "OutboxRelay",
    "OutboxRow",
    "OutboxStore",
    "Pause",
    "PauseStore",
    "ProviderRate",
    "RateLimitDeferralFailed",
    "RateLimitStore",
    "RateLimits",
    "RedisDedupStore",
    "RedisPauseStore",
    "RedisRateLimitStore",
    "RedisStatusStore",
    "SqlDeadLetterStore",
    "SqlOutboxStore",
    "StatusStore",
    "StatusTracking",
    "Stores",
    "StructuredLogging",
    "StubDeadLetterStore",
    "StubDedupStore",
    "StubOutboxStore",
    "StubPauseStore",
    "StubRateLimitStore",
    "StubStatusStore",
    "WorkerRegistry",
    "WorkerStats",
]

# Each public name and the module that defines it, imported on first use
# (gcmc_jobs._lazy): importing this package loads none of them.
__getattr__, __dir__ = exports(
    __name__,
    {
        "DuplicateMessage": "gcmc_jobs.errors",
        "RateLimitDeferralFailed": "gcmc_jobs.errors",
        "DeadLetters": "gcmc_jobs.middleware.dead_letters",
        "DeduplicatedActor": "gcmc_jobs.middleware.deduplication",
        "Deduplication": "gcmc_jobs.middleware.deduplication",
        "Metrics": "gcmc_jobs.middleware.metrics",
        "OutboxRelay": "gcmc_jobs.middleware.outbox_relay",
        "Pause": "gcmc_jobs.middleware.pause",
        "MailCircuit": "gcmc_jobs.middleware.mail_circuit",
        "ProviderRate": "gcmc_jobs.middleware.provider_rate",
        "RateLimits": "gcmc_jobs.middleware.rate_limits",
        "ClaimResult": "gcmc_jobs.middleware.stores",
        "DeadLetterFilter": "gcmc_jobs.middleware.stores",
        "DeadLetterRecord": "gcmc_jobs.middleware.stores",
        "DeadLetterStore": "gcmc_jobs.middleware.stores",
        "DedupStore": "gcmc_jobs.middleware.stores",
        "OutboxRow": "gcmc_jobs.middleware.stores",
        "OutboxStore": "gcmc_jobs.middleware.stores",
        "PauseStore": "gcmc_jobs.middleware.stores",
        "RateLimitStore": "gcmc_jobs.middleware.stores",
        "RedisDedupStore": "gcmc_jobs.middleware.stores",
        "RedisPauseStore": "gcmc_jobs.middleware.stores",
        "RedisRateLimitStore": "gcmc_jobs.middleware.stores",
        "SqlDeadLetterStore": "gcmc_jobs.middleware.stores",
        "SqlOutboxStore": "gcmc_jobs.middleware.stores",
        "Stores": "gcmc_jobs.middleware.stores",
        "StubDeadLetterStore": "gcmc_jobs.middleware.stores",
        "StubDedupStore": "gcmc_jobs.middleware.stores",
        "StubOutboxStore": "gcmc_jobs.middleware.stores",
        "StubPauseStore": "gcmc_jobs.middleware.stores",
        "StubRateLimitStore": "gcmc_jobs.middleware.stores",
        "RedisStatusStore": "gcmc_jobs.middleware.stores",
        "StatusStore": "gcmc_jobs.middleware.stores",
        "StubStatusStore": "gcmc_jobs.middleware.stores",
        "StatusTracking": "gcmc_jobs.middleware.status_tracking",
        "StructuredLogging": "gcmc_jobs.middleware.structured_logging",
        "WorkerRegistry": "gcmc_jobs.middleware.worker_registry",
        "WorkerStats": "gcmc_jobs.middleware.worker_stats",
    },
)

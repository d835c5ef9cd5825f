"""Deduplication: at most one message per dedup key runs within the key's TTL.

The key comes from the ``dedup_key`` message option, else the actor option (a ``str.format``
template over the kwargs, or a callable(message) -> str | None). At enqueue the key is
claimed for the message id; a duplicate ``send()`` raises
:class:`~gcmc_jobs.errors.DuplicateMessage` and nothing is enqueued (see
:class:`DeduplicatedActor` for a ``send`` that returns instead). A message that reaches a
worker without an enqueue-time claim (enqueued by a broker without this middleware, or after
its claim expired) is checked again before it runs: a duplicate is acknowledged, logged
(``skipped_duplicate``) and counted, never run. After success the key is kept ``done`` for
its TTL; when the message fails for good the key is released so a later send can run; a
retry keeps it.

Cost: a message claimed at enqueue is not checked again by the worker (its claim already
proves it is the one), and keys are marked done in batches, so a keyed message costs the
worker a fraction of a round trip.
The flip side: a message Dramatiq redelivers because its worker died mid-run runs again, as
anywhere in Dramatiq (at-least-once): actors stay idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import metrics
from gcmc_jobs.middleware._batching import Batcher
from gcmc_jobs.middleware._context import message_fields, option, resolve_key
from gcmc_jobs.middleware.selection import MessageShape
from gcmc_jobs.middleware.stores.dedup import ClaimResult, DedupStore

__all__ = ["DeduplicatedActor", "Deduplication"]

logger = get_logger("gcmc_jobs.middleware.deduplication")

#: Set on a message whose key was claimed at enqueue: its worker need not check again.
CLAIMED = "dedup_claimed"
#: The message option holding a message's resolved dedup key: all a worker's hooks read.
KEY_OPTION = "dedup_key"


class Deduplication(Middleware):
    """Skip messages whose dedup key another message holds.

    Parameters:
      store: where keys live (:class:`~.stores.dedup.RedisDedupStore` across processes,
        :class:`~.stores.dedup.StubDedupStore` in one process).
      ttl: how long a key stays taken after its message succeeded, ms (24 h); also the
        lifetime of a pending claim. Overridden by the ``dedup_ttl`` actor/message option.
      complete_batch_ms: succeeded keys are marked done in batches, one round trip per batch
        gathered over this many ms (20), from a background thread; 0 marks each at once.
        Safe to lose (a worker killed before its batch is written): a pending key blocks
        duplicates exactly like a done one, it only expires ``ttl`` after the enqueue.
    """

    def __init__(
        self, store: DedupStore, *, ttl: int = 86_400_000, complete_batch_ms: int = 20
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.complete_batch_ms = complete_batch_ms
        self._preclaimed = threading.local()
        self._completions: Batcher[tuple[str, str, int]] = Batcher(
            store.complete_many, wait_ms=complete_batch_ms
        )

    @property
    def actor_options(self) -> set[str]:
        return {"dedup_key", "dedup_ttl"}

    def _key(self, broker: dramatiq.Broker, message: Any) -> str | None:
        key = resolve_key(broker, message, "dedup_key")
        if key is not None:
            message.options["dedup_key"] = key
        return key

    def _ttl(self, broker: dramatiq.Broker, message: Any) -> int:
        return int(option(broker, message, "dedup_ttl", self.ttl))

    def claim_many(self, broker: dramatiq.Broker, messages: Sequence[Any]) -> list[bool]:
        """Claim the keys of ``messages`` in one round trip, before a bulk enqueue.

        Returns, per message, whether to enqueue it (no key, or the key is now its own).
        The following ``before_enqueue`` of each winner, on this thread, costs no round trip.
        """
        claims: list[tuple[str, str, int]] = []
        keyed: list[int] = []
        for index, message in enumerate(messages):
            key = self._key(broker, message)
            if key is not None:
                claims.append((key, message.message_id, self._ttl(broker, message)))
                keyed.append(index)
        verdicts = [True] * len(messages)
        results = self.store.claim_many(claims)
        preclaimed = self._preclaimed_ids()
        for index, result in zip(keyed, results, strict=True):
            won = result is ClaimResult.CLAIMED
            verdicts[index] = won
            if won:
                preclaimed.add(messages[index].message_id)
            else:
                self._skipped(messages[index], at="enqueue")
        return verdicts

    def release_unsent(self, broker: dramatiq.Broker, messages: Sequence[Any]) -> None:
        """Release the keys ``messages`` claimed at enqueue when they were never written
        (the broker failed): otherwise each key would stay claimed for its TTL and every
        later send of the same key, such as the next tick's, would be dropped as a
        duplicate. Each release is owner-checked, so a key another message holds stays."""
        preclaimed = self._preclaimed_ids()
        for message in messages:
            preclaimed.discard(message.message_id)
            key = message.options.get("dedup_key")
            if key is not None:
                self.store.release(key, message.message_id)

    def _preclaimed_ids(self) -> set[str]:
        ids: set[str] | None = getattr(self._preclaimed, "ids", None)
        if ids is None:
            ids = self._preclaimed.ids = set()
        return ids

    def _skipped(self, message: Any, *, at: str) -> None:
        logger.info(
            "skipped_duplicate",
            at=at,
            dedup_key=message.options.get("dedup_key"),
            **message_fields(message),
        )
        metrics.duplicate_skipped(message.actor_name)

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        if message.options.get(CLAIMED):
            return  # a retry or a deferral of a message that holds its key
        key = self._key(broker, message)
        if key is None:
            return
        preclaimed = self._preclaimed_ids()
        if message.message_id in preclaimed:
            preclaimed.discard(message.message_id)
        elif self.store.claim(key, message.message_id, self._ttl(broker, message)) is not (
            ClaimResult.CLAIMED
        ):
            self._skipped(message, at="enqueue")
            raise DuplicateMessage(message, key)
        message.options[CLAIMED] = True

    def before_enqueue_many(
        self, broker: dramatiq.Broker, messages: Sequence[Any], delay: int | None
    ) -> list[Any]:
        """A bulk enqueue's chunk: a message whose key :meth:`claim_many` took passes with no
        round trip; any other goes through :meth:`before_enqueue`. Returns the messages that
        go on (a duplicate is left out, logged and counted as in :meth:`before_enqueue`)."""
        preclaimed = self._preclaimed_ids()
        kept: list[Any] = []
        for message in messages:
            options = message.options
            if not options.get(CLAIMED):
                if message.message_id in preclaimed:
                    preclaimed.discard(message.message_id)
                    options[CLAIMED] = True
                else:
                    try:
                        self.before_enqueue(broker, message, delay)
                    except DuplicateMessage:
                        continue
            kept.append(message)
        return kept

    def wants_before_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """False for a message without a ``dedup_key`` option (an actor's key is resolved
        into that option at enqueue: the worker's hooks read nothing else)."""
        return KEY_OPTION in shape.option_keys

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        key = message.options.get(KEY_OPTION)
        if key is None or message.options.get(CLAIMED):
            return
        result = self.store.claim(key, message.message_id, self._ttl(broker, message))
        if result is not ClaimResult.CLAIMED:
            self._skipped(message, at="process")
            raise SkipMessage(f"duplicate of dedup key {key!r}")
        message.options[CLAIMED] = True

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        key = message.options.get(KEY_OPTION)
        if key is None or exception is not None:
            return
        completion = (key, message.message_id, self._ttl(broker, message))
        if self.complete_batch_ms > 0:
            self._completions.put(completion)
        else:
            self.store.complete(*completion)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._completions.close()

    def wants_after_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """True only after a success of a message with a ``dedup_key`` option."""
        return not shape.failed and KEY_OPTION in shape.option_keys

    wants_after_nack = wants_before_process_message

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        key = message.options.get(KEY_OPTION)
        if key is not None and message.options.get(CLAIMED):
            self.store.release(key, message.message_id)


class DeduplicatedActor(dramatiq.Actor[Any, Any]):
    """An actor class whose ``send``/``send_with_options`` return the message, not enqueued,
    instead of raising :class:`~gcmc_jobs.errors.DuplicateMessage` ("send unless already
    sent"). Use with ``@dramatiq.actor(actor_class=DeduplicatedActor, ...)``."""

    def send_with_options(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        delay: Any = None,
        **options: Any,
    ) -> dramatiq.Message[Any]:
        try:
            return super().send_with_options(args=args, kwargs=kwargs, delay=delay, **options)
        except DuplicateMessage as exc:
            return exc.message  # type: ignore[no-any-return]

"""``MailCircuit``: a circuit breaker for the mail server, shared by every worker.

During a mail server outage every email used to burn its retries (eight over half an hour
for bulk mail) and land in the dead letters. With this middleware on the email queues:

1. **Trip.** Each attempt that ends in :class:`~gcmc_jobs.errors.TransientDeliveryError`
   (connection refused or lost, timeout, a 4xx reply: the transport has already tried a few
   times within the attempt) counts one failure; ``threshold`` failures in a row open the
   breaker, cluster-wide (the state is in Redis:
   :class:`~gcmc_jobs.middleware.stores.mail_circuit.RedisCircuitStore`). A delivered email
   ends the run.
2. **Hold.** While open, a message picked up from an email queue is put back with a delay
   (``hold_ms``; ``critical_hold_ms`` for the critical queue) and skipped: not an attempt, so
   no retry is consumed, nothing is dead-lettered, and its ``email_log`` row is untouched.
   The copy keeps the message id (its dedup claim stays its own), like a paused queue's.
3. **Probe.** When the probe is due, the one worker that claims it (an atomic step in Redis)
   asks the server whether it takes mail (``probe``: the runtime wires
   ``Transport.probe``, which for SMTP connects, greets and says ``NOOP``), not by sending a
   real email, so a probe never costs a message an attempt. Each probe that fails doubles
   the wait before the next (``probe_min_ms`` to ``probe_max_ms``).
4. **Half open, critical first.** When a probe succeeds the breaker is half open: messages
   of the critical queue (password resets) run at once, the others stay held for
   ``half_open_ms`` more; the first email delivered after that closes the breaker and every
   queue flows again. A failure while half open opens it again.

Cost on the hot path: nothing on other queues; on email queues, a look at a state cached
per process (one Redis read per ``refresh_ms`` per process), and a write only on a failure,
on the first success after one, and on probes.

Place it after ``Pause`` and before ``Deduplication``/``ProviderRate``/``RateLimits``, so a
held message takes no dedup key, no provider token and no rate-limit slot.

Metrics (on :data:`gcmc_jobs.middleware.metrics.REGISTRY`): ``gcmc_jobs_mail_circuit_state``
(0 closed, 1 half open, 2 open, as this process last saw it),
``gcmc_jobs_mail_circuit_held_total{queue}``, ``gcmc_jobs_mail_circuit_probes_total{result}``,
``gcmc_jobs_mail_circuit_opened_total``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage
from prometheus_client import Counter, Gauge

from gcmc_jobs import queue_names
from gcmc_jobs.errors import TransientDeliveryError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context
from gcmc_jobs.middleware._context import message_fields
from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.middleware.selection import MessageShape, SelectionInput
from gcmc_jobs.middleware.stores.mail_circuit import CircuitState, CircuitStore

__all__ = ["STATE_VALUES", "MailCircuit"]

logger = get_logger("gcmc_jobs.middleware.mail_circuit")

#: The value of ``gcmc_jobs_mail_circuit_state`` for each state.
STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}

CIRCUIT_STATE = Gauge(
    "gcmc_jobs_mail_circuit_state",
    "The mail server's circuit breaker as this process last saw it: 0 closed, 1 half open, "
    "2 open (email held).",
    registry=REGISTRY,
)
HELD = Counter(
    "gcmc_jobs_mail_circuit_held",
    "Email messages put back because the mail server's circuit breaker was open.",
    ["queue"],
    registry=REGISTRY,
)
PROBES = Counter(
    "gcmc_jobs_mail_circuit_probes",
    "Probes of the mail server made by this process, by result (ok, failed).",
    ["result"],
    registry=REGISTRY,
)
OPENED = Counter(
    "gcmc_jobs_mail_circuit_opened",
    "Times a delivery failure seen by this process opened the mail circuit breaker.",
    registry=REGISTRY,
)


class MailCircuit(Middleware):
    """Hold email while the mail server is down; probe it; resume by itself.

    Parameters:
      store: the shared state (:class:`~.stores.mail_circuit.RedisCircuitStore`).
      enabled: False makes the middleware do nothing (every failure goes to ``Retries``).
      threshold: delivery failures in a row that open the breaker (5).
      probe_min_ms, probe_max_ms: the wait before the first probe, and the most it doubles
        to (5,000 and 60,000).
      hold_ms: how long a held email waits before it is looked at again (10,000).
      critical_hold_ms: the same for the critical queues (1,000): password resets are back
        first once the server answers.
      half_open_ms: after a successful probe, how long non-critical email stays held while
        critical email goes first (5,000); the first delivery after it closes the breaker.
      refresh_ms: how long a process trusts its cached copy of the state (1,000).
      queues: the queues it guards (both email queues); critical_queues: those let through
        first (``gcmc_email_critical``).
      probe: asks the mail server whether it takes mail, raising when it does not
        (``Runtime`` sets it to ``runtime.email_transport.probe``); None: the breaker turns
        half open when the probe is due and the first messages are the probe.
      clock: the time in seconds (``time.time``); tests pass a fake one.

    On gcmc-jobs' brokers its hooks are not called for messages of other queues, nor when
    ``enabled`` is false (:meth:`wants_before_process_message`); assigning ``enabled`` or
    ``queues`` is seen at once.
    """

    enabled = SelectionInput[bool]()
    queues = SelectionInput[frozenset[str]]()

    def __init__(
        self,
        store: CircuitStore,
        *,
        enabled: bool = True,
        threshold: int = 5,
        probe_min_ms: int = 5_000,
        probe_max_ms: int = 60_000,
        hold_ms: int = 10_000,
        critical_hold_ms: int = 1_000,
        half_open_ms: int = 5_000,
        refresh_ms: int = 1_000,
        queues: Iterable[str] = (queue_names.EMAIL, queue_names.EMAIL_CRITICAL),
        critical_queues: Iterable[str] = (queue_names.EMAIL_CRITICAL,),
        probe: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.enabled = enabled
        self.threshold = threshold
        self.probe_min_ms = probe_min_ms
        self.probe_max_ms = max(probe_min_ms, probe_max_ms)
        self.hold_ms = hold_ms
        self.critical_hold_ms = critical_hold_ms
        self.half_open_ms = half_open_ms
        self.refresh_ms = refresh_ms
        self.queues = frozenset(queues)
        self.critical_queues = frozenset(critical_queues)
        self.probe = probe
        self.clock = clock
        self._state = CircuitState()
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    # -- the state ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _seen(self, state: CircuitState) -> CircuitState:
        """Remember ``state`` as the latest known (fresh for ``refresh_ms``)."""
        with self._lock:
            before = self._state.state
            self._state = state
            self._fetched_at = self.clock()
        if before != state.state:
            CIRCUIT_STATE.set(STATE_VALUES[state.state])
            logger.warning(
                "mail_circuit_" + state.state,
                failures=state.failures,
                next_probe_ms=state.next_probe_ms,
                last_error=state.last_error,
            )
        return state

    def current(self) -> CircuitState:
        """The state, read from the store at most once per ``refresh_ms`` (the last known
        one, logged, when the store cannot be read)."""
        with self._lock:
            fetched, state = self._fetched_at, self._state
        if fetched is not None and (self.clock() - fetched) * 1000 < self.refresh_ms:
            return state
        try:
            return self._seen(self.store.state())
        except Exception as exc:
            logger.error("mail_circuit_unreadable", error=repr(exc))
            with self._lock:
                self._fetched_at = self.clock()
            return state

    def _probe_now(self, now_ms: int) -> CircuitState:
        """Probe the server if this process wins the claim; the state after."""
        won, state = self.store.claim_probe(now_ms=now_ms, max_backoff_ms=self.probe_max_ms)
        if not won:
            return self._seen(state)
        try:
            if self.probe is not None:
                self.probe()
        except Exception as exc:
            PROBES.labels(result="failed").inc()
            error = f"{type(exc).__name__}: {exc}"
            logger.info("mail_circuit_probe_failed", error=error, next_probe_ms=state.next_probe_ms)
            return self._seen(self.store.probe_failed(error=error))
        PROBES.labels(result="ok").inc()
        return self._seen(self.store.probe_succeeded(now_ms=self._now_ms()))

    # -- the hooks ---------------------------------------------------------------------------

    def _guards(self, queue_name: str) -> bool:
        """Whether the breaker is on and guards ``queue_name``: its hooks do nothing else."""
        return self.enabled and queue_name in self.queues

    def wants_before_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """False off the guarded queues, or when the breaker is off."""
        return self._guards(shape.queue_name)

    wants_after_process_message = wants_before_process_message

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if not self._guards(message.queue_name):
            return
        state = self.current()
        if state.state == "closed":
            return
        now = self._now_ms()
        critical = message.queue_name in self.critical_queues
        if state.state == "open" and now >= (state.next_probe_ms or 0):
            try:
                state = self._probe_now(now)
            except Exception as exc:  # the store is unreachable: hold, try again later
                logger.error("mail_circuit_probe_claim_failed", error=repr(exc))
        if state.state == "closed":
            return
        if state.state == "half_open" and (
            critical or now - (state.half_open_at_ms or now) >= self.half_open_ms
        ):
            return
        self._hold(broker, message, self.critical_hold_ms if critical else self.hold_ms)

    def _hold(self, broker: dramatiq.Broker, message: Any, delay: int) -> None:
        # Enqueued before the original is acknowledged: a crash in between runs it twice
        # (the email_log claim then sends it once), never zero times. An enqueue that fails
        # raises here, and Retries retries the message like any failed attempt.
        token = _context.REENQUEUE.set("mail_circuit_open")
        try:
            broker.enqueue(message.copy(), delay=delay)
        finally:
            _context.REENQUEUE.reset(token)
        HELD.labels(queue=message.queue_name).inc()
        logger.debug("mail_circuit_held", delay_ms=delay, **message_fields(message))
        raise SkipMessage("the mail server's circuit breaker is open")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not self._guards(message.queue_name):
            return
        try:
            if exception is None:
                known, now = self._state, self._now_ms()
                if (
                    known.state == "half_open"
                    and now - (known.half_open_at_ms or now) < self.half_open_ms
                ):
                    return  # critical mail's turn: the first success after it closes
                if known.state != "closed" or known.failures > 0:
                    self._seen(self.store.record_success(now_ms=now))
            elif isinstance(exception, TransientDeliveryError):
                before = self._state.state
                state = self._seen(
                    self.store.record_failure(
                        now_ms=self._now_ms(),
                        threshold=self.threshold,
                        min_backoff_ms=self.probe_min_ms,
                        max_backoff_ms=self.probe_max_ms,
                        error=f"{type(exception).__name__}: {exception}",
                    )
                )
                if before != "open" and state.state == "open":
                    OPENED.inc()
        except Exception as exc:  # never turn the message's own outcome into another error
            logger.error("mail_circuit_unwritable", error=repr(exc), **message_fields(message))

"""Joins that end: waiting for a stub broker's queues and a worker with a bound, and failing
with what is still pending instead of hanging.

``StubBroker.join`` and ``Worker.join`` wait forever by default; a message that keeps
failing (and retrying), or one no worker consumes, turns a test into a silent hang. The
``gcmc_broker`` and ``gcmc_worker`` fixtures give their ``join`` the test policy's bound
(:func:`bounded_broker_join`, :func:`bounded_worker_join`), and ``gcmc_join`` (:func:`join_all`)
waits for every queue and the worker at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.common import dq_name
from dramatiq.errors import QueueJoinTimeout

__all__ = ["JoinTimeout", "bounded_broker_join", "bounded_worker_join", "join_all", "pending"]


class JoinTimeout(QueueJoinTimeout, AssertionError):
    """A join ran out of time; its message lists the messages still pending.

    A :class:`dramatiq.errors.QueueJoinTimeout` (what ``StubBroker.join`` raises) and an
    ``AssertionError`` (so pytest reports a failed test, not an error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]


def _describe(encoded: bytes) -> str:
    try:
        message = dramatiq.Message.decode(encoded)
    except Exception:  # not a Dramatiq message: say so rather than fail the report
        return f"<undecodable {len(encoded)} bytes>"
    call = ", ".join(
        [repr(a) for a in message.args] + [f"{k}={v!r}" for k, v in message.kwargs.items()]
    )
    if len(call) > 120:
        call = call[:117] + "..."
    retries = message.options.get("retries")
    extra = f", retries={retries}" if retries else ""
    return f"{message.actor_name}({call}) id={message.message_id}{extra}"


def pending(broker: dramatiq.Broker) -> list[str]:
    """One line per stub-broker queue that still has work: its waiting messages (actor,
    arguments, id) and how many are running or held by a worker."""
    lines: list[str] = []
    for name, queue in sorted(getattr(broker, "queues", {}).items()):
        waiting = list(queue.queue)
        held = queue.unfinished_tasks - len(waiting)
        if not waiting and held <= 0:
            continue
        kind = "delayed (retries, deferrals)" if name.endswith(".DQ") else "waiting"
        described = "; ".join(_describe(m) for m in waiting[:10])
        more = f"; and {len(waiting) - 10} more" if len(waiting) > 10 else ""
        lines.append(
            f"{name}: {len(waiting)} {kind}, {max(held, 0)} running or held by a worker"
            + (f": {described}{more}" if waiting else "")
        )
    return lines


def _timeout_error(broker: dramatiq.Broker, what: str, timeout_ms: int) -> JoinTimeout:
    lines = pending(broker)
    queues = getattr(broker, "queues", {})
    hint = ""
    if lines and all(
        queue.unfinished_tasks == queue.qsize() for queue in queues.values()
    ):  # something waits and nothing runs
        hint = "\nnothing is running them: is a worker started (the gcmc_worker fixture)?"
    report = "\n  ".join(lines) if lines else "(no message pending)"
    return JoinTimeout(f"{what} did not finish within {timeout_ms} ms; pending:\n  {report}{hint}")


def bounded_broker_join(
    broker: dramatiq.Broker, join: Callable[..., None], timeout_ms: int
) -> Callable[..., None]:
    """``broker.join`` (``join``, the stub broker's own) with ``timeout=timeout_ms`` unless
    the caller gives one, raising :class:`JoinTimeout` with the pending messages."""

    def bounded(
        queue_name: str, *, timeout: int | None = None, fail_fast: bool | None = None
    ) -> None:
        bound = timeout if timeout is not None else timeout_ms
        try:
            join(queue_name, timeout=bound, fail_fast=fail_fast)
        except JoinTimeout:
            raise
        except QueueJoinTimeout:
            raise _timeout_error(broker, f"join of queue {queue_name!r}", bound) from None

    return bounded


def bounded_worker_join(
    worker: dramatiq.Worker, join: Callable[[], None], timeout_ms: int
) -> Callable[..., None]:
    """``worker.join`` (``join``, the worker's own) bounded by ``timeout_ms`` (or the
    ``timeout`` given, ms), raising :class:`JoinTimeout` with the pending messages."""

    def bounded(*, timeout: int | None = None) -> None:
        bound = timeout if timeout is not None else timeout_ms
        # Worker.join takes no timeout: wait for it in a thread (left behind, daemon, if
        # the bound is hit: the test fails then and the worker is stopped after it).
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                join()
            except BaseException as exc:  # re-raised in the caller
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="gcmc-worker-join", daemon=True).start()
        if not done.wait(bound / 1000):
            raise _timeout_error(worker.broker, "join of the worker", bound)
        if failure:
            raise failure[0]

    return bounded


def join_all(
    broker: dramatiq.Broker,
    worker: dramatiq.Worker | None = None,
    *,
    timeout_ms: int,
    fail_fast: bool = True,
) -> None:
    """Wait until every declared queue of the stub ``broker`` (delayed messages included)
    is empty and ``worker`` idle, within ``timeout_ms`` in all; messages that send others
    are followed. ``fail_fast`` (default True) re-raises the error of a message that failed
    for good, as ``StubBroker.join`` does; pass False to assert on dead letters instead.
    Raises :class:`JoinTimeout` listing what is still pending."""
    stub: Any = broker  # a StubBroker: join takes fail_fast
    deadline = time.monotonic() + timeout_ms / 1000

    def remaining() -> int:
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise _timeout_error(broker, "gcmc_join()", timeout_ms)
        return left

    while True:
        for queue_name in sorted(broker.get_declared_queues()):
            try:
                stub.join(queue_name, timeout=remaining(), fail_fast=fail_fast)
            except JoinTimeout:
                raise
            except QueueJoinTimeout:
                raise _timeout_error(broker, "gcmc_join()", timeout_ms) from None
        if worker is not None:
            bounded_worker_join(worker, type(worker).join.__get__(worker), remaining())()
        queues = broker.queues
        if all(
            queues[name].unfinished_tasks == 0 and queues[dq_name(name)].unfinished_tasks == 0
            for name in broker.get_declared_queues()
        ):
            return

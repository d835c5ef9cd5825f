"""Live messages on the in-process stub broker (tests, the demo): the same answers as on
Redis, read from the stub broker's queues of the configured runtime.

The stub broker keeps each queue as a ``queue.Queue`` of encoded messages (``<queue>.DQ``
for the delayed ones); a worker thread takes a message off it when it fetches it, so a
message is found here only while it waits in its queue (a fetched one, ready or delayed,
is ``not_found``, never ``in_flight``). Changes are made under the queue's own lock, with
its count of unfinished tasks kept right, so ``broker.join`` still returns.
"""

# The private helpers of live_messages are shared on purpose: one module's answers, two
# backends.

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from dramatiq import Message

from gcmc_jobs.ops import live_messages as live
from gcmc_jobs.runtime import current
from gcmc_jobs.settings import Settings

__all__ = ["cancel", "listing", "promote", "show"]


def _queues(name: str) -> tuple[Any, Any]:
    queues: dict[str, Any] = getattr(current().broker, "queues", {})
    return queues.get(name), queues.get(f"{name}.DQ")


def _waiting(queue: Any) -> list[Message[Any]]:
    if queue is None:
        return []
    with queue.mutex:
        bodies = list(queue.queue)
    return [m for body in bodies if (m := live._decode(body)) is not None]


def listing(
    settings: Settings,
    name: str,
    *,
    state: Literal["ready", "delayed"] | None,
    actor: str | None,
    tenant_id: int | str | None,
    phase: str,
    position: Any,
    limit: int,
) -> live.LivePage:
    """:func:`gcmc_jobs.ops.live_messages.list_messages` on the stub broker."""
    ready_queue, delayed_queue = _queues(name)
    ready = _waiting(ready_queue)
    delayed = sorted(_waiting(delayed_queue), key=live._due_key)
    page: list[live.LiveMessage] = []
    next_cursor = None
    if phase == "ready" and state in (None, "ready"):
        ids = [m.message_id for m in ready]
        start = ids.index(position) + 1 if position in ids else 0
        for message in ready[start:]:
            if live._matches(message, actor, tenant_id):
                page.append(live._live(message, name, "ready", full=False))
                if len(page) == limit:
                    next_cursor = live._cursor("ready", message.message_id)
                    break
        if next_cursor is None:
            phase, position = "delayed", None
    if next_cursor is None and phase == "delayed" and state in (None, "delayed"):
        found = [
            m
            for m in delayed
            if live._matches(m, actor, tenant_id)
            and (position is None or live._due_key(m) > list(position))
        ]
        shown = found[: limit - len(page)]
        page += [live._live(m, name, "delayed", full=False) for m in shown]
        if shown and len(found) > len(shown):
            next_cursor = live._cursor("delayed", live._due_key(shown[-1]))
    return live.LivePage(page, next_cursor, len(ready), len(delayed))


def _locate(name: str, message_id: str) -> tuple[live.LiveState, Message[Any]] | None:
    ready_queue, delayed_queue = _queues(name)
    places: tuple[tuple[live.LiveState, Any], ...] = (
        ("ready", ready_queue),
        ("delayed", delayed_queue),
    )
    for state, queue in places:
        for message in _waiting(queue):
            if message.message_id == message_id:
                return state, message
    return None


def show(
    settings: Settings, name: str, message_id: str
) -> tuple[live.LiveState, Message[Any]] | None:
    """Where ``message_id`` waits in ``name`` and the message, or None."""
    return _locate(name, message_id)


def _take(queue: Any, message_id: str) -> Message[Any] | None:
    """Remove ``message_id`` from ``queue`` (under its lock); the message, or None."""
    if queue is None:
        return None
    with queue.mutex:
        for body in list(queue.queue):
            message = live._decode(body)
            if message is not None and message.message_id == message_id:
                queue.queue.remove(body)
                queue.unfinished_tasks -= 1
                if queue.unfinished_tasks <= 0:
                    queue.all_tasks_done.notify_all()
                queue.not_full.notify()
                return message
    return None


def cancel(
    settings: Settings, name: str, message_ids: Sequence[str], *, dry_run: bool
) -> list[live.CancelResult]:
    """:func:`gcmc_jobs.ops.live_messages.cancel_messages` on the stub broker."""
    ready_queue, delayed_queue = _queues(name)
    results = []
    cancelled = []
    for message_id in message_ids:
        found = _locate(name, message_id)
        if found is None:
            results.append(live.CancelResult(message_id, "not_found"))
            continue
        state, message = found
        if not dry_run:
            taken = _take(ready_queue if state == "ready" else delayed_queue, message_id)
            if taken is None:  # a worker fetched it meanwhile
                results.append(live.CancelResult(message_id, "not_found"))
                continue
            cancelled.append(taken)
        status: live.CancelStatus = "would_cancel" if dry_run else "cancelled"
        results.append(live.CancelResult(message_id, status, state, message.actor_name))
    if cancelled:
        stores = current().stores
        live._after_cancel(settings, stores.dedup, stores.status, cancelled)
    return results


def promote(
    settings: Settings,
    name: str,
    message_ids: Sequence[str] | None,
    *,
    actor: str | None,
    tenant_id: int | str | None,
    dry_run: bool,
) -> list[live.PromoteResult]:
    """:func:`gcmc_jobs.ops.live_messages.promote_messages` on the stub broker."""
    ready_queue, delayed_queue = _queues(name)
    if message_ids is None:
        chosen = [
            m
            for m in sorted(_waiting(delayed_queue), key=live._due_key)
            if live._matches(m, actor, tenant_id)
        ]
        message_ids = [m.message_id for m in chosen]
    results = []
    promoted = []
    for message_id in message_ids:
        found = _locate(name, message_id)
        if found is None:
            results.append(live.PromoteResult(message_id, "not_found"))
            continue
        state, message = found
        if state != "delayed":
            results.append(live.PromoteResult(message_id, "not_delayed", message.actor_name))
            continue
        if dry_run:
            results.append(live.PromoteResult(message_id, "would_promote", message.actor_name))
            continue
        taken = _take(delayed_queue, message_id)
        if taken is None:
            results.append(live.PromoteResult(message_id, "not_found"))
            continue
        ready_queue.put(live._ready_copy(taken, name)[1])
        promoted.append(taken)
        results.append(live.PromoteResult(message_id, "promoted", message.actor_name))
    if promoted:
        live.record_state(settings, current().stores.status, promoted, "enqueued")
    return results

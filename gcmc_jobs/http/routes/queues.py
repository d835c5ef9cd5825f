"""Queues: their statistics, pausing and resuming them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import QueueName
from gcmc_jobs.ops.pauses import pause_queue, resume_queue
from gcmc_jobs.ops.queue_stats import queue_stats

__all__ = ["router"]

router = APIRouter(tags=["queues"])


@router.get("/queues", summary="Per-queue statistics")
def queues(request: Request) -> list[schemas.QueueBody]:
    settings = deps.settings(request)
    broker = deps.runtime(request).broker if deps.is_stub(settings) else None
    stats = queue_stats(settings, broker=broker, timeout_ms=settings.health_timeout_ms)
    return [schemas.QueueBody.model_validate(s.as_dict()) for s in stats]


@router.post(
    "/queues/{queue}/pause",
    summary="Pause a queue on every worker",
    responses={404: {"description": "unknown queue"}},
)
def pause(request: Request, queue: QueueName) -> schemas.PauseBody:
    changed = pause_queue(deps.settings(request), queue)
    return schemas.PauseBody(queue=queue, paused=True, changed=changed)


@router.post(
    "/queues/{queue}/resume",
    summary="Resume a paused queue",
    responses={404: {"description": "unknown queue"}},
)
def resume(request: Request, queue: QueueName) -> schemas.PauseBody:
    changed = resume_queue(deps.settings(request), queue)
    return schemas.PauseBody(queue=queue, paused=False, changed=changed)

"""Messages: what became of one (:mod:`gcmc_jobs.ops.message_status`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.ops.message_status import MESSAGE_ID, status_store_for
from gcmc_jobs.ops.message_status import status as message_status

__all__ = ["router"]

router = APIRouter(tags=["messages"])

MessageId = Annotated[str, Path(pattern=MESSAGE_ID, description="The message id send() returned.")]


@router.get(
    "/messages/{message_id}",
    summary="A message's state, attempts, times and last error",
    responses={404: {"description": "unknown: never sent, or its record expired"}},
)
def message(request: Request, message_id: MessageId) -> schemas.MessageStatusBody:
    settings = deps.settings(request)
    if settings.store_redis_url is None:
        deps.runtime(request)  # the stub broker: the records live in this process's runtime
    store = status_store_for(settings)
    try:
        answer = message_status(message_id, store=store)
    finally:
        if settings.store_redis_url is not None:
            store.close()
    if not answer.known:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown message {message_id}: never sent, sent with status recording off, or "
            "its record expired (GCMC_JOBS_STATUS_TTL_MS)",
        )
    return schemas.MessageStatusBody.model_validate(answer.as_dict())

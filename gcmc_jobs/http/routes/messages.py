"""Messages: what became of one (:mod:`gcmc_jobs.ops.message_status`), and the messages
waiting in a queue: list, show, cancel, promote (:mod:`gcmc_jobs.ops.live_messages`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import QueueName
from gcmc_jobs.ops import live_messages
from gcmc_jobs.ops.message_status import MESSAGE_ID, status_store_for
from gcmc_jobs.ops.message_status import status as message_status
from gcmc_jobs.settings import Settings

__all__ = ["router"]

router = APIRouter(tags=["messages"])

MessageId = Annotated[str, Path(pattern=MESSAGE_ID, description="The message id send() returned.")]

#: What the live-message routes answer besides 200.
LIVE_RESPONSES: dict[int | str, dict[str, str]] = {
    501: {
        "description": "the broker cannot list queued messages (RabbitMQ: AMQP cannot read "
        "one without consuming it; the detail gives the queue's counts instead)"
    },
}


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


def _live_settings(request: Request) -> Settings:
    """The settings; on the stub broker, the runtime whose queues are read is configured."""
    settings = deps.settings(request)
    if deps.is_stub(settings):
        deps.runtime(request)
    return settings


@router.get(
    "/queues/{queue}/messages",
    summary="The ready and delayed messages of a queue, paged",
    responses={**LIVE_RESPONSES, 422: {"description": "a bad cursor or limit"}},
)
def list_live(
    request: Request,
    queue: QueueName,
    state: Annotated[
        Literal["ready", "delayed"] | None, Query(description="Only this kind; both by default.")
    ] = None,
    actor: Annotated[str | None, Query(max_length=200, description="Only this actor.")] = None,
    tenant_id: Annotated[
        str | None, Query(pattern=schemas.PLATFORM_ID, description="Only this tenant.")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="The previous page's next_cursor.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=live_messages.MAX_LIMIT)] = live_messages.DEFAULT_LIMIT,
) -> schemas.LivePageBody:
    try:
        page = live_messages.list_messages(
            _live_settings(request),
            queue,
            state=state,
            actor=actor,
            tenant_id=tenant_id,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return schemas.LivePageBody(
        messages=[schemas.LiveMessageBody.model_validate(m.as_dict()) for m in page.messages],
        next_cursor=page.next_cursor,
        ready=page.ready,
        delayed=page.delayed,
    )


@router.get(
    "/queues/{queue}/messages/{message_id}",
    summary="One waiting message: arguments (secrets masked), options, times, status",
    responses={**LIVE_RESPONSES, 404: {"description": "not waiting in this queue"}},
)
def show_live(request: Request, queue: QueueName, message_id: MessageId) -> schemas.LiveMessageBody:
    found = live_messages.show_message(_live_settings(request), queue, message_id)
    return schemas.LiveMessageBody.model_validate(found.as_dict())


@router.post(
    "/queues/{queue}/messages/cancel",
    summary="Cancel waiting messages by id (a message a worker already fetched still runs)",
    responses=LIVE_RESPONSES,
)
def cancel_live(
    request: Request, queue: QueueName, body: schemas.CancelRequest
) -> list[schemas.CancelBody]:
    results = live_messages.cancel_messages(
        _live_settings(request), queue, body.message_ids, dry_run=body.dry_run
    )
    return [schemas.CancelBody.model_validate(r.as_dict()) for r in results]


@router.post(
    "/queues/{queue}/messages/promote",
    summary="Make delayed messages ready now",
    responses=LIVE_RESPONSES,
)
def promote_live(
    request: Request, queue: QueueName, body: schemas.PromoteRequest
) -> list[schemas.PromoteBody]:
    results = live_messages.promote_messages(
        _live_settings(request),
        queue,
        body.message_ids,
        actor=body.actor,
        tenant_id=body.tenant_id,
        dry_run=body.dry_run,
    )
    return [schemas.PromoteBody.model_validate(r.as_dict()) for r in results]

"""Dead letters: list, show, replay and purge (:mod:`gcmc_jobs.ops.dead_letters`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import NAME, Limit, Name
from gcmc_jobs.middleware.stores.dead_letters import SqlDeadLetterStore
from gcmc_jobs.ops.dead_letters import (
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letters,
    show_dead_letter,
)
from gcmc_jobs.redaction import redact

__all__ = ["router"]

router = APIRouter(tags=["dead letters"])


def _store(request: Request) -> SqlDeadLetterStore:
    return SqlDeadLetterStore(deps.engine(request))


@router.get("/dead-letters", summary="Dead letters, newest first")
def dead_letters(
    request: Request,
    limit: Limit = 100,
    queue: Name = None,
    actor: Name = None,
    error: Annotated[
        str | None, Query(pattern=NAME, description="Error type, e.g. SMTPDataError.")
    ] = None,
    replayed: Annotated[bool | None, Query(description="Only (not) replayed ones.")] = None,
) -> list[schemas.DeadLetterSummary]:
    records = list_dead_letters(
        _store(request), actor=actor, queue=queue, error=error, replayed=replayed, limit=limit
    )
    return [
        schemas.DeadLetterSummary.model_validate({**r.as_dict(), "error": redact(r.error)})
        for r in records
    ]


@router.get(
    "/dead-letters/{id}",
    summary="One dead letter, secrets masked",
    responses={404: {"description": "no such dead letter"}},
)
def dead_letter(request: Request, id: int) -> schemas.DeadLetterDetail:
    return schemas.DeadLetterDetail.model_validate(
        show_dead_letter(_store(request), deps.db_int(id))
    )


@router.post(
    "/dead-letters/{id}/replay",
    summary="Re-send the dead letter's call with fresh retries",
    responses={
        404: {"description": "no such dead letter"},
        409: {"description": "already replayed, duplicate, or unknown actor"},
    },
)
def replay(request: Request, id: int) -> schemas.ReplayBody:
    [result] = replay_dead_letters(
        _store(request), deps.runtime(request).broker, ids=[deps.db_int(id)]
    )
    if result.status != "replayed" or result.replayed_as is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"not replayed: {result.status}")
    return schemas.ReplayBody(id=id, replayed_as=result.replayed_as)


@router.post(
    "/dead-letters/purge",
    summary="Delete dead letters that failed more than older_than_ms ago",
)
def purge(
    request: Request,
    older_than_ms: Annotated[int, Query(ge=0, le=10 * 365 * 86_400_000)] = 0,
    queue: Name = None,
    actor: Name = None,
) -> schemas.PurgeBody:
    purged = purge_dead_letters(
        _store(request),
        older_than=timedelta(milliseconds=older_than_ms),
        queue=queue,
        actor=actor,
    )
    return schemas.PurgeBody(purged=purged)

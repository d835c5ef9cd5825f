"""Campaigns: list, create, show, and start, pause, resume or cancel one
(:mod:`gcmc_jobs.ops.campaigns`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from gcmc_jobs.db.enums import CampaignStatus
from gcmc_jobs.errors import CampaignStateError
from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import Limit
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.ops import campaigns as ops
from gcmc_jobs.services.campaigns import CampaignInfo

__all__ = ["router"]

router = APIRouter(tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A campaign id.")]
_ACTION: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such campaign"},
    409: {"description": "the campaign's status does not allow it"},
}


def _body(info: CampaignInfo) -> schemas.CampaignBody:
    return schemas.CampaignBody.model_validate(info.as_dict())


@router.get("/campaigns", summary="Campaigns, newest first, with their progress")
def list_campaigns(
    request: Request,
    tenant_id: Annotated[PlatformId | None, Query(description="Only this tenant's.")] = None,
    status_: Annotated[
        CampaignStatus | None, Query(alias="status", description="Only those in this status.")
    ] = None,
    limit: Limit = 100,
) -> list[schemas.CampaignBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    found = ops.list_campaigns(deps.runtime(request), tenant_id=tenant, status=status_, limit=limit)
    return [_body(info) for info in found]


@router.post(
    "/campaigns",
    summary="Create a campaign (a draft, or started at once)",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "no such tenant"},
        422: {"description": "a template, the segment or the rate is not valid"},
    },
)
def create(request: Request, body: schemas.CampaignRequest) -> schemas.CampaignBody:
    tenant = deps.platform_id(request, body.tenant_id, ("body", "tenant_id"))
    assert tenant is not None
    info = ops.create_campaign(
        deps.runtime(request),
        tenant_id=tenant,
        name=body.name,
        subject=body.subject,
        body=body.body,
        segment=body.segment,
        created_by=body.created_by,
        rate_per_second=body.rate_per_second,
        start=body.start,
    )
    return _body(info)


@router.get(
    "/campaigns/{campaign_id}",
    summary="One campaign and its progress",
    responses={404: {"description": "no such campaign"}},
)
def show(request: Request, campaign_id: CampaignId) -> schemas.CampaignBody:
    return _body(ops.get_campaign(deps.runtime(request), campaign_id))


def _act(request: Request, action: str, campaign_id: int) -> schemas.CampaignBody:
    functions = {
        "start": ops.start_campaign,
        "pause": ops.pause_campaign,
        "resume": ops.resume_campaign,
        "cancel": ops.cancel_campaign,
    }
    try:
        return _body(functions[action](deps.runtime(request), campaign_id))
    except CampaignStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/campaigns/{campaign_id}/start", summary="Start a draft", responses=_ACTION)
def start(request: Request, campaign_id: CampaignId) -> schemas.CampaignBody:
    return _act(request, "start", campaign_id)


@router.post(
    "/campaigns/{campaign_id}/pause", summary="Pause a running campaign", responses=_ACTION
)
def pause(request: Request, campaign_id: CampaignId) -> schemas.CampaignBody:
    return _act(request, "pause", campaign_id)


@router.post(
    "/campaigns/{campaign_id}/resume", summary="Resume a paused campaign", responses=_ACTION
)
def resume(request: Request, campaign_id: CampaignId) -> schemas.CampaignBody:
    return _act(request, "resume", campaign_id)


@router.post(
    "/campaigns/{campaign_id}/cancel", summary="Cancel a campaign for good", responses=_ACTION
)
def cancel(request: Request, campaign_id: CampaignId) -> schemas.CampaignBody:
    return _act(request, "cancel", campaign_id)

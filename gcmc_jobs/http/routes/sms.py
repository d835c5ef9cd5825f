"""SMS opt-ins: list, opt in, opt out (:mod:`gcmc_jobs.sms.opt_ins`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.schemas import PlatformId, SmsCategory
from gcmc_jobs.sms.opt_ins import opt_in, opt_ins, opt_out

__all__ = ["router"]

router = APIRouter(tags=["sms"])


def _bodies(request: Request, tenant_id: object) -> list[schemas.SmsOptInBody]:
    with deps.engine(request).connect() as connection:
        rows = opt_ins(connection, tenant_id=tenant_id)  # type: ignore[arg-type]
    return [
        schemas.SmsOptInBody(
            tenant_id=r.tenant_id,
            user_id=r.user_id,
            category=r.category.value,
            phone=r.phone,
            created_at=r.created_at,
        )
        for r in rows
    ]


@router.get("/sms/opt-ins", summary="Who receives which alerts by SMS, at which number")
def list_opt_ins(
    request: Request, tenant_id: Annotated[PlatformId | None, Query()] = None
) -> list[schemas.SmsOptInBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    return _bodies(request, tenant)


@router.put(
    "/sms/opt-ins",
    summary="Opt a member in to alerts by SMS (their other opt-ins in the tenant move to "
    "the number)",
    responses={422: {"description": "an invalid number, or a user who is not a member"}},
)
def put_opt_in(request: Request, body: schemas.SmsOptInRequest) -> list[schemas.SmsOptInBody]:
    tenant = deps.platform_id(request, body.tenant_id, ("body", "tenant_id"))
    user = deps.platform_id(request, body.user_id, ("body", "user_id"))
    assert tenant is not None
    assert user is not None
    with deps.engine(request).begin() as connection:
        opt_in(
            connection, tenant_id=tenant, user_id=user, phone=body.phone, categories=body.categories
        )
    return [row for row in _bodies(request, tenant) if row.user_id == user]


@router.delete("/sms/opt-ins", summary="Opt a member out of alerts by SMS")
def delete_opt_in(
    request: Request,
    tenant_id: Annotated[PlatformId, Query()],
    user_id: Annotated[PlatformId, Query()],
    category: Annotated[
        list[SmsCategory] | None, Query(description="Only these categories (default: all).")
    ] = None,
) -> schemas.SmsOptOutBody:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    user = deps.platform_id(request, user_id, ("query", "user_id"))
    assert tenant is not None
    assert user is not None
    with deps.engine(request).begin() as connection:
        removed = opt_out(connection, tenant_id=tenant, user_id=user, categories=category or None)
    return schemas.SmsOptOutBody(removed=removed)

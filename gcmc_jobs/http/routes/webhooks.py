"""Outbound webhooks: a tenant's endpoints, their deliveries and attempts, test and replay
(:mod:`gcmc_jobs.services.webhook_endpoints`, :mod:`gcmc_jobs.services.webhook_deliveries`).

A new endpoint's signing secret is in the answer to its ``POST`` and nowhere else, ever.
``…/test`` and ``…/replay`` hand the deliveries to the workers (``deliver_webhook``) and
answer at once with their ids; ``GET /api/webhooks/deliveries`` shows how they went.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gcmc_jobs.actors.webhooks import deliver_webhook
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.http import deps
from gcmc_jobs.http.deps import Limit
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.services import webhook_deliveries as deliveries
from gcmc_jobs.services import webhook_endpoints as endpoints

__all__ = ["router"]

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such endpoint or delivery"}}
EventType = Literal[
    "*",
    "compliance.level_changed",
    "document.expiring",
    "filing.due_soon",
    "filing.overdue",
    "job_run.failed",
    "email.bounced",
    "webhook.test",
]
TenantQuery = Annotated[PlatformId | None, Query(description="Only this tenant's.")]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class EndpointBody(BaseModel):
    """A webhook endpoint, without its secret."""

    id: int
    tenant_id: int | str
    url: str
    event_types: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    created_at: datetime | None
    disabled_at: datetime | None


class EndpointCreated(EndpointBody):
    secret: str = Field(description="whsec_<base64>: shown in this answer only; store it.")


class EndpointRequest(BaseModel):
    tenant_id: PlatformId
    url: str = Field(min_length=1, max_length=2000, description="http(s)://…")
    event_types: list[EventType] = Field(min_length=1, max_length=10)
    description: str | None = Field(default=None, max_length=200)


class EnabledBody(BaseModel):
    id: int
    enabled: bool
    changed: bool = Field(description="False when the endpoint already was in that state.")


class DeliveryBody(BaseModel):
    id: int
    tenant_id: int | str
    endpoint_id: int
    url: str
    event_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_type: str
    status: Literal["pending", "sending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None


class AttemptBody(BaseModel):
    attempted_at: str | None
    status_code: int | None
    latency_ms: float
    response_body: str | None = Field(description="The first 1,024 bytes of the answer.")
    error: str | None


class QueuedBody(BaseModel):
    deliveries: list[int] = Field(description="The deliveries handed to the workers.")


def _session(request: Request) -> Session:
    return Session(deps.engine(request))


@router.get("/endpoints", summary="Webhook endpoints (never their secrets)")
def list_endpoints(request: Request, tenant_id: TenantQuery = None) -> list[EndpointBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with _session(request) as session:
        found = endpoints.list_endpoints(session, tenant)
    return [EndpointBody.model_validate(e.as_dict()) for e in found]


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    summary="Register an endpoint; the answer holds its secret, shown this once",
)
def add_endpoint(request: Request, body: EndpointRequest) -> EndpointCreated:
    tenant = deps.platform_id(request, body.tenant_id, ("body", "tenant_id"))
    assert tenant is not None
    try:
        with _session(request) as session, session.begin():
            endpoint, secret = endpoints.add_endpoint(
                session, tenant, body.url, list(body.event_types), description=body.description
            )
    except InvalidPayload as exc:  # a bad URL, an unknown tenant: FastAPI's 422 shape
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}]
        ) from None
    return EndpointCreated.model_validate({**endpoint.as_dict(), "secret": secret})


@router.delete(
    "/endpoints/{id}", summary="Delete an endpoint and its deliveries", responses=NOT_FOUND
)
def remove_endpoint(request: Request, id: int) -> EnabledBody:
    with _session(request) as session, session.begin():
        endpoints.remove_endpoint(session, deps.db_int(id))
    return EnabledBody(id=id, enabled=False, changed=True)


def _set_enabled(request: Request, id: int, enabled: bool) -> EnabledBody:
    with _session(request) as session, session.begin():
        changed = endpoints.set_enabled(
            session, deps.db_int(id), enabled, reason="disabled through the admin API"
        )
    return EnabledBody(id=id, enabled=enabled, changed=changed)


@router.post("/endpoints/{id}/enable", summary="Enable an endpoint", responses=NOT_FOUND)
def enable_endpoint(request: Request, id: int) -> EnabledBody:
    return _set_enabled(request, id, True)


@router.post("/endpoints/{id}/disable", summary="Disable an endpoint", responses=NOT_FOUND)
def disable_endpoint(request: Request, id: int) -> EnabledBody:
    return _set_enabled(request, id, False)


@router.post(
    "/endpoints/{id}/test",
    summary="Send a signed webhook.test event to this endpoint (through the workers)",
    responses=NOT_FOUND,
)
def test_endpoint(request: Request, id: int) -> QueuedBody:
    with _session(request) as session, session.begin():
        delivery_id = deliveries.create_test_delivery(session, deps.db_int(id))
    deliver_webhook.send(delivery_id)
    return QueuedBody(deliveries=[delivery_id])


@router.get("/deliveries", summary="Deliveries, newest first")
def list_deliveries(
    request: Request,
    tenant_id: TenantQuery = None,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[Literal["pending", "sending", "succeeded", "failed"] | None, Query()] = None,
    limit: Limit = 100,
) -> list[DeliveryBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with _session(request) as session:
        found = deliveries.list_deliveries(
            session, tenant_id=tenant, endpoint_id=endpoint_id, status=status, limit=limit
        )
    return [DeliveryBody.model_validate(d.as_dict()) for d in found]


@router.get(
    "/deliveries/{id}/attempts",
    summary="Every attempt of one delivery: status, latency, first bytes of the answer",
    responses=NOT_FOUND,
)
def delivery_attempts(request: Request, id: int) -> list[AttemptBody]:
    with _session(request) as session:
        deliveries.get_delivery(session, deps.db_int(id))
        found = deliveries.attempts_of(session, id)
    return [AttemptBody.model_validate(a.as_dict()) for a in found]


@router.post(
    "/deliveries/{id}/replay",
    summary="Deliver this one again now, with a new retry window",
    responses=NOT_FOUND,
)
def replay_delivery(request: Request, id: int) -> QueuedBody:
    with _session(request) as session, session.begin():
        ids = deliveries.replay(session, delivery_id=deps.db_int(id))
    for delivery_id in ids:
        deliver_webhook.send(delivery_id)
    return QueuedBody(deliveries=ids)


@router.post("/deliveries/replay", summary="Deliver every failed delivery again now")
def replay_failed(
    request: Request,
    tenant_id: TenantQuery = None,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> QueuedBody:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with _session(request) as session, session.begin():
        ids = deliveries.replay(session, tenant_id=tenant, endpoint_id=endpoint_id)
    for delivery_id in ids:
        deliver_webhook.send(delivery_id)
    return QueuedBody(deliveries=ids)

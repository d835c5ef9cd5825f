"""``/metrics``: Prometheus text, behind the token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gcmc_jobs.http.auth import require_token
from gcmc_jobs.http.metrics import render_metrics

__all__ = ["router"]

router = APIRouter(tags=["probes"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    dependencies=[Depends(require_token)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    return Response(
        render_metrics(request.app.state.queue_registry), media_type=CONTENT_TYPE_LATEST
    )

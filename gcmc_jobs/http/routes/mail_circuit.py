"""The mail server's circuit breaker: its state, and closing it by hand."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.ops.mail_circuit import mail_circuit_state, reset_mail_circuit

__all__ = ["router"]

router = APIRouter(tags=["mail circuit"])


@router.get("/mail-circuit", summary="The mail server's circuit breaker")
def mail_circuit(request: Request) -> schemas.MailCircuitBody:
    settings = deps.settings(request)
    state = mail_circuit_state(settings)
    return schemas.MailCircuitBody(enabled=settings.mail_breaker, **state.as_dict())


@router.post(
    "/mail-circuit/reset",
    summary="Close the mail circuit breaker by hand (held email runs again)",
)
def reset(request: Request) -> schemas.MailCircuitBody:
    settings = deps.settings(request)
    state = reset_mail_circuit(settings)
    return schemas.MailCircuitBody(enabled=settings.mail_breaker, **state.as_dict())

"""``POST /hooks/email/{provider}``: the email providers' event webhooks (issue 13, item 1).

Not behind the admin token (the providers call it) but behind each provider's proof
(:mod:`gcmc_jobs.http.provider_signatures`): a request without it is answered 401, with a
wrong one 403, and logged (``email_hook_refused``, with the provider, the reason and the
client's address); nothing of it is applied. An authenticated body is parsed
(:mod:`gcmc_jobs.email.provider_events`) and recorded (:mod:`gcmc_jobs.services.bounces`),
idempotently on the provider's event id: the answer says how many events were recorded,
how many were duplicates and which addresses were suppressed. An SES
``SubscriptionConfirmation`` is confirmed by visiting its ``SubscribeURL``.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool

from gcmc_jobs.email.provider_events import PARSERS, PROVIDERS
from gcmc_jobs.http import deps
from gcmc_jobs.http import provider_signatures as signatures
from gcmc_jobs.http.provider_signatures import HookRefused
from gcmc_jobs.ops.suppressions import ingest_events
from gcmc_jobs.services.bounces import BouncePolicy

__all__ = ["router"]

router = APIRouter(tags=["email webhooks"])
logger = structlog.get_logger("gcmc_jobs.http.email_hooks")

Provider = Annotated[str, Path(pattern=r"^[a-z]{1,20}$", description=", ".join(PROVIDERS))]


@router.post(
    "/hooks/email/{provider}",
    summary="Delivery events from an email provider (signed; not behind the admin token)",
    responses={
        400: {"description": "the body is not JSON"},
        401: {"description": "no signature or credentials"},
        403: {"description": "a wrong signature or credentials"},
        404: {"description": "unknown provider"},
        503: {"description": "this provider's secret is not configured"},
    },
)
async def email_hook(request: Request, provider: Provider) -> dict[str, Any]:
    if provider not in PROVIDERS:
        raise HTTPException(404, f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        return await run_in_threadpool(_handle, request, provider, headers, body)
    except HookRefused as exc:
        client = request.client.host if request.client else None
        logger.warning(
            "email_hook_refused",
            provider=provider,
            status=exc.status,
            reason=exc.reason,
            client=client,
        )
        raise HTTPException(exc.status, exc.reason) from None


def _handle(
    request: Request, provider: str, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    settings = deps.settings(request)
    payload: Any
    if provider == "ses":
        payload = signatures.decode_json(body)
        if not isinstance(payload, dict):
            raise HookRefused(400, "an SNS message is a JSON object")
        signatures.verify_sns(payload, settings, request.app.state.https_get)
        kind = payload.get("Type")
        if kind == "SubscriptionConfirmation":
            signatures.confirm_subscription(payload, settings, request.app.state.https_get)
            logger.info("email_hook_subscription_confirmed", topic=payload.get("TopicArn"))
            return {"confirmed": True}
        if kind != "Notification":
            return {"received": 0, "recorded": 0, "duplicates": 0, "suppressed": {}}
    elif provider == "postmark":
        signatures.verify_postmark(headers, settings)
        payload = signatures.decode_json(body)
    elif provider == "sendgrid":
        signatures.verify_sendgrid(headers, body, settings)
        payload = signatures.decode_json(body)
    else:
        payload = signatures.decode_json(body)
        signatures.verify_mailgun(payload, settings)
    events = PARSERS[provider](payload)
    result = ingest_events(
        deps.engine(request), events, policy=BouncePolicy.from_settings(settings)
    )
    logger.info("email_hook_events", provider=provider, **result.as_dict())
    return result.as_dict()

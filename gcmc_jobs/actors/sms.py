"""The SMS actor: ``send_sms(kind, to, body, tenant_id=None, dedup_key=None)`` on its own
queue, ``queues.SMS`` (``gcmc_sms``).

:class:`SmsActor` validates every message **in the caller**, in ``message_with_options``
(the method every ``send`` and :func:`sms_message` go through): an empty or oversized body,
a control character, a bad tenant id or dedup key, or a phone number that is not valid E.164
raises :class:`~gcmc_jobs.errors.InvalidPayload` (:class:`~gcmc_jobs.errors.InvalidPhoneNumber`)
and nothing is enqueued. The daily jobs build their messages with ``check_phone=False``: a
bad number stored in ``sms_opt_ins`` then fails that SMS alone, in the worker, for good,
with the reason in ``sms_log`` and the dead letters, and every other alert still goes.

It also sets the middleware options, as the email actor does:

* ``dedup_key``: the one given (once ever), else a content key
  (``sms:<kind>:<sha256 of kind, number, body, tenant>``) recorded per dedup-TTL window;
* ``rate_limit_key``: the number (E.164), class ``default``: the per-recipient limit
  (``GCMC_JOBS_RATE_LIMIT`` per ``GCMC_JOBS_RATE_LIMIT_WINDOW_MS``), counted per number;
* ``tenant_id``.

In the worker, :func:`gcmc_jobs.sms.delivery.deliver_sms` texts each key at most once
(``sms_log``), never a suppressed number.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from typing import Any

import dramatiq

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.attempts import counted, current_options, is_final_attempt
from gcmc_jobs.actors.email import EmailActor
from gcmc_jobs.brokers import actor
from gcmc_jobs.errors import InvalidPayload, PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware.metrics import sms_sent
from gcmc_jobs.runtime import current
from gcmc_jobs.sms.bodies import check_body
from gcmc_jobs.sms.delivery import deliver_sms
from gcmc_jobs.sms.numbers import normalize_phone

__all__ = ["SmsActor", "send_sms", "sms_dedup_key", "sms_message"]

logger = get_logger("gcmc_jobs.actors.sms")

_KIND_MAX = 64
#: A private option: the caller leaves the number's check to the worker (daily jobs).
_DEFER_PHONE_CHECK = "sms_defer_phone_check"


def sms_dedup_key(kind: str, to: str, body: str, *, tenant_id: int | str | None = None) -> str:
    """The content key of an SMS: ``sms:<kind>:<sha256 of kind, number, body, tenant>``."""
    canonical = json.dumps([kind, to, body, tenant_id], ensure_ascii=False, default=str)
    return f"sms:{kind}:{hashlib.sha256(canonical.encode()).hexdigest()}"


class SmsActor(EmailActor):
    """Validates and keys SMS messages in the caller (module docstring). Shares the email
    actor's argument, tenant and dedup-key checks, its duplicate handling (``send`` returns a
    duplicate, not enqueued, and :func:`gcmc_jobs.sending.is_duplicate` tells) and its dedup
    window."""

    def message_with_options(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> dramatiq.Message[Any]:
        call = self._arguments(args, kwargs, "body")
        kind = call["kind"]
        if not isinstance(kind, str) or not 0 < len(kind) <= _KIND_MAX or not kind.isidentifier():
            raise InvalidPayload(f"kind: a name of 1 to {_KIND_MAX} letters, digits and _")
        body = check_body(call["body"])
        to = call["to"]
        if options.pop(_DEFER_PHONE_CHECK, False):
            if not isinstance(to, str) or not to:
                raise InvalidPayload("to: a phone number is a non-empty text")
        else:
            to = normalize_phone(to, field="to")
        tenant_id = self._tenant_id(call)
        key, record = self._dedup_keys(
            call, options, lambda: sms_dedup_key(kind, to, body, tenant_id=tenant_id)
        )
        options.update(dedup_key=key, rate_limit_key=to, rate_limit_class="default")
        if tenant_id is not None:
            options["tenant_id"] = tenant_id
        return dramatiq.Actor.message_with_options(
            self,
            kwargs={
                "kind": kind,
                "to": to,
                "body": body,
                "tenant_id": tenant_id,
                "dedup_key": record,
            },
            **options,
        )


def sms_message(
    kind: str,
    to: str,
    body: str,
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
    check_phone: bool = True,
) -> dramatiq.Message[Any]:
    """A validated, not yet enqueued ``send_sms`` message (for bulk senders: the daily jobs
    pass ``check_phone=False``, see the module docstring)."""
    kwargs: dict[str, Any] = {"kind": kind, "to": to, "body": body, "tenant_id": tenant_id}
    if dedup_key is not None:
        kwargs["dedup_key"] = dedup_key
    options: dict[str, Any] = {}
    if correlation_id is not None:
        options["correlation_id"] = correlation_id
    if not check_phone:
        options[_DEFER_PHONE_CHECK] = True
    message: dramatiq.Message[Any] = send_sms.message_with_options(kwargs=kwargs, **options)
    return message


def _send(
    kind: str,
    to: str,
    body: str,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
) -> None:
    """Text one SMS (see :func:`gcmc_jobs.sms.delivery.deliver_sms`)."""
    runtime = current()
    options = current_options()
    key = dedup_key or sms_dedup_key(kind, to, body, tenant_id=tenant_id)
    log = logger.bind(kind=kind, dedup_key=key, tenant_id=tenant_id)
    with counted(partial(sms_sent, kind), log, failed="sms_failed", retry="sms_delivery_retry"):
        delivery = deliver_sms(
            runtime.engine,
            runtime.sms_transport,
            kind=kind,
            to=to,
            body=body,
            dedup_key=key,
            tenant_id=tenant_id,
            final_attempt=is_final_attempt(options, send_sms),
        )
    sms_sent(kind, delivery.outcome.value)
    log.info("sms_" + delivery.outcome.value, provider_message_id=delivery.provider_message_id)


#: Every SMS: ``queues.SMS``, 8 retries from 5 s to 10 min backoff (a provider's 429/5xx).
send_sms = actor(
    actor_name="send_sms",
    queue_name=queues.SMS,
    priority=100,
    max_retries=8,
    min_backoff=5_000,
    max_backoff=600_000,
    time_limit=60_000,
    actor_class=SmsActor,
    throws=(PermanentError,),
)(_send)

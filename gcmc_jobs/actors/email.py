"""The email actors: ``send_email`` (every kind, ``queues.EMAIL``) and its critical twin
``send_security_email`` (critical kinds: ``password_reset``, ``queues.EMAIL_CRITICAL``).

Both share :class:`EmailActor`, whose :meth:`~EmailActor.message_with_options` (the method
every ``send`` goes through, and :func:`email_message` too) validates the
payload **in the caller**: an unknown kind, an address that is not bare (see
:mod:`gcmc_jobs.email.addresses`), a missing field or a control character in a
subject-bound field raises :class:`~gcmc_jobs.errors.InvalidPayload` and nothing is
enqueued. It then:

* routes the message: critical kinds go to ``send_security_email`` on
  ``gcmc_email_critical``, whatever actor the caller used;
* resolves the dedup keys: an explicit key (message option > ``dedup_key`` argument) goes
  both in the ``dedup_key`` option (claimed by the ``Deduplication`` middleware) and in the
  arguments (the ``email_log`` row): once ever. Without one, the option is the content key
  (:func:`~gcmc_jobs.email.dedup_keys.email_dedup_key`) and the argument that key in its
  dedup-TTL window (:func:`~gcmc_jobs.email.dedup_keys.windowed_key`): once per window;
* normalises the recipient once (lowercased: :func:`~gcmc_jobs.email.addresses.normalize_address`);
* sets the middleware options ``tenant_id``, ``rate_limit_key`` (the normalised recipient)
  and ``rate_limit_class`` (``"security"`` for password resets, else ``"default"``);
* moves secret fields (the reset link) out of the arguments into the ``secrets`` option:
  Dramatiq logs a message's arguments (``Received message send_email(...)``), never its
  options, and the dead-letter view masks ``secrets``.

A duplicate (same dedup key, still taken) is not an error for the sender: ``send`` returns
the message without enqueuing it, and :func:`is_duplicate` says so; the worker side never
mails a key whose ``email_log`` row says ``sent``.

Workers consume both queues (``dramatiq gcmc_jobs.worker``); the critical actor's priority
puts its messages ahead of prefetched bulk mail. A dedicated worker for security mail::

    dramatiq gcmc_jobs.worker -Q gcmc_email_critical
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import dramatiq

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.attempts import counted, current_options, is_final_attempt
from gcmc_jobs.brokers import actor
from gcmc_jobs.email.addresses import normalize_address
from gcmc_jobs.email.dedup_keys import email_dedup_key, windowed_key
from gcmc_jobs.email.delivery import deliver
from gcmc_jobs.email.kinds import EmailPayload
from gcmc_jobs.email.registry import get_kind, validate_payload
from gcmc_jobs.errors import DuplicateMessage, InvalidPayload, PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware.deduplication import DeduplicatedActor, Deduplication
from gcmc_jobs.middleware.metrics import email_sent
from gcmc_jobs.runtime import current

__all__ = [
    "EmailActor",
    "email_call",
    "email_message",
    "is_duplicate",
    "send_email",
    "send_security_email",
]

logger = get_logger("gcmc_jobs.actors.email")

#: The option marking a message a send returned as a duplicate, not enqueued.
DUPLICATE = "duplicate"
#: The default key's window when the broker has no ``Deduplication`` middleware: 24 h.
DEFAULT_WINDOW_MS = 86_400_000

#: The actor names; critical kinds are routed to :data:`SECURITY_ACTOR`.
BULK_ACTOR = "send_email"
SECURITY_ACTOR = "send_security_email"


class EmailActor(DeduplicatedActor):
    """Validates, keys and routes email messages in the caller (see the module docstring).
    Its argument, tenant and dedup-key checks serve :class:`~gcmc_jobs.actors.sms.SmsActor`
    too."""

    def message_with_options(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> dramatiq.Message[Any]:
        call = self._arguments(args, kwargs, "payload")
        entry = get_kind(call["kind"])
        # Normalised once, here: every later step (key, rate limit, suppressions, the
        # email_log row, the envelope) uses this form (gcmc_jobs.email.addresses).
        to = normalize_address(call["to"], field="to")
        data = call["payload"]
        secrets = options.pop("secrets", None) or {}
        if isinstance(data, Mapping):
            data = {**data, **secrets}
        payload: EmailPayload = validate_payload(entry.name, data)
        tenant_id = self._tenant_id(call)
        key, record = self._dedup_keys(
            call,
            options,
            lambda: email_dedup_key(entry.name, to, payload, tenant_id=tenant_id),
        )
        options.update(
            dedup_key=key,
            rate_limit_key=to,
            rate_limit_class=entry.rate_limit_class,
        )
        if tenant_id is not None:
            options["tenant_id"] = tenant_id
        secret_values = payload.secret_data()
        if secret_values:
            options["secrets"] = secret_values
        target: dramatiq.Actor[Any, Any] = self
        wanted = SECURITY_ACTOR if entry.critical else BULK_ACTOR
        if self.actor_name != wanted:
            target = self.broker.get_actor(wanted)
        return dramatiq.Actor.message_with_options(
            target,
            kwargs={
                "kind": entry.name,
                "to": to,
                "payload": payload.public_data(),
                "tenant_id": tenant_id,
                "dedup_key": record,
            },
            **options,
        )

    def _arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any] | None, content: str
    ) -> dict[str, Any]:
        """The call's arguments by name: ``(kind, to, <content>, tenant_id=None,
        dedup_key=None)``, the first three required; anything else is
        :class:`~gcmc_jobs.errors.InvalidPayload`."""
        call = dict(kwargs or {})
        names = ("kind", "to", content, "tenant_id", "dedup_key")
        if len(args) > len(names):
            raise InvalidPayload(f"{self.actor_name} takes at most {len(names)} arguments")
        for name, value in zip(names, args, strict=False):
            if name in call:
                raise InvalidPayload(f"{self.actor_name} got {name!r} twice")
            call[name] = value
        if set(call) - set(names) or not set(names[:3]) <= set(call):
            raise InvalidPayload(
                f"{self.actor_name}(kind, to, {content}, tenant_id=None, dedup_key=None) "
                f"got arguments {sorted(call)}"
            )
        return call

    @staticmethod
    def _tenant_id(call: Mapping[str, Any]) -> int | str | None:
        """The call's ``tenant_id``: None, an int or a non-empty text (the mapping's id
        type)."""
        tenant_id = call.get("tenant_id")
        if tenant_id is not None and (
            isinstance(tenant_id, bool) or not isinstance(tenant_id, int | str) or tenant_id == ""
        ):
            raise InvalidPayload(
                f"tenant_id must be an int or a text id (the mapping's id type), got {tenant_id!r}"
            )
        return tenant_id

    def _dedup_keys(
        self, call: Mapping[str, Any], options: Mapping[str, Any], content_key: Callable[[], str]
    ) -> tuple[str, str]:
        """The message's two keys (gcmc_jobs.email.dedup_keys): ``key`` is claimed at enqueue
        for the dedup TTL, ``record`` names the logical message (its log row, the email's
        X-GCMC-Dedup-Key). An explicit key (message option > argument) is both ("once
        ever"); the default, ``content_key()``, is recorded per TTL window."""
        key = options.get("dedup_key") or call.get("dedup_key")
        record = call.get("dedup_key") or key
        if key is None:
            key = content_key()
            now_ms = int(time.time() * 1000)
            record = windowed_key(key, now_ms=now_ms, window_ms=self._window(options))
        for value in (key, record):
            if not isinstance(value, str) or not 0 < len(value) <= 255 or not value.isprintable():
                raise InvalidPayload("dedup_key must be a printable string of 1 to 255 characters")
        return str(key), str(record)

    def _window(self, options: Mapping[str, Any]) -> int:
        """The dedup TTL, ms: the message's ``dedup_ttl`` option, the actor's, or the
        ``Deduplication`` middleware's (``GCMC_JOBS_DEDUP_TTL_MS``, 24 h)."""
        ttl = options.get("dedup_ttl") or self.options.get("dedup_ttl")
        if ttl is None:
            for middleware in self.broker.middleware:
                if isinstance(middleware, Deduplication):
                    ttl = middleware.ttl
                    break
        return int(ttl or DEFAULT_WINDOW_MS)

    def send_with_options(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        delay: Any = None,
        **options: Any,
    ) -> dramatiq.Message[Any]:
        """Enqueue the message; a duplicate (its dedup key is taken) is returned, not
        enqueued, marked so that :func:`is_duplicate` tells the caller."""
        try:
            return dramatiq.Actor.send_with_options(
                self, args=args, kwargs=kwargs, delay=delay, **options
            )
        except DuplicateMessage as exc:
            duplicate: dramatiq.Message[Any] = exc.message.copy(options={DUPLICATE: True})
            return duplicate


def is_duplicate(message: dramatiq.Message[Any]) -> bool:
    """True when ``message`` was returned by a send as a duplicate and **not enqueued**: its
    dedup key was taken (the same email sent within the dedup TTL, or an explicit key that
    was used). A message that was enqueued may still find its email already sent in the
    worker (``email_log`` is the record of that): it then mails nothing and logs
    ``email_already_done``."""
    return bool(message.options.get(DUPLICATE))


def email_call(
    kind: str,
    to: str,
    payload: EmailPayload | Mapping[str, Any],
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(kwargs, options)`` of an email actor call (validated when a message is built
    from them, by :meth:`EmailActor.message_with_options`)."""
    kwargs: dict[str, Any] = {"kind": kind, "to": to, "payload": payload, "tenant_id": tenant_id}
    if dedup_key is not None:
        kwargs["dedup_key"] = dedup_key
    options = {"correlation_id": correlation_id} if correlation_id is not None else {}
    return kwargs, options


def email_message(
    kind: str,
    to: str,
    payload: EmailPayload | Mapping[str, Any],
    *,
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
    correlation_id: str | None = None,
) -> dramatiq.Message[Any]:
    """A validated, routed, not yet enqueued email message (see
    :func:`gcmc_jobs.sending.build_message`); the message factory the scheduler's digest
    mailing receives."""
    kwargs, options = email_call(kind, to, payload, tenant_id, dedup_key, correlation_id)
    message: dramatiq.Message[Any] = send_email.message_with_options(kwargs=kwargs, **options)
    return message


def _send(
    kind: str,
    to: str,
    payload: dict[str, Any],
    tenant_id: int | str | None = None,
    dedup_key: str | None = None,
) -> None:
    """Deliver one email (see :func:`gcmc_jobs.email.delivery.deliver`)."""
    runtime = current()
    settings = runtime.settings
    options = current_options()
    entry = get_kind(kind)
    to = normalize_address(to)  # already normalised by the sender; a no-op then
    model = validate_payload(entry.name, {**payload, **(options.get("secrets") or {})})
    key = dedup_key or email_dedup_key(entry.name, to, model, tenant_id=tenant_id)
    declared = runtime.broker.get_actor(SECURITY_ACTOR if entry.critical else BULK_ACTOR)
    log = logger.bind(kind=kind, dedup_key=key, tenant_id=tenant_id)
    with counted(
        partial(email_sent, kind), log, failed="email_failed", retry="email_delivery_retry"
    ):
        delivery = deliver(
            runtime.engine,
            runtime.email_transport,
            kind=entry.name,
            to=to,
            payload=model,
            dedup_key=key,
            sender=settings.email_from,
            tenant_id=tenant_id,
            templates_dir=settings.email_templates_dir,
            final_attempt=is_final_attempt(options, declared),
        )
    email_sent(kind, delivery.outcome.value)
    log.info("email_" + delivery.outcome.value, provider_message_id=delivery.provider_message_id)


_POLICY: dict[str, Any] = {"actor_class": EmailActor, "throws": (PermanentError,)}

#: Every kind but security mail: ``queues.EMAIL``, 8 retries from 5 s to 10 min backoff.
send_email = actor(
    actor_name=BULK_ACTOR,
    queue_name=queues.EMAIL,
    priority=100,
    max_retries=8,
    min_backoff=5_000,
    max_backoff=600_000,
    time_limit=120_000,
    **_POLICY,
)(_send)

#: Security mail (``password_reset``): ``queues.EMAIL_CRITICAL``, ahead of bulk mail,
#: 10 quick retries (0.5 s to 30 s backoff): a reset link is useless an hour later.
send_security_email = actor(
    actor_name=SECURITY_ACTOR,
    queue_name=queues.EMAIL_CRITICAL,
    priority=0,
    max_retries=10,
    min_backoff=500,
    max_backoff=30_000,
    time_limit=60_000,
    **_POLICY,
)(_send)

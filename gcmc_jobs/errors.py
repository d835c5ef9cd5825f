"""The exceptions gcmc-jobs raises, in one tree.

::

    GcmcJobsError
    ├── ConfigurationError          settings or wiring that cannot work
    │   ├── NotConfiguredError      an actor was sent before gcmc_jobs.configure()
    │   ├── SchemaMismatch          the database does not match the schema mapping
    │   │                           (gcmc-jobs db check; a worker refuses to start)
    │   └── NoDatabaseFile          the SQLite file of the database URL does not exist
    ├── DuplicateMessage            send() of a message whose dedup key is taken (nothing enqueued;
    │                               also a dramatiq MiddlewareError)
    ├── RateLimitDeferralFailed     a rate-limited message could not be re-enqueued: it is retried
    │                               instead of acked (also a dramatiq MiddlewareError)
    ├── DeadLetterNotFound          no dead letter with that id (also a LookupError)
    ├── KeyTemplateError            a dedup/rate-limit key template names a missing argument
    │                               (raised by send(); also a KeyError and a MiddlewareError)
    ├── PermanentError              retrying cannot help: the message is dead-lettered at once
    │   ├── InvalidPayload          a payload failed validation (also a ValueError)
    │   │   ├── UnknownJob          no daily job has this name
    │   │   ├── UnknownTenant       no tenant has this id (also a LookupError)
    │   │   ├── InvalidPhoneNumber  a phone number that is not a valid E.164 number
    │   │   └── UnknownWebhookEndpoint  no webhook endpoint (or delivery) has this id
    │   ├── UnknownTemplate         no template for an email kind
    │   ├── TemplateRenderError     an email template failed to render (undefined variable…)
    │   └── PermanentDeliveryError  the mail server refused for good (5xx)
    │       ├── SmsRejected         the SMS provider refused a message for good (its code)
    │       └── MailboxNotFound     a 5xx at RCPT saying the mailbox does not exist (5.1.1):
    │                               the address is suppressed at once
    ├── TransientError              worth retrying with backoff
    │   ├── TransientDeliveryError  the mail server is down or said 4xx
    │   └── RunInProgress           a daily run is claimed by another worker; retry later
    ├── UnknownQueue                an operator named a queue no actor or worker uses (LookupError)
    ├── LiveMessageNotFound         no ready or delayed message with that id in the queue
    │                               (LookupError)
    ├── UnsupportedByBroker         the configured broker cannot do this (listing RabbitMQ's
    │                               queued messages: AMQP cannot read one without consuming it)
    ├── DestinationRefused          a webhook's host resolves only to addresses deliveries may not
                                    reach (private, loopback, link-local…)
    ├── CampaignNotFound            no campaign with that id (of that tenant; a LookupError)
    ├── CampaignStateError          the campaign cannot do that now (pause a finished one…;
    │                               also a ValueError)
    └── InvalidUnsubscribeToken     an unsubscribe link not signed by us (also a ValueError)

Actors declare ``throws=(PermanentError,)`` so Dramatiq's ``Retries`` middleware never
retries a permanent error; everything else is retried with exponential backoff and jitter.
"""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import MiddlewareError

__all__ = [
    "CampaignNotFound",
    "CampaignStateError",
    "ConfigurationError",
    "DeadLetterNotFound",
    "DestinationRefused",
    "DuplicateMessage",
    "GcmcJobsError",
    "InvalidPayload",
    "InvalidPhoneNumber",
    "InvalidUnsubscribeToken",
    "KeyTemplateError",
    "LiveMessageNotFound",
    "MailboxNotFound",
    "NoDatabaseFile",
    "NotConfiguredError",
    "PermanentDeliveryError",
    "PermanentError",
    "RateLimitDeferralFailed",
    "RunInProgress",
    "SchemaMismatch",
    "SmsRejected",
    "TemplateRenderError",
    "TransientDeliveryError",
    "TransientError",
    "UnknownJob",
    "UnknownQueue",
    "UnknownTemplate",
    "UnknownTenant",
    "UnknownWebhookEndpoint",
    "UnsupportedByBroker",
]


class GcmcJobsError(Exception):
    """Base class of every error gcmc-jobs raises on purpose."""


class ConfigurationError(GcmcJobsError):
    """Settings or wiring that cannot work (a bad URL, a missing Redis for a store)."""


class NotConfiguredError(ConfigurationError):
    """An actor was sent before :func:`gcmc_jobs.configure` bound the actors to a broker."""


class SchemaMismatch(ConfigurationError):
    """The database does not match the schema mapping (:mod:`gcmc_jobs.db.check`).

    ``report`` is the :class:`~gcmc_jobs.db.check.CheckReport`; the message names the
    mapping and has one line per problem, as ``gcmc-jobs db check`` prints them.
    """

    def __init__(self, report: Any) -> None:
        lines = "\n".join(str(problem) for problem in report.problems)
        super().__init__(
            f"the database does not match the schema mapping {report.mapping!r} "
            "(GCMC_JOBS_SCHEMA_MAPPING); `gcmc-jobs db check` lists the same problems, "
            "GCMC_JOBS_SCHEMA_CHECK=false starts anyway:\n" + lines
        )
        self.report = report


class NoDatabaseFile(ConfigurationError):
    """The SQLite file of ``GCMC_JOBS_DATABASE_URL`` does not exist: a check does not create
    an empty one (``gcmc-jobs db upgrade`` does)."""


class DuplicateMessage(MiddlewareError, GcmcJobsError):
    """``send()`` of a message whose dedup key another message holds: nothing was enqueued.

    ``message`` is the message that was not enqueued, ``key`` its dedup key.
    """

    def __init__(self, message: Any, key: str) -> None:
        super().__init__(f"dedup key {key!r} is taken: message {message.message_id} not enqueued")
        self.message = message
        self.key = key


class RateLimitDeferralFailed(MiddlewareError, GcmcJobsError):
    """A rate-limited message could not be re-enqueued with its delay.

    Raised from ``before_process_message`` so the message counts as a failed attempt and
    ``Retries`` retries it, instead of being acknowledged and lost.
    """


class KeyTemplateError(MiddlewareError, GcmcJobsError, KeyError):
    """An actor's ``dedup_key``/``rate_limit_key`` template names an argument the message
    lacks. Raised by ``send()``: nothing is enqueued."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DeadLetterNotFound(GcmcJobsError, LookupError):
    """No dead letter has that id."""


class PermanentError(GcmcJobsError):
    """An error that no retry can fix: the message goes to the dead letters at once."""


class InvalidPayload(PermanentError, ValueError):
    """A payload failed validation. Raised in the caller, at ``send()`` time."""


class UnknownJob(InvalidPayload):
    """No daily job has this name (``gcmc_jobs.scheduling.jobs.JOB_NAMES`` lists them)."""


class UnknownTenant(InvalidPayload, LookupError):
    """No tenant has this id: a daily run was asked for one that does not exist, or an
    email names a ``tenant_id`` the database does not know (dead-lettered at once)."""


class InvalidPhoneNumber(InvalidPayload):
    """A phone number that is not a valid number in E.164 form (``+`` and the country code).

    Raised in the caller for a number given to ``gcmc-jobs sms opt-in`` or ``send_sms``, and
    in the worker, at send time, for a stored number: that SMS alone fails for good.
    """


class UnknownTemplate(PermanentError):
    """No template exists for an email kind."""


class TemplateRenderError(PermanentError):
    """An email template failed to render (an undefined variable, a sandbox violation)."""


class PermanentDeliveryError(PermanentError):
    """The mail server refused the message for good (an SMTP 5xx reply)."""


class SmsRejected(PermanentDeliveryError):
    """The SMS provider refused one message for good (Twilio: a 4xx answer with its error
    code, such as 21211 "invalid To number" or 21610 "the recipient replied STOP").

    ``code`` is the provider's error code (None when it gave none), ``status`` the HTTP
    status, and ``suppress`` the :class:`~gcmc_jobs.db.enums.SmsSuppressionReason` value the
    number is suppressed with (``"stop"``, ``"permanent_error"``), or None when the refusal
    says nothing about the number (a bad sender, an account problem).
    """

    def __init__(
        self, message: str, *, code: int | None, status: int, suppress: str | None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.suppress = suppress


class MailboxNotFound(PermanentDeliveryError):
    """The mail server refused a recipient at RCPT because the mailbox does not exist
    (``5.1.1``, ``5.1.10``, a 550 "no such user": :mod:`gcmc_jobs.email.bounce_codes`).
    :func:`gcmc_jobs.email.delivery.deliver` suppresses the address at once."""

    def __init__(self, message: str, *, address: str, code: int) -> None:
        super().__init__(message)
        self.address = address
        self.code = code


class TransientError(GcmcJobsError):
    """An error worth retrying: the outside world may be better in a moment."""


class TransientDeliveryError(TransientError):
    """The mail server is unreachable or answered 4xx."""


class UnknownQueue(GcmcJobsError, LookupError):
    """An operator named a queue that no actor declares and no worker consumes."""


class LiveMessageNotFound(GcmcJobsError, LookupError):
    """No ready or delayed message of the queue has that message id (it ran, is running, was
    cancelled, or never was in that queue)."""


class UnsupportedByBroker(GcmcJobsError):
    """The configured broker cannot do what was asked: listing, showing, cancelling or
    promoting queued messages needs Redis (AMQP cannot read a message without taking it off
    its queue, nor delete one by id). The message says what the broker can tell instead."""


class RunInProgress(TransientError):
    """A daily job's run is claimed by another worker (``job_runs`` row ``running``).

    Retried with backoff until that run finishes or goes stale (its worker died).
    """


class UnknownWebhookEndpoint(InvalidPayload, LookupError):
    """No webhook endpoint (or delivery) has this id, for this tenant."""


class DestinationRefused(GcmcJobsError):
    """A webhook's host resolves only to addresses deliveries may not reach: private,
    loopback, link-local, multicast, reserved or unspecified (unless
    ``GCMC_JOBS_WEBHOOK_ALLOW_PRIVATE``). Checked on the resolved address at connect time."""


class CampaignNotFound(GcmcJobsError, LookupError):
    """No campaign with that id (or not of the tenant named)."""


class CampaignStateError(GcmcJobsError, ValueError):
    """The campaign's status does not allow that (pausing a finished campaign, starting a
    running one): the message names both."""


class InvalidUnsubscribeToken(GcmcJobsError, ValueError):
    """An unsubscribe token that was not made with the configured secret, or was altered
    (another address, tenant or campaign)."""

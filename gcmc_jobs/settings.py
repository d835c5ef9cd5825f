"""The one configuration object of gcmc-jobs, read from ``GCMC_JOBS_*`` environment variables.

Configuration flows one way: environment → :class:`Settings` → keyword arguments. Library
modules never read the environment themselves; only entry points (``gcmc_jobs.worker``, the
``gcmc-jobs`` command) build a :class:`Settings` from it. Host applications may also build
one in code: ``Settings(database_url=..., broker_url=...)``.

Every duration is in milliseconds, like Dramatiq's own options.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gcmc_jobs.redis_urls import is_sentinel_url, parse_sentinel_url

__all__ = ["BrokerKind", "Settings", "broker_kind_of"]

#: The kinds of broker gcmc-jobs builds (:attr:`Settings.broker_kind`).
BrokerKind = Literal["redis", "amqp", "stub"]

#: Broker URL scheme -> broker kind.
BROKER_SCHEMES: dict[str, BrokerKind] = {
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    # Redis under Sentinel (gcmc_jobs.redis_urls: the format, the client it builds).
    "redis+sentinel": "redis",
    "amqp": "amqp",
    "amqps": "amqp",
    "stub": "stub",
}


def broker_kind_of(url: str) -> BrokerKind:
    """The kind of broker ``url`` names, by its scheme; ``ValueError`` naming
    ``GCMC_JOBS_BROKER_URL`` and the accepted schemes otherwise (the URL is not echoed: it
    may hold a password)."""
    scheme, sep, _ = url.partition("://")
    kind = BROKER_SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        accepted = ", ".join(f"{s}://" for s in BROKER_SCHEMES)
        raise ValueError(
            f"GCMC_JOBS_BROKER_URL must start with one of {accepted}; got scheme "
            f"{scheme[:12] if sep else '(none)'!r}"
        )
    return kind


#: The schemes of ``GCMC_JOBS_REDIS_URL`` (those of a Redis broker URL).
REDIS_SCHEMES = tuple(scheme for scheme, kind in BROKER_SCHEMES.items() if kind == "redis")
#: The schemes of ``GCMC_JOBS_EMAIL_URL`` (:func:`gcmc_jobs.email.transports.from_url`).
EMAIL_SCHEMES = ("smtp", "smtps", "file", "memory")
#: The schemes of ``GCMC_JOBS_SMS_URL`` (:func:`gcmc_jobs.sms.transports.from_settings`).
SMS_SCHEMES = ("twilio", "file", "memory")


def _scheme(url: str) -> str | None:
    """The scheme of ``url`` (lower case), or None when it has no ``scheme://``."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme else None


# SQLAlchemy's own URL pattern (``sqlalchemy.engine.url._parse_url``), so that checking a
# setting does not import SQLAlchemy (~0.1 s): the CLI's light commands never need it.
# tests/test_settings.py checks that it accepts exactly what ``make_url`` accepts.
_DATABASE_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)


def _check_database_url(url: str) -> None:
    """``ValueError`` naming ``GCMC_JOBS_DATABASE_URL`` when SQLAlchemy's ``make_url`` would
    not parse ``url`` (the value is never echoed: it may hold a password)."""
    match = _DATABASE_URL.match(url)
    port = match.group("port") if match is not None else None
    try:
        if match is None:
            raise ValueError("no match")
        if port is not None:
            int(port)  # as make_url does (URL.create: an empty port is not a number)
    except ValueError:
        raise ValueError(
            "GCMC_JOBS_DATABASE_URL is not a database URL: expected "
            "dialect+driver://host:port/database (credentials before the host), such as "
            "postgresql+psycopg://db.example/gcmc or sqlite:///gcmc_jobs.sqlite3"
        ) from None


def _check_redis_url(url: str) -> None:
    """``ValueError`` naming ``GCMC_JOBS_REDIS_URL`` when ``url`` is not a Redis URL."""
    if _scheme(url) not in REDIS_SCHEMES:
        accepted = ", ".join(f"{s}://" for s in REDIS_SCHEMES)
        raise ValueError(f"GCMC_JOBS_REDIS_URL must start with one of {accepted}")
    _check_sentinel_url(url, "GCMC_JOBS_REDIS_URL")


def _check_sentinel_url(url: str, variable: str) -> None:
    """``ValueError`` naming ``variable`` when ``url`` is a malformed ``redis+sentinel://``
    URL (:func:`~gcmc_jobs.redis_urls.parse_sentinel_url` says what is wrong)."""
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            raise ValueError(f"{variable}: {exc}") from None


def _check_email_url(url: str) -> None:
    """``ValueError`` naming ``GCMC_JOBS_EMAIL_URL`` when no transport takes ``url``."""
    scheme = _scheme(url)
    if scheme not in EMAIL_SCHEMES:
        accepted = ", ".join(f"{s}://" for s in EMAIL_SCHEMES)
        raise ValueError(f"GCMC_JOBS_EMAIL_URL must start with one of {accepted}")
    if scheme in ("smtp", "smtps") and not urlsplit(url).hostname:
        raise ValueError("GCMC_JOBS_EMAIL_URL names no SMTP host: smtp://user:pass@host:port")
    if scheme == "file" and not url.partition("://")[2]:
        raise ValueError("GCMC_JOBS_EMAIL_URL names no directory: file://./outbox")


#: The default daily schedule, in each tenant's local time (DOMAIN.md).
DEFAULT_JOB_TIMES: dict[str, time] = {
    "compliance_refresh": time(2, 0),
    "document_expiry_emails": time(7, 0),
    "document_expiry_notifications": time(8, 0),
    "filing_reminder_emails": time(8, 0),
    "filing_reminders": time(9, 0),
    "retention": time(3, 30),
    # Works on the tenant's first local day of each month only (the month before's report).
    "monthly_report": time(6, 0),
}


class Settings(BaseSettings):
    """Settings of gcmc-jobs, one field per ``GCMC_JOBS_<FIELD>`` environment variable.

    The defaults run everything embedded (SQLite, an in-process broker, ``.eml`` files in
    ``./outbox``) so that the demo works on a machine with nothing running. Production sets
    at least ``GCMC_JOBS_DATABASE_URL`` and ``GCMC_JOBS_BROKER_URL``.
    """

    model_config = SettingsConfigDict(
        env_prefix="GCMC_JOBS_",
        env_file=None,
        extra="ignore",
        frozen=True,
        # Values are secrets (URLs with passwords): a validation error names the setting and
        # the problem, never the value.
        hide_input_in_errors=True,
    )

    # -- Services -----------------------------------------------------------------------
    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///gcmc_jobs.sqlite3"),
        description="SQLAlchemy URL of the database: `postgresql+psycopg://…` in production, "
        "a SQLite file in the working directory by default.",
    )
    schema_mapping: str = Field(
        default="gcmc",
        description="How the platform's tables are named and typed (README \"The platform's "
        "database\"): `gcmc` (the package's own names), `prisma` (Prisma's default names), a "
        "path to a `.json` or `.toml` mapping, or `module:attribute` of a `SchemaMapping`.",
    )
    platform_tables: Literal["managed", "external"] = Field(
        default="managed",
        description="`managed`: `gcmc-jobs db upgrade` creates the platform's tables too, with "
        "the `gcmc` mapping only (the demo, tests); `external`: the platform owns and migrates "
        "them: `db upgrade` creates only the package's tables, in the mapping's package schema, "
        "with no foreign key to the platform's, and touches no platform table.",
    )
    schema_check: bool = Field(
        default=True,
        description="Workers compare the database with the schema mapping at start-up (what "
        "`gcmc-jobs db check` reports) and refuse to start on a mismatch; `false` skips it.",
    )
    database_pool_size: int = Field(
        default=5, ge=1, description="Connections kept open per worker process (PostgreSQL)."
    )
    database_max_overflow: int = Field(
        default=10, ge=0, description="Extra connections allowed under load (PostgreSQL)."
    )
    database_jit: bool = Field(
        default=False,
        description="Let PostgreSQL JIT-compile the jobs' statements (off: the `jit=off` "
        "connection option; set true behind a pooler that refuses startup options).",
    )
    broker_url: SecretStr = Field(
        default=SecretStr("stub://"),
        description="`redis://…`, `redis+sentinel://…` (Redis under Sentinel, README "
        "'Redis Sentinel'), `amqp://…`, or `stub://` for the in-process broker.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for the middleware's stores (deduplication keys, rate limits, "
        "pause flags). Defaults to the broker URL when that is Redis; with RabbitMQ it must "
        "be set, or the stores fall back to in-process stubs (one process only).",
    )
    namespace: str = Field(
        default="gcmc_jobs",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key gcmc-jobs writes, and the Redis broker's "
        "namespace. Two deployments on one Redis need two namespaces.",
    )
    broker_heartbeat_timeout_ms: int = Field(
        default=60_000,
        ge=1_000,
        description="Redis broker: a worker silent this long is dead, and the messages it "
        "had fetched but not acknowledged go back to their queue (Dramatiq's default). Keep "
        "it well above the longest time a worker's threads can all be busy with prefetch "
        "full, or live work is run twice.",
    )
    broker_maintenance_chance: int = Field(
        default=1_000,
        ge=0,
        le=1_000_000,
        description="Redis broker: how many broker commands in a million also sweep dead "
        "workers' messages back to the queue and expire old dead letters (Dramatiq's "
        "default, 1,000).",
    )
    broker_ack_batch_ms: int = Field(
        default=10,
        ge=0,
        description="Redis broker: a worker gathers its acknowledgements this long and writes "
        "them in one call per queue from a background thread, instead of one round trip per "
        "message in the thread that ran it; 0 acknowledges each at once. A worker killed "
        "meanwhile runs those messages again after its heartbeat timeout (at least once).",
    )

    host_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Modules of the host application that `configure()` imports (so every "
        "worker, the scheduler tick and every command know them): where the host declares "
        "its actors (`@gcmc_jobs.actor`) and registers its daily jobs "
        "(`@gcmc_jobs.scheduling.daily_job`). Comma-separated: `host_app.jobs,host_app.mail`.",
    )

    # -- Retry policy defaults (each actor may override; see README) ---------------------
    max_retries: int = Field(default=5, ge=0, description="Retries after the first attempt.")
    min_backoff_ms: int = Field(default=1_000, ge=0, description="First retry delay, ms.")
    max_backoff_ms: int = Field(default=300_000, ge=0, description="Longest retry delay, ms.")
    time_limit_ms: int = Field(default=600_000, ge=1, description="Longest one attempt may run.")

    # -- Deduplication, rate limits, dead letters ----------------------------------------
    dedup_ttl_ms: int = Field(
        default=86_400_000, ge=1, description="How long a finished message's key stays taken."
    )
    rate_limit: int = Field(
        default=20, ge=1, description="Emails one address may receive per window."
    )
    rate_limit_window_ms: int = Field(default=3_600_000, ge=1_000, description="Window, ms.")
    security_rate_limit: int = Field(
        default=10,
        ge=1,
        description="Separate limit for security mail (password resets) per address per window.",
    )
    rate_limit_max_deferral_ms: int = Field(
        default=86_400_000,
        ge=1_000,
        description="An email deferred longer than this in total is dead-lettered.",
    )

    status_ttl_ms: int = Field(
        default=604_800_000,
        ge=0,
        description="How long a message's status (gcmc_jobs.status, `gcmc-jobs status`) is "
        "kept after its last change, ms (7 days by default); 0 records no status.",
    )
    worker_stats_interval_ms: int = Field(
        default=5_000,
        ge=0,
        description="How often each Redis worker process writes its figures (busy threads, "
        "messages processed and failed, processing times, memory) to the worker registry "
        "that health and the dashboard read, ms (5 s); 0: no figures kept or written.",
    )
    worker_stats_window_ms: int = Field(
        default=300_000,
        ge=1_000,
        description="The stretch of recent messages a worker's mean and p95 processing "
        "times are taken over, ms (5 min; at most the last 4,096 messages).",
    )

    # -- Outbox -------------------------------------------------------------------------------
    outbox_relay: bool = Field(
        default=True,
        description="Run the outbox relay in every worker process (it moves the messages "
        "hosts committed with gcmc_jobs.outbox to the broker). Off: run `gcmc-jobs outbox "
        "relay` instead.",
    )
    outbox_batch_size: int = Field(
        default=500, ge=1, description="Outbox rows the relay takes per transaction."
    )
    outbox_poll_ms: int = Field(
        default=1_000,
        ge=10,
        description="Longest wait of the relay between two looks at the outbox, ms; on "
        "PostgreSQL a commit wakes it at once (NOTIFY). Also its wait after a failure.",
    )

    # -- Email ------------------------------------------------------------------------------
    email_url: SecretStr = Field(
        default=SecretStr("file://./outbox"),
        description="`smtp://user:pass@host:port`, `smtps://…`, `file://DIR`, or `memory://`.",
    )
    email_from: str = Field(
        default="GCMC Compliance <no-reply@gcmc.example>", description="The From header."
    )
    email_timeout_ms: int = Field(default=10_000, ge=1, description="SMTP socket timeout, ms.")
    email_retry_attempts: int = Field(
        default=3,
        ge=1,
        description="Tries of one SMTP delivery inside one attempt of the email actor "
        "(connection errors and 4xx replies), before Dramatiq's retries take over.",
    )
    email_retry_max_wait_ms: int = Field(
        default=1_000,
        ge=0,
        description="Longest jittered wait between those tries, ms (the first is ~50 ms).",
    )
    email_templates_dir: str | None = Field(
        default=None,
        description="A directory whose templates override the packaged ones, file by file.",
    )
    portal_url: str = Field(
        default="https://portal.gcmc.example", description="Base URL of links in email."
    )
    support_email: str = Field(
        default="support@gcmc.example", description="The support address shown in email."
    )

    # -- SMS --------------------------------------------------------------------------------
    sms_url: str = Field(
        default="file://./sms-outbox",
        description="The SMS transport: `twilio://` (Twilio's Messages API, the "
        "GCMC_JOBS_SMS_TWILIO_* settings), `file://DIR` (one JSON file per SMS), or "
        "`memory://`.",
    )
    sms_from: str | None = Field(
        default=None,
        description="The sender of SMS: an E.164 number (`+15005550006`) or a Twilio "
        "Messaging Service SID (`MG…`); required by `twilio://`.",
    )
    sms_twilio_account_sid: str | None = Field(
        default=None, description="The Twilio account SID (`AC…`): the user of basic auth."
    )
    sms_twilio_auth_token: SecretStr | None = Field(
        default=None, description="The Twilio auth token: the password of basic auth."
    )
    sms_twilio_base_url: str = Field(
        default="https://api.twilio.com",
        description="Base URL of Twilio's REST API (a local server in tests).",
    )
    sms_timeout_ms: int = Field(
        default=10_000, ge=1, description="Timeout of each SMS provider request, ms."
    )

    # -- Bounces and suppressions (issue 13) -------------------------------------------------
    bounce_soft_threshold: int = Field(
        default=3,
        ge=1,
        description="Soft bounces of one address within GCMC_JOBS_BOUNCE_SOFT_WINDOW_MS that "
        "suppress it (reason `soft_bounce`); a hard bounce or a complaint suppresses at once.",
    )
    bounce_soft_window_ms: int = Field(
        default=7 * 86_400_000,
        ge=1,
        description="The window over which soft bounces are counted, ms (7 days).",
    )
    email_hook_ses_cert_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sns.*.amazonaws.com"],
        description="Hosts (shell patterns) an SNS `SigningCertURL` or `SubscribeURL` may "
        "name; always over https. Comma-separated.",
    )
    email_hook_ses_ca_file: str | None = Field(
        default=None,
        description="A CA bundle to verify the https server of the SNS signing certificate "
        "with (default: the system's trust store).",
    )
    email_hook_ses_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SNS topics whose messages `POST /hooks/email/ses` accepts "
        "(comma-separated; empty: any topic, once its signature is verified).",
    )
    email_hook_postmark_credentials: SecretStr | None = Field(
        default=None,
        description="`user:password` that Postmark sends as HTTP basic auth to "
        "`POST /hooks/email/postmark` (Postmark signs nothing).",
    )
    email_hook_postmark_token: SecretStr | None = Field(
        default=None,
        description="Or a token Postmark sends in an `X-Webhook-Token` custom header.",
    )
    email_hook_sendgrid_public_key: SecretStr | None = Field(
        default=None,
        description="The SendGrid Event Webhook's ECDSA verification key (base64 DER, as "
        "SendGrid shows it, or PEM).",
    )
    email_hook_mailgun_signing_key: SecretStr | None = Field(
        default=None, description="Mailgun's HTTP webhook signing key (HMAC-SHA256)."
    )
    email_hook_max_age_ms: int = Field(
        default=600_000,
        ge=1_000,
        description="A signed SendGrid or Mailgun webhook older than this is refused as a "
        "replay, ms (10 minutes).",
    )

    # -- Campaigns ----------------------------------------------------------------------------
    campaign_secret: SecretStr | None = Field(
        default=None,
        description="Secret of the unsubscribe tokens in campaign email (HMAC-SHA256; at "
        "least 16 characters). Unset, campaigns cannot start. Changing it invalidates the "
        "links of every email already sent.",
    )
    campaign_unsubscribe_url: str = Field(
        default="https://jobs.gcmc.example/unsubscribe",
        pattern=r"^https?://[^\s]+$",
        description="Public URL of the admin app's `/unsubscribe` route (not behind the admin "
        "token): the token is appended as `/TOKEN` in `List-Unsubscribe` and the footer link.",
    )
    campaign_unsubscribe_mailto: str | None = Field(
        default=None,
        description="Mailbox of the `mailto:` in `List-Unsubscribe` (subject `unsubscribe "
        "TOKEN`, for the host's mail handling); unset, only the HTTPS link is given.",
    )
    campaign_rate_per_second: float = Field(
        default=10.0,
        gt=0,
        description="Emails per second a campaign sends unless it sets its own rate.",
    )
    campaign_batch_size: int = Field(
        default=200,
        ge=1,
        le=5_000,
        description="Most emails a campaign's dispatcher queues at one time; it queues the "
        "next batch when the previous is mostly sent, so a pause takes effect within it.",
    )

    # -- Mail circuit breaker, provider send rate (README "Mail server outages", "Provider
    #    send rate") ------------------------------------------------------------------------
    mail_breaker: bool = Field(
        default=True,
        description="Hold email while the mail server is down (circuit breaker) instead of "
        "spending retries: `false` gives every failure to the retry policy.",
    )
    mail_breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Delivery failures in a row (connection errors, 4xx replies) that open "
        "the mail circuit breaker.",
    )
    mail_breaker_probe_min_ms: int = Field(
        default=5_000, ge=1, description="Wait before the first probe of the mail server, ms."
    )
    mail_breaker_probe_max_ms: int = Field(
        default=60_000,
        ge=1,
        description="Longest wait between probes, ms (the wait doubles after each failed one).",
    )
    mail_breaker_hold_ms: int = Field(
        default=10_000,
        ge=1,
        description="How long an email held by the open breaker waits before it is looked "
        "at again, ms.",
    )
    mail_breaker_critical_hold_ms: int = Field(
        default=1_000,
        ge=1,
        description="The same for critical email (password resets), ms: it is back first.",
    )
    mail_breaker_half_open_ms: int = Field(
        default=5_000,
        ge=0,
        description="After a successful probe, how long non-critical email stays held while "
        "critical email goes first, ms; the first delivery after it closes the breaker.",
    )
    mail_breaker_refresh_ms: int = Field(
        default=1_000,
        ge=0,
        description="How long a worker trusts its cached copy of the breaker's state, ms.",
    )
    provider_rate: float | None = Field(
        default=None,
        gt=0,
        description="Emails per second the whole deployment may send (the provider's cap), "
        "a token bucket in Redis; unset: no limit. Over it, email is deferred, never failed.",
    )
    provider_burst: int | None = Field(
        default=None,
        ge=1,
        description="Emails sendable at once after a quiet spell (the bucket's size); "
        "default: one second's worth of `provider_rate`.",
    )
    provider_critical_reserve_percent: int = Field(
        default=20,
        ge=0,
        le=99,
        description="Share of the bucket kept for critical email (password resets): other "
        "email takes a token only while more than this share remains.",
    )

    # -- Schedule ---------------------------------------------------------------------------
    job_times: dict[str, time] = Field(
        default_factory=lambda: dict(DEFAULT_JOB_TIMES),
        description="Local time of each daily job, as JSON: "
        '`{"compliance_refresh": "02:00", ...}`.',
    )
    scheduler_tick_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="How often the scheduler tick works, minutes: periodiq fires it every "
        "minute and it looks for due runs on the minutes (since 00:00 UTC) divisible by this.",
    )
    schedule_spread_minutes: int = Field(
        default=30,
        ge=0,
        le=240,
        description="Window after each daily job's local time over which the tenants of one "
        "timezone are spread, minutes: each tenant runs a fixed number of minutes (from its "
        "id) into it, every day. 0: every tenant at the job's time.",
    )

    # -- Operations -------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin HTTP API; unset, the API refuses."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="`auto`: console when stderr is a terminal, else JSON."
    )
    log_level: str = Field(default="INFO", description="Level of gcmc-jobs' log events.")
    log_buffer_ms: int = Field(
        default=100,
        ge=0,
        description="Worker log lines below WARNING are written in batches gathered over "
        "this many ms (0: each at once); warnings and errors are written at once.",
    )
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus metrics from the worker on this port."
    )
    pause_refresh_ms: int = Field(
        default=1_000,
        ge=0,
        description="How long a worker trusts its cached set of paused queues, ms: a pause or "
        "resume reaches every worker within this time.",
    )
    pause_delay_ms: int = Field(
        default=5_000,
        ge=1,
        description="How long a paused queue's message waits before it is looked at again, "
        "ms: after a resume, the backlog starts running within this time.",
    )
    health_timeout_ms: int = Field(
        default=2_000, ge=1, description="Bound on each health check's network call, ms."
    )
    health_max_ready: int = Field(
        default=10_000, ge=0, description="Ready messages in one queue above which it is unhealthy."
    )
    health_max_age_ms: int = Field(
        default=900_000,
        ge=0,
        description="Age of a queue's oldest ready message above which it is unhealthy, ms "
        "(15 minutes by default).",
    )
    health_job_grace_ms: int = Field(
        default=7_200_000,
        ge=0,
        description="How long after its scheduled local time a daily job may still be "
        "missing before health reports it overdue, ms (2 hours by default).",
    )

    # -- Retention (the daily ``retention`` job, ``gcmc-jobs retention run``) ------------
    retention_read_notifications_days: int = Field(
        default=90,
        ge=1,
        description="Read in-app notifications are deleted this many days after they were read.",
    )
    retention_unread_notifications_days: int = Field(
        default=365,
        ge=1,
        description="Unread notifications are deleted this many days after they were created.",
    )
    retention_email_log_days: int = Field(
        default=400,
        ge=1,
        description="`email_log` rows are deleted this many days after they "
        "were created (the never-twice record of an email lasts as long).",
    )
    retention_job_runs_days: int = Field(
        default=400,
        ge=2,
        description="`job_runs` rows are deleted this many days after their local date.",
    )
    retention_dead_letters_days: int = Field(
        default=30,
        ge=1,
        description="Replayed dead letters are deleted this many days after "
        "their replay (dead letters never replayed stay until purged).",
    )
    retention_delivery_logs_days: int = Field(
        default=90,
        ge=1,
        description="Webhook events (with their deliveries and attempts) and the per-address "
        "log of finished or cancelled campaigns are deleted this many days after.",
    )
    retention_batch_size: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="Rows deleted per statement (each in its "
        "own short transaction, so no lock is held for long).",
    )

    # -- Alerts pushed to operators ------------------------------------------------------
    alert_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Operators' addresses that alerts are emailed to (comma-separated): a "
        "daily job failed for good, too many dead letters, health unhealthy for too long. "
        "Empty (the default): no alert is sent.",
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description="Also POST each alert to this URL (an `operator.alert` event, Standard "
        "Webhooks, through the webhook client: private addresses refused unless "
        "GCMC_JOBS_WEBHOOK_ALLOW_PRIVATE). Unset: email only.",
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The `whsec_<base64>` secret that signs the operator webhook (unset: "
        "the request is not signed).",
    )
    alert_interval_ms: int = Field(
        default=3_600_000,
        ge=60_000,
        description="At most one alert per cause in this long, ms (an hour by default).",
    )
    alert_dead_letters: int = Field(
        default=100,
        ge=1,
        description="Dead letters waiting (not replayed) above which operators are alerted.",
    )
    alert_unhealthy_grace_ms: int = Field(
        default=900_000,
        ge=0,
        description="How long health must stay unhealthy before operators are alerted, ms "
        "(15 minutes by default).",
    )

    webhook_allow_private: bool = Field(
        default=False,
        description="Deliver webhooks to private, loopback and link-local addresses too "
        "(checked on the resolved address at connect time); off in production.",
    )
    webhook_connect_timeout_ms: int = Field(
        default=5_000, ge=1, description="Webhook delivery: connect timeout, ms."
    )
    webhook_read_timeout_ms: int = Field(
        default=15_000,
        ge=1,
        description="Webhook delivery: timeout of each read of the response, ms.",
    )
    webhook_max_response_bytes: int = Field(
        default=65_536,
        ge=0,
        description="Webhook delivery: at most this many bytes of a response body are read "
        "(the first 1,024 are kept in the attempt's record).",
    )
    webhook_retry_window_ms: int = Field(
        default=259_200_000,
        ge=0,
        description="Webhook delivery: how long a failing delivery is retried with "
        "exponential backoff before the endpoint is disabled, ms (3 days by default).",
    )
    webhook_retry_base_ms: int = Field(
        default=5_000,
        ge=1,
        description="Webhook delivery: the first retry's delay, ms; each next one is 4 times "
        "longer, capped at 12 hours.",
    )
    webhook_pool_maxsize: int = Field(
        default=4,
        ge=1,
        description="Webhook delivery: kept-alive connections per destination host and worker "
        "process.",
    )

    @field_validator("campaign_secret", mode="after")
    @classmethod
    def _long_enough_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("GCMC_JOBS_CAMPAIGN_SECRET must be at least 16 characters")
        return value

    @field_validator(
        "host_modules",
        "alert_emails",
        "email_hook_ses_cert_hosts",
        "email_hook_ses_topic_arns",
        mode="before",
    )
    @classmethod
    def _module_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):  # JSON, as settings_env writes a list
                return json.loads(text)
            return [name.strip() for name in text.split(",") if name.strip()]
        return value

    @field_validator("broker_url", mode="after")
    @classmethod
    def _known_broker_scheme(cls, value: SecretStr) -> SecretStr:
        broker_kind_of(value.get_secret_value())
        _check_sentinel_url(value.get_secret_value(), "GCMC_JOBS_BROKER_URL")
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _parseable_database_url(cls, value: SecretStr) -> SecretStr:
        _check_database_url(value.get_secret_value())
        return value

    @field_validator("redis_url", mode="after")
    @classmethod
    def _known_redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_redis_url(value.get_secret_value())
        return value

    @field_validator("email_url", mode="after")
    @classmethod
    def _known_email_scheme(cls, value: SecretStr) -> SecretStr:
        _check_email_url(value.get_secret_value())
        return value

    @field_validator("sms_url", mode="after")
    @classmethod
    def _known_sms_scheme(cls, value: str) -> str:
        scheme = _scheme(value)
        if scheme not in SMS_SCHEMES:
            accepted = ", ".join(f"{s}://" for s in SMS_SCHEMES)
            raise ValueError(f"GCMC_JOBS_SMS_URL must start with one of {accepted}")
        if scheme == "file" and not value.partition("://")[2]:
            raise ValueError("GCMC_JOBS_SMS_URL names no directory: file://./sms-outbox")
        return value

    @field_validator("job_times", mode="after")
    @classmethod
    def _known_jobs(cls, value: dict[str, time]) -> dict[str, time]:
        unknown = set(value) - set(DEFAULT_JOB_TIMES)
        if unknown:
            raise ValueError(
                f"unknown job(s) {sorted(unknown)}; known: {sorted(DEFAULT_JOB_TIMES)}"
            )
        return {**DEFAULT_JOB_TIMES, **value}

    @property
    def broker_kind(self) -> BrokerKind:
        """``"redis"``, ``"amqp"`` or ``"stub"``: the broker ``broker_url`` names, parsed once
        here (its scheme is validated when the settings are built)."""
        return broker_kind_of(self.broker_url.get_secret_value())

    @property
    def store_redis_url(self) -> str | None:
        """The Redis URL the middleware's stores use, or None for in-process stubs."""
        if self.redis_url is not None:
            return self.redis_url.get_secret_value()
        if self.broker_kind == "redis":
            return self.broker_url.get_secret_value()
        return None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and **validated** as ``Settings(...)`` would be:
        ``settings.model_copy(update={"email_url": smtp_server.url})`` stores a
        ``SecretStr``, a bad value raises ``ValidationError`` here, and an unknown name
        ``ValueError``. (Pydantic's own ``model_copy`` validates nothing, so a plain string
        in a secret field failed later, inside a worker.) The environment is not read again.
        """
        if not update:
            return super().model_copy(deep=deep)
        fields = type(self).model_fields
        unknown = sorted(set(update) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(fields)}")
        values = {name: getattr(self, name) for name in fields}
        copied = self.model_validate({**values, **update})
        return copied.model_copy(deep=True) if deep else copied

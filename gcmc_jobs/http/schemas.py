"""The JSON bodies of the admin API, as pydantic models (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "PLATFORM_ID",
    "CampaignBody",
    "CampaignProgressBody",
    "CampaignRequest",
    "CancelBody",
    "CancelRequest",
    "DeadLetterDetail",
    "DeadLetterSummary",
    "HealthBody",
    "JobRunBody",
    "LiveMessageBody",
    "LivePageBody",
    "MessageStatusBody",
    "PauseBody",
    "PlatformId",
    "PromoteBody",
    "PromoteRequest",
    "PurgeBody",
    "QueueBody",
    "ReplayBody",
    "ScheduleBody",
    "SmsOptInBody",
    "SmsOptInRequest",
    "SmsOptOutBody",
    "TriggerBody",
    "TriggerRequest",
]

#: A text or UUID platform id: printable ASCII, no space (``cuid()``, UUIDs, slugs).
PLATFORM_ID = r"^[!-~]{1,200}$"
#: A tenant or user id as the API takes it: an integer, or a text id (Prisma's ``cuid()``, a
#: UUID). :func:`gcmc_jobs.http.deps.platform_id` checks it against the configured mapping's
#: ids (a 422 for a non-number where they are integers).
PlatformId = Annotated[int, Field(ge=1, le=2**31 - 1)] | Annotated[str, Field(pattern=PLATFORM_ID)]


class QueueBody(BaseModel):
    """One queue's numbers; null where the broker cannot tell (RabbitMQ: in flight, age)."""

    name: str
    ready: int
    delayed: int | None
    in_flight: int | None
    dead: int | None = Field(description="Messages in the broker's own dead-letter queue.")
    oldest_age_ms: int | None = Field(description="How long the head message has been ready.")
    consumers: int | None
    paused: bool


class PauseBody(BaseModel):
    queue: str
    paused: bool
    changed: bool = Field(description="False when the queue already was in that state.")


class MailCircuitBody(BaseModel):
    """The mail server's circuit breaker (times in ms since the epoch)."""

    enabled: bool = Field(description="False: GCMC_JOBS_MAIL_BREAKER=false, never holds.")
    state: Literal["closed", "open", "half_open"]
    failures: int = Field(description="Delivery failures in a row.")
    opened_at_ms: int | None
    next_probe_ms: int | None
    backoff_ms: int | None
    half_open_at_ms: int | None
    trips: int
    probes: int
    last_error: str | None


class HealthBody(BaseModel):
    status: Literal["ok", "warning", "unhealthy"]
    checked_at: datetime
    checks: dict[str, dict[str, Any]]


class DeadLetterSummary(BaseModel):
    id: int
    message_id: str
    queue: str
    actor: str
    error_type: str
    error: str
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None
    replayed_as: str | None


# The pydantic mypy plugin's synthesized __init__ clashes with a field named ``kwargs``.
class DeadLetterDetail(DeadLetterSummary):  # type: ignore[no-redef]
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    traceback: str | None


class ReplayBody(BaseModel):
    id: int
    replayed_as: str = Field(description="The message id of the new message.")


class PurgeBody(BaseModel):
    purged: int


class JobRunBody(BaseModel):
    id: int
    job: str
    tenant_id: int | str
    local_date: date
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    stats: dict[str, Any]
    error: str | None


class ScheduleBody(BaseModel):
    """One job's next run for one tenant: the instant the scheduler enqueues it from."""

    job: str
    local_time: str = Field(description="HH:MM in each tenant's own timezone.")
    tenant_id: int | str | None = None
    tenant: str | None = Field(default=None, description="The tenant's name.")
    timezone: str | None = None
    local_date: date | None = Field(default=None, description="The local date of the next run.")
    next_run_local: datetime | None = Field(
        default=None, description="In the past when due and waiting for the next tick."
    )
    next_run_utc: datetime | None = None
    today_status: str | None = Field(
        default=None, description="The ledger status of the tenant's local today (null: none)."
    )
    waiting: bool = Field(
        default=False,
        description="Due and not run yet: the next tick enqueues it (next_run_* is past).",
    )
    problem: str | None = Field(
        default=None, description="Why the job is not scheduled (unknown timezone, inactive)."
    )
    offset_minutes: int = Field(
        default=0,
        description="How many minutes after local_time this tenant's runs are due (the "
        "schedule's spread window, GCMC_JOBS_SCHEDULE_SPREAD_MINUTES; the same every day).",
    )


class TriggerRequest(BaseModel):
    tenant_id: PlatformId = Field(
        description="Run the job for this tenant (an integer or a text id, as the platform's)."
    )
    local_date: date | None = Field(
        default=None, description="The tenant-local date to run for; today by default."
    )
    force: bool = Field(
        default=False,
        description="Run again even if it already succeeded (the message has no dedup key).",
    )


class TriggerBody(BaseModel):
    job: str
    tenant_id: int | str
    local_date: date = Field(description="The tenant-local date the run is for.")
    force: bool
    dedup_key: str | None = Field(
        description="job_run:<job>:<tenant>:<local date>, as the scheduler's; null when forced."
    )
    message_id: str = Field(description="The id of the enqueued message.")


class MessageStatusBody(BaseModel):
    """The last known state of one message (``gcmc_jobs.status``); times in UTC."""

    message_id: str
    state: Literal[
        "enqueued",
        "delayed",
        "running",
        "retrying",
        "succeeded",
        "failed",
        "dead_lettered",
        "cancelled",
    ]
    actor: str | None
    queue: str | None
    attempts: int = Field(description="Attempts started so far.")
    enqueued_at: datetime | None
    started_at: datetime | None = Field(description="When the last attempt started.")
    finished_at: datetime | None = Field(description="When the last attempt ended.")
    due_at: datetime | None = Field(
        description="When a delayed message, or a retrying one's next attempt, falls due."
    )
    updated_at: datetime | None
    error_type: str | None = Field(description="The last failed attempt's error type.")
    error: str | None = Field(description="Its text, secrets masked, at most 200 characters.")


SmsCategory = Literal["documents", "filings", "tasks", "service_requests", "billing"]


class SmsOptInRequest(BaseModel):
    """Opt a member of a tenant in to alerts by SMS (``gcmc_jobs.sms.opt_in``)."""

    tenant_id: PlatformId
    user_id: PlatformId
    phone: str = Field(
        min_length=1,
        max_length=40,
        description="E.164: + and the country code (+14155552671); spaces, dots, dashes and "
        "parentheses allowed. Checked against the country's numbering plan.",
    )
    categories: list[SmsCategory] = Field(
        default=["documents", "filings"],
        min_length=1,
        max_length=5,
        description="The categories whose alerts go by SMS (documents and filings are sent).",
    )


class SmsOptInBody(BaseModel):
    """One ``sms_opt_ins`` row."""

    tenant_id: int | str
    user_id: int | str
    category: str
    phone: str = Field(description="E.164.")
    created_at: datetime


class SmsOptOutBody(BaseModel):
    removed: int = Field(description="Opt-ins removed.")


# The pydantic mypy plugin's synthesized __init__ clashes with a field named ``kwargs``.
class LiveMessageBody(BaseModel):  # type: ignore[no-redef]
    """A waiting message of a queue (``gcmc_jobs.ops.live_messages``); secrets masked."""

    message_id: str
    queue: str
    state: Literal["ready", "delayed", "in_flight"] = Field(
        description="ready: in the queue's list; delayed: waiting for due_at; in_flight: a "
        "worker has fetched it (it runs; it cannot be cancelled)."
    )
    actor: str
    tenant_id: int | str | None
    enqueued_at: datetime
    due_at: datetime | None
    retries: int = Field(description="Failed attempts so far.")
    args: list[Any] = Field(description="Empty in a listing; secrets masked.")
    kwargs: dict[str, Any] = Field(description="Empty in a listing; secrets masked.")
    options: dict[str, Any] = Field(description="Empty in a listing; secrets masked.")
    status: MessageStatusBody | None = Field(
        description="Its message-status record (one message only; null in a listing)."
    )


class LivePageBody(BaseModel):
    """A page of waiting messages: ready ones first, then delayed ones by due time."""

    messages: list[LiveMessageBody]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: done.")
    ready: int = Field(description="Ready messages in the whole queue, unfiltered.")
    delayed: int = Field(description="Delayed messages in the whole queue, unfiltered.")


class CancelRequest(BaseModel):
    message_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]] = Field(
        min_length=1, max_length=1000, description="The message ids send() returned."
    )
    dry_run: bool = Field(False, description="Say what would happen; change nothing.")


class CancelBody(BaseModel):
    message_id: str
    status: Literal["cancelled", "would_cancel", "in_flight", "not_found"]
    state: Literal["ready", "delayed", "in_flight"] | None
    actor: str | None


class PromoteRequest(BaseModel):
    message_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]] | None = Field(
        None,
        max_length=1000,
        description="The delayed messages to make ready; null: every delayed one matching "
        "actor and tenant_id.",
    )
    actor: str | None = None
    tenant_id: PlatformId | None = None
    dry_run: bool = Field(False, description="Say what would happen; change nothing.")


class PromoteBody(BaseModel):
    message_id: str
    status: Literal["promoted", "would_promote", "not_delayed", "not_found"]
    actor: str | None


class ReportRequest(BaseModel):
    tenant_id: PlatformId = Field(description="The tenant (an integer or a text id).")
    period: str = Field(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        description="The month, YYYY-MM (it must have begun in the tenant's timezone).",
    )
    force: bool = Field(
        default=False, description="Make and mail the report again even if it was completed."
    )


class ReportBody(BaseModel):
    """A monthly compliance report's record: where its chain is, its files, its recipients."""

    id: int
    tenant_id: int | str
    period: str
    status: Literal["aggregated", "rendered", "emailed", "completed"]
    files: list[dict[str, Any]] = Field(description="name, content_type, size, sha256")
    recipients: list[dict[str, Any]] = Field(description="user_id, name, email, outcome")
    requested_at: datetime
    aggregated_at: datetime | None
    rendered_at: datetime | None
    emailed_at: datetime | None
    completed_at: datetime | None


class ReportRequestBody(BaseModel):
    status: Literal["requested", "pending", "already_completed"] = Field(
        description="requested: the chain was enqueued; pending: it already is; "
        "already_completed: the report exists (send force=true to make it again)"
    )
    tenant_id: int | str
    period: str
    message_id: str | None = Field(description="The chain's first message, when requested.")
    report: ReportBody | None = None


class CampaignProgressBody(BaseModel):
    """A campaign's recipients by status; ``opt_outs``: unsubscribes its links recorded."""

    total: int
    queued: int
    sent: int
    failed: int
    suppressed: int
    unsubscribed: int
    opt_outs: int


class CampaignBody(BaseModel):
    id: int
    tenant_id: int | str
    name: str
    segment: str = Field(description="`clients`, `staff` or `staff:ROLE,ROLE`.")
    status: Literal["draft", "running", "paused", "cancelled", "finished"]
    rate_per_second: float
    created_by: str
    subject_template: str
    body_template: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: CampaignProgressBody


class CampaignRequest(BaseModel):
    """A new campaign: one templated email to a segment of a tenant."""

    tenant_id: PlatformId
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    subject: str = Field(
        min_length=1,
        max_length=500,
        description="Jinja2 template of the subject (fields: recipient_name, recipient_email, "
        "tenant_name, campaign_name, portal_url, support_email, unsubscribe_url).",
    )
    body: str = Field(
        min_length=1, max_length=100_000, description="Jinja2 template of the plain-text body."
    )
    segment: str = Field(
        max_length=200, description="`clients`, `staff` or `staff:ROLE,ROLE` (owner, admin, …)."
    )
    created_by: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    rate_per_second: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="Emails per second; GCMC_JOBS_CAMPAIGN_RATE_PER_SECOND by default.",
    )
    start: bool = Field(default=False, description="Start sending at once (else a draft).")


class ActivityBody(BaseModel):
    """The workers' activity per minute, oldest first (``/api/activity``)."""

    minutes: list[int] = Field(description="Each minute's start, epoch seconds.")
    processed: list[int | None] = Field(description="Messages finished; null: no report.")
    failed: list[int | None] = Field(description="Messages that raised; null: no report.")
    depth: dict[str, list[int | None]] = Field(
        description="Per queue, its ready + delayed messages; null: no report."
    )


class TenantRiskBody(BaseModel):
    tenant_id: int | str
    tenant: str | None = Field(description="The tenant's name.")
    levels: dict[str, int] = Field(description="Scored clients per risk level.")


class RiskDayBody(BaseModel):
    day: date
    low: int
    medium: int
    high: int


class DeliveryBody(BaseModel):
    kind: str
    status: str
    count: int


class OverviewBody(BaseModel):
    """What the dashboard's database charts show (``/api/overview``)."""

    risk: list[TenantRiskBody] = Field(description="Each tenant's clients by risk level.")
    trend: list[RiskDayBody] = Field(
        description="The last 90 days of compliance snapshots, clients per level summed over "
        "the tenants, oldest first."
    )
    email_since: datetime = Field(description="The delivery counts cover emails since then.")
    email: list[DeliveryBody] = Field(description="Emails by kind and status.")

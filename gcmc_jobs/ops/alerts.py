"""Alerts pushed to operators: what needs a person, emailed to ``GCMC_JOBS_ALERT_EMAILS``.

Three causes, each alerted at most once per ``GCMC_JOBS_ALERT_INTERVAL_MS`` (an hour by
default), cluster-wide:

========================  ==================================================================
cause                     when
========================  ==================================================================
``daily_job_failed``      a daily run failed for good: a ``run_daily_job`` dead letter newer
                          than the last one alerted (each failure is told once; the ones of
                          the same hour come together)
``dead_letters``          more than ``GCMC_JOBS_ALERT_DEAD_LETTERS`` dead letters wait to be
                          replayed or purged (told again every interval while it lasts)
``unhealthy``             :func:`~gcmc_jobs.ops.health.check_health` has said ``unhealthy``
                          for ``GCMC_JOBS_ALERT_UNHEALTHY_GRACE_MS`` without a break (told
                          again every interval while it lasts)
========================  ==================================================================

The periodic actor :data:`watch_operations` looks once a minute (``periodiq gcmc_jobs.worker``
sends it; any worker runs it): :func:`push_alerts` evaluates the causes and queues one
``custom`` email per operator and alert through the email actor (retried, dead-lettered,
deduplicated like any email), and, with ``GCMC_JOBS_ALERT_WEBHOOK_URL``, POSTs it as an
``operator.alert`` event signed as Standard Webhooks say (``GCMC_JOBS_ALERT_WEBHOOK_SECRET``)
through the process's webhook client (no redirect followed, private addresses refused
unless allowed); a webhook that fails is logged (``alert.webhook_failed``) and not retried:
the next alert of the cause comes an interval later. The state that makes "at most once
per interval" and "for longer than the grace" hold across processes lives in Redis
(:func:`alert_state`), or in the process for the embedded, Redis-less set-up. An alert that
reached nobody (no email queued, no webhook accepted) is not counted as sent: the next
minute tries again.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from periodiq import cron

from gcmc_jobs import queue_names as queues
from gcmc_jobs import redis_keys
from gcmc_jobs.brokers import actor
from gcmc_jobs.email.kinds import Custom
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware.stores.dead_letters import DeadLetterFilter
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.ops.health.report import HealthReport
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.sending import queue_custom_email
from gcmc_jobs.webhooks.signing import signed_headers

__all__ = [
    "CAUSES",
    "Alert",
    "AlertState",
    "MemoryAlertState",
    "RedisAlertState",
    "alert_state",
    "due_alerts",
    "push_alerts",
    "watch_operations",
]

#: The causes, in the order they are evaluated.
CAUSES = ("daily_job_failed", "dead_letters", "unhealthy")

#: The name operators see as the sender's "tenant" in the shared email layout.
OPERATIONS = "gcmc-jobs operations"

#: How many failures one ``daily_job_failed`` alert lists (the rest are counted).
MAX_LISTED = 20

log = get_logger("gcmc_jobs.alerts")


@dataclass(frozen=True)
class Alert:
    """One alert: its cause (one of :data:`CAUSES`), subject line and plain-text body."""

    cause: str
    subject: str
    body: str
    #: For ``daily_job_failed``: the newest failure it tells (the next alert starts after).
    seen_until: datetime | None = None


# -- state --------------------------------------------------------------------------------------


class AlertState(ABC):
    """Where the alerts remember what they told and since when a condition holds. Every
    method is one atomic operation."""

    @abstractmethod
    def claim(self, cause: str, now: datetime, interval: timedelta) -> bool:
        """Reserve the right to alert ``cause`` now: False when it was alerted less than
        ``interval`` ago."""

    @abstractmethod
    def release(self, cause: str) -> None:
        """Undo :meth:`claim` (the alert could not be queued)."""

    @abstractmethod
    def since(self, condition: str, now: datetime) -> datetime:
        """When ``condition`` was first seen holding, recording ``now`` if it was not."""

    @abstractmethod
    def clear(self, condition: str) -> None:
        """``condition`` no longer holds: the next :meth:`since` starts afresh."""

    @abstractmethod
    def mark(self, name: str) -> datetime | None:
        """The instant stored under ``name`` (None: none yet)."""

    @abstractmethod
    def set_mark(self, name: str, value: datetime) -> None:
        """Store ``value`` under ``name``."""


#: Claim the right to alert: KEYS[1] the cause's ``sent`` key holding the last alert's
#: instant (epoch ms); ARGV now (ms), the interval (ms). The key expires an interval after
#: the alert (it is only a record of it); the comparison is with the caller's ``now``.
_CLAIM = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def _ms(value: datetime | timedelta) -> int:
    seconds = value.timestamp() if isinstance(value, datetime) else value.total_seconds()
    return int(seconds * 1000)


class RedisAlertState(AlertState):
    """The state in Redis, under :func:`gcmc_jobs.redis_keys.alert_key`: shared by every
    worker."""

    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._claim = client.register_script(_CLAIM)

    def _key(self, name: str) -> str:
        return redis_keys.alert_key(self._namespace, name)

    def claim(self, cause: str, now: datetime, interval: timedelta) -> bool:
        keys = [self._key(f"sent:{cause}")]
        return bool(self._claim(keys=keys, args=[_ms(now), _ms(interval)]))

    def release(self, cause: str) -> None:
        self._client.delete(self._key(f"sent:{cause}"))

    def since(self, condition: str, now: datetime) -> datetime:
        key = self._key(f"since:{condition}")
        self._client.set(key, now.isoformat(), nx=True)
        return _instant(self._client.get(key)) or now

    def clear(self, condition: str) -> None:
        self._client.delete(self._key(f"since:{condition}"))

    def mark(self, name: str) -> datetime | None:
        return _instant(self._client.get(self._key(f"mark:{name}")))

    def set_mark(self, name: str, value: datetime) -> None:
        self._client.set(self._key(f"mark:{name}"), value.isoformat())


def _instant(value: bytes | str | None) -> datetime | None:
    """A stored ISO 8601 instant (redis-py answers bytes, or str with decode_responses)."""
    if value is None:
        return None
    return datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value)


class MemoryAlertState(AlertState):
    """The state in this process: for the embedded set-up without Redis (one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, datetime] = {}
        self._since: dict[str, datetime] = {}
        self._marks: dict[str, datetime] = {}

    def claim(self, cause: str, now: datetime, interval: timedelta) -> bool:
        with self._lock:
            last = self._sent.get(cause)
            if last is not None and now - last < interval:
                return False
            self._sent[cause] = now
            return True

    def release(self, cause: str) -> None:
        with self._lock:
            self._sent.pop(cause, None)

    def since(self, condition: str, now: datetime) -> datetime:
        with self._lock:
            return self._since.setdefault(condition, now)

    def clear(self, condition: str) -> None:
        with self._lock:
            self._since.pop(condition, None)

    def mark(self, name: str) -> datetime | None:
        with self._lock:
            return self._marks.get(name)

    def set_mark(self, name: str, value: datetime) -> None:
        with self._lock:
            self._marks[name] = value


_MEMORY: dict[int, MemoryAlertState] = {}


def alert_state(runtime: Runtime) -> AlertState:
    """The runtime's alert state: Redis when it has one (``GCMC_JOBS_REDIS_URL`` or a Redis
    broker), else one in-process state per runtime."""
    client = runtime.stores.redis_client
    if client is not None:
        return RedisAlertState(client, namespace=runtime.settings.namespace)
    return _MEMORY.setdefault(id(runtime), MemoryAlertState())


# -- evaluation ---------------------------------------------------------------------------------


def due_alerts(
    runtime: Runtime, state: AlertState, now: datetime, report: HealthReport
) -> list[Alert]:
    """What operators should be told at ``now``, by cause, before the interval limit: the
    daily runs dead-lettered since the last alert of them, the dead letters waiting against
    the threshold, and how long ``report`` (a health report taken at ``now``) has been
    unhealthy. Records when health turned unhealthy (and forgets it once it is not)."""
    settings = runtime.settings
    found: list[Alert] = []

    # A daily run failed for good: its run_daily_job message was dead-lettered.
    after = state.mark("daily_job_failed")
    failures = runtime.stores.dead_letters.find(
        DeadLetterFilter(actor="run_daily_job", replayed=False, since=after),
        limit=MAX_LISTED + 1,
    )
    failures = [f for f in failures if after is None or f.failed_at > after]
    if failures:
        lines = [
            f"- {f.kwargs.get('job', '?')} for tenant {f.kwargs.get('tenant_id', '?')} on "
            f"{f.kwargs.get('local_date', '?')}: {f.error_type}: {f.error[:300]} "
            f"(dead letter {f.id}, {f.failed_at:%Y-%m-%d %H:%M} UTC)"
            for f in failures[:MAX_LISTED]
        ]
        more = " (and more)" if len(failures) > MAX_LISTED else ""
        found.append(
            Alert(
                "daily_job_failed",
                f"{len(failures[:MAX_LISTED])}{more} daily run(s) failed for good",
                "These daily runs failed on every attempt and are in the dead-letter store:\n"
                + "\n".join(lines)
                + "\n\nSee `gcmc-jobs dead-letters list --actor run_daily_job`; replay with "
                "`gcmc-jobs dead-letters replay ID` once the cause is fixed.",
                seen_until=max(f.failed_at for f in failures),
            )
        )

    # Too many dead letters waiting.
    waiting = report.checks.get("dead_letters")
    count = int(waiting.data.get("waiting", 0)) if waiting is not None else 0
    if count > settings.alert_dead_letters:
        found.append(
            Alert(
                "dead_letters",
                f"{count} dead letters wait to be replayed or purged",
                f"{count} dead letters wait (the alert threshold, GCMC_JOBS_ALERT_DEAD_LETTERS, "
                f"is {settings.alert_dead_letters}).\n\nSee `gcmc-jobs dead-letters list`.",
            )
        )

    # Health unhealthy for longer than the grace.
    if report.status == "unhealthy":
        since = state.since("unhealthy", now)
        grace = timedelta(milliseconds=settings.alert_unhealthy_grace_ms)
        if now - since >= grace:
            failing = [
                f"- {name}: {result.detail}"
                for name, result in report.checks.items()
                if result.status == "unhealthy"
            ]
            minutes = int((now - since).total_seconds() // 60)
            found.append(
                Alert(
                    "unhealthy",
                    f"gcmc-jobs unhealthy for {minutes} minutes",
                    f"Health has been unhealthy since {since:%Y-%m-%d %H:%M} UTC:\n"
                    + "\n".join(failing)
                    + "\n\nSee `gcmc-jobs health`.",
                )
            )
    else:
        state.clear("unhealthy")
    return found


def push_alerts(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    report: HealthReport | None = None,
    state: AlertState | None = None,
) -> list[Alert]:
    """Evaluate the causes (:func:`due_alerts`) and queue one email per operator
    (``GCMC_JOBS_ALERT_EMAILS``) for each alert whose cause was not alerted within the
    interval. Returns the alerts queued. Nothing is evaluated without operators.

    ``report`` defaults to a health report taken now on the runtime's engine; ``state`` to
    :func:`alert_state`.
    """
    settings = runtime.settings
    if not settings.alert_emails and not settings.alert_webhook_url:
        return []
    now = now or datetime.now(UTC)
    state = state or alert_state(runtime)
    if report is None:
        report = check_health(settings, engine=runtime.engine, now=now)
    sent: list[Alert] = []
    interval = timedelta(milliseconds=settings.alert_interval_ms)
    for alert in due_alerts(runtime, state, now, report):
        if not state.claim(alert.cause, now, interval):
            continue  # told less than an interval ago
        try:
            queued = _email(settings.alert_emails, alert, now)
        except BaseException:
            state.release(alert.cause)
            raise
        posted = _post(runtime, alert, now)
        if not queued and not posted:
            state.release(alert.cause)
            continue
        if alert.seen_until is not None:
            state.set_mark(alert.cause, alert.seen_until)
        log.warning(
            "alert.sent",
            cause=alert.cause,
            subject=alert.subject,
            operators=queued,
            webhook=posted,
        )
        sent.append(alert)
    return sent


def _email(operators: Sequence[str], alert: Alert, now: datetime) -> int:
    """Queue ``alert`` to each operator; the number queued (a bad address is logged and
    skipped, the others still get it)."""
    payload = Custom(
        tenant_name=OPERATIONS,
        subject=f"[gcmc-jobs] {alert.subject}",
        body=alert.body,
    )
    queued = 0
    for address in operators:
        try:
            queue_custom_email(
                address,
                payload,
                dedup_key=f"operator-alert:{alert.cause}:{now.isoformat()}:{address}",
            )
        except InvalidPayload as exc:
            log.error("alert.bad_address", address=address, error=str(exc))
            continue
        queued += 1
    return queued


def _post(runtime: Runtime, alert: Alert, now: datetime) -> bool:
    """POST ``alert`` to ``GCMC_JOBS_ALERT_WEBHOOK_URL`` (if set); whether it answered 2xx."""
    settings = runtime.settings
    if not settings.alert_webhook_url:
        return False
    body = json.dumps(
        {
            "type": "operator.alert",
            "timestamp": now.isoformat(),
            "data": {"cause": alert.cause, "subject": alert.subject, "body": alert.body},
        },
        separators=(",", ":"),
    ).encode()
    message_id = f"msg_alert_{alert.cause}_{int(now.timestamp())}"
    headers = {"content-type": "application/json"}
    if settings.alert_webhook_secret is not None:
        secret = settings.alert_webhook_secret.get_secret_value()
        # webhook-timestamp is the attempt's (receivers refuse an old one); the event's own
        # instant is in the body.
        headers |= signed_headers(secret, message_id, int(time.time()), body)
    response = runtime.webhook_client.post(settings.alert_webhook_url, body, headers)
    if not response.ok:
        log.error(
            "alert.webhook_failed",
            cause=alert.cause,
            status=response.status,
            error=response.error,
        )
    return response.ok


@actor(
    queue_name=queues.SCHEDULER,
    periodic=cron("* * * * *"),
    max_retries=0,  # the next minute looks again
    time_limit=60_000,
)
def watch_operations() -> None:
    """Once a minute (periodiq): push the alerts that are due (:func:`push_alerts`)."""
    push_alerts(current())

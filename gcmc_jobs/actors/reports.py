"""The monthly compliance report as a chain of four actors, one Dramatiq pipeline.

::

    aggregate_report ─▶ render_report ─▶ email_report ─▶ record_report     (queue gcmc_reports)
      figures → reports   PDF + CSV →      each owner/admin,   checksums checked,
      .data               report_files     files attached      status completed

Every step takes ``(tenant_id, period)`` and nothing else: what it needs, the previous step
stored in the database (``reports``, ``report_files``), and the pipeline ignores return
values (``pipe_ignore``). So:

- **a failed step retries alone**: Dramatiq retries that message; the steps before it are
  done and stored, and the next one is only sent (by Dramatiq's ``Pipelines`` middleware)
  when it succeeds;
- **a step that fails for good is dead-lettered with the rest of the chain**: its message
  carries the next steps in its ``pipe_target`` option, which a replay keeps
  (``gcmc-jobs dead-letters replay``), so the replay runs that step and then the ones after
  it, never the ones before;
- **any step is safe to run twice**: each rewrites its own result; the email step mails each
  recipient once per version of the PDF (``email_log``, keyed by the PDF's checksum).

Why a pipeline rather than callbacks (``on_success``): a callback is an actor option, fixed
per actor, so the chain would be wired into the actors' declarations, and a replayed step
would call its callback only through the actor's options; a pipeline is data in the message
(the remaining steps), built per report, and travels with a dead letter. The limit of both:
Dramatiq sends the next step after the current one is acknowledged; if the broker refuses
that send, the chain stops there (logged by Dramatiq) and ``reports.status`` shows the last
step done. ``gcmc-jobs report TENANT --period P`` (or the API) then starts it again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from gcmc_jobs import queue_names as queues
from gcmc_jobs.brokers import actor
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.tables import Id
from gcmc_jobs.email.addresses import normalize_address
from gcmc_jobs.email.delivery import Outcome, deliver
from gcmc_jobs.email.mime import Attachment
from gcmc_jobs.email.registry import validate_payload
from gcmc_jobs.errors import DuplicateMessage, PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.scheduling.jobs import ReportStarter
from gcmc_jobs.services import report_documents, reports
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "aggregate_report",
    "email_report",
    "record_report",
    "render_report",
    "report_chain",
    "report_key",
    "report_starter",
    "start_report",
]

log = get_logger("gcmc_jobs.reports")

#: Each step's policy (README "Retry policy"), besides its queue, ``queues.REPORTS``.
_POLICY: dict[str, Any] = {
    "max_retries": 5,
    "min_backoff": 5_000,
    "max_backoff": 600_000,
    "time_limit": 600_000,
    "throws": (PermanentError,),
    "pipe_ignore": True,
}


def _period(period: str) -> date:
    return reports.parse_period(period)


@actor(queue_name=queues.REPORTS, **_POLICY)
def aggregate_report(tenant_id: Id, period: str) -> None:
    """Step 1: compute the report's figures for ``period`` (``YYYY-MM``) and store them."""
    with session_scope(current().engine) as session:
        state = reports.aggregate(session, tenant_id, _period(period), now=utcnow())
    log.info(
        "report.aggregated",
        tenant_id=tenant_id,
        period=period,
        report_id=state.id,
        clients=state.data["distribution"]["clients"],
    )


@actor(queue_name=queues.REPORTS, **_POLICY)
def render_report(tenant_id: Id, period: str) -> None:
    """Step 2: render the stored figures as a PDF and a CSV, stored with their checksums."""
    engine = current().engine
    with session_scope(engine) as session:
        state = reports.require_report(session, tenant_id, _period(period), "aggregated")
    pdf_name, csv_name = report_documents.report_file_names(state.data)
    files = [
        reports.ReportFile(pdf_name, "application/pdf", report_documents.render_pdf(state.data)),
        reports.ReportFile(csv_name, "text/csv", report_documents.render_csv(state.data)),
    ]
    with session_scope(engine) as session:
        state = reports.store_files(session, state, files, now=utcnow())
    log.info("report.rendered", tenant_id=tenant_id, period=period, files=state.files)


@actor(queue_name=queues.REPORTS, **_POLICY)
def email_report(tenant_id: Id, period: str) -> None:
    """Step 3: email the files to the tenant's active owners and admins with the
    ``documents`` email channel on, as attachments; record who got them."""
    runtime = current()
    with session_scope(runtime.engine) as session:
        state = reports.require_report(session, tenant_id, _period(period), "rendered")
        files = reports.files_of(session, state.id)
        recipients = reports.report_recipients(session, tenant_id)
    outcomes = [_mail(runtime, state, files, person) for person in recipients]
    with session_scope(runtime.engine) as session:
        reports.record_recipients(session, state, outcomes, now=utcnow())
    log.info(
        "report.emailed",
        tenant_id=tenant_id,
        period=period,
        recipients=len(outcomes),
        sent=sum(o["outcome"] == "sent" for o in outcomes),
    )


def _final_attempt() -> bool:
    message = CurrentMessage.get_current_message()
    if message is None:
        return True
    declared = email_report.options.get("max_retries", 0)
    return int(message.options.get("retries", 0)) >= int(
        message.options.get("max_retries", declared)
    )


def _mail(
    runtime: Runtime,
    state: reports.ReportState,
    files: list[reports.ReportFile],
    person: reports.Recipient,
) -> dict[str, Any]:
    """Mail one recipient; a transient failure raises (the step retries, and the recipients
    already mailed are skipped by their ``email_log`` rows), a permanent one is recorded."""
    settings = runtime.settings
    data = state.data
    label = reports.month_label(state.period)
    checksum = next((f.sha256 for f in files if f.content_type == "application/pdf"), "")
    key = f"report:{state.tenant_id}:{label}:{person.user_id}:{checksum[:16]}"
    record: dict[str, Any] = {"user_id": person.user_id, "name": person.name}
    try:
        to = normalize_address(person.email)
        record["email"] = to
        distribution = data["distribution"]
        average = distribution["average_score"]
        payload = validate_payload(
            "custom",
            {
                "tenant_name": data["tenant"]["name"],
                "recipient_name": person.name,
                "subject": f"Compliance report for {label}",
                "body": (
                    f"Your compliance report for {label} is attached (PDF and CSV).\n\n"
                    f"Active clients: {distribution['clients']}; average score: "
                    f"{'-' if average is None else f'{average:.1f}'}.\n"
                    f"Risk: {distribution['high']} high, {distribution['medium']} medium, "
                    f"{distribution['low']} low.\n"
                    f"Open overdue filings: {len(data['overdue_filings'])}."
                ),
                "action_url": settings.portal_url,
                "action_label": "Open the portal",
            },
        )
        delivery = deliver(
            runtime.engine,
            runtime.email_transport,
            kind="custom",
            to=to,
            payload=payload,
            dedup_key=key,
            sender=settings.email_from,
            tenant_id=state.tenant_id,
            templates_dir=settings.email_templates_dir,
            final_attempt=_final_attempt(),
            attachments=[Attachment(f.name, f.content_type, f.content) for f in files],
        )
    except PermanentError as exc:
        log.warning("report.email_failed", user_id=person.user_id, error_type=type(exc).__name__)
        return {**record, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"}
    outcome = "sent" if delivery.outcome is Outcome.ALREADY_DONE else delivery.outcome.value
    return {**record, "outcome": outcome, "dedup_key": key}


@actor(queue_name=queues.REPORTS, **_POLICY)
def record_report(tenant_id: Id, period: str) -> None:
    """Step 4: check the stored files against their checksums and mark the report
    ``completed``."""
    with session_scope(current().engine) as session:
        state = reports.require_report(session, tenant_id, _period(period), "emailed")
        state = reports.complete(session, state, now=utcnow())
    log.info("report.completed", tenant_id=tenant_id, period=period, report_id=state.id)


def report_key(tenant_id: Id, period: date) -> str:
    """The dedup key of a report chain's first message: ``report:<tenant>:<YYYY-MM>``."""
    return f"report:{tenant_id}:{reports.month_label(period)}"


def report_chain(tenant_id: Id, period: date, *, force: bool = False) -> dramatiq.pipeline:
    """The four steps of ``tenant_id``'s report for ``period``'s month, as a pipeline (not
    yet run). Its first message carries :func:`report_key` as its dedup key, unless
    ``force`` (a report requested again)."""
    label = reports.month_label(period)
    options: dict[str, Any] = {} if force else {"dedup_key": report_key(tenant_id, period)}
    first = aggregate_report.message_with_options(args=(tenant_id, label), **options)
    steps = [first] + [
        step.message(tenant_id, label) for step in (render_report, email_report, record_report)
    ]
    return dramatiq.pipeline(steps, broker=aggregate_report.broker)


def start_report(tenant_id: Id, period: date, *, force: bool = False) -> str | None:
    """Enqueue ``tenant_id``'s report chain for ``period``'s month; the first message's id,
    or None when that report's chain is already pending (its dedup key is taken)."""
    chain = report_chain(tenant_id, period, force=force)
    try:
        chain.run()  # type: ignore[no-untyped-call]
    except DuplicateMessage:
        return None
    message_id: str = chain.messages[0].message_id
    log.info("report.requested", tenant_id=tenant_id, period=reports.month_label(period))
    return message_id


def report_starter(runtime: Runtime) -> ReportStarter:
    """The :data:`~gcmc_jobs.scheduling.jobs.ReportStarter` of the monthly job: starts the
    chain on the actors' broker (``runtime``'s)."""

    def start(tenant_id: Id, period: date) -> bool:
        return start_report(tenant_id, period) is not None

    return start

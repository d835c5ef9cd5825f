"""The monthly report chain through the package's broker, a worker and a real SMTP server:
the PDF and CSV mailed to the right people, read back; a step that fails for good resumes
from itself when its dead letter is replayed; the monthly daily job starts it."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import dramatiq
import pypdf
import pypdfium2
import pytest
from sqlalchemy import Engine

from gcmc_jobs import current
from gcmc_jobs.actors import run_daily_job
from gcmc_jobs.actors.reports import start_report
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import DocumentStatus, NotificationCategory, Role
from gcmc_jobs.ops.dead_letters import list_dead_letters, replay_dead_letters
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.reports import ReportState, find_report
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests import factories as f

PERIOD = date(2026, 11, 1)


@pytest.fixture
def gcmc_settings(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, smtp_server: SmtpSink
) -> Settings:
    """The stub broker, a Redis namespace of this test, email over SMTP to ``smtp_server``."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}",
        email_url=smtp_server.url,
        email_retry_max_wait_ms=0,
        log_format="json",
    )


def _world(engine: Engine) -> dict[str, Any]:
    """A tenant with 25 scored clients (some overdue), November snapshots, and members:
    who must and must not receive the report."""
    with session_scope(engine) as session:
        t = f.tenant(session, "Acme Zürich")
        owner = f.member(session, t, Role.OWNER, name="Olive Owner")
        admin = f.member(session, t, Role.ADMIN, name="Adam Admin")
        muted = f.member(session, t, Role.ADMIN, name="Muted Admin")
        f.preference(session, t, muted, NotificationCategory.DOCUMENTS, in_app=True, email=False)
        f.member(session, t, Role.ADMIN, name="Gone Admin", active=False)
        f.member(session, t, Role.MANAGER, name="Manny Manager")
        bounced = f.member(session, t, Role.OWNER, name="Bounced Owner")
        f.suppression(session, bounced.email)
        clients = []
        for n in range(25):
            c = f.client(session, t, name=f"Client {n:02d}")
            for _ in range(n % 5):
                f.document(session, c, status=DocumentStatus.REJECTED)
            if n % 4 == 0:
                f.filing(session, c, due=date(2026, 11, 10), filing_type=f"vat_{n:02d}")
            clients.append(c)
        for day in (date(2026, 10, 31), date(2026, 11, 15), date(2026, 11, 30)):
            refresh_tenant(session, t.id, today=day)
        return {"tenant": t, "recipients": {owner.email, admin.email}}


def _report(engine: Engine, tenant_id: Any) -> ReportState | None:
    with session_scope(engine) as session:
        return find_report(session, tenant_id, PERIOD)


def _attachments(message: Any) -> dict[str, bytes]:
    return {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }


def test_the_chain_mails_a_readable_pdf_and_csv_to_owners_and_admins(
    gcmc_db: Engine, gcmc_join: Callable[..., None], smtp_server: SmtpSink
) -> None:
    # Given a tenant with clients, snapshots and members
    world = _world(gcmc_db)
    tenant_id = world["tenant"].id

    # When its November report is requested and the chain runs
    assert start_report(tenant_id, PERIOD) is not None
    assert start_report(tenant_id, PERIOD) is None  # the same chain, pending: not twice
    gcmc_join()

    # Then the report is recorded, with its files' checksums and its recipients
    report = _report(gcmc_db, tenant_id)
    assert report is not None
    assert report.status == "completed"
    assert [file["name"] for file in report.files] == [
        "compliance-report-2026-11.pdf",
        "compliance-report-2026-11.csv",
    ]
    assert {r["email"] for r in report.recipients} == world["recipients"]
    assert {r["outcome"] for r in report.recipients} == {"sent"}

    # And each owner and admin who may receive it got one email with both files attached
    messages = smtp_server.messages
    assert sorted(str(m["To"]) for m in messages) == sorted(world["recipients"])
    files = _attachments(messages[0])
    checksums = {file["name"]: file["sha256"] for file in report.files}
    assert {name: hashlib.sha256(body).hexdigest() for name, body in files.items()} == checksums

    # And the PDF reads back: its text, its pages, a first page that is not blank
    pdf = files["compliance-report-2026-11.pdf"]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2
    for expected in (
        "Acme Zürich",
        "Compliance report - November 2026",
        "Risk distribution",
        "Twelve-month trend",
        "The 20 highest-risk clients",
        "Client 24",  # 4 missing documents: among the highest risk
        "Open overdue filings (7)",
        "vat_00",
    ):
        assert expected in text
    top = text.split("Open overdue filings")[0]
    assert "Client 05" not in top  # score 100, one of the 5 lowest risks: not in the top 20
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=1).to_pil().convert("L")
    histogram = image.histogram()
    white = sum(histogram[250:])
    assert 0 < white < 0.97 * sum(histogram)  # mostly paper, but drawn on
    colours = (
        pypdfium2.PdfDocument(pdf)[0].render(scale=1).to_pil().convert("RGB").getcolors(1 << 16)
    )
    assert colours is not None
    assert len(colours) > 10

    # And the CSV has one row per active client, highest risk first
    rows = list(
        csv.DictReader(io.StringIO(files["compliance-report-2026-11.csv"].decode("utf-8-sig")))
    )
    assert len(rows) == 25
    assert [int(r["score"]) for r in rows] == sorted(int(r["score"]) for r in rows)


def test_a_step_that_fails_for_good_resumes_from_itself_on_replay(
    gcmc_db: Engine,
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    smtp_server: SmtpSink,
) -> None:
    # Given the mail server is down while the chain runs
    world = _world(gcmc_db)
    tenant_id = world["tenant"].id
    smtp_server.stop()
    start_report(tenant_id, PERIOD)
    gcmc_join(fail_fast=False)

    # Then the email step is dead-lettered, after the steps before it were done and stored
    report = _report(gcmc_db, tenant_id)
    assert report is not None
    assert report.status == "rendered"
    store = current().stores.dead_letters
    [dead] = list_dead_letters(store)
    assert dead.actor == "email_report"
    assert dead.options["pipe_target"]["actor_name"] == "record_report"

    # When the server is back and the dead letter is replayed
    smtp_server.start()
    [replayed] = replay_dead_letters(store, gcmc_broker, ids=[dead.id])
    assert replayed.status == "replayed"
    gcmc_join(fail_fast=False)  # the stub broker keeps the first failure in its own list

    # Then the chain went on from the email step: not aggregated or rendered again
    after = _report(gcmc_db, tenant_id)
    assert after is not None
    assert after.status == "completed"
    assert (after.aggregated_at, after.rendered_at) == (report.aggregated_at, report.rendered_at)
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(world["recipients"])


def test_the_monthly_job_starts_the_report_on_the_first_local_day_only(
    gcmc_db: Engine, gcmc_join: Callable[..., None], smtp_server: SmtpSink
) -> None:
    # Given a tenant in a timezone ahead of UTC
    world = _world(gcmc_db)
    tenant_id = world["tenant"].id

    # When the monthly job runs on the 30th of November, then on the 1st of December
    run_daily_job.send("monthly_report", tenant_id, "2026-11-30")
    gcmc_join()
    assert _report(gcmc_db, tenant_id) is None
    run_daily_job.send("monthly_report", tenant_id, "2026-12-01")
    gcmc_join()

    # Then November's report is made once, and a re-run that day starts nothing
    report = _report(gcmc_db, tenant_id)
    assert report is not None
    assert report.status == "completed"
    run_daily_job.send("monthly_report", tenant_id, "2026-12-01", force=True)
    gcmc_join()
    assert len(smtp_server.messages) == len(world["recipients"])

"""Issue 14, item 2, end to end: a refresh that changes a client's risk level puts the change
in the next 07:00 document digest of the client's responsible staff, mailed over SMTP to a
real server, once that day; on the ``gcmc`` preset and on Prisma's tables (the package's in
a schema of their own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs import configured
from gcmc_jobs.actors import run_daily_job
from gcmc_jobs.db.enums import DocumentStatus, NotificationCategory, Role
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink, join_all
from tests import factories as f
from tests.conftest import PRESET_NAMES
from tests.support.prisma import SplitSchemas

TODAY = date(2026, 3, 10)
PORTAL = "https://portal.acme.example"


@pytest.fixture(params=PRESET_NAMES)
def mailing(
    request: pytest.FixtureRequest,
    smtp_server: SmtpSink,
    gcmc_redis_url: str,
    gcmc_namespace: str,
) -> Iterator[tuple[Engine, dramatiq.Broker, dramatiq.Worker]]:
    """The package configured on the stub broker with a worker, email over SMTP to
    ``smtp_server``, on each preset in turn."""
    base: dict[str, Any] = {
        "redis_url": gcmc_redis_url,
        "namespace": f"{gcmc_namespace}:risk{uuid.uuid4().hex[:8]}",
    }
    if request.param == "gcmc":
        engine: Engine = request.getfixturevalue("gcmc_db")
        base["database_url"] = request.getfixturevalue("gcmc_postgres_url")
    else:
        split: SplitSchemas = request.getfixturevalue("prisma_split_db")
        engine = split.engine
        base |= {
            "database_url": split.url,
            "schema_mapping": str(split.mapping_path),
            "platform_tables": "external",
        }
    settings = Settings(
        **base,
        broker_url="stub://",
        email_url=smtp_server.url,
        email_retry_max_wait_ms=0,
        log_format="json",
        portal_url=PORTAL,
    )
    with configured(settings, engine=engine) as runtime:
        broker = runtime.broker
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
        worker.start()
        try:
            yield engine, broker, worker
        finally:
            smtp_server.release()
            worker.stop()
            broker.flush_all()


def _text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def test_a_level_change_is_mailed_once_in_the_next_digest_of_the_responsible_staff(
    mailing: tuple[Engine, dramatiq.Broker, dramatiq.Worker], smtp_server: SmtpSink
) -> None:
    engine, broker, worker = mailing

    def run(job: str, day: date, **options: Any) -> None:
        run_daily_job.send(job, tenant.id, day.isoformat(), **options)
        join_all(broker, worker, timeout_ms=60_000)

    # Given a firm whose client "Moving Ltd" (assigned to a staff member) has a first score,
    # and a client with a document expiring in 7 days
    with Session(engine) as s:
        tenant = f.tenant(s, "Acme CPA")
        owner = f.member(s, tenant, Role.OWNER)
        manager = f.member(s, tenant, Role.MANAGER)
        assignee = f.member(s, tenant, Role.STAFF)
        f.member(s, tenant, Role.STAFF)  # nothing assigned: no compliance alert
        f.member(s, tenant, Role.VIEWER)
        f.member(s, tenant, Role.MANAGER, active=False)
        muted = f.member(s, tenant, Role.ADMIN)
        f.preference(s, tenant, muted, NotificationCategory.DOCUMENTS, in_app=True, email=False)
        bounced = f.member(s, tenant, Role.ADMIN)
        f.suppression(s, bounced.email)
        moving = f.client(s, tenant, name="Moving Ltd", assigned=assignee)
        expiring = f.client(s, tenant, name="Expiring Ltd")
        f.document(s, expiring, expiry=TODAY + timedelta(days=7), title="Licence")
        s.commit()
    run("compliance_refresh", TODAY - timedelta(days=1))

    # When eight of its documents await review (score 60: medium), and the day's refresh
    # (02:00) and document digest (07:00) run
    with Session(engine) as s:
        for _ in range(8):
            f.document(s, moving, status=DocumentStatus.PENDING_REVIEW)
        s.commit()
    run("compliance_refresh", TODAY)
    run("document_expiry_emails", TODAY)

    # Then the owner, the manager and the client's assignee each got one digest listing the
    # change; nobody else did (the unassigned staff, the viewer, the inactive manager, the
    # admin with document emails off, the suppressed address)
    mails = {str(m["To"]): m for m in smtp_server.messages}
    assert len(smtp_server.messages) == 3
    assert set(mails) == {owner.email, manager.email, assignee.email}
    line = "- Moving Ltd: low -> medium risk (score 60)"
    for mail in mails.values():
        assert line in _text(mail)
        html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        assert f'<a href="{PORTAL}/clients/{moving.id}">Moving Ltd</a>' in html
    # The owner's lists the expiring document too; the assignee's (no document) only the change
    assert str(mails[owner.email]["Subject"]) == (
        "Licence expires in 7 days, 1 risk level change (Acme CPA)"
    )
    assert "Licence" in _text(mails[owner.email])
    assert str(mails[assignee.email]["Subject"]) == "Moving Ltd is now medium risk (Acme CPA)"
    assert "expire" not in _text(mails[assignee.email])

    # When the digest job is forced to run again the same day
    run("document_expiry_emails", TODAY, force=True)

    # Then nothing more is mailed
    assert len(smtp_server.messages) == 3

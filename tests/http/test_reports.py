"""The reports API on the ``prisma`` preset (text tenant ids, the package's tables in their
own schema): request a report, its chain runs on a worker, list it, download its files."""

from __future__ import annotations

import hashlib
import io
from datetime import date

import dramatiq
import pypdf
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gcmc_jobs import current
from gcmc_jobs.db.models import DocumentStatus, Role
from gcmc_jobs.email.transports import memory
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f
from tests.support.prisma import SplitSchemas


def _drain(broker: dramatiq.Broker) -> None:
    """Run every queued message (and those they send) on a worker of this process."""
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        for _ in range(5):  # each step sends the next one when it succeeds
            for queue in sorted(broker.get_declared_queues()):
                broker.join(queue, timeout=30_000)
            worker.join()
    finally:
        worker.stop()


def test_a_report_is_requested_made_listed_and_downloaded_by_text_id(
    prisma_api: TestClient, prisma_split_db: SplitSchemas
) -> None:
    # Given a Prisma-shaped tenant (a text id) with an owner and scored clients
    memory.outbox.clear()
    with Session(prisma_split_db.engine) as session:
        tenant = f.tenant(session, "Kyoto Tax", timezone="Asia/Tokyo")
        owner = f.member(session, tenant, Role.OWNER, name="Oka Owner")
        for n in range(3):
            client = f.client(session, tenant, name=f"Client {n}")
            f.document(session, client, status=DocumentStatus.REJECTED)
        refresh_tenant(session, tenant.id, today=date(2026, 11, 30))
        session.commit()
    assert isinstance(tenant.id, str)

    # When its November report is requested twice, and the workers run
    first = prisma_api.post("/api/reports", json={"tenant_id": tenant.id, "period": "2026-11"})
    second = prisma_api.post("/api/reports", json={"tenant_id": tenant.id, "period": "2026-11"})
    assert first.status_code == 202, first.text
    assert (first.json()["status"], second.json()["status"]) == ("requested", "pending")
    _drain(current().broker)

    # Then it is listed, completed, by the tenant's text id
    listed = prisma_api.get("/api/reports", params={"tenant_id": tenant.id})
    assert listed.status_code == 200, listed.text
    [report] = listed.json()
    assert (report["tenant_id"], report["period"], report["status"]) == (
        tenant.id,
        "2026-11",
        "completed",
    )
    assert [(r["email"], r["outcome"]) for r in report["recipients"]] == [(owner.email, "sent")]
    # And its PDF downloads with the checksum recorded for it, and reads back
    [pdf_file] = [file for file in report["files"] if file["content_type"] == "application/pdf"]
    download = prisma_api.get(f"/api/reports/{report['id']}/files/{pdf_file['name']}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(download.content).hexdigest() == pdf_file["sha256"]
    first_page = pypdf.PdfReader(io.BytesIO(download.content)).pages[0]
    assert "Kyoto Tax" in first_page.extract_text()
    # And the owner was mailed both files
    [mail] = memory.outbox
    assert sorted(part.get_filename() for part in mail.iter_attachments()) == [
        "compliance-report-2026-11.csv",
        "compliance-report-2026-11.pdf",
    ]

    # And a completed report is not made again unless forced; bad requests are refused
    again = prisma_api.post("/api/reports", json={"tenant_id": tenant.id, "period": "2026-11"})
    assert again.status_code == 409
    forced = prisma_api.post(
        "/api/reports", json={"tenant_id": tenant.id, "period": "2026-11", "force": True}
    )
    assert forced.json()["status"] == "requested"
    unknown = prisma_api.post(
        "/api/reports", json={"tenant_id": "cknotatenant", "period": "2026-11"}
    )
    assert unknown.status_code == 404
    future = prisma_api.post("/api/reports", json={"tenant_id": tenant.id, "period": "2999-01"})
    assert future.status_code == 422
    assert "has not begun" in future.json()["detail"]
    malformed = prisma_api.post("/api/reports", json={"tenant_id": tenant.id, "period": "2026-13"})
    assert malformed.status_code == 422
    missing = prisma_api.get(f"/api/reports/{report['id']}/files/nothing.pdf")
    assert missing.status_code == 404

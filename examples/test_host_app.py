"""How a host application tests its use of gcmc-jobs with the packaged pytest fixtures.

Installing gcmc-jobs registers its pytest plugin: ``gcmc_broker`` (gcmc-jobs configured on a
stub broker), ``gcmc_worker`` (a Dramatiq worker on it), ``gcmc_session`` (a session on a
throwaway, migrated PostgreSQL database) and the rest, with no conftest needed::

    pytest examples/test_host_app.py
"""

from __future__ import annotations

import dramatiq
import host_app
from sqlalchemy.orm import Session

from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.db.models import (
    Client,
    ComplianceLevel,
    ComplianceScore,
    Document,
    DocumentStatus,
    DocumentVersion,
    Tenant,
)


def test_a_reviewed_document_refreshes_the_clients_score(
    gcmc_broker: dramatiq.Broker, gcmc_worker: dramatiq.Worker, gcmc_session: Session
) -> None:
    # Given a client whose only document was just rejected
    tenant = Tenant(name="Acme CPA", timezone="Europe/Paris")
    gcmc_session.add(tenant)
    gcmc_session.flush()
    client = Client(tenant_id=tenant.id, name="Bluebird Bakery", email="owner@bluebird.example")
    gcmc_session.add(client)
    gcmc_session.flush()
    document = Document(
        tenant_id=tenant.id, client_id=client.id, title="Licence", document_type="license"
    )
    gcmc_session.add(document)
    gcmc_session.flush()
    version = DocumentVersion(document_id=document.id, status=DocumentStatus.REJECTED)
    gcmc_session.add(version)
    gcmc_session.flush()
    document.latest_version_id = version.id
    gcmc_session.commit()

    # When the host application reacts to the review
    host_app.on_document_reviewed(tenant.id)
    gcmc_broker.join(refresh_compliance.queue_name)
    gcmc_worker.join()

    # Then the client's score reflects the missing document
    gcmc_session.expire_all()
    score = gcmc_session.get(ComplianceScore, client.id)
    assert score is not None
    assert (score.missing_count, score.score, score.level) == (1, 95, ComplianceLevel.LOW)

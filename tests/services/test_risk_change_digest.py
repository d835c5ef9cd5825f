"""The day's risk-level changes join the document expiry digest (issue 14, item 2): to each
changed client's compliance-alert recipients, once per client per day, in a constant number
of statements, on both mappings (``preset_session``) and on SQLite (the demo's database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import DocumentStatus, NotificationCategory, Role
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.digests import Digest, document_expiry_digests
from gcmc_jobs.services.recipients import Channel
from gcmc_jobs.sms.bodies import alert_body
from gcmc_jobs.sms.opt_ins import opt_in
from tests import factories as f
from tests.support.statements import recorded_statements

TODAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
YESTERDAY = TODAY - timedelta(days=1)


@dataclass
class Firm:
    tenant: f.TenantRow
    owner: f.UserRow
    manager: f.UserRow
    staff: f.UserRow  # not assigned: no compliance alert
    assignee: f.UserRow  # a viewer assigned to the client that moves
    email_off: f.UserRow
    inactive: f.UserRow
    suppressed: f.UserRow
    moving: f.ClientRow
    expiring: f.ClientRow  # a client with a document hitting a warning day, no level change


def _firm(s: Session) -> Firm:
    t = f.tenant(s, "Acme")
    assignee = f.member(s, t, Role.VIEWER)
    firm = Firm(
        tenant=t,
        owner=f.member(s, t, Role.OWNER),
        manager=f.member(s, t, Role.MANAGER),
        staff=f.member(s, t, Role.STAFF),
        assignee=assignee,
        email_off=f.member(s, t, Role.ADMIN),
        inactive=f.member(s, t, Role.MANAGER, active=False),
        suppressed=f.member(s, t, Role.ADMIN),
        moving=f.client(s, t, name="Moving Ltd", assigned=assignee),
        expiring=f.client(s, t, name="Expiring Ltd"),
    )
    f.preference(s, t, firm.email_off, NotificationCategory.DOCUMENTS, in_app=True, email=False)
    f.suppression(s, firm.suppressed.email)
    # Another tenant's owner, whose own client also changes level: never in Acme's digests
    other = f.tenant(s, "Other")
    f.member(s, other, Role.OWNER)
    elsewhere = f.client(s, other, name="Elsewhere")
    for tenant in (t, other):
        refresh_tenant(s, tenant.id, today=YESTERDAY, now=NOW)  # the first scores: no change
    for client in (firm.moving, elsewhere):
        for _ in range(8):  # score 60: low -> medium
            f.document(s, client, status=DocumentStatus.PENDING_REVIEW)
    f.document(s, firm.expiring, expiry=TODAY + timedelta(days=7), title="Licence")
    for tenant in (t, other):
        refresh_tenant(s, tenant.id, today=TODAY, now=NOW)
    return firm


def _by_user(digests: list[Digest]) -> dict[Id, Digest]:
    return {d.user_id: d for d in digests}


def test_a_level_change_reaches_the_clients_alert_recipients_in_the_document_digest(
    preset_session: Session,
) -> None:
    # Given a refresh that moved one client from low to medium risk today
    firm = _firm(preset_session)

    # When the day's document digests are computed
    digests = _by_user(document_expiry_digests(preset_session, firm.tenant.id, TODAY))

    # Then the owner, the manager and the client's assigned viewer have the change; not the
    # unassigned staff member, the member with document emails off, the inactive manager,
    # the suppressed address, nor anyone of the other tenant
    assert set(digests) == {firm.owner.id, firm.manager.id, firm.assignee.id}
    change = {
        "client_id": firm.moving.id,
        "client_name": "Moving Ltd",
        "previous_level": "low",
        "level": "medium",
        "score": 60,
    }
    assert digests[firm.owner.id].risk_changes == [change]
    assert [i["title"] for i in digests[firm.owner.id].items] == ["Licence"]
    # And the assignee, who has no expiring document, gets a digest of the change only,
    # under the day's one digest key
    only = digests[firm.assignee.id]
    assert (only.items, only.risk_changes) == ([], [change])
    assert only.dedup_key == (
        f"digest:document_expiry_warning:{firm.tenant.id}:{firm.assignee.id}:{TODAY}"
    )

    # And the next day, with no new change, the change is not listed again
    tomorrow = document_expiry_digests(preset_session, firm.tenant.id, TODAY + timedelta(days=1))
    assert all(d.risk_changes == [] for d in tomorrow)


def test_an_sms_opt_in_gets_the_changes_too(preset_session: Session) -> None:
    # Given the moving client's assignee opted in to document alerts by SMS
    firm = _firm(preset_session)
    opt_in(
        preset_session.connection(),
        tenant_id=firm.tenant.id,
        user_id=firm.assignee.id,
        phone="+14155550123",
        categories=(NotificationCategory.DOCUMENTS,),
    )

    # When the day's SMS digests are computed
    texts = document_expiry_digests(preset_session, firm.tenant.id, TODAY, Channel.SMS)

    # Then the assignee's text counts the change (there is no expiring document of theirs)
    assert [(d.user_id, d.to, len(d.items), len(d.risk_changes)) for d in texts] == [
        (firm.assignee.id, "+14155550123", 0, 1)
    ]
    body = alert_body(
        texts[0].kind,
        tenant_name="Acme",
        items=texts[0].items,
        portal_url="https://portal.example/",
        risk_changes=len(texts[0].risk_changes),
    )
    assert body == "Acme: 1 client changed risk level today. https://portal.example/clients"


def test_the_digest_statements_do_not_grow_with_changed_clients(
    preset_session: Session, preset_db: Engine
) -> None:
    # Given two tenants of 2 and 30 clients, each client changing level today
    counts = []
    for size in (2, 30):
        t = f.tenant(preset_session, f"t{size}")
        people = [f.member(preset_session, t, Role.MANAGER) for _ in range(3)]
        clients = [f.client(preset_session, t, assigned=people[n % 3]) for n in range(size)]
        refresh_tenant(preset_session, t.id, today=YESTERDAY, now=NOW)
        for c in clients:
            f.document(preset_session, c, expiry=TODAY + timedelta(days=7))
            for _ in range(5):  # score 70 with the expiring one: medium
                f.document(preset_session, c, status=DocumentStatus.REJECTED)
        refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)
        preset_session.commit()

        # When the day's digests are computed
        with recorded_statements(preset_db) as seen:
            digests = document_expiry_digests(preset_session, t.id, TODAY)

        # Then each manager's digest lists every change, in two statements (the documents,
        # the changes) whatever the number of clients
        assert {len(d.risk_changes) for d in digests} == {size}
        assert {len(d.items) for d in digests} == {size}
        counts.append(len(seen))
    assert counts == [2, 2]


def test_risk_changes_on_sqlite_the_demos_database(gcmc_sqlite_db: Engine) -> None:
    with Session(gcmc_sqlite_db) as session:
        firm = _firm(session)
        digests = _by_user(document_expiry_digests(session, firm.tenant.id, TODAY))
        assert set(digests) == {firm.owner.id, firm.manager.id, firm.assignee.id}
        [change] = digests[firm.assignee.id].risk_changes
        assert (change["previous_level"], change["level"], change["score"]) == ("low", "medium", 60)


def test_an_inactive_clients_change_is_not_in_the_digest(preset_session: Session) -> None:
    # Given the client that moved is made inactive before the digest runs
    firm = _firm(preset_session)
    clients = tables_of(preset_session).clients
    preset_session.execute(
        update(clients).where(clients.c.id == firm.moving.id).values(is_active=False)
    )

    # Then nobody's digest lists its change (inactive clients get no email: DOMAIN.md)
    digests = document_expiry_digests(preset_session, firm.tenant.id, TODAY)
    assert digests
    assert all(d.risk_changes == [] for d in digests)


def test_an_sms_digest_counts_the_changes_after_its_documents() -> None:
    item = {"title": "Licence", "client_name": "Expiring Ltd", "days_left": 7}
    body = alert_body(
        "document_expiry_warning",
        tenant_name="Acme",
        items=[item],
        portal_url="https://portal.example",
        risk_changes=2,
    )
    assert body == (
        "Acme: 1 document expires soon. Next: Licence (Expiring Ltd) in 7 days. "
        "2 clients changed risk level today. https://portal.example/documents"
    )

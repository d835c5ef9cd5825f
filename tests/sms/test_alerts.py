"""SMS alerts: the document-expiry and filing digests, by SMS, to the responsible staff who
opted in to the category; one statement per tenant whatever its size. On both mappings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import NotificationCategory, Role, SmsSuppressionReason
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import InvalidPayload, InvalidPhoneNumber
from gcmc_jobs.services import sms_log
from gcmc_jobs.services.digests import document_expiry_digests, filing_reminder_digests
from gcmc_jobs.services.recipients import Channel
from gcmc_jobs.sms.bodies import alert_body
from gcmc_jobs.sms.opt_ins import opt_in, opt_ins, opt_out
from tests import factories as f
from tests.support.statements import recorded_statements

TODAY = date(2026, 6, 1)
DOCS, FILINGS = NotificationCategory.DOCUMENTS, NotificationCategory.FILINGS


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@dataclass
class Firm:
    tenant: f.TenantRow
    other: f.TenantRow
    owner: f.UserRow  # opted in to both
    admin: f.UserRow  # not opted in: no SMS
    manager: f.UserRow  # opted in to filings only
    email_off: f.UserRow  # email off in preferences, opted in to SMS: gets SMS
    inactive: f.UserRow  # opted in, inactive
    viewer: f.UserRow  # opted in, a viewer nothing is assigned to
    assigned_viewer: f.UserRow  # opted in, the client's assignee
    suppressed: f.UserRow  # opted in, number suppressed
    outsider: f.UserRow  # opted in in the other tenant only


def _phone(n: int) -> str:
    return f"+1415555{n:04d}"


@pytest.fixture
def firm(preset_session: Session) -> Firm:
    s = preset_session
    tenant, other = f.tenant(s, "Acme CPA"), f.tenant(s, "Other")
    firm = Firm(
        tenant=tenant,
        other=other,
        owner=f.member(s, tenant, Role.OWNER),
        admin=f.member(s, tenant, Role.ADMIN),
        manager=f.member(s, tenant, Role.MANAGER),
        email_off=f.member(s, tenant, Role.MANAGER),
        inactive=f.member(s, tenant, Role.MANAGER, active=False),
        viewer=f.member(s, tenant, Role.VIEWER),
        assigned_viewer=f.member(s, tenant, Role.VIEWER),
        suppressed=f.member(s, tenant, Role.ADMIN),
        outsider=f.member(s, other, Role.OWNER),
    )
    f.membership(s, other, firm.manager, Role.OWNER)
    connection = s.connection()
    for n, (tenant_row, person, categories) in enumerate(
        [
            (tenant, firm.owner, (DOCS, FILINGS)),
            (tenant, firm.manager, (FILINGS,)),
            (other, firm.manager, (DOCS,)),  # documents by SMS, but in the other tenant
            (tenant, firm.email_off, (DOCS, FILINGS)),
            (tenant, firm.inactive, (DOCS, FILINGS)),
            (tenant, firm.viewer, (DOCS, FILINGS)),
            (tenant, firm.assigned_viewer, (DOCS, FILINGS)),
            (tenant, firm.suppressed, (DOCS, FILINGS)),
            (other, firm.outsider, (DOCS, FILINGS)),
        ]
    ):
        opt_in(
            connection,
            tenant_id=tenant_row.id,
            user_id=person.id,
            phone=_phone(n + 1),
            categories=categories,
        )
    for category in (DOCS, FILINGS):
        f.preference(s, tenant, firm.email_off, category, in_app=True, email=False)
    sms_log.suppress(connection, _phone(8), SmsSuppressionReason.STOP)
    return firm


def _by_user(digests: list[object]) -> dict[Id, object]:
    return {d.user_id: d for d in digests}  # type: ignore[attr-defined]


def test_document_sms_reach_the_responsible_staff_who_opted_in(
    preset_session: Session, firm: Firm
) -> None:
    # Given documents of a client assigned to a viewer, on warning days and not
    client = f.client(preset_session, firm.tenant, assigned=firm.assigned_viewer)
    f.document(preset_session, client, expiry=days(7), title="Passport")
    f.document(preset_session, client, expiry=days(14), title="Licence")
    f.document(preset_session, client, expiry=days(8), title="Not today")

    found = document_expiry_digests(preset_session, firm.tenant.id, TODAY, Channel.SMS)

    # Then the owner, the manager with email off and the assigned viewer, at their numbers:
    # not the admin (no opt-in), the manager (filings only here), the inactive, the other
    # viewer, the suppressed number or the other tenant's owner
    texts = _by_user(found)
    assert set(texts) == {firm.owner.id, firm.email_off.id, firm.assigned_viewer.id}
    owner = texts[firm.owner.id]
    assert owner.to == _phone(1)  # type: ignore[attr-defined]
    assert owner.channel is Channel.SMS  # type: ignore[attr-defined]
    assert [i["title"] for i in owner.items] == ["Passport", "Licence"]  # type: ignore[attr-defined]
    assert owner.dedup_key == (  # type: ignore[attr-defined]
        f"sms:digest:document_expiry_warning:{firm.tenant.id}:{firm.owner.id}:2026-06-01"
    )
    # And email is not affected by SMS opt-ins
    emailed = _by_user(document_expiry_digests(preset_session, firm.tenant.id, TODAY))
    assert firm.admin.id in emailed
    assert firm.email_off.id not in emailed


def test_filing_sms_follow_the_filings_category(preset_session: Session, firm: Firm) -> None:
    client = f.client(preset_session, firm.tenant, assigned=firm.assigned_viewer)
    f.filing(preset_session, client, due=days(-2))
    f.filing(preset_session, client, due=days(3))

    texts = _by_user(filing_reminder_digests(preset_session, firm.tenant.id, TODAY, Channel.SMS))

    assert set(texts) == {
        firm.owner.id,
        firm.manager.id,
        firm.email_off.id,
        firm.assigned_viewer.id,
    }
    assert texts[firm.manager.id].to == _phone(2)  # type: ignore[attr-defined]
    body = alert_body(
        "filing_reminder",
        tenant_name="Acme CPA",
        items=texts[firm.owner.id].items,  # type: ignore[attr-defined]
        portal_url="https://portal.example/",
    )
    assert body.startswith("Acme CPA: 2 filings need attention, 1 overdue. Next: ")
    assert body.endswith("2 days overdue. https://portal.example/filings")
    assert len(body) <= 160


def test_opting_out_in_again_at_a_new_number_and_what_an_opt_in_refuses(
    preset_session: Session, firm: Firm
) -> None:
    connection = preset_session.connection()
    assert opt_out(connection, tenant_id=firm.tenant.id, user_id=firm.owner.id, categories=[DOCS])
    number = opt_in(
        connection, tenant_id=firm.tenant.id, user_id=firm.owner.id, phone="+44 20 7946 0958"
    )
    mine = [o for o in opt_ins(connection, tenant_id=firm.tenant.id) if o.user_id == firm.owner.id]
    assert number == "+442079460958"
    assert {(o.category, o.phone) for o in mine} == {(DOCS, number), (FILINGS, number)}

    # A bad number, a stranger to the tenant, an unknown category: refused, nothing written
    with pytest.raises(InvalidPhoneNumber):
        opt_in(connection, tenant_id=firm.tenant.id, user_id=firm.admin.id, phone="555-0100")
    with pytest.raises(InvalidPayload, match="not a member of tenant"):
        opt_in(connection, tenant_id=firm.tenant.id, user_id=firm.outsider.id, phone=_phone(9))
    with pytest.raises(InvalidPayload, match="unknown category 'sports'"):
        opt_in(
            connection,
            tenant_id=firm.tenant.id,
            user_id=firm.admin.id,
            phone=_phone(9),
            categories=["sports"],
        )
    assert not [o for o in opt_ins(connection) if o.user_id == firm.admin.id]


def _statements(engine: Engine, run: object) -> int:
    with recorded_statements(engine) as seen:
        run()  # type: ignore[operator]
    return len(seen)


def test_sms_recipients_take_constant_statements_whatever_the_tenant_size(
    preset_session: Session, preset_db: Engine
) -> None:
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    connection = preset_session.connection()
    for t, clients in ((small, 3), (large, 24)):
        people = [f.member(preset_session, t, Role.MANAGER) for _ in range(3)]
        for n, person in enumerate(people):
            opt_in(connection, tenant_id=t.id, user_id=person.id, phone=_phone(100 + n))
        for n in range(clients):
            c = f.client(preset_session, t, assigned=people[n % 3])
            f.document(preset_session, c, expiry=days(7))
            f.filing(preset_session, c, due=days(-2))
    preset_session.commit()
    # The document digest is two statements (its documents, and the day's risk-level
    # changes: issue 14), the filing digest one
    for job, statements in ((document_expiry_digests, 2), (filing_reminder_digests, 1)):
        found = {
            t.name: job(preset_session, t.id, TODAY, Channel.SMS)  # type: ignore[operator]
            for t in (small, large)
        }
        # Every manager is an alert role: each gets one SMS summarising all 24 items
        assert [len(d.items) for d in found["large"]] == [24, 24, 24]
        counts = {
            _statements(
                preset_db, lambda t=t, job=job: job(preset_session, t.id, TODAY, Channel.SMS)
            )  # type: ignore[misc]
            for t in (small, large)
        }
        assert counts == {statements}, job.__name__

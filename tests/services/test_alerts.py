"""Compliance alerts: who receives them, once, in a constant number of statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.models import (
    EmailSuppression,
    FilingStatus,
    Notification,
    NotificationCategory,
    NotificationPreference,
    Role,
    SuppressionReason,
    Tenant,
    User,
)
from gcmc_jobs.services.digests import document_expiry_digests, filing_reminder_digests
from gcmc_jobs.services.notifications import notify_document_expiry, notify_filing_reminders
from tests import factories as f

TODAY = date(2026, 6, 1)


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@dataclass
class Firm:
    """A tenant with one member in each situation the recipient rules name."""

    tenant: Tenant
    owner: User
    admin: User
    manager: User
    staff: User
    viewer: User
    assigned_viewer: User
    inactive_manager: User
    in_app_off: User
    email_off: User
    suppressed: User
    outsider: User  # an owner of another tenant, assigned to one of this tenant's clients

    def ids(self, *names: str) -> set[int]:
        return {getattr(self, name).id for name in names}


def _opt_out(session: Session, tenant: Tenant, user: User, *, in_app: bool, email: bool) -> None:
    for category in (NotificationCategory.DOCUMENTS, NotificationCategory.FILINGS):
        session.add(
            NotificationPreference(
                user_id=user.id,
                tenant_id=tenant.id,
                category=category,
                in_app=in_app,
                email=email,
            )
        )


@pytest.fixture
def firm(gcmc_session: Session) -> Firm:
    s = gcmc_session
    tenant = f.tenant(s, "Acme")
    other = f.tenant(s, "Other")
    firm = Firm(
        tenant=tenant,
        owner=f.member(s, tenant, Role.OWNER),
        admin=f.member(s, tenant, Role.ADMIN),
        manager=f.member(s, tenant, Role.MANAGER),
        staff=f.member(s, tenant, Role.STAFF),
        viewer=f.member(s, tenant, Role.VIEWER),
        assigned_viewer=f.member(s, tenant, Role.VIEWER),
        inactive_manager=f.member(s, tenant, Role.MANAGER, active=False),
        in_app_off=f.member(s, tenant, Role.MANAGER),
        email_off=f.member(s, tenant, Role.MANAGER),
        suppressed=f.member(s, tenant, Role.ADMIN),
        outsider=f.member(s, other, Role.OWNER),
    )
    _opt_out(s, tenant, firm.in_app_off, in_app=False, email=True)
    _opt_out(s, tenant, firm.email_off, in_app=True, email=False)
    # The same people opted out in *another* tenant changes nothing here.
    _opt_out(s, other, firm.owner, in_app=False, email=False)
    s.add(
        EmailSuppression(
            address=firm.suppressed.email.upper(), reason=SuppressionReason.HARD_BOUNCE
        )
    )
    s.flush()
    return firm


IN_APP = ("owner", "admin", "manager", "email_off", "suppressed")
EMAIL = ("owner", "admin", "manager", "in_app_off")


def _notified(session: Session) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for row in session.scalars(select(Notification)):
        found.setdefault(row.subject_id, set()).add(row.user_id)
    return found


def test_document_notifications_reach_the_responsible_staff_only(
    gcmc_session: Session, firm: Firm
) -> None:
    # Given one document of a client assigned to a viewer, one of a client "assigned" to a
    # user of another tenant, both expiring within 7 days
    mine = f.client(gcmc_session, firm.tenant, assigned=firm.assigned_viewer)
    foreign = f.client(gcmc_session, firm.tenant, assigned=firm.outsider)
    d1 = f.document(gcmc_session, mine, expiry=days(7))
    d2 = f.document(gcmc_session, foreign, expiry=TODAY)
    f.document(gcmc_session, mine, expiry=days(8))  # outside the window
    f.document(gcmc_session, mine, expiry=days(-1))  # already expired

    # When the job runs
    result = notify_document_expiry(gcmc_session, firm.tenant.id, TODAY)

    # Then alert roles and the assigned viewer are notified; nobody else
    notified = _notified(gcmc_session)
    assert notified == {
        d1.latest_version_id: firm.ids(*IN_APP, "assigned_viewer"),
        d2.latest_version_id: firm.ids(*IN_APP),
    }
    assert result.created == result.candidates == 11


def test_a_document_version_is_notified_once_ever(gcmc_session: Session, firm: Firm) -> None:
    document = f.document(gcmc_session, f.client(gcmc_session, firm.tenant), expiry=days(5))
    first = notify_document_expiry(gcmc_session, firm.tenant.id, TODAY)
    again = notify_document_expiry(gcmc_session, firm.tenant.id, TODAY)
    next_day = notify_document_expiry(gcmc_session, firm.tenant.id, TODAY + timedelta(days=1))
    assert first.created == len(IN_APP)
    assert (again.created, again.duplicates) == (0, len(IN_APP))
    assert (next_day.created, next_day.duplicates) == (0, len(IN_APP))
    keys = set(gcmc_session.scalars(select(Notification.dedup_key)))
    assert f"document_expiry:{document.latest_version_id}:{firm.owner.id}" in keys


def test_inactive_clients_raise_no_alerts(gcmc_session: Session, firm: Firm) -> None:
    client = f.client(gcmc_session, firm.tenant, active=False)
    f.document(gcmc_session, client, expiry=days(1))
    f.filing(gcmc_session, client, due=days(1))
    assert notify_document_expiry(gcmc_session, firm.tenant.id, TODAY).candidates == 0
    assert notify_filing_reminders(gcmc_session, firm.tenant.id, TODAY).candidates == 0


def test_filing_reminders_are_due_soon_or_overdue_with_assignment_fallback(
    gcmc_session: Session, firm: Firm
) -> None:
    # Given a client assigned to the viewer, and filings in each situation
    client = f.client(gcmc_session, firm.tenant, assigned=firm.assigned_viewer)
    own = f.filing(gcmc_session, client, due=days(7), assigned=firm.staff)  # filing's own
    fallback = f.filing(gcmc_session, client, due=days(-30))  # client's assignee
    f.filing(gcmc_session, client, due=days(8))  # not yet
    f.filing(gcmc_session, client, due=days(-1), status=FilingStatus.SUBMITTED)  # not open

    result = notify_filing_reminders(gcmc_session, firm.tenant.id, TODAY)

    kinds = {(n.subject_id, n.kind, n.user_id) for n in gcmc_session.scalars(select(Notification))}
    assert kinds == {
        *((own.id, "filing_due_soon", u) for u in firm.ids(*IN_APP, "staff")),
        *((fallback.id, "filing_overdue", u) for u in firm.ids(*IN_APP, "assigned_viewer")),
    }
    assert result.created == len(kinds)
    assert notify_filing_reminders(gcmc_session, firm.tenant.id, TODAY).created == 0


def test_document_digest_is_one_email_per_recipient_listing_all_their_documents(
    gcmc_session: Session, firm: Firm
) -> None:
    # Given 12 documents hitting a warning day, over several clients, one assigned to a viewer
    assigned = f.client(gcmc_session, firm.tenant, assigned=firm.assigned_viewer)
    clients = [assigned] + [f.client(gcmc_session, firm.tenant) for _ in range(3)]
    warning_days = [30, 14, 7, 3, 1]
    for n in range(12):
        f.document(gcmc_session, clients[n % 4], expiry=days(warning_days[n % 5]))
    f.document(gcmc_session, clients[1], expiry=days(2))  # not a warning day

    digests = document_expiry_digests(gcmc_session, firm.tenant.id, TODAY)

    by_user = {d.user_id: d for d in digests}
    assert set(by_user) == firm.ids(*EMAIL, "assigned_viewer")
    assert len(by_user[firm.owner.id].items) == 12
    assert len(by_user[firm.assigned_viewer.id].items) == 3
    owner = by_user[firm.owner.id]
    assert owner.to == firm.owner.email
    assert (
        owner.dedup_key
        == f"digest:document_expiry_warning:{firm.tenant.id}:{firm.owner.id}:2026-06-01"
    )
    assert sorted({i["days_left"] for i in owner.items}) == [1, 3, 7, 14, 30]
    assert [i["expiry_date"] for i in owner.items] == sorted(i["expiry_date"] for i in owner.items)


def test_filing_digest_lists_the_reminder_days_and_a_week_of_overdue(
    gcmc_session: Session, firm: Firm
) -> None:
    client = f.client(gcmc_session, firm.tenant)
    for n in (14, 7, 3, 0, -1, -7, 13, 1, -8):
        f.filing(gcmc_session, client, due=days(n))
    f.filing(gcmc_session, client, due=days(7), status=FilingStatus.ACCEPTED)

    digests = filing_reminder_digests(gcmc_session, firm.tenant.id, TODAY)

    assert {d.user_id for d in digests} == firm.ids(*EMAIL)
    assert [i["days_left"] for i in digests[0].items] == [-7, -1, 0, 3, 7, 14]


def test_users_of_other_tenants_receive_nothing(gcmc_session: Session, firm: Firm) -> None:
    other = gcmc_session.scalars(select(Tenant).where(Tenant.name == "Other")).one()
    f.document(gcmc_session, f.client(gcmc_session, other), expiry=days(1))
    f.filing(gcmc_session, f.client(gcmc_session, other), due=days(0))
    notify_document_expiry(gcmc_session, firm.tenant.id, TODAY)
    notify_filing_reminders(gcmc_session, firm.tenant.id, TODAY)
    assert document_expiry_digests(gcmc_session, firm.tenant.id, TODAY) == []
    assert filing_reminder_digests(gcmc_session, firm.tenant.id, TODAY) == []
    assert _notified(gcmc_session) == {}


def _statements(engine: Engine, action: object) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        action()  # type: ignore[operator]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_statements_do_not_grow_with_clients(gcmc_session: Session, gcmc_db: Engine) -> None:
    small, large = f.tenant(gcmc_session, "small"), f.tenant(gcmc_session, "large")
    for t, clients in ((small, 3), (large, 60)):
        people = [f.member(gcmc_session, t, Role.MANAGER) for _ in range(3)]
        for n in range(clients):
            c = f.client(gcmc_session, t, assigned=people[n % 3])
            f.document(gcmc_session, c, expiry=days(7))
            f.filing(gcmc_session, c, due=days(-2))
    gcmc_session.commit()
    jobs = (
        notify_document_expiry,
        notify_filing_reminders,
        document_expiry_digests,
        filing_reminder_digests,
    )
    for job in jobs:
        counts = {
            _statements(gcmc_db, lambda t=t, job=job: job(gcmc_session, t.id, TODAY))  # type: ignore[misc]
            for t in (small, large)
        }
        assert len(counts) == 1, job.__name__
        assert counts <= {1, 2}


def _filings_with_unreachable_assignees(session: Session, firm: Firm) -> dict[str, int]:
    """Open filings of a client assigned to the viewer, each assigned to someone who can or
    cannot receive alerts (issue 11, item 11)."""
    client = f.client(session, firm.tenant, assigned=firm.assigned_viewer)
    inactive_staff = f.member(session, firm.tenant, Role.STAFF, active=False)
    return {
        "none": f.filing(session, client, due=days(7)).id,
        "inactive": f.filing(session, client, due=days(7), assigned=inactive_staff).id,
        "outsider": f.filing(session, client, due=days(7), assigned=firm.outsider).id,
        "staff": f.filing(session, client, due=days(7), assigned=firm.staff).id,
    }


def test_a_filing_whose_assignee_cannot_receive_alerts_falls_back_to_the_clients(
    gcmc_session: Session, firm: Firm
) -> None:
    # Given filings assigned to nobody, to an inactive member, to a member of another
    # tenant, and to an active member, of a client assigned to the viewer
    filings = _filings_with_unreachable_assignees(gcmc_session, firm)

    # When the in-app reminders are created
    notify_filing_reminders(gcmc_session, firm.tenant.id, TODAY)

    # Then only the active member's filing goes to them; the others to the client's assignee
    notified = _notified(gcmc_session)
    for name in ("none", "inactive", "outsider"):
        assert notified[filings[name]] == firm.ids(*IN_APP, "assigned_viewer"), name
    assert notified[filings["staff"]] == firm.ids(*IN_APP, "staff")


def test_a_filing_digest_falls_back_to_the_clients_assignee_the_same_way(
    gcmc_session: Session, firm: Firm
) -> None:
    filings = _filings_with_unreachable_assignees(gcmc_session, firm)

    digests = filing_reminder_digests(gcmc_session, firm.tenant.id, TODAY)

    listed: dict[int, set[int]] = {}
    for digest in digests:
        for item in digest.items:
            listed.setdefault(item["filing_id"], set()).add(digest.user_id)
    for name in ("none", "inactive", "outsider"):
        assert listed[filings[name]] == firm.ids(*EMAIL, "assigned_viewer"), name
    assert listed[filings["staff"]] == firm.ids(*EMAIL, "staff")


def test_the_fallback_costs_no_statement_per_filing(gcmc_session: Session, gcmc_db: Engine) -> None:
    small, large = f.tenant(gcmc_session, "small"), f.tenant(gcmc_session, "large")
    for t, clients in ((small, 3), (large, 60)):
        people = [f.member(gcmc_session, t, Role.MANAGER) for _ in range(2)]
        gone = f.member(gcmc_session, t, Role.STAFF, active=False)
        for n in range(clients):
            c = f.client(gcmc_session, t, assigned=people[n % 2])
            f.filing(gcmc_session, c, due=days(-2), assigned=gone)
    gcmc_session.commit()
    for job in (notify_filing_reminders, filing_reminder_digests):
        counts = {
            _statements(gcmc_db, lambda t=t, job=job: job(gcmc_session, t.id, TODAY))  # type: ignore[misc]
            for t in (small, large)
        }
        assert len(counts) == 1, job.__name__

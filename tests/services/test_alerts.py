"""Compliance alerts: who receives them, once, in a constant number of statements.

Every test runs on both presets (``preset_session``): the ``gcmc`` tables and Prisma-shaped
ones (text ids, camelCase columns, upper-case enum values).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import FilingStatus, NotificationCategory, Role
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.services.digests import document_expiry_digests, filing_reminder_digests
from gcmc_jobs.services.notifications import notify_document_expiry, notify_filing_reminders
from tests import factories as f
from tests.support.statements import recorded_statements

TODAY = date(2026, 6, 1)


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@dataclass
class Firm:
    """A tenant with one member in each situation the recipient rules name."""

    tenant: f.TenantRow
    other: f.TenantRow
    owner: f.UserRow
    admin: f.UserRow
    manager: f.UserRow
    staff: f.UserRow
    viewer: f.UserRow
    assigned_viewer: f.UserRow
    inactive_manager: f.UserRow
    in_app_off: f.UserRow
    email_off: f.UserRow
    suppressed: f.UserRow
    outsider: f.UserRow  # an owner of another tenant, assigned to one of this tenant's clients

    def ids(self, *names: str) -> set[Id]:
        return {getattr(self, name).id for name in names}


def _opt_out(
    session: Session, tenant: f.TenantRow, user: f.UserRow, *, in_app: bool, email: bool
) -> None:
    for category in (NotificationCategory.DOCUMENTS, NotificationCategory.FILINGS):
        f.preference(session, tenant, user, category, in_app=in_app, email=email)


@pytest.fixture
def firm(preset_session: Session) -> Firm:
    s = preset_session
    tenant = f.tenant(s, "Acme")
    other = f.tenant(s, "Other")
    firm = Firm(
        tenant=tenant,
        other=other,
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
    f.suppression(s, firm.suppressed.email.upper())
    return firm


IN_APP = ("owner", "admin", "manager", "email_off", "suppressed")
EMAIL = ("owner", "admin", "manager", "in_app_off")


def _notifications(session: Session) -> list[Any]:
    return list(session.execute(select(tables_of(session).notifications)))


def _notified(session: Session) -> dict[Id, set[Id]]:
    found: dict[Id, set[Id]] = {}
    for row in _notifications(session):
        found.setdefault(row.subject_id, set()).add(row.user_id)
    return found


def test_document_notifications_reach_the_responsible_staff_only(
    preset_session: Session, firm: Firm
) -> None:
    # Given one document of a client assigned to a viewer, one of a client "assigned" to a
    # user of another tenant, both expiring within 7 days
    mine = f.client(preset_session, firm.tenant, assigned=firm.assigned_viewer)
    foreign = f.client(preset_session, firm.tenant, assigned=firm.outsider)
    d1 = f.document(preset_session, mine, expiry=days(7))
    d2 = f.document(preset_session, foreign, expiry=TODAY)
    f.document(preset_session, mine, expiry=days(8))  # outside the window
    f.document(preset_session, mine, expiry=days(-1))  # already expired

    # When the job runs
    result = notify_document_expiry(preset_session, firm.tenant.id, TODAY)

    # Then alert roles and the assigned viewer are notified; nobody else
    notified = _notified(preset_session)
    assert notified == {
        d1.latest_version_id: firm.ids(*IN_APP, "assigned_viewer"),
        d2.latest_version_id: firm.ids(*IN_APP),
    }
    assert result.created == result.candidates == 11


def test_a_document_version_is_notified_once_ever(preset_session: Session, firm: Firm) -> None:
    document = f.document(preset_session, f.client(preset_session, firm.tenant), expiry=days(5))
    first = notify_document_expiry(preset_session, firm.tenant.id, TODAY)
    again = notify_document_expiry(preset_session, firm.tenant.id, TODAY)
    next_day = notify_document_expiry(preset_session, firm.tenant.id, TODAY + timedelta(days=1))
    assert first.created == len(IN_APP)
    assert (again.created, again.duplicates) == (0, len(IN_APP))
    assert (next_day.created, next_day.duplicates) == (0, len(IN_APP))
    keys = {row.dedup_key for row in _notifications(preset_session)}
    assert f"document_expiry:{document.latest_version_id}:{firm.owner.id}" in keys


def test_inactive_clients_raise_no_alerts(preset_session: Session, firm: Firm) -> None:
    client = f.client(preset_session, firm.tenant, active=False)
    f.document(preset_session, client, expiry=days(1))
    f.filing(preset_session, client, due=days(1))
    assert notify_document_expiry(preset_session, firm.tenant.id, TODAY).candidates == 0
    assert notify_filing_reminders(preset_session, firm.tenant.id, TODAY).candidates == 0


def test_filing_reminders_are_due_soon_or_overdue_with_assignment_fallback(
    preset_session: Session, firm: Firm
) -> None:
    # Given a client assigned to the viewer, and filings in each situation
    client = f.client(preset_session, firm.tenant, assigned=firm.assigned_viewer)
    own = f.filing(preset_session, client, due=days(7), assigned=firm.staff)  # filing's own
    fallback = f.filing(preset_session, client, due=days(-30))  # client's assignee
    f.filing(preset_session, client, due=days(8))  # not yet
    f.filing(preset_session, client, due=days(-1), status=FilingStatus.SUBMITTED)  # not open

    result = notify_filing_reminders(preset_session, firm.tenant.id, TODAY)

    kinds = {(n.subject_id, n.kind, n.user_id) for n in _notifications(preset_session)}
    assert kinds == {
        *((own.id, "filing_due_soon", u) for u in firm.ids(*IN_APP, "staff")),
        *((fallback.id, "filing_overdue", u) for u in firm.ids(*IN_APP, "assigned_viewer")),
    }
    assert result.created == len(kinds)
    assert notify_filing_reminders(preset_session, firm.tenant.id, TODAY).created == 0


def test_document_digest_is_one_email_per_recipient_listing_all_their_documents(
    preset_session: Session, firm: Firm
) -> None:
    # Given 12 documents hitting a warning day, over several clients, one assigned to a viewer
    assigned = f.client(preset_session, firm.tenant, assigned=firm.assigned_viewer)
    clients = [assigned] + [f.client(preset_session, firm.tenant) for _ in range(3)]
    warning_days = [30, 14, 7, 3, 1]
    for n in range(12):
        f.document(preset_session, clients[n % 4], expiry=days(warning_days[n % 5]))
    f.document(preset_session, clients[1], expiry=days(2))  # not a warning day

    digests = document_expiry_digests(preset_session, firm.tenant.id, TODAY)

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
    preset_session: Session, firm: Firm
) -> None:
    client = f.client(preset_session, firm.tenant)
    for n in (14, 7, 3, 0, -1, -7, 13, 1, -8):
        f.filing(preset_session, client, due=days(n))
    f.filing(preset_session, client, due=days(7), status=FilingStatus.ACCEPTED)

    digests = filing_reminder_digests(preset_session, firm.tenant.id, TODAY)

    assert {d.user_id for d in digests} == firm.ids(*EMAIL)
    assert [i["days_left"] for i in digests[0].items] == [-7, -1, 0, 3, 7, 14]


def test_users_of_other_tenants_receive_nothing(preset_session: Session, firm: Firm) -> None:
    other = firm.other
    f.document(preset_session, f.client(preset_session, other), expiry=days(1))
    f.filing(preset_session, f.client(preset_session, other), due=days(0))
    notify_document_expiry(preset_session, firm.tenant.id, TODAY)
    notify_filing_reminders(preset_session, firm.tenant.id, TODAY)
    assert document_expiry_digests(preset_session, firm.tenant.id, TODAY) == []
    assert filing_reminder_digests(preset_session, firm.tenant.id, TODAY) == []
    assert _notified(preset_session) == {}


def _statements(engine: Engine, action: object) -> int:
    with recorded_statements(engine) as seen:
        action()  # type: ignore[operator]
    return len(seen)


def test_statements_do_not_grow_with_clients(preset_session: Session, preset_db: Engine) -> None:
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    for t, clients in ((small, 3), (large, 60)):
        people = [f.member(preset_session, t, Role.MANAGER) for _ in range(3)]
        for n in range(clients):
            c = f.client(preset_session, t, assigned=people[n % 3])
            f.document(preset_session, c, expiry=days(7))
            f.filing(preset_session, c, due=days(-2))
    preset_session.commit()
    jobs = (
        notify_document_expiry,
        notify_filing_reminders,
        document_expiry_digests,
        filing_reminder_digests,
    )
    for job in jobs:
        counts = {
            _statements(preset_db, lambda t=t, job=job: job(preset_session, t.id, TODAY))  # type: ignore[misc]
            for t in (small, large)
        }
        assert len(counts) == 1, job.__name__
        assert counts <= {1, 2}


def _filings_with_unreachable_assignees(session: Session, firm: Firm) -> dict[str, Id]:
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
    preset_session: Session, firm: Firm
) -> None:
    # Given filings assigned to nobody, to an inactive member, to a member of another
    # tenant, and to an active member, of a client assigned to the viewer
    filings = _filings_with_unreachable_assignees(preset_session, firm)

    # When the in-app reminders are created
    notify_filing_reminders(preset_session, firm.tenant.id, TODAY)

    # Then only the active member's filing goes to them; the others to the client's assignee
    notified = _notified(preset_session)
    for name in ("none", "inactive", "outsider"):
        assert notified[filings[name]] == firm.ids(*IN_APP, "assigned_viewer"), name
    assert notified[filings["staff"]] == firm.ids(*IN_APP, "staff")


def test_a_filing_digest_falls_back_to_the_clients_assignee_the_same_way(
    preset_session: Session, firm: Firm
) -> None:
    filings = _filings_with_unreachable_assignees(preset_session, firm)

    digests = filing_reminder_digests(preset_session, firm.tenant.id, TODAY)

    listed: dict[Id, set[Id]] = {}
    for digest in digests:
        for item in digest.items:
            listed.setdefault(item["filing_id"], set()).add(digest.user_id)
    for name in ("none", "inactive", "outsider"):
        assert listed[filings[name]] == firm.ids(*EMAIL, "assigned_viewer"), name
    assert listed[filings["staff"]] == firm.ids(*EMAIL, "staff")


def test_the_fallback_costs_no_statement_per_filing(
    preset_session: Session, preset_db: Engine
) -> None:
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    for t, clients in ((small, 3), (large, 60)):
        people = [f.member(preset_session, t, Role.MANAGER) for _ in range(2)]
        gone = f.member(preset_session, t, Role.STAFF, active=False)
        for n in range(clients):
            c = f.client(preset_session, t, assigned=people[n % 2])
            f.filing(preset_session, c, due=days(-2), assigned=gone)
    preset_session.commit()
    for job in (notify_filing_reminders, filing_reminder_digests):
        counts = {
            _statements(preset_db, lambda t=t, job=job: job(preset_session, t.id, TODAY))  # type: ignore[misc]
            for t in (small, large)
        }
        assert len(counts) == 1, job.__name__


def test_a_notification_row_carries_what_the_platform_keeps(
    preset_session: Session, firm: Firm
) -> None:
    # Given a document expiring tomorrow, and a database session whose time zone is not UTC
    f.document(preset_session, f.client(preset_session, firm.tenant), expiry=days(1))
    preset_session.execute(text("SET LOCAL TimeZone = 'Asia/Kathmandu'"))
    now = datetime(2026, 6, 1, 8, 0, 0, 123000, tzinfo=UTC)

    # When its notifications are written
    notify_document_expiry(preset_session, firm.tenant.id, TODAY, now=now)

    # Then each row has an id of the mapping's type, created at `now`, and on Prisma the
    # updatedAt its client would have set (timestamps without time zone hold UTC there,
    # whatever the session's time zone)
    t = tables_of(preset_session)
    rows = preset_session.execute(select(t.notifications)).all()
    assert len(rows) == len(IN_APP)
    id_type = str if t.mapping.id_type == "text" else int
    assert all(isinstance(row.id, id_type) for row in rows)
    assert len({row.id for row in rows}) == len(rows)
    stamps = {row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC) for row in rows}
    assert stamps == {now}
    if "updated_at" in t.notifications.c:
        assert {row.updated_at for row in rows} == {now.replace(tzinfo=None)}
    assert t.extra_columns.get("notifications", ()) == (
        ("updated_at",) if t.mapping.name == "prisma" else ()
    )

"""Risk-level changes detected inside the compliance refresh, on both mappings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import DocumentStatus, Role
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f
from tests.support.statements import recorded_statements

TODAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def _events(session: Session) -> list[dict[str, object]]:
    events = tables_of(session).webhook_events
    rows = session.execute(
        select(
            events.c.event_type, events.c.subject_id, events.c.payload, events.c.dedup_key
        ).order_by(events.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def test_a_level_change_writes_one_event_and_notifies_the_alert_recipients(
    preset_session: Session,
) -> None:
    # Given a tenant with a manager, a viewer, and two scored low-risk clients
    t = f.tenant(preset_session)
    manager = f.member(preset_session, t, Role.MANAGER)
    f.member(preset_session, t, Role.VIEWER)
    moving, staying = f.client(preset_session, t, name="Moving"), f.client(preset_session, t)
    refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)
    assert _events(preset_session) == []  # a first score is not a change

    # When one client gets eight missing documents (score 60: medium) and the refresh runs
    for _ in range(8):
        f.document(preset_session, moving, status=DocumentStatus.PENDING_REVIEW)
    result = refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)

    # Then one event says low -> medium, and the manager (not the viewer) is notified once
    assert (result.clients, result.level_changes) == (2, 1)
    [event] = _events(preset_session)
    assert event["event_type"] == "compliance.level_changed"
    assert event["subject_id"] == str(moving.id)
    assert event["payload"] == {
        "client_id": moving.id,
        "client_name": "Moving",
        "previous_level": "low",
        "level": "medium",
        "score": 60,
        "local_date": TODAY.isoformat(),
    }
    n = tables_of(preset_session).notifications.c
    notes = preset_session.execute(select(n.user_id, n.kind, n.body)).all()
    assert [(row.user_id, row.kind) for row in notes] == [(manager.id, "compliance_level_changed")]
    assert notes[0].body == "Moving moved from low to medium risk (score 60)."
    assert staying.id != moving.id


def test_a_second_change_the_same_day_is_not_reported_again(gcmc_session: Session) -> None:
    preset_session = gcmc_session
    t = f.tenant(preset_session)
    f.member(preset_session, t, Role.OWNER)
    c = f.client(preset_session, t)
    refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)
    docs = [f.document(preset_session, c, status=DocumentStatus.REJECTED) for _ in range(11)]
    assert refresh_tenant(preset_session, t.id, today=TODAY, now=NOW).level_changes == 1
    # back to low the same day: no second event; the next day it is reported
    v = tables_of(preset_session).document_versions
    preset_session.execute(v.update().values(status=DocumentStatus.APPROVED))
    assert refresh_tenant(preset_session, t.id, today=TODAY, now=NOW).level_changes == 0
    docs.clear()
    preset_session.execute(v.update().values(status=DocumentStatus.REJECTED))
    later = refresh_tenant(preset_session, t.id, today=TODAY + timedelta(days=1), now=NOW)
    assert later.level_changes == 1
    assert len(_events(preset_session)) == 2


def test_detection_adds_no_statement_with_or_without_changes(
    preset_session: Session, preset_db: Engine
) -> None:
    # Given two tenants of 2 and 12 clients, scored once, the large one with an admin
    small, large = f.tenant(preset_session, "small"), f.tenant(preset_session, "large")
    admin = f.member(preset_session, large, Role.ADMIN)
    clients = {small.id: [], large.id: []}  # type: ignore[var-annotated]
    for t, n in ((small, 2), (large, 12)):
        clients[t.id] = [f.client(preset_session, t) for _ in range(n)]
        refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)
    preset_session.commit()

    # When nothing changed, the refresh is two statements per tenant (the scores, with the
    # detection inside, and the day's snapshot: gcmc_jobs.services.snapshots)
    with recorded_statements(preset_db) as unchanged:
        refresh_tenant(preset_session, small.id, today=TODAY, now=NOW)
    assert len(unchanged) == 2

    # And when every client's level changes, still two, whatever the number of clients:
    # the events and the in-app notifications are written by the scores' statement
    counts = []
    for t in (small, large):
        for c in clients[t.id]:
            for _ in range(5):  # score 75: medium
                f.document(preset_session, c, status=DocumentStatus.REJECTED)
        preset_session.flush()
        with recorded_statements(preset_db) as seen:
            result = refresh_tenant(preset_session, t.id, today=TODAY, now=NOW)
        assert result.level_changes == len(clients[t.id])
        counts.append(len(seen))
    assert counts == [2, 2]
    n = tables_of(preset_session).notifications.c
    notified = preset_session.execute(select(n.user_id, n.subject_id)).all()
    assert sorted(notified) == sorted((admin.id, c.id) for c in clients[large.id])


def test_level_changes_on_sqlite_the_demos_database(gcmc_sqlite_db: Engine) -> None:
    with Session(gcmc_sqlite_db) as session:
        t = f.tenant(session)
        f.member(session, t, Role.OWNER)
        c = f.client(session, t, name="Lite")
        refresh_tenant(session, t.id, today=TODAY, now=NOW)
        for _ in range(5):
            f.document(session, c, status=DocumentStatus.REJECTED)
        assert refresh_tenant(session, t.id, today=TODAY, now=NOW).level_changes == 1
        assert refresh_tenant(session, t.id, today=TODAY, now=NOW).level_changes == 0
        [event] = _events(session)
        assert (event["payload"]["previous_level"], event["payload"]["level"]) == (  # type: ignore[index]
            "low", "medium",
        )  # fmt: skip
        n = tables_of(session).notifications.c
        assert session.scalar(select(n.body)) == "Lite moved from low to medium risk (score 75)."

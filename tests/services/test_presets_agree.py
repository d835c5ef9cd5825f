"""The same random world on the ``gcmc`` preset and on the tables Prisma's migration creates
gives the same scores, notifications and digests, and on both the jobs for one tenant stay
inside it.

Hypothesis builds two or three tenants that share people (a user may belong to several, with
different roles), clients assigned to people of *another* tenant, documents and filings on
every status and around every warning day, preferences turned off, a suppressed address.
The world is built through ``tests.factories`` on both databases; every job of tenant A
runs on both, and what they produce is compared after replacing each id (an integer on one,
a random text id on the other) by the label of the row it names.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import DocumentStatus, FilingStatus, NotificationCategory, Role
from gcmc_jobs.db.tables import Id, Tables, tables_of
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.digests import Digest, document_expiry_digests, filing_reminder_digests
from gcmc_jobs.services.notifications import notify_document_expiry, notify_filing_reminders
from tests import factories as f

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EXPIRY_OFFSETS = [None, -30, -1, 0, 1, 3, 5, 7, 8, 14, 29, 30, 31]
DUE_OFFSETS = [-9, -8, -7, -3, -1, 0, 3, 7, 8, 14, 15]
#: The marker every name of a tenant other than A carries.
OTHER_MARKS = re.compile(r"TENANT[12]MARK")

documents = st.tuples(st.sampled_from([None, *DocumentStatus]), st.sampled_from(EXPIRY_OFFSETS))
filings = st.tuples(
    st.sampled_from(list(FilingStatus)), st.sampled_from(DUE_OFFSETS), st.integers(-1, 5)
)
clients = st.fixed_dictionaries(
    {
        "assigned": st.integers(-1, 5),  # an index into the users, or -1 for nobody
        "active": st.sampled_from([True, True, False]),
        "documents": st.lists(documents, min_size=1, max_size=3),
        "filings": st.lists(filings, min_size=1, max_size=2),
    }
)
worlds = st.fixed_dictionaries(
    {
        "users": st.lists(st.sampled_from([True, True, True, False]), min_size=2, max_size=6),
        "suppressed": st.integers(-1, 5),
        "tenants": st.lists(
            st.fixed_dictionaries(
                {
                    "roles": st.lists(st.sampled_from([None, *Role]), min_size=6, max_size=6),
                    "clients": st.lists(clients, min_size=1, max_size=3),
                    "opt_out": st.sets(
                        st.tuples(
                            st.integers(0, 5),
                            st.sampled_from(list(NotificationCategory)),
                            st.sampled_from(["in_app", "email", "both"]),
                        ),
                        max_size=3,
                    ),
                }
            ),
            min_size=2,
            max_size=3,
        ),
    }
)


#: The label of each row, by (logical table, id): ids of different tables may be equal.
Labels = dict[tuple[str, Id], str]
#: Which table the ids of a digest item or a notification's subject name.
ID_TABLES = {
    "document_id": "documents",
    "version_id": "document_versions",
    "client_id": "clients",
    "filing_id": "filings",
    "document_version": "document_versions",
    "filing": "filings",
}


def _build(session: Session, world: dict[str, Any]) -> tuple[list[Id], Labels]:
    """Insert the world; returns the tenant ids and the label of every row."""
    labels: Labels = {}
    users = []
    for n, active in enumerate(world["users"]):
        person = f.user(session, email=f"u{n}@people.example", active=active, name=f"Person {n}")
        users.append(person)
        labels["users", person.id] = f"u{n}"
    if 0 <= world["suppressed"] < len(users):
        f.suppression(session, users[world["suppressed"]].email.upper())

    def who(index: int) -> f.UserRow | None:
        return users[index] if 0 <= index < len(users) else None

    tenant_ids = []
    for t, spec in enumerate(world["tenants"]):
        tenant = f.tenant(session, f"TENANT{t}MARK Firm")
        tenant_ids.append(tenant.id)
        labels["tenants", tenant.id] = f"t{t}"
        for person, role in zip(users, spec["roles"], strict=False):
            if role is not None:
                f.membership(session, tenant, person, role)
        opted: set[tuple[int, NotificationCategory]] = set()
        for index, category, channel in sorted(spec["opt_out"]):
            person = who(index)
            if person is None or (index, category) in opted:
                continue
            opted.add((index, category))
            f.preference(
                session,
                tenant,
                person,
                category,
                in_app=channel == "email",
                email=channel == "in_app",
            )
        for c, client_spec in enumerate(spec["clients"]):
            client = f.client(
                session,
                tenant,
                name=f"TENANT{t}MARK Client {c}",
                email=f"client{t}-{c}@clients.example",
                assigned=who(client_spec["assigned"]),
                active=client_spec["active"],
            )
            labels["clients", client.id] = f"c{t}-{c}"
            for d, (status, offset) in enumerate(client_spec["documents"]):
                document = f.document(
                    session,
                    client,
                    status=status,
                    expiry=None if offset is None else TODAY + timedelta(offset),
                    title=f"TENANT{t}MARK Document {c}-{d}",
                )
                labels["documents", document.id] = f"d{t}-{c}-{d}"
                if document.latest_version_id is not None:
                    labels["document_versions", document.latest_version_id] = f"v{t}-{c}-{d}"
            for i, (status, offset, assignee) in enumerate(client_spec["filings"]):
                filing = f.filing(
                    session,
                    client,
                    due=TODAY + timedelta(offset),
                    status=status,
                    assigned=who(assignee),
                    filing_type=f"TENANT{t}MARK vat",
                    period_start=TODAY - timedelta(90),
                    period_end=TODAY - timedelta(60),
                )
                labels["filings", filing.id] = f"f{t}-{c}-{i}"
    return tenant_ids, labels


def _digests(found: list[Digest], labels: Labels) -> dict[str, Any]:
    """Each digest by its recipient's label, its ids replaced by labels; items in a
    canonical order (the SQL orders ties of one day by id, which differ between presets)."""
    out: dict[str, Any] = {}
    for digest in found:
        assert digest.dedup_key == (
            f"digest:{digest.kind}:{digest.tenant_id}:{digest.user_id}:{TODAY.isoformat()}"
        )
        days = [item["days_left"] for item in digest.items]
        assert days == sorted(days)
        items = [
            {k: labels[ID_TABLES[k], v] if k in ID_TABLES else v for k, v in item.items()}
            for item in digest.items
        ]
        out[labels["users", digest.user_id]] = (
            digest.kind,
            labels["tenants", digest.tenant_id],
            digest.to,
            digest.name,
            digest.tenant_name,
            digest.local_date,
            sorted(items, key=repr),
        )
    return out


def _notifications(session: Session, t: Tables, labels: Labels) -> set[tuple[Any, ...]]:
    rows = session.execute(select(t.notifications)).all()
    found = set()
    for row in rows:
        assert row.dedup_key == f"{row.kind}:{row.subject_id}:{row.user_id}"
        assert row.created_at is not None
        found.add(
            (
                labels["tenants", row.tenant_id],
                labels["users", row.user_id],
                row.kind,
                row.subject_type,
                labels[ID_TABLES[row.subject_type], row.subject_id],
                row.title,
                row.body,
            )
        )
    assert len(found) == len(rows)
    return found


def _run(engine: Engine, world: dict[str, Any]) -> dict[str, Any]:
    """Build ``world`` on ``engine`` and run every job of its first tenant, twice."""
    f.empty_tables(engine)
    t = tables_of(engine)
    with Session(engine) as session, session.begin():
        tenant_ids, labels = _build(session, world)
    a = tenant_ids[0]
    with Session(engine) as session, session.begin():
        refresh = refresh_tenant(session, a, today=TODAY, now=NOW)
        results = [
            (job(session, a, TODAY, now=NOW), job(session, a, TODAY, now=NOW))
            for job in (notify_document_expiry, notify_filing_reminders)
        ]
        documents = document_expiry_digests(session, a, TODAY)
        filings = filing_reminder_digests(session, a, TODAY)
        scores = {
            labels["clients", row.client_id]: (
                labels["tenants", row.tenant_id],
                row.score,
                row.level,
                row.missing_count,
                row.expired_count,
                row.expiring_count,
                row.overdue_count,
            )
            for row in session.execute(select(t.compliance_scores))
        }
        notifications = _notifications(session, t, labels)
        members_of_a = {
            labels["users", user_id]
            for user_id in session.scalars(
                select(t.tenant_users.c.user_id).where(t.tenant_users.c.tenant_id == a)
            )
        }
    return {
        "refreshed": refresh.clients,
        "results": [(r.candidates, r.created, again.created) for r, again in results],
        "scores": scores,
        "notifications": notifications,
        "document_digests": _digests(documents, labels),
        "filing_digests": _digests(filings, labels),
        "members_of_a": members_of_a,
    }


def _assert_stays_in_tenant_a(out: dict[str, Any]) -> None:
    """Everything the jobs of tenant A produced is A's, about A's rows, for A's members."""
    assert {score[0] for score in out["scores"].values()} <= {"t0"}
    for tenant, user, _kind, _type, subject, title, body in out["notifications"]:
        assert (tenant, subject[1]) == ("t0", "0")  # v0-…, f0-…: A's versions and filings
        assert user in out["members_of_a"]
        assert "TENANT0MARK" in title + body
        assert not OTHER_MARKS.search(title + body)
    for kind in ("document_digests", "filing_digests"):
        for user, (_kind, tenant, *_rest, items) in out[kind].items():
            assert tenant == "t0"
            assert user in out["members_of_a"]
            assert all(item["client_id"].startswith("c0-") for item in items)
            assert not OTHER_MARKS.search(repr(items))
    # A second run the same day created nothing.
    assert [again for *_, again in out["results"]] == [0, 0]


@settings(max_examples=15)
@given(world=worlds)
def test_both_presets_give_the_same_results_and_stay_in_the_tenant(
    world: dict[str, Any], gcmc_db: Engine, prisma_db: tuple[Engine, Tables]
) -> None:
    # Given the same random world on the gcmc tables and on Prisma-shaped ones
    # When every job of the first tenant runs on each
    on_gcmc = _run(gcmc_db, world)
    on_prisma = _run(prisma_db[0], world)

    # Then each stays inside the tenant, and both produce the same rows and digests
    _assert_stays_in_tenant_a(on_gcmc)
    _assert_stays_in_tenant_a(on_prisma)
    assert on_prisma == on_gcmc

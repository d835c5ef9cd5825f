"""What a delivery event does (issue 13, item 2): recorded once per event id, tied to its
email, hard bounces and complaints suppress at once, soft bounces after a threshold within a
window, every suppression recorded with its actor; set-based on every preset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import EmailEventKind, SuppressionReason
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services import email_log, suppressions
from gcmc_jobs.services.bounces import BouncePolicy, DeliveryEvent, events_of, record_events
from tests import factories as f
from tests.support.statements import recorded_statements

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _event(
    n: int | str,
    address: str,
    kind: EmailEventKind = EmailEventKind.BOUNCED,
    *,
    permanent: bool | None = True,
    at: datetime = NOW,
    **extra: object,
) -> DeliveryEvent:
    return DeliveryEvent(
        source="provider:ses",
        event_id=f"evt-{n}",
        address=address,
        kind=kind,
        occurred_at=at,
        permanent=permanent,
        **extra,  # type: ignore[arg-type]
    )


def _suppressed(engine: Engine) -> dict[str, tuple[str, str | None, str | None]]:
    s = tables_of(engine).email_suppressions
    with engine.connect() as connection:
        rows = connection.execute(select(s.c.address, s.c.reason, s.c.source, s.c.event_id))
        return {a: (r, src, e) for a, r, src, e in rows}


def test_a_hard_bounce_and_a_complaint_suppress_with_reason_source_event_and_actor(
    preset_db: Engine,
) -> None:
    with preset_db.begin() as connection:
        result = record_events(
            connection,
            [
                _event(1, "Gone@Example.com"),
                _event(2, "angry@example.com", EmailEventKind.COMPLAINED, permanent=None),
                _event(3, "fine@example.com", EmailEventKind.DELIVERED, permanent=None),
            ],
            now=NOW,
        )

    assert result.suppressed == {
        "gone@example.com": SuppressionReason.HARD_BOUNCE,
        "angry@example.com": SuppressionReason.COMPLAINT,
    }
    assert _suppressed(preset_db) == {
        "gone@example.com": ("hard_bounce", "provider:ses", "provider:ses:evt-1"),
        "angry@example.com": ("complaint", "provider:ses", "provider:ses:evt-2"),
    }
    with preset_db.connect() as connection:
        history = suppressions.changes(connection)
        assert email_log.suppression_reason(connection, "GONE@example.com") is (
            SuppressionReason.HARD_BOUNCE
        )
    assert sorted((c.address, c.action, c.actor, c.event_id) for c in history) == [
        ("angry@example.com", "added", "provider:ses", "provider:ses:evt-2"),
        ("gone@example.com", "added", "provider:ses", "provider:ses:evt-1"),
    ]


def test_the_same_event_twice_is_recorded_and_applied_once(preset_db: Engine) -> None:
    events = [_event(1, "gone@example.com"), _event(1, "gone@example.com")]
    with preset_db.begin() as connection:
        first = record_events(connection, events, now=NOW)
    with preset_db.begin() as connection:
        again = record_events(connection, events[:1], now=NOW)

    assert (first.received, len(first.recorded), first.duplicates) == (2, 1, 1)
    assert (again.received, len(again.recorded), again.suppressed) == (1, 0, {})
    t = tables_of(preset_db)
    with preset_db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(t.email_events)) == 1
        assert len(suppressions.changes(connection)) == 1


def test_soft_bounces_suppress_only_at_the_threshold_within_the_window(
    gcmc_db: Engine,
) -> None:
    policy = BouncePolicy(soft_threshold=3, soft_window=timedelta(days=7))
    old = NOW - timedelta(days=8)
    # Given one soft bounce outside the window and one inside
    with gcmc_db.begin() as connection:
        record_events(
            connection,
            [
                _event("old", "soft@example.com", permanent=False, at=old),
                _event("a", "soft@example.com", permanent=False, at=NOW - timedelta(days=1)),
            ],
            policy=policy,
            now=NOW,
        )
    # When a second one inside the window arrives: two of three, not suppressed
    with gcmc_db.begin() as connection:
        second = record_events(
            connection, [_event("b", "Soft@example.com", permanent=False)], policy=policy, now=NOW
        )
    assert second.suppressed == {}
    # When the third arrives: suppressed, reason soft_bounce, with the last event
    with gcmc_db.begin() as connection:
        third = record_events(
            connection, [_event("c", "soft@example.com", permanent=False)], policy=policy, now=NOW
        )
    assert third.suppressed == {"soft@example.com": SuppressionReason.SOFT_BOUNCE}
    assert _suppressed(gcmc_db)["soft@example.com"][0] == "soft_bounce"


def test_an_event_is_tied_to_its_email_by_dedup_key_or_message_id(gcmc_db: Engine) -> None:
    with gcmc_db.begin() as connection:
        for key in ("k-by-key", "k-by-id"):
            email_log.ensure_queued(
                connection, dedup_key=key, to_address="a@example.com", kind="welcome", subject="s"
            )
        email_log.mark_sent(connection, "k-by-id", "<abc@gcmc.example>")
        record_events(
            connection,
            [
                _event(1, "a@example.com", EmailEventKind.DELIVERED, dedup_key="k-by-key"),
                _event(
                    2, "a@example.com", EmailEventKind.DEFERRED, message_id="<abc@gcmc.example>"
                ),
                _event(
                    3,
                    "a@example.com",
                    EmailEventKind.DELIVERED,
                    message_id="<abc@gcmc.example>",
                    at=NOW + timedelta(minutes=5),
                ),
                _event(4, "a@example.com", EmailEventKind.DELIVERED, dedup_key="unknown"),
            ],
            now=NOW,
        )
    with gcmc_db.connect() as connection:
        by_key = events_of(connection, "k-by-key")
        by_id = events_of(connection, "k-by-id")
    assert [e["kind"] for e in by_key] == ["delivered"]
    assert [(e["kind"], e["event_id"]) for e in by_id] == [
        ("deferred", "evt-2"),
        ("delivered", "evt-3"),
    ]


def test_a_batch_is_a_constant_number_of_statements(gcmc_db: Engine) -> None:
    def batch(n: int, tag: str) -> list[DeliveryEvent]:
        kinds = [EmailEventKind.BOUNCED, EmailEventKind.COMPLAINED, EmailEventKind.DELIVERED]
        return [
            _event(
                f"{tag}{i}",
                f"u{tag}{i % (n // 2 or 1)}@example.com",
                kinds[i % 3],
                permanent=[True, False][i % 2] if kinds[i % 3] is EmailEventKind.BOUNCED else None,
            )
            for i in range(n)
        ]

    counts = []
    for n, tag in ((6, "s"), (600, "l")):
        with recorded_statements(gcmc_db) as seen, gcmc_db.begin() as connection:
            result = record_events(connection, batch(n, tag), now=NOW)
        assert len(result.recorded) == n
        assert result.suppressed
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 4


def test_events_are_recorded_and_applied_on_sqlite(gcmc_sqlite_db: Engine) -> None:
    policy = BouncePolicy(soft_threshold=2)
    with gcmc_sqlite_db.begin() as connection:
        result = record_events(
            connection,
            [
                _event(1, "gone@example.com"),
                _event(2, "soft@example.com", permanent=False),
                _event(3, "soft@example.com", permanent=False, at=NOW - timedelta(hours=1)),
            ],
            policy=policy,
            now=NOW,
        )
    assert result.suppressed == {
        "gone@example.com": SuppressionReason.HARD_BOUNCE,
        "soft@example.com": SuppressionReason.SOFT_BOUNCE,
    }


@pytest.mark.parametrize("reason", [SuppressionReason.MANUAL, SuppressionReason.COMPLAINT])
def test_an_address_already_suppressed_keeps_its_reason(
    gcmc_db: Engine, reason: SuppressionReason
) -> None:
    with gcmc_db.begin() as connection:
        suppressions.add(connection, [("gone@example.com", reason)], actor="api")
        result = record_events(connection, [_event(1, "GONE@example.com")], now=NOW)
    assert result.suppressed == {}
    assert _suppressed(gcmc_db)["gone@example.com"][0] == reason.value


def test_provider_bounces_and_complaints_are_email_bounced_webhook_events_once(
    preset_db: Engine,
) -> None:
    # Given three emails of a tenant, and one without a tenant
    with Session(preset_db) as session:
        tenant = f.tenant(session, "Acme").id
        session.commit()
    with preset_db.begin() as connection:
        for key, tenant_id in (("hard", tenant), ("angry", tenant), ("soft", tenant)):
            email_log.ensure_queued(
                connection,
                dedup_key=key,
                to_address=f"{key}@example.com",
                kind="welcome",
                subject="s",
                tenant_id=tenant_id,
            )
        email_log.ensure_queued(
            connection, dedup_key="nobody", to_address="n@example.com", kind="welcome", subject="s"
        )

    # When the provider reports a hard bounce, a complaint, a soft bounce and a bounce of the
    # tenant-less email (twice over: a redelivered batch)
    batch = [
        _event(1, "hard@example.com", dedup_key="hard"),
        _event(
            2, "angry@example.com", EmailEventKind.COMPLAINED, permanent=None, dedup_key="angry"
        ),
        _event(3, "soft@example.com", permanent=False, dedup_key="soft"),
        _event(4, "n@example.com", dedup_key="nobody"),
    ]
    for _ in range(2):
        with preset_db.begin() as connection:
            record_events(connection, batch, now=NOW)

    # Then the tenant's endpoints get one email.bounced per hard bounce or complaint
    events = tables_of(preset_db).webhook_events
    with preset_db.connect() as connection:
        rows = connection.execute(
            select(events.c.tenant_id, events.c.event_type, events.c.dedup_key, events.c.payload)
        ).all()
    assert sorted((r.dedup_key, r.payload["reason"], r.payload["address"]) for r in rows) == [
        ("email.bounced:angry", "complaint", "angry@example.com"),
        ("email.bounced:hard", "hard_bounce", "hard@example.com"),
    ]
    assert {(r.tenant_id, r.event_type) for r in rows} == {(tenant, "email.bounced")}


def test_linked_bounces_add_one_statement_whatever_their_number(gcmc_db: Engine) -> None:
    counts = []
    for n in (3, 60):
        with gcmc_db.begin() as connection:
            with Session(bind=connection) as session:
                tenant = f.tenant(session, f"T{n}").id
            for i in range(n):
                email_log.ensure_queued(
                    connection,
                    dedup_key=f"k{n}-{i}",
                    to_address=f"u{n}-{i}@example.com",
                    kind="welcome",
                    subject="s",
                    tenant_id=tenant,
                )
        batch = [
            _event(f"{n}-{i}", f"u{n}-{i}@example.com", dedup_key=f"k{n}-{i}") for i in range(n)
        ]
        with recorded_statements(gcmc_db) as seen, gcmc_db.begin() as connection:
            record_events(connection, batch, now=NOW)
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 5

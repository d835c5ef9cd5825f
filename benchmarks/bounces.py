"""Ingesting provider events set-based next to one-by-one ORM writes (issue 13).

One command (the test suite's PostgreSQL; its own database, removed at the end)::

    .venv/bin/python benchmarks/bounces.py [--events 100000] [--batch 10000] [--rounds 1]

The same events (deterministic: delivered 40 %, hard bounces 20 %, soft bounces 25 %,
complaints 5 %, deferred 5 %, and 5 % sent twice, as a provider redelivers a webhook; half
naming an ``email_log`` row by dedup key, a quarter by Message-ID) are applied by:

1. ours: :func:`gcmc_jobs.services.bounces.record_events`, ``--batch`` events per call and
   transaction (four statements a call);
2. the baseline: one-by-one ORM writes, one transaction per event as a webhook handler that
   knows no better would do it: look the event up by its id, find its ``email_log`` row, add
   the event, then (hard bounce, complaint) look the address up and add the suppression and
   its change row, or (soft bounce) count the address's soft bounces in the window and
   suppress at the threshold.

Each starts from the same database (events and suppressions emptied between runs). Printed:
events per second of each, the ratio (target >= 10x), SQL statements, and the load average.
The resulting ``(address, reason)`` suppressions and recorded events are asserted equal.
Each address receives one kind of hard event at most and soft bounces only if none, so
"which event came first" cannot change a reason: both must find the same list.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.orm import Session, registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.enums import EmailEventKind, EmailStatus, SuppressionReason
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import EmailLog, EmailSuppression
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.bounces import BouncePolicy, DeliveryEvent, record_events

NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = BouncePolicy(soft_threshold=3, soft_window=timedelta(days=7))
SOURCE = "provider:ses"


class EventRow:
    """``email_events`` as an ORM class (the baseline's)."""


class ChangeRow:
    """``email_suppression_changes`` as an ORM class (the baseline's)."""


def generate(n: int, seed: int = 13) -> list[DeliveryEvent]:
    rng = random.Random(seed)
    addresses = max(n // 4, 10)
    events: list[DeliveryEvent] = []
    for i in range(n):
        a = rng.randrange(addresses)
        group = a % 20  # an address's group decides which events it can get
        if group < 8:
            kind, permanent = EmailEventKind.DELIVERED, None
        elif group < 12:
            kind, permanent = EmailEventKind.BOUNCED, True
        elif group < 17:
            kind, permanent = EmailEventKind.BOUNCED, False
        elif group < 18:
            kind, permanent = EmailEventKind.COMPLAINED, None
        else:
            kind, permanent = EmailEventKind.DEFERRED, None
        ref = i % 4
        events.append(
            DeliveryEvent(
                source=SOURCE,
                event_id=f"evt-{i}",
                address=f"user{a}@example.com",
                kind=kind,
                occurred_at=NOW - timedelta(hours=rng.randrange(24 * 10)),
                permanent=permanent,
                detail="smtp; 550 5.1.1 unknown" if permanent else None,
                dedup_key=f"mail-{i % (n // 2 or 1)}" if ref < 2 else None,
                message_id=f"<mail-{i % (n // 2 or 1)}@gcmc.example>" if ref == 2 else None,
            )
        )
    redelivered = [events[rng.randrange(n)] for _ in range(n // 20)]
    return events + redelivered


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    count = [0]

    def listener(*_: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def ours(engine: Engine, events: list[DeliveryEvent], batch: int) -> None:
    for start in range(0, len(events), batch):
        with engine.begin() as connection:
            record_events(connection, events[start : start + batch], policy=POLICY, now=NOW)


def baseline(engine: Engine, events: list[DeliveryEvent]) -> None:
    since = NOW - POLICY.soft_window
    for e in events:
        with Session(engine) as session, session.begin():
            known = session.scalar(
                select(EventRow.id).where(  # type: ignore[attr-defined]
                    EventRow.source == SOURCE,  # type: ignore[attr-defined]
                    EventRow.event_id == e.event_id,  # type: ignore[attr-defined]
                )
            )
            if known is not None:
                continue
            log_id = None
            if e.dedup_key:
                log_id = session.scalar(
                    select(EmailLog.id).where(EmailLog.dedup_key == e.dedup_key)
                )
            if log_id is None and e.message_id:
                log_id = session.scalar(
                    select(func.min(EmailLog.id)).where(
                        EmailLog.provider_message_id == e.message_id
                    )
                )
            row = EventRow()
            for name, value in {
                "source": e.source, "event_id": e.event_id, "email_log_id": log_id,
                "address": e.address, "kind": e.kind.value, "permanent": e.permanent,
                "detail": e.detail, "occurred_at": e.occurred_at, "recorded_at": NOW,
                "batch_id": "baseline",
            }.items():  # fmt: skip
                setattr(row, name, value)
            session.add(row)
            session.flush()
            reason = None
            if e.kind is EmailEventKind.COMPLAINED:
                reason = SuppressionReason.COMPLAINT
            elif e.kind is EmailEventKind.BOUNCED and e.permanent:
                reason = SuppressionReason.HARD_BOUNCE
            elif e.kind is EmailEventKind.BOUNCED:
                soft = session.scalar(
                    select(func.count()).where(
                        func.lower(EventRow.address) == e.address,  # type: ignore[attr-defined]
                        EventRow.kind == "bounced",  # type: ignore[attr-defined]
                        EventRow.permanent.is_(False),  # type: ignore[attr-defined]
                        EventRow.occurred_at >= since,  # type: ignore[attr-defined]
                    )
                )
                if (soft or 0) >= POLICY.soft_threshold:
                    reason = SuppressionReason.SOFT_BOUNCE
            if reason is None:
                continue
            exists = session.scalar(
                select(EmailSuppression.address).where(
                    func.lower(EmailSuppression.address) == e.address
                )
            )
            if exists is not None:
                continue
            session.add(EmailSuppression(address=e.address, reason=reason, created_at=NOW))
            change = ChangeRow()
            for name, value in {
                "address": e.address, "action": "added", "reason": reason.value,
                "actor": SOURCE, "event_id": f"{SOURCE}:{e.event_id}", "changed_at": NOW,
            }.items():  # fmt: skip
                setattr(change, name, value)
            session.add(change)


def outcome(engine: Engine) -> tuple[set[tuple[str, str]], int, int, int]:
    t = tables_of(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(t.email_suppressions.c[("address", "reason")]))
        suppressed = {(row.address, str(row.reason)) for row in rows}
        events = connection.scalar(select(func.count()).select_from(t.email_events)) or 0
        linked = (
            connection.scalar(
                select(func.count())
                .select_from(t.email_events)
                .where(t.email_events.c.email_log_id.is_not(None))
            )
            or 0
        )
        changes = (
            connection.scalar(select(func.count()).select_from(t.email_suppression_changes)) or 0
        )
    return suppressed, events, linked, changes


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE email_events, email_suppressions, email_suppression_changes")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per record_events")
    parser.add_argument(
        "--postgres", default=os.environ.get("GCMC_JOBS_TEST_POSTGRES_URL",
                                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with bench_database(args.postgres, "bounces") as engine:
        upgrade(engine)
        t = tables_of(engine)
        mapper = registry()
        mapper.map_imperatively(EventRow, t.email_events)
        mapper.map_imperatively(ChangeRow, t.email_suppression_changes)
        mails = args.events // 2
        with engine.begin() as connection:
            connection.execute(
                insert(t.email_log),
                [
                    {
                        "dedup_key": f"mail-{i}",
                        "to_address": f"user{i}@example.com",
                        "kind": "welcome",
                        "subject": "Welcome",
                        "status": EmailStatus.SENT,
                        "provider_message_id": f"<mail-{i}@gcmc.example>",
                        "attempts": 1,
                    }
                    for i in range(mails)
                ],
            )
        events = generate(args.events)
        print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

        with counting(engine) as ours_statements:
            started = time.perf_counter()
            ours(engine, events, args.batch)
            ours_s = time.perf_counter() - started
        ours_result = outcome(engine)
        reset(engine)
        print(f"ours done in {ours_s:.2f} s; the baseline runs...", flush=True)

        with counting(engine) as base_statements:
            started = time.perf_counter()
            baseline(engine, events)
            base_s = time.perf_counter() - started
        base_result = outcome(engine)

        n = len(events)
        print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"events: {n:,} ({n - args.events:,} redelivered), {mails:,} email_log rows")
        print(
            f"set-based record_events ({args.batch:,} a call): {ours_s:8.2f} s "
            f"{n / ours_s:10,.0f} events/s {ours_statements[0]:9,} statements"
        )
        print(
            f"one-by-one ORM writes:                   {base_s:8.2f} s "
            f"{n / base_s:10,.0f} events/s {base_statements[0]:9,} statements"
        )
        print(f"ratio: {base_s / ours_s:.1f}x faster (target >= 10x)")
        suppressed, recorded, linked, changes = ours_result
        by_reason: dict[str, int] = {}
        for _, reason in sorted(suppressed):
            by_reason[reason] = by_reason.get(reason, 0) + 1
        print(
            f"result: {recorded:,} events ({linked:,} tied to email_log), "
            f"{len(suppressed):,} suppressions {by_reason}, "
            f"{changes:,} change rows"
        )
        assert ours_result == base_result, "the two ways differ"
        print("identical suppressions, events, links and change rows: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 12's "done when": on the platform's tables as Prisma's migration creates them (the
package's own created by ``db upgrade`` with the platform's tables external), a day of
scheduler ticks runs every job with the same results as on the ``gcmc`` preset: the same job
runs, compliance scores, notifications and digests, once the ids are mapped (``seed-…`` text
ids to numbers)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.scheduling.due_runs import due_runs
from gcmc_jobs.scheduling.jobs import JOB_NAMES, SentDigests
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.seeding import seed
from gcmc_jobs.services.digests import Digest
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests.support.prisma import PrismaDatabase

#: The jobs compared on both mappings: every daily job.
COMPARED_JOBS: tuple[str, ...] = JOB_NAMES
START = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
TICK = timedelta(minutes=15)
_SEEDED_ID = re.compile(r"seed-0*(\d+)")


def _plain(value: Any) -> Any:
    """``value`` with seeded text ids as numbers (also inside keys such as
    ``digest:…:seed-0…42:…``), enum members as their values."""
    if isinstance(value, str):
        number = _SEEDED_ID.fullmatch(value)
        if number:
            return int(number.group(1))
        return _SEEDED_ID.sub(r"\1", value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return getattr(value, "value", value)


def _a_day(engine: Engine) -> list[Digest]:
    """Tick every 15 minutes through a UTC day on an injected clock, running each due run
    inline as the worker would; the digests the email jobs hand over are kept."""
    digests: list[Digest] = []

    def keep(found: Sequence[Digest]) -> SentDigests:
        digests.extend(found)
        return SentDigests(queued=len(found), duplicates=0)

    times = {job: DEFAULT_JOB_TIMES[job] for job in COMPARED_JOBS}
    now = START
    while now < START + timedelta(days=1):
        with session_scope(engine) as session:
            due = due_runs(session, now, times)
        for run in due:
            run_for_tenant(
                engine,
                run.job,
                run.tenant_id,
                local_date=run.local_date,
                now=now,
                scheduled_for=run.scheduled_for,
                send_digests=keep,
            )
        now += TICK
    return digests


def _results(engine: Engine, digests: list[Digest]) -> dict[str, list[Any]]:
    """What the day left, logically: job runs, scores, notifications, digests."""
    t = tables_of(engine)
    jr, scores, notes = t.job_runs.c, t.compliance_scores.c, t.notifications.c
    with engine.connect() as connection:
        runs = connection.execute(
            select(jr.job, jr.tenant_id, jr.local_date, jr.status, jr.scheduled_for, jr.stats)
        ).all()
        score_rows = connection.execute(
            select(
                scores.client_id,
                scores.tenant_id,
                scores.score,
                scores.level,
                scores.missing_count,
                scores.expired_count,
                scores.expiring_count,
                scores.overdue_count,
            )
        ).all()
        notification_rows = connection.execute(
            select(
                notes.tenant_id,
                notes.user_id,
                notes.kind,
                notes.subject_type,
                notes.subject_id,
                notes.title,
                notes.body,
                notes.dedup_key,
            )
        ).all()

    def without_duration(stats: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in stats.items() if k != "duration_ms"}

    return {
        "job_runs": sorted(
            (_plain((*row[:5], without_duration(row.stats))) for row in runs), key=repr
        ),
        "compliance_scores": sorted((_plain(tuple(row)) for row in score_rows), key=repr),
        "notifications": sorted((_plain(tuple(row)) for row in notification_rows), key=repr),
        "digests": sorted(
            (
                _plain(
                    (
                        d.kind,
                        d.tenant_id,
                        d.user_id,
                        d.to,
                        d.name,
                        d.tenant_name,
                        d.local_date,
                        d.dedup_key,
                        sorted((_plain(item) for item in d.items), key=repr),
                        sorted((_plain(change) for change in d.risk_changes), key=repr),
                    )
                )
                for d in digests
            ),
            key=repr,
        ),
    }


def test_a_day_of_ticks_gives_the_same_results_on_prisma_tables(
    gcmc_db: Engine, prisma_migrated_db: PrismaDatabase
) -> None:
    # Given the same seeded world on the gcmc preset and on the tables Prisma's migration
    # creates, whose package tables db upgrade created (platform tables external)
    prisma = prisma_migrated_db.engine
    upgrade(prisma)
    for engine in (gcmc_db, prisma):
        seed(engine, tenants=3, clients_per_tenant=8, seed=12, now=START)

    # When a day of ticks runs on each
    expected = _results(gcmc_db, _a_day(gcmc_db))
    got = _results(prisma, _a_day(prisma))

    # Then every job ran for every tenant, and left the same results on both
    assert {run[0] for run in expected["job_runs"]} == set(COMPARED_JOBS)
    assert len(expected["job_runs"]) == 3 * len(COMPARED_JOBS)
    for kind in ("compliance_scores", "notifications", "digests"):
        if set(COMPARED_JOBS) & _PRODUCERS[kind]:
            assert expected[kind], kind  # (the comparison below compares something)
    assert got == expected


#: Which jobs produce what.
_PRODUCERS: dict[str, set[str]] = {
    "compliance_scores": {"compliance_refresh"},
    "notifications": {"document_expiry_notifications", "filing_reminders"},
    "digests": {"document_expiry_emails", "filing_reminder_emails"},
}


def test_seeded_text_ids_map_back_to_numbers() -> None:
    assert _plain("seed-00000000000000000042") == 42
    assert _plain("digest:x:seed-00000000000000000007:seed-00000000000000000010:d") == (
        "digest:x:7:10:d"
    )
    assert _plain([date(2026, 1, 1)]) == (date(2026, 1, 1),)

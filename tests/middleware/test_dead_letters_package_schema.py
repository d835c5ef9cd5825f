"""Dead letters on a mapping whose package schema is a schema of its own: the store, the
``gcmc-jobs dead-letters`` commands and the health check all use the mapping's
``dead_letters`` table, never the search path's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from gcmc_jobs import configured
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.cli import app
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import bind, build_tables
from gcmc_jobs.settings import Settings
from tests.support.prisma import PrismaDatabase

runner = CliRunner()


@dataclass(frozen=True)
class JobsSchema:
    """The prisma preset with the package's tables in ``schema``, apart from Prisma's."""

    engine: Engine
    schema: str
    env: dict[str, str]


@pytest.fixture
def jobs_schema(
    prisma_migrated_db: PrismaDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobsSchema]:
    schema = f"jobs_{uuid.uuid4().hex[:8]}"
    mapping = prisma_migrated_db.mapping.model_copy(update={"package_schema": schema})
    engine = create_engine(prisma_migrated_db.url)
    bind(engine, build_tables(mapping, managed=False))
    upgrade(engine)  # gcmc-jobs db upgrade, external: the package's tables in `schema`
    path = tmp_path / "mapping.json"
    path.write_text(mapping.model_dump_json(by_alias=True))
    env = {
        "GCMC_JOBS_DATABASE_URL": prisma_migrated_db.url,
        "GCMC_JOBS_SCHEMA_MAPPING": str(path),
        "GCMC_JOBS_PLATFORM_TABLES": "external",
        "GCMC_JOBS_BROKER_URL": "stub://",
        "GCMC_JOBS_EMAIL_URL": "memory://",
        "GCMC_JOBS_LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    try:
        yield JobsSchema(engine, schema, env)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _rows(engine: Engine, qualified: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(f"SELECT message_id, actor, replayed_as FROM {qualified} ORDER BY id")
            )
        ]


def test_a_message_failing_for_good_lands_in_the_package_schema_and_every_reader_sees_it(
    jobs_schema: JobsSchema, gcmc_db: Engine
) -> None:
    # Given a worker on the prisma mapping, its package tables in a schema of their own
    settings = Settings()
    with configured(settings, engine=jobs_schema.engine) as runtime:
        broker = runtime.broker
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
        worker.start()
        try:
            # When a message fails for good (a text tenant id no tenant has: permanent)
            message = refresh_compliance.send("cknotatenant000000000000")
            broker.join(refresh_compliance.queue_name, fail_fast=False)
            worker.join()
        finally:
            worker.stop()

    # Then it is in the package schema's dead_letters, and not in the search path's
    qualified = f'"{jobs_schema.schema}".dead_letters'
    assert _rows(jobs_schema.engine, qualified) == [
        (message.message_id, "refresh_compliance", None)
    ]
    assert _rows(gcmc_db, "public.dead_letters") == []

    # And gcmc-jobs dead-letters list and show find it
    listed = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)
    assert entry["message_id"] == message.message_id
    shown = runner.invoke(app, ["dead-letters", "show", str(entry["id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["error_type"] == "gcmc_jobs.errors.InvalidPayload"

    # And the health check counts it waiting
    health = runner.invoke(app, ["health", "--check", "dead_letters"])
    assert health.exit_code == 0, health.output
    report = json.loads(health.output)
    assert report["checks"]["dead_letters"]["status"] == "warning"
    assert report["checks"]["dead_letters"]["waiting"] == 1

    # When it is replayed
    replayed = runner.invoke(app, ["dead-letters", "replay", str(entry["id"])])
    assert replayed.exit_code == 0, replayed.output

    # Then the replay is recorded on its row, and the health check sees none waiting
    ((_, _, replayed_as),) = _rows(jobs_schema.engine, qualified)
    assert replayed_as not in (None, message.message_id)
    after = json.loads(runner.invoke(app, ["health", "--check", "dead_letters"]).output)
    assert after["checks"]["dead_letters"]["waiting"] == 0

"""Dead letters on a mapping whose package schema is a schema of its own: the store, the
``gcmc-jobs dead-letters`` commands and the health check all use the mapping's
``dead_letters`` table, never the search path's."""

from __future__ import annotations

import json

import dramatiq
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gcmc_jobs import configured
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.cli import app
from gcmc_jobs.settings import Settings
from tests.support.prisma import SplitSchemas

runner = CliRunner()


@pytest.fixture
def split(prisma_split_db: SplitSchemas, monkeypatch: pytest.MonkeyPatch) -> SplitSchemas:
    """The split database, and the environment of a command on it."""
    for name, value in prisma_split_db.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    return prisma_split_db


def _rows(engine: Engine, qualified: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(f"SELECT message_id, actor, replayed_as FROM {qualified} ORDER BY id")
            )
        ]


def test_a_message_failing_for_good_lands_in_the_package_schema_and_every_reader_sees_it(
    split: SplitSchemas, gcmc_db: Engine
) -> None:
    # Given a worker on the prisma mapping, its package tables in a schema of their own
    settings = Settings()
    with configured(settings, engine=split.engine) as runtime:
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
    qualified = f'"{split.package_schema}".dead_letters'
    assert _rows(split.engine, qualified) == [(message.message_id, "refresh_compliance", None)]
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
    ((_, _, replayed_as),) = _rows(split.engine, qualified)
    assert replayed_as not in (None, message.message_id)
    after = json.loads(runner.invoke(app, ["health", "--check", "dead_letters"]).output)
    assert after["checks"]["dead_letters"]["waiting"] == 0

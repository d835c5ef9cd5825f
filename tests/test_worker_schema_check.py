"""``gcmc_jobs.worker`` checks the database against the schema mapping at boot: it refuses to
start on a mismatch with the lines ``gcmc-jobs db check`` prints, starts as before when the
database cannot be reached, and skips the check with ``GCMC_JOBS_SCHEMA_CHECK=false``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from gcmc_jobs.testing import free_port
from tests.support.prisma import PrismaDatabase

MISSING_COLUMN = (
    'column "Client"."isActive" (clients.is_active): expected bool NOT NULL, found no such column'
)


@pytest.fixture
def prisma_env(prisma_migrated_db: PrismaDatabase, tmp_path: Path) -> dict[str, str]:
    """Worker settings on Prisma's tables (and the package's), the ``prisma`` mapping."""
    prisma_migrated_db.create_own_tables()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env.update(
        GCMC_JOBS_DATABASE_URL=prisma_migrated_db.url,
        GCMC_JOBS_SCHEMA_MAPPING=str(prisma_migrated_db.write_mapping(tmp_path / "map.json")),
        GCMC_JOBS_PLATFORM_TABLES="external",
        GCMC_JOBS_BROKER_URL="stub://",
        GCMC_JOBS_EMAIL_URL="memory://",
        GCMC_JOBS_LOG_FORMAT="json",
    )
    return env


def _drop_is_active(db: PrismaDatabase) -> None:
    with db.engine.begin() as connection:
        connection.execute(text(f'ALTER TABLE "{db.schema}"."Client" DROP COLUMN "isActive"'))


def _import_worker(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import gcmc_jobs.worker"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_the_worker_boots_on_a_matching_prisma_schema(
    prisma_env: dict[str, str], tmp_path: Path
) -> None:
    done = _import_worker(prisma_env, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "schema.check_skipped" not in done.stderr


@pytest.mark.slow
def test_a_dramatiq_worker_refuses_to_start_on_a_mismatch_naming_it(
    prisma_migrated_db: PrismaDatabase,
    prisma_env: dict[str, str],
    gcmc_redis_url: str,
    gcmc_namespace: str,
    tmp_path: Path,
) -> None:
    # Given a column of Prisma's tables the mapping needs has gone
    _drop_is_active(prisma_migrated_db)
    env = {
        **prisma_env,
        "GCMC_JOBS_BROKER_URL": gcmc_redis_url,
        "GCMC_JOBS_NAMESPACE": f"{gcmc_namespace}_schema_check",
    }

    # When `dramatiq gcmc_jobs.worker` starts (it would run until stopped if it booted)
    done = subprocess.run(
        [sys.executable, "-m", "dramatiq", "gcmc_jobs.worker", "--processes", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it exits with an error naming the problem, as `gcmc-jobs db check` words it
    assert done.returncode != 0
    assert "gcmc_jobs.errors.SchemaMismatch: the database does not match" in done.stderr
    assert MISSING_COLUMN in done.stderr.splitlines()


def test_importing_the_worker_raises_a_configuration_error_listing_every_problem(
    prisma_migrated_db: PrismaDatabase, prisma_env: dict[str, str], tmp_path: Path
) -> None:
    _drop_is_active(prisma_migrated_db)
    with prisma_migrated_db.engine.begin() as connection:
        connection.execute(text(f'DROP TABLE "{prisma_migrated_db.schema}".job_runs'))
    probe = (
        "from gcmc_jobs.errors import ConfigurationError\n"
        "try:\n    import gcmc_jobs.worker\n"
        "except ConfigurationError as exc:\n    print(exc)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=prisma_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        MISSING_COLUMN,
        f'table "{prisma_migrated_db.schema}"."job_runs" (job_runs): expected a table, found none',
    ]


def test_with_the_check_off_the_worker_boots_on_a_mismatch(
    prisma_migrated_db: PrismaDatabase, prisma_env: dict[str, str], tmp_path: Path
) -> None:
    _drop_is_active(prisma_migrated_db)

    done = _import_worker({**prisma_env, "GCMC_JOBS_SCHEMA_CHECK": "false"}, tmp_path)

    assert done.returncode == 0, done.stderr


def test_an_unreachable_database_boots_as_before_and_says_the_check_was_skipped(
    prisma_env: dict[str, str], tmp_path: Path
) -> None:
    # Nothing listens on that port: the connection is refused at once.
    url = f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{free_port()}/gcmc"

    done = _import_worker({**prisma_env, "GCMC_JOBS_DATABASE_URL": url}, tmp_path)

    assert done.returncode == 0, done.stderr
    [skipped] = [e for e in _events(done.stderr) if e["event"] == "schema.check_skipped"]
    assert skipped["level"] == "warning"
    assert str(skipped["reason"]).startswith("GCMC_JOBS_DATABASE_URL: cannot use ")
    assert "s3cret" not in done.stderr

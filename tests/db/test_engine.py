"""The engines gcmc-jobs builds: PostgreSQL sessions without JIT unless asked
(``GCMC_JOBS_DATABASE_JIT``)."""

from __future__ import annotations

from sqlalchemy import text

from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings


def _setting(engine_url: str, name: str, **options: object) -> str:
    engine = make_engine(engine_url, **options)  # type: ignore[arg-type]
    try:
        with engine.connect() as connection:
            return str(connection.execute(text(f"SHOW {name}")).scalar_one())
    finally:
        engine.dispose()


def test_postgresql_sessions_run_without_jit_unless_asked(gcmc_postgres_url: str) -> None:
    assert _setting(gcmc_postgres_url, "jit") == "off"
    assert _setting(gcmc_postgres_url, "jit", jit=True) == "on"


def test_the_callers_connection_options_are_kept(gcmc_postgres_url: str) -> None:
    given = {"options": "-c application_name=host-app", "connect_timeout": 5}
    assert _setting(gcmc_postgres_url, "application_name", connect_args=given) == "host-app"
    assert _setting(gcmc_postgres_url, "jit", connect_args=given) == "off"


def test_the_runtimes_engine_follows_the_jit_setting(gcmc_postgres_url: str) -> None:
    for allowed, shown in ((False, "off"), (True, "on")):
        runtime = Runtime(Settings(database_url=gcmc_postgres_url, database_jit=allowed))  # type: ignore[arg-type]
        try:
            with runtime.engine.connect() as connection:
                assert connection.execute(text("SHOW jit")).scalar_one() == shown
        finally:
            runtime.close()

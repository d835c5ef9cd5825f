"""The engines gcmc-jobs builds: PostgreSQL sessions without JIT unless asked."""

from __future__ import annotations

from sqlalchemy import text

from gcmc_jobs.db.engine import make_engine


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

"""``explain``: a failure as one line naming the setting at fault, its secrets masked."""

from __future__ import annotations

import pytest
import redis
from pydantic import ValidationError
from sqlalchemy import text

from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.errors import UnknownQueue
from gcmc_jobs.ops.failures import explain
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import free_port

SECRET = "s3cret-pw"


def _raised(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("it did not fail")


def test_invalid_settings_name_every_variable_and_never_the_value() -> None:
    exc = _raised(lambda: Settings(database_url=f"x{SECRET}", email_url=f"y{SECRET}"))
    assert isinstance(exc, ValidationError)

    failure = explain(exc)

    assert failure.kind == "setting"
    assert failure.settings == ("GCMC_JOBS_DATABASE_URL", "GCMC_JOBS_EMAIL_URL")
    assert "\n" not in failure.message
    assert SECRET not in failure.message


def test_an_unreachable_database_names_its_variable_with_the_password_masked() -> None:
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{free_port()}/gcmc"
    engine = make_engine(url)
    try:
        exc = _raised(lambda: engine.connect().execute(text("SELECT 1")))
    finally:
        engine.dispose()

    failure = explain(exc, Settings(database_url=url))

    assert failure.kind == "unavailable"
    assert failure.message.startswith("GCMC_JOBS_DATABASE_URL: cannot use postgresql+psycopg://")
    assert "Connection refused" in failure.message
    assert SECRET not in failure.message


@pytest.mark.parametrize("down", ["GCMC_JOBS_BROKER_URL", "GCMC_JOBS_REDIS_URL"])
def test_of_two_redis_the_one_that_failed_is_named(down: str, gcmc_redis_url: str) -> None:
    closed = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    broker, stores = (
        (closed, gcmc_redis_url)
        if down.endswith("BROKER_URL")
        else (
            gcmc_redis_url,
            closed,
        )
    )
    client = redis.Redis.from_url(closed, retry=None)
    exc = _raised(client.ping)

    failure = explain(exc, Settings(broker_url=broker, redis_url=stores))

    assert failure.settings == (down,)
    assert failure.message.startswith(f"{down}: cannot reach Redis at redis://***@127.0.0.1:")
    assert SECRET not in failure.message


def test_our_own_error_is_its_message_on_one_line() -> None:
    failure = explain(UnknownQueue("unknown queue 'x';\nknown queues: a, b"))

    assert (failure.kind, failure.message) == ("error", "unknown queue 'x'; known queues: a, b")


def test_anything_else_is_unexpected_and_still_masked() -> None:
    settings = Settings(email_url=f"smtp://mailer:{SECRET}@mail.example:587")

    failure = explain(RuntimeError(f"boom near {SECRET}"), settings)

    assert (failure.kind, failure.message) == ("unexpected", "RuntimeError: boom near ***")

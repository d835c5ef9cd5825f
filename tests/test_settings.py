"""Settings: the broker kind is parsed once, from the broker URL's scheme."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gcmc_jobs.settings import Settings


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://cache.example:6380/0", "redis"),
        ("unix:///run/redis.sock", "redis"),
        ("amqp://guest:guest@127.0.0.1:5672", "amqp"),
        ("amqps://mq.example", "amqp"),
        ("stub://", "stub"),
    ],
)
def test_the_broker_kind_follows_the_url_scheme(url: str, kind: str) -> None:
    assert Settings(broker_url=url).broker_kind == kind


@pytest.mark.parametrize("url", ["kafka://broker:9092", "127.0.0.1:6379", "http://x"])
def test_an_unknown_broker_scheme_is_a_settings_error_naming_the_variable(url: str) -> None:
    with pytest.raises(ValidationError, match="GCMC_JOBS_BROKER_URL must start with"):
        Settings(broker_url=url)


def test_the_error_does_not_echo_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "kafka://user:s3cret@broker:9092")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("database_url", "garbage", "GCMC_JOBS_DATABASE_URL is not a database URL"),
        ("database_url", "postgresql://u@h:port/db", "GCMC_JOBS_DATABASE_URL is not"),
        ("redis_url", "127.0.0.1:6379", "GCMC_JOBS_REDIS_URL must start with"),
        ("email_url", "garbage", "GCMC_JOBS_EMAIL_URL must start with"),
        ("email_url", "smtp://user:pass@", "GCMC_JOBS_EMAIL_URL names no SMTP host"),
        ("email_url", "file://", "GCMC_JOBS_EMAIL_URL names no directory"),
    ],
)
def test_a_url_no_part_can_use_is_a_settings_error_naming_the_variable(
    field: str, value: str, variable: str
) -> None:
    with pytest.raises(ValidationError, match=variable):
        Settings(**{field: value})


@pytest.mark.parametrize("field", ["database_url", "redis_url", "email_url"])
def test_an_invalid_url_is_not_echoed(field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**{field: "s3cret-garbage"})
    assert "s3cret" not in str(raised.value)

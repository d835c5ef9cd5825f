"""Settings: the broker kind is parsed once, from the broker URL's scheme."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from gcmc_jobs.settings import Settings, _check_database_url


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


def test_model_copy_validates_its_update_so_strings_for_secrets_work() -> None:
    settings = Settings(broker_url="stub://")

    copied = settings.model_copy(update={"email_url": "smtp://u:p@127.0.0.1:2525"})

    assert isinstance(copied.email_url, SecretStr)
    assert copied.email_url.get_secret_value() == "smtp://u:p@127.0.0.1:2525"
    with pytest.raises(ValidationError, match="GCMC_JOBS_EMAIL_URL"):
        settings.model_copy(update={"email_url": "nowhere"})
    with pytest.raises(ValueError, match="unknown setting"):
        settings.model_copy(update={"emial_url": "memory://"})


def test_model_copy_does_not_read_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(max_retries=1)
    monkeypatch.setenv("GCMC_JOBS_MAX_RETRIES", "9")

    assert settings.model_copy(update={"rate_limit": 3}).max_retries == 1


_URL_PIECES = st.sampled_from(
    [
        "postgresql+psycopg",
        "sqlite",
        "://",
        ":",
        "/",
        "@",
        "?",
        "[",
        "]",
        "::1",
        "u",
        "pw",
        "db.example",
        "5432",
        "port",
        "x=1",
        "&",
        "%20",
        " ",
        "-1",
        "+",
        "é",
    ]
)


@given(st.lists(_URL_PIECES, max_size=10).map("".join))
@settings(max_examples=300, deadline=None)
def test_the_database_url_check_accepts_exactly_what_sqlalchemy_parses(url: str) -> None:
    # Settings checks the URL without importing SQLAlchemy (the command line starts faster);
    # it must agree with SQLAlchemy's make_url, which builds the engine later.
    try:
        make_url(url)
    except Exception:
        parses = False
    else:
        parses = True
    try:
        _check_database_url(url)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted == parses

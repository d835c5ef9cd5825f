"""Why an operation failed, in one line that names the setting at fault: :func:`explain`.

An operator who sees ``OperationalError`` wants to know which ``GCMC_JOBS_*`` variable to
look at and what is wrong with it. :func:`explain` maps an exception to a :class:`Failure`:

===============  ====================================================  ======================
 kind             raised by                                             names
===============  ====================================================  ======================
 ``setting``      building :class:`~gcmc_jobs.Settings` (pydantic),     the invalid variables
                  an unknown SQLAlchemy dialect, our
                  :class:`~gcmc_jobs.errors.ConfigurationError`
 ``unavailable``  the database, Redis or RabbitMQ cannot be reached     the URL's variable
                  or refuses (connection, timeout, authentication)      (and its masked URL)
 ``error``        another of our errors (an unknown tenant or queue),
                  a database without the gcmc-jobs tables
 ``unexpected``   anything else: a bug                                  the exception type
===============  ====================================================  ======================

The line never holds a secret: URLs have their credentials masked and every password of the
settings is masked wherever it appears. The command line prints it (and exits with a code
per kind); the health checks put it in their detail.
"""

from __future__ import annotations

import contextlib
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dramatiq import errors as dramatiq_errors
from pydantic import SecretStr, ValidationError
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from gcmc_jobs.errors import ConfigurationError, GcmcJobsError
from gcmc_jobs.redaction import MASK, redact_text
from gcmc_jobs.redis_urls import is_sentinel_url, parse_sentinel_url
from gcmc_jobs.settings import Settings

__all__ = ["Failure", "FailureKind", "explain", "mask_secrets"]

#: What went wrong, by who can fix it: the configuration, the service, the input, the code.
FailureKind = Literal["setting", "unavailable", "error", "unexpected"]

DATABASE_URL = "GCMC_JOBS_DATABASE_URL"
BROKER_URL = "GCMC_JOBS_BROKER_URL"
REDIS_URL = "GCMC_JOBS_REDIS_URL"

# PostgreSQL's "undefined table" and SQLite's wording of it: the schema was never migrated.
_UNDEFINED_TABLE = "42P01"
_NO_SUCH_TABLE = re.compile(r"no such table|relation .* does not exist", re.IGNORECASE)
# Where create_engine() lives: an ImportError raised through it is a missing DBAPI driver.
_CREATE_ENGINE = ("sqlalchemy", "engine", "create.py")


@dataclass(frozen=True)
class Failure:
    """A failure explained: its :data:`FailureKind`, the one line to show (secrets masked)
    and the ``GCMC_JOBS_*`` variables it names (empty when no setting is at fault)."""

    kind: FailureKind
    message: str
    settings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


def explain(exc: BaseException, settings: Settings | None = None) -> Failure:
    """The :class:`Failure` behind ``exc``, given the ``settings`` in use (None when they
    could not be built). When ``exc`` itself is not recognised, the exceptions it was raised
    from (``__cause__``, ``__context__``) are looked at in turn."""
    for candidate in _chain(exc):
        found = _classify(candidate, settings)
        if found is not None:
            return Failure(found.kind, mask_secrets(found.message, settings), found.settings)
    text = _first_line(str(exc))
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return Failure("unexpected", mask_secrets(message, settings))


def mask_secrets(text: str, settings: Settings | None = None) -> str:
    """``text`` with URL credentials masked (:func:`~gcmc_jobs.redaction.redact_text`) and
    every secret of ``settings`` (each URL's password, the admin token) replaced by ``***``
    wherever it appears."""
    text = redact_text(text)
    for secret in _secrets(settings):
        text = text.replace(secret, MASK)
    return text


def _classify(exc: BaseException, settings: Settings | None) -> Failure | None:
    if isinstance(exc, ValidationError):
        return _invalid_settings(exc)
    if isinstance(exc, ConfigurationError):
        return Failure("setting", _one_line(str(exc)))
    if isinstance(exc, GcmcJobsError):
        return Failure("error", _one_line(str(exc)))
    if isinstance(exc, sa_errors.NoSuchModuleError):
        return Failure(
            "setting",
            f"{DATABASE_URL} names a database SQLAlchemy cannot load: {_first_line(str(exc))}",
            (DATABASE_URL,),
        )
    if isinstance(exc, ImportError) and _raised_by_create_engine(exc):
        return Failure(
            "setting",
            f"{DATABASE_URL} names a database driver that is not installed: "
            f"{_first_line(str(exc))}",
            (DATABASE_URL,),
        )
    if isinstance(exc, sa_errors.DBAPIError):
        return _database(exc, settings)
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return _redis(exc, settings, "cannot reach Redis")
    if isinstance(exc, redis_errors.ResponseError):
        return _redis(exc, settings, "Redis refused a command")
    if isinstance(exc, dramatiq_errors.BrokerConnectionError) or type(exc).__module__.startswith(
        "pika."
    ):
        url = _url(settings, "broker_url")
        where = f" at {url}" if url else ""
        detail = _first_line(str(exc)) or type(exc).__name__
        return Failure("unavailable", f"{BROKER_URL}: cannot reach the broker{where}: {detail}")
    return None


def _invalid_settings(exc: ValidationError) -> Failure:
    """One line per invalid setting, joined: ``GCMC_JOBS_X: problem`` (never the value)."""
    names: list[str] = []
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"GCMC_JOBS_{field.upper()}" if field else "GCMC_JOBS_*"
        problem = _one_line(str(error["msg"])).removeprefix("Value error, ")
        names.append(name)
        problems.append(problem if problem.startswith(name) else f"{name}: {problem}")
    return Failure("setting", "; ".join(problems), tuple(dict.fromkeys(names)))


def _database(exc: sa_errors.DBAPIError, settings: Settings | None) -> Failure:
    url = _url(settings, "database_url") or "the database"
    detail = _first_line(str(exc.orig) if exc.orig is not None else str(exc))
    if getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE or _NO_SUCH_TABLE.search(detail):
        return Failure(
            "error",
            f"{DATABASE_URL}: {url} has no gcmc-jobs tables (run `gcmc-jobs db upgrade`): {detail}",
            (DATABASE_URL,),
        )
    if isinstance(exc, sa_errors.OperationalError | sa_errors.InterfaceError):
        return Failure(
            "unavailable", f"{DATABASE_URL}: cannot use {url}: {detail}", (DATABASE_URL,)
        )
    return Failure("error", f"{DATABASE_URL}: {url} failed: {detail}", (DATABASE_URL,))


def _raised_by_create_engine(exc: BaseException) -> bool:
    """Whether ``exc`` came out of SQLAlchemy's ``create_engine`` (loading the DBAPI driver
    the URL names)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any(Path(frame.filename).parts[-3:] == _CREATE_ENGINE for frame in frames)


def _redis(exc: Exception, settings: Settings | None, what: str) -> Failure:
    """Name the Redis setting the error came from: the one whose host and port the error
    names, else every Redis setting in use."""
    candidates = _redis_settings(settings)
    detail = _first_line(str(exc)) or type(exc).__name__
    named = [(name, url) for name, url in candidates if _address(url) in detail]
    chosen = named if len(named) == 1 else candidates
    if len(chosen) == 1:
        name, url = chosen[0]
        return Failure("unavailable", f"{name}: {what} at {redact_text(url)}: {detail}", (name,))
    names = tuple(name for name, _ in chosen) or (BROKER_URL, REDIS_URL)
    return Failure("unavailable", f"{' or '.join(names)}: {what}: {detail}", names)


def _redis_settings(settings: Settings | None) -> list[tuple[str, str]]:
    """The Redis URLs in use, by variable: the broker's, and the stores' when it is another."""
    if settings is None:
        return []
    found: list[tuple[str, str]] = []
    broker = settings.broker_url.get_secret_value()
    if settings.broker_kind == "redis":
        found.append((BROKER_URL, broker))
    if settings.redis_url is not None and settings.redis_url.get_secret_value() != broker:
        found.append((REDIS_URL, settings.redis_url.get_secret_value()))
    return found


def _address(url: str) -> str:
    """``host:port`` of a Redis URL as redis-py's errors write it (the socket path for
    ``unix://``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname}:{port}"


def _url(settings: Settings | None, field: str) -> str | None:
    """The masked URL of ``settings.<field>``, or None."""
    if settings is None:
        return None
    value = getattr(settings, field)
    return redact_text(value.get_secret_value()) if isinstance(value, SecretStr) else None


def _secrets(settings: Settings | None) -> Iterator[str]:
    """Every secret ``settings`` hold that could leak into a message: the passwords (and
    user:password pairs) of its URLs, and the admin token. Very short ones are skipped, not
    to mask ordinary text."""
    if settings is None:
        return
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        raw = value.get_secret_value()
        if "://" not in raw:
            if len(raw) >= 4:
                yield raw
            continue
        try:
            password = urlsplit(raw).password
        except ValueError:
            password = None
        if password and len(password) >= 4:
            yield password
        if is_sentinel_url(raw):  # the Sentinels' own password is in the query
            with contextlib.suppress(ValueError):
                watcher = parse_sentinel_url(raw).sentinel_password
                if watcher and len(watcher) >= 4:
                    yield watcher


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or during, without looping."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(text: str) -> str:
    """The first line of a driver's message (the next ones are hints and context)."""
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _one_line(text: str) -> str:
    """Our own messages, whole, on one line."""
    return " ".join(text.split())

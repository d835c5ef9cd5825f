"""What every route module shares: the process's runtime, settings and database, and the
validated shapes of common parameters."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, NoReturn

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine

from gcmc_jobs.bootstrap import configure
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import GcmcJobsError, NotConfiguredError
from gcmc_jobs.runtime import Runtime, current
from gcmc_jobs.settings import Settings

__all__ = [
    "NAME",
    "Limit",
    "Name",
    "QueueName",
    "UnknownId",
    "db_int",
    "engine",
    "is_stub",
    "platform_id",
    "runtime",
    "settings",
]

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]
#: Queue, actor, job and error-type names: identifiers, so no NUL or control character
#: ever reaches the database.
NAME = r"^[A-Za-z0-9_.:-]{1,200}$"
Name = Annotated[str | None, Query(pattern=NAME)]
QueueName = Annotated[str, Path(pattern=NAME, description="A queue name.")]


def runtime(request: Request) -> Runtime:
    """The process's configured runtime; configured from the app's settings if not yet."""
    try:
        return current()
    except NotConfiguredError:
        return configure(request.app.state.settings)


def settings(request: Request) -> Settings:
    """The settings the application was created with."""
    found: Settings = request.app.state.settings
    return found


def engine(request: Request) -> Engine:
    """The runtime's database engine."""
    return runtime(request).engine


def is_stub(settings: Settings) -> bool:
    """Whether the broker is the in-process stub (its queues live in this process)."""
    return settings.broker_kind == "stub"


class UnknownId(GcmcJobsError, LookupError):
    """An id outside any stored range (answered 404, never sent to the database)."""


def platform_id(request: Request, value: int | str | None, loc: tuple[str, ...]) -> Id | None:
    """``value`` (a :data:`~gcmc_jobs.http.schemas.PlatformId`) as an id of the configured
    mapping (``schema_mapping``: integer, UUID or text ids), or a 422 at ``loc`` in
    FastAPI's validation-error shape: a non-number where the ids are integers, a malformed
    UUID where they are UUIDs."""
    if value is None:
        return None
    id_type = runtime(request).tables.mapping.id_type
    if id_type == "integer":
        text = str(value)
        if text.isascii() and text.isdigit() and 1 <= int(text) <= 2**31 - 1:
            return int(text)
        _invalid(loc, value, "the platform's ids are integers: expected one from 1 to 2147483647")
    if id_type == "uuid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            _invalid(loc, value, "the platform's ids are UUIDs: expected one")
    return str(value)


def _invalid(loc: tuple[str, ...], value: Any, message: str) -> NoReturn:
    raise RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def db_int(value: int) -> int:
    """Reject ids no database integer column can hold (a clean 404, not a driver error)."""
    if not 1 <= value <= 2**63 - 1:
        raise UnknownId(f"no row with id {value}")
    return value

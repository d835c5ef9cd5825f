"""The suppression list: list, add, remove, import a CSV, and its history
(:mod:`gcmc_jobs.services.suppressions`). Every change is recorded with actor ``api``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from gcmc_jobs.db.enums import SuppressionReason
from gcmc_jobs.email.addresses import bare_address
from gcmc_jobs.http import deps
from gcmc_jobs.ops.suppressions import import_csv
from gcmc_jobs.services import suppressions

__all__ = ["router"]

router = APIRouter(tags=["suppressions"])

#: The actor of every change made through the API.
ACTOR = "api"

Search = Annotated[
    str | None, Query(max_length=320, pattern=r"^[^\x00-\x1f]*$", description="Part of an address.")
]


class Refused(BaseModel):
    """A 422: FastAPI's validation errors (a list), or what this route refused (a message,
    or the CSV import's outcome with its per-row errors)."""

    detail: Any


_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": Refused, "description": "invalid input, said in `detail`"}
}


class SuppressionIn(BaseModel):
    """An address to suppress."""

    address: str = Field(max_length=320)
    reason: SuppressionReason = SuppressionReason.MANUAL


def _address(value: str) -> str:
    try:
        return bare_address(value)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"address: {exc}") from None


@router.get("/suppressions", summary="Suppressed addresses, newest first")
def list_(
    request: Request,
    limit: deps.Limit = 100,
    search: Search = None,
    reason: SuppressionReason | None = None,
) -> list[dict[str, Any]]:
    with deps.engine(request).connect() as connection:
        found = suppressions.list_suppressions(
            connection, search=search, reason=reason, limit=limit
        )
    return [s.as_dict() for s in found]


@router.post(
    "/suppressions",
    summary="Suppress an address (reason manual by default)",
    status_code=status.HTTP_201_CREATED,
    responses=_REFUSED,
)
def add(request: Request, entry: SuppressionIn) -> dict[str, Any]:
    address = _address(entry.address)
    with deps.engine(request).begin() as connection:
        added = suppressions.add(connection, [(address, entry.reason)], actor=ACTOR)
    return {"address": address.lower(), "added": bool(added)}


@router.delete(
    "/suppressions/{address}",
    summary="Lift the suppression of an address",
    responses={404: {"description": "the address is not suppressed"}},
)
def remove(
    request: Request,
    address: Annotated[str, Path(max_length=320, pattern=r"^[^\x00-\x1f]+$")],
) -> dict[str, Any]:
    with deps.engine(request).begin() as connection:
        removed = suppressions.remove(connection, [address[:320]], actor=ACTOR)
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{address[:320]!r} is not suppressed")
    return {"address": removed[0], "removed": True}


@router.post(
    "/suppressions/import",
    summary="Suppress the addresses of a CSV (address[,reason]); nothing on an invalid row",
    responses=_REFUSED,
)
def import_(
    request: Request,
    csv_text: Annotated[str, Body(media_type="text/csv", max_length=10_000_000)],
    skip_invalid: Annotated[bool, Query(description="Apply the valid rows anyway.")] = False,
) -> dict[str, Any]:
    outcome = import_csv(deps.engine(request), csv_text, actor=ACTOR, skip_invalid=skip_invalid)
    if outcome.errors and not outcome.applied:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, outcome.as_dict())
    return outcome.as_dict()


@router.get("/suppressions/changes", summary="Who changed the suppression list, newest first")
def history(
    request: Request, limit: deps.Limit = 100, address: Search = None
) -> list[dict[str, Any]]:
    with deps.engine(request).connect() as connection:
        return [c.as_dict() for c in suppressions.changes(connection, address=address, limit=limit)]

"""Tenants the scheduler cannot serve (a timezone that is not an IANA name), by id and name.

One bad tenant never stops the others: every path that works per tenant (the tick, ``run``,
``run --enqueue``, ``trigger_runs``, the read model, health, the API) skips it, serves the
rest, and reports it as a :class:`TenantProblem`. Finding them costs one ``SELECT`` of the
tenants in the bad timezones, issued only when there are any.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload
from gcmc_jobs.services.tenancy import tenant_zone

__all__ = ["TenantProblem", "active_zones"]


@dataclass(frozen=True)
class TenantProblem:
    """A tenant skipped by the scheduler, and why."""

    tenant_id: Id
    tenant_name: str
    timezone: str
    problem: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} ({self.tenant_name}): {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "timezone": self.timezone,
            "problem": self.problem,
        }


def zones_of(names: Iterable[str]) -> tuple[dict[str, ZoneInfo], dict[str, str]]:
    """The usable zones among ``names``, and the reason each other name is unusable."""
    zones: dict[str, ZoneInfo] = {}
    bad: dict[str, str] = {}
    for name in names:
        try:
            zones[name] = tenant_zone(name)
        except InvalidPayload as exc:
            bad[name] = str(exc)
    return zones, bad


def problems_of(
    session: Session, bad: dict[str, str], *, tenant_ids: Iterable[Id] | None = None
) -> list[TenantProblem]:
    """The active tenants (or those of ``tenant_ids``) in the timezones of ``bad``, each
    with its problem; no statement when ``bad`` is empty."""
    if not bad:
        return []
    tenant = tables_of(session).tenants.c
    query = select(tenant.id, tenant.name, tenant.timezone).where(tenant.timezone.in_(list(bad)))
    if tenant_ids is None:
        query = query.where(tenant.is_active.is_(true()))
    else:
        query = query.where(tenant.id.in_(list(tenant_ids)))
    return [
        TenantProblem(tenant_id, name, timezone, bad[timezone])
        for tenant_id, name, timezone in session.execute(query.order_by(tenant.id))
    ]


def active_zones(session: Session) -> tuple[dict[str, ZoneInfo], list[TenantProblem]]:
    """The zones of the active tenants (one ``SELECT DISTINCT``), and the tenants whose
    timezone is unusable (one more ``SELECT``, only when there are such tenants)."""
    tenant = tables_of(session).tenants.c
    names = session.scalars(
        select(tenant.timezone).where(tenant.is_active.is_(true())).distinct()
    ).all()
    zones, bad = zones_of(names)
    return zones, problems_of(session, bad)

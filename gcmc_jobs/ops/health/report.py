"""What a health check says: :class:`CheckResult`, and the :class:`HealthReport` of a run.

Statuses, worst last: ``ok`` < ``warning`` (look at it) < ``unhealthy`` (jobs are or will
be lost or late).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["CheckResult", "HealthReport", "Status", "worst"]

Status = Literal["ok", "warning", "unhealthy"]
_RANK: dict[str, int] = {"ok": 0, "warning": 1, "unhealthy": 2}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: a status, a one-line reason, and its numbers."""

    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    """Every check's result, and the worst status among them."""

    status: Status
    checked_at: datetime
    checks: dict[str, CheckResult]

    @property
    def healthy(self) -> bool:
        """False only when some check is ``unhealthy`` (warnings are healthy)."""
        return self.status != "unhealthy"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "status": self.status,
            "checked_at": self.checked_at.isoformat(),
            "checks": {
                name: {"status": r.status, "detail": r.detail, **r.data}
                for name, r in self.checks.items()
            },
        }

    def to_json(self) -> str:
        """:meth:`as_dict` as indented JSON."""
        return json.dumps(self.as_dict(), indent=2, default=str)


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses`` (``ok`` when there are none)."""
    found: Status = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[found]:
            found = status
    return found

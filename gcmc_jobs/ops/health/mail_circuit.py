"""The ``mail_circuit`` health check: is the mail server's circuit breaker holding email?"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.mail_circuit import mail_circuit_state
from gcmc_jobs.settings import Settings

__all__ = ["check_mail_circuit"]


def _at(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def check_mail_circuit(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy while the breaker is open (the mail server failed ``mail_breaker_failures``
    deliveries in a row: email is held, late, not lost); a warning while half open (the
    server answered a probe, critical mail goes first); ok when closed or switched off."""
    if not settings.mail_breaker:
        return CheckResult("ok", "mail circuit breaker off (GCMC_JOBS_MAIL_BREAKER=false)")
    state = mail_circuit_state(settings)
    data = {"mail_circuit": state.as_dict()}
    if state.state == "open":
        return CheckResult(
            "unhealthy",
            f"mail server failing: email held since {_at(state.opened_at_ms)}, next probe "
            f"{_at(state.next_probe_ms)}; last error: {state.last_error}",
            data,
        )
    if state.state == "half_open":
        return CheckResult(
            "warning",
            f"mail server answered a probe at {_at(state.half_open_at_ms)}: critical email "
            "first, the rest resumes on the next delivery",
            data,
        )
    detail = "mail circuit closed"
    if state.failures:
        detail += f" ({state.failures} delivery failure(s) in a row)"
    return CheckResult("ok", detail, data)

"""The demo's simulated day: each job once per tenant-local day, at local time, mailed."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from gcmc_jobs.demo import run_demo
from gcmc_jobs.demo.schedule import Ran
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings


def test_the_simulated_day_runs_each_job_once_at_local_time_and_writes_digests(
    tmp_path: Path,
) -> None:
    # Given five tenants (UTC, London, Paris, New York, Tokyo) on the day Europe springs forward
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        email_url=f"file://{tmp_path / 'outbox'}",
    )
    output = io.StringIO()

    # When the schedule step simulates the day
    ctx = run_demo(
        settings,
        tenants=5,
        clients_per_tenant=3,
        steps=["gcmc_jobs.demo.schedule"],
        console=Console(file=output, width=160),
        now=datetime(2026, 3, 29, 12, tzinfo=UTC),
    )

    # Then no run happened twice, and each tenant's March 29 ran whole, at local time
    ran: list[Ran] = ctx.facts["schedule"]
    assert set(Counter((r.tenant_id, r.job, r.local_date) for r in ran).values()) == {1}
    for zone in ("UTC", "Europe/London", "Europe/Paris", "America/New_York"):
        day = [r for r in ran if r.timezone == zone and r.local_date == date(2026, 3, 29)]
        assert {r.job for r in day} == set(DEFAULT_JOB_TIMES), zone
        for r in day:
            assert r.tick_at == r.scheduled_for  # the tick at its due instant, not later
            local = r.tick_at.astimezone(ZoneInfo(zone)).time()
            if (zone, r.job) == ("Europe/Paris", "compliance_refresh"):
                assert local.hour == 3  # 02:00 does not exist in Paris that day: 03:00 CEST
            else:
                assert local == DEFAULT_JOB_TIMES[r.job]
    assert "What ran when" in output.getvalue()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) > 0

"""The scheduling API, pinned."""

from __future__ import annotations

import gcmc_jobs.brokers.bulk
import gcmc_jobs.scheduling


def test_scheduling_exports_exactly_its_public_names() -> None:
    assert set(gcmc_jobs.scheduling.__all__) == {
        "JOBS",
        "JOB_NAMES",
        "Claim",
        "DueRun",
        "JobContext",
        "JobStatus",
        "LedgerRun",
        "NextRun",
        "RunMessageFactory",
        "RunResult",
        "TickResult",
        "TriggerResult",
        "TriggeredRun",
        "check_job",
        "daily_job",
        "due_instant",
        "due_runs",
        "host_jobs",
        "import_host_modules",
        "is_due",
        "job_statuses",
        "job_times",
        "list_runs",
        "next_due",
        "next_runs",
        "overdue_runs",
        "register_daily_job",
        "run_for_tenant",
        "run_key",
        "tick",
        "trigger_runs",
    }
    assert set(gcmc_jobs.brokers.bulk.__all__) == {"BulkResult", "enqueue_many", "release_unsent"}
    for module in (gcmc_jobs.scheduling, gcmc_jobs.brokers.bulk):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_the_job_names_are_the_settings_job_times() -> None:
    from gcmc_jobs.settings import DEFAULT_JOB_TIMES

    assert tuple(DEFAULT_JOB_TIMES) == gcmc_jobs.scheduling.JOB_NAMES

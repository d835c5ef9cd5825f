"""The public API, pinned: a change here is a change for every host application."""

from __future__ import annotations

import pytest
from _pytest.fixtures import FixtureFunctionDefinition

import gcmc_jobs
import gcmc_jobs.testing

PUBLIC = {
    "ConfigurationError",
    "GcmcJobsError",
    "InvalidPayload",
    "MessageStatus",
    "NotConfiguredError",
    "PermanentError",
    "Runtime",
    "Settings",
    "TransientError",
    "__version__",
    "actor",
    "configure",
    "configured",
    "current",
    "status",
}

FIXTURES = {
    "gcmc_broker",
    "gcmc_db",
    "gcmc_join",
    "gcmc_namespace",
    "gcmc_postgres_url",
    "gcmc_redis_url",
    "gcmc_session",
    "gcmc_settings",
    "gcmc_sqlite_db",
    "gcmc_tenant",
    "gcmc_test_policy",
    "gcmc_worker",
    "gcmc_worker_process",
}

#: What host test suites import from the plugin besides its fixtures.
HELPERS = {
    "Delivery",
    "JoinTimeout",
    "SmtpSink",
    "TestPolicy",
    "TwilioRequest",
    "TwilioSink",
    "WorkerProcess",
    "capture_events",
    "free_port",
    "join_all",
    "pending",
    "reset_tables",
    "settings_env",
    "wait_until",
}


def test_the_package_exports_exactly_its_public_names() -> None:
    assert set(gcmc_jobs.__all__) == PUBLIC
    for name in gcmc_jobs.__all__:
        assert hasattr(gcmc_jobs, name), name


def test_the_pytest_plugin_exports_its_fixtures() -> None:
    exported = set(gcmc_jobs.testing.__all__)
    assert exported >= FIXTURES
    for name in FIXTURES:
        assert isinstance(getattr(gcmc_jobs.testing, name), FixtureFunctionDefinition), name


def test_the_pytest_plugin_exports_its_helpers() -> None:
    assert set(gcmc_jobs.testing.__all__) == FIXTURES | HELPERS | {
        "smtp_server",
        "gcmc_outbox",
        "twilio_server",
        "gcmc_sms_outbox",
    }
    for name in HELPERS:
        assert getattr(gcmc_jobs.testing, name).__module__.startswith("gcmc_jobs.testing"), name


def test_the_pytest_plugin_is_registered_by_its_entry_point(
    pytestconfig: pytest.Config,
) -> None:
    assert pytestconfig.pluginmanager.get_plugin("gcmc_jobs") is gcmc_jobs.testing

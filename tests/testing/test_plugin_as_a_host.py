"""The pytest plugin as a host developer meets it: a small host test suite, run by pytest in
its own process with nothing but the installed plugin (pytester)."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest


@pytest.fixture
def gcmc_settings(gcmc_settings, smtp_server):
    # The obvious override: strings for secret fields are validated into SecretStr.
    return gcmc_settings.model_copy(
        update={"email_url": smtp_server.url, "email_retry_attempts": 1}
    )
"""

HOST_TESTS = """
import pytest
from sqlalchemy import select

from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.db.models import Client, ComplianceScore, DeadLetter
from gcmc_jobs.sending import queue_welcome_email
from gcmc_jobs.testing import JoinTimeout

WELCOME = {
    "tenant_name": "Acme CPA",
    "client_name": "Jane Doe",
    "portal_url": "https://portal.example/acme",
    "support_email": "help@acme.example",
}


def test_an_email_reaches_the_smtp_server(gcmc_join, gcmc_tenant, smtp_server):
    queue_welcome_email("jane@example.com", WELCOME, tenant_id=gcmc_tenant.id)
    gcmc_join()
    assert [m["To"] for m in smtp_server.messages] == ["jane@example.com"]


def test_a_refresh_needs_a_tenant_and_scores_its_clients(gcmc_join, gcmc_tenant, gcmc_session):
    gcmc_session.add(Client(tenant_id=gcmc_tenant.id, name="Bluebird", email="b@example.com"))
    gcmc_session.commit()
    refresh_compliance.send(gcmc_tenant.id)
    gcmc_join()
    assert gcmc_session.scalars(select(ComplianceScore.score)).all() == [100]


def test_a_failing_email_is_dead_lettered_after_few_fast_retries(
    gcmc_join, gcmc_tenant, gcmc_session, smtp_server
):
    smtp_server.script(*["421 4.3.0 try later"] * 10)
    queue_welcome_email("jane@example.com", WELCOME, tenant_id=gcmc_tenant.id)
    gcmc_join(fail_fast=False)  # fail_fast=True (the default) would re-raise the error
    dead = gcmc_session.scalars(select(DeadLetter)).one()
    assert (dead.actor, dead.attempts) == ("send_email", 3)  # 1 + 2 retries


def test_a_join_with_no_worker_ends_naming_what_is_pending(gcmc_broker, gcmc_tenant):
    message = refresh_compliance.send(gcmc_tenant.id)
    with pytest.raises(JoinTimeout) as failure:
        gcmc_broker.join(refresh_compliance.queue_name, timeout=200)
    assert message.message_id in str(failure.value)
    assert "gcmc_worker" in str(failure.value)


def test_a_forgotten_worker_fails_the_test_instead_of_hanging(gcmc_broker, gcmc_tenant):
    refresh_compliance.send(gcmc_tenant.id)
    gcmc_broker.join(refresh_compliance.queue_name)  # no gcmc_worker: nothing runs it
"""


@pytest.mark.slow
def test_a_host_suite_runs_with_the_plugin_alone(pytester: pytest.Pytester) -> None:
    # Given a host's tests using only the installed plugin's fixtures, with a test policy
    # whose joins give up after a second
    pytester.makeconftest(
        CONFTEST
        + textwrap.dedent(
            """
            from gcmc_jobs.testing import TestPolicy


            @pytest.fixture
            def gcmc_test_policy():
                return TestPolicy(join_timeout_ms=1_000)
            """
        )
    )
    pytester.makepyfile(test_host=HOST_TESTS)

    # When pytest runs them in their own process
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")

    # Then the four that should pass pass, and the forgotten worker fails (not hangs),
    # naming the pending message
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*JoinTimeout*did not finish within 1000 ms*"])
    result.stdout.fnmatch_lines(["*gcmc_compliance: 1 waiting*refresh_compliance(*"])

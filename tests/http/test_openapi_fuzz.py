"""Schemathesis fuzzes every operation of the OpenAPI document: no server error, and every
response matches its documented schema and status codes."""

from __future__ import annotations

import dramatiq
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from gcmc_jobs.http import create_app
from gcmc_jobs.settings import Settings
from tests.http.conftest import TOKEN

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def test_no_operation_answers_a_server_error(
    gcmc_settings: Settings, gcmc_broker: dramatiq.Broker
) -> None:
    _fuzz_every_operation(gcmc_settings)


def test_no_operation_answers_a_server_error_on_text_ids(prisma_settings: Settings) -> None:
    # The prisma mapping: tenant ids are text, the package's tables in a schema of their own
    _fuzz_every_operation(prisma_settings)


def _fuzz_every_operation(app_settings: Settings) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

        fuzz()

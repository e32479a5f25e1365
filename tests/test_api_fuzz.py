"""Schemathesis over the whole OpenAPI document: no request, however malformed, gets a server error or
an answer that breaks the documented schema (status codes, content types, bodies).

Excluded: positive-data acceptance. A schema-valid entry is still refused (422) when the ledger's rules
refuse it, and "one entry or a batch" is checked by the schema's validator, which OpenAPI cannot express."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow


def _in_the_test_village(case: schemathesis.Case) -> schemathesis.Case:
    if case.path_parameters and "village" in case.path_parameters:
        case.path_parameters["village"] = "testvillage"
    return case


def test_no_request_gets_a_server_error_or_breaks_the_schema(app: Flask, desk: str) -> None:
    """Each operation twice: with generated path values (mostly unknown villages), then in the test village
    (whose complaint desk is set up, so that complaints are filed)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        for strategy in (operation.as_strategy(), operation.as_strategy().map(_in_the_test_village)):

            @given(case=strategy)
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])

            call()

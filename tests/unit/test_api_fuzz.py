"""Fuzz the HTTP API from its OpenAPI description: no 500s, every answer as documented.

Schemathesis generates the requests from /openapi.json (driven here with
hypothesis directly: its pytest plugin does not run under pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.api_fixtures import TOKENS, Site, build_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    built = build_site(tmp_path_factory.mktemp("api-fuzz"))
    yield built
    built.store.close()


def _operations(site: Site) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", site.app, headers=site.bearer("operator"))
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, headers: dict[str, str], expect_401: bool) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
        # Status code, content type and body as the schema says. Not "every schema-valid request
        # is accepted": a schema cannot say that key_id must be the fingerprint of public_key, and
        # such an enrollment is rightly refused with 422.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
        if expect_401 and case.path != "/health":
            assert response.status_code == 401, where

    run()


def test_operations_are_described(site: Site) -> None:
    paths = {op.path for op in _operations(site)}
    assert {
        "/health",
        "/api/v1/gateways",
        "/api/v1/devices",
        "/api/v1/quarantine",
        "/api/v1/export",
        "/api/v1/gateways/{gateway}/revoke",
        "/metrics",
    } <= paths


def test_with_an_admin_token(site: Site) -> None:
    """Any input an admin can send is answered as documented (200, 201, 404, 409, 422), never a 500."""
    for operation in _operations(site):
        _fuzz(operation, {"Authorization": f"Bearer {TOKENS['admin']}"}, expect_401=False)


def test_without_a_token(site: Site) -> None:
    """Without a token, every route but the health probe answers 401, whatever the input."""
    for operation in _operations(site):
        _fuzz(operation, {}, expect_401=True)

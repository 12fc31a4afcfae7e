"""The HTTP API in-process (FastAPI TestClient) over a real SQLite store: roles, views, admin, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.tokens import load_tokens
from mrv_core.bundle import verify_bundle
from mrv_core.signing import Signer
from tests.api_fixtures import TOKENS, Site, build_site
from tests.factory import Gateway


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    built = build_site(tmp_path)
    yield built
    built.store.close()


@pytest.fixture
def client(site: Site) -> TestClient:
    return TestClient(site.app)


ROUTES = [
    "/api/v1/collector",
    "/api/v1/gateways",
    "/api/v1/devices",
    "/api/v1/quarantine",
    "/metrics",
    "/openapi.json",
]


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_needs_a_token(client: TestClient, route: str) -> None:
    assert client.get(route).status_code == 401
    refused = client.get(route, headers={"Authorization": "Bearer mrv_wrong"})
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert client.get(route, headers=Site.bearer("operator")).status_code == 200


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "broker": True, "store": True}
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_bad_requests_are_counted(client: TestClient, site: Site) -> None:
    client.get("/api/v1/devices?days=0", headers=Site.bearer("operator"))
    text = client.get("/metrics", headers=Site.bearer("operator")).text
    assert 'mrv_api_responses_total{status="422"} 1.0' in text


def test_roles(client: TestClient, site: Site) -> None:
    request = {
        "type": "mrv-enrollment-request",
        "gateway": "gw-new",
        "site": "s",
        "key_id": "",
        "public_key": "",
    }
    signer = Signer.generate()
    other = Gateway(gateway="gw-new", site="s", signer=signer)
    request.update(key_id=signer.key_id, public_key=other.public_key.b64)
    for role in ("operator", "verifier"):
        refused = client.post("/api/v1/gateways", json=request, headers=Site.bearer(role))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert (
        client.get(
            "/api/v1/export?from=2026-01-01&to=2026-01-01", headers=Site.bearer("operator")
        ).status_code
        == 403
    )
    added = client.post("/api/v1/gateways", json=request, headers=Site.bearer("admin"))
    assert added.status_code == 201 and added.json() == {
        "gateway": "gw-new",
        "keys": [{"key_id": signer.key_id, "state": "active"}],
    }
    again = client.post("/api/v1/gateways", json=request, headers=Site.bearer("admin"))
    assert again.status_code == 409 and "registered already" in again.json()["detail"]
    assert site.metrics.auth_failures._value.get() == 3  # counted


def test_gateways_view(client: TestClient) -> None:
    (gateway,) = client.get("/api/v1/gateways", headers=Site.bearer("operator")).json()
    assert gateway["status"] == "online" and gateway["gateway"] == "gw-test"
    assert gateway["buffer_pending_records"] == 7 and gateway["oldest_pending"] == "2026-01-01T11:50:00.000Z"
    assert gateway["buffer_alarm"] == "high water" and gateway["resends"] == 2
    assert gateway["clock_offset_s"] == 2.0  # received 12:00:00, gateway said 11:59:58
    assert gateway["device_errors"] == {"m2": {"consecutive_failures": 3, "last_error": "timeout: no answer"}}
    assert gateway["keys"][0]["state"] == "active"
    one = client.get("/api/v1/gateways/gw-test", headers=Site.bearer("operator"))
    assert one.json() == gateway
    missing = client.get("/api/v1/gateways/nope", headers=Site.bearer("operator"))
    assert missing.status_code == 404 and missing.json() == {
        "error": "not found",
        "detail": "no gateway nope",
    }


def test_devices_view(client: TestClient) -> None:
    devices = {d["device"]: d for d in client.get("/api/v1/devices", headers=Site.bearer("operator")).json()}
    m1 = devices["m1"]
    assert m1["last_seq"] == 60 and m1["last_time"] == "2026-01-01T09:50:00.000Z"
    assert m1["values"]["energy_active_export_total"] == {"value": "1059", "unit": "kWh"}
    assert m1["open_gaps"] == [
        {
            "first_seq": 21,
            "last_seq": 25,
            "missing": 5,
            "from": "2026-01-01T03:10:00.000Z",
            "to": "2026-01-01T04:10:00.000Z",
        }
    ]
    today = m1["completeness"][-1]
    assert today == {"day": "2026-01-01", "records": 55, "expected": 144, "ratio": round(55 / 144, 4)}
    assert len(m1["completeness"]) == 30 and m1["completeness"][0] == {
        "day": "2025-12-03",
        "records": 0,
        "expected": None,
        "ratio": None,
    }  # before its first reading
    spark = m1["sparkline"]
    assert (
        spark["quantity"] == "energy_active_export_total"
        and spark["values"]
        and all(v >= 0 for v in spark["values"])
    )
    assert devices["m2"]["missing_records"] == 0


def test_quarantine_and_collector(client: TestClient) -> None:
    q = client.get("/api/v1/quarantine", headers=Site.bearer("operator")).json()
    assert q["total"] == 1 and q["recent_reasons"] == {"malformed_message": 1} and q["items"][0]["bytes"] == 7
    c = client.get("/api/v1/collector", headers=Site.bearer("operator")).json()
    assert c["store_reachable"] and c["broker_connected"] and c["records_stored"] == 56


def test_metrics_exposition(client: TestClient, site: Site) -> None:
    text = client.get("/metrics", headers=Site.bearer("operator")).text
    assert 'mrv_gateway_last_seen_age_seconds{gateway="gw-test"} 0.0' in text
    assert "mrv_ingest_records_total" in text and "mrv_store_write_seconds_bucket" in text


def test_revoke_through_the_api(client: TestClient, site: Site) -> None:
    done = client.post(
        "/api/v1/gateways/gw-test/revoke", json={"reason": "stolen"}, headers=Site.bearer("admin")
    )
    assert done.status_code == 200 and done.json()["keys"][0]["state"] == "revoked"
    registry = json.loads(site.registry_path.read_text())
    assert registry["gateways"][0]["keys"][0]["valid_through_seal"] == 2  # the last seal stored
    bad = client.post("/api/v1/gateways/gw-test/revoke", json={"reason": ""}, headers=Site.bearer("admin"))
    assert bad.status_code == 422


def test_export_for_verifiers(client: TestClient, tmp_path: Path) -> None:
    done = client.get("/api/v1/export?from=2026-01-01&to=2026-01-01", headers=Site.bearer("verifier"))
    assert done.status_code == 200 and done.headers["content-type"] == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(done.content)
    result = verify_bundle(bundle)
    assert result.records == 56 and result.seals == 2 and result.verified_records == 56
    assert {f.kind for f in result.findings} == {"sequence_gap"}  # the gap the fixture left, reported
    unknown = client.get(
        "/api/v1/export?from=2026-01-01&to=2026-01-01&project=nope", headers=Site.bearer("verifier")
    )
    assert unknown.status_code == 404
    backwards = client.get("/api/v1/export?from=2026-01-02&to=2026-01-01", headers=Site.bearer("verifier"))
    assert backwards.status_code == 400 and backwards.json()["error"] == "invalid range"


def test_page_login_cookie_logout(client: TestClient) -> None:
    first = client.get("/")
    assert first.status_code == 401 and 'name="token"' in first.text
    wrong = client.post(
        "/login", content="token=nope", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert wrong.status_code == 401 and "not valid" in wrong.text
    good = client.post(
        "/login",
        content=f"token={TOKENS['operator']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and "httponly" in good.headers["set-cookie"].lower()
    page = client.get("/")
    assert page.status_code == 200 and 'id="heatmap"' in page.text
    assert client.get("/api/v1/gateways").status_code == 200  # the cookie works for the API too
    client.get("/logout")
    assert client.get("/").status_code == 401


def test_tokens_file_is_private(site: Site) -> None:
    from mrv_core.secret_files import ExposedSecretError

    site.tokens_path.chmod(0o644)
    with pytest.raises(ExposedSecretError, match=r"readable by other users \(mode 644\)"):
        load_tokens(site.tokens_path)

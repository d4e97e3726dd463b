"""``POST``/``DELETE /api/v1/clients/{tenantId}/acknowledgement``: validated like the other
routes (400 naming the field, 403 without the role) before storage is touched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.principal import encode_client_principal
from shared.entrypoints import http_api
from tests.unit.test_http_api import SUPPORT, VENDOR, call, stub_app  # noqa: F401

TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
PARAMS = {"tenantId": TENANT}
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(http_api, "_now", lambda: NOW)


@pytest.fixture
def no_service(monkeypatch):
    import shared.services.acknowledgements as service

    async def must_not_run(*args, **kwargs):
        raise AssertionError("bad input reached the service")

    monkeypatch.setattr(service, "set_acknowledgement", must_not_run)
    monkeypatch.setattr(service, "lift_acknowledgement", must_not_run)


@pytest.mark.usefixtures("no_service")
@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"x" * (16 * 1024 + 1), "application/json", 413, None),
        (b'{"reason":"r","until":"2026-11-24T09:00:00Z"}', "text/plain", 415, None),
        (b"{not json", "application/json", 400, "body"),
        (b'{"reason":"r","reason":"s","until":"2026-11-24T09:00:00Z"}', "application/json",
         400, "body"),
        (json.dumps({"until": "2026-11-24T09:00:00Z"}).encode(), "application/json", 400,
         "reason"),
        (json.dumps({"reason": "r"}).encode(), "application/json", 400, "until"),
        (json.dumps({"reason": "r", "until": "2026-12-24T09:00:00Z"}).encode(),
         "application/json", 400, "until"),
        (json.dumps({"reason": "r", "until": "2026-11-24T09:00:00Z", "hours": 2}).encode(),
         "application/json", 400, "hours"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(body, content_type, status, field):
    got, _, answer = call("acknowledge", "POST", body=body, content_type=content_type,
                          params=PARAMS)
    assert got == status, answer
    if field:
        assert answer["error"]["field"] == field


@pytest.mark.usefixtures("no_service")
@pytest.mark.parametrize(("operation", "method"), [("acknowledge", "POST"),
                                                   ("lift_acknowledgement", "DELETE")])
def test_a_tenant_that_is_not_a_guid_is_400(operation, method):
    good = {"reason": "r", "until": (NOW + timedelta(hours=2)).isoformat()}
    status, _, body = call(operation, method, body=good, params={"tenantId": "contoso.com"})
    assert status == 400 and body["error"]["field"] == "tenantId"


@pytest.mark.usefixtures("no_service")
@pytest.mark.parametrize(("operation", "method"), [("acknowledge", "POST"),
                                                   ("lift_acknowledgement", "DELETE")])
def test_without_the_role_it_is_403(operation, method):
    no_role = encode_client_principal(
        name="intern@osttra.com", object_id="0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
        tenant_id=VENDOR,
    )
    good = {"reason": "r", "until": (NOW + timedelta(hours=2)).isoformat()}
    status, _, body = call(operation, method, principal=no_role, body=good, params=PARAMS)
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_a_wrong_method_names_both_the_route_takes():
    status, headers, _ = call("acknowledge", "GET", params=PARAMS)
    assert status == 405 and headers["Allow"] == "POST, DELETE"


def test_a_valid_request_reaches_the_service_with_the_caller(monkeypatch):
    import shared.services.acknowledgements as service
    from shared.domain.acknowledgement import Acknowledgement

    seen = {}

    async def fake_set(app, tenant, request, by, now):
        seen.update(tenant=tenant, reason=request.reason, until=request.until, by=by)
        ack = Acknowledgement(by, request.reason, request.until, now, episode=2)
        return service.AckChange(tenant, "Contoso Markets", ack)

    monkeypatch.setattr(service, "set_acknowledgement", fake_set)
    status, _, body = call(
        "acknowledge", "POST", params=PARAMS,
        body={"reason": "client fixing Friday", "until": "2026-11-25T17:00:00Z"},
    )
    assert status == 200, body
    assert seen == {"tenant": TENANT, "reason": "client fixing Friday",
                    "until": datetime(2026, 11, 25, 17, 0, tzinfo=UTC),
                    "by": "support.lead@osttra.com (7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93)"}
    assert body["acknowledgement"]["active"] is True
    assert body["acknowledgement"]["by"].startswith("support.lead@osttra.com")

"""The support API's request handling without storage or Graph (both replaced by stubs)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from shared.config import load_settings
from shared.domain.principal import encode_client_principal
from shared.entrypoints import http_api
from shared.entrypoints.http_api import BadBody, TokenBucketLimiter, decode_json_body

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
SETTINGS = load_settings(
    {
        "XTAP_VENDOR_TENANT_ID": VENDOR,
        "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "XTAP_PUBLIC_API_URL": "https://xtap-watch.azurewebsites.net",
    }
)
SUPPORT = encode_client_principal(
    name="support.lead@osttra.com",
    object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
    roles=("Reinvite.Request",),
    tenant_id=VENDOR,
)
GOOD = {"email": "bob.ops@contoso-markets.com", "reason": "new laptop"}


@pytest.fixture(autouse=True)
def stub_app(monkeypatch):
    import shared.services.health as health

    app = SimpleNamespace(settings=SETTINGS, storage_ok=True)

    async def fake_app() -> Any:
        return app

    async def fake_storage_healthy(stub: Any) -> bool:
        return bool(stub.storage_ok)

    monkeypatch.setattr(http_api, "_app", fake_app)
    monkeypatch.setattr(health, "storage_healthy", fake_storage_healthy)
    http_api.set_rate_limit(1000, 60.0)
    yield app
    http_api.set_rate_limit(*http_api.DEFAULT_RATE_LIMIT)


@pytest.fixture
def no_service(monkeypatch):
    """Fail loudly if validation lets a request through to the service."""
    import shared.services.reinvites as service

    async def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bad input reached the service")

    monkeypatch.setattr(service, "request_reinvite", must_not_run)


def call(
    operation: str,
    method: str = "GET",
    *,
    principal: str | None = SUPPORT,
    body: Any = None,
    content_type: str | None = "application/json",
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    headers = {}
    if principal is not None:
        headers["X-MS-CLIENT-PRINCIPAL"] = principal
    if content_type is not None:
        headers["Content-Type"] = content_type
    raw = (
        body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    )
    return asyncio.run(
        http_api.handle(operation, method, route_params=params, headers=headers, body=raw)
    )


# ------------------------------------------------------------------- auth
def test_missing_or_garbage_principal_is_401_on_every_operation_but_health():
    for operation, method in http_api.OPERATIONS.items():
        for principal in (None, "", "bm90IGpzb24=", "x" * 100):
            status, headers, body = call(operation, method, principal=principal, body=GOOD)
            if operation == "health":
                assert status == 200
            else:
                assert status == 401, (operation, principal)
                assert body["error"]["code"] == "unauthenticated"
                assert headers["WWW-Authenticate"].startswith("Bearer")


def test_principal_without_the_app_role_is_403():
    no_role = encode_client_principal(
        name="intern@osttra.com", object_id="0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", tenant_id=VENDOR
    )
    status, _, body = call("create_reinvite", "POST", principal=no_role, body=GOOD)
    assert status == 403 and "Reinvite.Request" in body["error"]["message"]


def test_principal_from_another_tenant_is_401():
    foreign = encode_client_principal(
        name="x@fabrikam.example",
        object_id="11111111-2222-4333-8444-555555555555",
        roles=("Reinvite.Request",),
        tenant_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    )
    assert call("openapi", principal=foreign)[0] == 401


def test_wrong_method_is_405_with_allow():
    status, headers, _ = call("create_reinvite", "GET")
    assert status == 405 and headers["Allow"] == "POST"


# ------------------------------------------------------------------- body
@pytest.mark.usefixtures("no_service")
@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"x" * (16 * 1024 + 1), "application/json", 413, None),
        (json.dumps(GOOD).encode(), "text/plain", 415, None),
        (json.dumps(GOOD).encode(), None, 415, None),
        (json.dumps(GOOD).encode(), "application/json; charset=latin-1", 415, None),
        (b"{not json", "application/json", 400, "body"),
        (b'{"email": "a@b.co", "email": "c@d.co", "reason": "x"}', "application/json", 400, "body"),
        (b'{"email": "a@b.co", "reason": NaN}', "application/json", 400, "body"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "body"),
        ('{"email": "é@b.co", "reason": "x"}'.encode("latin-1"), "application/json", 400, "body"),
        (b"", "application/json", 400, "body"),
        (
            b'{"email": "x\' or userType eq \'Member", "reason": "x"}',
            "application/json",
            400,
            "email",
        ),
        (b'{"userId": "../users", "reason": "x"}', "application/json", 400, "userId"),
        (b'{"email": "a@b.co"}', "application/json", 400, "reason"),
    ],
)
def test_bad_bodies_never_reach_the_service(body, content_type, status, field):
    got, headers, payload = call("create_reinvite", "POST", body=body, content_type=content_type)
    assert got == status, payload
    assert headers["Content-Type"].startswith("application/json")
    assert payload["error"].get("field") == field


def test_json_decoding_is_strict():
    assert decode_json_body(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for bad in (b'{"a": Infinity}', b'{"a": 1, "a": 2}', b"\xff\xfe"):
        with pytest.raises(BadBody):
            decode_json_body(bad)


@pytest.mark.parametrize(
    "path_params",
    [{"jobId": "not-a-guid"}, {"jobId": "' or 1 eq 1"}, {"jobId": ""}, {}],
)
def test_bad_job_ids_are_400_naming_the_field(path_params):
    status, _, body = call("get_reinvite", params=path_params)
    assert status == 400 and body["error"]["field"] == "jobId"


def test_bad_tenant_ids_are_400_naming_the_field():
    status, _, body = call("get_posture", params={"tenantId": "contoso"})
    assert status == 400 and body["error"]["field"] == "tenantId"


# ------------------------------------------------------------- rate limiting
def test_token_bucket_refills_per_caller():
    now = [1000.0]
    limiter = TokenBucketLimiter(30, 60.0, clock=lambda: now[0])
    assert all(limiter.take("alice") is None for _ in range(30))
    wait = limiter.take("alice")
    assert wait == pytest.approx(2.0)  # one token every 2 s
    assert limiter.take("bob") is None  # buckets are per caller
    now[0] += 2.0
    assert limiter.take("alice") is None
    assert limiter.take("alice") is not None


def test_the_limiter_forgets_the_oldest_callers_first():
    limiter = TokenBucketLimiter(1, 60.0, clock=lambda: 0.0, max_keys=2)
    limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # evicts "a"
    assert limiter.take("a") is None and limiter.take("c") is not None


def test_a_caller_over_the_limit_gets_429_with_retry_after():
    http_api.set_rate_limit(2, 60.0)
    assert call("openapi")[0] == 200
    assert call("openapi")[0] == 200
    status, headers, body = call("openapi")
    assert status == 429 and headers["Retry-After"] == "30"
    assert body["error"]["code"] == "rate_limited"


# ------------------------------------------------------- service outcomes
def _service_raises(monkeypatch, exc: Exception) -> None:
    import shared.services.reinvites as service

    async def raise_it(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(service, "request_reinvite", raise_it)


def test_refusals_and_outages_map_to_statuses(monkeypatch):
    from azure.core.exceptions import ServiceRequestError

    from shared.adapters.graph import GraphError
    from shared.services.reinvites import AmbiguousUser, NotEligible, UserNotFound

    cases = [
        (NotEligible("J Doe is a Member account"), 403, "not_eligible"),
        (UserNotFound("no user"), 404, "user_not_found"),
        (AmbiguousUser("2 accounts"), 409, "ambiguous_user"),
        (GraphError(429, "TooManyRequests", "slow", retry_after=7), 503, "graph_unavailable"),
        (GraphError(400, "Request_BadRequest", "bad"), 502, "graph_error"),
        (ServiceRequestError("connection refused"), 503, "storage_unavailable"),
        (RuntimeError("secret detail /home/site"), 500, "internal_error"),
    ]
    for exc, status, code in cases:
        _service_raises(monkeypatch, exc)
        got, headers, body = call("create_reinvite", "POST", body=GOOD)
        assert (got, body["error"]["code"]) == (status, code), exc
        assert "secret detail" not in json.dumps(body)
        if code == "graph_unavailable":
            assert headers["Retry-After"] == "7"


def test_accepted_request_answers_202_with_the_status_url(monkeypatch):
    from datetime import UTC, datetime

    import shared.services.reinvites as service
    from shared.domain.jobs import ReinviteJob

    seen: dict[str, Any] = {}

    async def accept(app: Any, request: Any, requested_by: str, now: Any, **kwargs: Any) -> Any:
        seen.update(request=request, requested_by=requested_by, **kwargs)
        job = ReinviteJob.queued(
            job_id="5f0c7a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
            user_id="264e6d50-eaec-461e-b187-873b1bcf855f",
            reason=request.reason,
            requested_by=requested_by,
            now=datetime(2026, 11, 3, tzinfo=UTC),
        )
        return service.RequestOutcome(job, existing=False)

    monkeypatch.setattr(service, "request_reinvite", accept)
    status, headers, body = call("create_reinvite", "POST", body=GOOD)
    url = (
        "https://xtap-watch.azurewebsites.net/api/v1/reinvites/5f0c7a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"
    )
    assert status == 202 and headers["Location"] == url and body["statusUrl"] == url
    assert body["existing"] is False and body["job"]["state"] == "queued"
    assert seen["requested_by"] == "support.lead@osttra.com (7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93)"
    assert seen["requester_email"] == "support.lead@osttra.com"  # issue 13.8
    assert seen["request"].email == "bob.ops@contoso-markets.com"


def test_health_says_nothing_but_ok_or_unavailable(monkeypatch, stub_app):
    assert call("health", principal=None)[2] == {"status": "ok"}

    stub_app.storage_ok = False  # the storage probe failed (tests/integration/test_storage_stall)
    status, headers, body = call("health", principal=None)
    assert status == 503 and body == {"status": "unavailable"} and headers["Retry-After"] == "5"
    stub_app.storage_ok = True

    async def broken() -> Any:
        raise ConnectionError("azurite at 127.0.0.1:10001 refused; key=...")

    monkeypatch.setattr(http_api, "_app", broken)
    status, _, body = call("health", principal=None)
    assert status == 503 and body == {"status": "unavailable"}


# ------------------------------------------------------------------ OpenAPI
def test_checked_in_openapi_document_is_the_generated_one():
    from shared.entrypoints.openapi_doc import build_document

    on_disk = json.loads(http_api.OPENAPI_PATH.read_text(encoding="utf-8"))
    assert on_disk == build_document(), (
        "regenerate: python -m shared.entrypoints.openapi_doc > shared/schemas/openapi.json"
    )


def test_served_openapi_document_matches_the_validation_code():
    from shared.domain.messages import GUID_PATTERN
    from shared.domain.reinvite import (
        EMAIL_PATTERN,
        MAX_EMAIL_LENGTH,
        MAX_REASON_LENGTH,
        REDIRECT_URL_PATTERN,
    )

    status, _, served = call("openapi")
    assert status == 200
    assert served == json.loads(http_api.OPENAPI_PATH.read_text())
    request = served["components"]["schemas"]["ReinviteRequest"]
    props = request["properties"]
    assert props["email"]["pattern"] == EMAIL_PATTERN
    assert props["email"]["maxLength"] == MAX_EMAIL_LENGTH
    assert props["userId"]["pattern"] == GUID_PATTERN
    assert props["reason"]["maxLength"] == MAX_REASON_LENGTH
    assert props["redirectUrl"]["pattern"] == REDIRECT_URL_PATTERN
    assert request["additionalProperties"] is False
    assert "appServicePrincipal" in served["components"]["securitySchemes"]
    for path, item in served["paths"].items():
        for operation in item.values():
            anonymous = operation.get("security") == []
            assert anonymous == (path == "/api/v1/health"), path
            if not anonymous:
                assert {"401", "403", "429"} <= set(operation["responses"]), path


def test_in_azure_without_app_service_authentication_the_header_is_not_trusted(monkeypatch):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "xtap-watch-prod")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    status, _, body = call("openapi")
    assert status == 503 and body["error"]["code"] == "authentication_not_configured"
    assert call("health", principal=None)[0] == 200
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    assert call("openapi")[0] == 200


def test_access_review_routes_validate_their_ids(monkeypatch):
    assert call("ensure_access_review", "POST", params={"tenantId": "x"})[0] == 400
    status, _, body = call("get_access_review", params={"jobId": "20261103-nope"})
    assert status == 400 and body["error"]["field"] == "jobId"
    from shared.services.access_reviews import is_review_job_id

    assert is_review_job_id("20261103-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    assert is_review_job_id("5f0c7a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")
    assert not is_review_job_id("2026-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")


def test_ensure_access_review_without_reviewers_is_409_not_5xx():
    status, _, body = call("ensure_access_review", "POST", params={"tenantId": VENDOR})
    assert status == 409 and body["error"]["code"] == "access_reviews_not_configured"

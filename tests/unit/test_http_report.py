"""``GET /api/v1/report`` and ``POST /api/v1/whatif`` through ``http_api.handle``: roles,
content negotiation and body validation, with the services replaced by stubs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from shared.config import load_settings
from shared.domain.clients import ClientRecord
from shared.domain.principal import encode_client_principal
from shared.domain.report import build_report, report_row
from shared.domain.whatif import WhatIfResult
from shared.entrypoints import http_api
from shared.entrypoints.http_api import RawBody
from shared.entrypoints.http_report import preferred_media_type

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SETTINGS = load_settings(
    {
        "XTAP_VENDOR_TENANT_ID": VENDOR,
        "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
)


def principal(*roles: str) -> str:
    return encode_client_principal(
        name="someone@osttra.com",
        object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
        roles=roles,
        tenant_id=VENDOR,
    )


READER = principal("Report.Read")
SUPPORT = principal("Reinvite.Request")
NOBODY = principal("Something.Else")


@pytest.fixture(autouse=True)
def stubs(monkeypatch):
    import shared.services.portfolio as portfolio
    import shared.services.whatif as whatif

    app = SimpleNamespace(settings=SETTINGS)
    calls: dict[str, int] = {"report": 0, "whatif": 0}

    async def fake_app() -> Any:
        return app

    async def fake_report(app: Any, now: datetime) -> Any:
        calls["report"] += 1
        row = report_row(ClientRecord(tenant_id=CONTOSO, name="Contoso <Markets>"), None, None)
        return build_report([row], datetime(2026, 11, 2, tzinfo=UTC), "OSTTRA")

    async def fake_whatif(app: Any, proposal: Any) -> Any:
        calls["whatif"] += 1
        return WhatIfResult(5, ())

    monkeypatch.setattr(http_api, "_app", fake_app)
    monkeypatch.setattr(portfolio, "portfolio_report", fake_report)
    monkeypatch.setattr(whatif, "run_whatif", fake_whatif)
    http_api.set_rate_limit(1000, 60.0)
    yield calls
    http_api.set_rate_limit(*http_api.DEFAULT_RATE_LIMIT)


def call(operation: str, method: str, who: str | None, **headers: str) -> Any:
    body = headers.pop("body", "").encode() if "body" in headers else b""
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if who is not None:
        all_headers["X-MS-CLIENT-PRINCIPAL"] = who
    return asyncio.run(http_api.handle(operation, method, headers=all_headers, body=body))


@pytest.mark.parametrize("operation,method", [("get_report", "GET"), ("whatif", "POST")])
def test_anonymous_callers_get_401(operation, method, stubs):
    status, headers, _ = call(operation, method, None)
    assert status == 401
    assert "WWW-Authenticate" in headers
    assert stubs == {"report": 0, "whatif": 0}


def test_role_less_callers_get_403_from_both(stubs):
    assert call("get_report", "GET", NOBODY)[0] == 403
    status, _, body = call("whatif", "POST", NOBODY, Content_Type="application/json", body="{}")
    assert status == 403
    assert "Reinvite.Request" in body["error"]["message"]
    assert stubs == {"report": 0, "whatif": 0}


def test_the_read_role_reads_the_report_but_cannot_run_a_what_if(stubs):
    status, headers, body = call("get_report", "GET", READER)
    assert status == 200
    assert isinstance(body, RawBody) and body.media_type == "text/html"
    html = body.content.decode()
    assert "Contoso &lt;Markets&gt;" in html and "<Markets>" not in html
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["Vary"].startswith("Accept")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    status, _, body = call(
        "whatif", "POST", READER, Content_Type="application/json", body='{"partners": []}'
    )
    assert status == 403 and stubs["whatif"] == 0


def test_the_support_role_reads_the_report_too():
    assert call("get_report", "GET", SUPPORT)[0] == 200


def test_json_when_the_caller_prefers_it():
    status, headers, body = call("get_report", "GET", READER, Accept="application/json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["totals"]["NOT_CHECKED"] == 1 and body["rows"][0]["tenantId"] == CONTOSO


def test_an_accept_header_without_html_or_json_gets_406(stubs):
    status, _, body = call("get_report", "GET", READER, Accept="image/png")
    assert status == 406 and body["error"]["code"] == "not_acceptable"
    assert stubs["report"] == 0


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
        ("application/json", "application/json"),
        ("application/json, text/html;q=0.5", "application/json"),
        ("text/html;q=0.2, application/*", "application/json"),
        ("application/json;q=0, text/plain", None),
        ("image/png", None),
    ],
)
def test_content_negotiation(accept, expected):
    assert preferred_media_type(accept) == expected


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("{}", "text/plain", 415, None),
        ("{", "application/json", 400, "body"),
        ('{"a": 1, "a": 2}', "application/json", 400, "body"),
        ("{}", "application/json", 400, "body"),
        ('{"default": []}', "application/json", 400, "default"),
        ('{"default": {"inboundTrust": 1}}', "application/json", 400, "default.inboundTrust"),
        (
            '{"partners": [{"tenantId": "x", "policy": null}]}',
            "application/json",
            400,
            "partners[0].tenantId",
        ),
        ('{"default": {"x": "' + "a" * 300_000 + '"}}', "application/json", 413, None),
    ],
)
def test_bad_what_if_bodies_are_refused_before_any_service(
    body, content_type, status, field, stubs
):
    got, _, answer = call("whatif", "POST", SUPPORT, Content_Type=content_type, body=body)
    assert got == status, answer
    assert answer["error"].get("field") == field
    assert stubs["whatif"] == 0


def test_a_valid_what_if_reaches_the_service(stubs):
    body = json.dumps({"partners": [{"tenantId": CONTOSO, "policy": None}]})
    status, _, answer = call("whatif", "POST", SUPPORT, Content_Type="application/json", body=body)
    assert status == 200 and answer["clients"] == 5 and stubs["whatif"] == 1


def test_a_large_page_travels_gzipped_when_the_browser_accepts_it(monkeypatch):
    import gzip

    import shared.services.portfolio as portfolio

    async def big_report(app: Any, now: datetime) -> Any:
        rows = [
            report_row(
                ClientRecord(tenant_id=f"{i:08x}-5e6f-4a7b-8c9d-0e1f2a3b4c5d", name=f"Client {i}"),
                None,
                None,
            )
            for i in range(300)
        ]
        return build_report(rows, datetime(2026, 11, 2, tzinfo=UTC), "OSTTRA")

    monkeypatch.setattr(portfolio, "portfolio_report", big_report)
    status, headers, body = call("get_report", "GET", READER, Accept_Encoding="gzip, deflate, br")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(body.content).decode()
    assert html.count("<tr data-order=") == 300
    assert len(body.content) < len(html) / 5
    status, headers, plain = call("get_report", "GET", READER, Accept_Encoding="gzip;q=0")
    assert "Content-Encoding" not in headers and plain.content.decode() == html

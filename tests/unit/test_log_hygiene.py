"""Logs keep no credential in any URL component, stay quiet about routine HTTP, and cannot be
forged by caller-supplied text (issue 13, item 13)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shared.telemetry import REDACTED, configure_telemetry, install_log_redaction, redact

ROOT = Path(__file__).resolve().parents[2]
SIG = "Xq3vP0cS1bT9mR4nW8kD2fH6jL5aZ7yE0uI3oG1tQ4s"
WORKFLOWS = (
    "https://prod-12.westeurope.logic.azure.com:443/workflows/8f1c0e6a2b7d4c9e/triggers/manual/"
    f"paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
)
# Office 365 connector ("Incoming Webhook") URLs carry their secret in the path.
CONNECTOR_SECRET = "4f1c2a9b8e7d4c3a9b0e1f2d3c4b5a69"
CONNECTOR = (
    "https://contoso.webhook.office.com/webhookb2/0a6f1b3e-8c2d-4e5f-9a0b-1c2d3e4f5a6b@"
    f"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e/IncomingWebhook/{CONNECTOR_SECRET}/"
    "7e6f5d4c-3b2a-4190-8f7e-6d5c4b3a2910"
)
LEGACY_CONNECTOR = (
    "https://outlook.office.com/webhook/0a6f1b3e-8c2d-4e5f-9a0b-1c2d3e4f5a6b@"
    f"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e/IncomingWebhook/{CONNECTOR_SECRET}/"
    "7e6f5d4c-3b2a-4190-8f7e-6d5c4b3a2910"
)


def _encoded(url: str, times: int = 1) -> str:
    from urllib.parse import quote

    for _ in range(times):
        url = quote(url, safe="")
    return url


@pytest.mark.parametrize(
    ("text", "secrets", "kept"),
    [
        # The Workflows URL URL-encoded inside another URL or a log field (once, twice).
        (f"redirect to https://x.example/?next={_encoded(WORKFLOWS)}", [SIG], "logic.azure.com"),
        (f"nested {_encoded(WORKFLOWS, 2)}", [SIG], "logic.azure.com"),
        (
            f"invoke%3Fsv%3D1.0%26sig%3D{SIG} or invoke%253Fsig%253D{SIG}x",
            [SIG],
            "sv%3D1.0%26sig%3D",
        ),
        # Connector webhooks: the secret is a path segment.
        (f"POST {CONNECTOR} returned 410", [CONNECTOR_SECRET], "contoso.webhook.office.com"),
        (f"POST {LEGACY_CONNECTOR} failed", [CONNECTOR_SECRET], "outlook.office.com"),
        (f"url={_encoded(CONNECTOR)}", [CONNECTOR_SECRET], "webhook.office.com"),
        # JSON values with spaces, and single-quoted (Python repr) ones.
        (
            '{"client_secret": "correct horse battery staple", "scope": "x"}',
            ["correct", "horse", "battery", "staple"],
            '"scope": "x"',
        ),
        ("{'password': 'p a s s w o r d'}", ["p a s s"], "password"),
        # Double-encoded redemption ticket (inviteRedeemUrl inside another URL).
        (
            "redeem https%253A%252F%252Flogin.microsoftonline.com%252Fredeem%253Frd%253D"
            "x%2526ticket%253DwCFIFW%25252frzl2A%2526ver%253d2.0",
            ["wCFIFW", "rzl2A"],
            "ver%253d2.0",
        ),
        # The managed-identity endpoint's secret header (App Service / Functions).
        ("headers {'X-IDENTITY-HEADER': 'c0ffee-1dentity-s3cret', 'Metadata': 'true'}",
         ["c0ffee-1dentity-s3cret"], "'Metadata': 'true'"),
        ("X-IDENTITY-HEADER: c0ffee-1dentity-s3cret", ["c0ffee-1dentity-s3cret"], "X-IDENTITY"),
        ("IDENTITY_HEADER=c0ffee-1dentity-s3cret", ["c0ffee-1dentity-s3cret"], "IDENTITY_HEADER="),
        # A password in the userinfo part of a URL.
        ("amqps://svc:hunter2pass@bus.example/q", ["hunter2pass"], "bus.example"),
    ],
)
def test_credentials_are_redacted_in_every_url_component_and_encoding(text, secrets, kept):
    cleaned = redact(text)
    for secret in secrets:
        assert secret not in cleaned, cleaned
    assert REDACTED in cleaned
    assert kept in cleaned


def test_redaction_keeps_ordinary_urls_and_graph_queries_intact():
    for text in (
        "GET https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$filter=activityDateTime"
        "%20ge%202026-11-23T08:00:00Z&$top=100",
        "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/CompanyRelationshipsMenuBlade",
        "https://contoso.webhook.office.com/ is the connector host",
        # Entra's error page: the code is an AADSTS number, not a credential.
        '"error_uri": "https://login.microsoftonline.com/error?code=700016"',
    ):
        assert redact(text) == text


# ------------------------------------------------------------------ noisy loggers


def test_http_client_loggers_are_at_warning_in_the_app():
    configure_telemetry({})
    for name in ("httpx", "azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    assert logging.getLogger("shared").level == logging.NOTSET  # the app's own logs untouched


def test_an_explicit_level_set_by_an_operator_is_kept():
    logger = logging.getLogger("httpx")
    before = logger.level
    try:
        logger.setLevel(logging.DEBUG)
        configure_telemetry({})
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)


def test_host_json_keeps_the_hosts_http_and_azure_sdk_logs_at_warning():
    levels = json.loads((ROOT / "host.json").read_text())["logging"]["logLevel"]
    for category in ("Azure.Core", "Azure", "System.Net.Http.HttpClient"):
        assert levels.get(category) == "Warning", category
    # ...while the app's own traces and the request telemetry stay.
    assert levels["default"] == "Information" and levels["Function"] == "Information"
    assert levels["Host.Results"] == "Information"


# ------------------------------------------------------------------ forged log lines


def test_caller_supplied_text_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture):
    install_log_redaction()
    log = logging.getLogger("shared.entrypoints.http_api")
    hostile = "mallory\nINFO shared.services: re-invite approved by admin\r\x1b[2J\u2028"
    with caplog.at_level(logging.INFO, logger="shared"):
        log.warning("caller %s lacks role %s", hostile, "Reinvite.Request")
        log.info(f"f-string from {hostile}")  # pre-formatted text too
    for record in caplog.records[-2:]:
        message = record.getMessage()
        assert "\n" not in message and "\r" not in message, message
        assert "\x1b" not in message and "\u2028" not in message
        assert "\\n" in message and "\\x1b" in message
    assert "re-invite approved by admin" in caplog.records[-2].getMessage()  # kept, escaped


def test_exception_text_from_callers_is_escaped_too():
    install_log_redaction()
    try:
        raise ValueError("bad tenant 'x'\nCRITICAL forged")
    except ValueError as error:
        record = logging.getLogRecordFactory()(
            "shared", logging.ERROR, __file__, 1, "failed", (), (ValueError, error, None)
        )
    formatted = logging.Formatter("%(message)s").format(record)
    assert "\nCRITICAL forged" not in formatted
    assert "\\nCRITICAL forged" in formatted

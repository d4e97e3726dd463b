"""shared/telemetry.py: secrets never reach logs, spans carry the client tenant, export is lazy."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from devtools.handbook import GRAPH_FIXTURES
from shared import telemetry
from shared.telemetry import (
    CLIENT_TENANT_ATTRIBUTE,
    REDACTED,
    RedactSecretsFilter,
    configure_telemetry,
    install_log_redaction,
    redact,
    trigger_span,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = GRAPH_FIXTURES

# The shape of a Teams "Workflows" webhook (Power Automate "When a Teams webhook request is
# received"): the `sig` query parameter is the credential.
WORKFLOWS_URL = (
    "https://prod-12.westeurope.logic.azure.com:443/workflows/8f1c0e6a2b7d4c9e/triggers/manual/"
    "paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
    "&sig=Xq3vP0cS1bT9mR4nW8kD2fH6jL5aZ7yE0uI3oG1tQ4s"
)
JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6Ik1uQ19WWmNBVGZNNXBPWWlKSE1iYTlnb0VLWSJ9."
    "eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJpc3MiOiJodHRwczovL3N0cy53aW5kb3dzLm5ldC8ifQ."
    "gYv3Lx9d0pK2mQ7rS1tU4vW5xY6zA8bC9dE0fG1hI2jK3lM4nO5pQ6rS7tU8vW9x"
)
ENTRA_SECRET = "abc8Q~Zx1yW2vU3tS4rQ5pO6nM7lK8jI9hG0fE1d"


# ------------------------------------------------------------------------------ redaction
@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (
            f"posting card to {WORKFLOWS_URL} failed",
            "Xq3vP0cS1bT9mR4nW8kD2fH6jL5aZ7yE0uI3oG1tQ4s",
            "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=",
        ),
        (f"Authorization: Bearer {JWT}", JWT, "Authorization: Bearer"),
        (f"assertion was {JWT}", JWT, "assertion was"),
        (
            "client_id=a1b2&client_secret=s3cr3t-Value_123&grant_type=client_credentials",
            "s3cr3t-Value_123",
            "grant_type=client_credentials",
        ),
        (
            '{"client_secret": "hunter2-but-longer", "scope": "https://graph.microsoft.com/.default"}',
            "hunter2-but-longer",
            '"scope": "https://graph.microsoft.com/.default"',
        ),
        (f"XTAP_VENDOR_CLIENT_SECRET={ENTRA_SECRET}", ENTRA_SECRET, "XTAP_VENDOR_CLIENT_SECRET="),
        (f"secret value {ENTRA_SECRET} leaked", ENTRA_SECRET, "leaked"),
        (
            "client_assertion=abc.def.ghi&client_assertion_type=urn:ietf",
            "abc.def.ghi",
            "client_assertion_type",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=stxtap;AccountKey=bXlrZXk=;EndpointSuffix=core",
            "bXlrZXk=",
            "AccountName=stxtap",
        ),
        ("GET https://func.azurewebsites.net/api/reinvites?code=Zm9vYmFy&x=1", "Zm9vYmFy", "&x=1"),
        (
            "blob https://st.blob.core.windows.net/c/b?sv=2022-11-02&sig=abc%2Bdef%3D",
            "abc%2Bdef",
            "sv=2022-11-02",
        ),
    ],
)
def test_redact_removes_the_credential_and_keeps_the_context(
    text: str, secret: str, kept: str
) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert kept in cleaned


def test_redact_leaves_ordinary_graph_payloads_alone() -> None:
    # Realistic log content: a documented directoryAudit event and a policy ID.
    audit = json.loads((FIXTURES / "auditLogs.directoryAudits.list.response.json").read_text())
    text = json.dumps(audit["value"][0]) if FIXTURES.is_dir() else "errorCode=500212 tenant ok"
    assert redact(text) == text
    assert redact("AADSTS500212 for tenant 3d1e2be9-a10a-4a0c-8380-7ce190f98ed9") == (
        "AADSTS500212 for tenant 3d1e2be9-a10a-4a0c-8380-7ce190f98ed9"
    )
    assert redact("status code=429 Retry-After: 7") == "status code=429 Retry-After: 7"


def test_redact_hides_the_ticket_of_a_documented_invitation_redeem_url() -> None:
    response = json.loads((FIXTURES / "invitations.post.response.json").read_text())
    url = response["inviteRedeemUrl"]
    ticket = "wCFIFW%25252frzl2A%25252fpZFZk5fCLJprpDxtcjR8s%25252fo1QZA0yQ%25253d"
    assert ticket in url
    cleaned = redact(f"invitation sent, redeem at {url}")
    assert ticket not in cleaned
    assert "%26ticket%3d[REDACTED]%26ver%3d2.0" in cleaned


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(
        "shared.adapters.teams", logging.WARNING, __file__, 1, msg, args, exc_info
    )


def test_filter_redacts_message_arguments_and_exception_text() -> None:
    try:
        raise RuntimeError(f"POST {WORKFLOWS_URL} returned 429")
    except RuntimeError as error:
        record = _record("delivery %s failed with %s", "alert-42", f"Bearer {JWT}", exc=error)
    assert RedactSecretsFilter().filter(record) is True
    formatted = logging.Formatter("%(message)s").format(record)
    assert "Xq3vP0cS1bT9mR4nW8kD2fH6jL5aZ7yE0uI3oG1tQ4s" not in formatted
    assert JWT not in formatted
    assert "delivery alert-42 failed with Bearer [REDACTED]" in formatted
    assert "RuntimeError: POST https://prod-12.westeurope.logic.azure.com" in formatted
    assert "Traceback" in formatted  # the stack is kept, only the message is cleaned


def test_installed_redaction_cleans_records_for_every_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper, not two
    log = logging.getLogger("shared.adapters.mail")
    with caplog.at_level(logging.INFO, logger="shared"):
        log.info("token response: %s", {"access_token": JWT, "expires_in": 3599})
    message = caplog.records[-1].getMessage()
    assert JWT not in message
    assert "'expires_in': 3599" in message


def test_installed_redaction_never_raises_from_the_log_call() -> None:
    install_log_redaction()
    factory = logging.getLogRecordFactory()
    # Mismatched %-arguments are logging's to report at emit time, not the caller's problem.
    record = factory("shared", logging.INFO, __file__, 1, "malformed %s %s", ("one",), None)
    assert record.msg == "malformed %s %s"
    assert record.args == ("one",)


# ------------------------------------------------------------------------------ spans
@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_trigger_span_carries_the_client_tenant(spans: InMemorySpanExporter) -> None:
    tenant = "3D1E2BE9-A10A-4A0C-8380-7CE190F98ED9"
    with trigger_span(
        "queue.check_client",
        client_tenant_id=tenant,
        sweep_id="sweep-7",
        dequeue_count=2,
        **{"messaging.destination.name": "xtap-check-client"},
        unused=None,
    ) as span:
        assert span.is_recording()
        assert telemetry.current_client_tenant() == tenant.lower()
    assert telemetry.current_client_tenant() is None
    (finished,) = [s for s in spans.get_finished_spans() if s.name == "queue.check_client"]
    assert finished.attributes[CLIENT_TENANT_ATTRIBUTE] == tenant.lower()
    assert finished.attributes["xtap.sweep_id"] == "sweep-7"
    assert finished.attributes["xtap.dequeue_count"] == 2
    assert finished.attributes["messaging.destination.name"] == "xtap-check-client"
    assert "xtap.unused" not in finished.attributes


def test_trigger_span_records_a_failure_and_reraises(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="bad message"), trigger_span("queue.reinvite"):
        raise ValueError("bad message")
    (finished,) = [s for s in spans.get_finished_spans() if s.name == "queue.reinvite"]
    assert finished.status.status_code is StatusCode.ERROR
    assert [event.name for event in finished.events] == ["exception"]
    assert CLIENT_TENANT_ATTRIBUTE not in finished.attributes


def test_span_attributes_are_redacted(spans: InMemorySpanExporter) -> None:
    with trigger_span("queue.alerts", target=WORKFLOWS_URL):
        pass
    (finished,) = [s for s in spans.get_finished_spans() if s.name == "queue.alerts"]
    assert "sig=[REDACTED]" in finished.attributes["xtap.target"]


def test_logs_inside_a_span_carry_the_client_tenant(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_redaction()
    tenant = "9b1b2c3d-0000-4000-8000-00000000abcd"
    log = logging.getLogger("shared.services.posture_sweep")
    with caplog.at_level(logging.INFO, logger="shared"):
        with trigger_span("timer.sweep", tenant):
            log.info("client checked")
        log.info("outside")
    inside, outside = caplog.records[-2:]
    assert getattr(inside, CLIENT_TENANT_ATTRIBUTE) == tenant
    assert not hasattr(outside, CLIENT_TENANT_ATTRIBUTE)


# ------------------------------------------------------------------------------ export
def test_configure_is_a_no_op_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(telemetry, "_azure_monitor_configured", False)
    assert configure_telemetry({}, configure=lambda **kw: calls.append(kw)) is False
    assert (
        configure_telemetry(
            {"APPLICATIONINSIGHTS_CONNECTION_STRING": "  "}, configure=lambda **kw: calls.append(kw)
        )
        is False
    )
    assert calls == []


def test_configure_exports_the_application_logger_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(telemetry, "_azure_monitor_configured", False)
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
        ),
    }
    assert configure_telemetry(env, configure=lambda **kw: calls.append(kw)) is True
    assert configure_telemetry(env, configure=lambda **kw: calls.append(kw)) is True
    assert calls == [
        {"connection_string": env["APPLICATIONINSIGHTS_CONNECTION_STRING"], "logger_name": "shared"}
    ]


def test_importing_and_configuring_without_azure_stays_light() -> None:
    # A fresh interpreter: nothing else in this test session may have imported the exporter.
    probe = (
        "import sys, shared.telemetry as t\n"
        "t.configure_telemetry({})\n"
        "with t.trigger_span('x', 'tid'):\n"
        "    pass\n"
        "heavy = [m for m in ('azure.monitor.opentelemetry', 'opentelemetry.sdk', 'azure.identity')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == ""

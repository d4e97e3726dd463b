"""The one-line failure for each kind of exception chain the adapters raise (#14.6).

The chains are the ones measured against the simulator (wrong secret, refused ports,
untrusted certificate; tests/e2e/test_cli_failures.py runs them for real)."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from shared.adapters.graph import GraphError
from shared.entrypoints.cli_errors import describe, vendor_identity

SETTINGS = SimpleNamespace(
    graph_base_url="https://graph.microsoft.com/v1.0",
    authority_host="https://login.microsoftonline.com",
    log_analytics_endpoint="https://api.loganalytics.io",
    vendor_client_id="3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74",
    vendor_tenant_id="0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
    client_reader_app_id="c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96",
)


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def test_wrong_secret_names_the_setting():
    exc = ClientAuthenticationError(
        "(invalid_client) AADSTS7000215: Invalid client secret provided. ... for a secret "
        "added to app '3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74'."
    )
    failure = describe(_chained(GraphError(0, "ClientAuthenticationError", "x"), exc), SETTINGS)
    assert failure is not None and failure.exit_code == 2
    assert "XTAP_VENDOR_CLIENT_SECRET" in failure.message and "AADSTS7000215" in failure.message


def test_the_reader_app_is_recognised_by_its_id():
    exc = ClientAuthenticationError(
        "AADSTS7000222: The provided client secret keys for app "
        "'c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96' are expired."
    )
    failure = describe(exc, SETTINGS, vendor_identity(SETTINGS))
    assert failure is not None
    assert "client reader app" in failure.message and "XTAP_CLIENT_READER_SECRET" in failure.message


def test_graph_refused_port_is_named_by_its_setting():
    root = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 8443)")
    outer = _chained(GraphError(0, "ConnectError", "All connection attempts failed"),
                     _chained(OSError("All connection attempts failed"), root))
    settings = SimpleNamespace(**{**vars(SETTINGS), "graph_base_url": "https://127.0.0.1:8443/v1.0"})
    failure = describe(outer, settings)
    assert failure is not None and failure.exit_code == 1
    assert failure.message == (
        "cannot reach Microsoft Graph (127.0.0.1:8443): connection refused; check the network "
        "and proxy, or XTAP_GRAPH_BASE_URL"
    )


def test_token_endpoint_refused_and_untrusted_certificate():
    refused = ServiceRequestError(
        "Cannot connect to host login.microsoftonline.com:443 ssl:default [Connect call failed]"
    )
    failure = describe(refused, SETTINGS)
    assert failure is not None and "the Entra token endpoint" in failure.message
    untrusted = _chained(ServiceRequestError("Cannot connect to host 127.0.0.1:9 ssl:True"),
                         ssl.SSLCertVerificationError(1, "certificate verify failed"))
    failure = describe(untrusted, SETTINGS)
    assert failure is not None and "XTAP_TLS_CA_FILE" in failure.message


def test_graph_permission_refusal_points_at_the_permission_table():
    failure = describe(GraphError(403, "Authorization_RequestDenied", "Insufficient privileges",
                                  path="/policies/crossTenantAccessPolicy/default"), SETTINGS)
    assert failure is not None
    assert "refused /policies/crossTenantAccessPolicy/default (403" in failure.message


def test_anything_else_is_left_alone():
    assert describe(ValueError("nope"), SETTINGS) is None

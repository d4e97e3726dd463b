"""The real azure-identity credentials against the simulator's token endpoint failures.

Each failure the simulator can be switched to is Entra's real error body; the reader
credential must turn it into a TokenRequestError whose kind is the AADSTS code's meaning.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from devtools.local_env import READER_APP_ID

pytestmark = pytest.mark.integration

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MI_CLIENT_ID = "e2d7b4a9-3c16-4a8f-b5e0-7f9c2d1a6b38"
MI_PRINCIPAL = "a9f3c6e1-4d28-4b7a-8e53-2c1b9d7f0a64"
MI_HEADER = "sim-identity-header"


async def _token_error(tenant: str = CONTOSO) -> Any:
    from shared.adapters.credentials import ClientReaderCredentials, TokenRequestError
    from shared.adapters.graph import GRAPH_SCOPE
    from shared.config import load_settings

    readers = ClientReaderCredentials(load_settings())
    try:
        await readers.for_tenant(tenant).get_token(GRAPH_SCOPE)
    except TokenRequestError as exc:
        return exc
    finally:
        await readers.close()
    return None


@pytest.mark.parametrize(
    ("failure", "kind", "code"),
    [
        ("7000229", "consent_missing", 7000229),
        ("700211", "vendor_configuration", 700211),
        ("700212", "vendor_configuration", 700212),
        ("700213", "vendor_configuration", 700213),
        ("70021", "vendor_configuration", 70021),
        ("53003", "vendor_configuration", 53003),
        ("90002", "tenant_not_found", 90002),
        ("7000215", "vendor_configuration", 7000215),
        ("temporarily_unavailable", "transient", 90033),
        ("500", "transient", 50000),
    ],
)
def test_each_simulated_entra_failure_is_classified_through_azure_identity(
    app_env, demo_sim, failure, kind, code
):
    demo_sim.control.set_token_failure(failure, tenant_id=CONTOSO, app_id=READER_APP_ID)
    try:
        exc = asyncio.run(_token_error())
    finally:
        demo_sim.control.set_token_failure(None, tenant_id=CONTOSO, app_id=READER_APP_ID)
    assert exc is not None, "the token request should have failed"
    assert exc.failure.kind.value == kind
    assert exc.failure.aadsts == code
    assert exc.consent_missing is (kind == "consent_missing")
    assert exc.transient is (kind == "transient")


def test_an_unconsented_tenant_is_700016_consent_missing(app_env, demo_sim):
    tailspin = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"
    exc = asyncio.run(_token_error(tailspin))
    assert exc is not None and exc.consent_missing and exc.failure.aadsts == 700016


def _federated(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("XTAP_CLIENT_READER_CREDENTIAL", "federated_managed_identity")
    monkeypatch.setenv("AZURE_CLIENT_ID", MI_CLIENT_ID)
    monkeypatch.delenv("XTAP_CLIENT_READER_SECRET")
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", MI_HEADER)


def test_a_broken_federated_credential_is_a_vendor_fault_not_missing_consent(
    app_env, demo_sim, monkeypatch
):
    _federated(monkeypatch, demo_sim.msi_endpoint)
    demo_sim.control.set_federated_subjects(READER_APP_ID, [])
    try:
        exc = asyncio.run(_token_error())
    finally:
        demo_sim.control.set_federated_subjects(READER_APP_ID, [MI_PRINCIPAL])
    assert exc is not None
    assert exc.failure.kind.value == "vendor_configuration"
    assert exc.failure.fault.value == "federated_credential"
    assert exc.failure.aadsts == 700213
    assert not exc.consent_missing


def test_an_unreachable_managed_identity_endpoint_is_a_vendor_fault(app_env, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _federated(monkeypatch, f"http://127.0.0.1:{port}/msi/token")
    exc = asyncio.run(_token_error())
    assert exc is not None
    assert exc.failure.kind.value == "vendor_configuration"
    assert exc.failure.fault.value == "managed_identity"
    assert exc.transient  # retried by the host before it is concluded
    assert not exc.consent_missing

"""Token failures classified by AADSTS code (issue 12.2), from Entra's real error bodies.

The bodies below have the shape Entra's token endpoint answers with (``error``,
``error_description`` starting with the AADSTS code, ``error_codes``, trace and correlation
IDs; Entra error-code reference, "Handling error codes in your application"). The
descriptions are the service's own messages as documented or quoted in public issue threads
(sim/FIDELITY.md, "Tokens and identity"); trace IDs are placeholders.
"""

from __future__ import annotations

import json

import pytest

from shared.domain.token_errors import (
    TokenFailureKind,
    VendorFault,
    aadsts_code,
    classify_token_error,
)

TRACE = "Trace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333 Correlation ID: aaaa0000-bb11-2222-33cc-444444dddddd Timestamp: 2026-11-30 10:00:00Z"  # noqa: E501


def body(error: str, code: int, message: str) -> str:
    return json.dumps(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {message} {TRACE}",
            "error_codes": [code],
            "timestamp": "2026-11-30 10:00:00Z",
            "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
            "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
    )


APP = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"
TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

CASES = [
    (
        "700016 app not in the directory",
        400,
        body(
            "unauthorized_client",
            700016,
            f"Application with identifier '{APP}' was not found in the directory 'Contoso'."
            " This can happen if the application has not been installed by the administrator"
            " of the tenant or consented to by any user in the tenant. You may have sent your"
            " authentication request to the wrong tenant.",
        ),
        TokenFailureKind.CONSENT_MISSING,
        None,
    ),
    (
        "7000229 no service principal",
        400,
        body(
            "invalid_client",
            7000229,
            f"The client application {APP} is missing service principal in the tenant"
            f" {TENANT}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
        ),
        TokenFailureKind.CONSENT_MISSING,
        None,
    ),
    (
        "700213 federated subject",
        401,
        body(
            "invalid_client",
            700213,
            "No matching federated identity record found for presented assertion subject"
            " 'a9f3c6e1-4d28-4b7a-8e53-2c1b9d7f0a64'. Check your federated identity credential"
            " Subject, Audience and Issuer against the presented assertion.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.FEDERATED_CREDENTIAL,
    ),
    (
        "700211 federated issuer",
        401,
        body(
            "invalid_client",
            700211,
            "No matching federated identity record found for presented assertion issuer"
            " 'https://login.microsoftonline.com/0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50/v2.0'.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.FEDERATED_CREDENTIAL,
    ),
    (
        "700212 federated audience",
        401,
        body(
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience"
            " 'api://AzureADTokenExchange'.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.FEDERATED_CREDENTIAL,
    ),
    (
        "70021 federated record",
        400,
        body(
            "invalid_request",
            70021,
            "No matching federated identity record found for presented assertion. Assertion"
            " Issuer: 'https://kubernetes.default.svc.cluster.local'. Assertion Subject:"
            " 'system:serviceaccount:default:workload-identity-sa'. Assertion Audience:"
            " 'api://AzureADTokenExchange'.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.FEDERATED_CREDENTIAL,
    ),
    (
        "53003 conditional access on the workload",
        400,
        body(
            "interaction_required",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does"
            " not allow token issuance.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.CONDITIONAL_ACCESS,
    ),
    (
        "7000215 wrong secret",
        401,
        body(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is"
            " the client secret value, not the client secret ID, for a secret added to app"
            f" '{APP}'.",
        ),
        TokenFailureKind.VENDOR_CONFIGURATION,
        VendorFault.CLIENT_SECRET,
    ),
    (
        "90002 deleted tenant",
        400,
        body(
            "invalid_request",
            90002,
            f"Tenant '{TENANT}' not found. Check to make sure you have the correct tenant ID"
            " and are signing into the correct cloud.",
        ),
        TokenFailureKind.TENANT_NOT_FOUND,
        None,
    ),
    (
        "temporarily_unavailable",
        503,
        body(
            "temporarily_unavailable",
            90033,
            "The Microsoft Online Directory Service (MSODS) isn't available.",
        ),
        TokenFailureKind.TRANSIENT,
        None,
    ),
    (
        "server error 500",
        500,
        body("server_error", 50000, "There was an error issuing a token."),
        TokenFailureKind.TRANSIENT,
        None,
    ),
    (
        "gateway 502 with an HTML page",
        502,
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        TokenFailureKind.TRANSIENT,
        None,
    ),
    (
        "an unrecognised code is reported, not called 'not consented'",
        400,
        body("invalid_request", 50020, "User account from identity provider does not exist."),
        TokenFailureKind.OTHER,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "status", "answer", "kind", "fault"), CASES, ids=[c[0] for c in CASES]
)
def test_each_entra_answer_is_classified_by_its_aadsts_code(name, status, answer, kind, fault):
    failure = classify_token_error(status, answer)
    assert failure.kind is kind
    assert failure.fault is fault
    assert failure.retry is (kind is TokenFailureKind.TRANSIENT)
    if failure.aadsts:
        assert failure.code_text == f"AADSTS{failure.aadsts}"
        assert f"AADSTS{failure.aadsts}" in failure.description  # kept for support cases


def test_only_700016_and_7000229_mean_consent_missing():
    consent = {
        c[0]
        for c in CASES
        if classify_token_error(c[1], c[2]).kind is TokenFailureKind.CONSENT_MISSING
    }
    assert consent == {"700016 app not in the directory", "7000229 no service principal"}


def test_the_code_is_read_from_the_exception_text_when_the_body_is_gone():
    # azure-identity's message: "Microsoft Entra ID error '(invalid_client) AADSTS700213: ...'"
    message = (
        "Microsoft Entra ID error '(invalid_client) AADSTS700213: No matching federated "
        "identity record found for presented assertion subject 'x'.'"
    )
    failure = classify_token_error(401, None, message)
    assert failure.kind is TokenFailureKind.VENDOR_CONFIGURATION
    assert failure.aadsts == 700213


def test_error_codes_win_over_the_description():
    assert (
        aadsts_code({"error_codes": [7000229], "error_description": "AADSTS700016: x"}) == 7000229
    )


def test_an_unreachable_managed_identity_endpoint_is_the_vendors_fault_and_retried_first():
    failure = classify_token_error(
        None,
        None,
        "ManagedIdentityCredential authentication unavailable, no response from the endpoint",
        endpoint_unreachable=True,
        managed_identity=True,
    )
    assert failure.kind is TokenFailureKind.VENDOR_CONFIGURATION
    assert failure.fault is VendorFault.MANAGED_IDENTITY
    assert failure.retry


def test_a_managed_identity_that_refuses_is_the_vendors_fault_without_retry():
    failure = classify_token_error(
        400,
        '{"statusCode": 400, "message": "No managed identity matches the request."}',
        managed_identity=True,
    )
    assert failure.kind is TokenFailureKind.VENDOR_CONFIGURATION
    assert failure.fault is VendorFault.MANAGED_IDENTITY
    assert not failure.retry
    assert "No managed identity matches" in failure.description


def test_no_answer_at_all_from_entra_is_transient():
    failure = classify_token_error(None, None, "Cannot connect to host", endpoint_unreachable=True)
    assert failure.kind is TokenFailureKind.TRANSIENT and failure.retry

"""What a failed token request means: read the AADSTS code, not the exception type.

azure-identity raises the same ``ClientAuthenticationError`` for every token failure, so
"the token request failed" says nothing about *whose* problem it is. Only two codes mean
the client tenant has not consented to the read-only app (DESIGN §4, issue 12.2):

* AADSTS700016 *UnauthorizedClient_DoesNotMatchRequest* — the application was not found in
  the directory (never installed, or consent removed with the service principal);
* AADSTS7000229 — the client application is missing a service principal in the tenant.

Everything else is either transient (5xx, ``temporarily_unavailable``, the STS's own
"retryable" codes), a fault in the **vendor's** own configuration (the federated credential
of the reader app, the managed identity it uses as assertion, a secret that is wrong or
expired, Conditional Access for workload identities), or a tenant that does not exist
(AADSTS90002). Anything not recognised is reported as it is — never as "not consented".

Sources: Microsoft Entra "authentication and authorization error codes" (AADSTS700016,
7000215, 7000222, 53003, 90002, 50196, 90033, 90006, 90024 and the ``error`` table with
``temporarily_unavailable``); public issue threads for AADSTS7000229, 700211, 700213 and
70021 (see sim/FIDELITY.md, "Tokens and identity").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TokenFailureKind(StrEnum):
    CONSENT_MISSING = "consent_missing"  # the client has not consented (700016, 7000229)
    TRANSIENT = "transient"  # retry: 5xx, temporarily_unavailable, retryable STS codes
    VENDOR_CONFIGURATION = "vendor_configuration"  # the vendor's identity setup is broken
    TENANT_NOT_FOUND = "tenant_not_found"  # AADSTS90002: deleted or mistyped tenant
    OTHER = "other"  # recognised as a token failure, meaning unknown: reported as it is


class VendorFault(StrEnum):
    """Which part of the vendor's own configuration a VENDOR_CONFIGURATION failure names."""

    FEDERATED_CREDENTIAL = "federated_credential"
    MANAGED_IDENTITY = "managed_identity"
    CLIENT_SECRET = "client_secret"  # noqa: S105 - names the kind of credential, not one
    CONDITIONAL_ACCESS = "conditional_access"


CONSENT_MISSING_CODES = frozenset({700016, 7000229})
TENANT_NOT_FOUND_CODES = frozenset({90002})
# Federated identity credential records (issuer / audience / subject do not match).
FEDERATED_CREDENTIAL_CODES = frozenset({70021, 700211, 700212, 700213, 7002137, 7002138})
CLIENT_SECRET_CODES = frozenset({7000215, 7000222})
CONDITIONAL_ACCESS_CODES = frozenset({53003})
# Codes the STS documents as transient ("retryable", "temporarily unavailable", loop guard).
TRANSIENT_CODES = frozenset({50033, 50196, 90006, 90024, 90033, 90090, 90091})
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})

_AADSTS = re.compile(r"AADSTS(\d{4,8})")


@dataclass(frozen=True, slots=True)
class TokenFailure:
    kind: TokenFailureKind
    aadsts: int | None  # the first AADSTS code, when the answer carried one
    error: str | None  # the OAuth ``error`` value (invalid_client, ...)
    description: str  # one line, Trace/Correlation IDs kept for support cases
    fault: VendorFault | None = None
    # Worth retrying before concluding: transient failures, and an identity endpoint that
    # did not answer at all (a restart blip looks the same as a detached identity at first).
    retry: bool = False

    @property
    def code_text(self) -> str:
        return f"AADSTS{self.aadsts}" if self.aadsts else (self.error or "token_error")


def _first_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_error_body(body: Any) -> Mapping[str, Any] | None:
    """The OAuth error object of a token endpoint answer (JSON text or already decoded)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body if isinstance(body, Mapping) else None


def aadsts_code(body: Mapping[str, Any] | None, message: str = "") -> int | None:
    """``error_codes[0]``, else the first ``AADSTSnnnn`` in the description or message."""
    if body is not None:
        codes = body.get("error_codes")
        if isinstance(codes, list) and codes and isinstance(codes[0], int):
            return codes[0]
        found = _AADSTS.search(str(body.get("error_description") or ""))
        if found:
            return int(found.group(1))
    found = _AADSTS.search(message)
    return int(found.group(1)) if found else None


def classify_token_error(
    status: int | None,
    body: Any = None,
    message: str = "",
    *,
    endpoint_unreachable: bool = False,
    managed_identity: bool = False,
) -> TokenFailure:
    """Classify one failed token request.

    ``status``: HTTP status of the token endpoint's answer (``None`` without an answer).
    ``body``: the answer (JSON text or object). ``message``: the exception text, searched
    for an AADSTS code when the body is not at hand. ``endpoint_unreachable``: no answer at
    all (connection refused, DNS, timeout). ``managed_identity``: the failing request was to
    the managed-identity endpoint (the assertion source), not to Entra's token endpoint.
    """
    error_body = parse_error_body(body)
    code = aadsts_code(error_body, message)
    error = str(error_body.get("error")) if error_body and error_body.get("error") else None
    text = ""
    if error_body is not None:
        text = str(error_body.get("error_description") or error_body.get("message") or "")
    description = _first_line(text or message or (error or "token request failed"))

    def failure(
        kind: TokenFailureKind, fault: VendorFault | None = None, *, retry: bool = False
    ) -> TokenFailure:
        retry = retry or kind is TokenFailureKind.TRANSIENT
        return TokenFailure(kind, code, error, description, fault, retry)

    if managed_identity:
        # The managed identity endpoint is the vendor's own plumbing: unreachable or
        # refusing, no client tenant is at fault. A 5xx there is retried first.
        if status is not None and status >= 500 and not endpoint_unreachable:
            return failure(TokenFailureKind.TRANSIENT)
        return failure(
            TokenFailureKind.VENDOR_CONFIGURATION,
            VendorFault.MANAGED_IDENTITY,
            retry=endpoint_unreachable,
        )
    if code in CONSENT_MISSING_CODES:
        return failure(TokenFailureKind.CONSENT_MISSING)
    if code in TENANT_NOT_FOUND_CODES:
        return failure(TokenFailureKind.TENANT_NOT_FOUND)
    if code in FEDERATED_CREDENTIAL_CODES:
        return failure(TokenFailureKind.VENDOR_CONFIGURATION, VendorFault.FEDERATED_CREDENTIAL)
    if code in CLIENT_SECRET_CODES:
        return failure(TokenFailureKind.VENDOR_CONFIGURATION, VendorFault.CLIENT_SECRET)
    if code in CONDITIONAL_ACCESS_CODES:
        return failure(TokenFailureKind.VENDOR_CONFIGURATION, VendorFault.CONDITIONAL_ACCESS)
    if code in TRANSIENT_CODES or error in TRANSIENT_ERRORS:
        return failure(TokenFailureKind.TRANSIENT)
    if endpoint_unreachable or status is None or status >= 500 or status == 429:
        return failure(TokenFailureKind.TRANSIENT)
    return failure(TokenFailureKind.OTHER)


VENDOR_FAULT_TEXT: Mapping[VendorFault, tuple[str, str]] = {
    VendorFault.FEDERATED_CREDENTIAL: (
        "the read-only app's federated credential does not match the managed identity's "
        "token (issuer, subject or audience)",
        "In the vendor tenant's Microsoft Entra admin center > App registrations > the "
        "read-only app > Certificates & secrets > Federated credentials: make sure one "
        "credential has issuer https://login.microsoftonline.com/<vendor tenant ID>/v2.0, "
        "subject = the object (principal) ID of the function app's user-assigned managed "
        "identity, and audience api://AzureADTokenExchange (the match is case-sensitive).",
    ),
    VendorFault.MANAGED_IDENTITY: (
        "the function app's managed identity endpoint did not issue a token",
        "In the Azure portal > the function app > Settings > Identity: check that the "
        "user-assigned managed identity is still attached and that AZURE_CLIENT_ID names "
        "its client ID; restart the app after fixing it.",
    ),
    VendorFault.CLIENT_SECRET: (
        "the app's client secret is wrong or expired",
        "In App registrations > the app > Certificates & secrets: create a new secret and "
        "store its value (not its ID) in Key Vault under the name the app setting "
        "references; better, switch to the managed identity (no secret).",
    ),
    VendorFault.CONDITIONAL_ACCESS: (
        "a Conditional Access policy for workload identities blocks the app's token (AADSTS53003)",
        "In the vendor tenant's Microsoft Entra admin center > Protection > Conditional "
        "Access: find the policy that targets workload identities and includes this app's "
        "service principal; exclude it or allow the function app's outbound addresses.",
    ),
}

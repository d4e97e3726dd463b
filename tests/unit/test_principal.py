"""X-MS-CLIENT-PRINCIPAL: decoding, verification and who the caller is."""

from __future__ import annotations

import base64
import json

import pytest

from shared.domain.principal import (
    PrincipalError,
    encode_client_principal,
    parse_client_principal,
)

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"

# The shape App Service Authentication (Entra provider) sends: long WS-Fed claim names,
# role_typ the WS-Fed role URI, app roles as "roles" claims.
EASY_AUTH_PRINCIPAL = {
    "auth_typ": "aad",
    "claims": [
        {"typ": "aud", "val": "api://xtap-watch"},
        {"typ": "iss", "val": f"https://login.microsoftonline.com/{VENDOR}/v2.0"},
        {
            "typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
            "val": "7D1E4B2A-9C3F-4E58-A1B6-2F8D0C7E5A93",
        },
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": VENDOR},
        {"typ": "name", "val": "Support Lead"},
        {"typ": "preferred_username", "val": "support.lead@osttra.com"},
        {"typ": "roles", "val": "Reinvite.Request"},
        {"typ": "roles", "val": "Posture.Read"},
        {"typ": "ver", "val": "2.0"},
    ],
    "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
}


def encode(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_easy_auth_principal_yields_roles_and_the_caller():
    principal = parse_client_principal(encode(EASY_AUTH_PRINCIPAL), expected_tenant_id=VENDOR)
    assert principal.roles == {"Reinvite.Request", "Posture.Read"}
    assert principal.has_role("Reinvite.Request")
    assert not principal.has_role("reinvite.request")  # app role values are case-sensitive
    assert principal.object_id == "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"
    assert principal.name == "support.lead@osttra.com"
    assert principal.display == "support.lead@osttra.com (7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93)"
    assert principal.caller_id == "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"


def test_roles_come_only_from_the_roles_claim_whatever_role_typ_says():
    # A forged (or misconfigured) header naming another claim type as its role type must
    # not turn that claim into an app role: roles are read from "roles" claims only.
    document = dict(EASY_AUTH_PRINCIPAL)
    document["role_typ"] = "name"
    document["claims"] = [
        {"typ": "oid", "val": "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"},
        {"typ": "tid", "val": VENDOR},
        {"typ": "name", "val": "Reinvite.Request"},
        {"typ": document_role_uri(), "val": "Reinvite.Request"},
    ]
    principal = parse_client_principal(encode(document), expected_tenant_id=VENDOR)
    assert principal.roles == frozenset()
    assert not principal.has_role("Reinvite.Request")


def document_role_uri() -> str:
    return "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def test_a_missing_tenant_claim_is_refused_when_the_tenant_is_checked():
    document = dict(EASY_AUTH_PRINCIPAL)
    document["claims"] = [
        c for c in EASY_AUTH_PRINCIPAL["claims"] if not c["typ"].endswith("tenantid")
    ]
    with pytest.raises(PrincipalError, match="tenant"):
        parse_client_principal(encode(document), expected_tenant_id=VENDOR)


def test_two_different_tenant_claims_are_refused():
    document = dict(EASY_AUTH_PRINCIPAL)
    document["claims"] = [
        *EASY_AUTH_PRINCIPAL["claims"],
        {"typ": "tid", "val": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"},
    ]
    with pytest.raises(PrincipalError, match="tenant"):
        parse_client_principal(encode(document), expected_tenant_id=VENDOR)


def _unpadded() -> str:
    for n in range(3):
        header = encode(dict(EASY_AUTH_PRINCIPAL, pad="?" * n))
        if header.endswith("="):
            return header.rstrip("=")
    raise AssertionError("no sample")


def _url_safe_only() -> str:
    """A principal whose standard base64 holds '+' or '/', re-spelt in the URL-safe alphabet."""
    for n in range(200):
        document = dict(EASY_AUTH_PRINCIPAL, pad="?" * n)
        standard = encode(document)
        if "+" in standard or "/" in standard:
            return standard.replace("+", "-").replace("/", "_")
    raise AssertionError("no sample")


@pytest.mark.parametrize(
    "header",
    [
        _unpadded(),  # App Service always pads
        _url_safe_only(),
        " ".join(encode(EASY_AUTH_PRINCIPAL)[i : i + 40] for i in range(0, 400, 40)),
        encode(EASY_AUTH_PRINCIPAL) + "AAAA",  # trailing data after the document
    ],
    ids=["unpadded", "url-safe-alphabet", "embedded-spaces", "trailing-bytes"],
)
def test_base64_is_decoded_strictly(header):
    with pytest.raises(PrincipalError):
        parse_client_principal(header, expected_tenant_id=VENDOR)


def test_duplicate_keys_in_the_principal_are_refused():
    text = json.dumps(EASY_AUTH_PRINCIPAL)
    forged = text[:-1] + ', "claims": [{"typ": "roles", "val": "Reinvite.Request"}]}'
    header = base64.b64encode(forged.encode()).decode()
    with pytest.raises(PrincipalError, match="JSON"):
        parse_client_principal(header, expected_tenant_id=VENDOR)


def test_an_app_calling_with_client_credentials_is_identified_by_its_app_id():
    document = {
        "auth_typ": "aad",
        "claims": [
            {"typ": "azp", "val": "3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"},
            {"typ": "roles", "val": "Reinvite.Request"},
        ],
        "name_typ": "name",
        "role_typ": "roles",
    }
    principal = parse_client_principal(encode(document))
    assert principal.display == "app 3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"
    assert principal.has_role("Reinvite.Request")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "not base64 at all!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        encode({"claims": []}),  # no auth_typ
        encode({"auth_typ": "aad", "claims": "roles"}),
        encode({"auth_typ": "aad", "claims": [{"typ": "oid"}]}),
        encode({"auth_typ": "aad", "claims": [{"typ": "roles", "val": "Reinvite.Request"}]}),
        "A" * 20_000,
    ],
)
def test_unusable_headers_are_refused(header):
    with pytest.raises(PrincipalError):
        parse_client_principal(header)


def test_a_principal_from_another_tenant_is_refused():
    header = encode_client_principal(
        name="x@fabrikam.example",
        object_id="11111111-2222-4333-8444-555555555555",
        roles=("Reinvite.Request",),
        tenant_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    )
    with pytest.raises(PrincipalError, match="another tenant"):
        parse_client_principal(header, expected_tenant_id=VENDOR)
    assert parse_client_principal(header).tenant_id == "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


def test_encode_round_trips():
    header = encode_client_principal(
        name="support.lead@osttra.com",
        object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
        roles=("Reinvite.Request",),
        tenant_id=VENDOR,
    )
    principal = parse_client_principal(header, expected_tenant_id=VENDOR)
    assert principal.roles == {"Reinvite.Request"}
    assert principal.auth_type == "aad"

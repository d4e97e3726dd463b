"""Token endpoints of the Graph simulator (a TEST DOUBLE of the Microsoft identity platform).

* ``POST /{tenant}/oauth2/v2.0/token`` — client credentials with ``client_secret`` or
  ``client_assertion`` (a JWT whose ``sub`` is one of the app's federated subjects, e.g.
  the managed identity's principal ID, or whose ``iss``/``sub`` is the app itself).
  Assertion signatures are NOT checked: this is a test double.
* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` — what MSAL reads first.
* ``GET /msi/token`` — the App Service managed-identity endpoint (``X-IDENTITY-HEADER``).

Access tokens are JWT-shaped and unsigned (``alg: none``) and carry ``tid``, ``appid``,
``oid`` and ``roles``. Errors carry the real AADSTS codes and OAuth error names.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sim.clock import utcnow
from sim.state import SimState, Tenant, stable_id

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenError(Exception):
    """A bearer token cannot be used (→ 401 InvalidAuthenticationToken)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict[str, Any]) -> str:
    header = {"typ": "JWT", "alg": "none", "kid": "graph-simulator"}
    return ".".join(
        [
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(claims, separators=(",", ":")).encode()),
            _b64url(b"unsigned-test-double"),
        ]
    )


def decode_jwt(token: str) -> dict[str, Any]:
    """Decode a JWT payload without verifying it (raises TokenError when malformed)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("IDX14100: JWT is not well formed, there are no dots (.).")
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError(
            "IDX14102: Unable to decode the payload as Base64Url encoded string."
        ) from exc
    if not isinstance(claims, dict):
        raise TokenError("IDX14102: the payload is not a JSON object.")
    return claims


def peek_identity(authorization: str | None) -> tuple[str | None, str | None]:
    """(tenant, app) from a bearer header, unverified — for logs, faults and throttles."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None, None
    try:
        claims = decode_jwt(authorization[7:].strip())
    except TokenError:
        return None, None
    return (
        str(claims.get("tid")).lower() if claims.get("tid") else None,
        str(claims.get("appid")).lower() if claims.get("appid") else None,
    )


def _access_token(
    state: SimState,
    tenant: Tenant,
    app_id: str,
    oid: str,
    audience: str,
    roles: list[str],
    acr: str,
) -> tuple[str, int]:
    now = int(time.time())
    lifetime = state.token_lifetime_seconds
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app_id,
        "appidacr": acr,
        "idp": f"https://sts.windows.net/{tenant.id}/",
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "tid": tenant.id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
        "xms_sim": "graph-simulator test double",
    }
    if roles:
        claims["roles"] = sorted(roles)
    return encode_jwt(claims), lifetime


def _oauth_error(status: int, error: str, code: int, message: str) -> tuple[int, dict[str, Any]]:
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    timestamp = utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
    return status, {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id}"
            f" Timestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def audience_from_scope(scope: str) -> str | None:
    """``https://graph.microsoft.com/.default`` → ``https://graph.microsoft.com``."""
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return None
    return scopes[0][: -len("/.default")]


@dataclass
class TokenOutcome:
    status: int
    body: dict[str, Any]
    app_id: str | None = None


def issue_client_credentials_token(
    state: SimState, tenant_key: str, form: dict[str, str]
) -> TokenOutcome:
    """The v2.0 token endpoint, client-credentials grant only."""
    tenant = state.resolve_tenant(tenant_key)
    if tenant is None:
        return TokenOutcome(
            *_oauth_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_key}' not found. Check to make sure you have the correct"
                " tenant ID and are signing into the correct cloud.",
            )
        )
    grant_type = form.get("grant_type", "")
    if grant_type != "client_credentials":
        return TokenOutcome(
            *_oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        )
    client_id = form.get("client_id", "").lower()
    app = state.applications.get(client_id)
    consent = state.consent(tenant.id, client_id)
    if app is None or consent.state == "none":
        return TokenOutcome(
            *_oauth_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory"
                f" '{tenant.display_name}'. This can happen if the application has not been"
                " installed by the administrator of the tenant or consented to by any user in"
                " the tenant. You may have sent your authentication request to the wrong tenant.",
            ),
            app_id=client_id or None,
        )
    audience = audience_from_scope(form.get("scope", ""))
    if audience is None:
        return TokenOutcome(
            *_oauth_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client"
                " credential flows must have a scope value with /.default suffixed to the"
                " resource identifier (application ID URI).",
            ),
            app_id=client_id,
        )
    acr = "1"
    if "client_secret" in form:
        if form["client_secret"] not in app.secrets:
            return TokenOutcome(
                *_oauth_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request"
                    f" is the client secret value, not the client secret ID, for a secret added"
                    f" to app '{client_id}'.",
                ),
                app_id=client_id,
            )
    elif "client_assertion" in form:
        acr = "2"
        if form.get("client_assertion_type") != JWT_BEARER:
            return TokenOutcome(
                *_oauth_error(
                    400,
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed (client_assertion_type).",
                ),
                app_id=client_id,
            )
        try:
            assertion = decode_jwt(form["client_assertion"])
        except TokenError:
            return TokenOutcome(
                *_oauth_error(400, "invalid_request", 50027, "JWT token is invalid or malformed."),
                app_id=client_id,
            )
        subject = str(assertion.get("sub", "")).lower()
        self_signed = subject == client_id and str(assertion.get("iss", "")).lower() == client_id
        if not self_signed and subject not in app.federated_subjects:
            return TokenOutcome(
                *_oauth_error(
                    401,
                    "invalid_client",
                    700213,
                    f"No matching federated identity record found for presented assertion"
                    f" subject '{subject}'.",
                ),
                app_id=client_id,
            )
    else:
        return TokenOutcome(
            *_oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or"
                " 'client_secret'.",
            ),
            app_id=client_id,
        )
    roles = state.granted_roles(tenant.id, client_id)
    token, lifetime = _access_token(
        state, tenant, client_id, stable_id("sp", tenant.id, client_id), audience, roles, acr
    )
    return TokenOutcome(
        200,
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        },
        app_id=client_id,
    )


def openid_configuration(
    state: SimState, base_url: str, tenant_key: str
) -> tuple[int, dict[str, Any]]:
    tenant = state.resolve_tenant(tenant_key)
    if tenant is None:
        return 400, {
            "error": "invalid_tenant",
            "error_description": f"AADSTS90002: Tenant '{tenant_key}' not found.",
            "error_codes": [90002],
        }
    root = f"{base_url}/{tenant.id}"
    return 200, {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "roles"],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": tenant.cloud_instance_name,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def managed_identity_token(
    state: SimState, params: dict[str, str], identity_header: str | None
) -> tuple[int, dict[str, Any], str | None, str | None]:
    """App Service MSI (api-version 2019-08-01). Returns status, body, tenant, app."""
    if params.get("api-version") != "2019-08-01":
        return (
            400,
            {"statusCode": 400, "message": "Only api-version 2019-08-01 is simulated."},
            None,
            None,
        )
    resource = params.get("resource")
    if not resource:
        return (
            400,
            {"statusCode": 400, "message": "Required query parameter 'resource' is missing."},
            None,
            None,
        )
    client_id = (params.get("client_id") or "").lower()
    candidates = list(state.managed_identities.values())
    if client_id:
        candidates = [mi for mi in candidates if mi.client_id == client_id]
    if params.get("principal_id") or params.get("object_id"):
        wanted = (params.get("principal_id") or params.get("object_id") or "").lower()
        candidates = [mi for mi in candidates if mi.principal_id == wanted]
    if not candidates:
        return (
            400,
            {"statusCode": 400, "message": "No managed identity matches the request."},
            None,
            None,
        )
    identity = candidates[0]
    if identity_header != identity.identity_header:
        return (
            401,
            {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."},
            None,
            None,
        )
    tenant = state.tenants.get(identity.tenant_id)
    if tenant is None:
        return (
            500,
            {"statusCode": 500, "message": "The identity's tenant is not simulated."},
            None,
            None,
        )
    audience = resource[: -len("/.default")] if resource.endswith("/.default") else resource
    token, lifetime = _access_token(
        state, tenant, identity.client_id, identity.principal_id, audience, identity.roles, "2"
    )
    return (
        200,
        {
            "access_token": token,
            "expires_on": str(int(time.time()) + lifetime),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        },
        tenant.id,
        identity.client_id,
    )

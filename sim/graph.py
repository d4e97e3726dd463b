"""Microsoft Graph v1.0 endpoints of the Graph simulator (a TEST DOUBLE, not Microsoft Graph).

Serves, per tenant (decided by the bearer token's ``tid``), the slice of Graph that
xtap-watch uses. Every endpoint checks the application permission it needs against the
token's ``roles`` *and* the tenant's current consent (revocation takes effect at once,
unlike Entra where issued tokens live until they expire). Handlers are independent of
aiohttp so ``$batch`` can run its items through the same code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from sim.clock import iso_seconds, utcnow
from sim.odata import (
    FilterError,
    Node,
    evaluate,
    parse_datetime,
    parse_filter,
    uses_function_or_operator,
)
from sim.responses import GRAPH_JSON, RawBody, SimResponse, fault_code, graph_error
from sim.state import (
    GRAPH_APP_ID,
    USER_DEFAULT_SELECT,
    SimState,
    Tenant,
    guest_upn,
    normalise_access_review,
    normalise_user,
    stable_id,
)
from sim.tokens import TokenError, decode_jwt
from sim.traffic import Traffic

CONTEXT_ROOT = "https://graph.microsoft.com/v1.0/$metadata#"
GRAPH_AUDIENCES = {"https://graph.microsoft.com", "https://graph.microsoft.com/", GRAPH_APP_ID}

POLICY_READ = frozenset(
    {"Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess", "Policy.ReadWrite.All"}
)
AUDIT_READ = frozenset({"AuditLog.Read.All"})
USER_READ = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
INVITE = frozenset({"User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
REVIEW_READ = frozenset({"AccessReview.Read.All", "AccessReview.ReadWrite.All"})
REVIEW_WRITE = frozenset({"AccessReview.ReadWrite.All"})
MAIL_SEND = frozenset({"Mail.Send"})
TENANT_INFO = frozenset({"CrossTenantInformation.ReadBasic.All"})

USER_PROPERTIES = frozenset(
    {
        *USER_DEFAULT_SELECT,
        "userType",
        "accountEnabled",
        "createdDateTime",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "otherMails",
        "identities",
        "signInActivity",
        "companyName",
        "department",
    }
)
USER_FILTERABLE = (
    "id",
    "userPrincipalName",
    "mail",
    "userType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "displayName",
    "accountEnabled",
    "creationType",
    "createdDateTime",
    "givenName",
    "surname",
    "companyName",
)
AUDIT_FILTERABLE = (
    "activityDateTime",
    "activityDisplayName",
    "category",
    "correlationId",
    "id",
    "loggedByService",
    "result",
    "operationType",
    "initiatedBy/user/id",
    "initiatedBy/user/userPrincipalName",
    "initiatedBy/user/displayName",
    "initiatedBy/app/appId",
    "initiatedBy/app/displayName",
)
SIGNIN_FILTERABLE = (
    "createdDateTime",
    "id",
    "userId",
    "userPrincipalName",
    "userDisplayName",
    "appId",
    "appDisplayName",
    "ipAddress",
    "correlationId",
    "status/errorCode",
    "homeTenantId",
    "resourceTenantId",
    "crossTenantAccessType",
    "userType",
    "isInteractive",
    "conditionalAccessStatus",
)
REVIEW_FILTERABLE = ("displayName", "id", "status", "scope/query", "createdDateTime")
PARTNER_FILTERABLE = ("tenantId",)

MAX_BATCH = 20


@dataclass
class GraphRequest:
    method: str
    path: str  # below /v1.0, starts with "/", no query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any
    body_invalid: bool
    base_url: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    batch_id: str | None = None
    version: str = "v1.0"  # or "beta" (served under /beta)

    @property
    def client_request_id(self) -> str:
        return self.headers.get("client-request-id", self.request_id)

    def error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> SimResponse:
        return graph_error(
            status,
            code,
            message,
            request_id=self.request_id,
            client_request_id=self.client_request_id,
            headers=headers,
        )


@dataclass
class Principal:
    tenant: Tenant
    app_id: str
    roles: frozenset[str]
    claims: dict[str, Any]


class GraphHttpError(Exception):
    """Raised inside handlers to answer with a Graph error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


Handler = Callable[["GraphApi", GraphRequest, Principal, dict[str, str]], Awaitable[SimResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    permissions: frozenset[str] | None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> SimResponse:
    all_headers = {"Content-Type": GRAPH_JSON, "OData-Version": "4.0", "Cache-Control": "no-cache"}
    all_headers.update(headers or {})
    return SimResponse(status, body, all_headers)


# ---------------------------------------------------------------------------------------
# Paging helpers
# ---------------------------------------------------------------------------------------


def _encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return "RFNwdAoA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    if not token.startswith("RFNwdAoA"):
        raise GraphHttpError(400, "BadRequest", "Invalid $skiptoken value.")
    body = token[len("RFNwdAoA") :]
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphHttpError(400, "BadRequest", "Invalid $skiptoken value.") from exc
    if not isinstance(value, dict):
        raise GraphHttpError(400, "BadRequest", "Invalid $skiptoken value.")
    return value


def _top(req: GraphRequest, default: int | None, maximum: int) -> int | None:
    raw = req.query.get("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise GraphHttpError(
            400,
            "BadRequest",
            f"Invalid value '{raw}' for $top: it must be an integer between 1 and {maximum}.",
        )
    return int(raw)


def _next_link(req: GraphRequest, token: str) -> str:
    params = [(k, v) for k, v in req.query.items() if k.lower() != "$skiptoken"]
    params.append(("$skiptoken", token))
    query = urlencode(params, quote_via=quote, safe="$,'()*:/")
    return f"{req.base_url}/v1.0{req.path}?{query}"


def _parse_filter(
    req: GraphRequest, allowed: Iterable[str], code: str = "BadRequest"
) -> Node | None:
    text = req.query.get("$filter")
    if text is None:
        return None
    try:
        return parse_filter(text, allowed)
    except FilterError as exc:
        raise GraphHttpError(400, code, str(exc)) from exc


def _apply_filter(
    node: Node | None, items: Iterable[dict[str, Any]], code: str = "BadRequest"
) -> list[dict[str, Any]]:
    if node is None:
        return list(items)
    try:
        return [item for item in items if evaluate(node, item)]
    except FilterError as exc:
        raise GraphHttpError(400, code, str(exc)) from exc


def _log_sort_key(time_field: str) -> Callable[[dict[str, Any]], tuple[datetime, str]]:
    def key(item: dict[str, Any]) -> tuple[datetime, str]:
        return parse_datetime(str(item.get(time_field))), str(item.get("id"))

    return key


def _page_newest_first(
    req: GraphRequest, items: list[dict[str, Any]], time_field: str, default_top: int, max_top: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; keyset paging, so events arriving between pages are not repeated."""
    key = _log_sort_key(time_field)
    ordered = sorted(items, key=key, reverse=True)
    token = req.query.get("$skiptoken")
    if token:
        cursor = _decode_token(token)
        try:
            after = (parse_datetime(str(cursor["t"])), str(cursor["i"]))
        except (KeyError, ValueError) as exc:
            raise GraphHttpError(400, "BadRequest", "Invalid $skiptoken value.") from exc
        ordered = [item for item in ordered if key(item) < after]
    size = _top(req, default_top, max_top) or default_top
    page = ordered[:size]
    if len(ordered) > size:
        last = page[-1]
        return page, _next_link(req, _encode_token({"t": last[time_field], "i": last["id"]}))
    return page, None


def _page_offset(
    req: GraphRequest, items: list[dict[str, Any]], default_top: int | None, max_top: int
) -> tuple[list[dict[str, Any]], str | None]:
    offset = 0
    skip = req.query.get("$skip")
    if skip is not None:
        if not skip.isdigit():
            raise GraphHttpError(400, "BadRequest", f"Invalid value '{skip}' for $skip.")
        offset = int(skip)
    token = req.query.get("$skiptoken")
    if token:
        try:
            offset = int(_decode_token(token)["o"])
        except (KeyError, ValueError, TypeError) as exc:
            raise GraphHttpError(400, "BadRequest", "Invalid $skiptoken value.") from exc
    size = _top(req, default_top, max_top)
    if size is None:
        return items[offset:], None
    page = items[offset : offset + size]
    if offset + size < len(items):
        return page, _next_link(req, _encode_token({"o": offset + size}))
    return page, None


def _collection(
    context: str, page: list[dict[str, Any]], next_link: str | None, count: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": CONTEXT_ROOT + context}
    if count is not None:
        body["@odata.count"] = count
    if next_link:
        body["@odata.nextLink"] = next_link
    body["value"] = page
    return body


def _reject_unsupported_options(req: GraphRequest, supported: set[str]) -> None:
    for name in req.query:
        if name.startswith("$") and name.lower() not in supported:
            raise GraphHttpError(
                400,
                "BadRequest",
                f"Query option '{name}' is not supported by this simulated endpoint.",
            )


def _select(req: GraphRequest, known: frozenset[str] | None) -> list[str] | None:
    raw = req.query.get("$select")
    if raw is None:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    if not fields:
        raise GraphHttpError(400, "BadRequest", "Invalid $select: empty.")
    if known is not None:
        lookup = {k.lower(): k for k in known}
        resolved = []
        for name in fields:
            if name.lower() not in lookup:
                raise GraphHttpError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                )
            resolved.append(lookup[name.lower()])
        return resolved
    return fields


def _project(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return dict(item)
    out = {name: item.get(name) for name in fields}
    out.setdefault("id", item.get("id"))
    return out


# ---------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------


async def h_cross_tenant_policy(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    return _json(
        200,
        {
            "@odata.context": CONTEXT_ROOT + "policies/crossTenantAccessPolicy/$entity",
            "id": who.tenant.policy_object_id,
            "displayName": "CrossTenantAccessPolicy",
            "definition": [],
            "allowedCloudEndpoints": list(who.tenant.allowed_cloud_endpoints),
        },
    )


async def h_default_policy(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$select"})
    body = {"@odata.context": CONTEXT_ROOT + "policies/crossTenantAccessPolicy/default/$entity"}
    body.update(_project(who.tenant.default_policy, _select(req, None)))
    if "$select" in req.query:
        body.pop("id", None)
    return _json(200, body)


async def h_partners(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$select", "$filter", "$top", "$skiptoken"})
    node = _parse_filter(req, PARTNER_FILTERABLE)
    items = _apply_filter(node, sorted(who.tenant.partners.values(), key=lambda p: p["tenantId"]))
    # Server-side paging (Graph "Paging Microsoft Graph data"): a tenant with many partners
    # answers in pages linked by @odata.nextLink; clients must follow it to the end.
    page, next_link = _page_offset(req, items, api.page_size, 1000)
    fields = _select(req, None)
    return _json(
        200,
        _collection(
            "policies/crossTenantAccessPolicy/partners",
            [_partner_view(p, fields) for p in page],
            next_link,
        ),
    )


def _partner_view(partner: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    view = _project(partner, fields)
    if fields is not None and "id" not in fields:
        view.pop("id", None)
    return view


async def h_partner(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$select"})
    partner_id = match["id"].lower()
    partner = who.tenant.partners.get(partner_id)
    if partner is None:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{match['id']}' does not exist or one of its queried reference-property"
            " objects are not present.",
        )
    body = {"@odata.context": CONTEXT_ROOT + "policies/crossTenantAccessPolicy/partners/$entity"}
    body.update(_partner_view(partner, _select(req, None)))
    return _json(200, body)


async def h_authorization_policy(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    body = {"@odata.context": CONTEXT_ROOT + "policies/authorizationPolicy/$entity"}
    body.update(who.tenant.authorization_policy)
    return _json(200, body)


async def h_directory_audits(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$filter", "$top", "$skiptoken", "$select"})
    node = _parse_filter(req, AUDIT_FILTERABLE)
    items = _apply_filter(node, who.tenant.audits)
    page, next_link = _page_newest_first(req, items, "activityDateTime", api.page_size, 1000)
    fields = _select(req, None)
    return _json(
        200,
        _collection("auditLogs/directoryAudits", [_project(e, fields) for e in page], next_link),
    )


async def h_directory_audit(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    for event in who.tenant.audits:
        if event["id"] == match["id"]:
            body = {"@odata.context": CONTEXT_ROOT + "auditLogs/directoryAudits/$entity"}
            body.update(event)
            return _json(200, body)
    raise GraphHttpError(
        404, "Request_ResourceNotFound", f"Resource '{match['id']}' does not exist."
    )


NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
NON_PREMIUM_MESSAGE = "Neither tenant is B2C or tenant doesn't have premium license"


def _require_premium(who: Principal) -> None:
    """Sign-in logs through Graph need Entra ID P1/P2 in the tenant (403 otherwise)."""
    if not who.tenant.flags.get("premiumLicensed", True):
        raise GraphHttpError(403, NON_PREMIUM_CODE, NON_PREMIUM_MESSAGE)


async def h_sign_ins(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _require_premium(who)
    _reject_unsupported_options(req, {"$filter", "$top", "$skiptoken", "$select"})
    node = _parse_filter(req, SIGNIN_FILTERABLE)
    items = _apply_filter(node, who.tenant.sign_ins)
    page, next_link = _page_newest_first(req, items, "createdDateTime", api.page_size, 1000)
    fields = _select(req, None)
    return _json(
        200, _collection("auditLogs/signIns", [_project(e, fields) for e in page], next_link)
    )


async def h_sign_in(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    _require_premium(who)
    for record in who.tenant.sign_ins:
        if record["id"] == match["id"].lower():
            body = {"@odata.context": CONTEXT_ROOT + "auditLogs/signIns/$entity"}
            body.update(record)
            return _json(200, body)
    raise GraphHttpError(
        404, "Request_ResourceNotFound", f"Resource '{match['id']}' does not exist."
    )


_ADVANCED_OPERATORS = {"endswith": "endsWith", "ne": "ne", "not": "not"}


def _require_advanced(req: GraphRequest, node: Node | None) -> bool:
    """Graph's directory advanced queries: endsWith/ne/not and $count need eventual + $count."""
    eventual = req.headers.get("consistencylevel", "").lower() == "eventual"
    count = req.query.get("$count", "").lower() == "true"
    if "$count" in req.query and not eventual:
        raise GraphHttpError(
            400,
            "Request_UnsupportedQuery",
            "$count is only supported with the ConsistencyLevel:eventual header."
            " Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        )
    if node is not None:
        for op, label in _ADVANCED_OPERATORS.items():
            if uses_function_or_operator(node, {op}) and not (eventual and count):
                raise GraphHttpError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Operator '{label}' is not supported because the required parameters might"
                    " be missing. Try adding $count=true query parameter and"
                    " ConsistencyLevel:eventual header. Refer to"
                    " https://aka.ms/graph-docs/advanced-queries for more information",
                )
    return count and eventual


def _check_sign_in_activity(fields: list[str] | None, who: Principal) -> None:
    if fields and "signInActivity" in fields and "AuditLog.Read.All" not in who.roles:
        raise GraphHttpError(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation"
            " (signInActivity needs AuditLog.Read.All).",
        )


def _user_view(user: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    return _project(user, fields if fields is not None else list(USER_DEFAULT_SELECT))


def _users_context(fields: list[str] | None) -> str:
    return "users" if fields is None else "users(" + ",".join(fields) + ")"


async def h_users(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$filter", "$top", "$skiptoken", "$select", "$count"})
    node = _parse_filter(req, USER_FILTERABLE, code="Request_BadRequest")
    with_count = _require_advanced(req, node)
    fields = _select(req, USER_PROPERTIES)
    _check_sign_in_activity(fields, who)
    items = _apply_filter(node, who.tenant.users.values(), code="Request_BadRequest")
    page, next_link = _page_offset(req, items, api.page_size, 999)
    return _json(
        200,
        _collection(
            _users_context(fields),
            [_user_view(u, fields) for u in page],
            next_link,
            count=len(items) if with_count else None,
        ),
    )


def _find_user(tenant: Tenant, key: str) -> dict[str, Any]:
    user = tenant.find_user(key)
    if user is None:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property"
            " objects are not present.",
        )
    return user


async def h_user(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(req, {"$select"})
    user = _find_user(who.tenant, match["id"])
    fields = _select(req, USER_PROPERTIES)
    _check_sign_in_activity(fields, who)
    body = {"@odata.context": CONTEXT_ROOT + _users_context(fields) + "/$entity"}
    body.update(_user_view(user, fields))
    return _json(200, body)


async def h_send_mail(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    sender = who.tenant.find_user(match["id"])
    if sender is None:
        raise GraphHttpError(
            404, "ErrorInvalidUser", f"The requested user '{match['id']}' is invalid."
        )
    body = req.body
    if req.body_invalid or not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise GraphHttpError(
            400, "ErrorInvalidRequest", "The request body must contain a 'message' object."
        )
    message = body["message"]
    recipients = [
        *(message.get("toRecipients") or []),
        *(message.get("ccRecipients") or []),
        *(message.get("bccRecipients") or []),
    ]
    if not recipients:
        raise GraphHttpError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is required, but none were found.",
        )
    for recipient in recipients:
        address = (
            (recipient or {}).get("emailAddress", {}).get("address")
            if isinstance(recipient, dict)
            else None
        )
        if not isinstance(address, str) or "@" not in address:
            raise GraphHttpError(
                400, "ErrorInvalidRecipients", f"Invalid recipient: {recipient!r}."
            )
    content = message.get("body") or {}
    if content and str(content.get("contentType", "Text")).lower() not in {"text", "html"}:
        raise GraphHttpError(
            400, "ErrorInvalidRequest", "body.contentType must be 'Text' or 'HTML'."
        )
    api.state.mailbox.append(
        {
            "tenantId": who.tenant.id,
            "sender": sender["userPrincipalName"],
            "senderId": sender["id"],
            "appId": who.app_id,
            "receivedAt": iso_seconds(utcnow()),
            "message": message,
            "saveToSentItems": body.get("saveToSentItems", True),
            "requestId": req.request_id,
        }
    )
    return SimResponse(202, None, {"request-id": req.request_id})


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _redeem_url(tenant_id: str, user_id: str) -> str:
    ticket = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return (
        "https://login.microsoftonline.com/redeem?rd=https%3a%2f%2finvitations.microsoft.com"
        f"%2fredeem%2f%3ftenant%3d{tenant_id}%26user%3d{user_id}%26ticket%3d{ticket}%26ver%3d2.0"
    )


async def h_invitations(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    tenant = who.tenant
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "at": iso_seconds(utcnow()),
        "appId": who.app_id,
        "request": req.body,
        "requestId": req.request_id,
    }
    try:
        response = _invite(api, req, who, record)
    except GraphHttpError as exc:
        record.update(status=exc.status, errorCode=exc.code, errorMessage=exc.message)
        tenant.invitations.append(record)
        raise
    record["status"] = response.status
    tenant.invitations.append(record)
    return response


def _invite(
    api: GraphApi, req: GraphRequest, who: Principal, record: dict[str, Any]
) -> SimResponse:
    tenant = who.tenant
    body = req.body
    if req.body_invalid or not isinstance(body, dict):
        raise GraphHttpError(
            400,
            "BadRequest",
            "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
        )
    email = body.get("invitedUserEmailAddress")
    if not isinstance(email, str) or not email:
        raise GraphHttpError(400, "BadRequest", "The invitedUserEmailAddress property is required.")
    if not _EMAIL_RE.match(email):
        raise GraphHttpError(400, "BadRequest", f"The email address '{email}' is not valid.")
    redirect = body.get("inviteRedirectUrl")
    if not isinstance(redirect, str) or not redirect:
        raise GraphHttpError(400, "BadRequest", "The inviteRedirectUrl property is required.")
    if urlsplit(redirect).scheme not in {"http", "https"}:
        raise GraphHttpError(
            400, "BadRequest", f"The inviteRedirectUrl '{redirect}' is not a valid absolute URL."
        )
    for flag in ("sendInvitationMessage", "resetRedemption"):
        if flag in body and not isinstance(body[flag], bool):
            raise GraphHttpError(400, "BadRequest", f"The {flag} property must be a boolean.")
    if tenant.authorization_policy.get("allowInvitesFrom") == "none":
        raise GraphHttpError(
            403,
            "Authorization_RequestDenied",
            "Guest invitations not allowed for your company. Contact your company"
            " administrator for more details.",
        )
    from sim.directory import app_invite_refusal, convert_internal_user, is_external_account

    refusal = app_invite_refusal(tenant, who)
    if refusal is not None:
        raise GraphHttpError(403, "Authorization_RequestDenied", refusal)
    reset = bool(body.get("resetRedemption", False))
    now = utcnow()
    invited_user = body.get("invitedUser")
    invited_id = invited_user.get("id") if isinstance(invited_user, dict) else None
    named = tenant.users.get(invited_id.lower()) if isinstance(invited_id, str) else None
    if named is not None and not is_external_account(named):
        # An internal account named by invitedUser.id is converted to B2B, one way.
        invited_view = convert_internal_user(tenant, named, email, record, now)
        reset = False
        status = "PendingAcceptance"
    elif reset:
        user_id = invited_user.get("id") if isinstance(invited_user, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise GraphHttpError(
                400, "BadRequest", "invitedUser.id is required when resetRedemption is true."
            )
        user = tenant.users.get(user_id.lower())
        if user is None:
            raise GraphHttpError(
                400, "BadRequest", f"The invited user '{user_id}' was not found in this directory."
            )
        if tenant.directory_roles.get(user["id"]):
            raise GraphHttpError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        user["externalUserState"] = "PendingAcceptance"
        user["externalUserStateChangeDateTime"] = iso_seconds(now)
        if str(user.get("mail") or "").lower() != email.lower():
            user["mail"] = email
        record["invitedUserId"] = user["id"]
        record["resetRedemption"] = True
        invited_view = {"id": user["id"], "userPrincipalName": user["userPrincipalName"]}
        status = "PendingAcceptance"
    else:
        existing = next(
            (u for u in tenant.users.values() if str(u.get("mail") or "").lower() == email.lower()),
            None,
        )
        if existing is not None and existing.get("userType") != "Guest":
            raise GraphHttpError(
                400,
                "BadRequest",
                f"The invited user '{email}' already exists in this directory as a member.",
            )
        if existing is None:
            existing = normalise_user(
                {
                    "mail": email,
                    "userType": "Guest",
                    "displayName": body.get("invitedUserDisplayName") or email.split("@")[0],
                    "userPrincipalName": guest_upn(email, tenant),
                },
                tenant,
                now,
            )
            tenant.users[existing["id"]] = existing
        record["invitedUserId"] = existing["id"]
        record["resetRedemption"] = False
        invited_view = {"id": existing["id"]}
        status = (
            "Completed" if existing.get("externalUserState") == "Accepted" else "PendingAcceptance"
        )
    message_info = body.get("invitedUserMessageInfo") or {}
    response = {
        "@odata.context": CONTEXT_ROOT + "invitations/$entity",
        "id": record["id"],
        "inviteRedeemUrl": _redeem_url(tenant.id, invited_view["id"]),
        "invitedUserDisplayName": body.get("invitedUserDisplayName"),
        "invitedUserType": body.get("invitedUserType", "Guest"),
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": bool(body.get("sendInvitationMessage", False)),
        "resetRedemption": reset,
        "inviteRedirectUrl": redirect,
        "status": status,
        "invitedUserMessageInfo": {
            "messageLanguage": message_info.get("messageLanguage"),
            "customizedMessageBody": message_info.get("customizedMessageBody"),
            "ccRecipients": message_info.get("ccRecipients")
            or [{"emailAddress": {"name": None, "address": None}}],
        },
        "invitedUser": invited_view,
    }
    return _json(201, response, {"Location": f"{req.base_url}/v1.0/invitations/{record['id']}"})


async def h_review_definitions(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    _reject_unsupported_options(
        req, {"$filter", "$top", "$skiptoken", "$skip", "$select", "$count"}
    )
    node = _parse_filter(req, REVIEW_FILTERABLE)
    items = _apply_filter(node, who.tenant.access_reviews)
    page, next_link = _page_offset(req, items, api.page_size, 100)
    count = len(items) if req.query.get("$count", "").lower() == "true" else None
    fields = _select(req, None)
    return _json(
        200,
        _collection(
            "identityGovernance/accessReviews/definitions",
            [_project(d, fields) for d in page],
            next_link,
            count,
        ),
    )


async def h_review_definition(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    for definition in who.tenant.access_reviews:
        if definition["id"].lower() == match["id"].lower():
            body = {
                "@odata.context": CONTEXT_ROOT
                + "identityGovernance/accessReviews/definitions/$entity"
            }
            body.update(definition)
            return _json(200, body)
    raise GraphHttpError(
        404, "NotFound", f"The requested access review definition '{match['id']}' was not found."
    )


_SCOPE_TYPES = {
    "#microsoft.graph.accessReviewQueryScope",
    "#microsoft.graph.accessReviewInactiveUsersQueryScope",
    "#microsoft.graph.principalResourceMembershipsScope",
    "#microsoft.graph.accessReviewReviewerScope",
}


async def h_create_review_definition(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:
    tenant = who.tenant
    body = req.body
    if req.body_invalid or not isinstance(body, dict):
        raise GraphHttpError(400, "BadRequest", "The request body must be a JSON object.")
    display_name = body.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise GraphHttpError(400, "BadRequest", "The displayName property is required.")
    scope = body.get("scope")
    if (
        not isinstance(scope, dict)
        or not isinstance(scope.get("query"), str)
        or not scope.get("query")
    ):
        raise GraphHttpError(
            400, "BadRequest", "The scope property is required and must have a query."
        )
    scope_type = scope.get("@odata.type", "#microsoft.graph.accessReviewQueryScope")
    if scope_type not in _SCOPE_TYPES:
        raise GraphHttpError(400, "BadRequest", f"Unsupported scope type '{scope_type}'.")
    if "queryType" in scope and scope["queryType"] != "MicrosoftGraph":
        raise GraphHttpError(400, "BadRequest", "scope.queryType must be 'MicrosoftGraph'.")
    from sim.directory import SCOPE_DOCS, review_scope_problem

    problem = review_scope_problem(tenant, body)
    if problem is not None:
        raise GraphHttpError(400, "BadRequest", f"Invalid scope: {problem}. See {SCOPE_DOCS}.")
    for key in ("reviewers", "fallbackReviewers"):
        value = body.get(key, [])
        if not isinstance(value, list) or any(
            not isinstance(r, dict) or not r.get("query") for r in value
        ):
            raise GraphHttpError(
                400, "BadRequest", f"{key} must be a list of objects with a query."
            )
    settings = body.get("settings")
    if not isinstance(settings, dict):
        raise GraphHttpError(400, "BadRequest", "The settings property is required.")
    decision = settings.get("defaultDecision", "None")
    if decision not in {"None", "Approve", "Deny", "Recommendation"}:
        raise GraphHttpError(400, "BadRequest", f"Invalid defaultDecision '{decision}'.")
    if not tenant.flags.get("accessReviewsLicensed", True):
        raise GraphHttpError(
            403,
            "Forbidden",
            "The tenant does not have a valid license for this feature: access reviews require"
            " Microsoft Entra ID P2 or Microsoft Entra ID Governance.",
        )
    if (
        scope_type == "#microsoft.graph.accessReviewInactiveUsersQueryScope"
        and not tenant.flags.get("idGovernanceLicensed", True)
    ):
        raise GraphHttpError(
            403,
            "Forbidden",
            "Reviews of inactive users require a Microsoft Entra ID Governance license.",
        )
    app = api.state.applications.get(who.app_id) or api.state.managed_identities.get(who.app_id)
    created_by = {
        "id": stable_id("sp", tenant.id, who.app_id),
        "displayName": getattr(app, "display_name", None),
        "userPrincipalName": None,
    }
    definition = normalise_access_review(json.loads(json.dumps(body)), tenant, created_by, utcnow())
    definition["id"] = str(uuid.uuid4())
    tenant.access_reviews.append(definition)
    response = {
        "@odata.context": CONTEXT_ROOT + "identityGovernance/accessReviews/definitions/$entity"
    }
    response.update(definition)
    return _json(201, response)


def _tenant_information(tenant: Tenant) -> dict[str, Any]:
    return {
        "@odata.context": CONTEXT_ROOT + "microsoft.graph.tenantInformation",
        "tenantId": tenant.id,
        "federationBrandName": tenant.federation_brand_name,
        "displayName": tenant.display_name,
        "defaultDomainName": tenant.default_domain,
    }


def _function_argument(raw: str, name: str) -> str:
    value = raw.strip()
    if len(value) < 2 or value[0] != "'" or value[-1] != "'":
        raise GraphHttpError(
            400, "BadRequest", f"Invalid value for parameter '{name}': expected a quoted string."
        )
    inner = value[1:-1]
    if re.search(r"(?<!')'(?!')", inner.replace("''", "")):
        raise GraphHttpError(400, "BadRequest", f"Invalid value for parameter '{name}'.")
    return inner.replace("''", "'")


async def h_find_by_domain(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    domain = _function_argument(match["arg"], "domainName").lower()
    tenant_id = api.state.domain_index.get(domain)
    if tenant_id is None:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Tenant information for domain '{domain}' was not found.",
        )
    return _json(200, _tenant_information(api.state.tenants[tenant_id]))


async def h_find_by_tenant_id(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:
    tenant_id = _function_argument(match["arg"], "tenantId").lower()
    tenant = api.state.tenants.get(tenant_id)
    if tenant is None:
        raise GraphHttpError(
            404, "Request_ResourceNotFound", f"Tenant '{tenant_id}' was not found."
        )
    return _json(200, _tenant_information(tenant))


def _r(method: str, pattern: str, handler: Handler, permissions: frozenset[str] | None) -> Route:
    return Route(method, re.compile("^" + pattern + "/?$", re.IGNORECASE), handler, permissions)


_GUIDISH = r"(?P<id>[^/()]+)"

ROUTES: tuple[Route, ...] = (
    _r("GET", r"/policies/crossTenantAccessPolicy", h_cross_tenant_policy, POLICY_READ),
    _r("GET", r"/policies/crossTenantAccessPolicy/default", h_default_policy, POLICY_READ),
    _r("GET", r"/policies/crossTenantAccessPolicy/partners", h_partners, POLICY_READ),
    _r("GET", r"/policies/crossTenantAccessPolicy/partners/" + _GUIDISH, h_partner, POLICY_READ),
    _r(
        "GET",
        r"/policies/authorizationPolicy(?:/authorizationPolicy)?",
        h_authorization_policy,
        POLICY_READ,
    ),
    _r("GET", r"/auditLogs/directoryAudits", h_directory_audits, AUDIT_READ),
    _r("GET", r"/auditLogs/directoryAudits/" + _GUIDISH, h_directory_audit, AUDIT_READ),
    _r("GET", r"/auditLogs/signIns", h_sign_ins, AUDIT_READ),
    _r("GET", r"/auditLogs/signIns/" + _GUIDISH, h_sign_in, AUDIT_READ),
    _r("GET", r"/users", h_users, USER_READ),
    _r("GET", r"/users/" + _GUIDISH, h_user, USER_READ),
    _r("POST", r"/users/" + _GUIDISH + r"/sendMail", h_send_mail, MAIL_SEND),
    _r("POST", r"/invitations", h_invitations, INVITE),
    _r("GET", r"/identityGovernance/accessReviews/definitions", h_review_definitions, REVIEW_READ),
    _r(
        "POST",
        r"/identityGovernance/accessReviews/definitions",
        h_create_review_definition,
        REVIEW_WRITE,
    ),
    _r(
        "GET",
        r"/identityGovernance/accessReviews/definitions/" + _GUIDISH,
        h_review_definition,
        REVIEW_READ,
    ),
    _r(
        "GET",
        r"/tenantRelationships/(?:microsoft\.graph\.)?findTenantInformationByDomainName\(domainName=(?P<arg>.*)\)",
        h_find_by_domain,
        TENANT_INFO,
    ),
    _r(
        "GET",
        r"/tenantRelationships/(?:microsoft\.graph\.)?findTenantInformationByTenantId\(tenantId=(?P<arg>.*)\)",
        h_find_by_tenant_id,
        TENANT_INFO,
    ),
)


_VERSIONED: dict[str, tuple[Route, ...]] = {}


def _routes(version: str) -> tuple[Route, ...]:
    """v1.0 routes (this module's and ``sim.directory``'s); beta adds the beta-only ones."""
    if not _VERSIONED:
        from sim.directory import BETA_ROUTES, DIRECTORY_ROUTES

        _VERSIONED["v1.0"] = ROUTES + DIRECTORY_ROUTES
        _VERSIONED["beta"] = ROUTES + DIRECTORY_ROUTES + BETA_ROUTES
    return _VERSIONED[version]


# ---------------------------------------------------------------------------------------
# The API object
# ---------------------------------------------------------------------------------------


class GraphApi:
    """Authenticates, authorises and routes one Graph request (top level or a batch item)."""

    def __init__(self, state: SimState, traffic: Traffic, page_size: int = 100) -> None:
        self.state = state
        self.traffic = traffic
        self.page_size = page_size

    def authenticate(self, req: GraphRequest, audiences: set[str] | None = None) -> Principal:
        header = req.headers.get("authorization", "")
        if not header:
            raise GraphHttpError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if not header.lower().startswith("bearer "):
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure: not a bearer token.",
            )
        try:
            claims = decode_jwt(header[7:].strip())
        except TokenError as exc:
            raise GraphHttpError(401, "InvalidAuthenticationToken", str(exc)) from exc
        if int(claims.get("exp", 0)) < time.time():
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if str(claims.get("aud", "")) not in (audiences or GRAPH_AUDIENCES):
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        tenant = self.state.tenants.get(str(claims.get("tid", "")).lower())
        if tenant is None:
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid tenant.",
            )
        app_id = str(claims.get("appid", "")).lower()
        granted = set(self.state.granted_roles(tenant.id, app_id))
        roles = frozenset(r for r in claims.get("roles", []) if r in granted)
        return Principal(tenant, app_id, roles, claims)

    async def handle(self, req: GraphRequest) -> SimResponse:
        try:
            if req.path.rstrip("/").lower() == "/$batch":
                if req.batch_id is not None:
                    raise GraphHttpError(
                        400, "BadRequest", "A $batch request cannot be nested in a batch."
                    )
                if req.method != "POST":
                    raise GraphHttpError(
                        405,
                        "Request_BadRequest",
                        "Specified HTTP method is not allowed for the request target.",
                    )
                principal = self.authenticate(req)
                return await self._batch(req, principal)
            route, match = self._route(req)
            principal = self.authenticate(req)
            if route.permissions is not None and not (principal.roles & route.permissions):
                if req.path.startswith("/auditLogs/"):
                    # The reports service words its refusal its own way.
                    raise GraphHttpError(
                        403,
                        "Authentication_MSGraphPermissionMissing",
                        "Calling principal does not have required MSGraph permissions"
                        " AuditLog.Read.All",
                    )
                raise GraphHttpError(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            return await route.handler(self, req, principal, match)
        except GraphHttpError as exc:
            return req.error(exc.status, exc.code, exc.message, exc.headers)

    def _route(self, req: GraphRequest) -> tuple[Route, dict[str, str]]:
        method_mismatch = False
        for route in _routes(req.version):
            match = route.pattern.match(req.path)
            if match is None:
                continue
            if route.method != req.method:
                method_mismatch = True
                continue
            return route, {k: v for k, v in match.groupdict().items() if v is not None}
        if method_mismatch:
            raise GraphHttpError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segment = req.path.strip("/").split("/")[-1] if req.path.strip("/") else ""
        raise GraphHttpError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    # ------------------------------------------------------------------ $batch
    async def _batch(self, req: GraphRequest, principal: Principal) -> SimResponse:
        body = req.body
        if (
            req.body_invalid
            or not isinstance(body, dict)
            or not isinstance(body.get("requests"), list)
        ):
            raise GraphHttpError(400, "BadRequest", "Invalid batch payload format.")
        items = body["requests"]
        if not items:
            raise GraphHttpError(
                400, "BadRequest", "The batch request must contain at least one request."
            )
        if len(items) > MAX_BATCH:
            raise GraphHttpError(
                400, "BadRequest", f"The number of requests in a batch must not exceed {MAX_BATCH}."
            )
        ids: list[str] = []
        for item in items:
            if not isinstance(item, dict):
                raise GraphHttpError(
                    400, "BadRequest", "Invalid batch payload format: each request is an object."
                )
            item_id = item.get("id")
            if not isinstance(item_id, str) or not item_id:
                raise GraphHttpError(400, "BadRequest", "Each batch request needs a string 'id'.")
            if item_id in ids:
                raise GraphHttpError(
                    400, "BadRequest", f"Batch request ids must be unique: '{item_id}' repeats."
                )
            if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
                raise GraphHttpError(
                    400, "BadRequest", f"Batch request '{item_id}' needs 'method' and 'url'."
                )
            ids.append(item_id)
        for item in items:
            for dep in item.get("dependsOn") or []:
                if dep not in ids or dep == item["id"]:
                    raise GraphHttpError(
                        400,
                        "BadRequest",
                        f"Batch request '{item['id']}' depends on unknown request '{dep}'.",
                    )
        results: dict[str, asyncio.Future[SimResponse]] = {
            item["id"]: asyncio.get_running_loop().create_future() for item in items
        }

        async def run(item: dict[str, Any]) -> None:
            deps = item.get("dependsOn") or []
            try:
                failed = []
                for dep in deps:
                    outcome = await results[dep]
                    if outcome.status >= 400:
                        failed.append(dep)
                if failed:
                    outcome = graph_error(
                        424,
                        "FailedDependency",
                        f"The request depends on request(s) {', '.join(failed)} which failed.",
                    )
                else:
                    outcome = await self._batch_item(req, item)
            except Exception as exc:  # a broken item must not hang its dependants
                outcome = graph_error(500, "InternalServerError", f"Simulator error: {exc}")
            results[item["id"]].set_result(outcome)

        await asyncio.gather(*(run(item) for item in items))
        responses = []
        spliced: dict[str, str] = {}  # placeholder -> raw JSON text of an item's body
        # "Individual responses might appear in a different order than the requests. The
        # id property can be used to correlate" (JSON batching): answered in reverse order,
        # so a caller that pairs responses with requests by position fails here too.
        for item in reversed(items):
            outcome = results[item["id"]].result()
            entry: dict[str, Any] = {
                "id": item["id"],
                "status": outcome.status,
                "headers": outcome.headers,
            }
            if isinstance(outcome.body, RawBody):
                ctype = str(outcome.headers.get("Content-Type", ""))
                if "json" in ctype:
                    # A batch item's JSON body is embedded as JSON, byte for byte (so a
                    # malformed or ambiguous body reaches the caller as the service sent it).
                    placeholder = f"__raw_body_{uuid.uuid4().hex}__"
                    spliced[json.dumps(placeholder)] = outcome.body.text
                    entry["body"] = placeholder
                else:
                    # "JSON batching": a body that is not JSON is base64-encoded in the batch.
                    entry["body"] = base64.b64encode(outcome.body.text.encode()).decode()
            elif outcome.body is not None:
                entry["body"] = outcome.body
            responses.append(entry)
        if spliced:
            text = json.dumps({"responses": responses})
            for placeholder, raw in spliced.items():
                text = text.replace(placeholder, raw)
            return SimResponse(200, RawBody(text), {"Content-Type": "application/json"})
        return _json(200, {"responses": responses}, {"Content-Type": "application/json"})

    async def _batch_item(self, outer: GraphRequest, item: dict[str, Any]) -> SimResponse:
        started = time.monotonic()
        url = item["url"]
        method = item["method"].upper()
        if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
            response = outer.error(
                400,
                "BadRequest",
                "Batch request URLs must be relative to the service root, e.g. '/users'.",
            )
            self._record_item(outer, item, method, url, "", None, response.status, started)
            return response
        if not url.startswith("/"):
            url = "/" + url
        path, _, raw_query = url.partition("?")
        if path.lower().startswith("/v1.0/"):
            response = outer.error(
                400,
                "BadRequest",
                "Batch request URLs are relative to /v1.0; drop the version segment.",
            )
            self._record_item(outer, item, method, path, raw_query, None, response.status, started)
            return response
        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        headers["authorization"] = outer.headers.get("authorization", "")
        sub = GraphRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=headers,
            body=item.get("body"),
            body_invalid=False,
            base_url=outer.base_url,
            batch_id=item["id"],
        )
        tenant_id = None
        app_id = None
        try:
            claims = decode_jwt(outer.headers.get("authorization", "")[7:].strip())
            tenant_id = str(claims.get("tid", "")).lower() or None
            app_id = str(claims.get("appid", "")).lower() or None
        except TokenError:
            pass
        target = "/v1.0" + path + ("?" + raw_query if raw_query else "")
        decision = self.traffic.decide_faults(method, target, tenant_id, allow_drop=False)
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision.rule is not None and decision.rule.status is not None:
            response = fault_response(
                decision.rule.status,
                decision.rule.retry_after,
                decision.rule.body,
                sub,
                decision.rule.content_type,
            )
        else:
            retry_after = self.traffic.check_throttles(method, target, tenant_id, app_id)
            if retry_after is not None:
                response = throttled_response(retry_after, sub)
            else:
                response = await self.handle(sub)
        self._record_item(
            outer, item, method, path, raw_query, (tenant_id, app_id), response.status, started
        )
        return response

    def _record_item(
        self,
        outer: GraphRequest,
        item: dict[str, Any],
        method: str,
        path: str,
        raw_query: str,
        who: tuple[str | None, str | None] | None,
        status: int,
        started: float,
    ) -> None:
        tenant_id, app_id = who or (None, None)
        self.traffic.record(
            method=method,
            path="/v1.0" + path if path.startswith("/") else path,
            query=raw_query,
            tenant_id=tenant_id,
            app_id=app_id,
            status=status,
            duration_ms=(time.monotonic() - started) * 1000,
            batch_id=str(item.get("id")),
        )


def fault_response(
    status: int,
    retry_after: float | None,
    body: Any,
    req: GraphRequest | None = None,
    content_type: str | None = None,
) -> SimResponse:
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(
            int(retry_after) if float(retry_after).is_integer() else retry_after
        )
    if isinstance(body, str):
        # A body that is not Graph's JSON (a gateway's HTML page by default): sent raw.
        ctype = content_type or "text/html"
        return SimResponse(status, RawBody(body), {"Content-Type": ctype, **headers})
    if body is not None:
        return SimResponse(status, body, {"Content-Type": "application/json", **headers})
    code, message = fault_code(status)
    if req is not None:
        return req.error(status, code, message, headers)
    return graph_error(status, code, message, headers=headers)


def throttled_response(retry_after: int, req: GraphRequest | None = None) -> SimResponse:
    return fault_response(429, float(retry_after), None, req)

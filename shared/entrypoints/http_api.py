"""The support HTTP API (``/api/v1/...``): plain request values in, ``(status, headers, body)`` out.

Order of checks on every authenticated route, cheapest and least revealing first:

1. ``X-MS-CLIENT-PRINCIPAL`` must decode to a caller (else 401), from the vendor tenant,
   holding the app role ``XTAP_API_ROLE`` (else 403; ``GET /api/v1/report`` also admits
   ``XTAP_REPORT_ROLE``, see ``http_report.operation_roles``) — App Service Authentication
   validated the token in front of us; this is the authorisation the function owns. In
   Azure, a header arriving while App Service Authentication is off could be forged:
   then every authenticated route answers 503 (fail closed);
2. a per-caller token bucket (30 requests a minute by default; 429 + ``Retry-After``);
3. the body: at most :data:`MAX_BODY_BYTES` (413), ``application/json`` (415), strict
   UTF-8 JSON without duplicate keys (400 naming ``body``), then field validation (400
   naming the field). Only then is Graph or storage touched.

``GET /api/v1/health`` is anonymous and says only "ok" or "unavailable". Bad input is
never a 500; a Graph or storage outage is a 502/503, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import azure.functions as func

    from shared.bootstrap import App
    from shared.domain.principal import ClientPrincipal

log = logging.getLogger("xtap.api")

MAX_BODY_BYTES = 16 * 1024
PRINCIPAL_HEADER = "x-ms-client-principal"
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "schemas" / "openapi.json"
API_PREFIX = "/api/v1"

JSON_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="xtap-watch"'}

# operation → the one HTTP method it answers
OPERATIONS = {
    "create_reinvite": "POST",
    "get_reinvite": "GET",
    "get_posture": "GET",
    "ensure_access_review": "POST",
    "get_access_review": "GET",
    "health": "GET",
    "openapi": "GET",
    "get_report": "GET",
    "whatif": "POST",
}


@dataclass(frozen=True)
class RawBody:
    """A body sent as is (the HTML report), not as JSON."""

    content: bytes
    media_type: str


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str] | None = None

    def as_tuple(self) -> tuple[int, dict[str, str], Any]:
        base = JSON_HEADERS
        if isinstance(self.body, RawBody):
            base = {"Content-Type": f"{self.body.media_type}; charset=utf-8"}
        return self.status, {**base, **(self.headers or {})}, self.body


def _error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return ApiResponse(status, {"error": error}, headers)


class TokenBucketLimiter:
    """Per-key token buckets, in process (each Functions instance limits on its own)."""

    def __init__(
        self,
        capacity: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.capacity = capacity
        self.rate = capacity / per_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None if allowed; else seconds until the next token."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.pop(key, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)  # least recently seen caller
            return None if allowed else (1.0 - tokens) / self.rate


DEFAULT_RATE_LIMIT = (30, 60.0)
_limiter = TokenBucketLimiter(*DEFAULT_RATE_LIMIT)


def set_rate_limit(capacity: int, per_seconds: float) -> None:
    """Replace the per-caller limit (tests and benchmarks; production keeps the default)."""
    global _limiter
    _limiter = TokenBucketLimiter(capacity, per_seconds)


# ------------------------------------------------------------------------- helpers
class BadBody(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadBody(f"duplicate key {key[:64]!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise BadBody(f"{name} is not JSON")


def decode_json_body(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("is not UTF-8") from None
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except BadBody:
        raise
    except RecursionError:
        raise BadBody("is nested too deeply") from None
    except ValueError as exc:
        raise BadBody(f"is not valid JSON ({str(exc).split(':')[0]})") from None


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media, *params = [p.strip().lower() for p in content_type.split(";")]
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


def status_url(app: App, job_id: str) -> str:
    base = app.settings.public_api_url or ""
    return f"{base}{API_PREFIX}/reinvites/{job_id}"


def _now() -> datetime:
    return datetime.now(UTC)


async def _app() -> App:
    from dataclasses import replace

    from shared.adapters.storage import INTERACTIVE
    from shared.bootstrap import get_app

    app = await get_app()
    # A caller is waiting: storage calls fail fast (503) instead of retrying like background
    # work. Same clients and pools, other per-call bounds.
    return replace(
        app, tables=app.tables.with_policy(INTERACTIVE), queues=app.queues.with_policy(INTERACTIVE)
    )


def _openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


# ---------------------------------------------------------------------- operations
async def _create_reinvite(
    principal: ClientPrincipal, headers: Mapping[str, str], body: bytes
) -> ApiResponse:
    from shared.domain.reinvite import RequestInvalid, parse_reinvite_request, requester_address
    from shared.services.reinvites import job_view, request_reinvite

    if len(body) > MAX_BODY_BYTES:
        return _error(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not _is_json_media_type(headers.get("content-type")):
        return _error(415, "unsupported_media_type", "send application/json (UTF-8)")
    try:
        raw = decode_json_body(body)
    except BadBody as exc:
        return _error(400, "invalid_request", f"body {exc}", field="body")
    try:
        request = parse_reinvite_request(raw)
    except RequestInvalid as exc:
        return _error(400, "invalid_request", exc.message, field=exc.field)
    app = await _app()
    outcome = await request_reinvite(
        app, request, principal.display, _now(), requester_email=requester_address(principal)
    )
    url = status_url(app, outcome.job.job_id)
    view = job_view(outcome.job, url)
    body_out = {
        "jobId": outcome.job.job_id,
        "state": outcome.job.state.value,
        "statusUrl": url,
        "existing": outcome.existing,
        "job": view,
    }
    return ApiResponse(202, body_out, {"Location": url})


async def _get_reinvite(route_params: Mapping[str, str]) -> ApiResponse:
    from shared.domain.reinvite import is_guid
    from shared.services.reinvites import get_job, job_view

    job_id = route_params.get("jobId", "")
    if not is_guid(job_id):
        return _error(400, "invalid_request", "must be a job ID (GUID)", field="jobId")
    app = await _app()
    job = await get_job(app, job_id.lower())
    if job is None:
        return _error(404, "not_found", "no such re-invite job")
    return ApiResponse(200, job_view(job, status_url(app, job.job_id)))


async def _get_posture(route_params: Mapping[str, str]) -> ApiResponse:
    from shared.adapters.repositories import ClientRegistry, PostureStore
    from shared.domain.reinvite import is_guid

    tenant_id = route_params.get("tenantId", "")
    if not is_guid(tenant_id):
        return _error(400, "invalid_request", "must be a tenant ID (GUID)", field="tenantId")
    tenant_id = tenant_id.lower()
    app = await _app()
    posture = await PostureStore(app.tables).get(tenant_id)
    if posture is None:
        known = await ClientRegistry(app.tables).get(tenant_id) is not None
        message = "not checked yet" if known else "not a registered client"
        return _error(404, "not_found", message)
    return ApiResponse(200, {"tenantId": tenant_id, **posture})


def review_status_url(app: App, job_id: str) -> str:
    base = app.settings.public_api_url or ""
    return f"{base}{API_PREFIX}/access-reviews/{job_id}"


async def _ensure_access_review(
    principal: ClientPrincipal, route_params: Mapping[str, str]
) -> ApiResponse:
    """Queue "ensure the client's guest access review" (idempotent: never a duplicate)."""
    from shared.domain.reinvite import is_guid
    from shared.services.access_reviews import (
        ClientNotRegistered,
        NoReviewers,
        request_access_review,
        review_job_view,
    )

    tenant_id = route_params.get("tenantId", "")
    if not is_guid(tenant_id):
        return _error(400, "invalid_request", "must be a tenant ID (GUID)", field="tenantId")
    app = await _app()
    try:
        job = await request_access_review(app, tenant_id.lower(), principal.display, _now())
    except ClientNotRegistered:
        return _error(404, "not_found", "not a registered client")
    except NoReviewers as exc:
        # The request is fine; the app is configured without reviewers.
        return _error(409, "access_reviews_not_configured", str(exc))
    url = review_status_url(app, job.job_id)
    body = {"jobId": job.job_id, "state": job.state.value, "statusUrl": url}
    return ApiResponse(202, body | {"job": review_job_view(job)}, {"Location": url})


async def _get_access_review(route_params: Mapping[str, str]) -> ApiResponse:
    from shared.adapters.job_ledger import JobLedger
    from shared.services.access_reviews import is_review_job_id, review_job_view

    job_id = route_params.get("jobId", "")
    if not is_review_job_id(job_id):
        return _error(400, "invalid_request", "must be an access-review job ID", field="jobId")
    app = await _app()
    job = await JobLedger(app.tables).get_access_review(job_id.lower())
    if job is None:
        return _error(404, "not_found", "no such access-review job")
    return ApiResponse(200, review_job_view(job))


async def _health() -> ApiResponse:
    from shared.services.health import storage_healthy

    try:
        app = await _app()
    except Exception:
        log.exception("health check failed")
        return ApiResponse(503, {"status": "unavailable"})
    if not await storage_healthy(app):
        return ApiResponse(503, {"status": "unavailable"}, {"Retry-After": "5"})
    # Alert channels that cannot work (e.g. an unresolved Key Vault reference): the app
    # runs and alerts on the other channel, and says so here.
    problems = dict(app.settings.channel_problems)
    if problems:
        return ApiResponse(200, {"status": "degraded", "channels": {
            route: f"unavailable: {why}" for route, why in problems.items()}})
    return ApiResponse(200, {"status": "ok"})


def easy_auth_missing(env: Mapping[str, str]) -> bool:
    """In Azure, a principal header is only trustworthy behind App Service Authentication.

    App Service sets ``WEBSITE_SITE_NAME`` on every app and ``WEBSITE_AUTH_ENABLED=True``
    when Authentication is on (Microsoft.Identity.Web checks the same variable). Without
    it anyone could send a forged header, so the API fails closed. Locally (no
    ``WEBSITE_SITE_NAME``) the runner or a test injects the header itself.
    """
    if not env.get("WEBSITE_SITE_NAME"):
        return False
    return env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() != "true"


def authorise(
    headers: Mapping[str, str], settings: Any, roles: tuple[str, ...] | None = None
) -> ClientPrincipal | ApiResponse:
    """The caller, or the 401/403 response to send instead (``roles``: any one of them;
    default the support role ``XTAP_API_ROLE``)."""
    from shared.domain.principal import PrincipalError, parse_client_principal

    try:
        principal = parse_client_principal(
            headers.get(PRINCIPAL_HEADER), expected_tenant_id=settings.vendor_tenant_id
        )
    except PrincipalError as exc:
        return _error(401, "unauthenticated", str(exc), headers=CHALLENGE)
    wanted = roles or (settings.api_role,)
    if not any(principal.has_role(role) for role in wanted):
        needed = " or ".join(wanted)
        log.warning("caller %s lacks role %s", principal.display, needed)
        return _error(403, "forbidden", f"the caller needs the app role {needed}")
    return principal


async def handle(
    operation: str,
    method: str,
    *,
    route_params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], Any]:
    """Answer one API request; never raises for bad input."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    params = dict(route_params or {})
    try:
        return (await _dispatch(operation, method.upper(), params, lowered, body)).as_tuple()
    except Exception as exc:
        return _outage(exc).as_tuple()


async def _dispatch(
    operation: str, method: str, params: dict[str, str], headers: dict[str, str], body: bytes
) -> ApiResponse:
    from shared.domain.principal import PrincipalError, parse_client_principal

    if operation not in OPERATIONS:
        return _error(404, "not_found", "no such operation")
    allowed = OPERATIONS[operation]
    if method != allowed:
        return _error(405, "method_not_allowed", f"use {allowed}", headers={"Allow": allowed})
    if operation == "health":
        return await _health()
    # Refuse anonymous callers before building anything (no storage, no Graph).
    try:
        parse_client_principal(headers.get(PRINCIPAL_HEADER))
    except PrincipalError as exc:
        return _error(401, "unauthenticated", str(exc), headers=CHALLENGE)
    if easy_auth_missing(os.environ):
        log.error("X-MS-CLIENT-PRINCIPAL received but App Service Authentication is off")
        return _error(
            503,
            "authentication_not_configured",
            "App Service Authentication is not enabled for this app; refusing to trust "
            "the principal header",
        )
    settings = (await _app()).settings
    from shared.entrypoints.http_report import operation_roles

    checked = authorise(headers, settings, operation_roles(operation, settings))
    if isinstance(checked, ApiResponse):
        return checked
    principal = checked
    wait = _limiter.take(principal.caller_id)
    if wait is not None:
        return _error(
            429,
            "rate_limited",
            "too many requests from this caller",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    if operation == "create_reinvite":
        return await _create_reinvite(principal, headers, body)
    if operation == "get_reinvite":
        return await _get_reinvite(params)
    if operation == "get_posture":
        return await _get_posture(params)
    if operation == "ensure_access_review":
        return await _ensure_access_review(principal, params)
    if operation == "get_access_review":
        return await _get_access_review(params)
    if operation in ("get_report", "whatif"):
        from shared.entrypoints import http_report

        if operation == "get_report":
            return await http_report.get_report(principal, headers)
        return await http_report.post_whatif(principal, headers, body)
    return ApiResponse(200, _openapi_document())


def _outage(exc: Exception) -> ApiResponse:
    """Graph and storage failures, and refusals raised by the services."""
    from shared.adapters.graph import BAD_SHAPE, GraphError
    from shared.services.reinvites import ReinviteRefused

    if isinstance(exc, ReinviteRefused):
        return _error(exc.status, exc.code, exc.message, field=exc.field)
    if isinstance(exc, GraphError):
        log.warning("Graph failure behind the API: %s", exc)
        if exc.code == BAD_SHAPE:  # an answer that is not Graph's: a bad gateway, not "busy"
            return _error(
                502, "graph_bad_answer", "Microsoft Graph answered in an unexpected shape"
            )
        if exc.transient:
            retry = str(int(exc.retry_after or 5))
            return _error(
                503,
                "graph_unavailable",
                "Microsoft Graph is busy; retry",
                headers={"Retry-After": retry},
            )
        return _error(502, "graph_error", f"Microsoft Graph answered {exc.status} {exc.code}")
    from azure.core.exceptions import AzureError

    if isinstance(exc, AzureError):
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        log.warning("storage failure behind the API: %s", type(exc).__name__)
        timed_out = isinstance(exc, ServiceRequestError | ServiceResponseError)
        return _error(
            503,
            "storage_unavailable",
            "Azure Storage could not be reached or did not answer in time; retry in a few seconds"
            if timed_out
            else "Azure Storage refused or failed the request; retry in a few seconds",
            headers={"Retry-After": "5"},
        )
    log.exception("unexpected error in the API", exc_info=exc)
    return _error(500, "internal_error", "internal error")


# ----------------------------------------------------------- Functions binding glue
async def respond(operation: str, req: func.HttpRequest) -> func.HttpResponse:
    """Translate a Functions HTTP request, answer it, translate back."""
    import azure.functions as func

    status, headers, body = await handle(
        operation,
        req.method,
        route_params=dict(req.route_params or {}),
        headers=dict(req.headers.items()),
        body=req.get_body() or b"",
    )
    if isinstance(body, RawBody):
        return func.HttpResponse(
            body=body.content,
            status_code=status,
            headers=headers,
            mimetype=body.media_type,
            charset="utf-8",
        )
    return func.HttpResponse(
        body=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers=headers,
        mimetype="application/json",
        charset="utf-8",
    )

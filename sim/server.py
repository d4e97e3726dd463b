"""aiohttp application of the Graph simulator (a TEST DOUBLE of Microsoft Graph, Entra ID,
Log Analytics and a Teams Workflows webhook). One TLS port serves all of it:

* ``/{tenant}/oauth2/v2.0/token``, ``/{tenant}/v2.0/.well-known/openid-configuration``,
  ``/msi/token`` — tokens (``sim.tokens``)
* ``/v1.0/...`` — Microsoft Graph (``sim.graph``)
* ``/loganalytics/v1/workspaces/{id}/query`` — Log Analytics (``sim.loganalytics``)
* ``/webhooks/teams/{name}`` — Teams Workflows webhook receiver
* ``/_sim/...`` — the control API used by tests (not subject to faults, latency or logging)
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from sim.clock import utcnow
from sim.graph import GraphApi, GraphHttpError, GraphRequest, fault_response, throttled_response
from sim.kql import KqlError
from sim.loganalytics import la_error, run_query, semantic_error
from sim.responses import RawBody, SimResponse
from sim.state import ScenarioError, SimState
from sim.tokens import (
    issue_client_credentials_token,
    managed_identity_token,
    openid_configuration,
    peek_identity,
)
from sim.traffic import Traffic
from sim.workflows import WorkflowsWebhooks

STATE: web.AppKey[SimState] = web.AppKey("state", SimState)
TRAFFIC: web.AppKey[Traffic] = web.AppKey("traffic", Traffic)
GRAPH: web.AppKey[GraphApi] = web.AppKey("graph", GraphApi)

LOG_ANALYTICS_AUDIENCES = {"https://api.loganalytics.io", "https://api.loganalytics.azure.com"}


class DropConnection(Exception):
    """Close the socket without answering (an injected network failure)."""


def _to_web(response: SimResponse) -> web.Response:
    headers = dict(response.headers)
    if response.body is None:
        headers.pop("Content-Type", None)
        return web.Response(status=response.status, headers=headers)
    if isinstance(response.body, RawBody):
        return web.Response(
            status=response.status, body=response.body.text.encode(), headers=headers
        )
    payload = json.dumps(response.body).encode()
    headers.setdefault("Content-Type", "application/json")
    return web.Response(status=response.status, body=payload, headers=headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


# ---------------------------------------------------------------------------------------
# Middleware: latency, faults, throttles, request log
# ---------------------------------------------------------------------------------------


async def _identify(request: web.Request, state: SimState) -> tuple[str | None, str | None]:
    tenant_id, app_id = peek_identity(request.headers.get("Authorization"))
    if tenant_id:
        return tenant_id, app_id
    parts = request.path.strip("/").split("/")
    if len(parts) >= 2 and parts[1:] == ["oauth2", "v2.0", "token"]:
        tenant = state.resolve_tenant(parts[0])
        form = await request.post() if request.method == "POST" else {}
        client = str(form.get("client_id", "")).lower() or None
        return (tenant.id if tenant else parts[0].lower()), client
    if request.path == "/msi/token":
        client = (request.query.get("client_id") or "").lower()
        identity = state.managed_identities.get(client) or next(
            iter(state.managed_identities.values()), None
        )
        if identity:
            return identity.tenant_id, identity.client_id
    return None, None


@web.middleware
async def traffic_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim/") or request.path == "/_sim":
        control_response: web.StreamResponse = await handler(request)
        return control_response
    traffic = request.app[TRAFFIC]
    state = request.app[STATE]
    started = time.monotonic()
    traffic.in_flight += 1
    traffic.max_in_flight = max(traffic.max_in_flight, traffic.in_flight)
    tenant_id, app_id = await _identify(request, state)
    target = request.path + ("?" + request.query_string if request.query_string else "")
    status = 0
    note = None
    try:
        decision = traffic.decide_faults(request.method, target, tenant_id)
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        rule = decision.rule
        if rule is not None and rule.after:
            # The service acts first; the client then sees the failure.
            await handler(request)
            note = "acted, then injected"
            if rule.drop:
                raise DropConnection
            response = _to_web(fault_response(rule.status or 503, rule.retry_after, rule.body))
            status = response.status
            return response
        if rule is not None and rule.drop:
            note = "dropped"
            raise DropConnection
        if rule is not None and rule.status is not None:
            note = "injected"
            response: web.StreamResponse = _to_web(
                fault_response(rule.status, rule.retry_after, rule.body, None, rule.content_type)
            )
        else:
            retry_after = traffic.check_throttles(request.method, target, tenant_id, app_id)
            if retry_after is not None:
                note = "throttled"
                response = _to_web(throttled_response(retry_after))
            else:
                response = await handler(request)
        status = response.status
        return response
    except DropConnection:
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Nothing can be written to an aborted transport; aiohttp drops this quietly.
        return web.Response(status=499)
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        traffic.in_flight -= 1
        traffic.record(
            method=request.method,
            path=request.path,
            query=request.query_string,
            tenant_id=tenant_id,
            app_id=app_id,
            status=status,
            duration_ms=(time.monotonic() - started) * 1000,
            note=note,
        )


# ---------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------


async def token_endpoint(request: web.Request) -> web.Response:
    form = {k: str(v) for k, v in (await request.post()).items()}
    outcome = issue_client_credentials_token(request.app[STATE], request.match_info["tenant"], form)
    return _json(
        outcome.status, outcome.body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
    )


async def openid_config(request: web.Request) -> web.Response:
    status, body = openid_configuration(
        request.app[STATE], str(request.url.origin()), request.match_info["tenant"]
    )
    return _json(status, body)


async def jwks(request: web.Request) -> web.Response:
    return _json(200, {"keys": []})


async def msi_token(request: web.Request) -> web.Response:
    params = {k: v for k, v in request.query.items()}
    status, body, _tenant, _app = managed_identity_token(
        request.app[STATE], params, request.headers.get("X-IDENTITY-HEADER")
    )
    return _json(status, body)


# ---------------------------------------------------------------------------------------
# Graph
# ---------------------------------------------------------------------------------------


async def graph_entry(request: web.Request) -> web.Response:
    raw = await request.read()
    body: Any = None
    invalid = False
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            invalid = True
    req = GraphRequest(
        method=request.method,
        path="/" + request.match_info["tail"],
        query={k: v for k, v in request.query.items()},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        body_invalid=invalid,
        base_url=str(request.url.origin()),
        version="beta" if request.path.startswith("/beta/") else "v1.0",
    )
    response = await request.app[GRAPH].handle(req)
    response.headers.setdefault("request-id", req.request_id)
    response.headers.setdefault("client-request-id", req.client_request_id)
    return _to_web(response)


# ---------------------------------------------------------------------------------------
# Log Analytics
# ---------------------------------------------------------------------------------------


async def log_analytics_query(request: web.Request) -> web.Response:
    state = request.app[STATE]
    api = request.app[GRAPH]
    origin = str(request.url.origin())
    req = GraphRequest(
        method="POST",
        path=request.path,
        query={},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=None,
        body_invalid=False,
        base_url=origin,
    )
    audiences = LOG_ANALYTICS_AUDIENCES | {origin + "/loganalytics", origin + "/loganalytics/"}
    try:
        principal = api.authenticate(req, audiences)
    except GraphHttpError as exc:
        return _json(exc.status, la_error(exc.status, exc.code, exc.message))
    workspace_id = request.match_info["workspace"].lower()
    tenant = next((t for t in state.tenants.values() if t.workspace_id == workspace_id), None)
    if tenant is None:
        return _json(
            404,
            la_error(404, "WorkspaceNotFoundError", f"Workspace '{workspace_id}' was not found."),
        )
    if tenant.id != principal.tenant.id:
        return _json(
            403,
            la_error(
                403,
                "InsufficientAccessError",
                "The provided credentials have insufficient access to perform the requested"
                " operation",
            ),
        )
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _json(
            400,
            la_error(400, "BadArgumentError", "The request body is not valid JSON.", "SyntaxError"),
        )
    if not isinstance(body, dict):
        return _json(
            400,
            la_error(
                400, "BadArgumentError", "The request body must be a JSON object.", "SyntaxError"
            ),
        )
    try:
        result = run_query(tenant, body, utcnow())
    except KqlError as exc:
        if exc.code:
            return _json(400, semantic_error(str(exc), exc.code))
        return _json(400, la_error(400, "BadArgumentError", str(exc), exc.kind))
    return _json(200, result)


# ---------------------------------------------------------------------------------------
# Teams Workflows webhook: sim/workflows.py (202 before the flow runs, flow-run log)
# ---------------------------------------------------------------------------------------

WEBHOOKS: web.AppKey[WorkflowsWebhooks] = web.AppKey("webhooks", WorkflowsWebhooks)


# ---------------------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------------------


def _control(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            body: Any = {}
            if request.can_read_body:
                raw = await request.read()
                body = json.loads(raw) if raw else {}
            result = await handler(request, body)
            return _json(200, result)
        except ScenarioError as exc:
            status = 404 if str(exc).startswith("unknown tenant") else 400
            return _json(status, {"error": str(exc)})
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"error": f"{type(exc).__name__}: {exc}"})

    return wrapped


def _policy_args(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "actor": body.get("actor"),
        "value_style": body.get("valueStyle", "camel"),
        "at": body.get("at"),
    }


def control_routes(app: web.Application) -> None:
    state = app[STATE]
    traffic = app[TRAFFIC]
    webhooks: WorkflowsWebhooks = app[WEBHOOKS]

    async def health(request: web.Request, body: Any) -> Any:
        return {
            "status": "ok",
            "simulator": "Graph simulator (test double)",
            "tenants": len(state.tenants),
        }

    async def tenants(request: web.Request, body: Any) -> Any:
        return {"tenants": [t.summary() for t in state.tenants.values()]}

    async def add_tenant(request: web.Request, body: Any) -> Any:
        return state.add_tenant(body).summary()

    async def tenant(request: web.Request, body: Any) -> Any:
        t = state.tenant(request.match_info["tid"])
        return {
            **t.summary(),
            "default": t.default_policy,
            "partnerPolicies": t.partners,
            "authorizationPolicy": t.authorization_policy,
        }

    async def set_default(request: web.Request, body: Any) -> Any:
        event = state.set_default_policy(
            request.match_info["tid"],
            body.get("policy") or {},
            replace=bool(body.get("replace")),
            **_policy_args(body),
        )
        return {"event": event}

    async def set_partner(request: web.Request, body: Any) -> Any:
        event = state.set_partner_policy(
            request.match_info["tid"],
            request.match_info["pid"],
            body.get("policy") or {},
            replace=bool(body.get("replace")),
            **_policy_args(body),
        )
        return {"event": event}

    async def delete_partner(request: web.Request, body: Any) -> Any:
        event = state.delete_partner_policy(
            request.match_info["tid"], request.match_info["pid"], **_policy_args(body)
        )
        return {"event": event}

    async def add_users(request: web.Request, body: Any) -> Any:
        return {"users": state.add_users(request.match_info["tid"], body["users"])}

    async def get_user(request: web.Request, body: Any) -> Any:
        t = state.tenant(request.match_info["tid"])
        user = t.find_user(request.match_info["uid"])
        if user is None:
            raise ScenarioError(f"no user {request.match_info['uid']!r} in tenant {t.id}")
        return {**user, "directoryRoles": t.directory_roles.get(user["id"], [])}

    async def add_sign_ins(request: web.Request, body: Any) -> Any:
        return {"signIns": state.add_sign_ins(request.match_info["tid"], body["signIns"])}

    async def add_audits(request: web.Request, body: Any) -> Any:
        return {"events": state.add_audit_events(request.match_info["tid"], body["events"])}

    async def set_consent(request: web.Request, body: Any) -> Any:
        consent = state.set_consent(request.match_info["tid"], request.match_info["app"], body)
        return {"state": consent.state, "roles": consent.roles}

    async def set_flags(request: web.Request, body: Any) -> Any:
        t = state.tenant(request.match_info["tid"])
        t.flags.update(body)
        return {"flags": t.flags}

    async def set_authorization_policy(request: web.Request, body: Any) -> Any:
        t = state.tenant(request.match_info["tid"])
        t.authorization_policy.update(body)
        return t.authorization_policy

    async def invitations(request: web.Request, body: Any) -> Any:
        return {"invitations": state.tenant(request.match_info["tid"]).invitations}

    async def reviews(request: web.Request, body: Any) -> Any:
        return {"definitions": state.tenant(request.match_info["tid"]).access_reviews}

    async def directory(request: web.Request, body: Any) -> Any:
        from sim.directory import directory_summary, set_directory

        t = state.tenant(request.match_info["tid"])
        return set_directory(t, body) if request.method == "PATCH" else directory_summary(t)

    async def add_fault(request: web.Request, body: Any) -> Any:
        return traffic.add_fault(body).describe()

    async def clear_faults(request: web.Request, body: Any) -> Any:
        removed = len(traffic.faults)
        traffic.faults.clear()
        return {"removed": removed}

    async def add_throttle(request: web.Request, body: Any) -> Any:
        return traffic.add_throttle(body).describe()

    async def clear_throttles(request: web.Request, body: Any) -> Any:
        removed = len(traffic.throttles)
        traffic.throttles.clear()
        return {"removed": removed}

    async def set_latency(request: web.Request, body: Any) -> Any:
        traffic.set_latency(float(body.get("ms", 0)), body.get("path_regex"))
        return {"latencyMs": traffic.latency_ms}

    async def set_seed(request: web.Request, body: Any) -> Any:
        traffic.set_seed(int(body["seed"]))
        return {"seed": int(body["seed"])}

    async def requests_log(request: web.Request, body: Any) -> Any:
        needle = request.query.get("path_contains")
        entries = [e for e in traffic.log if needle is None or needle in e["path"]]
        return {"requests": entries}

    async def mailbox(request: web.Request, body: Any) -> Any:
        return {"messages": state.mailbox}

    async def clear_mailbox(request: web.Request, body: Any) -> Any:
        removed = len(state.mailbox)
        state.mailbox.clear()
        return {"removed": removed}

    async def webhook(request: web.Request, body: Any) -> Any:
        return webhooks.describe(request.match_info["name"])

    async def set_webhook_flow(request: web.Request, body: Any) -> Any:
        if "runDelayMs" in body:
            webhooks.run_delay_seconds = float(body["runDelayMs"]) / 1000
        return webhooks.configure(request.match_info["name"], body.get("kind", "accepting"))

    async def reset(request: web.Request, body: Any) -> Any:
        traffic.reset_counters()
        return {"reset": True}

    async def stats(request: web.Request, body: Any) -> Any:
        return traffic.stats()

    r = app.router
    r.add_get("/_sim/health", _control(health))
    r.add_get("/_sim/tenants", _control(tenants))
    r.add_post("/_sim/tenants", _control(add_tenant))
    r.add_get("/_sim/tenants/{tid}", _control(tenant))
    r.add_put("/_sim/tenants/{tid}/policy/default", _control(set_default))
    r.add_put("/_sim/tenants/{tid}/policy/partners/{pid}", _control(set_partner))
    r.add_delete("/_sim/tenants/{tid}/policy/partners/{pid}", _control(delete_partner))
    r.add_post("/_sim/tenants/{tid}/users", _control(add_users))
    r.add_get("/_sim/tenants/{tid}/users/{uid}", _control(get_user))
    r.add_post("/_sim/tenants/{tid}/signIns", _control(add_sign_ins))
    r.add_post("/_sim/tenants/{tid}/directoryAudits", _control(add_audits))
    r.add_put("/_sim/tenants/{tid}/consents/{app}", _control(set_consent))
    r.add_patch("/_sim/tenants/{tid}/flags", _control(set_flags))
    r.add_patch("/_sim/tenants/{tid}/authorizationPolicy", _control(set_authorization_policy))
    r.add_get("/_sim/tenants/{tid}/invitations", _control(invitations))
    r.add_get("/_sim/tenants/{tid}/accessReviewDefinitions", _control(reviews))
    r.add_get("/_sim/tenants/{tid}/directory", _control(directory))
    r.add_patch("/_sim/tenants/{tid}/directory", _control(directory))
    r.add_post("/_sim/faults", _control(add_fault))
    r.add_delete("/_sim/faults", _control(clear_faults))
    r.add_post("/_sim/throttles", _control(add_throttle))
    r.add_delete("/_sim/throttles", _control(clear_throttles))
    r.add_put("/_sim/latency", _control(set_latency))
    r.add_put("/_sim/seed", _control(set_seed))
    r.add_get("/_sim/requests", _control(requests_log))
    r.add_get("/_sim/mailbox", _control(mailbox))
    r.add_delete("/_sim/mailbox", _control(clear_mailbox))
    r.add_get("/_sim/webhooks/{name}", _control(webhook))
    r.add_put("/_sim/webhooks/{name}/flow", _control(set_webhook_flow))
    r.add_post("/_sim/counters/reset", _control(reset))
    r.add_get("/_sim/stats", _control(stats))


# ---------------------------------------------------------------------------------------
# Application
# ---------------------------------------------------------------------------------------


async def root(request: web.Request) -> web.Response:
    return _json(200, {"service": "Graph simulator", "note": "a test double, not Microsoft Graph"})


def build_app(
    state: SimState, traffic: Traffic | None = None, page_size: int = 100
) -> web.Application:
    traffic = traffic or Traffic(seed=state.seed)
    app = web.Application(middlewares=[traffic_middleware], client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app[TRAFFIC] = traffic
    app[GRAPH] = GraphApi(state, traffic, page_size=page_size)
    receiver = WorkflowsWebhooks(state)
    app[WEBHOOKS] = receiver
    control_routes(app)
    app.router.add_get("/", root)
    app.router.add_route("*", "/v1.0/{tail:.*}", graph_entry)
    app.router.add_route("*", "/beta/{tail:.*}", graph_entry)
    app.router.add_get("/msi/token", msi_token)
    app.router.add_post("/loganalytics/v1/workspaces/{workspace}/query", log_analytics_query)
    app.router.add_post("/webhooks/teams/{name}", receiver.handle)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token_endpoint)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_config)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", jwks)
    return app


__all__ = ["build_app"]

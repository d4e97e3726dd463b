"""Response values and Graph error bodies of the Graph simulator (a TEST DOUBLE)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sim.clock import utcnow

GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


class RawBody(str):
    """A response body sent as it is (not JSON): e.g. a gateway's HTML error page."""


@dataclass
class SimResponse:
    """What a simulated endpoint answers, independent of aiohttp (so $batch can reuse it)."""

    status: int
    body: Any = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


def graph_error(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    client_request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> SimResponse:
    """Graph's error shape: ``{"error": {"code", "message", "innerError": {...}}}``."""
    request_id = request_id or str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }
    all_headers = {"Content-Type": "application/json", "request-id": request_id}
    all_headers.update(headers or {})
    return SimResponse(status, body, all_headers)


# Default codes for injected faults, as Graph labels them.
FAULT_CODES = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource not found."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "The service encountered an internal error."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


def fault_code(status: int) -> tuple[str, str]:
    return FAULT_CODES.get(status, ("UnknownError", f"Injected failure ({status})."))

"""``GET /api/v1/report`` and ``POST /api/v1/whatif``: the handlers behind ``http_api``.

``http_api`` authenticates, authorises (roles from :func:`operation_roles`) and rate
limits every call before these run; they validate their own input and answer.

* The report is read by account managers with the read-only ``Report.Read`` role
  (``XTAP_REPORT_ROLE``) and by support staff with the support role (``XTAP_API_ROLE``).
  HTML by default, JSON when the ``Accept`` header prefers ``application/json``.
* What-if is for the support role only: it reads the vendor's whole policy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.entrypoints import http_api
from shared.entrypoints.http_api import ApiResponse, BadBody, RawBody, decode_json_body

if TYPE_CHECKING:
    from shared.domain.principal import ClientPrincipal

log = logging.getLogger("xtap.api")

# A full default policy plus a handful of partner entries, exported with indentation.
WHATIF_MAX_BODY_BYTES = 256 * 1024
GZIP_MIN_ROWS = 20  # below that the page is mostly its own style and script: not worth it


def operation_roles(operation: str, settings: Any) -> tuple[str, ...] | None:
    """The app roles that may call ``operation`` (None: the support role only)."""
    if operation == "get_report":
        return tuple(dict.fromkeys((settings.report_role, settings.api_role)))
    return None


def preferred_media_type(accept: str | None) -> str | None:
    """``text/html`` or ``application/json`` by the caller's ``Accept`` (q-values
    honoured, HTML on a tie or without the header); None if it accepts neither."""
    if not accept or not accept.strip():
        return "text/html"
    best: dict[str, float] = {"text/html": 0.0, "application/json": 0.0}
    for item in accept.split(","):
        media, *params = [p.strip().lower() for p in item.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        targets = {
            "*/*": ("text/html", "application/json"),
            "text/*": ("text/html",),
            "text/html": ("text/html",),
            "application/*": ("application/json",),
            "application/json": ("application/json",),
        }.get(media, ())
        for target in targets:
            best[target] = max(best[target], q)
    if best["text/html"] == 0.0 and best["application/json"] == 0.0:
        return None
    return "application/json" if best["application/json"] > best["text/html"] else "text/html"


async def get_report(principal: ClientPrincipal, headers: Mapping[str, str]) -> ApiResponse:
    from shared.rendering.report import (
        render_report_bytes,
        report_json,
        report_security_headers,
    )
    from shared.services.delivery import render_settings
    from shared.services.portfolio import portfolio_report

    media = preferred_media_type(headers.get("accept"))
    if media is None:
        return http_api._error(406, "not_acceptable", "the report is text/html or application/json")
    app = await http_api._app()
    report = await portfolio_report(app, http_api._now())
    settings = render_settings(app)
    log.info("portfolio report (%d clients) read by %s", len(report.rows), principal.display)
    if media == "application/json":
        return ApiResponse(200, report_json(report, settings), {"Vary": "Accept"})
    # ~2 KiB of HTML a client, compressed about tenfold: 10,000 clients travel as ~2 MiB.
    # Rendering them takes a while: off the event loop, so other calls go on.
    compress = accepts_gzip(headers.get("accept-encoding")) and len(report.rows) >= GZIP_MIN_ROWS
    content = await asyncio.to_thread(
        functools.partial(render_report_bytes, report, settings, compress=compress)
    )
    extra = {**report_security_headers(), "Vary": "Accept, Accept-Encoding"}
    if compress:
        extra["Content-Encoding"] = "gzip"
    return ApiResponse(200, RawBody(content, "text/html"), extra)


def accepts_gzip(accept_encoding: str | None) -> bool:
    for item in (accept_encoding or "").split(","):
        coding, *params = [p.strip().lower() for p in item.split(";")]
        if coding in ("gzip", "*"):
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for p in params)
    return False


async def post_whatif(
    principal: ClientPrincipal, headers: Mapping[str, str], body: bytes
) -> ApiResponse:
    from shared.domain.whatif import ProposalError, parse_proposal_body
    from shared.services.whatif import CurrentPolicyUnreadable, check_proposal, run_whatif

    if len(body) > WHATIF_MAX_BODY_BYTES:
        return http_api._error(
            413, "body_too_large", f"the body exceeds {WHATIF_MAX_BODY_BYTES} bytes"
        )
    if not http_api._is_json_media_type(headers.get("content-type")):
        return http_api._error(415, "unsupported_media_type", "send application/json (UTF-8)")
    try:
        raw = decode_json_body(body)
    except BadBody as exc:
        return http_api._error(400, "invalid_request", f"body {exc}", field="body")
    try:
        proposal = parse_proposal_body(raw)
        check_proposal(proposal)
    except ProposalError as exc:
        return http_api._error(400, "invalid_request", exc.message, field=exc.field)
    app = await http_api._app()
    try:
        result = await run_whatif(app, proposal)
    except ProposalError as exc:
        return http_api._error(400, "invalid_request", exc.message, field=exc.field)
    except CurrentPolicyUnreadable as exc:
        log.error("what-if: %s", exc)
        return http_api._error(502, "vendor_policy_unreadable", str(exc))
    log.info(
        "what-if by %s: %d newly broken, %d newly recovered",
        principal.display,
        len(result.newly_broken),
        len(result.newly_recovered),
    )
    return ApiResponse(200, result.to_json())

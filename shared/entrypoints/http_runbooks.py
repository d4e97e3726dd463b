"""``GET /api/v1/runbooks`` and ``GET /api/v1/runbooks/{code}``: the findings' runbooks.

**Anonymous, deliberately.** Every alert links here, and the people who open those links
are identity admins reading a Teams card or an e-mail — who need not hold the support API's
app role — and, through the client instructions, client admins of other tenants who can
never sign in to the vendor's tenant. The pages are the product's own documentation
(``docs/findings``, public in the repository): no tenant data, no secrets, no per-caller
content, and nothing but a fixed catalogue code reaches the file system. App Service
Authentication excludes these two paths (infra), like ``/api/v1/health``.

Answers are HTML (``text/html``, a strict Content-Security-Policy, cacheable for an hour);
an unknown code is a 404 page that links to the index; methods other than GET/HEAD are 405.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import azure.functions as func

log = logging.getLogger("xtap.runbooks")

ALLOWED_METHODS = "GET, HEAD"


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "public, max-age=3600",
    }


def _vendor_name(env: Mapping[str, str]) -> str:
    # Runbooks must answer even when the app is misconfigured (they are how an admin finds
    # the fix), so they read only this one cosmetic setting and never load_settings().
    return (env.get("XTAP_VENDOR_NAME") or "").strip() or "OSTTRA"


def handle(
    method: str, code: str | None, env: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Answer one runbook request: (status, headers, body). Never raises for bad input."""
    from shared.rendering.runbooks import (
        CONTENT_SECURITY_POLICY,
        RunbookNotFound,
        runbook_page,
    )
    from shared.version import version

    headers = _headers(CONTENT_SECURITY_POLICY)
    if method.upper() not in ("GET", "HEAD"):
        return 405, headers | {"Allow": ALLOWED_METHODS}, b"method not allowed; use GET\n"
    try:
        page = runbook_page(code, _vendor_name(env), version())
    except RunbookNotFound:
        index = "runbooks" if code is None else "../runbooks"
        body = (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>No such runbook</title></head><body>"
            f"<p>No runbook named <code>{html.escape((code or '')[:100])}</code>.</p>"
            f"<p><a href=\"{index}\">All runbooks</a></p></body></html>"
        )
        return 404, headers | {"Cache-Control": "no-store"}, body.encode("utf-8")
    payload = page.html.encode("utf-8")
    return 200, headers, b"" if method.upper() == "HEAD" else payload


def respond(req: func.HttpRequest) -> func.HttpResponse:
    """Translate a Functions HTTP request, answer it, translate back."""
    import os

    import azure.functions as func

    status, headers, body = handle(req.method, (req.route_params or {}).get("code"), os.environ)
    return func.HttpResponse(body=body, status_code=status, headers=headers)

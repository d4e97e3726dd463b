"""Where a finding's runbook lives: one rule for every link an alert carries.

By default the app serves its own runbooks (``GET /api/v1/runbooks/<CODE>``, rendered from
``docs/findings/<CODE>.md`` shipped with the app), so a link works in every deployment
without configuration. ``XTAP_DOCS_BASE_URL`` overrides that with a published copy of
``docs/`` (a wiki, a docs site), whose pages are ``<base>/findings/<CODE>.md``.
"""

from __future__ import annotations

from urllib.parse import quote

RUNBOOK_ROUTE = "/api/v1/runbooks"

# Where ``func start`` and ``python -m devtools.runner serve`` listen by default: the
# app's address when nothing says otherwise (a local run, never a deployment: Azure sets
# WEBSITE_HOSTNAME and infra sets XTAP_PUBLIC_API_URL).
LOCAL_APP_URL = "http://127.0.0.1:7071"


def app_runbook_base(public_app_url: str) -> str:
    """The runbook route of the app reachable at ``public_app_url`` (``https://<app>``)."""
    return f"{public_app_url.rstrip('/')}{RUNBOOK_ROUTE}"


def runbook_url(base: str, code: str) -> str:
    """The page for finding ``code`` under ``base``.

    A base ending in the app's runbook route is this app (pages ``<base>/<CODE>``); any
    other base is a published copy of ``docs/`` (pages ``<base>/findings/<CODE>.md``).
    """
    base = base.rstrip("/")
    page = quote(code, safe="")
    if base.endswith(RUNBOOK_ROUTE):
        return f"{base}/{page}"
    return f"{base}/findings/{page}.md"


def docs_page_url(base: str, page: str, anchor: str | None = None) -> str | None:
    """A page of ``docs/`` other than a runbook (``operations.md``), or None.

    Only a published copy of ``docs/`` (``XTAP_DOCS_BASE_URL``) has such pages; the app's
    own route serves the runbooks alone, so there an alert carries no link rather than
    one that opens a 404.
    """
    base = base.rstrip("/")
    if base.endswith(RUNBOOK_ROUTE):
        return None
    return f"{base}/{quote(page)}" + (f"#{quote(anchor)}" if anchor else "")

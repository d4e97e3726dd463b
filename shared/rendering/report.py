"""The portfolio report as HTML (Jinja2, ``shared/templates/report/``) and as JSON.

The page is self-contained: its style and script are inlined from ``report.css`` and
``report.js`` and allowed by hash in a Content-Security-Policy (no ``unsafe-inline``, no
external file, no CDN), so the HTML copy an operator saves and the page the API serves
behave the same. :func:`report_security_headers` gives the HTTP form of that policy.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain.report import (
    NOT_CHECKED,
    STATE_LABELS,
    STATES,
    VERDICTS,
    PortfolioReport,
)
from shared.rendering.presentation import RenderSettings, format_when

if TYPE_CHECKING:
    import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "report"
TEMPLATE = "portfolio.html.j2"

VERDICT_LABELS = {
    "BLOCKED": "Blocked",
    "LIMITED": "Limited",
    "UNKNOWN": "Unknown",
    "ALLOWED": "Allowed",
    NOT_CHECKED: "Not checked",
}
CONSENT_LABELS = {"granted": "Granted", "missing": "Missing", "unknown": "Not yet known"}


@functools.cache
def _assets() -> tuple[str, str, str]:
    """(style, script, CSP) — read once per process."""
    style = (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")
    script = (TEMPLATE_DIR / "report.js").read_text(encoding="utf-8")
    if "</" in script or "</" in style:
        raise RuntimeError("report.css/report.js must not contain '</' (inlined in HTML)")
    csp = "; ".join(
        (
            "default-src 'none'",
            f"style-src {_hash(style)}",
            f"script-src {_hash(script)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    return style, script, csp


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _context(report: PortfolioReport, settings: RenderSettings) -> dict[str, Any]:
    from markupsafe import Markup

    style, script, csp = _assets()
    verdict_rank = {v: i for i, v in enumerate(VERDICTS)}
    state_rank = {s: i for i, s in enumerate(STATES)}
    return {
        "report": report,
        "vendor": settings.vendor_name,
        "style": Markup(style),  # noqa: S704 - our own file, checked for "</" above
        "script": Markup(script),  # noqa: S704
        "csp": csp,
        "runbook": functools.cache(settings.runbook_url),
        "when": format_when,
        "breakable": _breakable,
        "short_when": _short_when,
        "iso": lambda value: value.isoformat() if isinstance(value, datetime) else "",
        "verdict_label": lambda v: VERDICT_LABELS.get(v, v),
        "state_label": lambda s: STATE_LABELS.get(s, s),
        "consent_label": lambda c: CONSENT_LABELS.get(c, c),
        "verdict_rank": lambda v: verdict_rank.get(v, len(VERDICTS)),
        "state_rank": lambda s: state_rank.get(s, len(STATES)),
    }


def _short_when(when: datetime) -> Any:
    """Date and time (UTC) that wrap between, not inside, the two."""
    from markupsafe import Markup

    text = format_when(when)  # 2026-11-02 09:00:00 UTC: digits, dashes and colons only
    return Markup(f"<span>{text[:10]}</span> <span>{text[11:16]} UTC</span>")  # noqa: S704


@functools.lru_cache(maxsize=1024)
def _breakable(code: str) -> Any:
    """A finding code that may wrap after its underscores (never inside a word)."""
    from markupsafe import Markup, escape

    return Markup("_<wbr>").join(escape(part) for part in code.split("_"))


def iter_report_html(report: PortfolioReport, settings: RenderSettings) -> Iterator[str]:
    """The page in chunks (for writing a large report to a file without one big string)."""
    template = _environment().get_template(TEMPLATE)
    return template.generate(**_context(report, settings))


def render_report_html(report: PortfolioReport, settings: RenderSettings) -> str:
    return "".join(iter_report_html(report, settings))


def render_report_bytes(
    report: PortfolioReport, settings: RenderSettings, *, compress: bool = False
) -> bytes:
    """The page as UTF-8 (gzip-compressed with ``compress``), written chunk by chunk: the
    whole page never sits in memory as text besides its encoded form."""
    buffer = io.BytesIO()
    sink: Any = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=5) if compress else buffer
    try:
        pending: list[str] = []
        size = 0
        for chunk in iter_report_html(report, settings):
            pending.append(chunk)
            size += len(chunk)
            if size >= 64 * 1024:
                sink.write("".join(pending).encode("utf-8"))
                pending, size = [], 0
        sink.write("".join(pending).encode("utf-8"))
    finally:
        if compress:
            sink.close()
    return buffer.getvalue()


def report_json(report: PortfolioReport, settings: RenderSettings) -> dict[str, Any]:
    return report.to_json(functools.cache(settings.runbook_url))


def report_security_headers() -> dict[str, str]:
    """HTTP headers for the served page: the same CSP, plus no framing and no caching."""
    _, _, csp = _assets()
    return {
        "Content-Security-Policy": f"{csp}; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }

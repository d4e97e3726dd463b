"""Runbook pages: ``docs/findings/*.md`` rendered to HTML, as the app serves them.

The Markdown is CommonMark plus tables (markdown-it-py, pinned), with raw HTML disabled:
anything HTML-looking in a page is shown as text. Links between pages (``CODE.md``,
``README.md``) are rewritten to the app's own routes, relative to the page, so they work
under any host and route prefix. Only the finding catalogue's codes are served: the file
name never comes from the request.

The pages ship with the app: ``docs/findings`` sits beside ``shared/`` in the deployed
folder (``.funcignore`` keeps it; a test checks).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shared.domain.finding_catalog import FINDINGS_DOC_DIR, FindingCode

APP_ROOT = Path(__file__).resolve().parent.parent.parent
FINDINGS_DIR = APP_ROOT / FINDINGS_DOC_DIR
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "runbooks"
INDEX_FILE = "README.md"

STYLESHEET = (
    "body{margin:0;background:#f5f5f5;color:#242424;"
    "font:15px/1.5 'Segoe UI',Helvetica,Arial,sans-serif}"
    "header,main,footer{max-width:860px;margin:0 auto;padding:12px 24px}"
    "header{font-size:13px;color:#616161}main{background:#fff;border:1px solid #e0e0e0}"
    "footer{font-size:12px;color:#707070}a{color:#0f6cbd}"
    "code{font-family:Consolas,'Courier New',monospace;font-size:.92em;"
    "background:#f0f0f0;padding:0 3px}"
    "pre{background:#f0f0f0;padding:12px;overflow-x:auto}pre code{padding:0}"
    "table{border-collapse:collapse;margin:12px 0}"
    "th,td{border:1px solid #d1d1d1;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#fafafa}"
)

# default-src 'none': no script, no frame, no font, no fetch; the one stylesheet is inline
# and allowed by its hash only.
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLESHEET.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE_LINK = re.compile(r"^(?P<name>[A-Za-z0-9_]+)\.md(?P<fragment>#[^\s]*)?$")


class RunbookNotFound(LookupError):
    """No runbook under that name (not a finding code, or its page is missing)."""


@dataclass(frozen=True)
class RunbookPage:
    code: str | None  # None for the index
    title: str
    html: str


def finding_code(name: str) -> str | None:
    """The catalogue code a request names (``CODE`` or ``CODE.md``, any case), or None."""
    name = name.strip()
    if name.lower().endswith(".md"):
        name = name[:-3]
    upper = name.upper()
    return upper if upper in FindingCode.__members__ else None


def _rewrite(href: str, on_index: bool) -> str:
    """A link between runbook pages, pointed at the app's route for that page."""
    match = _PAGE_LINK.match(href)
    if not match:
        return href
    fragment = match.group("fragment") or ""
    name = match.group("name")
    if f"{name}.md" == INDEX_FILE:
        return ("runbooks" if on_index else "../runbooks") + fragment
    code = finding_code(name)
    if code is None:
        return href
    return (f"runbooks/{code}" if on_index else code) + fragment


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


@cache
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("page.html.j2")


def _title(tokens: list[Any], fallback: str) -> str:
    for position, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            return str(tokens[position + 1].content).strip() or fallback
    return fallback


def _anchor(text: str) -> str:
    """A heading's anchor as GitHub spells it (``## Acknowledge a drift`` →
    ``acknowledge-a-drift``), so links into a page work here as in the repository."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def render_markdown(text: str, *, on_index: bool) -> tuple[str, str]:
    """(title, body HTML) of one page, its page links rewritten, its headings anchored."""
    md = _markdown()
    tokens = md.parse(text)
    anchors: dict[str, int] = {}
    for position, token in enumerate(tokens):
        if token.type == "heading_open":
            anchor = _anchor(str(tokens[position + 1].content))
            seen = anchors.get(anchor, 0)
            anchors[anchor] = seen + 1
            token.attrSet("id", f"{anchor}-{seen}" if seen else anchor)
        for child in token.children or ():
            if child.type == "link_open":
                href = child.attrGet("href")
                if isinstance(href, str):
                    child.attrSet("href", _rewrite(href, on_index))
    return _title(tokens, "Runbook"), md.renderer.render(tokens, md.options, {})


def _page(source: Path, code: str | None, vendor_name: str, version: str | None) -> RunbookPage:
    import markupsafe

    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookNotFound(code or "index") from None
    title, body = render_markdown(text, on_index=code is None)
    html = _template().render(
        title=title,
        code=code,
        vendor_name=vendor_name,
        version=version,
        # Trusted: our constant, and markdown-it's output with raw HTML disabled (escaped).
        stylesheet=markupsafe.Markup(STYLESHEET),  # noqa: S704
        body=markupsafe.Markup(body),  # noqa: S704
        index_href="runbooks" if code is None else "../runbooks",
        source=f"{FINDINGS_DOC_DIR}/{source.name}",
    )
    return RunbookPage(code=code, title=title, html=html)


def runbook_page(
    name: str | None, vendor_name: str = "xtap-watch", version: str | None = None
) -> RunbookPage:
    """The index (``name`` None) or one finding's page; :class:`RunbookNotFound` otherwise."""
    if name is None:
        return _cached_page(None, vendor_name, version)
    code = finding_code(name)
    if code is None:
        raise RunbookNotFound(name)
    return _cached_page(code, vendor_name, version)


@cache
def _cached_page(code: str | None, vendor_name: str, version: str | None) -> RunbookPage:
    # Keyed by the canonical code only (never by the request's spelling), so the cache holds
    # at most one page per catalogue code: the pages change only with a deployment.
    source = FINDINGS_DIR / (INDEX_FILE if code is None else f"{code}.md")
    return _page(source, code, vendor_name, version)

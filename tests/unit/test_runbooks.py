"""Runbooks served by the app: every finding's page, safe HTML, links that resolve, and
alert links that point there by default (issue #14.4)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from shared.domain.finding_catalog import FindingCode
from shared.entrypoints.http_runbooks import handle

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://func-xtap.example/api/v1/runbooks"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_title = tag == "title"
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _get(url: str) -> tuple[int, dict[str, str], str]:
    path = urlsplit(url).path
    assert path.startswith("/api/v1/runbooks"), url
    rest = path[len("/api/v1/runbooks") :].strip("/")
    status, headers, body = handle("GET", rest or None, {})
    return status, headers, body.decode("utf-8")


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.mark.parametrize("code", [c.value for c in FindingCode])
def test_every_finding_code_has_a_served_page_whose_links_resolve(code):
    url = f"{BASE}/{code}"
    status, headers, text = _get(url)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    heading = (ROOT / "docs" / "findings" / f"{code}.md").read_text().splitlines()[0]
    page = _parse(text)
    assert page.title.startswith(heading.lstrip("# ").strip())
    assert "script" not in page.tags
    for href in page.hrefs:
        target = urljoin(url, href)
        if urlsplit(target).netloc != urlsplit(BASE).netloc:
            assert target.startswith("https://"), href  # outside links: Microsoft's sites
            continue
        assert _get(target)[0] == 200, f"{code}: link {href!r} → {target} is not served"


def test_the_index_lists_every_code_and_each_link_resolves():
    status, _, text = _get(BASE)
    assert status == 200
    page = _parse(text)
    local = [urljoin(BASE, h) for h in page.hrefs if not urlsplit(h).scheme]
    for code in FindingCode:
        assert f"{BASE}/{code.value}" in local, code
    assert all(_get(u)[0] == 200 for u in local)


def test_request_spelling_is_normalised_but_only_catalogue_codes_are_served():
    assert handle("GET", "client_outbound_blocked", {})[0] == 200
    assert handle("GET", "CLIENT_OUTBOUND_BLOCKED.md", {})[0] == 200
    for name in ("README", "../config", "..%2F..%2Fshared%2Fconfig.py", "NOPE", "", "x" * 5000):
        status, headers, body = handle("GET", name, {})
        assert status == 404, name
        assert headers["Cache-Control"] == "no-store"
        assert b"All runbooks" in body and b"<script" not in body


def test_only_get_and_head():
    status, headers, _ = handle("POST", "CLIENT_OUTBOUND_BLOCKED", {})
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, _, body = handle("HEAD", "CLIENT_OUTBOUND_BLOCKED", {})
    assert status == 200 and body == b""


def test_page_is_locked_down_and_its_stylesheet_matches_the_policy_hash():
    _, headers, text = _get(f"{BASE}/CLIENT_OUTBOUND_BLOCKED")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    style = re.search(r"<style>(.*?)</style>", text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_html_in_a_runbook_is_shown_as_text_not_run():
    from shared.rendering.runbooks import render_markdown

    _, body = render_markdown(
        '# T\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=y>',
        on_index=False,
    )
    assert "<script" not in body and "<img" not in body
    assert 'href="javascript:' not in body


def _settings(**env: str):
    from shared.config import load_settings

    base = {
        "XTAP_VENDOR_TENANT_ID": "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
        "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    return load_settings(base | env)


def test_alert_links_point_at_the_apps_own_runbooks_by_default():
    from shared.domain.runbooks import runbook_url

    deployed = _settings(XTAP_PUBLIC_API_URL="https://func-xtap.azurewebsites.net")
    assert runbook_url(deployed.docs_base_url, "CLIENT_OUTBOUND_BLOCKED") == (
        "https://func-xtap.azurewebsites.net/api/v1/runbooks/CLIENT_OUTBOUND_BLOCKED"
    )
    platform = _settings(WEBSITE_HOSTNAME="func-xtap.azurewebsites.net")
    assert platform.docs_base_url == "https://func-xtap.azurewebsites.net/api/v1/runbooks"
    assert _settings().docs_base_url == "http://127.0.0.1:7071/api/v1/runbooks"
    override = _settings(XTAP_DOCS_BASE_URL="https://wiki.example/xtap/docs/")
    assert runbook_url(override.docs_base_url, "POLICY_INCOMPLETE") == (
        "https://wiki.example/xtap/docs/findings/POLICY_INCOMPLETE.md"
    )


def test_the_heartbeats_guide_link_opens_a_page_or_is_left_out():
    """The heartbeat card linked ``<runbooks>/operations.md``: a 404 under the default
    configuration, where the app serves only the runbooks. A published docs/ copy has it."""
    from shared.services.heartbeat import operations_guide_url

    for settings in (_settings(), _settings(XTAP_PUBLIC_API_URL="https://func-xtap.example")):
        url = operations_guide_url(settings.docs_base_url)
        if url is not None:
            assert url.startswith(settings.docs_base_url + "/")
            name = urlsplit(url).path.rsplit("/", 1)[1]
            status, _, _ = handle("GET", name, {})
            assert status == 200, url
    override = _settings(XTAP_DOCS_BASE_URL="https://wiki.example/xtap/docs/")
    assert operations_guide_url(override.docs_base_url) == (
        "https://wiki.example/xtap/docs/operations.md#the-heartbeat"
    )


def test_no_setting_or_renderer_default_is_a_placeholder_address():
    from shared.config import SETTINGS
    from shared.rendering.presentation import RenderSettings

    for spec in SETTINGS:
        assert "github.com/xtap-watch" not in (spec.default or ""), spec.name
    assert "github.com" not in RenderSettings().runbook_url("POLICY_INCOMPLETE")


def test_funcignore_ships_the_runbooks_with_the_app():
    import pathspec

    lines = (ROOT / ".funcignore").read_text().splitlines()
    ignored = pathspec.PathSpec.from_lines("gitignore", lines)
    shipped = [
        "function_app.py",
        "host.json",
        "requirements.txt",
        "pyproject.toml",
        "shared/rendering/runbooks.py",
        "shared/templates/runbooks/page.html.j2",
        *(f"docs/findings/{p.name}" for p in (ROOT / "docs" / "findings").glob("*.md")),
    ]
    assert [p for p in shipped if ignored.match_file(p)] == []
    assert ignored.match_file("tests/unit/test_runbooks.py")
    assert ignored.match_file("docs/images/card-client-drifted.png")

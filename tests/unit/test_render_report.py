"""The report page as rendered: escaped values, a CSP that pins its own style and script,
runbook links, nothing loaded from elsewhere, the acknowledgement column only when used."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from shared.domain.clients import ClientRecord
from shared.domain.report import build_report, report_row
from shared.rendering.presentation import RenderSettings
from shared.rendering.report import render_report_html, report_security_headers

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SETTINGS = RenderSettings(docs_base_url="https://docs.example.com/xtap")
POSTURE = {
    "verdict": "BLOCKED",
    "findings": [
        {"code": "CLIENT_OUTBOUND_BLOCKED", "severity": "high", "title": "Blocked", "message": "m"}
    ],
    "vendorFindings": [
        {"code": "VENDOR_PARTNER_ENTRY_MISSING", "severity": "low", "title": "No entry"}
    ],
}
HOSTILE = '<script>alert("x")</script> & "Co"'


def page(*rows) -> str:
    return render_report_html(build_report(rows, NOW, "OSTTRA"), SETTINGS)


def row(name: str = "Contoso Markets", state: dict | None = None, posture=POSTURE):
    client = ClientRecord(tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", name=name)
    return report_row(client, posture, state, checked_at=NOW)


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_values_are_escaped():
    html = page(row(HOSTILE))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Co&#34;" in html
    assert html.count("<script>") == 1  # ours only


def test_the_csp_pins_exactly_the_inline_style_and_script():
    html = page(row())
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert f"style-src {sha256(style)}" in meta.replace("&#39;", "'")
    assert f"script-src {sha256(script)}" in meta.replace("&#39;", "'")
    assert "unsafe-inline" not in meta
    header = report_security_headers()["Content-Security-Policy"]
    assert header.startswith(meta.replace("&#39;", "'")) and "frame-ancestors 'none'" in header


def test_nothing_is_loaded_from_elsewhere_and_findings_link_their_runbooks():
    html = page(row())
    assert not re.search(r"<(script|img|iframe|link)[^>]+(src|href)=\"(https?:)?//", html)
    links = re.findall(r'<a href="([^"]+)"', html)
    assert links == [
        "https://docs.example.com/xtap/findings/CLIENT_OUTBOUND_BLOCKED.md",
        "https://docs.example.com/xtap/findings/VENDOR_PARTNER_ENTRY_MISSING.md",
    ]
    assert "on" + "click=" not in html and "onsubmit=" not in html  # no inline handlers


def test_the_acknowledgement_column_appears_only_when_one_is_stored():
    plain = page(row())
    assert "Acknowledged</th>" not in plain
    acked = {
        "client": {"status": "drifted", "first_observed_at": "2026-11-01T00:00:00+00:00"},
        "acknowledgement": {
            "by": "lead@osttra.com",
            "reason": "client migrating tenants",
            "until": "2026-11-01T12:00:00+00:00",
        },
    }
    html = page(row(state=acked), row(name="Other"))
    assert "Acknowledged</th>" in html
    assert "client migrating tenants" in html and "by lead@osttra.com" in html
    assert 'class="ack expired"' in html  # the expiry is before the report's time
    rows = re.findall(r"<tr data-order=.*?</tr>", html, re.S)
    assert [r.count("<td") for r in rows] == [10, 10]  # the other row gets an empty cell
    assert [r.count("<td") for r in re.findall(r"<tr data-order=.*?</tr>", plain, re.S)] == [9]


def test_an_empty_registry_says_so():
    html = page()
    assert "No clients are registered yet" in html and 'id="rows"' in html

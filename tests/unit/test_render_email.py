"""E-mails: admin alert (HTML escaped + text twin), the client's onboarding steps, and the
Graph sendMail payloads checked against Microsoft's documented request examples."""

from __future__ import annotations

import base64
import email
import html
import json
import subprocess
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES, REFERENCE
from shared.domain.messages import AlertKind, FindingRef, Severity
from shared.rendering.email import (
    EmailContent,
    graph_mail_payload,
    graph_mime_message,
    render_admin_email,
    render_client_email,
)
from shared.rendering.onboarding import client_checklist, finding_topics
from shared.rendering.presentation import RenderSettings
from tests.unit.alert_samples import (
    AUTO_REDEEM_OFF,
    DIRECT_CONNECT_OPEN,
    OUTBOUND_BLOCKED,
    SAMPLE_ALERTS,
)

ROOT = Path(__file__).parents[2]
FIXTURES = GRAPH_FIXTURES
GUIDE = REFERENCE / "000_589611ff25a60f44.txt"
SETTINGS = RenderSettings(api_base_url="https://xtap-watch.azurewebsites.net")

CONTOSO_TENANT = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
VENDOR_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CONSENT_LINK = (
    "https://login.microsoftonline.com/6babcaad-604b-40ac-a9d7-9fd97c0b779f/adminconsent"
    "?client_id=3f1e2d4c-5b6a-4789-9abc-def012345678&redirect_uri=https%3A%2F%2Fxtap.example"
)


def client_email(findings: list[FindingRef], link: str | None = CONSENT_LINK,
                 name: str = "Contoso, Ltd", **options: Any) -> EmailContent:
    return render_client_email(name, CONTOSO_TENANT, "OSTTRA", "sso.osttra.com",
                               VENDOR_TENANT, findings, link, **options)


# ------------------------------------------------------------------ admin e-mail


@pytest.mark.parametrize("kind", list(AlertKind), ids=lambda k: k.value)
def test_admin_email_carries_the_cards_facts_in_html_and_text(kind: AlertKind) -> None:
    alert = SAMPLE_ALERTS[kind]
    mail = render_admin_email(alert, SETTINGS)
    assert "\n" not in mail.subject and len(mail.subject) <= 200
    assert mail.subject.startswith("[xtap-watch] ")
    page = html.unescape(mail.html)
    # A client alert says "send the client instructions" once, as its first step.
    steps = [s for s in alert.remediation_steps if "client instructions" not in s]
    for text in [alert.title, *(f.message for f in alert.findings),
                 *(f.remediation for f in alert.findings), *steps,
                 *(c.setting for c in alert.changes), *alert.facts.values(),
                 *(i.title for i in alert.items)]:
        assert text in page, text
        assert text in mail.text, text
    if alert.client:
        assert alert.client.tenant_id in page and alert.client.tenant_id in mail.text
    for finding in alert.findings:
        runbook = SETTINGS.runbook_url(finding.code)
        assert f'href="{runbook}"' in mail.html and runbook in mail.text
    assert "<html" in mail.html and "<html" not in mail.text


def test_admin_email_escapes_html_but_keeps_text_literal() -> None:
    hostile = 'Fabrikam <script>alert("x")</script> & Co'
    alert = SAMPLE_ALERTS[AlertKind.VENDOR_SETTING_CHANGED].model_copy(
        update={"who": hostile, "title": hostile, "summary": hostile})
    mail = render_admin_email(alert, SETTINGS)
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in mail.html
    assert hostile in mail.text  # the plain-text part is not HTML: no entities there
    assert "&amp;" not in mail.text and "&lt;" not in mail.text


def test_admin_email_shows_before_and_after_and_who_when() -> None:
    mail = render_admin_email(SAMPLE_ALERTS[AlertKind.VENDOR_SETTING_CHANGED], SETTINGS)
    assert f"{'Changed by:':18}bob@contoso.com\n" in mail.text
    assert f"{'When:':18}2026-11-23 09:18:00 UTC\n" in mail.text
    assert 'before: {"isMfaAccepted":true}' in mail.text
    assert "after:  (not set)" in mail.text


def test_digest_email_details_every_member() -> None:
    digest = SAMPLE_ALERTS[AlertKind.DIGEST]
    mail = render_admin_email(digest, SETTINGS)
    for number, item in enumerate(digest.items, start=1):
        assert f"{number}. [{item.severity.value.capitalize()}] Client drifted: {item.title}" \
            in mail.text
        assert item.client is not None and item.client.tenant_id in mail.html


def test_jinja_is_imported_only_when_an_email_is_rendered() -> None:
    code = (
        "import sys\n"
        "import shared.rendering.cards, shared.rendering.email, shared.rendering.digest\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 imported at module level'\n"
        "from tests.unit.alert_samples import SAMPLE_ALERTS\n"
        "from shared.rendering.presentation import RenderSettings\n"
        "for alert in SAMPLE_ALERTS.values():\n"
        "    shared.rendering.cards.render_teams_message(alert, RenderSettings())\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 imported for a card'\n"
        "shared.rendering.email.render_admin_email(alert, RenderSettings())\n"
        "assert 'jinja2' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_templates_autoescape_html_only() -> None:
    from shared.rendering.email import _environment

    env = _environment()
    assert env.get_template("admin_alert.html.j2").environment.autoescape(
        "admin_alert.html.j2") is True
    assert env.autoescape("admin_alert.txt.j2") is False
    assert env.autoescape("client_instructions.html.j2") is True


# ------------------------------------------------------------ client e-mail


GUIDE_STEPS_IN_ORDER = [
    "https://entra.microsoft.com",
    "Identity → External Identities → Cross-tenant access settings",
    "Outbound access",
    "“All allowed”",
    "Organizational settings, then Add organization",
    "“Tenant ID or domain name”, enter sso.osttra.com",
    f"OSTTRA's tenant ID {VENDOR_TENANT}",
    "“Inherited from default”",
    "On the B2B collaboration tab, under Users and groups, select Customize settings and "
    "choose Allow access",
    "External applications tab, select Allow access and All external applications",
    "B2B direct connect tab, make sure access is blocked",
    "tick “Automatically redeem invitations with the tenant OSTTRA”",
]


@pytest.mark.parametrize("part", ["text", "html"])
def test_client_email_contains_the_onboarding_steps_in_order(part: str) -> None:
    mail = client_email([OUTBOUND_BLOCKED])
    body = mail.text if part == "text" else html.unescape(mail.html)
    positions = [body.find(phrase) for phrase in GUIDE_STEPS_IN_ORDER]
    assert -1 not in positions, [p for p, at in zip(GUIDE_STEPS_IN_ORDER, positions,
                                                    strict=True) if at < 0]
    assert positions == sorted(positions)
    assert CONTOSO_TENANT in body
    assert "*.osttra.com" in body  # the guide's network prerequisite


def test_client_email_wording_follows_the_vendor_guide() -> None:
    if not GUIDE.is_file():
        pytest.skip(f"vendor guide not beside the repo: {GUIDE}")
    guide = GUIDE.read_text(encoding="utf-8")
    mail = client_email([]).text
    # phrases of the guide (its UI labels) that the e-mail must use verbatim
    for phrase in ["External Identities", "Cross-tenant access", "Add organization",
                   "Tenant ID or domain name", "sso.osttra.com", "Allow access",
                   "External applications", "B2B direct connect",
                   "Automatically redeem invitations with the tenant", "All allowed",
                   "All blocked", "Organizational setting", "Customize settings"]:
        assert phrase.lower() in guide.lower(), phrase
        assert phrase.lower() in mail.lower(), phrase


def test_client_email_has_the_consent_link_escaped_in_html_and_raw_in_text() -> None:
    mail = client_email([OUTBOUND_BLOCKED])
    assert f'href="{html.escape(CONSENT_LINK, quote=True)}"' in mail.html
    assert CONSENT_LINK in mail.text
    assert "Policy.Read.All" in mail.text and "read-only" in mail.text
    granted = client_email([OUTBOUND_BLOCKED], link=None, consent_granted=True)
    assert "adminconsent" not in granted.html
    assert "Grant read-only consent" not in granted.text


def test_client_email_refuses_a_non_https_consent_link() -> None:
    with pytest.raises(ValueError, match="https"):
        client_email([], link="javascript:alert(1)")
    with pytest.raises(ValueError, match="https"):
        client_email([], link="http://login.microsoftonline.com/x/adminconsent")


def finding(code: str, severity: Severity = Severity.HIGH) -> FindingRef:
    return FindingRef(code=code, severity=severity, message=f"{code} message")


def needed_steps(findings: list[FindingRef]) -> list[int]:
    checklist = client_checklist(vendor_name="OSTTRA", vendor_domain="sso.osttra.com",
                                 vendor_tenant_id=VENDOR_TENANT,
                                 client_tenant_id=CONTOSO_TENANT, findings=findings)
    return [s.number for s in checklist.steps if s.status == "needed"]


@pytest.mark.parametrize(
    ("findings", "steps"),
    [
        ([OUTBOUND_BLOCKED], [2, 3, 4, 6, 7]),
        ([AUTO_REDEEM_OFF], [8]),
        ([DIRECT_CONNECT_OPEN], [8]),
        ([finding("CLIENT_OUTBOUND_BLOCKED")], [6, 7]),
        ([finding("CLIENT_VENDOR_ENTRY_MISSING")], [3, 4, 6, 7]),
        ([finding("CLIENT_OUTBOUND_INHERITS_DEFAULT")], [6, 7]),
        ([finding("CLIENT_OUTBOUND_USERS_SCOPED")], [6]),
        ([finding("CLIENT_VENDOR_APP_NOT_ALLOWED")], [7]),
        ([finding("CLIENT_OUTBOUND_APPS_UNVERIFIED")], [7]),
        ([finding("SIGNIN_CLIENT_OUTBOUND_BLOCKED")], [3, 4, 6, 7]),
        # codes not pinned are placed by their words
        ([finding("CLIENT_B2B_DIRECT_CONNECT_ALLOWED")], [8]),
        ([finding("CLIENT_SCOPED_TO_GROUPS")], [6]),
        # the vendor's own findings are not the client's to fix
        ([finding("VENDOR_INBOUND_BLOCKS_CLIENT"), finding("SIGNIN_VENDOR_INBOUND_BLOCKED")],
         []),
        ([], []),
    ],
    ids=["default-blocked", "auto-redeem", "direct-connect", "entry-blocks", "no-entry",
         "inherits-default", "users-scoped", "app-not-allowed", "apps-unverified",
         "signin-500212", "words-direct-connect", "words-groups", "vendor-side", "none"],
)
def test_steps_needed_follow_the_findings(findings: list[FindingRef], steps: list[int]) -> None:
    assert needed_steps(findings) == steps


def test_marked_steps_and_finding_numbers_appear_in_the_email() -> None:
    mail = client_email([OUTBOUND_BLOCKED, AUTO_REDEEM_OFF])
    assert "Steps marked [ACTION NEEDED] (2, 3, 4, 6, 7, 8) are the ones that must change." \
        in mail.text
    assert "8. Keep B2B direct connect blocked and redeem invitations automatically " \
        "[ACTION NEEDED]" in mail.text
    assert "Needed because of finding 2 above." in mail.text
    assert "5. Open OSTTRA's outbound access\n" in mail.text  # navigation, not marked
    assert mail.subject.startswith("Action needed: Contoso, Ltd users cannot sign in")


def test_unplaced_finding_asks_to_check_the_outbound_steps() -> None:
    odd = FindingRef(code="XTAP-C042", severity=Severity.MEDIUM,
                     message="Unknown accessType value 7 in b2bCollaborationOutbound")
    assert finding_topics(odd.code) == frozenset()
    mail = client_email([odd])
    for number in (6, 7, 8):
        assert f"{number}. " in mail.text
    assert mail.text.count("[PLEASE CHECK]") == 3
    assert odd.message in mail.text
    assert mail.subject == "Please check your Microsoft Entra settings for OSTTRA sign-in"


def test_consent_finding_says_our_access_is_missing() -> None:
    missing = FindingRef(code="CLIENT_CONSENT_MISSING", severity=Severity.REVIEW,
                         message="The client has not granted the read-only consent.")
    mail = client_email([missing])
    assert "OUR READ-ONLY ACCESS IS MISSING" in mail.text
    assert "Our read-only access is missing" in mail.html


def test_client_email_without_findings_is_a_setup_guide() -> None:
    mail = client_email([])
    assert mail.subject == "Set up Microsoft Entra cross-tenant access for OSTTRA sign-in"
    assert "[ACTION NEEDED]" not in mail.text and "We found" not in mail.text


def test_client_name_is_escaped_in_html() -> None:
    mail = client_email([AUTO_REDEEM_OFF], name="<Contoso & Co>")
    assert "&lt;Contoso &amp; Co&gt;" in mail.html and "<Contoso" not in mail.html
    assert "Hello <Contoso & Co> administrator," in mail.text
    assert mail.subject == "Action needed: update your Microsoft Entra settings for OSTTRA"


# ------------------------------------------------------------- Graph sendMail


def fixture(name: str) -> dict[str, object]:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"Graph fixtures not beside the repo: {path}")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_sendmail_payload_has_the_documented_shape() -> None:
    documented = fixture("users.sendMail.post.request.json")
    with_headers = fixture("users.sendMail.post.with-headers.request.json")
    mail = render_admin_email(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED], SETTINGS)
    payload = graph_mail_payload(
        mail, ["admins@osttra.com", "secops@osttra.com"], cc=["danas@contoso.com"],
        headers={"x-xtap-dedup-key": SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].dedup_key},
    )
    assert set(payload) == set(documented)  # message + saveToSentItems
    message = payload["message"]
    documented_keys = set(documented["message"]) | set(with_headers["message"])  # type: ignore[arg-type]
    assert set(message) <= documented_keys
    assert set(message["body"]) == set(with_headers["message"]["body"])  # type: ignore[index]
    assert message["body"] == {"contentType": "HTML", "content": mail.html}
    assert message["subject"] == mail.subject
    assert message["toRecipients"] == [{"emailAddress": {"address": "admins@osttra.com"}},
                                       {"emailAddress": {"address": "secops@osttra.com"}}]
    assert message["ccRecipients"] == documented["message"]["ccRecipients"]  # type: ignore[index]
    assert message["internetMessageHeaders"] == [
        {"name": "x-xtap-dedup-key", "value": SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].dedup_key}
    ]
    # the documented example prints "false" as a string; the API's type is Boolean
    assert payload["saveToSentItems"] is True
    json.dumps(payload)


@pytest.mark.parametrize(
    ("to", "headers", "error"),
    [
        ([], None, "at least one recipient"),
        (["not an address"], None, "not an e-mail address"),
        (["a@b.com\r\nBcc: x@y.com"], None, "not an e-mail address"),
        (["a@b.com"], {"Reply-To": "x@y.com"}, "x- header"),
        (["a@b.com"], {"x-ok": "line\r\nInjected: 1"}, "x- header"),
    ],
)
def test_sendmail_payload_refuses_bad_input(to: list[str], headers: dict[str, str] | None,
                                            error: str) -> None:
    mail = EmailContent(subject="s", html="<p>h</p>", text="t")
    with pytest.raises(ValueError, match=error):
        graph_mail_payload(mail, to, headers=headers)


def test_subject_is_one_line_in_the_payload() -> None:
    mail = EmailContent(subject="Line one\r\nBcc: evil@example.com", html="<p/>", text="t")
    payload = graph_mail_payload(mail, ["a@b.com"])
    assert payload["message"]["subject"] == "Line one Bcc: evil@example.com"


def test_mime_message_carries_the_text_alternative() -> None:
    mail = client_email([OUTBOUND_BLOCKED])
    raw = graph_mime_message(mail, "xtap-watch@osttra.com", ["admin@contoso.com"])
    parsed = email.message_from_bytes(base64.b64decode(raw), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == mail.subject
    assert parsed["From"] == "xtap-watch@osttra.com" and parsed["To"] == "admin@contoso.com"
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    # SMTP policy: CRLF line ends on the wire
    assert text_part.get_content().replace("\r\n", "\n") == mail.text
    assert html_part.get_content().replace("\r\n", "\n") == mail.html


def test_every_client_side_finding_code_is_placed_on_the_checklist() -> None:
    """A new client-side code in docs/findings must be mapped to the guide's steps (or be
    one of the codes that only ask the admin to check)."""
    findings_dir = ROOT / "docs" / "findings"
    if not findings_dir.is_dir():
        pytest.skip("docs/findings not present")
    only_check = {"CLIENT_SUSPECTED_DRIFT", "CLIENT_TENANT_UNREACHABLE", "POLICY_UNKNOWN_VALUE",
                  "POLICY_INCOMPLETE", "CLIENT_TENANT_NOT_FOUND"}
    codes = {p.stem for p in findings_dir.glob("*.md") if p.stem != "README"}
    client_side = {c for c in codes if c.startswith(("CLIENT_", "SIGNIN_CLIENT_",
                                                    "SIGNIN_TENANT_"))}
    assert client_side, "no client-side finding pages found"
    unplaced = sorted(c for c in client_side - only_check if not finding_topics(c))
    assert unplaced == []


def test_tenant_restrictions_finding_adds_the_trv2_step() -> None:
    mail = client_email([finding("SIGNIN_TENANT_RESTRICTIONS_BLOCKED")])
    assert f"[ACTION NEEDED] Your tenant restrictions (v2) policy also blocks OSTTRA: " \
        f"sign-ins fail with AADSTS5000211. Allow OSTTRA's tenant ({VENDOR_TENANT}) in that " \
        "policy." in mail.text


# ------------------------------------------------- the client e-mail speaks to the client

SCOPED = FindingRef(
    code="CLIENT_OUTBOUND_USERS_SCOPED",
    severity=Severity.MEDIUM,
    message="Outbound B2B collaboration to OSTTRA is allowed for only the users and groups "
    "8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13; other users fail with AADSTS500212. That is fine "
    "when the client meant it (register the expected scope), otherwise it is drift.",
    remediation="If all users should reach the vendor: ... Save. If the scope is intended, "
    "record it as the client's expected scope in the registry so it is not reported as drift.",
)


@pytest.mark.parametrize("part", ["html", "text"])
def test_client_email_has_no_vendor_internal_advice(part: str) -> None:
    mail = client_email([SCOPED, OUTBOUND_BLOCKED])
    body = html.unescape(getattr(mail, part))
    for internal in ("registry", "expected scope", "xtap-watch", "the client's",
                     "the vendor's apps", "Graph: PATCH"):
        assert internal not in body, internal
    assert "Your outbound setting for OSTTRA allows only some of your users" in body


def test_an_agreed_registered_scope_is_not_action_needed() -> None:
    mail = client_email([SCOPED], consent_granted=True, link=None,
                        agreed_codes={"CLIENT_OUTBOUND_USERS_SCOPED"})
    assert "ACTION NEEDED" not in mail.text and "Action needed" not in mail.html
    assert mail.subject == "Your Microsoft Entra settings for OSTTRA sign-in: no change needed"
    assert "agreed with OSTTRA; that needs no change" in mail.text
    assert "allows only some of your users" not in mail.text
    not_agreed = client_email([SCOPED], consent_granted=True, link=None)
    assert "[ACTION NEEDED]" in not_agreed.text


def test_data_statement_says_the_client_granted_policy_read_all() -> None:
    granted = client_email([OUTBOUND_BLOCKED], link=None, consent_granted=True)
    assert ("With your administrator's consent, OSTTRA's monitoring app reads your tenant's "
            "cross-tenant access settings (Microsoft Graph permission Policy.Read.All, "
            "read-only)") in granted.text
    assert "does not read or keep data" not in granted.text
    missing = client_email([OUTBOUND_BLOCKED])
    assert "OSTTRA cannot read your tenant's settings" in missing.text


# ------------------------------------------------------------- admin e-mail, 3 a.m. view


def test_subject_says_the_kind_once() -> None:
    """Issue 13.23: "Re-invite done: Re-invite done: …"."""
    done = SAMPLE_ALERTS[AlertKind.REINVITE_DONE].model_copy(
        update={"title": "Re-invite done: Alex Wilber"})
    assert render_admin_email(done, SETTINGS).subject == (
        "[xtap-watch] Info · Re-invite done: Alex Wilber")
    failed = SAMPLE_ALERTS[AlertKind.REINVITE_FAILED].model_copy(
        update={"title": "Re-invite failed: megan.bowen@fabrikam.com"})
    assert render_admin_email(failed, SETTINGS).subject.count("Re-invite failed") == 1
    drifted = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED]
    assert render_admin_email(drifted, SETTINGS).subject == (
        f"[xtap-watch] High · Client drifted: {drifted.title}")


def test_admin_email_says_each_fix_once_and_keeps_details_last() -> None:
    from tests.unit.alert_samples import GRAPH_FIX, PORTAL_FIX, PRODUCER_DRIFT

    mail = render_admin_email(PRODUCER_DRIFT, SETTINGS)
    for body in (mail.text, html.unescape(mail.html)):
        assert body.count(PORTAL_FIX) == 1
        details_at = body.index("Details")
        assert body.index(GRAPH_FIX) > details_at
        assert body.index(PRODUCER_DRIFT.dedup_key) > details_at
        assert body.index("Episode") > details_at
        assert body.index("xtap-watch clients instructions") < details_at
